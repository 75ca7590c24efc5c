"""Put every report of a run on disk, each file written atomically."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from dropout_grader.report import grades_csv, html, junit, notebook_html, results_json
from dropout_grader.report.files import write_atomic
from dropout_grader.results import MISSING, RunResult


def write_page(path: Path, text: str) -> None:
    """A page the next run can write again: not worth waiting for the disk."""
    write_atomic(path, text, durable=False)


def write_reports(run: RunResult, out: Path, notebook_pages: bool = True, jobs: int = 1) -> list[Path]:
    """results.json, grades.csv, junit.xml, index.html, feedback/<student>.{html,md} and, unless
    `notebook_pages` is off, feedback/<student>.notebook.html (the student's own notebook with
    the findings inline; rendered again only when its inputs changed, on `jobs` processes)."""
    written = []

    def put(name: str, text: str, durable: bool = True) -> None:
        path = out / name
        write_atomic(path, text, durable)
        written.append(path)

    put("results.json", results_json.render(run))
    put("grades.csv", grades_csv.render(run))
    put("junit.xml", junit.render(run))
    templates = html.Templates()
    pages = set()
    if notebook_pages:
        submitted = replace(run, submissions=[r for r in run.submissions if r.status != MISSING])
        outcomes = notebook_html.write_pages(submitted, out / "feedback", html.file_name, write_page, jobs)
        for page in outcomes:
            if page.path is not None:
                written.append(page.path)
                pages.add(page.student)
        problems = sorted({page.problem for page in outcomes if page.path is None and page.problem
                           and page.problem.startswith("nbconvert's templates")})
        for problem in problems:  # a machine-wide problem: said once, not per student
            print(f"grade: warning: {problem}", file=sys.stderr)
    for result in run.submissions:
        if result.status == MISSING:  # on the roster, nothing submitted: no feedback to give
            continue
        name = html.file_name(result.student)
        notebook_page = notebook_html.page_name(name) if result.student in pages else None
        put(f"feedback/{name}.html", html.feedback_html(run, result, templates, notebook_page), durable=False)
        put(f"feedback/{name}.md", html.feedback_markdown(run, result, templates), durable=False)
    put("index.html", html.class_report(run, templates, pages))
    return written
