"""Reading notebook files: every broken file gets a specific message, never a traceback."""

from __future__ import annotations

import json

import pytest

from grader.notebook import NotebookError, read_code_cells


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
