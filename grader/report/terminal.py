"""What `grade` prints: a table for a class, the full feedback for one student."""

from __future__ import annotations

import re
import textwrap

from dropout_grader.results import GRADED, GRADING_ERROR, RunResult, SubmissionResult

MARKS = {"ok": "✓", "note": "•", "wrong": "✗"}
COLORS = {"ok": "32", "note": "33", "wrong": "31"}


class Style:
    def __init__(self, color: bool):
        self.color = color

    def paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def bold(self, text: str) -> str:
        return self.paint(text, "1")


_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")


def printable(text: str) -> str:
    """Student-controlled text without escape sequences that could rewrite the terminal."""
    return _CONTROL.sub("", text)


def _points(value: float) -> str:
    return f"{value:g}"


def step_words(step: str, diagnosis: str | None) -> str:
    """`forward.layer1.scale` + `missing` -> `forward L1 scale: missing`."""
    words = re.sub(r"layer(\d)", r"L\1", step).replace(".", " ")
    return f"{words}: {(diagnosis or 'ok').replace('_', ' ')}"


def describe_wrong(result: SubmissionResult) -> str:
    """The wrong steps in words, for one row of the class table."""
    if result.status == GRADING_ERROR:  # the grader's failure, said as such
        return f"grading error, not the student's: {result.error}"
    if result.status != GRADED:
        return f"ungradable: {result.findings[0].message}" if result.findings else "ungradable"
    words = [step_words(f.step, f.diagnosis) for f in result.wrong]
    return "; ".join(words) if words else "all steps right"


def render_seeds(run: RunResult) -> str:
    seeds = " ".join(f"{probe}={seed}" for probe, seed in run.seeds.items())
    return f"rubric {run.rubric_id} (sha256 {run.rubric_sha256[:12]}), probe seeds: {seeds}"


def render_isolation(run: RunResult) -> tuple[str, str | None]:
    """One line naming the protections in force, and a warning naming those missing."""
    active = [p["name"] for p in run.protections if p.get("active")]
    missing = [f"{p['name']} ({p.get('detail', '')})" for p in run.protections if not p.get("active")]
    line = "isolation: " + (", ".join(active) or "none")
    warning = f"running without: {'; '.join(missing)}" if missing else None
    return line, warning


def render_table(run: RunResult, style: Style, width: int = 100) -> str:
    rows = run.submissions
    name_width = min(max([len("student")] + [len(r.student) for r in rows]), 32)
    lines = [style.bold(f"{'student':<{name_width}}  {'score':>9}  wrong steps")]
    for r in rows:
        score = f"{_points(r.score)}/{_points(r.max_score)}"
        verdict = "ok" if r.status == GRADED and not r.wrong else "wrong"
        detail = textwrap.shorten(printable(describe_wrong(r)), width=max(30, width - name_width - 14), placeholder=" …")
        lines.append(f"{printable(r.student)[:name_width]:<{name_width}}  {score:>9}  {style.paint(detail, COLORS[verdict])}")
    return "\n".join(lines)


def render_summary(run: RunResult, seconds: float) -> str:
    rows = run.submissions
    graded = [r for r in rows if r.status == GRADED]
    errors = sum(r.status == GRADING_ERROR for r in rows)
    full = sum(1 for r in graded if r.score >= r.max_score)
    rate = f", {len(rows) / seconds:.1f} notebooks/s" if seconds > 0 else ""
    return (f"{len(rows)} notebooks: {full} full marks, {len(graded) - full} with wrong steps, "
            f"{len(rows) - len(graded) - errors} ungradable" + (f", {errors} grading errors" if errors else "")
            + f"; {seconds:.2f} s{rate}")


def render_feedback(result: SubmissionResult, style: Style, width: int = 100, show_output: bool = True) -> str:
    """One student's feedback: every step, its verdict and message, and the line it points at."""
    head = f"{result.student}  {_points(result.score)}/{_points(result.max_score)}  ({result.path})"
    lines = [style.bold(head)]
    shown_messages: set[str] = set()
    for f in result.findings:
        mark = style.paint(MARKS.get(f.verdict, "?"), COLORS.get(f.verdict, "0"))
        points = f"{_points(f.points)}/{_points(f.max_points)}"
        label = f.step + (f" [{f.diagnosis}]" if f.diagnosis else "")
        lines.append(f"{mark} {label:<44} {points:>7}")
        if f.diagnosis == "not_assessed" and f.message in shown_messages:
            continue  # the same reason as the step above: said once
        shown_messages.add(f.message)
        if f.verdict != "ok":
            for chunk in textwrap.wrap(printable(f.message), width=width - 4):
                lines.append(f"    {chunk}")
            if f.cell is not None:
                where = f"cell {f.cell}, line {f.line}"
                code = f": {printable(f.code.strip())}" if f.code else ""
                lines.append(style.paint(f"    at {where}{code}", "2"))
    if result.output and show_output:
        shown = printable(result.output).strip().splitlines()
        lines.append(style.paint(f"printed by the notebook's code ({len(shown)} lines):", "2"))
        lines += [style.paint(f"    {line[:width]}", "2") for line in shown[:10]]
        if len(shown) > 10:
            lines.append(style.paint("    …", "2"))
    return "\n".join(lines)
