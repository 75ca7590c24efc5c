"""Child side: run one submission's graded functions on the probes and send back plain data.

This is the only code that runs next to student code. It sets the resource limits before
loading anything of the student's, runs each kept notebook statement, calls the graded
functions with the probe inputs under fixed seeds while recording random draws and traced
lines, and writes one message (JSON + numeric arrays) to the result pipe. It never sees the
reference solution or the rubric's expected values: it only receives inputs.
"""

from __future__ import annotations

import builtins
import inspect
import os
import random
import resource
import sys
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

from dropout_grader.sandbox.confine import Prepared, confine
from dropout_grader.sandbox.protocol import decode_value, pack, split
from dropout_grader.sandbox.recorder import LineTracer, NumpyCompat, RandomRecorder, assigned_names
from dropout_grader.sandbox import own_modules
from dropout_grader.sandbox.values import describe

# A courtesy, not a boundary (student code can undo it): the answer key is unreadable because
# the child's file view does not include it (view.py, confine.py).
BLOCKED_PACKAGES = ("reference", "rubrics", "grader", "dropout_grader.reference", "dropout_grader.rubrics")
# Made in the zygote: when memory runs out, there may be none left to build a message. Only the
# first section of a job can be charged with it (later ones are retried: retry_in_new_child).
OUT_OF_MEMORY = pack({"section": 0, "out_of_memory": True}, {})
RETRY_IN_NEW_CHILD = 6  # exit code: run the unanswered sections again in a new child


def set_limits(limits: dict[str, Any]) -> None:
    memory = int(limits["memory_mb"]) * 2**20
    cpu = int(limits["cpu_seconds"])
    for name, value in (
        ("RLIMIT_AS", (memory, memory)),
        ("RLIMIT_CPU", (cpu, cpu + 1)),
        ("RLIMIT_FSIZE", (2**20, 2**20)),
        ("RLIMIT_NOFILE", (64, 64)),
        ("RLIMIT_CORE", (0, 0)),
        ("RLIMIT_NPROC", (0, 0)),
    ):
        if hasattr(resource, name):
            try:
                resource.setrlimit(getattr(resource, name), value)
            except (ValueError, OSError):
                pass  # a limit the platform refuses; the parent's wall clock still holds


class _ImportBlocker:
    """Refuse imports of the grader's own packages: the child has no use for the reference
    solution or the rubric (files are confined separately where the OS allows it)."""

    def find_spec(self, name, path=None, target=None):
        blocked = any(name == p or name.startswith(p + ".") for p in BLOCKED_PACKAGES)
        if blocked and name not in sys.modules:
            raise ImportError(f"module {name!r} is not available while grading")
        return None


def confine_imports(standins: str) -> None:
    sys.meta_path.insert(0, _ImportBlocker())
    sys.path[:] = [standins] + [p for p in sys.path if p and os.path.isdir(p)
                                and not os.path.isdir(os.path.join(p, "reference"))]
    sys.path_importer_cache.clear()


def _where(tb) -> tuple[int | None, int | None]:
    fragment = line = None
    for frame, lineno in traceback.walk_tb(tb):
        name = frame.f_code.co_filename
        if name.startswith("<fragment "):
            fragment, line = int(name[10:-1]), lineno
    return fragment, line


def describe_error(exc: BaseException) -> dict[str, Any]:
    fragment, line = _where(exc.__traceback__)
    try:  # an exception student code defined may fail to print itself
        message = str(exc)
        if isinstance(exc, SystemExit):
            message = f"the code called exit({exc.code!r})"
        message = message[:500] if isinstance(message, str) else ""
    except BaseException:  # noqa: BLE001
        message = "(its message could not be printed)"
    return {"type": str(type(exc).__name__)[:200], "message": message, "fragment": fragment, "line": line}


def load_fragments(fragments: list[dict[str, Any]], compiled: dict | None = None
                   ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the kept notebook statements in one namespace, as Run All would, in cell order.
    A statement that fails is recorded and skipped: it matters only if graded code needs it.
    `compiled` keeps code objects for the next section (most share their statements)."""
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    failures = []
    compiled = {} if compiled is None else compiled
    for index, fragment in enumerate(fragments):
        try:
            key = (fragment["source"], index)
            code = compiled.get(key)
            if code is None:
                code = compiled[key] = compile(fragment["source"], f"<fragment {index}>", "exec")
            exec(code, namespace)
        except BaseException as exc:  # noqa: BLE001 - student code may raise anything
            failures.append({"fragment": index, **describe_error(exc)})
    return namespace, failures


class Restorer:
    """Undo what student code did to builtins, numpy's namespaces, `random` and the stand-in
    helper modules after each call, so that the harness, the next call and the next section
    (another graded function, run in the same child) run on the real ones."""

    def __init__(self, standins: str = ""):
        modules = [builtins, np, np.random, random]
        if standins:
            folder = os.path.join(standins, "")
            modules += [m for m in list(sys.modules.values())
                        if isinstance(getattr(m, "__file__", None), str) and m.__file__.startswith(folder)]
        self.saved = [(module.__dict__, dict(module.__dict__)) for module in modules]

    def restore(self) -> None:
        for module_dict, saved in self.saved:
            for name in module_dict.keys() - saved.keys():
                del module_dict[name]
            module_dict.update(saved)


def call_function(function, args, seed: int, recorder: RandomRecorder, assigned, stream_key: int = 0,
                  sources: dict[int, list[str]] | None = None):
    """Call under a fixed seed; `assigned` (names each line writes) switches tracing on;
    a nonzero `stream_key` changes every random stream under the same seeds."""
    recorder.stream_key = stream_key
    np.random.seed(seed)
    random.seed(seed)
    recorder.reset()
    if assigned is not None:
        with LineTracer(assigned, sources=sources) as tracer:
            result = function(*args)
        return result, tracer.writes
    return function(*args), []


def make_workdir() -> str:
    """The child's own folder, named by its pid so the grader can remove it afterwards."""
    path = os.path.join(os.getcwd(), f"job-{os.getpid()}")
    os.mkdir(path, 0o700)
    os.chdir(path)
    return path


@dataclass
class Warm:
    """What every child needs before student code runs and inherits from the zygote, made
    there once: numpy's removed aliases served, random draws recorded, and the snapshot of
    the modules the restorer puts back after each call."""
    compat: NumpyCompat
    recorder: RandomRecorder
    restorer: Restorer


def warm_up(standins: str) -> Warm:
    """In the zygote, after the stand-ins are imported (their modules are in the snapshot)."""
    compat = NumpyCompat()
    compat.install()
    recorder = RandomRecorder()
    recorder.install()
    return Warm(compat, recorder, Restorer(standins))


def run(job_blob: bytes, prepared: Prepared, warm: Warm, result_fd: int) -> None:
    """The job is a stream of messages (see grader/sandbox/batch.py): the common header, then
    one per section (a graded function of one assignment: the statements to load, the calls to
    make, its input arrays). Each section runs in a fresh namespace and its reply is written
    the moment it is known, so a crash in a later section leaves the earlier replies intact;
    the grader runs the sections left over in a new child."""
    messages, problem = split(job_blob)
    if problem or not messages:
        raise ValueError(f"malformed job: {problem}")
    (header, _), sections = messages[0], messages[1:]
    set_limits(header["limits"])
    workdir = make_workdir()
    confine_imports(header["standins"])
    protections = confine(prepared, workdir)
    # Written before any student code runs: the one message that cannot be the student's.
    write_message(result_fd, pack({"protections": [p.as_dict() for p in protections]}, {}))
    compat, recorder, restorer = warm.compat, warm.recorder, warm.restorer
    own_modules.install(header.get("modules") or {})
    clean_modules = set(sys.modules)
    budget = [int(header["limits"].get("result_mb", 64)) * 2**20 // 2]  # room for the draws too
    compiled: dict = {}
    for number, (section, arrays) in enumerate(sections):
        if number:
            for name in [n for n in sys.modules if n not in clean_modules]:
                del sys.modules[name]  # what the last section imported is imported afresh
        try:
            reply = run_section(section, arrays, compat, recorder, restorer, budget, first=number == 0,
                                compiled=compiled)
        except MemoryError:
            if number:  # memory an earlier section may hold: the grader retries in a new child
                retry_in_new_child()
            raise
        flush_streams()  # this section's output before its reply, and before any os._exit
        write_message(result_fd, pack({"section": number, **reply[0]}, reply[1]))


def run_section(section: dict[str, Any], arrays: dict[str, np.ndarray], compat: NumpyCompat,
                recorder: RandomRecorder, restorer: Restorer, budget: list[int], first: bool,
                compiled: dict | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """`first`: no other section ran in this process before (its limits are all this one's).
    `compiled`: code objects of the statements earlier sections loaded."""
    compat.used.clear()
    namespace, failures = load_fragments(section["fragments"], compiled)
    restorer.restore()
    fragments = section["fragments"]
    assigned = {i: assigned_names(f["source"]) for i, f in enumerate(fragments)} if section.get("trace") else None
    sources = {i: f["source"].splitlines() for i, f in enumerate(fragments)}
    out_arrays: dict[str, np.ndarray] = {}
    calls = []
    for number, call in enumerate(section["calls"]):
        record: dict[str, Any] = {"role": call["role"], "probe": call["probe"],
                                  "stream_key": int(call.get("stream_key", 0))}
        calls.append(record)
        function = namespace.get(call["function"])
        args = [decode_value(spec, arrays) for spec in call["args"]]
        try:
            inspect.signature(function).bind(*args)
        except TypeError as exc:
            record.update(status="signature", error={"type": "TypeError", "message": str(exc)})
            continue
        except ValueError:
            pass  # builtins without a signature: just call it
        try:
            result, writes = call_function(function, args, call["seed"], recorder, assigned,
                                           int(call.get("stream_key", 0)), sources)
        except BaseException as exc:  # noqa: BLE001
            restorer.restore()
            if isinstance(exc, MemoryError) and not first:
                retry_in_new_child()
            record.update(status="raised", error=describe_error(exc))
            result, writes = None, []
        else:
            restorer.restore()
            record["status"] = "returned"
            record["return"] = describe(result, out_arrays, f"c{number}", budget)
        record["writes"] = writes
        record["draws"] = recorder.draws
        for index, values in enumerate(recorder.values):
            if values is not None:
                out_arrays[f"c{number}.draw{index}"] = values
                recorder.draws[index]["values"] = f"c{number}.draw{index}"
    return {"load_failures": failures, "numpy_compat": list(compat.used), "calls": calls}, out_arrays


def retry_in_new_child() -> None:
    """Out of memory after other sections ran here: not this section's fault for sure. Ending
    without its reply makes the grader run it again, first, in a new child."""
    flush_streams()
    os._exit(RETRY_IN_NEW_CHILD)


def flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()  # what the student printed, before os._exit skips it
        except BaseException:  # noqa: BLE001 - student code may have replaced the stream
            pass


def write_message(fd: int, message: bytes) -> None:
    # Student code may have replaced sys.stdout; replies go to their own descriptor.
    view = memoryview(message)
    while view:
        view = view[os.write(fd, view):]


def main(job_fd: int, result_fd: int, prepared: Prepared, warm: Warm) -> None:
    """Entry point in the forked child; never returns."""
    code = 0
    try:
        with os.fdopen(job_fd, "rb") as job:
            blob = job.read()
        run(blob, prepared, warm, result_fd)
    except MemoryError:
        code = 3
        try:
            os.write(result_fd, OUT_OF_MEMORY)
        except OSError:
            pass
    except BaseException:  # noqa: BLE001 - whatever happened, the parent reads the exit code
        code = 4
    finally:
        flush_streams()
        os._exit(code)
