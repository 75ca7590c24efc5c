"""Feedback pages (HTML and Markdown, one per student) and the class report (index.html).
Jinja2 templates with autoescaping: student code, names and output are untrusted text."""

from __future__ import annotations

import hashlib
import re
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from dropout_grader.report import charts
from dropout_grader.results import GRADED, GRADING_ERROR, MISSING, Finding, RunResult, SubmissionResult

TEMPLATES = Path(__file__).resolve().parent / "templates"
MARKS = {"ok": "✓", "note": "•", "wrong": "✗"}
CONTEXT_LINES = 3


class Templates:
    """The compiled templates of one run: compiling them costs ~15 ms, rendering ~1 ms, so a
    class of 1000 compiles each once."""

    def __init__(self):
        import jinja2

        def environment(autoescape: bool):
            env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=autoescape,
                                     undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
            env.filters["md"] = _markdown_cell
            env.filters["fence"] = lambda text: str(text).replace("```", "`\u200b``")
            return env

        html_env, text_env = environment(True), environment(False)
        self.feedback_html = html_env.get_template("feedback.html.j2")
        self.feedback_md = text_env.get_template("feedback.md.j2")
        self.index = html_env.get_template("index.html.j2")
        self.css = (TEMPLATES / "base.css").read_text()


def file_name(student: str) -> str:
    """A safe, unique file name for a student id (which is untrusted text)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", student).strip("._") or "student"
    if safe != student:
        safe += "-" + hashlib.sha256(student.encode()).hexdigest()[:8]
    return safe[:100]


@dataclass
class _Item:
    finding: Finding
    title: str
    excerpt: list[tuple[int, str, bool]]


def _items(run: RunResult, result: SubmissionResult) -> list[_Item]:
    steps = {s.id: s for s in run.steps}
    items = []
    for finding in result.findings:
        step = steps.get(finding.step)
        if step is not None and not step.visible:
            continue
        excerpt = []
        if run.show_code and finding.verdict != "ok" and finding.cell is not None and finding.line:
            lines = result.sources.get(finding.cell, "").splitlines()
            first = max(1, finding.line - CONTEXT_LINES)
            last = min(len(lines), finding.line + CONTEXT_LINES)
            excerpt = [(n, lines[n - 1], n == finding.line) for n in range(first, last + 1)]
        items.append(_Item(finding, step.title if step else finding.step, excerpt))
    return items


def feedback_html(run: RunResult, result: SubmissionResult, templates: Templates | None = None,
                  notebook_page: str | None = None) -> str:
    """`notebook_page`: the file name of the student's annotated notebook, to link to."""
    templates = templates or Templates()
    return templates.feedback_html.render(run=run, result=result, findings=_items(run, result), marks=MARKS,
                                          css=templates.css, notebook_page=notebook_page)


def feedback_markdown(run: RunResult, result: SubmissionResult, templates: Templates | None = None) -> str:
    templates = templates or Templates()
    return templates.feedback_md.render(run=run, result=result, findings=_items(run, result), marks=MARKS)


def class_report(run: RunResult, templates: Templates | None = None, notebook_pages: set[str] = frozenset()) -> str:
    """`notebook_pages`: the students whose annotated notebook page exists, to link to."""
    templates = templates or Templates()
    rows = run.submissions
    graded = [r for r in rows if r.status == GRADED]
    scores = [r.score for r in graded]
    max_score = max((r.max_score for r in rows), default=0)
    mistakes = Counter((f.step, f.diagnosis) for r in graded for f in r.wrong)
    examples = {}
    for r in graded:
        for f in r.wrong:
            examples.setdefault((f.step, f.diagnosis), f.message)
    students = len(rows)
    reteach = [{"step": step, "diagnosis": (diagnosis or "").replace("_", " "), "count": count,
                "share": 100 * count / max(len(graded), 1), "example": examples[(step, diagnosis)]}
               for (step, diagnosis), count in mistakes.most_common(5)]
    pass_rates = []
    for step in run.steps:
        judged = [f for r in graded for f in r.findings if f.step == step.id and f.diagnosis != "not_assessed"]
        wrong = sum(f.verdict == "wrong" for f in judged)
        right = len(judged) - wrong
        pass_rates.append({"step": step.id, "title": step.title, "right": right, "wrong": wrong,
                           "rate": 100 * right / len(judged) if judged else 0.0})
    missing = sum(r.status == MISSING for r in rows)
    errors = sum(r.status == GRADING_ERROR for r in rows)
    stats = {"students": students - missing, "graded": len(graded),
             "ungradable": students - missing - len(graded) - errors, "missing": missing, "grading_errors": errors,
             "full": sum(r.score >= r.max_score for r in graded), "max_score": max_score,
             "median": statistics.median(scores) if scores else 0, "mean": statistics.fmean(scores) if scores else 0}
    # Charts describe a class; for one notebook (a student's own check) they say nothing and
    # importing matplotlib would double the run's time.
    score_chart = charts.strip_scripts(charts.score_histogram(scores, max_score)) if len(graded) > 1 else ""
    bars = [(f"{step}: {diagnosis}", count) for (step, diagnosis), count in mistakes.most_common(15)]
    mistake_chart = charts.strip_scripts(charts.mistake_bars(bars, len(graded))) if bars and len(graded) > 1 else ""
    return templates.index.render(
        run=run, stats=stats, reteach=reteach, pass_rates=pass_rates, score_chart=score_chart,
        mistake_chart=mistake_chart, css=templates.css,
        students=[{"result": r, "link": f"feedback/{file_name(r.student)}.html",
                   "notebook": f"feedback/{file_name(r.student)}.notebook.html" if r.student in notebook_pages else None}
                  for r in rows])


def _markdown_cell(text) -> str:
    return (str(text).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\r", " ").replace("\n", " "))
