"""The zygote: a warm interpreter that forks one child per submission.

Started once per run by the grader with a cleaned environment; it imports numpy and the
child harness (never the reference solution or the rubric), then waits on a Unix socket.
Each request carries three file descriptors (the job, the result pipe, the output pipe);
the zygote forks, the child puts itself in a new session (so the grader can kill its whole
process group), wires stdout/stderr to the output pipe and runs the harness. The zygote
reports each child's pid, and later its exit status, back on the socket.

Protocol on the socket (SOCK_SEQPACKET, one JSON object per message).
  grader -> zygote: {"job": ID} with SCM_RIGHTS fds [job, result, output]
  zygote -> grader: {"job": ID, "pid": PID} then {"job": ID, "status": WAITSTATUS, "cpu": SECONDS}
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import selectors
import signal
import socket
import sys

import numpy  # noqa: F401 - imported once here so every child starts warm

from dropout_grader.sandbox import harness
from dropout_grader.sandbox.confine import Prepared, prepare
from dropout_grader.sandbox.tree import remove_tree, usage
from dropout_grader.sandbox.view import child_view


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Be killed when our parent dies, so nothing outlives a killed grader (`kill -9`)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the zygote still exits when its socket closes


def _child(job_fd: int, result_fd: int, output_fd: int, control: socket.socket, prepared: Prepared,
           warm: harness.Warm) -> None:
    try:
        die_with_parent()
        os.setsid()
        control.close()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.close(output_fd)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
    except BaseException:  # noqa: BLE001
        os._exit(5)
    harness.main(job_fd, result_fd, prepared, warm)


def serve(control: socket.socket, prepared: Prepared, warm: harness.Warm, remove_workdirs: bool) -> None:
    """`prepared`: every child's confinement, made once, here, for the whole run; `warm`: the
    harness's own set-up, likewise.
    `remove_workdirs`: remove each child's folder when it ends (under bubblewrap)."""
    pids: dict[int, str] = {}
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ, "control")
    selector.register(wake_r, selectors.EVENT_READ, "wake")

    def send(message: dict) -> None:
        control.sendall(json.dumps(message).encode())

    while True:
        for key, _ in selector.select():
            if key.data == "wake":
                os.read(wake_r, 4096)
                while pids:
                    try:
                        pid, status, used = os.wait4(-1, os.WNOHANG)
                    except ChildProcessError:
                        break
                    if pid == 0:
                        break
                    job = pids.pop(pid, None)
                    if job is not None:
                        if remove_workdirs:
                            remove_workdir(os.path.join(os.getcwd(), f"job-{pid}"))
                        # Its CPU time tells the CPU limit's SIGKILL from anyone else's.
                        send({"job": job, "status": status, "cpu": used.ru_utime + used.ru_stime})
                continue
            data, fds, _, _ = socket.recv_fds(control, 65536, 3)
            if not data:
                return  # the grader went away: so do we
            job = json.loads(data)["job"]
            job_fd, result_fd, output_fd = fds
            pid = os.fork()
            if pid == 0:
                selector.close()
                os.close(wake_r)
                os.close(wake_w)
                _child(job_fd, result_fd, output_fd, control, prepared, warm)
            for fd in fds:
                os.close(fd)
            pids[pid] = job
            send({"job": job, "pid": pid})


SMALL_FOLDER = 2_000  # entries removed here and now; a larger folder is removed in the background


def remove_workdir(path: str) -> None:
    """The child's folder goes before its end is reported, so the next job starts with the
    disk freed (under bubblewrap only the zygote can see it: its tmpfs). A child that made a huge number
    of files (a tmpfs takes millions) must not stall every other job: such a folder is
    removed by a forked helper instead."""
    if usage(path, SMALL_FOLDER).complete:
        remove_tree(path)
        return
    if os.fork() == 0:
        try:
            remove_tree(path)
        finally:
            os._exit(0)


def preload_standins(folder: str) -> None:
    """Import the stand-in helper modules once, here, so no child compiles them again."""
    if not folder or not os.path.isdir(folder):
        return
    sys.path.insert(0, folder)
    try:
        for name in sorted(os.listdir(folder)):
            module = name[:-3] if name.endswith(".py") else name
            if module.isidentifier() and (name.endswith(".py") or os.path.isdir(os.path.join(folder, name))):
                try:
                    importlib.import_module(module)
                except Exception:  # noqa: BLE001 - a broken stand-in shows up when a child imports it
                    pass
    finally:
        sys.path.remove(folder)


def main(control_fd: int, standins: str, remove_workdirs: bool) -> None:
    """Started by boot.py (see there for how the package is found)."""
    die_with_parent()
    if os.getppid() == 1:  # the grader died before we could ask to follow it
        return
    preload_standins(standins)
    prepared = prepare(list(child_view(standins).read))
    control = socket.socket(fileno=control_fd)
    try:
        serve(control, prepared, harness.warm_up(standins), remove_workdirs)
    except (BrokenPipeError, ConnectionResetError, KeyboardInterrupt):
        pass
