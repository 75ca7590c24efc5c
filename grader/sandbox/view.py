"""What a sandboxed child may read: an explicit allow-list, the same in every install.

Never "the Python installation" or "site-packages": in a wheel or `--user` install the answer
key (dropout_grader.reference, .rubrics) and the grader's own modules live there, and in a
plain system or pyenv install site-packages lies *inside* the standard library's folder. So
the standard library is allowed entry by entry, leaving out site-packages/dist-packages, and
of the installed packages only numpy (with its bundled libraries) is allowed.

Computed once per run in the zygote (the child's view) and in the grader (bubblewrap's view,
which is the child's plus the few files the zygote itself loads before it forks).
"""

from __future__ import annotations

import os
import sys
import sysconfig
from dataclasses import dataclass

PACKAGE_FOLDERS = frozenset({"site-packages", "dist-packages"})
# Where the loader finds shared libraries that ctypes or an extension module may open after
# the fork (libffi, libz, the system BLAS, ...): the multiarch folders whole, and the shared
# objects lying directly in these. Not /usr/lib as a whole (Debian's Python packages, SDKs
# and their configuration live there), nor /usr/local/lib (pip installs there).
LIBRARY_FOLDERS = ("/lib", "/lib64", "/usr/lib", "/usr/lib64")
# Read-only files a child may open. /dev/kmsg, /proc and the rest of /etc are not among them.
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/usr/share/zoneinfo", "/dev/null",
                "/dev/zero", "/dev/urandom", "/dev/random")


@dataclass(frozen=True)
class FileView:
    read: tuple[str, ...]  # folders (read beneath) and files a child may read; realpaths


def child_view(standins: str) -> FileView:
    paths: list[str] = []
    for stdlib in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]}:
        paths += _entries_except(stdlib, PACKAGE_FOLDERS)
    paths += [p for p in sys.path if p.endswith(("lib-dynload", ".zip"))]
    paths += numpy_folders()
    paths += system_libraries()
    paths += [p for p in SYSTEM_FILES]
    if standins:
        paths.append(standins)
    return FileView(_unique_existing(paths))


def system_libraries() -> list[str]:
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    paths = []
    for folder in LIBRARY_FOLDERS:
        if multiarch:
            paths.append(os.path.join(folder, multiarch))
        paths += [p for p in _entries_except(folder, ()) if ".so" in os.path.basename(p) and os.path.isfile(p)]
    return paths


def numpy_folders() -> list[str]:
    """numpy's package folder and the libraries a wheel bundles beside it (numpy.libs)."""
    import numpy

    folder = os.path.dirname(os.path.realpath(numpy.__file__))
    return [folder, os.path.join(os.path.dirname(folder), "numpy.libs")]


def zygote_files(package: str) -> list[str]:
    """What the zygote imports from the grader before it forks: the package's __init__, the
    observation types the recorder uses, and the sandbox's own modules (never reference/ or
    rubrics/). Children cannot read these: they are not in `child_view`."""
    return [os.path.join(package, "__init__.py"), os.path.join(package, "observations.py"),
            os.path.join(package, "sandbox")]


def _entries_except(folder: str, excluded) -> list[str]:
    real = os.path.realpath(folder)
    try:
        names = sorted(os.listdir(real))
    except OSError:
        return []
    return [os.path.join(real, name) for name in names if name not in excluded]


def _unique_existing(paths) -> tuple[str, ...]:
    """Real paths; and a symlinked *file* under its own name too (the loader opens
    /lib64/ld-linux-x86-64.so.2 by that name, which bubblewrap must bind)."""
    seen: dict[str, None] = {}
    for path in paths:
        real = os.path.realpath(path)
        if os.path.exists(real):
            seen.setdefault(real, None)
            if real != os.path.abspath(path) and os.path.isfile(real):
                seen.setdefault(os.path.abspath(path), None)
    return tuple(seen)
