"""A student's own helper modules: the `.py` files saved beside the notebook, read here and
sent to the child in the job, which imports them from memory (it reads no file for them).

Only regular files directly in the notebook's folder, with names Python can import, and
within a size bound; anything else is skipped. A folder holding several notebooks (a flat
class folder) gives none: its `.py` files may belong to another student. In the child they come after the standard
library, numpy and the grader's stand-ins, so a student's `numpy.py` or copy of the course's
`reg_utils.py` (which needs plotting and data files) never replaces those.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_MODULES = 20
MAX_MODULE_BYTES = 256 * 1024


def read_own_modules(notebook: str | os.PathLike) -> dict[str, str]:
    """module name -> source, for the `.py` files next to the notebook."""
    folder = Path(notebook).parent
    modules: dict[str, str] = {}
    try:
        entries = os.listdir(folder)
    except OSError:
        return modules
    if sum(entry.endswith(".ipynb") for entry in entries) > 1:
        return modules  # a folder shared by several notebooks: its .py files may be someone else's
    names = sorted(entry for entry in entries if entry.endswith(".py"))
    for entry in names:
        name = entry[:-3]
        if len(modules) >= MAX_MODULES or not name.isidentifier():
            continue
        source = _read_regular(folder / entry)
        if source is not None:
            modules[name] = source
    return modules


def _read_regular(path: Path) -> str | None:
    """The file's text if it is a regular file within the size bound (never a FIFO, device
    or link: opened without following links and without blocking, then checked)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_MODULE_BYTES:
            return None
        data = os.read(fd, MAX_MODULE_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
