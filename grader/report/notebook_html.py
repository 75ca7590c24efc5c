"""The student's own notebook as feedback (`feedback/<student>.notebook.html`), as nbgrader's
feedback looks: nbconvert's HTMLExporter renders the notebook as saved (never executed, outputs
and images included, one self-contained file), and each finding is shown in a box right under
its cell, with the line at fault marked.

The notebook is untrusted. Three layers keep the page a TA opens inert:
1. `FindingsPreprocessor` drops everything in the notebook's metadata the page does not need
   (widget state, attachments, output file names that would load files or remote content)
   and replaces each cell's metadata with the grader's own annotations;
2. the exporter runs with `sanitize_html=True`, so markdown, HTML and SVG outputs pass through
   `clean_html`, which we point at our own bleach allow-list (notebook_preprocessor.sanitize_html:
   headings and tables kept, no script, style, frame, handler or self-loading URL); JavaScript
   outputs are not emitted;
3. our template loads no script at all (no require.js, MathJax, mermaid or widget manager) and
   sets a Content-Security-Policy that forbids scripts and every remote load, so whatever a
   sanitiser might miss still cannot run or phone home.

Rendering one notebook costs tens of milliseconds (see benchmarks/throughput.py), so a page
carries a key of everything it was made from and is rendered again only when that changes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from dropout_grader.report import neutral
from dropout_grader.report.keys import report_digest
from dropout_grader.results import Finding, RunResult, SubmissionResult

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE_FILE = "notebook_feedback.html.j2"
# A notebook larger than this is not rendered (its outputs are most of it); the regular
# feedback page still says everything.
MAX_RENDERED_BYTES = 20 * 2**20
KEY_MARK = "<!-- dropout-grader-page-key: "  # a comment: nbconvert's BeautifulSoup pass keeps it as is


class NotebookPageError(Exception):
    """This student's notebook cannot be rendered (unreadable, too large); the message says why."""


@dataclass(frozen=True)
class Annotation:
    """One finding as the page shows it, attached to a cell (or to none: the summary only)."""
    number: int  # 1-based, for anchors and the summary's links
    step: str
    title: str
    verdict: str
    points: float
    max_points: float
    message: str
    cell: int | None  # 0-based index in the notebook's cell list (as Finding.cell)
    line: int | None  # 1-based within the cell

    def as_metadata(self) -> dict:
        return {"number": self.number, "step": self.step, "title": self.title, "verdict": self.verdict,
                "points": self.points, "max_points": self.max_points, "message": self.message,
                "line": self.line}


def annotations(run: RunResult, result: SubmissionResult) -> list[Annotation]:
    """The findings a student may see (the rubric's visibility), in report order."""
    steps = {s.id: s for s in run.steps}
    shown = []
    for finding in result.findings:
        step = steps.get(finding.step)
        if step is not None and not step.visible:
            continue
        shown.append(_annotation(len(shown) + 1, finding, step.title if step else finding.step))
    return shown


def _annotation(number: int, finding: Finding, title: str) -> Annotation:
    return Annotation(number, finding.step, title, finding.verdict, finding.points, finding.max_points,
                      finding.message, finding.cell, finding.line if finding.cell is not None else None)


def page_key(run: RunResult, result: SubmissionResult, notebook: bytes) -> str:
    """Everything a page is made from: the notebook's bytes, what is shown of the findings,
    the score, and the grader's build (templates included). Same key, same page."""
    digest = hashlib.sha256(notebook)
    shown = [a.as_metadata() | {"cell": a.cell} for a in annotations(run, result)]
    digest.update(json.dumps([run.grader_version, run.rubric_id, run.rubric_title, result.student,
                              result.score, result.max_score, result.status, shown, _provenance(result),
                              report_digest()], sort_keys=True, default=str).encode())
    return digest.hexdigest()


def existing_key(path: Path) -> str | None:
    """The key a page on disk was made from, read from its first kilobytes."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096).decode("utf-8", "replace")
    except OSError:
        return None
    start = head.find(KEY_MARK)
    if start < 0:
        return None
    start += len(KEY_MARK)
    end = head.find(" -->", start)
    return head[start:end] if end > start else None


def read_notebook_bytes(path: Path) -> bytes:
    """The notebook file, read as the grader reads untrusted files (notebook.read_notebook_bytes:
    a regular file only, bounded), and refused past the size and JSON objects a page is worth."""
    from dropout_grader.notebook import NotebookError, check_json_objects, read_notebook_bytes as read

    try:
        data = read(path)
        check_json_objects(data)
    except NotebookError as exc:
        raise NotebookPageError(exc.message) from None
    if len(data) > MAX_RENDERED_BYTES:
        raise NotebookPageError(f"the notebook is {len(data) / 2**20:.0f} MB; pages are made "
                                f"for notebooks up to {MAX_RENDERED_BYTES // 2**20} MB")
    return data


def mark_code(source: str, lines: list[int], anchor: str) -> str:
    """The cell's code, highlighted by Pygments (as nbconvert does), with `lines` marked and
    every line wrapped in a span whose id is `<anchor>-<n>`, so the summary can link to it."""
    return _marked_code(source, tuple(lines), anchor)


@lru_cache(maxsize=2048)
def _marked_code(source: str, lines: tuple[int, ...], anchor: str) -> str:
    """Most cells are the same in every student's notebook (the course's own code): highlighted
    once per run, not once per page (Pygments was two thirds of a page's time)."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    formatter = HtmlFormatter(cssclass="highlight hl-ipython3", hl_lines=list(lines), linespans=anchor)
    return highlight(source, PythonLexer(), formatter)


def _exporter_class():
    """nbconvert's HTMLExporter without its last step, which parses the whole page again with
    BeautifulSoup only to add alt text and tabindex attributes: 60% of a page's time on a
    notebook with a 300 kB image. The steps before it are HTMLExporter's own, in its order."""
    from nbconvert import HTMLExporter
    from nbconvert.exporters.templateexporter import TemplateExporter
    from nbconvert.filters.highlight import Highlight2HTML
    from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

    class AnnotatedNotebookExporter(HTMLExporter):
        def from_notebook_node(self, nb, resources=None, **kw):
            self.register_filter("highlight_code", self.filters.get(
                "highlight_code", Highlight2HTML(pygments_lexer="ipython3", parent=self)))
            resources = self._init_resources(resources)
            self.register_filter("filter_data_type", WidgetsDataTypeFilter(
                notebook_metadata=self._nb_metadata, parent=self, resources=resources))
            return TemplateExporter.from_notebook_node(self, nb, resources, **kw)

    return AnnotatedNotebookExporter


class NotebookRenderer:
    """Renders notebook feedback pages for one run. Building the exporter and compiling its
    templates is done once; each page is then one `render` call."""

    def __init__(self):
        from dropout_grader.report.notebook_preprocessor import FindingsPreprocessor, sanitize_html

        self.exporter = _exporter_class()(template_name="lab", template_file=TEMPLATE_FILE,
                                     extra_template_paths=[str(TEMPLATES)], sanitize_html=True,
                                     embed_images=False, exclude_anchor_links=True,
                                     # validated once after every preprocessor, not after each
                                     # of the 13 (40% of a page's time; the page is the same)
                                     optimistic_validation=True)
        self.exporter.register_filter("mark_code", mark_code)
        self.exporter.register_filter("clean_html", sanitize_html)
        self.exporter.register_preprocessor(FindingsPreprocessor(), enabled=True)

    def render(self, run: RunResult, result: SubmissionResult, notebook: bytes, key: str,
               links: dict[str, str]) -> str:
        """`links`: where the page points ("feedback": the regular feedback page's file name)."""
        import nbformat

        try:
            node = nbformat.reads(notebook.decode("utf-8"), as_version=4)
        except (UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError) as exc:
            # nbformat signals a malformed notebook with any of these (NotJSONError is a ValueError).
            raise NotebookPageError(f"nbformat cannot read the notebook ({type(exc).__name__})") from None
        shown = annotations(run, result)
        resources = {
            "metadata": {"name": result.student},
            "grader": {
                "key": key, "student": result.student, "rubric_title": run.rubric_title,
                "score": result.score, "max_score": result.max_score, "status": result.status,
                "grader": f"{run.grader_name} {run.grader_version}", "links": links,
                "annotations": [a.as_metadata() | {"cell": a.cell} for a in shown],
                "cell_count": len(node.cells), **_provenance(result),
            },
        }
        body, _ = self.exporter.from_notebook_node(node, resources=resources)
        return body


def _provenance(result: SubmissionResult) -> dict:
    """When it was graded, from which file, which code: on every feedback page."""
    return {"graded_at": result.graded_at or "date not recorded",
            "path": neutral.clean(result.path, neutral.PATH_CHARS, one_line=True),
            "code_sha256": result.code_sha256[:12] or "none"}


def page_name(feedback_name: str) -> str:
    """`feedback/<name>.notebook.html`, beside the student's regular feedback page."""
    return f"{feedback_name}.notebook.html"


@dataclass(frozen=True)
class PageOutcome:
    student: str
    path: Path | None  # None when the notebook could not be rendered
    rendered: bool  # False: the page on disk was already made from the same inputs
    problem: str = ""


def write_pages(run: RunResult, folder: Path, file_name, write, jobs: int = 1,
                renderer_process=None) -> list[PageOutcome]:
    """A notebook page per submission whose notebook can be read, rendered only where its key
    changed, on `jobs` processes when there are many. `file_name(student)` gives the feedback
    file's stem; `write(path, text)` writes a file the way every report is written (it must be
    a module-level function when jobs > 1 or a `renderer_process` is given).
    `renderer_process` (renderer_process.RendererProcess): where a few pages are rendered, its
    nbconvert made ready while the run graded."""
    header = replace(run, submissions=[])  # what every page needs of the run, without the class
    with PagePool(header, folder, file_name, write, jobs, renderer_process) as pool:
        return pool.write([(result, None) for result in run.submissions])


class PagePool:
    """Writes the notebook pages of one run, a batch at a time (report/write.py streams the
    class through it): `write([(result, key), ...])`. A page whose key is that of the page on
    disk is left as it is; `key` None means the key is made from the notebook's bytes
    (page_key). Pages are rendered on `jobs` processes when a batch has many to render; the
    pool is started once, for the run."""

    def __init__(self, header: RunResult, folder: Path, file_name, write, jobs: int = 1, renderer_process=None):
        self.header, self.folder, self.file_name, self.write_file, self.jobs = header, folder, file_name, write, jobs
        self.renderer_process = renderer_process  # see write_pages
        self._executor = None
        self.unavailable: str | None = None  # why no page can be rendered here, once known

    def write(self, tasks: list[tuple[SubmissionResult, str | None]]) -> list[PageOutcome]:
        outcomes: dict[str, PageOutcome] = {}
        pending: list[tuple[SubmissionResult, str | None]] = []
        for result, key in tasks:
            path = self.folder / page_name(self.file_name(result.student))
            if key is None:
                try:
                    key = page_key(replace(self.header, submissions=[result]), result,
                                   read_notebook_bytes(Path(result.path)))
                except NotebookPageError as exc:
                    outcomes[result.student] = PageOutcome(result.student, None, False, str(exc))
                    continue
            if existing_key(path) == key:
                outcomes[result.student] = PageOutcome(result.student, path, False)
            else:
                pending.append((result, key))
        pooled = self.jobs > 1 and (self._executor is not None or len(pending) >= PARALLEL_FROM)
        if pending and self.renderer_process is not None and not pooled:
            done = self.renderer_process.render([(self.header, result, key, self.folder, self.file_name,
                                                  self.write_file) for result, key in pending])
            if done is not None:  # (None: the process is gone; rendered here instead)
                outcomes.update((o.student, o) for o in done)
                pending = []
        if pending and self.unavailable is None:
            try:
                _renderer()  # built here once; forked workers inherit it
            except RendererUnavailable as exc:
                self.unavailable = str(exc)
        if pending and self.unavailable is not None:
            outcomes.update((r.student, PageOutcome(r.student, None, False, self.unavailable)) for r, _ in pending)
            pending = []
        work = [(self.header, result, key, self.folder, self.file_name, self.write_file) for result, key in pending]
        if pooled:
            done = self._pool().map(_render_one, work, chunksize=max(1, len(work) // (self.jobs * 8)))
        else:
            done = map(_render_one, work)
        outcomes.update((o.student, o) for o in done)
        return [outcomes[result.student] for result, _ in tasks]

    def _pool(self):
        if self._executor is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # Forked workers inherit the imported nbconvert; each builds its exporter once.
            self._executor = ProcessPoolExecutor(max_workers=self.jobs, mp_context=multiprocessing.get_context("fork"))
        return self._executor

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)


PARALLEL_FROM = 24  # fewer pages than this render faster in this process than a pool starts


class RendererUnavailable(NotebookPageError):
    """nbconvert cannot render here (its template files are not installed): no page at all."""


@lru_cache(maxsize=1)
def _renderer() -> NotebookRenderer:
    """One renderer per process (nbconvert costs ~0.5 s to import and set up: only if a page
    is to be rendered)."""
    import jinja2

    try:
        return NotebookRenderer()
    except (ValueError, jinja2.TemplateNotFound) as exc:
        # nbconvert raises ValueError when its template folders are not where this install
        # looks (`pip install --target`, a bare PYTHONPATH): the pages are skipped, not the run.
        raise RendererUnavailable(f"nbconvert's templates are not installed here ({str(exc).splitlines()[0][:200]}); "
                                  "no notebook pages were made") from None


def _render_one(task) -> PageOutcome:
    header, result, key, folder, file_name, write = task
    name = file_name(result.student)
    path = folder / page_name(name)
    try:
        notebook = read_notebook_bytes(Path(result.path))
        run = replace(header, submissions=[result])
        text = _renderer().render(run, result, notebook, key, {"feedback": f"{name}.html"})
    except NotebookPageError as exc:
        return PageOutcome(result.student, None, False, str(exc))
    write(path, text)
    return PageOutcome(result.student, path, True)
