"""The single entry point every front end shares: notebook in, `SubmissionResult` out.

    with Grader(load_rubric()) as grader:
        result = grader.grade(Submission("ada", "submissions/ada.ipynb"))

Per submission: read the notebook, extract the graded functions, run each function in its
own sandboxed child on every probe, assess in this process, score. One child per function,
so that a crash or timeout in one is told apart from the other.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from dropout_grader.build import build_id
from dropout_grader.assess import (NOT_ASSESSED, RoleRun, decode_run, locate, merge_observations,
                           to_finding)
from dropout_grader.extract import Extraction, extract
from dropout_grader.notebook import NotebookError, read_code_cells
from dropout_grader.observations import NOTE, WRONG, Observation
from dropout_grader.own_modules import read_own_modules
from dropout_grader.results import GRADED, UNGRADABLE, Finding, RunResult, StepInfo, Submission, SubmissionResult
from dropout_grader.rubric import LoadedRubric
from dropout_grader.sandbox.protocol import ProtocolError, archive, encode_value, pack, unpack
from dropout_grader.errors import GradebookError
from dropout_grader.sandbox.runner import Sandbox, SandboxError, SandboxLimits

GRADER_NAME = "dropout-grader"


@dataclass(frozen=True)
class PreparedProbe:
    """A probe's inputs, built once per run and reused for every submission."""
    id: str
    seed: int
    keep_prob: float
    inputs: object  # the assignment's probe inputs (ProbeInputs for dropout)
    arguments: dict[str, list]  # role -> encoded argument specs
    arrays: dict[str, dict[str, np.ndarray]]  # role -> the arrays those specs name


class Grader:
    """Grades notebooks against one rubric with one warm sandbox. `isolation` is "auto",
    "bwrap" or "process" (see grader.sandbox.runner)."""

    def __init__(self, rubric: LoadedRubric, sandbox: Sandbox | None = None, isolation: str = "auto",
                 gradebook=None, regrade: bool = False):
        """`gradebook` (grader.gradebook.Gradebook) records every result as it is known and
        lets unchanged submissions be reused instead of graded again, unless `regrade`."""
        self.rubric = rubric
        self.gradebook = gradebook
        self.regrade = regrade
        limits = rubric.spec.limits
        self.sandbox = sandbox or Sandbox(SandboxLimits(
            cpu_seconds=limits.cpu_seconds, wall_seconds=limits.wall_seconds,
            memory_mb=limits.memory_mb, output_kb=limits.output_kb, result_mb=limits.result_mb),
            isolation=isolation, standins=str(rubric.assignment.STANDINS))
        self.probes = [self._prepare(p) for p in rubric.spec.probes]
        # Every job of a role sends the same probe inputs: archive them once for the run.
        self._inputs = {role: archive({k: v for p in self.probes for k, v in p.arrays[role].items()})
                        for role in rubric.roles}
        self.max_score = sum(step.points for step in rubric.steps.values())
        self.graded_names = {role: spec.name for role, spec in rubric.spec.functions.items()}
        self.protections = self._probe_protections()

    def _probe_protections(self) -> list[dict]:
        """What confines a child on this machine, learnt from one empty job."""
        header = {"limits": self._limits(), "standins": str(self.rubric.assignment.STANDINS),
                  "fragments": [], "calls": []}
        protections = [{"name": "rlimits", "active": True, "detail": "CPU, memory, file size, files, processes"}]
        if self.sandbox.isolation == "bwrap":
            protections.append({"name": "bubblewrap", "active": True, "detail": "namespaces, read-only view, no network"})
        elif self.sandbox.requested == "auto":  # wanted, but this machine cannot do it
            protections.append({"name": "bubblewrap", "active": False,
                                "detail": "not installed or no user namespaces here"})
        try:
            reply, _ = unpack(self.sandbox.run(pack(header, {})).result)
            protections += [p for p in reply.get("protections", []) if isinstance(p, dict)]
        except (SandboxError, ProtocolError) as error:
            raise SandboxError(f"the sandbox does not start: {error}") from None
        return protections

    def _prepare(self, probe) -> PreparedProbe:
        assignment = self.rubric.assignment
        inputs = assignment.make_probe(probe.seed, probe.layers, probe.examples, probe.keep_prob)
        arguments, arrays = {}, {}
        for role in self.rubric.roles:
            arrays[role] = {}
            arguments[role] = [encode_value(a, arrays[role], f"{probe.id}/{role}/{i}")
                               for i, a in enumerate(assignment.call_arguments(role, inputs))]
        return PreparedProbe(probe.id, probe.seed, probe.keep_prob, inputs, arguments, arrays)

    @property
    def seeds(self) -> dict[str, int]:
        return {p.id: p.seed for p in self.probes}

    def close(self) -> None:
        self.sandbox.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- one submission --------------------------------------------------------------------
    def grade(self, submission: Submission) -> SubmissionResult:
        """Grade one notebook (or reuse its unchanged result from the gradebook). Never raises
        for one notebook's sake: a failure of the grader itself becomes that notebook's finding,
        and the rest of the class is graded."""
        try:
            return self._grade(submission)
        except (GradebookError, SandboxError):
            raise  # the machine's problem, not this notebook's: stop and say so
        except Exception as error:  # noqa: BLE001 - a bug of ours must not lose the class
            return ungradable(submission, "unreadable", f"the grader failed on this notebook "
                              f"({type(error).__name__}: {error}); please report it", self.max_score)

    def _grade(self, submission: Submission) -> SubmissionResult:
        started = time.monotonic()
        if submission.problem:
            return self._ungradable(submission, "unreadable", submission.problem, started)
        file_sha = _file_sha256(submission.path) if self.gradebook is not None else None
        known = self._known(submission, file_sha256=file_sha)  # the very same file: not even parsed
        if known is not None:
            return known
        try:
            cells = read_code_cells(Path(submission.path))
        except NotebookError as error:
            diagnosis, message = error.diagnosis, error.message
            return self._remember(submission, file_sha, file_sha or "",
                                  lambda: self._ungradable(submission, diagnosis, message, started))
        extraction = extract(cells, self.graded_names)
        code_sha = code_sha256(extraction, self.graded_names)
        return self._known(submission, code_sha256=code_sha) or self._remember(
            submission, file_sha, code_sha, lambda: self._grade_extracted(submission, cells, extraction, started))

    def _known(self, submission: Submission, **sha) -> SubmissionResult | None:
        """The gradebook's result for an unchanged file or unchanged graded code, if any."""
        if self.gradebook is None or self.regrade or not any(sha.values()):
            return None
        known = self.gradebook.lookup(submission.student, submission.path, self.rubric.sha256, build_id(), **sha)
        return replace(known, reused=True) if known is not None else None

    def _remember(self, submission: Submission, file_sha: str | None, code_sha: str, grade) -> SubmissionResult:
        """Grade, and record the result in the gradebook the moment it is known."""
        result = replace(grade(), code_sha256=code_sha, graded_at=_now())
        if self.gradebook is not None:
            self.gradebook.record(result, code_sha, self.rubric.sha256, build_id(), file_sha256=file_sha)
        return result

    def _grade_extracted(self, submission, cells, extraction: Extraction, started: float) -> SubmissionResult:
        if not extraction.functions and not extraction.syntax_errors:
            names = " or ".join(self.graded_names.values())
            return self._ungradable(submission, "no_code", f"no definition of {names} was found in "
                                    f"the notebook's {len(cells)} code cells", started)
        findings: list[Finding] = []
        output: list[str] = []
        modules = read_own_modules(submission.path)  # the student's own .py files beside it
        for role in self.rubric.roles:
            findings += self._grade_function(role, extraction, output, modules)
        lines = {cell.index: cell.source.splitlines() for cell in cells}
        findings = [_with_code(f, lines) for f in findings]
        shown = {f.cell for f in findings if f.cell is not None and f.verdict != "ok"}
        score = sum(f.points for f in findings)
        return SubmissionResult(student=submission.student, path=submission.path, status=GRADED,
                                score=round(score, 4), max_score=self.max_score, findings=findings,
                                output="".join(output), seconds=round(time.monotonic() - started, 3),
                                sources={c.index: c.source for c in cells if c.index in shown})

    def _ungradable(self, submission, diagnosis, message, started) -> SubmissionResult:
        return ungradable(submission, diagnosis, message, self.max_score, time.monotonic() - started)

    def _grade_function(self, role: str, extraction: Extraction, output: list[str],
                        modules: dict[str, str] | None = None) -> list[Finding]:
        steps = self.rubric.function_steps(role)
        function_step = f"{role}.function"
        name = self.rubric.spec.functions[role].name
        function = extraction.functions.get(role)
        if function is None:
            problem = extraction.syntax_errors.get(role)
            if problem is not None:
                outcome = Observation(function_step, WRONG, "error", {
                    "function": name,
                    "error": f"cannot be read: its cell does not parse ({problem.message}, "
                             f"cell {problem.cell + 1}, line {problem.line})"}, value=(problem.cell, problem.line))
            else:
                outcome = Observation(function_step, WRONG, "not_found", {"function": name})
            return self._unassessed(role, outcome, steps, extraction, None)
        try:
            run = self.run_function(role, extraction, modules)
        except SandboxError as error:
            outcome = Observation(function_step, WRONG, "error", {
                "function": name,
                "error": f"could not be run: the grader's sandbox failed ({error}); grade this notebook again"})
            return self._unassessed(role, outcome, steps, extraction, function)
        if run.output:
            output.append(run.output)
        if run.outcome.verdict == WRONG and not (run.outcome.diagnosis == "error" and run.assessable):
            return self._unassessed(role, run.outcome, steps, extraction, function)
        return self._assess(run, steps, extraction)

    def run_function(self, role: str, extraction: Extraction, modules: dict[str, str] | None = None) -> RoleRun:
        """Run one extracted function on every probe in a sandboxed child and check what came
        back (raises SandboxError if the sandbox itself fails)."""
        child = self.sandbox.run(self._job(role, extraction, modules))
        return decode_run(role, extraction.functions[role], child, self.rubric, extraction)

    def _job(self, role: str, extraction: Extraction, modules: dict[str, str] | None = None) -> bytes:
        function = self.rubric.spec.functions[role]
        calls = [{"role": role, "probe": probe.id, "function": function.name, "seed": probe.seed,
                  "args": probe.arguments[role]} for probe in self.probes]
        if role in getattr(self.rubric.assignment, "STREAM_CHECK_ROLES", ()):
            # The first probe once more with every random stream keyed differently: what the
            # student drew must change with it (the assignment compares the two runs).
            calls.append(dict(calls[0], stream_key=calls[0]["seed"] * 7919 + 1))
        header = {
            "limits": self._limits(),
            "standins": str(self.rubric.assignment.STANDINS),
            "fragments": [{"source": f.source, "kind": f.kind} for f in extraction.fragments],
            "calls": calls,
            "trace": True,
            "modules": modules or {},
        }
        return pack(header, self._inputs[role])

    def _limits(self) -> dict:
        limits = self.rubric.spec.limits
        return {"cpu_seconds": limits.cpu_seconds, "memory_mb": limits.memory_mb, "result_mb": limits.result_mb}

    def _assess(self, run: RoleRun, steps: list[str], extraction: Extraction) -> list[Finding]:
        probes = {p.id: p for p in self.probes}
        per_probe = []
        for call in run.assessable:
            probe = probes[call.probe]
            observations = self.rubric.assignment.diagnose(run.role, probe.inputs, call, self.rubric.spec.tolerance)
            per_probe.append((call, observations))
        merged = merge_observations([s for s in steps if s != f"{run.role}.function"], per_probe)
        findings = [to_finding(run.outcome, self.rubric, locate(run.outcome, None, extraction, run.function), {})]
        for step in steps:
            if step == f"{run.role}.function":
                continue
            obs, call = merged[step]
            probe = probes.get(call.probe) if call else None
            facts = {"probe": probe.id, "keep_prob": probe.keep_prob} if probe else {}
            facts.update(self.rubric.assignment.student_names(run.role, run.function.parameters))
            findings.append(to_finding(obs, self.rubric, locate(obs, call, extraction, run.function), facts))
        return findings

    def _unassessed(self, role, outcome: Observation, steps, extraction, function) -> list[Finding]:
        """The function could not be graded: one wrong finding, and no points for its steps."""
        findings = [to_finding(outcome, self.rubric, locate(outcome, None, extraction, function), {})]
        name = self.rubric.spec.functions[role].name
        for step in steps:
            if step == f"{role}.function":
                continue
            obs = Observation(step, NOTE, NOT_ASSESSED, {
                "detail": f"{name} could not be graded (see {role}.function)"})
            findings.append(to_finding(obs, self.rubric, (None, None), {}))
        return findings

    # --- many submissions ------------------------------------------------------------------
    def grade_all(self, submissions: Iterable[Submission], jobs: int | None = None) -> Iterator[SubmissionResult]:
        """Grade with `jobs` children at once; results come in the order of `submissions`."""
        submissions = list(submissions)
        done = dict(self.grade_as_completed(submissions, jobs))
        yield from (done[i] for i in range(len(submissions)))

    def grade_as_completed(self, submissions: list[Submission], jobs: int | None = None
                           ) -> Iterator[tuple[int, SubmissionResult]]:
        """(index, result) pairs as each submission finishes, so a caller can record each one
        at once. If the caller stops early (Ctrl-C), queued work is cancelled."""
        jobs = max(1, jobs or os.cpu_count() or 1)
        pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="grade")
        try:
            futures = {pool.submit(self.grade, s): i for i, s in enumerate(submissions)}
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def run_result(self, results: list[SubmissionResult]) -> RunResult:
        return run_result(self.rubric, results, self.protections)


def ungradable(submission: Submission, diagnosis: str, message: str, max_score: float,
               seconds: float = 0.0) -> SubmissionResult:
    """A file that cannot be graded: one `notebook` finding, no points."""
    finding = Finding(step="notebook", verdict=WRONG, diagnosis=diagnosis, points=0.0, max_points=0.0,
                      message=message)
    return SubmissionResult(student=submission.student, path=submission.path, status=UNGRADABLE, score=0.0,
                            max_score=max_score, findings=[finding], seconds=round(seconds, 3))


def run_result(rubric: LoadedRubric, results: list[SubmissionResult], protections: list[dict]) -> RunResult:
    """The whole run as reports see it: results plus what they need to know of the rubric."""
    visibility = rubric.spec.visibility
    steps = [StepInfo(step_id, step.title.replace("{layer}", step_id.split("layer")[-1][:1]),
                      step.points, step.visible) for step_id, step in rubric.steps.items()]
    return RunResult(grader_name=GRADER_NAME, grader_version=build_id(), rubric_id=rubric.id,
                     rubric_sha256=rubric.sha256, seeds={p.id: p.seed for p in rubric.spec.probes},
                     submissions=results, protections=protections, steps=steps, rubric_title=rubric.spec.title,
                     show_output=visibility.show_output, show_code=visibility.show_code,
                     gradescope_visibility=visibility.gradescope)


def code_sha256(extraction: Extraction, graded_names: dict[str, str]) -> str:
    """What grading depends on in a notebook: the kept statements (not outputs, not other cells)."""
    digest = hashlib.sha256(json.dumps(sorted(graded_names.items())).encode())
    for fragment in extraction.fragments:
        digest.update(f"\0{fragment.kind}\0{fragment.cell}\0{fragment.first_line}\0".encode())
        digest.update(fragment.source.encode())
    for role, problem in sorted(extraction.syntax_errors.items()):
        digest.update(f"\0syntax\0{role}\0{problem.cell}\0{problem.line}\0{problem.message}".encode())
    for role, function in sorted(extraction.functions.items()):
        digest.update(f"\0defs\0{role}\0{function.definitions}".encode())
    return digest.hexdigest()


def _file_sha256(path: str, data: bytes | None = None) -> str:
    """The file's identity for the gradebook (of `data` if already read)."""
    digest = hashlib.sha256(b"file\0")
    if data is not None:
        digest.update(data)
        return digest.hexdigest()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as error:
        digest.update(str(error).encode())
    return digest.hexdigest()


def _now() -> str:
    """The grading's time, to the second, as reports print it."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _with_code(finding: Finding, sources: dict[int, list[str]]) -> Finding:
    lines = sources.get(finding.cell) if finding.cell is not None else None
    if lines and finding.line is not None and 1 <= finding.line <= len(lines):
        return replace(finding, code=lines[finding.line - 1].rstrip()[:300])
    return finding
