"""Read a notebook file into its code cells, with a clear message for every way it can fail.

The file is untrusted: it is opened only if it is a regular file (a FIFO, device or socket
named `x.ipynb` would otherwise hang or flood the grader), read up to a size bound, and its
JSON is parsed only if its structure is bounded too (millions of tiny objects cost ~50x
their bytes in memory).
"""

from __future__ import annotations

import errno
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

# 100 MB of image outputs is a real (if careless) notebook; past this, nobody's work.
MAX_NOTEBOOK_BYTES = 200 * 1024 * 1024
# JSON containers and strings ('{', '[' and '"' pairs counted in the raw bytes, an upper
# bound). A 10,000-cell notebook has ~300,000; each such object costs 50-200 bytes parsed,
# so this bounds the parsed notebook to a few hundred MB whatever its shape.
MAX_JSON_OBJECTS = 2_000_000

_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISDIR, "a folder"))


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
    """The notebook's code cells, in order (see `parse_code_cells`)."""
    return parse_code_cells(read_notebook_bytes(path), path)


def read_notebook_bytes(path: Path) -> bytes:
    """The file's bytes, if it is a regular file no larger than MAX_NOTEBOOK_BYTES.
    O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # what opening a Unix socket says
            try:
                mode = os.stat(path).st_mode
            except OSError:
                mode = stat.S_IFREG
            _refuse_if_special(mode)
        raise NotebookError("unreadable", f"cannot open the file ({exc.strerror})") from None
    try:
        _refuse_if_special(os.fstat(fd).st_mode)  # what was opened, not the name (which may change)
        info = os.fstat(fd)
        if info.st_size > MAX_NOTEBOOK_BYTES:
            raise NotebookError("unreadable", f"the file is {info.st_size / 2**20:.0f} MB, larger than the "
                                f"{MAX_NOTEBOOK_BYTES // 2**20} MB a notebook may be")
        chunks, total = [], 0
        while True:  # read to the end, but never past the bound (the file may be growing)
            chunk = os.read(fd, min(1 << 24, MAX_NOTEBOOK_BYTES + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > MAX_NOTEBOOK_BYTES:
                raise NotebookError("unreadable", f"the file is larger than the "
                                    f"{MAX_NOTEBOOK_BYTES // 2**20} MB a notebook may be")
        return b"".join(chunks)
    except OSError as exc:
        raise NotebookError("unreadable", f"cannot read the file ({exc.strerror})") from None
    finally:
        os.close(fd)


def _refuse_if_special(mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise NotebookError("unreadable", f"it is {kind}, not a notebook file; submit the .ipynb file itself")


def check_json_objects(raw: bytes) -> None:
    """Refuse JSON made of more objects and strings than any notebook has: parsed, millions of
    tiny objects cost about 48x the file's size in memory. Counted on the bytes, before parsing."""
    objects = raw.count(b"{") + raw.count(b"[") + raw.count(b'"') // 2
    if objects > MAX_JSON_OBJECTS:
        raise NotebookError("unreadable", f"the file holds over {MAX_JSON_OBJECTS:,} JSON objects and strings, "
                            "more than any notebook; it is not a notebook the grader reads")


def parse_code_cells(raw: bytes, path: Path | str = "") -> list[Cell]:
    """The code cells of a notebook file's bytes. nbformat reads every version the way
    `nbformat.reads(..., as_version=4)` does (version 3's list sources joined), without its
    slow schema validation."""
    if not raw.strip():
        raise NotebookError("unreadable", "the file is empty; save the notebook again from Jupyter")
    if str(path).endswith(".py") or not raw.lstrip()[:1] in (b"{", b"["):
        _refuse_non_json(raw, path)
    check_json_objects(raw)
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
    except RecursionError:  # thousands of nested brackets
        raise NotebookError("unreadable", "the file's JSON is nested too deeply to be a notebook") from None
    if not isinstance(data, dict) or "nbformat" not in data:
        raise NotebookError("unreadable", "the file is JSON but not a Jupyter notebook (no 'nbformat' key)")
    del raw, text
    _drop_outputs(data)  # images and printed output are most of a notebook's bytes; unused here
    notebook = _as_version_4(data)
    cells = [Cell(i, _source(cell.get("source", "")))
             for i, cell in enumerate(notebook.get("cells", []))
             if isinstance(cell, dict) and cell.get("cell_type") == "code"]
    if not cells:
        raise NotebookError("no_code", "the notebook has no code cells: nothing to grade")
    return cells


def _refuse_non_json(raw: bytes, path) -> None:
    """A Python script, or text that is not a notebook: say what it is and what to submit."""
    head = raw[:4096].decode("utf-8", errors="replace")
    if str(path).endswith(".py") or head.lstrip().startswith(("#", "import ", "from ", "def ", '"""')):
        raise NotebookError("unreadable", "it is a Python script, not a notebook; submit the .ipynb file "
                            "(in Jupyter: File > Download as > Notebook)")


def _as_version_4(data: dict):
    """What nbformat.reads(as_version=4) does, from the already parsed dict: the version's own
    reader (which joins version 3's list sources), then nbformat's upgrade."""
    if _plain_version_4(data):  # nothing for nbformat to do but join the sources, as _source does
        return data
    import nbformat  # imported here (~60 ms): the sandbox side and most notebooks never need it
    from nbformat.reader import NotJSONError, get_version

    try:
        major, minor = get_version(data)
        if major not in nbformat.versions:
            raise NotebookError("unreadable", f"nbformat version {major} is not one Jupyter knows")
        notebook = nbformat.versions[major].to_notebook_json(data, minor=minor)
        return nbformat.convert(notebook, 4)
    except NotebookError:
        raise
    # nbformat's readers and converters assume a well-formed file; a malformed one raises
    # whichever of these its code meets first.
    except (NotJSONError, nbformat.ValidationError, KeyError, TypeError, ValueError,
            AttributeError, IndexError) as exc:
        raise NotebookError("unreadable", f"nbformat cannot read it as a notebook: "
                            f"{type(exc).__name__}: {str(exc)[:200]}") from None


def _plain_version_4(data: dict) -> bool:
    """A version 4 notebook as Jupyter writes it, on which nbformat's reader only joins list
    sources and drops transient metadata (v4.to_notebook_json), and the upgrade to 4 does
    nothing: its code cells are read from the dict as they are. Anything else (other versions,
    and every shape nbformat's reader fails on: cells or metadata missing or of another type,
    sources or attachments that are not text) goes through nbformat as before."""
    cells = data.get("cells")
    if not (type(data.get("nbformat")) is int and data["nbformat"] == 4
            and isinstance(data.get("metadata"), dict) and isinstance(cells, list)):
        return False
    for cell in cells:
        if not (isinstance(cell, dict) and isinstance(cell.get("metadata"), dict)):
            return False
        source = cell.get("source", "")
        if not (isinstance(source, str) or (isinstance(source, list) and all(isinstance(s, str) for s in source))):
            return False
        attachments = cell.get("attachments", {})
        if not (isinstance(attachments, dict) and all(isinstance(a, dict) for a in attachments.values())):
            return False
    return True


def _drop_outputs(data: dict) -> None:
    cells = data.get("cells")
    if not isinstance(cells, list):  # version 3 keeps its cells in worksheets
        worksheets = data.get("worksheets")
        cells = [c for w in (worksheets if isinstance(worksheets, list) else []) if isinstance(w, dict)
                 for c in (w.get("cells") if isinstance(w.get("cells"), list) else [])]
    for cell in cells:
        if isinstance(cell, dict) and "outputs" in cell:
            cell["outputs"] = []


def _source(source) -> str:
    if isinstance(source, list):
        return "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""
