"""Find the notebooks to grade and name the student each one belongs to."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from dropout_grader.results import Submission


class DiscoveryError(Exception):
    """A path given on the command line cannot be graded (a usage error)."""


def discover(paths: list[str | Path]) -> list[Submission]:
    """Each PATH is a notebook, or a folder searched recursively for *.ipynb (hidden folders
    and .ipynb_checkpoints skipped, symlinked folders not followed).

    The student id is the folder name for `<folder>/<student>/<any>.ipynb` layouts and the
    file's stem otherwise; ids that collide are told apart as `id#2`, `id#3` in path order.
    """
    found: list[tuple[str, Path, str | None]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            notebooks = _notebooks_under(path)
            if not notebooks:
                raise DiscoveryError(f"no .ipynb files found under {path}")
            found += [(_student_id(path, nb), nb, _link_problem(path, nb)) for nb in notebooks]
        elif path.exists() or path.is_symlink():
            found.append((path.stem, path, None))
        else:
            raise DiscoveryError(f"no such file or folder: {path}")
    seen: Counter[str] = Counter()
    submissions = []
    for student, notebook, problem in found:
        seen[student] += 1
        name = student if seen[student] == 1 else f"{student}#{seen[student]}"
        submissions.append(Submission(student=name, path=str(notebook), problem=problem))
    return submissions


def _link_problem(root: Path, notebook: Path) -> str | None:
    """A symbolic link inside the class folder that points outside it is not followed: it
    could make the grader read (and report) any file on the machine."""
    if not notebook.is_symlink():
        return None
    target = notebook.resolve()
    if target.is_relative_to(root.resolve()):
        return None
    return (f"it is a symbolic link to {target}, outside {root}; the grader does not follow it. "
            "Submit the notebook file itself")


def _notebooks_under(root: Path) -> list[Path]:
    notebooks = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        notebooks += [Path(folder) / f for f in sorted(files)
                      if f.endswith(".ipynb") and not f.startswith(".")]
    return notebooks


def _student_id(root: Path, notebook: Path) -> str:
    relative = notebook.relative_to(root)
    return relative.parts[0] if len(relative.parts) > 1 else notebook.stem
