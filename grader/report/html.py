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
from collections.abc import Iterable, Iterator
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
                  notebook_page: str | None = None, key: str | None = None) -> str:
    """`notebook_page`: the file name of the student's annotated notebook, to link to. `key`:
    what the page is made from (report/write.py), kept in a comment at its top so the next run
    can leave an unchanged page as it is."""
    templates = templates or Templates()
    return templates.feedback_html.render(css=templates.css, notebook_page=notebook_page, key=key,
                                          **_page(run, result))


def feedback_markdown(run: RunResult, result: SubmissionResult, templates: Templates | None = None) -> str:
    templates = templates or Templates()
    return templates.feedback_md.render(**_page(run, result))


def _layers_merged(text: str, layers: list[str], spaced: bool = False) -> str:
    """`forward.layer1.scale` -> `forward.layer{1,2}.scale` when the group spans layers 1, 2."""
    if len(layers) < 2:
        return text
    pattern, joined = (r"layer \d+", "layers " + " and ".join(layers)) if spaced else (r"layer\d+", "layer{" + ",".join(layers) + "}")
    return re.sub(pattern, joined, text, count=1)


class ClassSummary:
    """What the class report says of the class as a whole, gathered one result at a time (each
    already cleaned by neutral), so the class is never held whole: counts, the scores, and at
    most NAMES_PER_MISTAKE students per mistake."""

    def __init__(self, run: RunResult):
        self.run = run
        self.rows = self.graded = self.missing = self.errors = self.full = 0
        self.max_score = 0.0
        self.scores: list[float] = []
        self.order = {s.id: i for i, s in enumerate(run.steps)}
        self.who: dict[tuple[str, str | None], list[dict]] = {}  # mistake -> the first students named
        self.counts: Counter = Counter()  # mistake -> findings
        self.right: Counter = Counter()  # step -> graded notebooks right on it
        self.wrong: Counter = Counter()
        # What to re-teach: mistakes grouped by kind (the same step in any layer, the same
        # diagnosis), counted in students, described by the rubric's words, never by one
        # student's text (an exception message is one student's typo, not a topic).
        self.kind_students: Counter = Counter()
        self.kind_layers: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.kind_first: dict[tuple[str, str], str] = {}

    def add(self, r: SubmissionResult) -> None:
        self.rows += 1
        self.max_score = max(self.max_score, r.max_score)
        if r.status == MISSING:
            self.missing += 1
        elif r.status == GRADING_ERROR:
            self.errors += 1
        if r.status != GRADED:
            return
        self.graded += 1
        self.scores.append(r.score)
        self.full += r.score >= r.max_score
        kinds = set()
        for f in r.findings:
            if f.diagnosis != NOT_ASSESSED and f.step in self.order:
                (self.wrong if f.verdict == "wrong" else self.right)[f.step] += 1
            if f.verdict != "wrong":
                continue
            mistake = (f.step, f.diagnosis)
            self.counts[mistake] += 1
            named = self.who.setdefault(mistake, [])
            if len(named) < NAMES_PER_MISTAKE:
                named.append({"name": r.student, "link": _link(r)})
            kind = (re.sub(r"layer\d+", "layer*", f.step), f.diagnosis or "")
            kinds.add(kind)
            self.kind_layers[kind].update(re.findall(r"layer(\d+)", f.step))
            self.kind_first.setdefault(kind, f.step)
        self.kind_students.update(kinds)

    def reteach(self) -> list[dict]:
        titles = {s.id: s.title for s in self.run.steps}
        order = sorted(self.kind_students, key=lambda k: (-self.kind_students[k], k))
        topics = []
        for key in order[:RETEACH_TOPICS]:
            step, numbers = self.kind_first[key], sorted(self.kind_layers[key])
            count = self.kind_students[key]
            topics.append({"step": _layers_merged(step, numbers), "diagnosis": key[1].replace("_", " "),
                           "count": count, "share": 100 * count / max(self.graded, 1),
                           "about": _layers_merged(titles.get(step, step), numbers, spaced=True)})
        return topics

    def context(self) -> dict:
        """Everything index.html shows but the table of students."""
        counts, order = self.counts, self.order
        kinds = sorted(counts, key=lambda k: (-counts[k], order.get(k[0], len(order)), k[0], k[1] or ""))
        mistakes = [{"step": step, "diagnosis": diagnosis or "", "count": counts[(step, diagnosis)],
                     "share": 100 * counts[(step, diagnosis)] / max(self.graded, 1),
                     "students": self.who[(step, diagnosis)],
                     "more": max(0, counts[(step, diagnosis)] - NAMES_PER_MISTAKE)} for step, diagnosis in kinds]
        pass_rates = []
        for step in self.run.steps:
            right, wrong = self.right[step.id], self.wrong[step.id]
            pass_rates.append({"step": step.id, "title": step.title, "right": right, "wrong": wrong,
                               "rate": 100 * right / (right + wrong) if right + wrong else 0.0})
        scores = self.scores
        stats = {"students": self.rows - self.missing, "graded": self.graded,
                 "ungradable": self.rows - self.missing - self.graded - self.errors, "missing": self.missing,
                 "grading_errors": self.errors, "full": self.full, "max_score": self.max_score,
                 "median": statistics.median(scores) if scores else 0,
                 "mean": statistics.fmean(scores) if scores else 0}
        # Charts describe a class; for one notebook (a student's own check) they say nothing and
        # importing matplotlib would double the run's time.
        score_chart = charts.strip_scripts(charts.score_histogram(scores, self.max_score)) if self.graded > 1 else ""
        bars = [(f"{m['step']}: {m['diagnosis']}", m["count"]) for m in mistakes[:CHART_KINDS]]
        mistake_chart = (charts.strip_scripts(charts.mistake_bars(bars, self.graded))
                         if bars and self.graded > 1 else "")
        return {"stats": stats, "reteach": self.reteach(), "mistakes": mistakes, "pass_rates": pass_rates,
                "score_chart": score_chart, "mistake_chart": mistake_chart,
                "more_kinds": max(0, len(mistakes) - CHART_KINDS)}


def class_report_chunks(run: RunResult, summary: ClassSummary, rows: Iterable[tuple[SubmissionResult, bool]],
                        templates: Templates, key: str | None = None) -> Iterator[str]:
    """index.html, a piece at a time: `run` as neutral.bounded_header makes it, `summary` of
    the whole class, then `rows` (the class again, cleaned, each with whether its notebook
    page exists) for the table of students. `key`: what the class reports were made from
    (report/write.py), kept in a comment at the top."""
    students = ({"result": r, "link": _link(r), "notebook": (
        f"feedback/{notebook_html.page_name(file_name(r.student))}" if page else None)}
        for r, page in rows)
    return templates.index.generate(run=run, css=templates.css, students=students, key=key, **summary.context())


def class_report(run: RunResult, templates: Templates | None = None, notebook_pages: set[str] = frozenset()) -> str:
    """`notebook_pages`: the students whose annotated notebook page exists, to link to."""
    templates = templates or Templates()
    run = neutral.bounded(run)
    summary = ClassSummary(run)
    for r in run.submissions:
        summary.add(r)
    rows = ((r, r.student in notebook_pages) for r in run.submissions)
    return "".join(class_report_chunks(run, summary, rows, templates))


def _link(result: SubmissionResult) -> str:
    return f"feedback/{file_name(result.student)}.html"
