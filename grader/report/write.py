"""Put every report of a run on disk, each file written atomically."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from dropout_grader.report import grades_csv, html, junit, neutral, notebook_html, results_json
from dropout_grader.report.files import is_temporary, write_atomic
from dropout_grader.results import MISSING, RunResult

FEEDBACK = "feedback"
FEEDBACK_SUFFIXES = (".html", ".md")


def write_page(path: Path, text: str) -> None:
    """A page the next run can write again: not worth waiting for the disk."""
    write_atomic(path, text, durable=False)


def write_reports(run: RunResult, out: Path, notebook_pages: bool = True, jobs: int = 1,
                  renderer_process=None) -> list[Path]:
    """results.json, grades.csv, junit.xml, index.html, feedback/<student>.{html,md} and, unless
    `notebook_pages` is off, feedback/<student>.notebook.html (the student's own notebook with
    the findings inline; rendered again only when its inputs changed, on `jobs` processes).
    Every report is made from the run as `neutral.bounded` cleans it (student ids included, so
    file names and links agree). Feedback pages of students no longer in the run are removed,
    so that the folder (often published as is) holds exactly this run's students.
    `renderer_process`: see notebook_html.write_pages."""
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
    pages = set()
    if notebook_pages:
        # The notebook is read from its path as given; everything shown comes cleaned.
        submitted = replace(safe, submissions=[replace(s, path=r.path) for r, s in zip(run.submissions, safe.submissions)
                                               if r.status != MISSING])
        outcomes = notebook_html.write_pages(submitted, out / FEEDBACK, html.file_name, write_page, jobs,
                                             renderer_process)
        for page in outcomes:
            if page.path is not None:
                written.append(page.path)
                pages.add(page.student)
        problems = sorted({page.problem for page in outcomes if page.path is None and page.problem
                           and page.problem.startswith("nbconvert's templates")})
        for problem in problems:  # a machine-wide problem: said once, not per student
            print(f"grade: warning: {problem}", file=sys.stderr)
    for result in safe.submissions:
        if result.status == MISSING:  # on the roster, nothing submitted: no feedback to give
            continue
        name = html.file_name(result.student)
        notebook_page = notebook_html.page_name(name) if result.student in pages else None
        put(f"{FEEDBACK}/{name}.html", html.feedback_html(safe, result, templates, notebook_page), durable=False)
        put(f"{FEEDBACK}/{name}.md", html.feedback_markdown(safe, result, templates), durable=False)
    put("index.html", html.class_report(safe, templates, pages))
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
