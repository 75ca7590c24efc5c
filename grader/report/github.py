"""GitHub Actions: annotations on the notebook, a summary table on the job's page, and the
student's own output fenced so it cannot issue workflow commands. All three are read by the
student, so hidden rubric steps are left out, and all student text goes through `neutral`."""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path, PurePosixPath

from dropout_grader.report import audience, neutral
from dropout_grader.results import GRADED, RunResult, SubmissionResult

MAX_ANNOTATIONS = 10  # GitHub shows at most ten of one kind per step
SUMMARY_BYTES = 1024 * 1024  # GitHub drops a step summary larger than 1 MiB, whole
SUMMARY_MESSAGE_CHARS = 600  # per cell of the summary table, so that a class fits


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def notebook_line(notebook_text: str, cell: int, code: str | None) -> int:
    """The line of the .ipynb file (JSON) that holds a cell's line of code, so the annotation
    lands on it in GitHub's file view; the cell's own first line when it cannot be found."""
    lines = notebook_text.splitlines()
    starts = [i for i, line in enumerate(lines) if re.search(r'"cell_type"\s*:', line)]
    if cell >= len(starts):
        return 1
    # "source" usually follows "cell_type" in a cell's object, but writers differ: look after
    # it first (up to the next cell), then before it (back to the previous one).
    after_end = starts[cell + 1] if cell + 1 < len(starts) else len(lines)
    before_start = starts[cell - 1] + 1 if cell > 0 else 0
    if code and code.strip():
        needle = json.dumps(code.strip())[1:-1]
        for i in [*range(starts[cell], after_end), *range(before_start, starts[cell])]:
            if needle in lines[i]:
                return i + 1
    return starts[cell] + 1


def annotation_path(path: str, workspace: str | None = None, cwd: str | None = None) -> str:
    """The notebook's path as GitHub attaches annotations: relative to GITHUB_WORKSPACE (the
    checkout), in forward slashes. Outside the workspace (or without one), relative to the
    working directory if it is inside it, else the path as given."""
    absolute = Path(os.path.abspath(os.path.join(cwd or os.getcwd(), path)))
    for base in (workspace, cwd or os.getcwd()):
        if not base:
            continue
        try:
            return PurePosixPath(*absolute.relative_to(os.path.abspath(base)).parts).as_posix()
        except ValueError:
            continue
    return path


def annotations(run: RunResult, notebook_texts: dict[str, str], workspace: str | None = None,
                cwd: str | None = None) -> list[str]:
    """`::error` commands for the wrong visible steps, at most MAX_ANNOTATIONS. `notebook_texts`
    is keyed by each result's path as the run holds it."""
    commands = []
    for original, result in zip(run.submissions, neutral.bounded(run).submissions):
        for finding in audience.visible_findings(run, result):
            if finding.verdict != "wrong":
                continue
            file = annotation_path(original.path, workspace, cwd)
            properties = [f"file={escape_property(neutral.clean(file, neutral.PATH_CHARS, one_line=True))}"]
            if finding.cell is not None:
                line = notebook_line(notebook_texts.get(original.path, ""), finding.cell, finding.code)
                properties.append(f"line={line}")
            properties.append(f"title={escape_property(f'{result.student}: {finding.step}')}")
            commands.append(f"::error {','.join(properties)}::{escape_data(finding.message)}")
    return commands[:MAX_ANNOTATIONS]


def summary(run: RunResult, budget: int = SUMMARY_BYTES) -> str:
    """Markdown for $GITHUB_STEP_SUMMARY, at most `budget` bytes in UTF-8: students that do
    not fit are counted in a closing line instead of losing the whole summary."""
    hidden = audience.hidden_steps(run)
    head = f"## {neutral.markdown(run.rubric_title or run.rubric_id)}\n\n"
    parts, used = [head], len(head.encode())
    students = neutral.bounded(run).submissions
    for index, result in enumerate(students):
        block = _student_summary(result, hidden)
        size = len(block.encode())
        left = len(students) - index
        closing = f"\n_{left} more student{'s' if left != 1 else ''} not shown: the summary is limited to 1 MiB._\n"
        if used + size + len(closing.encode()) > budget:
            if used + len(closing.encode()) <= budget:
                parts.append(closing)
            break
        parts.append(block)
        used += size
    return "".join(parts)


def _student_summary(result: SubmissionResult, hidden: set[str]) -> str:
    lines = [f"### {neutral.markdown(result.student)}: {result.score:g} / {result.max_score:g}", ""]
    if result.status != GRADED:
        message = result.findings[0].message if result.findings else result.status
        lines += [f"**Not graded:** {_cell(message)}", "", ""]
        return "\n".join(lines)
    lines += ["| step | result | points | where | what to fix |", "|---|---|---|---|---|"]
    skipped: dict[str, tuple[list[str], str]] = {}  # function -> (steps, reason)
    for finding in result.findings:
        if finding.step in hidden:
            continue
        if finding.diagnosis == "not_assessed":
            steps, _ = skipped.setdefault(finding.step.split(".")[0], ([], finding.message))
            steps.append(finding.step)
            continue
        mark = {"ok": "✅", "note": "ℹ️", "wrong": "❌"}.get(finding.verdict, "")
        where = f"cell {finding.cell + 1}, line {finding.line}" if finding.cell is not None else ""
        text = "" if finding.verdict == "ok" else _cell(finding.message)
        lines.append(f"| `{finding.step}` | {mark} {finding.diagnosis or 'ok'} | "
                     f"{finding.points:g}/{finding.max_points:g} | {where} | {text} |")
    for function, (steps, reason) in skipped.items():
        lines.append(f"\n{len(steps)} {function} step{'s' if len(steps) != 1 else ''} not assessed: {_cell(reason)}")
    lines += ["", ""]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return neutral.markdown(neutral.cap(text, SUMMARY_MESSAGE_CHARS))


def fenced_output(result: SubmissionResult, token: str | None = None) -> str:
    """What the student's code printed, between ::stop-commands:: and the resume token, so a
    printed '::error ...' or '::add-mask::' is shown, not executed (and neutralised besides,
    should a runner ever ignore the fence)."""
    token = token or secrets.token_hex(16)
    output = neutral.log(neutral.clean(result.output, neutral.OUTPUT_CHARS)).rstrip()
    return f"::stop-commands::{token}\n{output}\n::{token}::\n"
