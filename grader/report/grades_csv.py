"""grades.csv: one row per submission for a spreadsheet or an LMS import, with when it was
graded and the sha256 of the code graded (so a regrade request can be checked)."""

from __future__ import annotations

import csv
import io

from dropout_grader.report import neutral
from dropout_grader.results import GRADING_ERROR, RunResult


def render(run: RunResult) -> str:
    run = neutral.bounded(run)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180, what spreadsheets expect
    steps = [s.id for s in run.steps]
    writer.writerow(["student", "section", "path", "status", "score", "max_score", *steps, "wrong_steps",
                     "graded_at", "code_sha256"])
    for result in run.submissions:
        points = {f.step: f.points for f in result.findings}
        wrong = "; ".join(f"{f.step}: {f.diagnosis}" for f in result.wrong)
        # A grading error is no score at all: an empty cell, never a 0 an LMS would import.
        score = "" if result.status == GRADING_ERROR else f"{result.score:g}"
        writer.writerow([_cell(result.student), _cell(result.section), _cell(result.path), result.status, score,
                         f"{result.max_score:g}", *(_number(points.get(s)) for s in steps),
                         _cell(wrong), result.graded_at, result.code_sha256])
    return "\ufeff" + buffer.getvalue()  # the BOM makes Excel read UTF-8


def _number(value) -> str:
    return "" if value is None else f"{value:g}"


def _cell(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
