"""Put every report of a run on disk, each file written atomically."""

from __future__ import annotations

from pathlib import Path

from dropout_grader.report import grades_csv, html, junit, results_json
from dropout_grader.report.files import write_atomic
from dropout_grader.results import MISSING, RunResult


def write_reports(run: RunResult, out: Path) -> list[Path]:
    """results.json, grades.csv, junit.xml, index.html and feedback/<student>.{html,md}."""
    written = []

    def put(name: str, text: str, durable: bool = True) -> None:
        path = out / name
        write_atomic(path, text, durable)
        written.append(path)

    put("results.json", results_json.render(run))
    put("grades.csv", grades_csv.render(run))
    put("junit.xml", junit.render(run))
    templates = html.Templates()
    for result in run.submissions:
        if result.status == MISSING:  # on the roster, nothing submitted: no feedback to give
            continue
        name = html.file_name(result.student)
        put(f"feedback/{name}.html", html.feedback_html(run, result, templates), durable=False)
        put(f"feedback/{name}.md", html.feedback_markdown(run, result, templates), durable=False)
    put("index.html", html.class_report(run, templates))
    return written
