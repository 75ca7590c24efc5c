"""The one result model. Every front end produces these objects and every report format is
a pure function of them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

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

    @property
    def wrong(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict == "wrong"]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["findings"] = [asdict(f) for f in self.findings]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "SubmissionResult":
        fields = {k: v for k, v in data.items() if k not in ("findings", "sources")}
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
