"""`ast.parse` for the grader's threads, one parse at a time.

CPython 3.11 builds a parse tree's Python objects with one recursion counter per interpreter
(gh-106905): when two threads parse at once and the interpreter switches between them (a
garbage collection running a finalizer is enough), one of them fails with "SystemError: AST
constructor recursion depth mismatch", a grading error on a notebook with nothing wrong in it
(seen in the corpus tests, grading with -j 2 in a process with a large heap). Parsing holds the
GIL throughout, so taking turns costs no throughput.
"""

from __future__ import annotations

import ast
import threading

# Not state: the turn every thread of the process takes to parse (a per-object lock would not
# serialise parses made for different notebooks).
_TURN = threading.RLock()  # re-entrant: a parse from a finalizer run inside a parse must not hang


def parse(source: str) -> ast.Module:
    with _TURN:
        return ast.parse(source)
