"""`grade one.ipynb` imports only what the notebook needs: IPython's transformer, nbformat and
nbconvert stay out of the grading process for an ordinary notebook, and the shortcuts that keep
them out give what they would have given."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import CORPUS
from dropout_grader import notebook
from dropout_grader.notebook import NotebookError, parse_code_cells

ROOT = Path(__file__).resolve().parent.parent
SUBMISSIONS = ROOT / "submissions"


def read(raw: bytes, through_nbformat: bool) -> tuple:
    """What parse_code_cells gives (its cells, or its error), with or without the shortcut."""
    with pytest.MonkeyPatch.context() as patch:
        if through_nbformat:
            patch.setattr(notebook, "_plain_version_4", lambda data: False)
        try:
            return ("cells", parse_code_cells(raw, "x.ipynb"))
        except NotebookError as error:
            return ("error", error.diagnosis, error.message)
        # nbformat's own failures that the reader does not expect (e.g. UnboundLocalError in its
        # version 2 converter for `"nbformat": true`): the shortcut must leave them as they are.
        except Exception as error:  # noqa: BLE001
            return ("raises", type(error).__name__)


def notebooks() -> list[Path]:
    found = sorted(SUBMISSIONS.glob("*.ipynb"))
    if (CORPUS / "real").is_dir():
        found += sorted((CORPUS / "real").glob("*.ipynb"))
    return found


def test_real_notebooks_read_as_nbformat_reads_them():
    paths = notebooks()
    assert len(paths) >= 20
    shortcut = 0
    for path in paths:
        raw = path.read_bytes()
        assert read(raw, False) == read(raw, True), path.name
        try:
            shortcut += notebook._plain_version_4(json.loads(raw))
        except ValueError:
            pass
    assert shortcut >= 20  # the shortcut is taken, not only harmless


BASE = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "python3"}}, "cells": [
    {"cell_type": "markdown", "metadata": {}, "source": ["# Title\n", "text"]},
    {"cell_type": "code", "metadata": {"trusted": True}, "source": ["import numpy as np\n", "x = 1"],
     "outputs": [], "execution_count": 1},
    {"cell_type": "code", "metadata": {}, "source": "def f():\n    return 1\n", "outputs": [],
     "execution_count": None, "attachments": {"a.png": {"image/png": "iVBO"}}},
]}
# What a hostile or broken file may hold where the reader expects something else.
ODD = st.one_of(st.none(), st.booleans(), st.integers(-1, 5), st.just(4.0), st.just("4"), st.text(max_size=3),
                st.lists(st.one_of(st.text(max_size=3), st.integers()), max_size=3),
                st.dictionaries(st.text(max_size=3), st.one_of(st.text(max_size=3), st.integers()), max_size=2))
PLACES = [("nbformat",), ("metadata",), ("cells",), ("cells", 0), ("cells", 1), ("cells", 1, "metadata"),
          ("cells", 1, "source"), ("cells", 1, "source", 0), ("cells", 2, "attachments"),
          ("cells", 2, "attachments", "a.png"), ("cells", 1, "cell_type"), ("cells", 2, "outputs")]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PLACES), st.one_of(ODD, st.just("<delete>"))), max_size=3))
def test_any_notebook_reads_as_nbformat_reads_it(changes):
    data = copy.deepcopy(BASE)
    for place, value in changes:
        container = data
        try:
            for key in place[:-1]:
                container = container[key]
            if value == "<delete>":
                del container[place[-1]]
            else:
                container[place[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or replaced the place
    raw = json.dumps(data).encode()
    assert read(raw, False) == read(raw, True)


def test_grading_one_notebook_imports_only_what_it_needs(tmp_path):
    """The grading process of `grade one.ipynb` (its notebook page is rendered by a process of
    its own, report/renderer_process.py), for a notebook with the usual `%matplotlib inline`."""
    source = SUBMISSIONS / "forward_layer1_scale_missing.ipynb"
    data = json.loads(source.read_text(encoding="utf-8"))
    first_code = next(c for c in data["cells"] if c["cell_type"] == "code")
    first_code["source"] = ["%matplotlib inline\n", "!pip install -q nothing\n"] + (
        first_code["source"] if isinstance(first_code["source"], list) else [first_code["source"]])
    path = tmp_path / "one.ipynb"
    path.write_text(json.dumps(data), encoding="utf-8")
    code = ("import sys\nfrom dropout_grader.cli import main\n"
            f"status = main([{str(path)!r}, '--out', {str(tmp_path / 'out')!r}, '-q'])\n"
            "unneeded = {'IPython', 'nbformat', 'nbconvert', 'wcwidth', 'xml.sax'}\n"
            "print(status, sorted(m for m in sys.modules if m in unneeded or m.split('.')[0] in unneeded))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.splitlines()[-1] == "0 []", done.stdout + done.stderr
    assert (tmp_path / "out" / "feedback" / "one.notebook.html").is_file()
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["submissions"][0]["status"] == "graded"


def test_the_renderer_process_starts_only_for_pages_not_yet_made(tmp_path):
    """A first run of a few notebooks gets its pages' renderer started at once; a re-run whose
    pages are on disk (mostly unchanged: not rendered again) does not spend a process on it,
    nor does a class, nor a run without pages."""
    from dropout_grader.cli import build_parser, start_renderer_process
    from dropout_grader.report.notebook_html import PARALLEL_FROM
    from dropout_grader.results import Submission

    one = [Submission("Ada Lovelace", "ada.ipynb")]
    args = build_parser().parse_args(["ada.ipynb", "--out", str(tmp_path)])
    process = start_renderer_process(args, one)
    assert process is not None
    process.close()
    assert start_renderer_process(build_parser().parse_args(["x", "--out", str(tmp_path), "--no-notebook-html"]), one) is None
    assert start_renderer_process(args, [Submission(f"s{i}", f"s{i}.ipynb") for i in range(PARALLEL_FROM)]) is None
    from dropout_grader.report.html import file_name
    from dropout_grader.report.neutral import identifier

    (tmp_path / "feedback").mkdir()
    (tmp_path / "feedback" / f"{file_name(identifier('Ada Lovelace'))}.notebook.html").write_text("a page")
    assert start_renderer_process(args, one) is None


def test_the_grade_command_exits_at_once_with_its_status_and_all_its_output(tmp_path):
    """`grade` leaves through cli.console (no interpreter teardown): what it printed is all
    there, piped or not, and its exit status is main's."""
    grade = str(Path(sys.executable).with_name("grade"))
    notebook = SUBMISSIONS / "forward_layer1_scale_missing.ipynb"
    done = subprocess.run([grade, str(notebook), "--out", str(tmp_path / "out"), "--fail-under", "100%"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "--fail-under: 1 of 1 student below the bar" in done.stdout
    assert done.stdout.rstrip().endswith("forward.layer1.scale [missing]")
    assert json.loads((tmp_path / "out" / "results.json").read_text())["submissions"][0]["student"]
    done = subprocess.run([sys.executable, "-m", "dropout_grader", str(tmp_path / "nothing.ipynb")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.startswith("grade: error: no such file")
    # A reader that leaves early: no traceback, the status of a normal run.
    pipe = subprocess.run(f"{grade} {notebook} --out {tmp_path / 'out2'} | head -1", shell=True,
                          capture_output=True, text=True, timeout=300)
    assert pipe.stdout.startswith("rubric ") and "Traceback" not in pipe.stderr
