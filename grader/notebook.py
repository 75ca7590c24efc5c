"""Read a notebook file into its code cells, with a clear message for every way it can fail."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

MAX_NOTEBOOK_BYTES = 200 * 1024 * 1024


class NotebookError(Exception):
    """The file cannot be read as a notebook. `diagnosis` is a catalogue id."""

    def __init__(self, diagnosis: str, message: str):
        super().__init__(message)
        self.diagnosis = diagnosis
        self.message = message


@dataclass(frozen=True)
class Cell:
    index: int  # 0-based position in the notebook's cell list, as reports show it
    source: str


def read_code_cells(path: Path) -> list[Cell]:
    """The notebook's code cells, in order. Versions 4.x are read as they are; version 3
    and older are upgraded by nbformat."""
    import nbformat  # imported here: the sandbox side never needs it

    try:
        size = path.stat().st_size
        if size > MAX_NOTEBOOK_BYTES:
            raise NotebookError("unreadable", f"the file is {size / 2**20:.0f} MB, larger than the "
                                f"{MAX_NOTEBOOK_BYTES // 2**20} MB a notebook may be")
        raw = path.read_bytes()
    except OSError as exc:
        raise NotebookError("unreadable", f"cannot open the file ({exc.strerror})") from None
    if not raw.strip():
        raise NotebookError("unreadable", "the file is empty; save the notebook again from Jupyter")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotebookError("unreadable", f"the file is not UTF-8 text (byte {exc.start}); "
                            "it may be binary or saved in another encoding") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError("unreadable", f"the file is not valid JSON (line {exc.lineno}, column "
                            f"{exc.colno}: {exc.msg}); it may be truncated or not a notebook") from None
    if not isinstance(data, dict) or "nbformat" not in data:
        raise NotebookError("unreadable", "the file is JSON but not a Jupyter notebook (no 'nbformat' key)")
    del raw, text
    _drop_outputs(data)  # images and printed output are most of a notebook's bytes; unused here
    try:
        notebook = nbformat.convert(nbformat.from_dict(data), 4)
    except Exception as exc:  # nbformat raises many types for malformed notebooks
        raise NotebookError("unreadable", f"nbformat cannot read it as a notebook: {exc}") from None
    cells = [Cell(i, _source(cell.get("source", "")))
             for i, cell in enumerate(notebook.get("cells", []))
             if isinstance(cell, dict) and cell.get("cell_type") == "code"]
    if not cells:
        raise NotebookError("no_code", "the notebook has no code cells: nothing to grade")
    return cells


def _drop_outputs(data: dict) -> None:
    cells = data.get("cells")
    if not isinstance(cells, list):  # version 3 keeps its cells in worksheets
        cells = [c for w in data.get("worksheets", []) if isinstance(w, dict)
                 for c in (w.get("cells") or [])]
    for cell in cells:
        if isinstance(cell, dict) and "outputs" in cell:
            cell["outputs"] = []


def _source(source) -> str:
    return "".join(source) if isinstance(source, list) else str(source)
