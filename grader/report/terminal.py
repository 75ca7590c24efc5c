"""What `grade` prints: a table for a class, the full feedback for one student.

Everything printed goes through `neutral` (caps, no escape sequences or control characters, no
line that a CI runner would take for a workflow command), and widths are measured in terminal
cells, so East Asian wide characters and combining marks keep the table aligned."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Collection, Iterator

from dropout_grader.report import neutral
from dropout_grader.results import GRADED, GRADING_ERROR, RunResult, SubmissionResult, briefs

MARKS = {"ok": "✓", "note": "•", "wrong": "✗"}
COLORS = {"ok": "32", "note": "33", "wrong": "31"}
NAME_COLUMN = 32  # the widest the student column of the class table gets, in terminal cells
ELLIPSIS = "…"


class Style:
    def __init__(self, color: bool):
        self.color = color

    def paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def bold(self, text: str) -> str:
        return self.paint(text, "1")


def printable(text: str, limit: int = neutral.MESSAGE_CHARS) -> str:
    """Student-controlled text made safe to print, in a terminal and in a CI log."""
    return neutral.log(neutral.clean(text, limit))


def one_line(text: str, limit: int = neutral.MESSAGE_CHARS) -> str:
    """A message that may quote student text (a path, an id), as one safe line."""
    return neutral.log(neutral.clean(str(text), limit, one_line=True))


def _clusters(text: str) -> list[tuple[str, int]]:
    """(characters, width) per user-perceived character: a base character with the combining
    marks, variation selectors and zero-width-joined characters that follow it."""
    from wcwidth import wcwidth  # here: ~15 ms to import, and `grade -q` measures no text

    clusters: list[tuple[str, int]] = []
    joined = False
    for char in text:
        width = wcwidth(char)
        width = 0 if width < 0 else width
        if clusters and (width == 0 or joined):
            chars, cluster_width = clusters[-1]
            clusters[-1] = (chars + char, cluster_width if joined else cluster_width + width)
        else:
            clusters.append((char, width))
        joined = char == "\u200d"
    return clusters


def display_width(text: str) -> int:
    return sum(width for _, width in _clusters(text))


def fit(text: str, width: int) -> str:
    """`text` padded or cut to exactly `width` terminal cells; a cut ends with an ellipsis."""
    clusters = _clusters(text)
    total = sum(w for _, w in clusters)
    if total > width:
        kept, used = [], 0
        for chars, w in clusters:
            if used + w > width - 1:
                break
            kept.append(chars)
            used += w
        text, total = "".join(kept) + ELLIPSIS, used + 1
    return text + " " * (width - total)


def _points(value: float) -> str:
    return f"{value:g}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def step_words(step: str, diagnosis: str | None) -> str:
    """`forward.layer1.scale` + `missing` -> `forward L1 scale: missing`."""
    words = re.sub(r"layer(\d)", r"L\1", step).replace(".", " ")
    return f"{words}: {(diagnosis or 'ok').replace('_', ' ')}"


def status_message(result: SubmissionResult) -> str:
    """Why a submission has no grade, in one line (its first finding says it)."""
    if result.status == GRADING_ERROR:  # the grader's failure, said as such
        return f"grading error, not the student's: {result.error}"
    return f"{result.status}: {result.findings[0].message}" if result.findings else result.status


def describe_wrong(result: SubmissionResult, hidden: Collection[str] = ()) -> str:
    """The wrong steps in words, for one row of the class table (steps in `hidden` left out)."""
    if result.status != GRADED:
        return status_message(result)
    words = [step_words(f.step, f.diagnosis) for f in result.wrong if f.step not in hidden]
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


def render_table(run: RunResult, style: Style, width: int = 100, hidden: Collection[str] = ()) -> str:
    """One row per student: name, score, the wrong steps (those in `hidden` left out)."""
    return "\n".join(table_lines(run, style, width, hidden))


def table_lines(run: RunResult, style: Style, width: int = 100, hidden: Collection[str] = ()) -> Iterator[str]:
    """render_table a line at a time, each student's result loaded only for its own line."""
    names = [neutral.identifier(b.student) for b in briefs(run.submissions)]
    name_width = min(max([len("student")] + [display_width(name) for name in names]), NAME_COLUMN)
    del names
    yield style.bold(f"{fit('student', name_width)}  {'score':>9}  wrong steps")
    for r in run.submissions:
        r = neutral.bounded_result(r)
        score = f"{_points(r.score)}/{_points(r.max_score)}"
        verdict = "ok" if r.status == GRADED and not r.wrong else "wrong"
        detail = textwrap.shorten(describe_wrong(r, hidden), width=max(30, width - name_width - 14),
                                  placeholder=" " + ELLIPSIS)
        yield neutral.log(f"{fit(r.student, name_width)}  {score:>9}  ") + style.paint(neutral.log(detail),
                                                                                      COLORS[verdict])


def render_summary(run: RunResult, seconds: float) -> str:
    rows = list(briefs(run.submissions))  # status and score: nothing loaded
    graded = [r for r in rows if r.status == GRADED]
    errors = sum(r.status == GRADING_ERROR for r in rows)
    full = sum(1 for r in graded if r.score >= r.max_score)
    rate = f", {len(rows) / seconds:.1f} notebooks/s" if seconds > 0 else ""
    return (f"{_plural(len(rows), 'notebook')}: {full} full marks, {len(graded) - full} with wrong steps, "
            f"{len(rows) - len(graded) - errors} ungradable" + (f", {errors} grading errors" if errors else "")
            + f"; {seconds:.2f} s{rate}")


def render_feedback(result: SubmissionResult, style: Style, width: int = 100, show_output: bool = True,
                    hidden: Collection[str] = (), show_code: bool = True) -> str:
    """One student's feedback: every step (but those in `hidden`), its verdict and message, and
    the line it points at (cells counted from 1, as Jupyter users count them)."""
    result = neutral.bounded_result(result)
    head = f"{result.student}  {_points(result.score)}/{_points(result.max_score)}  ({result.path})"
    lines = [style.bold(neutral.log(head))]
    shown_messages: set[str] = set()
    for f in result.findings:
        if f.step in hidden:
            continue
        mark = style.paint(MARKS.get(f.verdict, "?"), COLORS.get(f.verdict, "0"))
        points = f"{_points(f.points)}/{_points(f.max_points)}"
        label = f.step + (f" [{f.diagnosis}]" if f.diagnosis else "")
        lines.append(f"{mark} {label:<44} {points:>7}")
        if f.diagnosis == "not_assessed" and f.message in shown_messages:
            continue  # the same reason as the step above: said once
        shown_messages.add(f.message)
        if f.verdict != "ok":
            for chunk in textwrap.wrap(f.message, width=width - 4):
                lines.append(neutral.log(f"    {chunk}"))
            if f.cell is not None:
                where = f"cell {f.cell + 1}, line {f.line}"
                code = f": {f.code.strip()}" if f.code and show_code else ""
                lines.append(style.paint(neutral.log(f"    at {where}{code}"), "2"))
    if result.output and show_output:
        shown = result.output.strip().splitlines()
        lines.append(style.paint(f"printed by the notebook's code ({_plural(len(shown), 'line')}):", "2"))
        lines += [style.paint(neutral.log(f"    {fit(line, width)}".rstrip()), "2") for line in shown[:10]]
        if len(shown) > 10:
            lines.append(style.paint("    " + ELLIPSIS, "2"))
    return "\n".join(lines)
