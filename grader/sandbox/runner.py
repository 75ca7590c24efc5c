"""Parent side of the sandbox: start the zygote, hand it jobs, enforce the wall clock, and
read back each child's result and output, capped, from pipes the grader owns.

`Sandbox.run` is thread-safe: the grader calls it from N worker threads to keep N children
busy. Only plain data comes back (see `protocol`); nothing is unpickled.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass

from dropout_grader.sandbox.tree import remove_tree, usage

# Variables a child keeps from the grader's environment: what numpy needs to compute
# correctly on this machine, nothing that could carry a secret (tokens, keys, CI variables).
KEPT_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LANG", "LC_ALL")


@dataclass(frozen=True)
class SandboxLimits:
    cpu_seconds: int = 10
    wall_seconds: float = 20.0
    memory_mb: int = 2048
    output_kb: int = 64
    result_mb: int = 64
    # The child's own folder: at most this much on disk and this many entries (files, folders).
    # Each file is also capped at 1 MB by RLIMIT_FSIZE in the child (harness.set_limits).
    disk_mb: int = 64
    disk_entries: int = 10_000


@dataclass
class ChildRun:
    """What came back from one child. `result` is the raw message, still to be checked."""
    result: bytes = b""
    output: str = ""
    output_truncated: bool = False
    timed_out: bool = False
    result_too_large: bool = False
    exit_code: int | None = None  # exit code, or None when killed by a signal
    signal: int | None = None
    killed_by_grader: bool = False  # the grader killed it (time or size limit) before it ended
    disk_exceeded: bool = False  # filled its folder past the limits (killed, or ended first)
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0  # the child's own CPU time, as the zygote reaped it


class SandboxError(Exception):
    """The sandbox itself failed (not the student's code)."""


def child_environment(home: str) -> dict[str, str]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": home,
           "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.update({k: os.environ[k] for k in KEPT_VARIABLES if k in os.environ})
    return env


class _Pending:
    def __init__(self):
        self.pid: int | None = None
        self.status: int | None = None
        self.cpu_seconds = 0.0
        self.started = threading.Event()
        self.ended = threading.Event()


ISOLATION_MODES = ("auto", "bwrap", "process")
DISK_CHECK_SECONDS = 0.05  # how often the child's folder is measured (process mode)


def bubblewrap_works() -> bool:
    """Can bubblewrap make its namespaces here? (Containers often forbid it.)"""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False
    try:
        return subprocess.run([bwrap, "--ro-bind", "/", "/", "--unshare-net", "--unshare-ipc",
                               "--die-with-parent", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def zygote_command(root: str, standins: str, control_fd: int, isolation: str, disk_mb: int) -> list[str]:
    """The zygote's command line: the interpreter without `site` running boot.py (see there),
    inside bubblewrap when asked."""
    import numpy

    import dropout_grader

    package = os.path.dirname(os.path.abspath(dropout_grader.__file__))
    path = [os.path.dirname(os.path.dirname(os.path.realpath(numpy.__file__)))]
    seccomp = _pyseccomp_file()
    if seccomp:
        path.append(os.path.dirname(seccomp))
    # Under bubblewrap only the zygote sees the children's folders (a tmpfs of its own), so it
    # removes them; otherwise the grader does, alone (two removers would trip over each other).
    config = {"path": path, "package": package, "control": control_fd, "standins": standins,
              "remove_workdirs": isolation == "bwrap"}
    python = os.path.realpath(sys.executable)
    # The module's name as the first argument labels the process (ps, /proc/PID/cmdline).
    # -P (3.11+) keeps the script's folder off sys.path; on 3.10 boot.py removes it itself.
    # Either way the working folder, which student code can write, is never on it.
    safe_path = ["-P"] if sys.version_info >= (3, 11) else []
    command = [python, "-s", "-S", *safe_path, os.path.join(package, "sandbox", "boot.py"),
               "dropout_grader.sandbox.zygote", json.dumps(config)]
    if isolation == "bwrap":
        command = bubblewrap_command(root, standins, package, python, seccomp, disk_mb) + command
    return command


def bubblewrap_command(root: str, standins: str, package: str, python: str, seccomp: str | None,
                       disk_mb: int) -> list[str]:
    """A read-only view of only what the zygote needs (the child's explicit view, the
    interpreter, the sandbox's own modules, pyseccomp), a minimal /dev, a small private /tmp,
    the working folder a size-limited tmpfs, no network, IPC or UTS shared with the host."""
    from dropout_grader.sandbox.view import LIBRARY_FOLDERS, child_view, zygote_files

    command = [shutil.which("bwrap") or "bwrap", "--die-with-parent", "--new-session",
               "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
               "--proc", "/proc", "--dev", "/dev", "--size", str(2**20), "--tmpfs", "/tmp"]
    for folder in LIBRARY_FOLDERS + ("/sbin",):  # merged /usr: /lib -> usr/lib, as on the host
        if os.path.islink(folder):
            command += ["--symlink", os.readlink(folder), folder]
    read_only = list(child_view(standins).read) + zygote_files(package) + [python] + _libpython()
    if seccomp:
        # pyseccomp finds libseccomp with ctypes.util.find_library, which runs `ldconfig -p`
        # (in the zygote, once; children cannot exec).
        ldconfig = shutil.which("ldconfig", path="/sbin:/usr/sbin")
        read_only += [seccomp] + ([os.path.realpath(ldconfig)] if ldconfig else [])
    for path in dict.fromkeys(read_only):
        if not path.startswith(("/proc", "/dev/")):
            command += ["--ro-bind-try", path, path]
    return command + ["--size", str(disk_mb * 2**20), "--tmpfs", root, "--chdir", root, "--"]


def _pyseccomp_file() -> str | None:
    try:
        import pyseccomp
    except (ImportError, OSError):
        return None
    return os.path.realpath(pyseccomp.__file__)


def _libpython() -> list[str]:
    """The interpreter's shared library, when it was built with one (the loader needs it)."""
    import sysconfig

    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        return []
    name = sysconfig.get_config_var("INSTSONAME") or ""
    return [os.path.realpath(os.path.join(sysconfig.get_config_var("LIBDIR") or "", name))] if name else []


class Sandbox:
    """One zygote for the whole run; `run()` forks a child from it per job.

    `isolation`: "process" runs the zygote as a plain process (each child still sets limits,
    Landlock and seccomp where the kernel allows); "bwrap" runs it inside bubblewrap; "auto"
    picks bubblewrap when it works here.
    """

    def __init__(self, limits: SandboxLimits = SandboxLimits(), isolation: str = "auto", standins: str = ""):
        if isolation not in ISOLATION_MODES:
            raise SandboxError(f"unknown isolation mode {isolation!r}; use one of {', '.join(ISOLATION_MODES)}")
        self.requested = isolation
        if isolation == "auto":
            isolation = "bwrap" if bubblewrap_works() else "process"
        elif isolation == "bwrap" and not bubblewrap_works():
            raise SandboxError("bubblewrap is not installed or cannot create namespaces here "
                               "(install the 'bubblewrap' package, or use --isolation process)")
        self.limits = limits
        self.isolation = isolation
        self._root = tempfile.mkdtemp(prefix="grader-sandbox-")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._socket = ours
        self._send_lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._closing = threading.Event()  # set before close() kills anything
        command = zygote_command(self._root, standins, theirs.fileno(), isolation, limits.disk_mb)
        try:
            self._process = subprocess.Popen(
                command, pass_fds=[theirs.fileno()], env=child_environment(self._root), cwd=self._root,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
        except OSError as exc:
            raise SandboxError(f"cannot start the sandbox interpreter: {exc}") from None
        finally:
            theirs.close()
        self._reader = threading.Thread(target=self._read_replies, daemon=True, name="zygote-replies")
        self._reader.start()

    # --- replies from the zygote -------------------------------------------------------
    def _read_replies(self) -> None:
        while True:
            try:
                data = self._socket.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            message = json.loads(data)
            with self._pending_lock:
                pending = self._pending.get(message["job"])
            if pending is None:
                continue
            if "pid" in message:
                pending.pid = message["pid"]
                pending.started.set()
            else:
                pending.status = message["status"]
                pending.cpu_seconds = float(message.get("cpu", 0.0))
                pending.ended.set()
        with self._pending_lock:  # the zygote is gone: release everyone waiting on it
            for pending in self._pending.values():
                pending.started.set()
                pending.ended.set()

    # --- one job ------------------------------------------------------------------------
    def run(self, job: bytes) -> ChildRun:
        job_id = uuid.uuid4().hex
        pending = _Pending()
        with self._pending_lock:
            self._pending[job_id] = pending
        job_fd = os.memfd_create("grader-job", os.MFD_CLOEXEC)
        result_r, result_w = os.pipe()
        output_r, output_w = os.pipe()
        try:
            _write_all(job_fd, job)
            os.lseek(job_fd, 0, os.SEEK_SET)
            with self._send_lock:
                try:
                    socket.send_fds(self._socket, [json.dumps({"job": job_id}).encode()],
                                    [job_fd, result_w, output_w])
                except OSError as exc:
                    raise SandboxError(f"the sandbox interpreter is gone ({exc})") from None
        finally:
            for fd in (job_fd, result_w, output_w):
                os.close(fd)
        try:
            if not pending.started.wait(30) or pending.pid is None:
                raise SandboxError("the sandbox interpreter did not start the child")
            return self._collect(pending, result_r, output_r)
        finally:
            os.close(result_r)
            os.close(output_r)
            with self._pending_lock:
                self._pending.pop(job_id, None)
            if pending.pid is not None and self.isolation != "bwrap":  # see zygote_command
                remove_tree(self._workdir(pending.pid))

    def _collect(self, pending: _Pending, result_r: int, output_r: int) -> ChildRun:
        run = ChildRun()
        limits = self.limits
        start = time.monotonic()
        deadline = start + limits.wall_seconds
        result_cap = limits.result_mb * 2**20
        output_cap = limits.output_kb * 1024
        result, output = bytearray(), bytearray()
        selector = selectors.DefaultSelector()
        selector.register(result_r, selectors.EVENT_READ, "result")
        selector.register(output_r, selectors.EVENT_READ, "output")
        open_streams = 2
        next_check = start + DISK_CHECK_SECONDS
        while open_streams:
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                run.timed_out = True
                break
            if now >= next_check:
                if self._over_disk(pending.pid):
                    run.disk_exceeded = True
                    break
                # A folder that is slow to measure (thousands of entries) is measured less often.
                next_check = time.monotonic() + max(DISK_CHECK_SECONDS, 4 * (time.monotonic() - now))
            for key, _ in selector.select(min(remaining, DISK_CHECK_SECONDS)):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    selector.unregister(key.fd)
                    open_streams -= 1
                elif key.data == "result":
                    result += chunk
                    if len(result) > result_cap:
                        run.result_too_large = True
                        open_streams = 0
                        break
                elif len(output) < output_cap:
                    output += chunk[:output_cap - len(output)]
                else:
                    run.output_truncated = True  # keep draining so the child is not blocked
        selector.close()
        if not (run.timed_out or run.result_too_large or run.disk_exceeded):
            # Both pipes are closed: the child is exiting. Let it, so a clean exit is not
            # mistaken for a kill; then take down anything it left behind.
            pending.ended.wait(max(0.0, min(2.0, deadline - time.monotonic())))
        if not (run.timed_out or run.result_too_large or run.disk_exceeded) and self._over_disk(pending.pid):
            run.disk_exceeded = True  # filled its folder and ended before the next check
        run.killed_by_grader = not pending.ended.is_set()
        _kill_group(pending.pid)
        if not pending.ended.wait(10):
            raise SandboxError(f"the sandbox did not report child {pending.pid} ending")
        run.wall_seconds = time.monotonic() - start
        status = pending.status
        if self._closing.is_set():  # killed by close() (an interrupted run), not by its own doing
            raise SandboxError("the sandbox was closed while the child ran (the run was stopped)")
        if status is None:  # released because the zygote is gone: nothing the student did
            raise SandboxError("the sandbox interpreter is gone; the child's end was not reported")
        if status is not None:
            if os.WIFSIGNALED(status):
                run.signal = os.WTERMSIG(status)
            elif os.WIFEXITED(status):
                run.exit_code = os.WEXITSTATUS(status)
        run.cpu_seconds = pending.cpu_seconds
        run.result = bytes(result)
        run.output = output.decode("utf-8", errors="replace")
        return run

    def _workdir(self, pid: int) -> str:
        return os.path.join(self._root, f"job-{pid}")

    def _over_disk(self, pid: int) -> bool:
        """Process mode: the child's folder is on the host's disk, which only this check
        bounds. (Under bubblewrap it is a size-limited tmpfs the grader cannot see.)"""
        if self.isolation == "bwrap":
            return False
        used = usage(self._workdir(pid), self.limits.disk_entries)
        return not used.complete or used.bytes > self.limits.disk_mb * 2**20

    def close(self) -> None:
        self._closing.set()
        with self._pending_lock:  # children still running (an interrupted batch): end them
            for pending in self._pending.values():
                _kill_group(pending.pid)
        try:
            # shutdown, not just close: it wakes the reply reader and tells the zygote to exit.
            self._socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self._socket.close()
        finally:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            remove_tree(self._root)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _kill_group(pid: int | None) -> None:
    """The child leads its own session: killing the group also takes whatever it forked."""
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
