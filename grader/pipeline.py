"""The single entry point every front end shares: notebook in, `SubmissionResult` out.

    with Grader(load_rubric()) as grader:
        result = grader.grade(Submission("ada", "submissions/ada.ipynb"))

Per submission: read the notebook, extract the graded functions, run them in one sandboxed
child on every probe (grader/plan.py: a function that crashes its child is still told apart
from the others, and lines are traced only for wrong steps), assess in this process, score.

Three outcomes (DESIGN.md §2): a graded result (findings), an ungradable one, or a grading
error when the grader or its sandbox failed, or the run was interrupted. Grading errors are
never recorded in the gradebook; their tracebacks go to the grading log.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import traceback
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from dropout_grader.assignment import qualified
from dropout_grader.build import build_id
from dropout_grader.assess import (NOT_ASSESSED, RoleRun, decode_run, locate, merge_observations,
                           to_finding)
from dropout_grader.errors import GradebookError, GradingError, GradingInterrupted
from dropout_grader.extract import Extraction, ParsedCells, extract, parse_cells
from dropout_grader.ipython_worker import BoundedTransformer
from dropout_grader.notebook import Cell, NotebookError, parse_code_cells, read_notebook_bytes
from dropout_grader.observations import NOTE, OK, WRONG, Observation
from dropout_grader.own_modules import read_own_modules
from dropout_grader.results import (GRADED, GRADING_ERROR, UNGRADABLE, Finding, RunResult, StepInfo, Submission,
                                    SubmissionResult)
from dropout_grader.reuse import Reuse, file_sha256
from dropout_grader.rubric import LoadedRubric
from dropout_grader.plan import Plan, run_plans
from dropout_grader.sandbox.batch import Section, SectionRun, probe_protections, run_sections
from dropout_grader.sandbox.protocol import ProtocolError, archive, encode_value
from dropout_grader.sandbox.runner import Sandbox, SandboxError, SandboxLimits

GRADER_NAME = "dropout-grader"


@dataclass(frozen=True)
class Notebook:
    """A notebook read and parsed, shared by every rubric it is graded on."""
    cells: list[Cell]
    modules: dict[str, str]  # the student's own helper modules beside it
    file_sha: str | None  # what the gradebook keys the very same file on (None: no gradebook)
    parsed: ParsedCells  # its code cells parsed, once for every rubric


def sandbox_limits(rubric: LoadedRubric) -> SandboxLimits:
    limits = rubric.spec.limits
    return SandboxLimits(cpu_seconds=limits.cpu_seconds, wall_seconds=limits.wall_seconds,
                         memory_mb=limits.memory_mb, output_kb=limits.output_kb, result_mb=limits.result_mb)


@dataclass(frozen=True)
class PreparedProbe:
    """A probe's inputs, built once per run and reused for every submission."""
    id: str
    seed: int
    facts: dict  # what every message about this probe may say of it (the assignment's probe_facts)
    inputs: object  # the assignment's probe inputs
    arguments: dict[str, list]  # role -> encoded argument specs
    arrays: dict[str, dict[str, np.ndarray]]  # role -> the arrays those specs name


class Grader:
    """Grades notebooks against one rubric with one warm sandbox. `isolation` is "auto",
    "bwrap" or "process" (see grader.sandbox.runner)."""

    def __init__(self, rubric: LoadedRubric, sandbox: Sandbox | None = None, isolation: str = "auto",
                 gradebook=None, regrade: bool = False, error_log: Path | None = None):
        """`gradebook` (grader.gradebook.Gradebook) records every result as it is known and
        lets unchanged submissions be reused instead of graded again, unless `regrade`.
        `error_log`: where the tracebacks of grading errors are appended (None: they stay on
        the results, for the caller to log)."""
        self.rubric = rubric
        self.build = build_id(rubric.assignment)  # what the gradebook keys reuse on
        self.gradebook = gradebook
        self.regrade = regrade
        self.reuse = Reuse(gradebook, rubric.sha256, self.build, regrade)
        self.errors = ErrorLog(error_log)
        self._stopping = threading.Event()  # set by stop(): in-flight work is abandoned, not stored
        self._pools: list[ThreadPoolExecutor] = []
        self.transformer = BoundedTransformer()
        limits = rubric.spec.limits
        self.owns_sandbox = sandbox is None
        self.sandbox = sandbox or Sandbox(sandbox_limits(rubric), isolation=isolation,
                                          standins=str(rubric.assignment.standins))
        self.probes = [self._prepare(p) for p in rubric.probes]
        # Every job of a role sends the same probe inputs: archive them once for the run.
        self._inputs = {role: archive({k: v for p in self.probes for k, v in p.arrays[role].items()})
                        for role in rubric.roles}
        self.max_score = sum(step.points for step in rubric.steps.values())
        self.graded_names = {role: spec.name for role, spec in rubric.spec.functions.items()}
        # Learnt on a thread of its own: the zygote boots (numpy, the confinement made once)
        # while the caller goes on reading notebooks; the first grading waits for it.
        self._protections = InBackground(self._probe_protections, name="sandbox-check")

    @property
    def protections(self) -> list[dict]:
        """What confines a child here (raises SandboxError when the sandbox does not start)."""
        return self._protections.result()

    def _probe_protections(self) -> list[dict]:
        """What confines a child on this machine, learnt from one empty job."""
        protections = [{"name": "rlimits", "active": True, "detail": "CPU, memory, file size, files, processes"}]
        if self.sandbox.isolation == "bwrap":
            protections.append({"name": "bubblewrap", "active": True, "detail": "namespaces, read-only view, no network"})
        elif self.sandbox.requested == "auto":  # wanted, but this machine cannot do it
            protections.append({"name": "bubblewrap", "active": False,
                                "detail": "not installed or no user namespaces here"})
        try:
            return protections + probe_protections(self.sandbox, self.common_header({}))
        except (SandboxError, ProtocolError) as error:
            raise SandboxError(f"the sandbox does not start: {error}") from None

    def _prepare(self, probe) -> PreparedProbe:
        assignment = self.rubric.assignment
        inputs = assignment.make_probe(probe)
        arguments, arrays = {}, {}
        for role in self.rubric.roles:
            arrays[role] = {}
            arguments[role] = [encode_value(a, arrays[role], f"{probe.id}/{role}/{i}")
                               for i, a in enumerate(assignment.call_arguments(role, inputs))]
        return PreparedProbe(probe.id, probe.seed, assignment.probe_facts(probe), inputs, arguments, arrays)

    @property
    def seeds(self) -> dict[str, int]:
        return {p.id: p.seed for p in self.probes}

    @property
    def stopping(self) -> bool:
        """The run is being abandoned (stop() or an early end): nothing more may be stored."""
        return self._stopping.is_set()

    def stop(self) -> None:
        """Abandon the run (Ctrl-C): nothing graded from now on is stored, in-flight children
        are killed, and what they were grading becomes a grading error. The flag is set before
        any child is killed, so a child killed by the grader is never read as the student's.
        A sandbox shared with others is closed too: the whole run is being abandoned."""
        self._stopping.set()
        self.sandbox.close()

    def close(self) -> None:
        self._stopping.set()
        if self.owns_sandbox:
            self.sandbox.close()
        for pool in self._pools:  # every grading thread has ended: nothing writes after close
            pool.shutdown(wait=True, cancel_futures=True)
        self.transformer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- one submission --------------------------------------------------------------------
    def grade(self, submission: Submission) -> SubmissionResult:
        """Grade one notebook (or reuse its unchanged result from the gradebook). Never raises
        for one notebook's sake: a failure of the grader itself becomes that notebook's grading
        error (not a finding, not stored), and the rest of the class is graded. A gradebook that
        cannot be written stops the run (GradebookError)."""
        self._protections.result()  # a sandbox that does not start fails the run, not this notebook
        started = time.monotonic()
        try:
            return self._grade(submission, started)
        except GradebookError:
            raise  # the machine's problem, not this notebook's: stop and say so
        except GradingError as error:
            return self.errors.record(grading_error(submission, error, self.max_score, started))
        # The one boundary where a bug of ours meets a submission: it becomes a grading error,
        # logged with its traceback, never a finding charged to the student and never stored.
        except Exception as error:  # noqa: BLE001
            return self.errors.record(grading_error(submission, error, self.max_score, started))

    def _grade(self, submission: Submission, started: float) -> SubmissionResult:
        loaded = self.load(submission, started)
        if isinstance(loaded, SubmissionResult):
            return loaded
        plan = self.plan(submission, loaded, started)
        if isinstance(plan, SubmissionResult):
            return plan
        self.run_plans([plan])
        return self.remember(self.result(plan), plan.file_sha)

    def load(self, submission: Submission, started: float, read: tuple[bytes, dict[str, str]] | None = None
             ) -> Notebook | SubmissionResult:
        """The notebook's code cells and the student's own modules, or a result without running
        anything: reused (the very same file), or ungradable (recorded). `read`: the notebook's
        bytes and modules when the caller has read them already."""
        self._check_running()
        if submission.problem:
            return self._ungradable(submission, "unreadable", submission.problem, started)
        if read is None:
            try:
                read = read_notebook_bytes(Path(submission.path)), read_own_modules(submission.path)
            except NotebookError as error:  # not a file we may read: nothing to key a reuse on
                return self._ungradable(submission, error.diagnosis, error.message, started)
        data, modules = read  # modules: the student's own .py files beside it
        file_sha = file_sha256(data, modules) if self.gradebook is not None else None
        known = self.reuse.known(submission.student, file_sha256=file_sha)  # the very same file: not parsed
        if known is not None:
            return known
        try:
            cells = parse_code_cells(data, submission.path)
        except NotebookError as error:
            return self.remember(replace(self._ungradable(submission, error.diagnosis, error.message, started),
                                          code_sha256=file_sha or ""), file_sha)
        return Notebook(cells, modules, file_sha, parse_cells(cells, self.transformer))

    def plan(self, submission: Submission, notebook: Notebook, started: float) -> Plan | SubmissionResult:
        """What to run of this notebook, or its result when nothing needs to run: reused (the
        same graded code), or ungradable (none of the graded functions is there)."""
        extraction = extract(notebook.cells, self.graded_names, parsed=notebook.parsed)
        code_sha = code_sha256(extraction, self.graded_names, notebook.modules)
        known = self.reuse.known(submission.student, code_sha256=code_sha)
        if known is not None:
            return known
        if not extraction.functions and not extraction.syntax_errors:
            names = " or ".join(self.graded_names.values())
            result = self._ungradable(submission, "no_code", f"no definition of {names} was found in "
                                      f"the notebook's {len(notebook.cells)} code cells", started)
            return self.remember(replace(result, code_sha256=code_sha), notebook.file_sha)
        roles = [role for role in self.rubric.roles if role in extraction.functions]
        return Plan(self, submission, started, notebook.cells, extraction, notebook.modules, code_sha,
                    notebook.file_sha, roles)

    def run_plans(self, plans: list[Plan]) -> None:
        """Run plans of one notebook (this rubric's, and other rubrics' sharing this sandbox)."""
        self._check_running()
        try:
            run_plans(self.sandbox, plans, self._stopping.is_set)
        except SandboxError as error:  # the sandbox failed, not the student's code
            self._check_running()  # (it failed because the run is being stopped)
            raise GradingError(f"the grader's sandbox failed ({error})") from None
        self._check_running()  # a child killed by stop() must not be read as the student's crash

    def result(self, plan: Plan) -> SubmissionResult:
        """The plan's findings (its functions have run) as the student's result."""
        findings: list[Finding] = []
        output: list[str] = []
        for role in self.rubric.roles:
            if role in plan.findings:
                findings += plan.findings[role]
                if plan.runs[role].output:
                    output.append(plan.runs[role].output)
            else:
                findings += self._missing_function(role, plan.extraction)
        lines = {cell.index: cell.source.splitlines() for cell in plan.cells}
        findings = [_with_code(f, lines) for f in findings]
        shown = {f.cell for f in findings if f.cell is not None and f.verdict != "ok"}
        score = sum(f.points for f in findings)
        return SubmissionResult(student=plan.submission.student, path=plan.submission.path, status=GRADED,
                                score=round(score, 4), max_score=self.max_score, findings=findings,
                                output="".join(output), seconds=round(time.monotonic() - plan.started, 3),
                                sources={c.index: c.source for c in plan.cells if c.index in shown},
                                code_sha256=plan.code_sha)

    def _check_running(self) -> None:
        if self._stopping.is_set():
            raise GradingInterrupted("the run was interrupted before this notebook was graded; "
                                     "run the same command again")

    def remember(self, result: SubmissionResult, file_sha: str | None) -> SubmissionResult:
        """Record the result in the gradebook the moment it is known, unless the run is being
        stopped (whatever was computed while stopping may rest on a child the grader killed)."""
        self._check_running()
        result = replace(result, graded_at=_now())
        self.reuse.remember(result, file_sha)
        return result

    def _ungradable(self, submission, diagnosis, message, started) -> SubmissionResult:
        return ungradable(submission, diagnosis, message, self.max_score, time.monotonic() - started)

    def _missing_function(self, role: str, extraction: Extraction) -> list[Finding]:
        """A graded function that is not there, or whose cell does not parse."""
        name = self.rubric.spec.functions[role].name
        problem = extraction.syntax_errors.get(role)
        if problem is not None:
            outcome = Observation(f"{role}.function", WRONG, "error", {
                "function": name,
                "error": f"cannot be read: its cell does not parse ({problem.message}, "
                         f"cell {problem.cell + 1}, line {problem.line})"}, value=(problem.cell, problem.line))
        else:
            outcome = Observation(f"{role}.function", WRONG, "not_found", {"function": name})
        return self._unassessed(role, outcome, extraction, None)

    # --- what a child is asked, and what its answer means -------------------------------------
    def common_header(self, modules: dict[str, str]) -> dict:
        """What every section of a job shares: the child's limits, the stand-ins, the student's
        own modules."""
        return {"limits": self._limits(), "standins": str(self.rubric.assignment.standins), "modules": modules}

    def section(self, role: str, extraction: Extraction, trace: bool, probes: list[str] | None = None) -> Section:
        """One graded function's part of a job: the statements it needs, a call per probe
        (`probes`: only these, without the stream check; a traced run for lines)."""
        function = self.rubric.spec.functions[role]
        calls = [{"role": role, "probe": probe.id, "function": function.name, "seed": probe.seed,
                  "args": probe.arguments[role]} for probe in self.probes if probes is None or probe.id in probes]
        if role in self.rubric.assignment.stream_check_roles and probes is None:
            # The first probe once more with every random stream keyed differently: what the
            # student drew must change with it (the assignment compares the two runs).
            calls.append(dict(calls[0], stream_key=calls[0]["seed"] * 7919 + 1))
        fragments = [{"source": f.source, "kind": f.kind} for f in extraction.fragments]
        return Section({"fragments": fragments, "calls": calls, "trace": trace}, self._inputs[role])

    def decode(self, role: str, run: SectionRun, extraction: Extraction, probes: list[str] | None = None) -> RoleRun:
        return decode_run(role, extraction.functions[role], run, self.rubric, extraction, probes)

    def function_step(self, role: str) -> str:
        return qualified(self.rubric.assignment, f"{role}.function")

    def assess_role(self, run: RoleRun, extraction: Extraction) -> list[Finding]:
        """A function's findings from what its run gave back."""
        if run.outcome.verdict == WRONG and not (run.outcome.diagnosis == "error" and run.assessable):
            return self._unassessed(run.role, run.outcome, extraction, run.function)
        return self._assess(run, self.rubric.function_steps(run.role), extraction)

    def run_function(self, role: str, extraction: Extraction, modules: dict[str, str] | None = None,
                     trace: bool = True) -> RoleRun:
        """Run one extracted function on every probe in a sandboxed child and check what came
        back (raises SandboxError if the sandbox itself fails)."""
        batch = run_sections(self.sandbox, self.common_header(modules or {}),
                             [self.section(role, extraction, trace)],
                             max_elements=self.rubric.spec.limits.result_mb * 2**20 // 8)
        return self.decode(role, batch.sections[0], extraction)

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
        run.located = [p.id for p in self.probes
                       if any(call is not None and call.probe == p.id and obs.verdict != OK
                              for obs, call in merged.values())]
        for step in steps:
            if step == f"{run.role}.function":
                continue
            obs, call = merged[step]
            probe = probes.get(call.probe) if call else None
            facts = {"probe": probe.id, **probe.facts} if probe else {}
            facts.update(self.rubric.assignment.student_names(run.role, run.function.parameters))
            findings.append(to_finding(obs, self.rubric, locate(obs, call, extraction, run.function), facts))
        return findings

    def _unassessed(self, role, outcome: Observation, extraction, function) -> list[Finding]:
        """The function could not be graded: one wrong finding, and no points for its steps."""
        findings = [to_finding(outcome, self.rubric, locate(outcome, None, extraction, function), {})]
        name = self.rubric.spec.functions[role].name
        for step in self.rubric.function_steps(role):
            if step == f"{role}.function":
                continue
            obs = Observation(step, NOTE, NOT_ASSESSED, {
                "detail": f"{name} could not be graded (see {qualified(self.rubric.assignment, role + '.function')})"})
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
        at once. If the caller stops early (Ctrl-C), queued work is cancelled and this Grader is
        stopping: what is in flight is abandoned (a grading error, never stored), and close()
        kills its children and waits for its threads."""
        yield from grade_concurrently(self.grade, submissions, jobs, self._pools, self._stopping.set)

    def run_result(self, results: list[SubmissionResult]) -> RunResult:
        return run_result(self.rubric, results, self.protections)


def grade_concurrently(grade, submissions: list[Submission], jobs: int | None, pools: list[ThreadPoolExecutor],
                       abandon) -> Iterator[tuple[int, SubmissionResult]]:
    """`grade` on `jobs` threads: (index, result) pairs as each finishes. The pool is added to
    `pools` (its owner's close() joins it); if the caller stops early, `abandon()` is called
    before queued work is cancelled."""
    jobs = max(1, jobs or os.cpu_count() or 1)
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="grade")
    pools.append(pool)
    finished = False
    try:
        futures = {pool.submit(grade, s): i for i, s in enumerate(submissions)}
        for future in as_completed(futures):
            yield futures[future], future.result()
        finished = True
    finally:
        if not finished:  # Ctrl-C, or the caller stopped early: abandon what is in flight
            abandon()
        pool.shutdown(wait=False, cancel_futures=True)


def ungradable(submission: Submission, diagnosis: str, message: str, max_score: float,
               seconds: float = 0.0) -> SubmissionResult:
    """A file that cannot be graded: one `notebook` finding, no points."""
    finding = Finding(step="notebook", verdict=WRONG, diagnosis=diagnosis, points=0.0, max_points=0.0,
                      message=message)
    return SubmissionResult(student=submission.student, path=submission.path, status=UNGRADABLE, score=0.0,
                            max_score=max_score, findings=[finding], seconds=round(seconds, 3))


def grading_error(submission: Submission, error: BaseException, max_score: float,
                  started: float | None = None) -> SubmissionResult:
    """The grader or its sandbox failed on this notebook (or the run was stopped): not the
    student's doing. One `notebook` note carries the message for every report; no points."""
    seconds = time.monotonic() - started if started is not None else 0.0
    if isinstance(error, GradingError):
        message = str(error)
    else:
        message = (f"the grader failed on this notebook ({type(error).__name__}: {str(error)[:300]}); "
                   "this is a bug in the grader, not in the student's code")
    text = "".join(traceback.format_exception(error)) if not isinstance(error, GradingInterrupted) else ""
    return SubmissionResult(student=submission.student, path=submission.path, status=GRADING_ERROR, score=0.0,
                            max_score=max_score, seconds=round(seconds, 3), error=message, traceback=text,
                            findings=[Finding(step="notebook", verdict=NOTE, diagnosis="grading_error", points=0.0,
                                              max_points=0.0, message=message)])


class InBackground:
    """A value computed on a thread of its own; result() waits for it, or raises its error."""

    def __init__(self, compute, name: str):
        self._value = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(compute,), daemon=True, name=name)
        self._thread.start()

    def _run(self, compute) -> None:
        try:
            self._value = compute()
        except BaseException as error:  # noqa: BLE001 - not swallowed: result() raises it
            self._error = error

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


class ErrorLog:
    """Where the tracebacks of grading errors go: appended to one file, named in the result's
    message. With no file, the traceback stays on the result for the caller to log."""

    def __init__(self, path: Path | None):
        self.path = path
        self._lock = threading.Lock()

    def record(self, result: SubmissionResult) -> SubmissionResult:
        if self.path is None or not result.traceback:
            return result
        entry = (f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {result.student} ({result.path})\n"
                 f"{result.traceback.rstrip()}\n")
        try:
            with self._lock, open(self.path, "a", encoding="utf-8") as handle:
                handle.write(entry)
        except OSError as error:
            where = f"not written to {self.path} ({error.strerror})"
        else:
            where = f"traceback in {self.path}"
        message = f"{result.error}; {where}"
        return replace(result, error=message, findings=[replace(f, message=message) for f in result.findings])


def run_result(rubric: LoadedRubric, results: list[SubmissionResult], protections: list[dict]) -> RunResult:
    """The whole run as reports see it: results plus what they need to know of the rubric."""
    visibility = rubric.spec.visibility
    steps = [StepInfo(qualified(rubric.assignment, step_id), _title(step.title, rubric.groups.get(step_id, {})),
                      step.points, step.visible) for step_id, step in rubric.steps.items()]
    return RunResult(grader_name=GRADER_NAME, grader_version=build_id(rubric.assignment), rubric_id=rubric.id,
                     rubric_sha256=rubric.sha256, seeds={p.id: p.seed for p in rubric.probes},
                     submissions=results, protections=protections, steps=steps, rubric_title=rubric.spec.title,
                     show_output=visibility.show_output, show_code=visibility.show_code,
                     gradescope_visibility=visibility.gradescope)


def _title(title: str, group: dict[str, str]) -> str:
    """`layer {layer}: apply the mask` for layer 1's step."""
    for placeholder, value in group.items():
        title = title.replace("{" + placeholder + "}", value)
    return title


def code_sha256(extraction: Extraction, graded_names: dict[str, str], modules: dict[str, str] | None = None) -> str:
    """What grading depends on in a notebook: the kept statements (not outputs, not other
    cells), and the student's own helper modules if any."""
    digest = hashlib.sha256(json.dumps(sorted(graded_names.items())).encode())
    for fragment in extraction.fragments:
        digest.update(f"\0{fragment.kind}\0{fragment.cell}\0{fragment.first_line}\0".encode())
        digest.update(fragment.source.encode())
    for role, problem in sorted(extraction.syntax_errors.items()):
        digest.update(f"\0syntax\0{role}\0{problem.cell}\0{problem.line}\0{problem.message}".encode())
    for role, function in sorted(extraction.functions.items()):
        digest.update(f"\0defs\0{role}\0{function.definitions}".encode())
    for name, source in sorted((modules or {}).items()):
        digest.update(f"\0module\0{name}\0".encode() + source.encode("utf-8", errors="surrogatepass"))
    return digest.hexdigest()


def _now() -> str:
    """The grading's time, to the second, as reports print it."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _with_code(finding: Finding, sources: dict[int, list[str]]) -> Finding:
    lines = sources.get(finding.cell) if finding.cell is not None else None
    if lines and finding.line is not None and 1 <= finding.line <= len(lines):
        return replace(finding, code=lines[finding.line - 1].rstrip()[:300])
    return finding
