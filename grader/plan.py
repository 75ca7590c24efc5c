"""One notebook between extraction and findings: what runs in the sandbox, in how few children,
and when lines are traced.

Every graded function of every rubric a notebook is graded on (a course's parts) is a section
of ONE child's job (sandbox/batch.py says when more children are needed). The child first runs
untraced: tracing every line costs more than the functions themselves, and only a step that is
not right needs a line to point at. For those, the probes their findings were read from run
again, traced, with the same seeds, in one more child; the lines each value was made on are
lent to the untraced calls when the traced ones gave back the very same values, and the
function is assessed again. Otherwise (code that is not deterministic, or that tracing made
time out) its findings stay as they were, without lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from dropout_grader.assess import NOT_ASSESSED, RoleRun
from dropout_grader.extract import Extraction
from dropout_grader.notebook import Cell
from dropout_grader.observations import OK
from dropout_grader.results import Finding, Submission
from dropout_grader.sandbox.batch import Section, run_sections
from dropout_grader.sandbox.runner import Sandbox

if TYPE_CHECKING:
    from dropout_grader.pipeline import Grader


@dataclass(eq=False)
class Plan:
    """One notebook under one rubric (`grader`), extracted and ready to run."""
    grader: Grader
    submission: Submission
    started: float
    cells: list[Cell]
    extraction: Extraction
    modules: dict[str, str]
    code_sha: str
    file_sha: str | None
    roles: list[str]  # the graded functions that were found, in the rubric's order
    runs: dict[str, RoleRun] = field(default_factory=dict)
    findings: dict[str, list[Finding]] = field(default_factory=dict)  # role -> its findings
    children: int = 0


def run_plans(sandbox: Sandbox, plans: list[Plan], stopping=lambda: False) -> None:
    """Run and assess every plan's functions (all of one notebook, under rubrics sharing
    `sandbox`): fills each plan's `runs` and `findings`. Raises SandboxError when the sandbox
    itself fails."""
    wanted = [(plan, role, None) for plan in plans for role in plan.roles]
    retrace = []
    for (plan, role, _), run in _run(sandbox, plans, wanted, trace=False, stopping=stopping).items():
        plan.runs[role] = run
        plan.findings[role] = plan.grader.assess_role(run, plan.extraction)
        if run.located and _needs_lines(plan.findings[role], plan.grader.function_step(role)):
            retrace.append((plan, role, run.located))
    if not retrace or stopping():
        return
    # Only the probes the findings were read from run again, traced; their writes (which line
    # made which value) are given to the untraced calls when the values are the same.
    for (plan, role, _), traced in _run(sandbox, plans, retrace, trace=True, stopping=stopping).items():
        untraced = plan.runs[role]
        if _lend_writes(traced, untraced):
            plan.findings[role] = plan.grader.assess_role(untraced, plan.extraction)


def _run(sandbox: Sandbox, plans: list[Plan], wanted: list[tuple[Plan, str, list[str] | None]], trace: bool,
         stopping) -> dict[tuple[Plan, str, object], RoleRun]:
    if not wanted:
        return {}
    first = plans[0].grader
    sections: list[Section] = [plan.grader.section(role, plan.extraction, trace, probes)
                               for plan, role, probes in wanted]
    batch = run_sections(sandbox, first.common_header(plans[0].modules), sections,
                         max_elements=first.rubric.spec.limits.result_mb * 2**20 // 8, stopping=stopping)
    for plan in plans:
        plan.children += batch.children
    runs: dict[tuple[Plan, str, object], RoleRun] = {}
    for (plan, role, probes), section_run in zip(wanted, batch.sections):
        runs[plan, role, None] = plan.grader.decode(role, section_run, plan.extraction, probes)
    return runs


def _lend_writes(traced: RoleRun, untraced: RoleRun) -> bool:
    """Give each untraced call the writes of its traced twin, if that gave back the very same
    values (it should: the same code, inputs and seeds); False when no call could take them."""
    lent = False
    by_probe = {c.probe: c for c in untraced.calls if not c.stream_key}
    for call in traced.calls:
        twin = by_probe.get(call.probe)
        if twin is not None and call.status == twin.status == "returned" and _same_values(call.values, twin.values):
            twin.writes = call.writes
            lent = True
    return lent


def _same_values(one: dict, other: dict) -> bool:
    return one.keys() == other.keys() and all(
        one[k].shape == other[k].shape and one[k].dtype == other[k].dtype
        and np.array_equal(one[k], other[k], equal_nan=one[k].dtype.kind == "f") for k in one)


def _needs_lines(findings: list[Finding], function_step: str) -> bool:
    """A step other than the function's own that is not right: its message points at a line."""
    return any(f.verdict != OK and f.step != function_step and f.diagnosis != NOT_ASSESSED for f in findings)



