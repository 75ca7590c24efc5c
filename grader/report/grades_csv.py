"""grades.csv: one row per submission for a spreadsheet or an LMS import, with when it was
graded and the sha256 of the code graded (so a regrade request can be checked). Written a row
at a time (`Writer`)."""

from __future__ import annotations

import csv
from typing import TextIO

from dropout_grader.report import neutral
from dropout_grader.results import GRADING_ERROR, RunResult, SubmissionResult


class Writer:
    """grades.csv onto `handle`, one submission (already cleaned by neutral) at a time."""

    def __init__(self, handle: TextIO, run: RunResult):
        handle.write("\ufeff")  # the BOM makes Excel read UTF-8
        self.writer = csv.writer(handle, lineterminator="\r\n")  # RFC 4180, what spreadsheets expect
        self.steps = [s.id for s in run.steps]
        self.writer.writerow(["student", "section", "path", "status", "score", "max_score", *self.steps,
                              "wrong_steps", "graded_at", "code_sha256"])

    def add(self, result: SubmissionResult) -> None:
        points = {f.step: f.points for f in result.findings}
        wrong = "; ".join(f"{f.step}: {f.diagnosis}" for f in result.wrong)
        # A grading error is no score at all: an empty cell, never a 0 an LMS would import.
        score = "" if result.status == GRADING_ERROR else f"{result.score:g}"
        self.writer.writerow([_cell(result.student), _cell(result.section), _cell(result.path), result.status,
                              score, f"{result.max_score:g}", *(_number(points.get(s)) for s in self.steps),
                              _cell(wrong), result.graded_at, result.code_sha256])

    def close(self) -> None:
        pass


def render(run: RunResult) -> str:
    return neutral.render_whole(Writer, run)


def _number(value) -> str:
    return "" if value is None else f"{value:g}"


def _cell(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
