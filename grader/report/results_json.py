"""results.json: the machine-readable record of a run (schema in the README). The instructor's
record: every step, hidden ones included; student text cleaned and capped by `neutral`.
`cell` is the 0-based index in the notebook's cell list (human-facing reports say cell + 1)."""

from __future__ import annotations

import json

from dropout_grader.report import neutral
from dropout_grader.results import GRADING_ERROR, RunResult


def results_document(run: RunResult) -> dict:
    run = neutral.bounded(run)
    return {
        "grader": {"name": run.grader_name, "version": run.grader_version,
                   "protections": run.protections},
        "rubric": {"id": run.rubric_id, "sha256": run.rubric_sha256, "seeds": run.seeds},
        "submissions": [
            {
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
            for s in run.submissions
        ],
    }


def render(run: RunResult) -> str:
    return json.dumps(results_document(run), indent=2, ensure_ascii=False) + "\n"
