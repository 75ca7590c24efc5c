"""GitHub Actions: annotations on the notebook, a summary table on the job's page, and the
student's own output fenced so it cannot issue workflow commands."""

from __future__ import annotations

import json
import re
import secrets

from dropout_grader.results import GRADED, RunResult, SubmissionResult

MAX_ANNOTATIONS = 10  # GitHub shows at most ten of one kind per step


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


def annotations(run: RunResult, notebook_texts: dict[str, str]) -> list[str]:
    commands = []
    for result in run.submissions:
        for finding in result.findings:
            if finding.verdict != "wrong":
                continue
            properties = [f"file={escape_property(result.path)}"]
            if finding.cell is not None:
                line = notebook_line(notebook_texts.get(result.path, ""), finding.cell, finding.code)
                properties.append(f"line={line}")
            properties.append(f"title={escape_property(f'{result.student}: {finding.step}')}")
            commands.append(f"::error {','.join(properties)}::{escape_data(finding.message)}")
    return commands[:MAX_ANNOTATIONS]


def summary(run: RunResult) -> str:
    """Markdown for $GITHUB_STEP_SUMMARY."""
    lines = [f"## {run.rubric_title or run.rubric_id}", ""]
    for result in run.submissions:
        lines += [f"### {_md(result.student)}: {result.score:g} / {result.max_score:g}", "",
                  "| step | result | points | where | what to fix |", "|---|---|---|---|---|"]
        for finding in result.findings:
            if finding.diagnosis == "not_assessed":
                continue
            mark = {"ok": "✅", "note": "ℹ️", "wrong": "❌"}.get(finding.verdict, "")
            where = f"cell {finding.cell}, line {finding.line}" if finding.cell is not None else ""
            text = "" if finding.verdict == "ok" else _md(finding.message)
            lines.append(f"| `{finding.step}` | {mark} {finding.diagnosis or 'ok'} | "
                         f"{finding.points:g}/{finding.max_points:g} | {where} | {text} |")
        if result.status != GRADED:
            lines.append(f"\n**Not graded:** {_md(result.findings[0].message)}")
        lines.append("")
    return "\n".join(lines) + "\n"


def fenced_output(result: SubmissionResult, token: str | None = None) -> str:
    """What the student's code printed, between ::stop-commands:: and the resume token, so a
    printed '::error ...' or '::add-mask::' is shown, not executed."""
    token = token or secrets.token_hex(16)
    return f"::stop-commands::{token}\n{result.output.rstrip()}\n::{token}::\n"


def _md(text: str) -> str:
    return (text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\r", " ").replace("\n", " "))
