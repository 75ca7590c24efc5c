"""One notebook between extraction and findings: what runs in the sandbox, in how few children,
and when lines are traced.

Every graded function of every rubric a notebook is graded on (a course's parts) is a section
of ONE child's job (sandbox/batch.py says when more children are needed). The child first runs
untraced: tracing every line costs more than the functions themselves, and only a wrong step
needs a line to point at. Functions with a step that is not right are then run again, traced,
with the same seeds (so the same values), in one more child; their findings come from that
run. A function whose traced run ends otherwise than its untraced one (tracing made it slow
enough to time out, say) keeps its untraced findings, without lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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
    untraced = _run(sandbox, plans, [(plan, role) for plan in plans for role in plan.roles], trace=False,
                    stopping=stopping)
    retrace = []
    for (plan, role), run in untraced.items():
        plan.runs[role] = run
        plan.findings[role] = plan.grader.assess_role(run, plan.extraction)
        if _needs_lines(plan.findings[role], plan.grader.function_step(role)):
            retrace.append((plan, role))
    if not retrace or stopping():
        return
    for (plan, role), run in _run(sandbox, plans, retrace, trace=True, stopping=stopping).items():
        if _same_outcome(run, plan.runs[role]):
            plan.findings[role] = plan.grader.assess_role(run, plan.extraction)


def _run(sandbox: Sandbox, plans: list[Plan], wanted: list[tuple[Plan, str]], trace: bool,
         stopping) -> dict[tuple[Plan, str], RoleRun]:
    if not wanted:
        return {}
    first = plans[0].grader
    sections: list[Section] = [plan.grader.section(role, plan.extraction, trace) for plan, role in wanted]
    batch = run_sections(sandbox, first.common_header(plans[0].modules), sections,
                         max_elements=first.rubric.spec.limits.result_mb * 2**20 // 8, stopping=stopping)
    for plan in plans:
        plan.children += batch.children
    runs: dict[tuple[Plan, str], RoleRun] = {}
    for (plan, role), section_run in zip(wanted, batch.sections):
        runs[plan, role] = plan.grader.decode(role, section_run, plan.extraction)
    return runs


def _needs_lines(findings: list[Finding], function_step: str) -> bool:
    """A step other than the function's own that is not right: its message points at a line."""
    return any(f.verdict != OK and f.step != function_step and f.diagnosis != NOT_ASSESSED for f in findings)


def _same_outcome(traced: RoleRun, untraced: RoleRun) -> bool:
    return ((traced.outcome.verdict, traced.outcome.diagnosis) == (untraced.outcome.verdict, untraced.outcome.diagnosis)
            and len(traced.assessable) == len(untraced.assessable))

