"""Scale-out: send grading to a Dask distributed cluster (`grade ... --scheduler tcp://HOST:PORT`).

Every worker runs its own `Grader`, with the same zygote and sandboxed children as a local
run, made once per worker by a WorkerPlugin from the rubric's text. Workers need not share
the submitting machine's files: each task carries the notebook's bytes, and what comes back is
the plain result dict; the submitting machine records it in its gradebook and writes the
reports. Workers need this package installed (same build), like any Dask dependency; a
worker without it is named in a one-line error before anything is sent.

Reuse goes through the same `Reuse` as a local run: an unchanged file is reused before it is
sent (parsing stays on the workers), and what comes back is recorded under both its file and
its graded code, so a later run, here or local, reuses it. Grading errors come back with their
traceback, which goes to this machine's grading log.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from distributed.diagnostics.plugin import WorkerPlugin

from dropout_grader.build import build_id
from dropout_grader.notebook import NotebookError, read_notebook_bytes
from dropout_grader.own_modules import read_own_modules
from dropout_grader.pipeline import grading_error, ungradable
from dropout_grader.results import Submission, SubmissionResult
from dropout_grader.reuse import file_sha256

PLUGIN = "dropout-grader"
DISTRIBUTION = "dropout-grader"
SCHEMES = ("tcp", "tls")
IN_FLIGHT_PER_THREAD = 2  # notebooks sent per worker thread: one running, one waiting


class ClusterError(Exception):
    """The cluster cannot grade: a wrong address, unreachable, or workers without the grader.
    The message is one line."""


def check_address(address: str) -> str:
    """`tcp://HOST:PORT` (or tls://), said plainly when it is not."""
    try:
        parts = urlsplit(address if "://" in address else f"tcp://{address}")
        port = parts.port
    except ValueError as error:
        raise ClusterError(f"--scheduler {address!r}: {error}; expected tcp://HOST:PORT") from None
    if parts.scheme not in SCHEMES:
        raise ClusterError(f"--scheduler {address!r}: a Dask scheduler is reached with "
                           f"{' or '.join(s + '://' for s in SCHEMES)}, not {parts.scheme}://; expected tcp://HOST:PORT")
    if not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ClusterError(f"--scheduler {address!r}: expected tcp://HOST:PORT (the scheduler's port is "
                           "usually 8786)")
    return f"{parts.scheme}://{parts.netloc}"


class GraderPlugin(WorkerPlugin):
    """Made on each worker: a Grader (and its sandbox) for the run's rubric."""

    name = PLUGIN

    def __init__(self, rubric_text: str, isolation: str, version: str):
        self.rubric_text = rubric_text
        self.isolation = isolation
        self.version = version
        self.grader = None
        self.folder = None

    def setup(self, worker=None):
        from dropout_grader.pipeline import Grader
        from dropout_grader.rubric import load_rubric

        if self.version != build_id():
            raise RuntimeError(f"this worker has dropout-grader {build_id()}, the client {self.version}")
        self.folder = tempfile.mkdtemp(prefix="grader-worker-")
        path = Path(self.folder) / "rubric.yaml"
        path.write_text(self.rubric_text)
        self.grader = Grader(load_rubric(path), isolation=self.isolation)

    def teardown(self, worker=None):
        if self.grader is not None:
            self.grader.close()


def _worker_protections(dask_worker) -> list[dict]:
    """Run on each worker by Client.run (which passes the worker in)."""
    return dask_worker.plugins[PLUGIN].grader.protections


def grade_on_worker(student: str, path: str, data: bytes) -> dict:
    """A task: grade one notebook, sent as bytes, with this worker's Grader."""
    from distributed import get_worker

    plugin = get_worker().plugins[PLUGIN]
    local = Path(tempfile.mkdtemp(dir=plugin.folder)) / (Path(path).name or "notebook.ipynb")
    try:
        local.write_bytes(data)
        result = plugin.grader.grade(Submission(student, str(local)))
    finally:
        try:
            local.unlink()
            local.parent.rmdir()
        except OSError:
            pass
    result.path = path  # as the instructor named it, not the worker's copy
    return result.to_dict()


class DaskGrading:
    """Grade submissions on a cluster; results come back as they finish."""

    def __init__(self, address: str, rubric, isolation: str = "auto", gradebook=None, regrade: bool = False,
                 error_log: Path | None = None):
        from distributed import Client

        from dropout_grader.pipeline import ErrorLog
        from dropout_grader.reuse import Reuse

        address = check_address(address)
        try:
            self.client = Client(address, timeout="10s")
        except (OSError, TimeoutError) as error:
            raise ClusterError(f"cannot reach the Dask scheduler at {address}: {str(error).splitlines()[0]}") from None
        try:
            self._check_workers()
            self.client.register_plugin(GraderPlugin(Path(rubric.path).read_text(), isolation, build_id()),
                                        name=PLUGIN)
            reported = self.client.run(_worker_protections)
        except ClusterError:
            self.client.close()
            raise
        self.rubric = rubric
        self.reuse = Reuse(gradebook, rubric.sha256, build_id(rubric.assignment), regrade)
        self.errors = ErrorLog(error_log)
        self.max_score = sum(step.points for step in rubric.steps.values())
        self.protections = next(iter(reported.values()), [])

    def _check_workers(self) -> None:
        """Every worker has this package, at this build: said before anything is sent (a
        worker without it would fail to unpickle the plugin, with a traceback)."""
        workers = self.client.scheduler_info().get("workers", {})
        if not workers:
            raise ClusterError("the Dask scheduler has no workers; start some with "
                               "`dask worker tcp://HOST:PORT`")
        # `eval` travels by reference to the builtins, which every worker has; the expression
        # imports the grader there and raises ImportError where it is not installed.
        builds = self.client.run(eval, "__import__('dropout_grader.build', fromlist=['build_id']).build_id()",
                                 on_error="return")
        lacking = sorted(w for w, b in builds.items() if not isinstance(b, str))
        if lacking:
            raise ClusterError(f"{len(lacking)} Dask worker(s) cannot import the grader ({', '.join(lacking[:3])}"
                               f"{', ...' if len(lacking) > 3 else ''}: {type(builds[lacking[0]]).__name__}); "
                               f"install it on every worker: pip install '{DISTRIBUTION}[dask]'")
        other = sorted(w for w, b in builds.items() if b != build_id())
        if other:
            raise ClusterError(f"Dask worker(s) {', '.join(other[:3])} run grader build {builds[other[0]]}, "
                               f"this machine {build_id()}; install the same version everywhere")

    def run_result(self, results):
        from dropout_grader.pipeline import run_result

        return run_result(self.rubric, results, self.protections)

    def in_flight(self, jobs: int | None = None) -> int:
        """How many notebooks are sent and not yet back, at most: enough to keep every worker
        thread busy (IN_FLIGHT_PER_THREAD each), never the class (each carries its bytes)."""
        workers = self.client.scheduler_info().get("workers", {})
        threads = sum(int(w.get("nthreads", 1)) for w in workers.values())
        return max(1, jobs or 1, threads * IN_FLIGHT_PER_THREAD)

    def grade_as_completed(self, submissions: list[Submission], jobs: int | None = None
                           ) -> Iterator[tuple[int, SubmissionResult]]:
        """(index, result) as each notebook is done. Notebooks are read (and those unchanged
        reused) only as there is room among the `in_flight` ones, so a class of any size is
        never all in memory here or on the scheduler."""
        from distributed import as_completed

        limit = self.in_flight(jobs)
        done = as_completed()
        futures = {}
        queue = iter(enumerate(submissions))
        try:
            while True:
                for index, submission in queue:
                    found = self._send(index, submission, done, futures)
                    if found is not None:
                        yield index, found
                    if len(futures) >= limit:
                        break
                if not futures:
                    return
                future = next(done)
                index, file_sha, submission = futures.pop(future)
                if future.status == "error":  # the task failed on its worker (a lost worker, ...)
                    result = grading_error(submission, future.exception(), self.max_score)
                else:
                    result = SubmissionResult.from_dict(future.result())
                result = self.errors.record(result)
                self.reuse.remember(result, file_sha)
                yield index, result
        finally:  # Ctrl-C or an early stop: nothing more comes back, nothing more is recorded
            self.client.cancel(list(futures))

    def _send(self, index: int, submission: Submission, done, futures: dict) -> SubmissionResult | None:
        """Send one notebook to the cluster (added to `done` and `futures`), or its result when
        none is needed: unreadable here, or unchanged since the gradebook's last grading."""
        if submission.problem:  # decided here, where the file is: never sent
            return ungradable(submission, "unreadable", submission.problem, self.max_score)
        try:
            data = read_notebook_bytes(Path(submission.path))  # read once: hashed, then sent
        except NotebookError as error:
            return ungradable(submission, error.diagnosis, error.message, self.max_score)
        file_sha = file_sha256(data, read_own_modules(submission.path))
        known = self.reuse.known(submission.student, file_sha256=file_sha)
        if known is not None:
            return known
        future = self.client.submit(grade_on_worker, submission.student, submission.path, data,
                                    pure=False, key=f"grade-{index}-{os.urandom(4).hex()}")
        futures[future] = (index, file_sha, submission)
        done.add(future)
        return None

    def close(self) -> None:
        self.client.close()
