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
    wall_seconds: float = 0.0


class SandboxError(Exception):
    """The sandbox itself failed (not the student's code)."""


# Start the zygote with its working folder (the sandbox's, writable by student code) off
# sys.path: -P does it from Python 3.11; on 3.10 the bootstrap removes it before any import.
ZYGOTE_ENTRY = (["-P", "-m", "dropout_grader.sandbox.zygote"] if sys.version_info >= (3, 11) else
                ["-c", "import sys, runpy; del sys.path[0]; "
                       "runpy.run_module('dropout_grader.sandbox.zygote', run_name='__main__', alter_sys=True)"])


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
        self.started = threading.Event()
        self.ended = threading.Event()


ISOLATION_MODES = ("auto", "bwrap", "process")


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


def bubblewrap_command(root: str, standins: str) -> list[str]:
    """A read-only view of only what the zygote needs: the interpreter and its packages, the
    grader's sandbox code, the stand-in modules; a private /tmp; no network."""
    import dropout_grader as grader
    from dropout_grader.sandbox.confine import python_paths

    command = [shutil.which("bwrap") or "bwrap", "--die-with-parent", "--new-session",
               "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
               "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    read_only = set(python_paths()) | {"/usr", "/bin", "/sbin", "/etc/ld.so.cache", "/etc/localtime",
                                       os.path.dirname(os.path.dirname(os.path.abspath(grader.__file__)))
                                       + "/grader", standins}
    for path in sorted(read_only):
        command += ["--ro-bind-try", path, path]
    return command + ["--bind", root, root, "--chdir", root, "--"]


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
        command = [sys.executable, "-s", *ZYGOTE_ENTRY, str(theirs.fileno()), standins]
        if isolation == "bwrap":
            command = bubblewrap_command(self._root, standins) + command
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
            if pending.pid is not None:  # the child's own folder (see harness.make_workdir)
                shutil.rmtree(os.path.join(self._root, f"job-{pending.pid}"), ignore_errors=True)

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
        while open_streams:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                run.timed_out = True
                break
            for key, _ in selector.select(remaining):
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
        if not (run.timed_out or run.result_too_large):
            # Both pipes are closed: the child is exiting. Let it, so a clean exit is not
            # mistaken for a kill; then take down anything it left behind.
            pending.ended.wait(max(0.0, min(2.0, deadline - time.monotonic())))
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
        run.result = bytes(result)
        run.output = output.decode("utf-8", errors="replace")
        return run

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
            shutil.rmtree(self._root, ignore_errors=True)

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
