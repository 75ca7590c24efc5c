"""Child side: confine the process before student code runs, with what the kernel offers.

- capabilities: all dropped, no_new_privs (it matters when the grader runs as root).
- Landlock (Linux >= 5.13; a few syscalls through ctypes, no root needed): files are readable
  only in the explicit list of `view.child_view` (never the answer key, the grader's modules,
  the gradebook or other students' files), writable only in the child's own folder; no TCP;
  no signals to processes outside the sandbox and no abstract Unix sockets (ABI 6+).
- seccomp (libseccomp through pyseccomp): see DENIED.

Each returns a `Protection` saying what was applied or why not, so the grader can say once,
visibly, which protections are missing on this machine.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from dataclasses import dataclass

try:  # imported in the zygote, so that children need no file access to load libseccomp
    import pyseccomp
except (ImportError, OSError) as _error:  # the package, or libseccomp itself, is missing
    pyseccomp = None
    SECCOMP_MISSING = str(_error)

# Landlock's ABI (include/uapi/linux/landlock.h). The syscall numbers are the same on every
# architecture (they are newer than the unified syscall table).
SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1 << 0
RULE_PATH_BENEATH, RULE_NET_PORT = 1, 2
FS = {name: 1 << bit for bit, name in enumerate((
    "EXECUTE", "WRITE_FILE", "READ_FILE", "READ_DIR", "REMOVE_DIR", "REMOVE_FILE", "MAKE_CHAR",
    "MAKE_DIR", "MAKE_REG", "MAKE_SOCK", "MAKE_FIFO", "MAKE_BLOCK", "MAKE_SYM", "REFER",
    "TRUNCATE", "IOCTL_DEV"))}
FS_BY_ABI = {1: 13, 2: 14, 3: 15, 4: 15, 5: 16}  # how many of the rights above each ABI knows
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
PR_SET_NO_NEW_PRIVS = 38

READ = FS["READ_FILE"] | FS["READ_DIR"]
READ_EXECUTE = READ | FS["EXECUTE"]

@dataclass(frozen=True)
class Protection:
    name: str
    active: bool
    detail: str

    def as_dict(self) -> dict:
        return {"name": self.name, "active": self.active, "detail": self.detail}


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def landlock_abi() -> int:
    if not sys.platform.startswith("linux"):
        return 0
    abi = _libc().syscall(SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    return max(0, int(abi))


def apply_landlock(read_paths: list[str], write_path: str) -> Protection:
    abi = landlock_abi()
    if abi < 1:
        return Protection("landlock", False, "not supported by this kernel")
    libc = _libc()
    all_fs = sum(list(FS.values())[:FS_BY_ABI.get(abi, 16)])
    attr = _RulesetAttr(handled_access_fs=all_fs,
                        handled_access_net=(NET_BIND_TCP | NET_CONNECT_TCP) if abi >= 4 else 0,
                        scoped=(SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = libc.syscall(SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        return Protection("landlock", False, f"cannot create a ruleset ({os.strerror(ctypes.get_errno())})")
    try:
        rules = [(p, READ_EXECUTE) for p in read_paths]
        rules.append((write_path, all_fs & ~FS["EXECUTE"]))
        for path, access in rules:
            _add_path_rule(libc, ruleset, path, access)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return Protection("landlock", False, "cannot set no_new_privs")
        if libc.syscall(SYS_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)) != 0:
            return Protection("landlock", False, f"restrict_self failed ({os.strerror(ctypes.get_errno())})")
    finally:
        os.close(ruleset)
    what = "files, TCP" if abi >= 4 else "files"
    if abi >= 6:
        what += ", signals and abstract sockets outside the sandbox"
    return Protection("landlock", True, f"ABI {abi}: {what}")


def _add_path_rule(libc, ruleset: int, path: str, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a path this machine does not have
    try:
        if not os.path.isdir(path):  # files take only file rights
            access &= FS["EXECUTE"] | FS["WRITE_FILE"] | FS["READ_FILE"] | FS["TRUNCATE"] | FS["IOCTL_DEV"]
        rule = _PathBeneathAttr(allowed_access=access, parent_fd=fd)
        libc.syscall(SYS_ADD_RULE, ruleset, RULE_PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0))
    finally:
        os.close(fd)


# Syscalls no grading needs and that reach outside the child. A deny-list, not an allow-list,
# on purpose: an allow-list must name every call CPython, glibc, numpy and OpenBLAS make on
# every kernel and libc version a course runs (rseq, statx, faccessat2, getrandom, clone3
# fallbacks, ...), and one it misses turns a correct submission into a crash, which the design
# forbids (never accuse a correct program). What the remaining calls can touch is bounded
# elsewhere: files by Landlock (or bubblewrap's view), privileges by dropping every
# capability, resources by rlimits. Sockets are denied by every route that makes one
# (socket, socketpair, socketcall, io_uring), so the network is closed even where Landlock's
# network and scoping rules (kernel 6.7 / 6.12) are missing.
DENIED = (
    # new processes, programs and namespaces
    "fork", "vfork", "execve", "execveat", "unshare", "setns", "mount", "umount2", "pivot_root",
    "chroot", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    # sockets by every route, and asynchronous I/O rings that can make them (IORING_OP_SOCKET)
    "socket", "socketpair", "socketcall", "io_uring_setup", "io_uring_enter", "io_uring_register",
    # other processes: tracing, memory, signals (checked by pid below for kill/tgkill), pidfds
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_open", "pidfd_getfd",
    "pidfd_send_signal", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "tkill",
    # state that outlives the child: SysV IPC, POSIX message queues, keys
    "shmget", "shmat", "shmctl", "shmdt", "msgget", "msgsnd", "msgrcv", "msgctl", "semget",
    "semop", "semtimedop", "semctl", "ipc", "mq_open", "mq_unlink", "mq_timedsend",
    "mq_timedreceive", "mq_notify", "mq_getsetattr", "keyctl", "add_key", "request_key",
    # watching or blocking other processes' file access
    "fanotify_init", "fanotify_mark",
    # scheduling and priority (of the zygote, or anyone of the same user)
    "sched_setaffinity", "sched_setscheduler", "sched_setparam", "sched_setattr", "setpriority",
    "ioprio_set", "migrate_pages", "move_pages",
    # the kernel and the machine
    "reboot", "sethostname", "setdomainname", "syslog", "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module", "acct", "swapon", "swapoff", "quotactl",
    "quotactl_fd", "clock_settime", "clock_adjtime", "adjtimex", "settimeofday", "mknod",
    "mknodat", "iopl", "ioperm", "vhangup", "uselib", "lookup_dcookie", "nfsservctl",
    "name_to_handle_at", "open_by_handle_at", "bpf", "perf_event_open", "userfaultfd",
    "personality",
    # identity and limits
    "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups",
    "setfsuid", "setfsgid", "capset", "setrlimit",
)
F_SETOWN, F_SETOWN_EX = 8, 15  # fcntl: deliver SIGIO/SIGURG to a process of one's choosing


def apply_seccomp() -> Protection:
    if pyseccomp is None:
        return Protection("seccomp", False, f"pyseccomp/libseccomp unavailable ({SECCOMP_MISSING})")
    seccomp = pyseccomp
    try:
        deny = seccomp.ERRNO(errno.EPERM)
        rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        pid = os.getpid()
        clone_thread = 0x00010000
        for name in DENIED:
            _try_rule(rules, deny, name)
        # clone3 cannot be filtered by its flags: make glibc fall back to clone, which can.
        _try_rule(rules, seccomp.ERRNO(errno.ENOSYS), "clone3")
        rules.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, clone_thread, 0))
        rules.add_rule(deny, "prlimit64", seccomp.Arg(2, seccomp.NE, 0))  # reading is fine
        # Signals only to itself.
        rules.add_rule(deny, "kill", seccomp.Arg(0, seccomp.NE, pid))
        rules.add_rule(deny, "tgkill", seccomp.Arg(0, seccomp.NE, pid))
        for command in (F_SETOWN, F_SETOWN_EX):
            rules.add_rule(deny, "fcntl", seccomp.Arg(1, seccomp.EQ, command))
        rules.load()
    except (OSError, RuntimeError, ValueError) as exc:
        return Protection("seccomp", False, f"cannot load the filter ({exc})")
    return Protection("seccomp", True, "no fork, exec, sockets (io_uring included), ptrace, IPC, "
                                       "signals to others, scheduling, kernel or identity changes")


def _try_rule(rules, action, name: str) -> None:
    try:
        rules.add_rule(action, name)
    except (OSError, RuntimeError, ValueError):
        pass  # a syscall this architecture does not have


PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 24, 47, 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> Protection:
    """No capability in any set, and none that could come back: it matters when the grader
    runs as root (Gradescope, most CI containers), where the child would otherwise keep
    CAP_SYS_ADMIN, CAP_SYS_BOOT, CAP_DAC_OVERRIDE and the rest."""
    if not sys.platform.startswith("linux"):
        return Protection("capabilities", False, "not Linux")
    libc = _libc()
    bounding = "bounding set emptied"
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
            continue
        if ctypes.get_errno() == errno.EINVAL:
            break  # past the kernel's last capability
        # EPERM: an ordinary user (no CAP_SETPCAP) cannot shrink it; with no_new_privs and no
        # exec, nothing can raise the capabilities it has (none) from it either.
        bounding = "bounding set kept (not root)"
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    empty = (_CapData * 2)()
    if libc.capset(ctypes.byref(header), ctypes.byref(empty)) != 0:
        return Protection("capabilities", False, f"capset failed ({os.strerror(ctypes.get_errno())})")
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return Protection("capabilities", False, "cannot set no_new_privs")
    return Protection("capabilities", True, f"none effective, permitted, inheritable or ambient; "
                                            f"{bounding}; no_new_privs")


def confine(read_paths: list[str], write_path: str) -> list[Protection]:
    """Everything available. Capabilities first (the bounding set can only be dropped while
    CAP_SETPCAP is held), then Landlock, then seccomp, which denies capset and friends."""
    return [drop_capabilities(), apply_landlock(read_paths, write_path), apply_seccomp()]
