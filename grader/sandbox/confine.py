"""Child side: confine the process before student code runs, with what the kernel offers.

- Landlock (Linux >= 5.13; a few syscalls through ctypes, no root needed): files are readable
  only under the Python installation, the stand-in modules and a few system files, writable
  only in the child's own temporary folder; no TCP; no signals to processes outside the
  sandbox and no abstract Unix sockets (ABI 6+).
- seccomp (libseccomp through pyseccomp): no fork or exec, no sockets, no ptrace, no raising
  resource limits, no signals to other processes.

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
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/dev/null", "/dev/urandom")
SYSTEM_LIBRARIES = ("/usr/lib", "/usr/lib64", "/lib", "/lib64")


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


def python_paths() -> list[str]:
    """Where the interpreter, its standard library and installed packages live."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    paths |= {p for p in sys.path if p and os.path.isdir(p) and "site-packages" in p}
    return sorted(paths | set(SYSTEM_LIBRARIES))


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
        rules = [(p, READ_EXECUTE) for p in read_paths] + [(p, READ) for p in SYSTEM_FILES]
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


def apply_seccomp() -> Protection:
    if pyseccomp is None:
        return Protection("seccomp", False, f"pyseccomp/libseccomp unavailable ({SECCOMP_MISSING})")
    seccomp = pyseccomp
    try:
        deny = seccomp.ERRNO(errno.EPERM)
        rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        pid = os.getpid()
        clone_thread = 0x00010000
        for name in ("fork", "vfork", "execve", "execveat", "socket", "socketpair", "ptrace",
                     "process_vm_readv", "process_vm_writev", "setrlimit", "unshare", "setns",
                     "mount", "pivot_root", "chroot", "bpf", "perf_event_open", "keyctl",
                     "add_key", "request_key", "userfaultfd"):
            _try_rule(rules, deny, name)
        # clone3 cannot be filtered by its flags: make glibc fall back to clone, which can.
        _try_rule(rules, seccomp.ERRNO(errno.ENOSYS), "clone3")
        rules.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, clone_thread, 0))
        rules.add_rule(deny, "prlimit64", seccomp.Arg(2, seccomp.NE, 0))
        rules.add_rule(deny, "kill", seccomp.Arg(0, seccomp.NE, pid))
        rules.add_rule(deny, "tgkill", seccomp.Arg(0, seccomp.NE, pid))
        _try_rule(rules, deny, "tkill")
        rules.load()
    except (OSError, RuntimeError, ValueError) as exc:
        return Protection("seccomp", False, f"cannot load the filter ({exc})")
    return Protection("seccomp", True, "no fork, exec, sockets, ptrace, raised limits or signals to others")


def _try_rule(rules, action, name: str) -> None:
    try:
        rules.add_rule(action, name)
    except (OSError, RuntimeError, ValueError):
        pass  # a syscall this architecture does not have


def confine(read_paths: list[str], write_path: str) -> list[Protection]:
    """Everything available, Landlock first (seccomp would not stop its setup, but order keeps
    the reasons simple)."""
    return [apply_landlock(read_paths, write_path), apply_seccomp()]
