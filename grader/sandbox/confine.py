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
import fcntl
import os
import resource
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


@dataclass(frozen=True)
class LandlockPlan:
    """The read rules, made once in the zygote: an O_PATH descriptor and the rights for each
    allowed path. A child only adds them to its ruleset (no path lookups, no stat), adds its
    own folder, restricts itself and closes the descriptors."""
    abi: int
    rules: tuple[tuple[int, int], ...]  # (O_PATH fd, access)


FILE_RIGHTS = FS["EXECUTE"] | FS["WRITE_FILE"] | FS["READ_FILE"] | FS["TRUNCATE"] | FS["IOCTL_DEV"]


def plan_landlock(read_paths: list[str]) -> LandlockPlan:
    abi = landlock_abi()
    if abi < 1:
        return LandlockPlan(abi, ())
    _room_for_descriptors(PLAN_FDS_FROM + len(read_paths) + 64)
    rules = []
    for path in read_paths:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue  # a path this machine does not have
        try:
            # Above the child's RLIMIT_NOFILE (64): the low numbers stay free for what the
            # child opens itself (its ruleset, its folder, the student's files).
            high = fcntl.fcntl(fd, getattr(fcntl, "F_DUPFD_CLOEXEC", 1030), PLAN_FDS_FROM)
        except OSError:
            high = fd  # no room up there: confinement may then fail, visibly
        else:
            os.close(fd)
        rules.append((high, READ_EXECUTE if os.path.isdir(path) else READ_EXECUTE & FILE_RIGHTS))
    return LandlockPlan(abi, tuple(rules))


PLAN_FDS_FROM = 256


def _room_for_descriptors(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (count if hard == resource.RLIM_INFINITY else min(count, hard), hard))
        except (ValueError, OSError):
            pass


def close_plan(plan: LandlockPlan) -> None:
    for fd, _ in plan.rules:
        try:
            os.close(fd)
        except OSError:
            pass


def apply_landlock(plan: LandlockPlan, write_path: str) -> Protection:
    abi = plan.abi
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
        rule = _PathBeneathAttr()
        add_rule, pointer = libc.syscall, ctypes.byref(rule)
        for fd, access in plan.rules:
            rule.allowed_access, rule.parent_fd = access & all_fs, fd
            add_rule(SYS_ADD_RULE, ruleset, RULE_PATH_BENEATH, pointer, ctypes.c_uint32(0))
        own = os.open(write_path, os.O_PATH | os.O_CLOEXEC)
        try:
            rule.allowed_access, rule.parent_fd = all_fs & ~FS["EXECUTE"], own
            if add_rule(SYS_ADD_RULE, ruleset, RULE_PATH_BENEATH, pointer, ctypes.c_uint32(0)) != 0:
                return Protection("landlock", False, f"cannot allow its own folder ({os.strerror(ctypes.get_errno())})")
        finally:
            os.close(own)
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
    "fanotify_init", "fanotify_mark", "inotify_init", "inotify_init1",
    # file metadata, which Landlock does not cover: by path, without opening the file, a child
    # could chmod another student's notebook to 000 (it is the same user) and make it ungradable
    "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
    "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr",
    "utime", "utimes", "utimensat", "futimesat",
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


# The filter allows kill/tgkill only on the child's own pid, which is known after the fork.
# It is compiled once with this stand-in (above any pid the kernel hands out, 2**22), and each
# child writes its pid into the constants that hold it.
PID_PLACEHOLDER = 0x7EADBEEF
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
_INSTRUCTION = 8  # struct sock_filter: u16 code, u8 jt, u8 jf, u32 k


@dataclass(frozen=True)
class SeccompProgram:
    bpf: bytes  # empty when unavailable
    error: str = ""


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def compile_seccomp() -> SeccompProgram:
    """The filter as BPF, built once with libseccomp (in the zygote)."""
    if pyseccomp is None:
        return SeccompProgram(b"", f"pyseccomp/libseccomp unavailable ({SECCOMP_MISSING})")
    seccomp = pyseccomp
    try:
        deny = seccomp.ERRNO(errno.EPERM)
        rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        clone_thread = 0x00010000
        for name in DENIED:
            _try_rule(rules, deny, name)
        # clone3 cannot be filtered by its flags: make glibc fall back to clone, which can.
        _try_rule(rules, seccomp.ERRNO(errno.ENOSYS), "clone3")
        rules.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, clone_thread, 0))
        rules.add_rule(deny, "prlimit64", seccomp.Arg(2, seccomp.NE, 0))  # reading is fine
        # Signals only to itself.
        rules.add_rule(deny, "kill", seccomp.Arg(0, seccomp.NE, PID_PLACEHOLDER))
        rules.add_rule(deny, "tgkill", seccomp.Arg(0, seccomp.NE, PID_PLACEHOLDER))
        for command in (F_SETOWN, F_SETOWN_EX):
            rules.add_rule(deny, "fcntl", seccomp.Arg(1, seccomp.EQ, command))
        memfd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            rules.export_bpf(_Fd(memfd))
            size = os.lseek(memfd, 0, os.SEEK_END)
            bpf = os.pread(memfd, size, 0)
        finally:
            os.close(memfd)
    except (OSError, RuntimeError, ValueError) as exc:
        return SeccompProgram(b"", f"cannot build the filter ({exc})")
    if not bpf or len(bpf) % _INSTRUCTION:
        return SeccompProgram(b"", "libseccomp exported no filter")
    return SeccompProgram(bpf)


class _Fd:
    def __init__(self, fd: int):
        self._fd = fd

    def fileno(self) -> int:
        return self._fd


def load_seccomp(program: SeccompProgram) -> Protection:
    if not program.bpf:
        return Protection("seccomp", False, program.error)
    pid = os.getpid().to_bytes(4, sys.byteorder)
    placeholder = PID_PLACEHOLDER.to_bytes(4, sys.byteorder)
    code = bytearray(program.bpf)
    for offset in range(4, len(code), _INSTRUCTION):  # the k field of each instruction
        if code[offset:offset + 4] == placeholder:
            code[offset:offset + 4] = pid
    buffer = ctypes.create_string_buffer(bytes(code), len(code))
    fprog = _SockFprog(len(code) // _INSTRUCTION, ctypes.cast(buffer, ctypes.c_void_p))
    libc = _libc()
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return Protection("seccomp", False, "cannot set no_new_privs")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        return Protection("seccomp", False, f"cannot load the filter ({os.strerror(ctypes.get_errno())})")
    return Protection("seccomp", True, "no fork, exec, sockets (io_uring included), ptrace, IPC, "
                                       "signals to others, scheduling, kernel or identity changes")


def apply_seccomp() -> Protection:
    """Compile and load at once (for a process that confines itself only once)."""
    return load_seccomp(compile_seccomp())


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


@dataclass(frozen=True)
class Prepared:
    """Everything that can be made before the fork, once per run (in the zygote)."""
    landlock: LandlockPlan
    seccomp: SeccompProgram


def prepare(read_paths: list[str]) -> Prepared:
    return Prepared(plan_landlock(read_paths), compile_seccomp())


def confine(prepared: Prepared, write_path: str) -> list[Protection]:
    """Everything available. Capabilities first (the bounding set can only be dropped while
    CAP_SETPCAP is held), then Landlock, then seccomp, which denies capset and friends.
    The plan's descriptors are closed before student code runs."""
    try:
        return [drop_capabilities(), apply_landlock(prepared.landlock, write_path), load_seccomp(prepared.seccomp)]
    finally:
        close_plan(prepared.landlock)
