"""The one result model. Every front end produces these objects and every report format is
a pure function of them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace

from dropout_grader.errors import GradebookError

# The three outcomes of grading a notebook (DESIGN.md §2): findings about the student's code;
# the notebook cannot be graded; the grader or its sandbox failed (never the student's fault,
# never stored as a grade, never reused).
GRADED, UNGRADABLE, GRADING_ERROR = "graded", "ungradable", "grading_error"
STORABLE = (GRADED, UNGRADABLE)  # the outcomes a gradebook may keep and reuse
MISSING = "missing"  # on the roster, but no notebook was found for them


@dataclass(frozen=True)
class Finding:
    """One rubric step of one submission. `diagnosis` is a catalogue id (None when ok);
    `cell` is 0-based in the notebook's cell list, `line` 1-based within that cell."""
    step: str
    verdict: str  # "ok" | "note" | "wrong"
    diagnosis: str | None
    points: float
    max_points: float
    message: str
    cell: int | None = None
    line: int | None = None
    code: str | None = None  # the notebook line at (cell, line), to show next to the message


@dataclass(frozen=True)
class Submission:
    """A notebook to grade and the student it belongs to. `problem` is set when discovery
    already knows it must not be read (a link pointing outside the class folder)."""
    student: str
    path: str
    problem: str | None = None
    section: str = ""  # the folders above the student's own, e.g. "section2"


@dataclass
class SubmissionResult:
    student: str
    path: str
    status: str  # GRADED | UNGRADABLE | GRADING_ERROR | MISSING
    score: float
    max_score: float
    findings: list[Finding] = field(default_factory=list)
    output: str = ""  # what the student's code printed while graded (capped)
    seconds: float = 0.0
    graded_at: str = ""  # when it was graded, "YYYY-MM-DD HH:MM:SS UTC" ("" if unknown); kept when reused
    sources: dict[int, str] = field(default_factory=dict)  # cells the findings point at, by index
    code_sha256: str = ""  # what was graded: the extracted code (or the file, if unreadable)
    reused: bool = False  # taken from the gradebook: nothing changed since it was last graded
    error: str = ""  # GRADING_ERROR only: what failed, in one line, and where the traceback is
    traceback: str = ""  # GRADING_ERROR only: for the grading log, never shown to students
    section: str = ""  # from the class folder's layout or the roster
    # The gradebook row this result is stored in (set by reuse.Reuse), so that a caller can
    # drop the result and load it again when reports are written. Not part of the result.
    gradebook_id: int | None = field(default=None, compare=False, repr=False)

    @property
    def wrong(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict == "wrong"]

    def to_dict(self) -> dict:
        data = asdict(self)
        del data["gradebook_id"]
        data["findings"] = [asdict(f) for f in self.findings]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "SubmissionResult":
        fields = {k: v for k, v in data.items() if k not in ("findings", "sources", "gradebook_id")}
        sources = {int(k): v for k, v in (data.get("sources") or {}).items()}
        return cls(**fields, findings=[Finding(**f) for f in data.get("findings", [])], sources=sources)


@dataclass(frozen=True)
class StepInfo:
    """A rubric step as reports show it."""
    id: str
    title: str
    max_points: float
    visible: bool = True  # shown to students (feedback pages, Gradescope)


@dataclass
class RunResult:
    grader_name: str
    grader_version: str
    rubric_id: str
    rubric_sha256: str
    seeds: dict[str, int]  # probe id -> seed, printed so every run can be reproduced
    submissions: list[SubmissionResult] = field(default_factory=list)
    protections: list[dict] = field(default_factory=list)  # what confined student code
    steps: list[StepInfo] = field(default_factory=list)  # the rubric's steps, in order
    rubric_title: str = ""
    show_output: bool = True  # may students see what their code printed
    show_code: bool = True  # may students see their code next to the findings
    gradescope_visibility: str = "visible"


def stored_text(result: SubmissionResult) -> str:
    """The result as the gradebook stores it: what was graded, without what belongs to one run
    (whether it was reused, the section the roster or folder gives)."""
    if result.reused or result.section:
        result = replace(result, reused=False, section="")
    return json.dumps(result.to_dict(), ensure_ascii=False)


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(slots=True)
class Entry:
    """One student of a run as it is kept in memory while the class is graded: a few hundred
    bytes, whatever the result's size. The result itself is in the gradebook (`row`) and is
    loaded again when a report needs it; only results the gradebook does not keep (grading
    errors, roster students with no notebook, files that could not be read) stay in memory."""
    student: str
    status: str
    score: float
    max_score: float
    reused: bool
    section: str
    digest: str  # of stored_text(result): the same for the result graded now and reused later
    row: int | None = None  # the gradebook row the result is loaded from
    result: SubmissionResult | None = None  # kept here when there is no row
    file_sha256: str | None = None  # the notebook file's digest (reuse.file_sha256), when it was read

    @classmethod
    def of(cls, result: SubmissionResult, file_sha256: str | None = None, keep: bool = False) -> "Entry":
        """The entry for a result in hand; the result is kept only if it has no gradebook row
        (or if `keep`: a class already in memory)."""
        kept = result if keep or result.gradebook_id is None else None
        return cls(result.student, result.status, result.score, result.max_score, result.reused, result.section,
                   text_digest(stored_text(result)), result.gradebook_id, kept, file_sha256)


Loader = Callable[[list[int]], dict[int, SubmissionResult]]  # gradebook rows -> their results


class ResultView:
    """A run's results, in the run's order, loaded from the gradebook a batch at a time each
    time they are iterated: what `RunResult.submissions` holds for a class of any size. Also
    `len()`, `view[i]` and `entries` (the small per-student records, never loaded)."""

    BATCH = 200

    def __init__(self, entries: list[Entry], load: Loader | None = None,
                 transform: Callable[[SubmissionResult], SubmissionResult] | None = None):
        self.entries = entries
        self._load = load
        self._transform = transform  # applied to each result as it is yielded

    def mapped(self, transform: Callable[[SubmissionResult], SubmissionResult]) -> "ResultView":
        """The same results, each passed through `transform` as it is loaded."""
        return ResultView(self.entries, self._load, transform)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[SubmissionResult]:
        return self.results(self.entries)

    def __getitem__(self, index: int) -> SubmissionResult:
        return next(self.results([self.entries[index]]))

    def __add__(self, more: list[SubmissionResult]) -> "ResultView":
        """The run with results in hand appended (the roster's missing students)."""
        return ResultView(self.entries + [Entry.of(r) for r in more], self._load, self._transform)

    def results(self, entries: Iterable[Entry]) -> Iterator[SubmissionResult]:
        """The results of `entries`, in their order."""
        if self._transform is None:
            return self._results(entries)
        return map(self._transform, self._results(entries))

    def _results(self, entries: Iterable[Entry]) -> Iterator[SubmissionResult]:
        batch: list[Entry] = []
        for entry in entries:
            batch.append(entry)
            if len(batch) >= self.BATCH:
                yield from self._batch(batch)
                batch = []
        yield from self._batch(batch)

    def _batch(self, batch: list[Entry]) -> Iterator[SubmissionResult]:
        rows = [e.row for e in batch if e.result is None]
        loaded = self._load(rows) if rows else {}
        for entry in batch:
            if entry.result is not None:
                yield entry.result
                continue
            stored = loaded.get(entry.row)
            if stored is None:  # the row is gone (the gradebook changed under the run): say so
                raise GradebookError(f"the gradebook no longer holds the result of {entry.student} (row {entry.row})")
            yield replace(stored, reused=entry.reused, section=entry.section, gradebook_id=entry.row)


def briefs(submissions) -> Iterable:
    """Student, status, score and max_score of each result, without loading any: the entries
    of a ResultView, or the results of a plain list."""
    return submissions.entries if isinstance(submissions, ResultView) else submissions


def selected(submissions, keep: Callable) -> list[SubmissionResult]:
    """The results whose brief `keep` accepts, loading only those."""
    if isinstance(submissions, ResultView):
        return list(submissions.results(e for e in submissions.entries if keep(e)))
    return [r for r in submissions if keep(r)]
