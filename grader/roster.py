"""The class roster: who should have submitted, so that who did not shows in the gradebook.

A CSV file with a header row. Columns (other columns, as an LMS export has, are ignored):

    id       required: the student id the grader derives (the student's folder name, or the
             id given with --student / taken from Gradescope or GitHub)
    name     optional: the student's name
    email    optional
    sis_id   optional: the id of the school's information system, for an LMS import
    section  optional: kept beside the id in grades.csv
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from dropout_grader.results import MISSING, SubmissionResult

COLUMNS = ("id", "name", "email", "sis_id", "section")


class RosterError(Exception):
    """The roster cannot be used; the message names the file, the line and what is wrong."""


@dataclass(frozen=True)
class Student:
    id: str
    name: str = ""
    email: str = ""
    sis_id: str = ""
    section: str = ""


def load_roster(path: Path | str) -> list[Student]:
    path = Path(path)
    try:
        # Bytes decoded as they are: the csv module, not newline translation, reads line ends
        # (a quoted cell may hold a \r). A spreadsheet's BOM is not part of "id".
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise RosterError(f"roster {path}: cannot read it ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise RosterError(f"roster {path}: not UTF-8 text (byte {error.start}); save it as CSV UTF-8") from None
    # Not str.splitlines(): it also breaks lines at \x1c-\x1e, \x85, U+2028, inside a cell.
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [(h or "").strip().lower() for h in (reader.fieldnames or [])]
    if "id" not in header:
        # An LMS export names it student_id, user_id, login...: suggest renaming that column.
        close = [h for h in header if h.endswith("id") or h in ("login", "username", "user", "student")]
        hint = f"; is `{close[0]}` meant to be `id`?" if close else f"; columns: {', '.join(COLUMNS)}"
        raise RosterError(f"roster {path}: no `id` column in the header row{hint}")
    reader.fieldnames = header
    students: list[Student] = []
    seen: dict[str, int] = {}
    try:
        for row in reader:
            line = reader.line_num
            values = {k: (row.get(k) or "").strip() for k in COLUMNS}
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue  # a blank line
            if not values["id"]:
                raise RosterError(f"roster {path}: line {line}: the id is empty")
            if values["id"] in seen:
                raise RosterError(f"roster {path}: line {line}: id {values['id']!r} is already on "
                                  f"line {seen[values['id']]}")
            seen[values["id"]] = line
            students.append(Student(**values))
    except csv.Error as error:
        raise RosterError(f"roster {path}: line {reader.line_num}: {error}") from None
    if not students:
        raise RosterError(f"roster {path}: no students in it")
    return students


def missing_results(roster: list[Student], graded_ids: set[str], max_score: float) -> list[SubmissionResult]:
    """One `missing` result, scoring 0, for each roster student without a submission."""
    return [SubmissionResult(student=s.id, path="", status=MISSING, score=0.0, max_score=max_score,
                             section=s.section)
            for s in roster if s.id not in graded_ids]


def not_on_roster(roster: list[Student], graded_ids: list[str]) -> list[str]:
    known = {s.id for s in roster}
    return [student for student in graded_ids if student not in known]
