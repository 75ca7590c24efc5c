"""Child side: import a student's own helper modules from the sources the job carries
(grader/own_modules.py reads them), without any file access."""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys


class MemoryModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Placed last on sys.meta_path: only names nothing else provides are served."""

    def __init__(self, sources: dict[str, str]):
        self.sources = {name: source for name, source in sources.items()
                        if isinstance(name, str) and name.isidentifier() and isinstance(source, str)}

    def find_spec(self, name, path=None, target=None):
        if name in self.sources:
            return importlib.util.spec_from_loader(name, self, origin=f"<module {name}>")
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        code = compile(self.sources[module.__name__], f"<module {module.__name__}>", "exec")
        exec(code, module.__dict__)


def install(sources: dict[str, str]) -> None:
    if sources:
        sys.meta_path.append(MemoryModules(sources))
