"""`grade gradescope-bundle OUT.zip`: the autograder zip a Gradescope assignment takes.

Gradescope unpacks the zip into /autograder/source, runs setup.sh once when it builds the
image and run_autograder for every submission. The zip holds:

    setup.sh         installs the grader from the wheel below into a virtual environment
    run_autograder   grades /autograder/submission into /autograder/results/results.json
    rubric.yaml      the rubric the course grades with
    dropout_grader-VERSION-py3-none-any.whl
                     this grader, as installed here, packed as a wheel

The wheel is packed from the installed package's own files (the same in an editable checkout, a
wheel install or a Docker image), so no build tool and no network are needed to make it.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.resources
import io
import os
import zipfile
from pathlib import Path

DISTRIBUTION = "dropout-grader"
# The installed package, by import name, and where its files go in the wheel.
PACKAGES = {"dropout_grader": "dropout_grader", "dropout_grader.reference": "dropout_grader/reference",
            "dropout_grader.rubrics": "dropout_grader/rubrics"}
# What the package is made of; anything else in a checkout (caches, editor files) is left out.
SUFFIXES = (".py", ".yaml", ".json", ".j2", ".css", ".mako", ".sh")
TEMPLATE_FILES = {"setup.sh": "setup.sh", "run_autograder": "run_autograder"}
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the same inputs give the same zip, byte for byte


class BundleError(Exception):
    """The bundle cannot be written; the message says why."""


def write_bundle(out: Path, rubric: Path) -> list[str]:
    """Write the zip to `out` (atomically) and return the names of what it holds."""
    wheel_name, wheel = build_wheel()
    try:
        rubric_text = rubric.read_bytes()
    except OSError as error:
        raise BundleError(f"cannot read the rubric {rubric}: {error.strerror}") from None
    templates = importlib.resources.files("dropout_grader") / "gradescope_templates"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, template in TEMPLATE_FILES.items():
            _add(bundle, name, (templates / template).read_bytes(), executable=True)
        _add(bundle, "rubric.yaml", rubric_text)
        _add(bundle, wheel_name, wheel)
    try:
        _write_atomic(out, buffer.getvalue())
    except OSError as error:
        raise BundleError(f"cannot write {out}: {error.strerror}") from None
    return [*TEMPLATE_FILES, "rubric.yaml", wheel_name]


def build_wheel() -> tuple[str, bytes]:
    """A pure-Python wheel of the installed grader: its package files and its metadata."""
    try:
        distribution = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise BundleError(f"{DISTRIBUTION} is not installed here (pip install it first)") from None
    version = distribution.version
    files = _package_files()
    dist_info = f"dropout_grader-{version}.dist-info"
    metadata = distribution.read_text("METADATA")
    entry_points = distribution.read_text("entry_points.txt")
    if not metadata or not entry_points:
        raise BundleError(f"the installed {DISTRIBUTION} has no METADATA or entry points; reinstall it")
    files[f"{dist_info}/METADATA"] = metadata.encode()
    files[f"{dist_info}/entry_points.txt"] = entry_points.encode()
    files[f"{dist_info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: dropout-grader gradescope-bundle\n"
                                   b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    record = "".join(f"{name},sha256={_digest(data)},{len(data)}\n" for name, data in files.items())
    files[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in files.items():
            _add(wheel, name, data)
    return f"dropout_grader-{version}-py3-none-any.whl", buffer.getvalue()


def _package_files() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for package, prefix in PACKAGES.items():
        root = Path(str(importlib.resources.files(package)))
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if (path.is_file() and path.suffix in SUFFIXES or path.name == "run_autograder") and not any(
                    part == "__pycache__" or part.startswith(".") for part in relative.parts):
                files.setdefault(f"{prefix}/{relative.as_posix()}", path.read_bytes())
    if "dropout_grader/cli.py" not in files or "dropout_grader/rubrics/dropout.yaml" not in files:
        raise BundleError("the installed grader's files are incomplete; reinstall it")
    return dict(sorted(files.items()))


def _write_atomic(path: Path, data: bytes) -> None:
    """Never a half-written zip under the final name; permissions as the umask says."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _add(archive: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    archive.writestr(info, data)
