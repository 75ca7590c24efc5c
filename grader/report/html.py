"""Feedback pages (HTML and Markdown, one per student) and the class report (index.html).
Jinja2 templates with autoescaping; all student text arrives cleaned and capped by `neutral`,
and the Markdown template escapes it with `neutral.markdown`.

Feedback pages are the student's: hidden rubric steps are left out. The class report is the
instructor's and shows every step. Cells are counted from 1 in all of them, as in Jupyter's
own numbering of a fresh Run All (results.json keeps the 0-based index)."""

from __future__ import annotations

import hashlib
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

from dropout_grader.report import audience, charts, neutral, notebook_html
from dropout_grader.results import GRADED, GRADING_ERROR, MISSING, Finding, RunResult, SubmissionResult

TEMPLATES = Path(__file__).resolve().parent / "templates"
MARKS = {"ok": "✓", "note": "•", "wrong": "✗"}
CONTEXT_LINES = 3
NOT_ASSESSED = "not_assessed"
CHART_KINDS = 15  # bars in the mistake chart; the table below it lists every kind
RETEACH_TOPICS = 5
NAMES_PER_MISTAKE = 20  # students named per row of the mistake table, then "and N more"
FILE_NAME_CHARS = 80  # of the readable part of a feedback file's name
WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


class Templates:
    """The compiled templates of one run: compiling them costs ~15 ms, rendering ~1 ms, so a
    class of 1000 compiles each once."""

    def __init__(self):
        import jinja2

        def environment(autoescape: bool):
            env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=autoescape,
                                     undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
            env.filters["md"] = neutral.markdown
            env.filters["fence"] = neutral.fence_safe
            return env

        html_env, text_env = environment(True), environment(False)
        self.feedback_html = html_env.get_template("feedback.html.j2")
        self.feedback_md = text_env.get_template("feedback.md.j2")
        self.index = html_env.get_template("index.html.j2")
        self.css = (TEMPLATES / "base.css").read_text()


def file_name(student: str) -> str:
    """A safe file name for a student id (untrusted text), unique per id: an id made only of
    lowercase letters, digits, '.', '_' and '-' is its own name; any other id is cut to a
    readable prefix and then gets '~' and 16 hex digits of its sha256, so no two ids share a
    name (on case-insensitive file systems too) and no hashed name equals a plain one."""
    safe = re.sub(r"[^a-z0-9._-]+", "_", student.lower()).strip("._") or "student"
    if safe == student and len(safe) <= FILE_NAME_CHARS and safe.split(".")[0] not in WINDOWS_RESERVED:
        return safe
    return f"{safe[:FILE_NAME_CHARS]}~{hashlib.sha256(student.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"


@dataclass
class _Item:
    """One row of a feedback page: a finding, or several not-assessed steps of one function
    that share a reason (said once)."""
    finding: Finding
    title: str
    excerpt: list[tuple[int, str, bool]]
    steps: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return ", ".join(self.steps) if self.steps else self.finding.step

    @property
    def points(self) -> str:
        return f"{self.finding.points:g}/{self.finding.max_points:g}"


def _items(run: RunResult, result: SubmissionResult) -> list[_Item]:
    steps = {s.id: s for s in run.steps}
    items: list[_Item] = []
    collapsed: dict[tuple[str, str], _Item] = {}  # (function, reason) -> its row
    for finding in audience.visible_findings(run, result):
        step = steps.get(finding.step)
        if finding.diagnosis == NOT_ASSESSED:
            key = (finding.step.split(".")[0], finding.message)
            if key in collapsed:
                row = collapsed[key]
                row.steps.append(finding.step)
                row.finding = replace(row.finding, points=row.finding.points + finding.points,
                                      max_points=row.finding.max_points + finding.max_points)
                row.title = "not assessed"
                continue
            collapsed[key] = _Item(finding, step.title if step else finding.step, [], [finding.step])
            items.append(collapsed[key])
            continue
        excerpt = []
        if run.show_code and finding.verdict != "ok" and finding.cell is not None and finding.line:
            lines = result.sources.get(finding.cell, "").splitlines()
            first = max(1, finding.line - CONTEXT_LINES)
            last = min(len(lines), finding.line + CONTEXT_LINES)
            excerpt = [(n, lines[n - 1], n == finding.line) for n in range(first, last + 1)]
        items.append(_Item(finding, step.title if step else finding.step, excerpt))
    return items


def _page(run: RunResult, result: SubmissionResult) -> dict:
    """What both feedback templates show of one submission."""
    result = neutral.bounded_result(result)
    reason = result.findings[0].message if result.findings else result.status
    return {"run": run, "result": result, "findings": _items(run, result), "marks": MARKS,
            "not_graded": reason if result.status != GRADED else None,
            "graded_at": result.graded_at or "date not recorded",
            "code_sha256": result.code_sha256[:12] or "none"}


def feedback_html(run: RunResult, result: SubmissionResult, templates: Templates | None = None,
                  notebook_page: str | None = None) -> str:
    """`notebook_page`: the file name of the student's annotated notebook, to link to."""
    templates = templates or Templates()
    return templates.feedback_html.render(css=templates.css, notebook_page=notebook_page, **_page(run, result))


def feedback_markdown(run: RunResult, result: SubmissionResult, templates: Templates | None = None) -> str:
    templates = templates or Templates()
    return templates.feedback_md.render(**_page(run, result))


def _layers_merged(text: str, layers: list[str], spaced: bool = False) -> str:
    """`forward.layer1.scale` -> `forward.layer{1,2}.scale` when the group spans layers 1, 2."""
    if len(layers) < 2:
        return text
    pattern, joined = (r"layer \d+", "layers " + " and ".join(layers)) if spaced else (r"layer\d+", "layer{" + ",".join(layers) + "}")
    return re.sub(pattern, joined, text, count=1)


def _reteach(run: RunResult, graded: list[SubmissionResult]) -> list[dict]:
    """What to re-teach: mistakes grouped by kind (the same step in any layer, the same
    diagnosis), counted in students, described by the rubric's words, never by one student's
    text (an exception message is one student's typo, not a topic)."""
    titles = {s.id: s.title for s in run.steps}
    students: dict[tuple[str, str], set[int]] = defaultdict(set)
    layers: dict[tuple[str, str], set[str]] = defaultdict(set)
    first_step: dict[tuple[str, str], str] = {}
    for index, result in enumerate(graded):
        for finding in result.wrong:
            key = (re.sub(r"layer\d+", "layer*", finding.step), finding.diagnosis or "")
            students[key].add(index)
            layers[key].update(re.findall(r"layer(\d+)", finding.step))
            first_step.setdefault(key, finding.step)
    order = sorted(students, key=lambda k: (-len(students[k]), k))
    topics = []
    for key in order[:RETEACH_TOPICS]:
        step, numbers = first_step[key], sorted(layers[key])
        topics.append({"step": _layers_merged(step, numbers), "diagnosis": key[1].replace("_", " "),
                       "count": len(students[key]), "share": 100 * len(students[key]) / max(len(graded), 1),
                       "about": _layers_merged(titles.get(step, step), numbers, spaced=True)})
    return topics


def class_report(run: RunResult, templates: Templates | None = None, notebook_pages: set[str] = frozenset()) -> str:
    """`notebook_pages`: the students whose annotated notebook page exists, to link to."""
    templates = templates or Templates()
    run = neutral.bounded(run)
    rows = run.submissions
    graded = [r for r in rows if r.status == GRADED]
    scores = [r.score for r in graded]
    max_score = max((r.max_score for r in rows), default=0)
    order = {s.id: i for i, s in enumerate(run.steps)}
    who: dict[tuple[str, str | None], list[SubmissionResult]] = defaultdict(list)
    for r in graded:
        for f in r.wrong:
            who[(f.step, f.diagnosis)].append(r)
    counts = Counter({kind: len(people) for kind, people in who.items()})
    kinds = sorted(counts, key=lambda k: (-counts[k], order.get(k[0], len(order)), k[0], k[1] or ""))
    mistakes = [{"step": step, "diagnosis": diagnosis or "", "count": counts[(step, diagnosis)],
                 "share": 100 * counts[(step, diagnosis)] / max(len(graded), 1),
                 "students": [{"name": r.student, "link": _link(r)} for r in who[(step, diagnosis)][:NAMES_PER_MISTAKE]],
                 "more": max(0, counts[(step, diagnosis)] - NAMES_PER_MISTAKE)} for step, diagnosis in kinds]
    pass_rates = []
    for step in run.steps:
        judged = [f for r in graded for f in r.findings if f.step == step.id and f.diagnosis != NOT_ASSESSED]
        wrong = sum(f.verdict == "wrong" for f in judged)
        right = len(judged) - wrong
        pass_rates.append({"step": step.id, "title": step.title, "right": right, "wrong": wrong,
                           "rate": 100 * right / len(judged) if judged else 0.0})
    missing = sum(r.status == MISSING for r in rows)
    errors = sum(r.status == GRADING_ERROR for r in rows)
    stats = {"students": len(rows) - missing, "graded": len(graded),
             "ungradable": len(rows) - missing - len(graded) - errors, "missing": missing, "grading_errors": errors,
             "full": sum(r.score >= r.max_score for r in graded), "max_score": max_score,
             "median": statistics.median(scores) if scores else 0, "mean": statistics.fmean(scores) if scores else 0}
    # Charts describe a class; for one notebook (a student's own check) they say nothing and
    # importing matplotlib would double the run's time.
    score_chart = charts.strip_scripts(charts.score_histogram(scores, max_score)) if len(graded) > 1 else ""
    bars = [(f"{m['step']}: {m['diagnosis']}", m["count"]) for m in mistakes[:CHART_KINDS]]
    mistake_chart = charts.strip_scripts(charts.mistake_bars(bars, len(graded))) if bars and len(graded) > 1 else ""
    return templates.index.render(
        run=run, stats=stats, reteach=_reteach(run, graded), mistakes=mistakes, pass_rates=pass_rates,
        score_chart=score_chart, mistake_chart=mistake_chart, more_kinds=max(0, len(mistakes) - CHART_KINDS),
        css=templates.css, students=[{"result": r, "link": _link(r), "notebook": (
            f"feedback/{notebook_html.page_name(file_name(r.student))}" if r.student in notebook_pages else None)}
            for r in rows])


def _link(result: SubmissionResult) -> str:
    return f"feedback/{file_name(result.student)}.html"
