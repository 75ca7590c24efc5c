"""Several assignments graded in one pass: a course rubric names the rubrics of a notebook's
exercises, and every notebook is graded on each of them, into one result per student.

    # rubrics/regularization.yaml
    id: regularization-c2w1
    title: Regularization (inverted dropout and L2 regularization)
    parts: [dropout.yaml, l2.yaml]        # paths relative to this file

Each part keeps its own assignment, probes, limits and sandbox; results are merged in part
order (scores and maxima add up; step ids do not collide because every assignment but the
first-class dropout one reports under its own namespace, e.g. `l2.cost.penalty.scale`).
A plain rubric file is a course of one part.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dropout_grader.assignment import qualified
from dropout_grader.errors import GradebookError, GradingError
from dropout_grader.notebook import NotebookError, read_notebook_bytes
from dropout_grader.own_modules import read_own_modules
from dropout_grader.reuse import Reuse, file_sha256
from dropout_grader.results import GRADED, GRADING_ERROR, RunResult, Submission, SubmissionResult
from dropout_grader.rubric import LoadedRubric, RubricError, load_rubric
from dropout_grader.sandbox.runner import Sandbox


class CourseSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    title: str
    parts: list[str] = Field(min_length=1, description="rubric files, relative to this one")


@dataclass(frozen=True)
class Course:
    id: str
    title: str
    sha256: str  # of the course file and every part's rubric
    parts: tuple[LoadedRubric, ...]


def load_course(path: Path | str) -> Course:
    """A course rubric (`parts:`), or a plain rubric as a course of one part."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_bytes())
    except OSError as exc:
        raise RubricError(f"rubric {path}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError:
        data = None  # load_rubric says where the YAML is wrong
    if not (isinstance(data, dict) and "parts" in data):
        rubric = load_rubric(path)
        return Course(rubric.id, rubric.spec.title, rubric.sha256, (rubric,))
    try:
        spec = CourseSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise RubricError(f"rubric {path}: {'.'.join(str(p) for p in first['loc']) or '(top level)'}: "
                          f"{first['msg']}") from None
    parts = tuple(load_rubric(path.parent / part) for part in spec.parts)
    names = [p.assignment.name for p in parts]
    if len(set(names)) != len(names):
        raise RubricError(f"rubric {path}: parts: each assignment may appear once ({', '.join(names)})")
    digest = hashlib.sha256(path.read_bytes())
    for part in parts:
        digest.update(part.sha256.encode())
    return Course(spec.id, spec.title, digest.hexdigest(), parts)


def merge_results(submission: Submission, results: list[SubmissionResult], parts: tuple[LoadedRubric, ...]
                  ) -> SubmissionResult:
    """One student's results on every part, as one result. A part that found nothing of its
    own to grade in a notebook the others could grade is that part's zero, not the notebook's
    (its `notebook` finding is reported under the part's namespace)."""
    failed = next((r for r in results if r.status == GRADING_ERROR), None)
    if failed is not None:  # the grader failed on one part: the whole is a grading error, never stored
        return replace(failed, max_score=sum(r.max_score for r in results))
    graded = [r for r in results if r.status == GRADED]
    if not graded:
        first = results[0]
        return replace(first, max_score=sum(r.max_score for r in results))
    findings = []
    for result, part in zip(results, parts):
        if result.status == GRADED:
            findings += result.findings
        else:
            findings += [replace(f, step=qualified(part.assignment, f.step)) for f in result.findings]
    digest = hashlib.sha256()
    for r in results:
        digest.update(r.code_sha256.encode() + b"\0")
    return SubmissionResult(
        student=submission.student, path=submission.path, status=GRADED,
        score=round(sum(r.score for r in results), 4), max_score=sum(r.max_score for r in results),
        findings=findings, output="".join(r.output for r in results),
        seconds=round(sum(r.seconds for r in results), 3),
        sources={k: v for r in results for k, v in r.sources.items()},
        code_sha256=digest.hexdigest(), reused=all(r.reused for r in results),
        graded_at=max(r.graded_at for r in results))  # the time format sorts as it reads


class CourseGrader:
    """The Grader interface (grade, grade_all, grade_as_completed, run_result) over several
    parts: one Grader, with its own sandbox, per part; results merged per student. The
    gradebook keeps the merged result (what every report shows), keyed on the notebook's
    content, the course file and every part's build; the parts keep nothing of their own."""

    def __init__(self, course: Course, isolation: str = "auto", gradebook=None, regrade: bool = False,
                 error_log: Path | None = None, sandbox: Sandbox | None = None):
        """`sandbox`: one already started for this course (start_sandbox), which the caller
        closes; else the course starts its own."""
        from dropout_grader.pipeline import Grader

        self.course = course
        self.parts = []
        self._pools: list[ThreadPoolExecutor] = []
        self.gradebook = gradebook
        self._owns_sandbox = sandbox is None
        self.sandbox = sandbox
        try:
            if self.sandbox is None:
                self.sandbox = start_sandbox(course, isolation)
            for rubric in course.parts:
                self.parts.append(Grader(rubric, sandbox=self.sandbox, isolation=isolation, error_log=error_log))
        except BaseException:
            self.close()
            raise
        self.max_score = sum(p.max_score for p in self.parts)
        self.build = _combined_version([part.build for part in self.parts])
        self.reuse = Reuse(gradebook, course.sha256, self.build, regrade)

    @property
    def protections(self) -> list[dict]:
        return self.parts[0].protections

    def grade(self, submission: Submission) -> SubmissionResult:
        """The merged result, or the gradebook's for the very same notebook (and helper modules)."""
        file_sha = read = None
        if not submission.problem:
            try:
                read = read_notebook_bytes(Path(submission.path)), read_own_modules(submission.path)
            except NotebookError:
                read = None  # each part says why it cannot read it
        if self.gradebook is not None and read is not None:
            file_sha = file_sha256(*read)
            known = self.reuse.known(submission.student, file_sha256=file_sha)
            if known is not None:
                return known
        for part in self.parts:
            part.protections  # noqa: B018 - a sandbox that does not start fails the run, not this notebook
        results = self._grade_parts(submission, read)
        merged = merge_results(submission, results, self.course.parts)
        if self.sandbox is not None:  # the parts ran together, each timed from the same start
            merged = replace(merged, seconds=max(r.seconds for r in results))
        if not any(part.stopping for part in self.parts):  # an interrupted run stores nothing
            self.reuse.remember(merged, file_sha)
        return merged

    def _grade_parts(self, submission: Submission, read: tuple[bytes, dict[str, str]] | None
                     ) -> list[SubmissionResult]:
        """Every part's result: the notebook read once (`read`: its bytes and the student's
        modules, when readable), and the parts sharing a sandbox run in one child (each part's
        Grader.grade otherwise)."""
        from dropout_grader.pipeline import Plan, grading_error

        if self.sandbox is None:
            return [part.grade(submission) for part in self.parts]
        first = self.parts[0]
        started = time.monotonic()
        try:
            notebook = first.load(submission, started, read)
            if isinstance(notebook, SubmissionResult):
                # Unreadable for one part is unreadable for all (the parts keep no gradebook).
                return [replace(notebook, max_score=part.max_score) for part in self.parts]
            plans = [part.plan(submission, notebook, started) for part in self.parts]
            runnable = [p for p in plans if isinstance(p, Plan)]
            if runnable:
                first.run_plans(runnable)
            return [p if isinstance(p, SubmissionResult) else p.grader.remember(p.grader.result(p), None)
                    for p in plans]
        except GradebookError:
            raise
        except GradingError as error:
            return [first.errors.record(grading_error(submission, error, part.max_score, started))
                    for part in self.parts]
        # As Grader.grade: a bug of ours meets a submission here, and becomes a grading error.
        except Exception as error:  # noqa: BLE001
            return [first.errors.record(grading_error(submission, error, part.max_score, started))
                    for part in self.parts]

    def grade_all(self, submissions: Iterable[Submission], jobs: int | None = None) -> Iterator[SubmissionResult]:
        """As Grader.grade_all (which needs only grade_as_completed): results in order."""
        from dropout_grader.pipeline import Grader

        return Grader.grade_all(self, submissions, jobs)

    def grade_as_completed(self, submissions: list[Submission], jobs: int | None = None
                           ) -> Iterator[tuple[int, SubmissionResult]]:
        """As Grader.grade_as_completed; an early stop stops every part."""
        from dropout_grader.pipeline import grade_concurrently

        yield from grade_concurrently(self.grade, submissions, jobs, self._pools, self._stop_parts)

    def _stop_parts(self) -> None:
        for part in self.parts:
            part.stop()
        if self.sandbox is not None:
            self.sandbox.close()  # the parts do not own it

    def run_result(self, results: list[SubmissionResult]) -> RunResult:
        runs = [part.run_result([]) for part in self.parts]
        first = runs[0]
        return replace(first, rubric_id=self.course.id, rubric_sha256=self.course.sha256,
                       rubric_title=self.course.title, submissions=results,
                       seeds={k: v for run in runs for k, v in run.seeds.items()},
                       steps=[step for run in runs for step in run.steps],
                       grader_version=self.build)

    def close(self) -> None:
        self._stop_parts()  # first, so no thread of ours stores a result after this
        for pool in self._pools:
            pool.shutdown(wait=True, cancel_futures=True)
        for part in self.parts:
            part.close()
        if self.sandbox is not None and self._owns_sandbox:
            self.sandbox.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def start_sandbox(course: Course, isolation: str = "auto") -> Sandbox | None:
    """The one sandbox every part of the course shares (one child per notebook runs them all),
    started now: its interpreter boots in a process of its own while the caller goes on. None
    when the parts need sandboxes of their own (other limits or stand-ins)."""
    from dropout_grader.pipeline import sandbox_limits

    if len(course.parts) > 1 and not _one_sandbox_fits(course.parts):
        return None
    first = course.parts[0]
    return Sandbox(sandbox_limits(first), isolation=isolation, standins=str(first.assignment.standins))


def _one_sandbox_fits(parts: tuple[LoadedRubric, ...]) -> bool:
    """Parts with the same limits and stand-ins can share one sandbox (and one child)."""
    from dropout_grader.pipeline import sandbox_limits

    return len({(repr(sandbox_limits(p)), str(p.assignment.standins)) for p in parts}) == 1


def _combined_version(builds: list[str]) -> str:
    """`0.1.0+<digest>` of every part's build: any part's grading code changed, a new build."""
    version, _, _ = builds[0].partition("+")
    return f"{version}+{hashlib.sha256(' '.join(builds).encode()).hexdigest()[:12]}"

