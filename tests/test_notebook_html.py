"""feedback/<student>.notebook.html: the student's notebook rendered by nbconvert with every
finding under its cell, the wrong line marked, and nothing of the notebook able to run script
or load anything when a TA opens the page."""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from dropout_grader.report import notebook_html
from dropout_grader.report.html import file_name
from dropout_grader.results import Submission

ROOT = Path(__file__).resolve().parent.parent
SUBMISSIONS = ROOT / "submissions"
GRADE = str(Path(sys.executable).with_name("grade"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class _Page(HTMLParser):
    """What the tests look for in a page: findings boxes, marked lines (by cell and line), tags."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.findings: list[dict[str, str]] = []
        self.marked: set[tuple[int, int]] = set()  # (cell, line) inside a Pygments .hll span
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._line: tuple[int, int] | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if "grader-finding" in (attributes.get("class") or "") and attributes.get("data-cell") is not None:
            self.findings.append(attributes)
        ident = attributes.get("id") or ""
        if tag == "span" and ident.startswith("cell") and "-line-" in ident:
            cell, line = ident[4:].split("-line-")
            self._line = (int(cell), int(line))
        elif tag == "span" and attributes.get("class") == "hll" and self._line is not None:
            self.marked.add(self._line)


def parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


@pytest.fixture(scope="module")
def example_class(grader):
    submissions = [Submission(p.stem, str(p)) for p in sorted(SUBMISSIONS.glob("*.ipynb"))]
    return grader.run_result(list(grader.grade_all(submissions)))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize("jobs", [1, 2])  # 2: the class is large enough for the process pool
def test_every_wrong_line_is_marked_in_its_own_cell(example_class, tmp_path, jobs):
    assert jobs == 1 or len(example_class.submissions) >= notebook_html.PARALLEL_FROM
    outcomes = notebook_html.write_pages(example_class, tmp_path, file_name, _write, jobs)
    rendered = {o.student: o for o in outcomes}
    checked = 0
    for result in example_class.submissions:
        outcome = rendered[result.student]
        if result.path.endswith("unreadable.ipynb"):
            assert outcome.path is None and "cannot read" in outcome.problem
            continue
        page = parse(outcome.path.read_text(encoding="utf-8"))
        boxes = {(int(b["data-cell"]), b.get("data-line") or "") for b in page.findings}
        for finding in result.wrong:
            if finding.cell is None:
                continue
            assert (finding.cell, str(finding.line or "")) in boxes, (result.student, finding.step)
            if finding.line:
                assert (finding.cell, finding.line) in page.marked, (result.student, finding.step)
                checked += 1
        # Only the lines of wrong findings are marked: a correct notebook has none.
        expected = {(f.cell, f.line) for f in result.findings if f.verdict != "ok" and f.cell is not None and f.line}
        assert page.marked == expected, result.student
    assert checked >= 20  # the example class has a notebook per catalogue entry


def test_a_page_is_rendered_again_only_when_its_inputs_change(example_class, tmp_path):
    first = notebook_html.write_pages(example_class, tmp_path, file_name, _write)
    again = notebook_html.write_pages(example_class, tmp_path, file_name, _write)
    assert any(o.rendered for o in first)
    assert not any(o.rendered for o in again)
    # A changed score is a changed page.
    result = next(r for r in example_class.submissions if r.wrong)
    result.score -= 1
    try:
        third = {o.student: o.rendered for o in notebook_html.write_pages(example_class, tmp_path, file_name, _write)}
    finally:
        result.score += 1
    assert [s for s, rendered in third.items() if rendered] == [result.student]


def test_hidden_steps_stay_hidden(example_class, tmp_path):
    from dataclasses import replace

    result = next(r for r in example_class.submissions if r.student == "forward_layer1_scale_missing")
    hidden = {f.step for f in result.wrong}
    steps = [replace(s, visible=s.id not in hidden) for s in example_class.steps]
    run = replace(example_class, steps=steps, submissions=[result])
    (outcome,) = notebook_html.write_pages(run, tmp_path, file_name, _write)
    text = outcome.path.read_text(encoding="utf-8")
    for step in hidden:
        assert step not in text
    assert parse(text).marked == set()


def test_the_cli_links_the_page_and_can_turn_it_off(tmp_path):
    notebook = SUBMISSIONS / "forward_layer1_scale_missing.ipynb"
    out = tmp_path / "on"
    assert subprocess.run([GRADE, str(notebook), "--out", str(out), "-q"], capture_output=True,
                          timeout=300).returncode == 0
    page = out / "feedback" / "forward_layer1_scale_missing.notebook.html"
    assert page.is_file()
    assert 'href="forward_layer1_scale_missing.notebook.html"' in (out / "feedback" / "forward_layer1_scale_missing.html").read_text()
    assert 'feedback/forward_layer1_scale_missing.notebook.html' in (out / "index.html").read_text()
    off = tmp_path / "off"
    assert subprocess.run([GRADE, str(notebook), "--out", str(off), "-q", "--no-notebook-html"],
                          capture_output=True, timeout=300).returncode == 0
    assert not list((off / "feedback").glob("*.notebook.html"))
    assert "notebook.html" not in (off / "index.html").read_text()


# --- a hostile notebook -------------------------------------------------------------------

def hostile_notebook(beacon: str) -> nbformat.NotebookNode:
    """Everything a notebook can carry that would run script or load a URL in a browser.
    Every URL points at `beacon`, a local listener: any request it sees is a failure."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "state": {}, "version_major": 2, "version_minor": 0, "x": f"<script>fetch('{beacon}/widget-state')</script>"}}
    nb.metadata["title"] = f"</title><script>fetch('{beacon}/title')</script>"
    nb.cells.append(nbformat.v4.new_markdown_cell(
        f"# Instructions\n\n<script>fetch('{beacon}/markdown-script')</script>\n\n"
        f"<img src=x onerror=\"fetch('{beacon}/onerror')\">\n\n"
        f"[click me](javascript:fetch('{beacon}/javascript-link'))\n\n"
        f"![remote]({beacon}/markdown-image.png)\n\n"
        f"<iframe src=\"{beacon}/iframe\"></iframe>\n\n<style>body {{ background: url({beacon}/css) }}</style>\n\n"
        f"<a href=\"{beacon}/plain-link\" onmouseover=\"fetch('{beacon}/hover')\">a plain link</a>\n\n"
        f"<svg><script>fetch('{beacon}/svg-script')</script></svg>\n\n<object data=\"{beacon}/object\"></object>",
        metadata={"tags": [f"\"><script>fetch('{beacon}/tag')</script>"]}))
    code = nbformat.v4.new_code_cell("print('hello')\n")
    code.outputs = [
        nbformat.v4.new_output("display_data", data={"application/javascript": f"fetch('{beacon}/js-output')",
                                                     "text/plain": "<IPython.core.display.Javascript object>"}),
        nbformat.v4.new_output("display_data", data={
            "text/html": f"<div onclick=\"fetch('{beacon}/onclick')\">html</div><script>fetch('{beacon}/html-script')</script>"
                         f"<img src=\"{beacon}/html-img.png\"><link rel=stylesheet href=\"{beacon}/link.css\">"}),
        nbformat.v4.new_output("display_data", data={
            "image/svg+xml": f"<svg xmlns='http://www.w3.org/2000/svg' onload=\"fetch('{beacon}/svg-onload')\">"
                             f"<image href='{beacon}/svg-image.png'/><script>fetch('{beacon}/svg-output')</script></svg>"}),
        nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="},
                               metadata={"filenames": {"image/png": f"{beacon}/png-filename.png"},
                                         "width": f"1 onerror=fetch('{beacon}/width')"}),
        nbformat.v4.new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "x", "version_major": 2, "version_minor": 0},
            "text/plain": "widget"}),
        nbformat.v4.new_output("stream", name="stdout", text=f"<script>fetch('{beacon}/stream')</script>\n"),
        nbformat.v4.new_output("error", ename="E", evalue="v",
                               traceback=[f"\x1b[31m<script>fetch('{beacon}/traceback')</script>\x1b[0m"]),
    ]
    code.attachments = {"x.png": {"image/png": "iVBORw0KGgo="}}
    nb.cells.append(code)
    nb.cells.append(nbformat.v4.new_raw_cell(f"<script>fetch('{beacon}/raw')</script>",
                                             metadata={"raw_mimetype": "text/html"}))
    return nb


class _Listener(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self):  # noqa: N802 - the stdlib's name
        type(self).seen.append(self.path)
        self.send_response(204)
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args):
        pass


def test_hostile_notebook_renders_inert(tmp_path, example_class):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Listener)
    _Listener.seen = []
    beacon = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        path = tmp_path / "mallory.ipynb"
        path.write_text(json.dumps(hostile_notebook(beacon)), encoding="utf-8")
        result = example_class.submissions[0]
        from dataclasses import replace

        run = replace(example_class, submissions=[replace(result, student="mallory", path=str(path), findings=[])])
        (outcome,) = notebook_html.write_pages(run, tmp_path / "out", file_name, _write)
        text = outcome.path.read_text(encoding="utf-8")
        page = parse(text)
        tags = {tag for tag, _ in page.tags}
        assert not tags & {"script", "iframe", "object", "embed", "link", "base", "form"}
        for tag, attributes in page.tags:
            assert not any(name.startswith("on") for name in attributes), (tag, attributes)
            for name in ("src", "href", "data"):
                value = (attributes.get(name) or "").strip().lower()
                assert not value.startswith("javascript:"), (tag, attributes)
                if name == "src":
                    assert value.startswith("data:image/") or value == "", (tag, attributes)
        assert "Instructions" in text  # the instructions are still there, as a heading
        if CHROMIUM is None:
            pytest.skip("no headless Chromium here (.ci/run installs Debian's chromium)")
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr",
                 "--v=0", "--virtual-time-budget=3000", f"--user-data-dir={tmp_path / 'profile'}"]
        dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", outcome.path.as_uri()],
                             capture_output=True, text=True, timeout=120)
        assert dom.returncode == 0
        assert [line for line in dom.stderr.splitlines() if "CONSOLE" in line] == []
        assert "Instructions" in dom.stdout
    finally:
        server.shutdown()
        server.server_close()
    assert _Listener.seen == []


def test_without_nbconvert_templates_the_pages_are_skipped_not_the_run(example_class, tmp_path, monkeypatch):
    def unavailable():
        raise ValueError("No template sub-directory with name 'lab' found in the following paths")

    monkeypatch.setattr(notebook_html, "NotebookRenderer", unavailable)
    notebook_html._renderer.cache_clear()
    try:
        outcomes = notebook_html.write_pages(example_class, tmp_path, file_name, _write)
    finally:
        notebook_html._renderer.cache_clear()
    assert all(o.path is None for o in outcomes)
    assert any("nbconvert's templates are not installed" in o.problem for o in outcomes)


# --- the renderer process a run of a few notebooks starts at once (report/renderer_process.py) ---

def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_pages_from_the_renderer_process_are_byte_identical(example_class, tmp_path):
    from dropout_grader.report.renderer_process import RendererProcess

    process = RendererProcess.start()
    assert process is not None
    try:
        through_process = notebook_html.write_pages(example_class, tmp_path / "process", file_name, _write,
                                                    renderer_process=process)
        # Unchanged pages are not sent again; a changed one is, to the same process.
        again = notebook_html.write_pages(example_class, tmp_path / "process", file_name, _write,
                                          renderer_process=process)
        assert not any(o.rendered for o in again)
    finally:
        process.close()
    here = notebook_html.write_pages(example_class, tmp_path / "here", file_name, _write)
    assert [(o.student, o.rendered, o.problem) for o in through_process] == [(o.student, o.rendered, o.problem) for o in here]
    assert sum(o.rendered for o in here) >= 20
    assert _files(tmp_path / "process") == _files(tmp_path / "here")


def test_when_the_renderer_process_is_gone_the_pages_are_rendered_here(example_class, tmp_path):
    from dataclasses import replace

    from dropout_grader.report.renderer_process import RendererProcess

    run = replace(example_class, submissions=example_class.submissions[:3])
    process = RendererProcess.start()
    process._process.kill()
    process._process.join()
    try:
        outcomes = notebook_html.write_pages(run, tmp_path / "a", file_name, _write, renderer_process=process)
    finally:
        process.close()
    assert all(o.rendered for o in outcomes)
    notebook_html.write_pages(run, tmp_path / "b", file_name, _write)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
