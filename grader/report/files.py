"""Write report files atomically: a temporary file in the same folder, then a rename, so a
reader (or a crash) never sees half a file. The file is created with mode 0666 less the
process's umask, as any other file the user makes (mkstemp's 0600 would keep a group or a web
server from reading the reports)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

TEMPORARY_PREFIX = "."  # temporary files are hidden: .<name>.<random>.tmp


def write_atomic(path: Path, text: str, durable: bool = True) -> None:
    """`durable` also waits for the disk (fsync): worth it for the gradebook's exports, not
    for a thousand feedback pages that the next run can write again."""
    with atomic_file(path, durable) as handle:
        handle.write(text)


@contextmanager
def atomic_file(path: Path, durable: bool = True) -> Iterator[TextIO]:
    """A text file written piece by piece (a report of any size, never held whole in
    memory), which appears at `path` only once the block ends without an exception."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary, fd = _create_temporary(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def _create_temporary(path: Path) -> tuple[Path, int]:
    """A new file beside `path`, opened for writing; O_EXCL so it is never someone else's."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    while True:
        temporary = path.with_name(f"{TEMPORARY_PREFIX}{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return temporary, os.open(temporary, flags, 0o666)  # the kernel applies the umask
        except FileExistsError:
            continue


def is_temporary(path: Path) -> bool:
    """Left behind by a write that a crash interrupted."""
    return path.name.startswith(TEMPORARY_PREFIX) and path.name.endswith(".tmp")
