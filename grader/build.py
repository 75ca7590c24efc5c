"""Which grader graded: the version, plus a digest of the code that can change a grade, so the
gradebook never reuses a result made by different grading code under the same version number
(a `git pull` without a version bump).

That code is the core (extraction, sandbox, assessment: not reports or the gradebook) and the
one assignment graded (its own `source_files()`), so adding or changing one assignment does
not regrade the stored results of another.
"""

from __future__ import annotations

import hashlib
import importlib.util
from functools import lru_cache
from pathlib import Path

from dropout_grader import __version__

CORE = "dropout_grader"
# Subpackages of the core that cannot change a grade (or that are assignments of their own).
NOT_GRADING = {"report", "gradebook", "reference", "rubrics", "__pycache__"}


@lru_cache(maxsize=1)
def core_digest() -> str:
    root = Path(next(iter(importlib.util.find_spec(CORE).submodule_search_locations)))
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] in NOT_GRADING:
            continue
        digest.update(relative.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@lru_cache(maxsize=16)
def _assignment_digest(files: tuple[Path, ...]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def build_id(assignment=None) -> str:
    """`0.1.0+3f2a9c1b7d0e`: the core's digest, and the assignment's when one is given."""
    digest = hashlib.sha256(core_digest().encode())
    if assignment is not None:
        digest.update(_assignment_digest(tuple(assignment.source_files())).encode())
    return f"{__version__}+{digest.hexdigest()[:12]}"
