"""A child's folder: how much it holds, and removing it, whatever student code made of it.

Student code may make 3000 nested folders (paths longer than PATH_MAX, and deeper than
Python's recursion limit), unreadable or write-protected folders, symlinks pointing out,
millions of empty files. So both walks are iterative, fd-relative (`dir_fd=`), never follow a
symlink, and bounded; removal reports failure instead of raising, so one child's mess can
never end a batch.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Usage:
    bytes: int
    entries: int
    complete: bool  # False when the walk stopped early (over `max_entries`, or unreadable)


def usage(path: str, max_entries: int) -> Usage:
    """Bytes allocated and entries under `path`, stopping after `max_entries` entries (the
    caller treats that as over its bound: the walk itself must stay cheap)."""
    total = entries = 0
    try:
        top = os.open(path, _DIR_FLAGS)
    except OSError:
        return Usage(0, 0, True)  # gone, or never made: nothing to count
    pending = [top]  # open directory fds; at most one per level being visited
    try:
        while pending:
            fd = pending.pop()
            try:
                with os.scandir(fd) as listing:
                    for entry in listing:
                        entries += 1
                        if entries > max_entries:
                            return Usage(total, entries, False)
                        info = entry.stat(follow_symlinks=False)
                        total += info.st_blocks * 512
                        if stat.S_ISDIR(info.st_mode):
                            try:
                                pending.append(os.open(entry.name, _DIR_FLAGS, dir_fd=fd))
                            except OSError:
                                return Usage(total, entries, False)
                            if len(pending) > 64:  # deep chains: do not hold many fds
                                return Usage(total, entries, False)
            finally:
                os.close(fd)
    except OSError:
        return Usage(total, entries, False)
    finally:
        for fd in pending:
            os.close(fd)
    return Usage(total, entries, True)


def remove_tree(path: str) -> bool:
    """Remove `path` and everything below it. Iterative and fd-relative: one open directory
    at a time, climbing back through '..' checked against the (device, inode) seen on the way
    down, so a renamed folder stops the removal instead of sending it elsewhere. Returns
    False (never raises) if something could not be removed."""
    try:
        fd = os.open(path, _DIR_FLAGS)
    except FileNotFoundError:
        return True
    except OSError:
        return _unlink_quietly(path)
    above: list[tuple[str, int, int]] = []  # (name in parent, parent's dev, parent's ino)
    try:
        while True:
            _make_writable(fd)
            child = _empty_or_first_subfolder(fd)
            if child is not None:
                name, child_fd = child
                here = os.fstat(fd)
                above.append((name, here.st_dev, here.st_ino))
                os.close(fd)
                fd = child_fd
                continue
            if not above:
                break
            name, device, inode = above.pop()
            parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent
            seen = os.fstat(fd)
            if (seen.st_dev, seen.st_ino) != (device, inode):
                return False  # moved under us: stop rather than remove the wrong thing
            _quietly_gone(os.rmdir, name, fd)
    except OSError:
        return False
    finally:
        os.close(fd)
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


def _empty_or_first_subfolder(fd: int) -> tuple[str, int] | None:
    """Remove the files and empty folders in the directory `fd`; return the first folder that
    is not empty (opened), or None when the directory is now empty."""
    with os.scandir(fd) as listing:
        for entry in listing:
            if not entry.is_dir(follow_symlinks=False):
                _quietly_gone(os.unlink, entry.name, fd)
                continue
            try:
                os.rmdir(entry.name, dir_fd=fd)
                continue
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.EACCES, errno.EPERM):
                    raise
            try:
                return entry.name, _open_folder(entry.name, fd)
            except FileNotFoundError:
                continue
    return None


def _quietly_gone(remove, name: str, fd: int) -> None:
    """Remove `name`; already gone is fine (the zygote and the grader may both be at it)."""
    try:
        remove(name, dir_fd=fd)
    except FileNotFoundError:
        pass


def _open_folder(name: str, parent: int) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent)
    except PermissionError:  # student code made it unreadable: it is ours to open again
        os.chmod(name, 0o700, dir_fd=parent)
        return os.open(name, _DIR_FLAGS, dir_fd=parent)


def _make_writable(fd: int) -> None:
    try:
        os.fchmod(fd, 0o700)
    except OSError:
        pass  # not ours to change: unlinking will say so


def _unlink_quietly(path: str) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True
