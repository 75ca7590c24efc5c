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


# --- the parent's own limits: only regular files, bounded size and structure ------------------

import os  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dropout_grader.notebook import MAX_JSON_OBJECTS, parse_code_cells  # noqa: E402


def test_a_fifo_named_like_a_notebook_is_refused_at_once(tmp_path):
    path = tmp_path / "notebook.ipynb"
    os.mkfifo(path)  # no writer: reading it would wait forever
    started = time.monotonic()
    error = error_for(path)
    assert time.monotonic() - started < 1
    assert error.diagnosis == "unreadable" and "named pipe (FIFO), not a notebook file" in error.message


def test_a_device_or_socket_is_refused(tmp_path):
    assert "character device" in error_for("/dev/zero").message  # would be read forever
    path = tmp_path / "s.ipynb"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    try:
        assert "socket" in error_for(path).message
    finally:
        listener.close()


def test_millions_of_tiny_json_objects_are_refused_before_parsing(tmp_path):
    import resource

    path = tmp_path / "tiny.ipynb"
    path.write_bytes(b'{"nbformat": 4, "cells": [], "x": [' + b"{}," * 20_000_000 + b"{}]}")  # 60 MB
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    error = error_for(path)
    assert "JSON objects" in error.message and f"{MAX_JSON_OBJECTS:,}" in error.message
    assert time.monotonic() - started < 5
    # parsed, this file costs ~1.5 GB (48x its size was measured); refused, about its bytes
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 250_000  # kB


def test_nbformat_3_as_nbformat_writes_it_has_list_sources_joined(tmp_path):
    import nbformat
    from nbformat import v3

    notebook = v3.new_notebook(worksheets=[v3.new_worksheet(cells=[
        v3.new_code_cell(input="import numpy as np\nx = 1\n"), v3.new_code_cell(input="y = 2")])])
    path = tmp_path / "v3.ipynb"
    path.write_text(nbformat.writes(notebook, version=3))
    assert '"input": [\n' in path.read_text()  # the shape that was ungradable: a list of lines
    assert [(c.index, c.source) for c in read_code_cells(path)] == [(0, "import numpy as np\nx = 1\n"), (1, "y = 2")]


@pytest.mark.parametrize("name, text", [
    ("solution.py", "# %%\nimport numpy as np\n\ndef forward_propagation_with_dropout(X, p, k):\n    pass\n"),
    ("notebook.ipynb", "import numpy as np\n"),  # a script saved under a notebook's name
])
def test_a_python_script_is_told_apart(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    error = error_for(path)
    assert "Python script, not a notebook; submit the .ipynb" in error.message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000) | st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["nbformat", "nbformat_minor", "cells", "worksheets", "source", "input",
                         "cell_type", "outputs", "metadata"]), children, max_size=5),
    max_leaves=30).map(lambda value: json.dumps(value).encode()))
def test_any_bytes_give_cells_or_a_notebook_error_never_a_crash(data):
    try:
        cells = parse_code_cells(data, "x.ipynb")
    except NotebookError as error:
        assert error.diagnosis in ("unreadable", "no_code") and error.message
    else:
        assert cells and all(isinstance(c.source, str) and c.index >= 0 for c in cells)
