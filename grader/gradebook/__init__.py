"""The gradebook: every grading recorded in a database (SQLite by default, any SQLAlchemy URL,
PostgreSQL included), so a re-run grades only what changed and a student's history is kept.

A submission is skipped when the same student was already graded with the same file or the
same graded code (sha256 of what extraction keeps), rubric and grader build, wherever the file
was and however its path was typed (see reuse.py). Each result is committed the moment it is
known, which is also what makes an interrupted run resumable. Only graded and ungradable
results are stored: a grading error is the grader's failure, never a grade.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import create_engine, event, inspect, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from dropout_grader.errors import GradebookError
from dropout_grader.gradebook.models import Base, FindingRow, Grading
from dropout_grader.results import STORABLE, SubmissionResult

HEAD = "0003"  # the newest migration in migrations/versions
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
QUERY_PARAMETERS = 500  # ids or students per query (SQLite allowed only 999 parameters before 3.32)


@dataclass(frozen=True)
class StoredRow:
    """What the run needs of a stored grading without reading its result."""
    id: int
    graded_at: str
    status: str
    score: float
    max_score: float


@dataclass(frozen=True)
class HistoryEntry:
    graded_at: datetime
    path: str
    score: float
    max_score: float
    status: str
    wrong: list[str]
    code_sha256: str
    rubric_sha256: str
    grader_version: str


class Gradebook:
    def __init__(self, url: str):
        self.url = url
        try:
            self.engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}
                                        if url.startswith("sqlite") else {})
            if url.startswith("sqlite"):
                event.listen(self.engine, "connect", _sqlite_pragmas)
            self._migrate()
        except (SQLAlchemyError, OSError, ImportError) as error:
            raise GradebookError(f"gradebook {_safe(url)}: {error.__class__.__name__}: {str(error).splitlines()[0]}") from None
        self._lock = threading.Lock()  # one writer at a time: SQLite serialises them anyway

    def _migrate(self) -> None:
        """Bring the schema to HEAD. An empty database gets the current schema at once and is
        stamped HEAD (the usual create-and-stamp); an older one is upgraded by Alembic, which is
        imported only then (it costs a tenth of a second, which a student's CI run should not pay)."""
        with self.engine.begin() as connection:
            tables = inspect(connection).get_table_names()
            if "alembic_version" in tables:
                current = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
                if current == HEAD:
                    return
            elif not tables:
                Base.metadata.create_all(connection)
                connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
                connection.execute(text("INSERT INTO alembic_version (version_num) VALUES (:head)"), {"head": HEAD})
                return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def lookup(self, student: str, rubric_sha256: str, version: str, *,
               code_sha256: str | None = None, file_sha256: str | None = None) -> SubmissionResult | None:
        """The last result for this student graded with the same rubric and grader build, and
        the same graded code (or the very same file, which is checked before parsing); not
        keyed on the path, which changes with the folder the command was run from."""
        same = (Grading.code_sha256 == code_sha256) if code_sha256 else (Grading.file_sha256 == file_sha256)
        query = (select(Grading.id, Grading.result)
                 .where(Grading.student == student, same, Grading.status.in_(STORABLE),
                        Grading.rubric_sha256 == rubric_sha256, Grading.grader_version == version)
                 .order_by(Grading.id.desc()).limit(1))
        with self._lock, Session(self.engine) as session:
            row = session.execute(query).first()
        if row is None:
            return None
        try:
            found = SubmissionResult.from_dict(json.loads(row.result))
            found.gradebook_id = row.id
            return found
        except (ValueError, TypeError, KeyError):
            return None  # written by an incompatible version: grade again

    def load(self, ids: list[int]) -> dict[int, SubmissionResult]:
        """The results stored in rows `ids` (one query per few hundred), by row id. A row
        written by an incompatible version is left out."""
        found: dict[int, SubmissionResult] = {}
        with self._lock, Session(self.engine) as session:
            for start in range(0, len(ids), QUERY_PARAMETERS):
                query = select(Grading.id, Grading.result).where(Grading.id.in_(ids[start:start + QUERY_PARAMETERS]))
                for row_id, stored in session.execute(query):
                    try:
                        found[row_id] = SubmissionResult.from_dict(json.loads(stored))
                    except (ValueError, TypeError, KeyError):
                        continue
        return found

    def texts(self, ids: list[int]) -> Iterator[tuple[int, str]]:
        """(row id, the stored result's JSON text) of rows `ids`, unparsed, a few hundred per query."""
        with self._lock, Session(self.engine) as session:
            for start in range(0, len(ids), QUERY_PARAMETERS):
                query = select(Grading.id, Grading.result).where(Grading.id.in_(ids[start:start + QUERY_PARAMETERS]))
                yield from ((row.id, row.result) for row in session.execute(query))

    def latest_by_file(self, rubric_sha256: str, version: str, wanted: list[tuple[str, str]]
                       ) -> dict[tuple[str, str], StoredRow]:
        """For each (student, file_sha256) in `wanted`, the newest row graded with this rubric
        and build from the very same file (what `lookup` finds), in one query per few hundred
        students; the result itself is not read."""
        found: dict[tuple[str, str], StoredRow] = {}
        wanted_set = set(wanted)
        students = sorted({student for student, _ in wanted})
        with self._lock, Session(self.engine) as session:
            for start in range(0, len(students), QUERY_PARAMETERS):
                query = (select(Grading.id, Grading.student, Grading.file_sha256, Grading.graded_at, Grading.status,
                                Grading.score, Grading.max_score)
                         .where(Grading.student.in_(students[start:start + QUERY_PARAMETERS]),
                                Grading.file_sha256.is_not(None), Grading.status.in_(STORABLE),
                                Grading.rubric_sha256 == rubric_sha256, Grading.grader_version == version)
                         .order_by(Grading.id))
                for row in session.execute(query):
                    key = (row.student, row.file_sha256)
                    if key in wanted_set:  # ordered by id: the newest wins
                        found[key] = StoredRow(row.id, str(row.graded_at), row.status, row.score, row.max_score)
        return found

    def record(self, result: SubmissionResult, code_sha256: str, rubric_sha256: str, version: str,
               file_sha256: str | None = None) -> int:
        """Store a result; returns its row id."""
        if result.status not in STORABLE:  # a caller's bug: a grading error is never a grade
            raise ValueError(f"a {result.status} result is not stored in the gradebook")
        grading = Grading(student=result.student, path=result.path, code_sha256=code_sha256, file_sha256=file_sha256,
                          rubric_sha256=rubric_sha256, grader_version=version,
                          graded_at=datetime.now(timezone.utc).replace(tzinfo=None), status=result.status,
                          score=result.score, max_score=result.max_score,
                          result=json.dumps(result.to_dict(), ensure_ascii=False),
                          findings=[FindingRow(step=f.step, verdict=f.verdict, diagnosis=f.diagnosis,
                                               points=f.points, max_points=f.max_points, message=f.message,
                                               cell=f.cell, line=f.line) for f in result.findings])
        try:
            with self._lock, Session(self.engine) as session, session.begin():
                session.add(grading)
                session.flush()
                return grading.id
        except SQLAlchemyError as error:
            raise GradebookError(f"gradebook {_safe(self.url)}: cannot record {result.student}: "
                                 f"{str(error).splitlines()[0]}") from None

    def history(self, student: str) -> list[HistoryEntry]:
        query = select(Grading).where(Grading.student == student).order_by(Grading.graded_at, Grading.id)
        with self._lock, Session(self.engine) as session:
            return [HistoryEntry(g.graded_at, g.path, g.score, g.max_score, g.status,
                                 [f"{f.step}: {f.diagnosis}" for f in g.findings if f.verdict == "wrong"],
                                 g.code_sha256, g.rubric_sha256, g.grader_version)
                    for g in session.execute(query).scalars()]

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer; commits survive kill -9
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _safe(url: str) -> str:
    """A URL without its password, for messages."""
    return url.split("@")[-1] if "@" in url else url
