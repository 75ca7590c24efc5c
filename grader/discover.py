"""Find the notebooks to grade and name the student each one belongs to.

The student id is the deepest folder that is not the notebook itself, relative to the folder
given (`class/section2/alice/hw.ipynb` graded as `grade class` is `alice`, in section
`section2`); a notebook directly in the given folder is named by its stem. A single notebook
given on its own belongs to `--student ID`, else to the student its platform names (Gradescope's
submission metadata, GitHub's repository, GitLab's project), else to its stem.

A student with several notebooks (the untouched template beside the real one, a copy) is graded
once, on one notebook chosen deterministically: the one that implements the most graded
functions, then the most recently modified, then the first by path; a warning names the others.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from dropout_grader.results import Submission


class DiscoveryError(Exception):
    """A path given on the command line cannot be graded (a usage error)."""


@dataclass(frozen=True)
class Discovery:
    submissions: list[Submission]
    warnings: list[str] = field(default_factory=list)


def discover(paths: list[str | Path], graded_names: Mapping[str, str] | None = None,
             student: str | None = None, environ: Mapping[str, str] | None = None) -> Discovery:
    """Each PATH is a notebook, or a folder searched recursively for *.ipynb (hidden folders
    and .ipynb_checkpoints skipped, symlinked folders not followed).

    `graded_names` (role -> function name, from the rubric) lets several notebooks of one
    student be told apart by what they implement. `student` (--student) names the owner of
    every notebook found: a single-notebook run, or a Gradescope submission folder.
    """
    environ = os.environ if environ is None else environ
    found: list[tuple[int, Submission]] = []  # with the index of the PATH it was found under
    for index, raw in enumerate(paths):
        group = 0 if student else index
        path = Path(raw)
        if path.is_dir():
            notebooks = _notebooks_under(path)
            if not notebooks:
                raise DiscoveryError(_nothing_found(path))
            for notebook in notebooks:
                name, section = _student_and_section(path, notebook)
                found.append((group, Submission(student=student or name, path=str(notebook),
                                                problem=_link_problem(path, notebook), section=section)))
        elif path.exists() or path.is_symlink():
            owner = student or platform_student(environ) or path.stem
            found.append((group, Submission(student=owner, path=str(path))))
        else:
            raise DiscoveryError(f"no such file or folder: {path}")
    return _one_per_student(found, graded_names or {})


def platform_student(environ: Mapping[str, str]) -> str | None:
    """The student a CI or Gradescope run belongs to, from what the platform says."""
    # Only Gradescope's containers have this file (AUTOGRADER_ROOT moves it, for tests).
    metadata = Path(environ.get("AUTOGRADER_ROOT", "/autograder")) / "submission_metadata.json"
    owner = gradescope_student(metadata) if metadata.is_file() else None
    if owner:
        return owner
    repository = environ.get("GITHUB_REPOSITORY", "")
    if "/" in repository:
        # GitHub Classroom makes one repository per student: ORG/ASSIGNMENT-LOGIN.
        return repository.split("/", 1)[1]
    if environ.get("GITHUB_ACTOR"):
        return environ["GITHUB_ACTOR"]
    if environ.get("GITLAB_CI") == "true" and environ.get("CI_PROJECT_PATH_SLUG"):
        return environ["CI_PROJECT_PATH_SLUG"]
    return None


def gradescope_student(metadata: Path) -> str | None:
    """Gradescope's /autograder/submission_metadata.json lists the submitters in `users`
    (several for a group); each has an email, a name and a Gradescope id."""
    try:
        data = json.loads(metadata.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    users = data.get("users") if isinstance(data, dict) else None
    if not isinstance(users, list):
        return None
    ids = []
    for user in users:
        if isinstance(user, dict):
            value = user.get("email") or user.get("sid") or user.get("id") or user.get("name")
            if value not in (None, ""):
                ids.append(str(value))
    return "+".join(ids) or None


def _student_and_section(root: Path, notebook: Path) -> tuple[str, str]:
    parts = notebook.relative_to(root).parts
    if len(parts) == 1:
        return notebook.stem, ""
    return parts[-2], "/".join(parts[:-2])


def _one_per_student(found: list[tuple[int, Submission]], graded_names: Mapping[str, str]) -> Discovery:
    """Notebooks of one student under one PATH (or all of them, with --student) are one
    submission; the same id under two PATHs is two students."""
    groups: dict[tuple[int, str, str], list[Submission]] = {}
    for index, submission in found:
        groups.setdefault((index, submission.section, submission.student), []).append(submission)
    submissions, warnings = [], []
    for (_, section, student), candidates in groups.items():
        if len(candidates) == 1:
            submissions.append(candidates[0])
            continue
        chosen = max(candidates, key=lambda s: _preference(s, graded_names))
        others = [c.path for c in candidates if c is not chosen]
        submissions.append(chosen)
        warnings.append(f"{student}{f' ({section})' if section else ''} has {len(candidates)} notebooks; "
                        f"graded {chosen.path} and not {', '.join(others)} (the one implementing the most "
                        "graded functions, then the newest)")
    return Discovery(submissions=_distinct_ids(submissions, warnings), warnings=warnings)


def _distinct_ids(submissions: list[Submission], warnings: list[str]) -> list[Submission]:
    """Two students of one id in different sections (or given as separate paths) stay apart
    as `id`, `id#2`, in path order: ids key feedback pages and the gradebook."""
    seen: dict[str, int] = {}
    distinct = []
    for submission in submissions:
        seen[submission.student] = seen.get(submission.student, 0) + 1
        if seen[submission.student] > 1:
            renamed = f"{submission.student}#{seen[submission.student]}"
            warnings.append(f"two students are named {submission.student}: {submission.path} is graded as {renamed}")
            submission = replace(submission, student=renamed)
        distinct.append(submission)
    return distinct


def _preference(submission: Submission, graded_names: Mapping[str, str]) -> tuple:
    """Larger is preferred: implemented graded functions, defined ones, modification time,
    then the earlier path (negated characters), so the choice never depends on listing order."""
    implemented = defined = 0
    if graded_names and submission.problem is None:
        from dropout_grader.extract import extract
        from dropout_grader.notebook import NotebookError, read_code_cells

        try:
            functions = extract(read_code_cells(Path(submission.path)), dict(graded_names)).functions
        except NotebookError:
            functions = {}
        defined = len(functions)
        implemented = sum(not f.template_untouched for f in functions.values())
    try:
        mtime = Path(submission.path).stat().st_mtime
    except OSError:
        mtime = 0.0
    return implemented, defined, mtime, [-ord(c) for c in submission.path]


def _nothing_found(root: Path) -> str:
    others = sorted(p.name for p in root.iterdir() if p.is_file() and not p.name.startswith("."))[:5]
    seen = f" (it holds {', '.join(others)})" if others else " (it is empty)"
    return f"no .ipynb files found under {root}{seen}"


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
