"""Put every report of a run on disk, each file written atomically, the class streamed through
(never held whole), and nothing made again whose inputs did not change."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from dropout_grader.report import grades_csv, html, junit, keys, neutral, notebook_html, results_json
from dropout_grader.report.files import atomic_file, is_temporary, write_atomic
from dropout_grader.results import MISSING, Entry, ResultView, RunResult

FEEDBACK = "feedback"
FEEDBACK_SUFFIXES = (".html", ".md")
CLASS_REPORTS = ("results.json", "grades.csv", "junit.xml", "index.html")
BATCH = 256  # students whose pages are checked (and results loaded) at once


def write_page(path: Path, text: str) -> None:
    """A page the next run can write again: not worth waiting for the disk."""
    write_atomic(path, text, durable=False)


def write_reports(run: RunResult, out: Path, notebook_pages: bool = True, jobs: int = 1,
                  renderer_process=None) -> "Written":
    """results.json, grades.csv, junit.xml, index.html, feedback/<student>.{html,md} and, unless
    `notebook_pages` is off, feedback/<student>.notebook.html (the student's own notebook with
    the findings inline, on `jobs` processes). Every report is made from the run as
    `neutral.bounded` cleans it (student ids included, so file names and links agree).

    `run.submissions` may be a ResultView (the class in the gradebook): results are then
    loaded a batch at a time, as often as a report needs them. Each page, and the four class
    reports together, carry a key of what they were made from; a report whose key did not
    change is not made again (an unchanged re-run renders nothing). Feedback pages of students
    no longer in the run are removed, so that the folder (often published as is) holds
    exactly this run's students. `renderer_process`: see notebook_html.write_pages."""
    view = run.submissions if isinstance(run.submissions, ResultView) else ResultView(
        [Entry.of(r, keep=True) for r in run.submissions])
    header = neutral.bounded_header(run)
    base = keys.header_key(header, notebook_pages)
    folder = out / FEEDBACK
    lazy = _LazyTemplates()
    pages = bytearray(len(view))  # 1 where the student's notebook page exists
    written = Written(out, notebook_pages, view.entries, pages)
    with notebook_html.PagePool(header, folder, html.file_name, write_page, jobs, renderer_process) as pool:
        for start in range(0, len(view), BATCH):
            _write_pages(view, range(start, min(start + BATCH, len(view))), header, base, folder, pool,
                         pages, written, lazy, notebook_pages)
        if pool.unavailable and pool.unavailable.startswith("nbconvert's templates"):
            print(f"grade: warning: {pool.unavailable}", file=sys.stderr)  # machine-wide: said once
    class_key = _class_key(base, view.entries, pages)
    if not _unchanged(out, class_key):
        _write_class_reports(view, header, out, pages, lazy, class_key)
    remove_stale_feedback(folder, written)
    return written


def _write_pages(view: ResultView, indices: range, header: RunResult, base: str, folder: Path,
                 pool: "notebook_html.PagePool", pages: bytearray, written: "Written", lazy: "_LazyTemplates",
                 notebook_pages: bool) -> None:
    """The feedback pages of the students `indices`, made again where their key changed; only
    those students' results are loaded."""
    entries = view.entries
    names: dict[int, str] = {}
    notebook_keys: dict[int, str | None] = {}
    load = []
    for i in indices:
        entry = entries[i]
        if entry.status == MISSING:  # on the roster, nothing submitted: no feedback to give
            continue
        names[i] = name = html.file_name(neutral.identifier(entry.student))
        if notebook_pages:
            # Keyed on the notebook file's digest when grading read it; else on its bytes, read then.
            notebook_keys[i] = (keys.key(base, "notebook", entry.digest, entry.section, entry.file_sha256)
                                if entry.file_sha256 else None)
            if notebook_keys[i] and notebook_html.existing_key(folder / notebook_html.page_name(name)) == notebook_keys[i]:
                pages[i] = 1
            else:
                load.append(i)
                continue
        if notebook_html.existing_key(folder / f"{name}.html") != _feedback_key(base, entry, pages[i]) \
                or not (folder / f"{name}.md").is_file():
            load.append(i)
    if not load:
        return
    raw = dict(zip(load, view.results(entries[i] for i in load)))
    results = {i: neutral.bounded_result(result) for i, result in raw.items()}
    if notebook_pages:
        pending = [i for i in load if not pages[i]]
        # The notebook is read from its path as given; everything shown comes cleaned.
        tasks = [(replace(results[i], path=raw[i].path), notebook_keys[i]) for i in pending]
        for i, outcome in zip(pending, pool.write(tasks)):
            pages[i] = outcome.path is not None
    for i in load:
        entry, result = entries[i], results[i]
        key = _feedback_key(base, entry, pages[i])
        path = folder / f"{names[i]}.html"
        if notebook_html.existing_key(path) == key and (folder / f"{names[i]}.md").is_file():
            continue
        page = notebook_html.page_name(names[i]) if pages[i] else None
        # The Markdown page first: the HTML page holds the key of both.
        write_page(folder / f"{names[i]}.md", html.feedback_markdown(header, result, lazy.get()))
        write_page(path, html.feedback_html(header, result, lazy.get(), page, key=key))


def _class_key(base: str, entries: list[Entry], pages: bytearray) -> str:
    """What the four class reports are made from: every result, whether it was reused (results.json
    says it), its section, which notebook pages exist (index.html links them). Hashed as it
    goes: nothing the size of the class is built."""
    digest = hashlib.sha256(base.encode())
    for entry, page in zip(entries, pages):
        digest.update(f"\0{entry.digest}\0{entry.reused:d}{page:d}{entry.status == MISSING:d}\0{entry.section}".encode(
            "utf-8", "surrogatepass"))
    return digest.hexdigest()


def _feedback_key(base: str, entry: Entry, notebook_page: int) -> str:
    # Not whether the result was reused: no page says it (results.json does).
    return keys.key(base, "feedback", entry.digest, entry.section, bool(notebook_page))


def _write_class_reports(view: ResultView, header: RunResult, out: Path, pages: bytearray,
                         lazy: "_LazyTemplates", class_key: str) -> None:
    """results.json, grades.csv and junit.xml in one pass over the class, index.html in a
    second (its summary comes before its table of students). index.html, written last, keeps
    `class_key` and the other three files' signatures: a crash before it leaves the old key,
    and the next run makes all four again."""
    summary = html.ClassSummary(header)
    with atomic_file(out / "results.json") as results_file, atomic_file(out / "grades.csv") as grades_file, \
            atomic_file(out / "junit.xml") as junit_file:
        writers = [results_json.Writer(results_file, header), grades_csv.Writer(grades_file, header),
                   junit.Writer(junit_file, header), summary]
        for result in view.mapped(neutral.bounded_result):
            for writer in writers:
                writer.add(result)
        for writer in writers[:3]:
            writer.close()
    rows = zip(view.mapped(neutral.bounded_result), pages)
    with atomic_file(out / "index.html") as index:
        for chunk in html.class_report_chunks(header, summary, rows, lazy.get(), key=_index_key(out, class_key)):
            index.write(chunk)


def _index_key(out: Path, class_key: str) -> str:
    """`class_key`, then the size, time and inode of the other class reports as they are now."""
    return " ".join([class_key] + [":".join(map(str, _signature(out / name))) for name in CLASS_REPORTS[:3]])


def _unchanged(out: Path, class_key: str) -> bool:
    """The class reports on disk were made from `class_key`, and are as they were written."""
    try:
        return notebook_html.existing_key(out / "index.html") == _index_key(out, class_key)
    except OSError:  # one of them is gone
        return False


def _signature(path: Path) -> tuple[int, int, int]:
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns, info.st_ino


class _LazyTemplates:
    """The templates, compiled only if a page is to be made (an unchanged re-run makes none)."""

    def __init__(self):
        self._templates = None

    def get(self) -> html.Templates:
        if self._templates is None:
            self._templates = html.Templates()
        return self._templates


@dataclass
class Written:
    """The reports of a run, as paths (iterable), named from the run's entries when asked: the
    class costs nothing more here than the entries and one byte per student (`pages`: 1 where
    the notebook page exists)."""
    out: Path
    notebook_pages: bool
    entries: list[Entry]
    pages: bytearray

    def _students(self) -> Iterator[tuple[str, int]]:
        for entry, page in zip(self.entries, self.pages):
            if entry.status != MISSING:
                yield html.file_name(neutral.identifier(entry.student)), page

    def __iter__(self) -> Iterator[Path]:
        for name in CLASS_REPORTS:
            yield self.out / name
        folder = self.out / FEEDBACK
        for stem, page in self._students():
            yield folder / f"{stem}.html"
            yield folder / f"{stem}.md"
            if self.notebook_pages and page:
                yield folder / notebook_html.page_name(stem)

    def keeper(self):
        """A test of a feedback/ file name: one of this run's pages? (The names are gathered
        here, once, and dropped with the test.)"""
        stems: set[str] = set()
        with_page: set[str] = set()
        for stem, page in self._students():
            stems.add(stem)
            if self.notebook_pages and page:
                with_page.add(stem)

        def keeps(file_name: str) -> bool:
            if file_name.endswith(".notebook.html") and file_name[:-len(".notebook.html")] in with_page:
                return True
            return any(file_name.endswith(suffix) and file_name[:-len(suffix)] in stems
                       for suffix in FEEDBACK_SUFFIXES)

        return keeps


def remove_stale_feedback(folder: Path, keep) -> list[Path]:
    """Remove the feedback pages (and interrupted writes) in `folder` that `keep` (a Written,
    or a set of paths) does not hold. Only regular files with the report's suffixes: anything
    else someone put there stays."""
    removed = []
    if not folder.is_dir():
        return removed
    kept = keep.keeper() if isinstance(keep, Written) else (lambda name: folder / name in keep)
    for path in folder.iterdir():
        if kept(path.name) or path.is_symlink() or not path.is_file():
            continue
        if path.suffix in FEEDBACK_SUFFIXES or is_temporary(path):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
