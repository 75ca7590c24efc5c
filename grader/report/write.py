"""Put every report of a run on disk, each file written atomically."""

from __future__ import annotations

from pathlib import Path

from dropout_grader.report import grades_csv, html, junit, neutral, results_json
from dropout_grader.report.files import is_temporary, write_atomic
from dropout_grader.results import RunResult

FEEDBACK = "feedback"
FEEDBACK_SUFFIXES = (".html", ".md")


def write_reports(run: RunResult, out: Path) -> list[Path]:
    """results.json, grades.csv, junit.xml, index.html and feedback/<student>.{html,md}.
    Feedback pages of students no longer in the run are removed, so that the folder (often
    published as is) holds exactly this run's students."""
    written = []

    def put(name: str, text: str, durable: bool = True) -> None:
        path = out / name
        write_atomic(path, text, durable)
        written.append(path)

    safe = neutral.bounded(run)
    put("results.json", results_json.render(safe))
    put("grades.csv", grades_csv.render(safe))
    put("junit.xml", junit.render(safe))
    templates = html.Templates()
    for given, result in zip(run.submissions, safe.submissions):
        name = html.file_name(given.student)  # from the id as given: unique per id
        put(f"{FEEDBACK}/{name}.html", html.feedback_html(safe, result, templates), durable=False)
        put(f"{FEEDBACK}/{name}.md", html.feedback_markdown(safe, result, templates), durable=False)
    put("index.html", html.class_report(run, templates))
    remove_stale_feedback(out / FEEDBACK, set(written))
    return written


def remove_stale_feedback(folder: Path, keep: set[Path]) -> list[Path]:
    """Remove the feedback pages (and interrupted writes) in `folder` that are not in `keep`.
    Only regular files with the report's suffixes: anything else someone put there stays."""
    removed = []
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        if path in keep or path.is_symlink() or not path.is_file():
            continue
        if path.suffix in FEEDBACK_SUFFIXES or is_temporary(path):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
