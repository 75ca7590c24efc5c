"""Scale-out: send grading to a Dask distributed cluster (`grade ... --scheduler tcp://HOST:PORT`).

Every worker runs its own `Grader`, with the same zygote and sandboxed children as a local
run, made once per worker by a WorkerPlugin from the rubric's text. Workers need not share
the submitting machine's files: each task carries the notebook's bytes, and what comes back is
the plain result dict; the submitting machine records it in its gradebook and writes the
reports. Workers need this package installed (same version), like any Dask dependency.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin

from dropout_grader.build import build_id
from dropout_grader.results import Submission, SubmissionResult

PLUGIN = "dropout-grader"


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

    def __init__(self, address: str, rubric, isolation: str = "auto", gradebook=None, regrade: bool = False):
        from distributed import Client

        self.client = Client(address, timeout="10s")
        self.rubric = rubric
        self.gradebook = gradebook
        self.regrade = regrade
        self.client.register_plugin(GraderPlugin(Path(rubric.path).read_text(), isolation, build_id()), name=PLUGIN)
        self.max_score = sum(step.points for step in rubric.steps.values())
        reported = self.client.run(_worker_protections)
        self.protections = next(iter(reported.values()), [])

    def run_result(self, results):
        from dropout_grader.pipeline import run_result

        return run_result(self.rubric, results, self.protections)

    def grade_as_completed(self, submissions: list[Submission], jobs: int | None = None
                           ) -> Iterator[tuple[int, SubmissionResult]]:
        from distributed import as_completed

        from dropout_grader.pipeline import _file_sha256, ungradable

        futures = {}
        for index, submission in enumerate(submissions):
            if submission.problem:  # decided here, where the file is: never sent
                yield index, ungradable(submission, "unreadable", submission.problem, self.max_score)
                continue
            try:
                data = Path(submission.path).read_bytes()  # read once: hashed, then sent
            except OSError as error:
                yield index, ungradable(submission, "unreadable", f"cannot open the file ({error.strerror})",
                                        self.max_score)
                continue
            file_sha = _file_sha256(submission.path, data)
            known = None
            if self.gradebook is not None and not self.regrade:
                known = self.gradebook.lookup(submission.student, submission.path, self.rubric.sha256,
                                              build_id(self.rubric.assignment), file_sha256=file_sha)
            if known is not None:
                known.reused = True
                yield index, known
                continue
            future = self.client.submit(grade_on_worker, submission.student, submission.path, data,
                                        pure=False, key=f"grade-{index}-{os.urandom(4).hex()}")
            futures[future] = (index, file_sha)
        for future in as_completed(futures):
            index, file_sha = futures[future]
            result = SubmissionResult.from_dict(future.result())
            if self.gradebook is not None:
                self.gradebook.record(result, result.code_sha256, self.rubric.sha256, build_id(self.rubric.assignment),
                                      file_sha256=file_sha)
            yield index, result

    def close(self) -> None:
        self.client.close()
