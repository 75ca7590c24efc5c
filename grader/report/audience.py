"""Who reads an output, and so which rubric steps it may show.

A step with rubric `visibility: hidden` still counts towards the score, but only the instructor
outputs (results.json, grades.csv, index.html) name it. Every output a student can see leaves
it out: feedback pages, Gradescope, junit.xml (GitLab shows it on the student's pipeline),
GitHub annotations and the step summary, and the terminal when it is a CI log.

The terminal is student-facing when the run is GitHub or Gradescope mode, or when a CI system
says it is running the job (`CI` or `GITLAB_CI` set to a true value: GitHub Actions, GitLab CI
and most others set `CI=true`); `--audience staff` or `--audience student` overrides that.
"""

from __future__ import annotations

from collections.abc import Mapping

from dropout_grader.results import Finding, RunResult, SubmissionResult

STUDENT, STAFF = "student", "staff"
AUDIENCES = (STUDENT, STAFF)


def terminal_audience(environ: Mapping[str, str], *, github: bool = False, gradescope: bool = False,
                      choice: str | None = None) -> str:
    """Whether what `grade` prints is read by students (see the module's docstring)."""
    if choice:
        return choice
    in_ci = any(environ.get(name, "").strip().lower() in ("1", "true", "yes") for name in ("CI", "GITLAB_CI"))
    return STUDENT if github or gradescope or in_ci else STAFF


def hidden_steps(run: RunResult) -> set[str]:
    return {step.id for step in run.steps if not step.visible}


def visible_findings(run: RunResult, result: SubmissionResult, audience: str = STUDENT) -> list[Finding]:
    """The findings `audience` may see, in rubric order."""
    if audience == STAFF:
        return list(result.findings)
    hidden = hidden_steps(run)
    return [f for f in result.findings if f.step not in hidden]
