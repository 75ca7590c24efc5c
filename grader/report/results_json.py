"""results.json: the machine-readable record of a run (schema in the README). The instructor's
record: every step, hidden ones included; student text cleaned and capped by `neutral`.
`cell` is the 0-based index in the notebook's cell list (human-facing reports say cell + 1).

Written a submission at a time (`Writer`), so a class of any size is never held whole; the
text is exactly `json.dumps(results_document(run), indent=2, ensure_ascii=False)`."""

from __future__ import annotations

import json
from typing import TextIO

from dropout_grader.report import neutral
from dropout_grader.results import GRADING_ERROR, RunResult, SubmissionResult


def results_document(run: RunResult) -> dict:
    run = neutral.bounded(run)
    return {**_head(run), "submissions": [_submission(s) for s in run.submissions]}


def _head(run: RunResult) -> dict:
    return {"grader": {"name": run.grader_name, "version": run.grader_version, "protections": run.protections},
            "rubric": {"id": run.rubric_id, "sha256": run.rubric_sha256, "seeds": run.seeds}}


def _submission(s: SubmissionResult) -> dict:
    return {
        "student": s.student, "path": s.path, "status": s.status,
        "score": s.score, "max_score": s.max_score,
        "findings": [
            {"step": f.step, "verdict": f.verdict, "diagnosis": f.diagnosis,
             "points": f.points, "max_points": f.max_points, "message": f.message,
             "cell": f.cell, "line": f.line, "code": f.code}
            for f in s.findings
        ],
        "output": s.output,
        "seconds": s.seconds,
        "graded_at": s.graded_at,
        "sources": {str(cell): text for cell, text in s.sources.items()},
        "code_sha256": s.code_sha256,
        "reused": s.reused,
        **({"error": s.error} if s.status == GRADING_ERROR else {}),
    }


class Writer:
    """results.json onto `handle`, one submission (already cleaned by neutral) at a time."""

    def __init__(self, handle: TextIO, run: RunResult):
        self.handle = handle
        self.count = 0
        head = json.dumps(_head(neutral.bounded_header(run)), indent=2, ensure_ascii=False)
        handle.write(head[:-2] + ',\n  "submissions": [')  # the head without its closing "\n}"

    def add(self, result: SubmissionResult) -> None:
        text = json.dumps(_submission(result), indent=2, ensure_ascii=False)
        # JSON strings hold no raw line break, so every line is the item's own: indented by
        # the two levels it sits under.
        self.handle.write(("," if self.count else "") + "\n    " + text.replace("\n", "\n    "))
        self.count += 1

    def close(self) -> None:
        self.handle.write("\n  ]\n}\n" if self.count else "]\n}\n")


def render(run: RunResult) -> str:
    return neutral.render_whole(Writer, run)
