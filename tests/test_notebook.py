"""Reading notebook files: every broken file gets a specific message, never a traceback."""

from __future__ import annotations

import json

import pytest

from dropout_grader.notebook import NotebookError, read_code_cells


def error_for(path) -> NotebookError:
    with pytest.raises(NotebookError) as caught:
        read_code_cells(path)
    return caught.value


@pytest.mark.parametrize("content, diagnosis, words", [
    (b"", "unreadable", "empty"),
    (b"   \n", "unreadable", "empty"),
    (b"{not json", "unreadable", "not valid JSON"),
    (b'{"cells": [{"cell_type": "code", "source": "x', "unreadable", "not valid JSON"),
    (b"[1, 2, 3]", "unreadable", "not a Jupyter notebook"),
    (b'{"hello": "world"}', "unreadable", "not a Jupyter notebook"),
    (b"\x89PNG\r\n\x1a\n\x00\x00binary", "unreadable", "not UTF-8"),
    ("{\"nbformat\": 4, \"caf\xe9\": 1}".encode("latin-1"), "unreadable", "not UTF-8"),
])
def test_broken_files(tmp_path, content, diagnosis, words):
    path = tmp_path / "broken.ipynb"
    path.write_bytes(content)
    error = error_for(path)
    assert error.diagnosis == diagnosis
    assert words in error.message


def test_no_code_cells(tmp_path):
    path = tmp_path / "prose.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 4, "metadata": {},
                                "cells": [{"cell_type": "markdown", "metadata": {}, "source": "hi"}]}))
    assert error_for(path).diagnosis == "no_code"


def test_missing_file(tmp_path):
    assert "cannot open" in error_for(tmp_path / "nope.ipynb").message


def test_nbformat_3_is_upgraded(tmp_path):
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps({
        "nbformat": 3, "nbformat_minor": 0, "metadata": {"name": "old"},
        "worksheets": [{"cells": [
            {"cell_type": "markdown", "source": ["# title"], "metadata": {}},
            {"cell_type": "code", "input": ["x = 1\n", "y = 2"], "language": "python",
             "outputs": [], "metadata": {}}]}]}))
    cells = read_code_cells(path)
    assert [(c.index, c.source) for c in cells] == [(1, "x = 1\ny = 2")]


def test_sources_as_lists_or_strings(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "id": "a", "metadata": {}, "outputs": [], "execution_count": None,
         "source": ["a = 1\n", "b = 2"]},
        {"cell_type": "code", "id": "b", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "c = 3"}]}))
    assert [c.source for c in read_code_cells(path)] == ["a = 1\nb = 2", "c = 3"]


def test_a_large_notebook_of_images_is_read_without_its_outputs(tmp_path):
    import base64
    import time

    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    image = base64.b64encode(b"\x89PNG" + bytes(300_000)).decode()
    cells = []
    for i in range(300):  # ~120 MB of image outputs
        cell = new_code_cell(f"x{i} = {i}")
        cell.outputs = [new_output("display_data", data={"image/png": image})]
        cells.append(cell)
    path = tmp_path / "big.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    assert path.stat().st_size > 100_000_000
    started = time.monotonic()
    read = read_code_cells(path)
    assert len(read) == 300 and read[-1].source == "x299 = 299"
    assert time.monotonic() - started < 15


def test_ten_thousand_cells(tmp_path, grader):
    from conftest import write_notebook
    from dropout_grader.results import Submission

    cells = [f"value_{i} = {i}" for i in range(10_000)]
    cells.append("import numpy as np\ndef forward_propagation_with_dropout(X, parameters, keep_prob):\n    return None\n")
    path = write_notebook(tmp_path / "many.ipynb", *cells)
    result = grader.grade(Submission("many", str(path)))
    assert result.status == "graded"
    assert next(f for f in result.findings if f.step == "forward.function").diagnosis == "bad_return"


def test_unreadable_permissions(tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their permissions")
    path = tmp_path / "locked.ipynb"
    path.write_text("{}")
    path.chmod(0)
    assert "Permission denied" in error_for(path).message


def test_a_huge_cell_is_not_parsed(tmp_path, grader):
    from conftest import write_notebook
    from dropout_grader.results import Submission

    hostile = "def forward_propagation_with_dropout(X, parameters, keep_prob):\n    return " + "1+" * 2_000_000 + "1\n"
    path = write_notebook(tmp_path / "hostile.ipynb", "import numpy as np", hostile)
    result = grader.grade(Submission("hostile", str(path)))
    finding = next(f for f in result.findings if f.step == "forward.function")
    assert finding.diagnosis == "error" and "more than the 300 kB" in finding.message
