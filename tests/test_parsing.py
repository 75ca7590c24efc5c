"""parsing.parse: the grader's threads parse one at a time, so CPython 3.11's shared AST
recursion counter (gh-106905) cannot fail a notebook's parse with a SystemError."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Thread A parses a large cell; a garbage collection inside the parse runs a finalizer that
# lets thread B parse in the meantime (it waits for B, up to half a second, without the GIL).
RACE = textwrap.dedent('''
    import ast, gc, sys, threading
    from dropout_grader.parsing import parse
    do_parse = parse if sys.argv[1] == "parsing.parse" else ast.parse
    SOURCE = "\\n".join(f"def f{i}(x):\\n    return [x * {i} for _ in range(3)]" for i in range(300))
    go, done = threading.Event(), threading.Event()

    def other():
        go.wait()
        do_parse("x = (1, 2, (3, (4,)))")
        done.set()

    class Trap:
        fired = False
        def __del__(self):
            if not Trap.fired:
                Trap.fired = True
                go.set()
                done.wait(0.5)

    thread = threading.Thread(target=other)
    thread.start()
    trap = Trap(); trap.cycle = trap; del trap
    gc.set_threshold(50)
    try:
        tree = do_parse(SOURCE)
        print("parsed", len(tree.body), "and the other thread", "too" if done.wait(5) else "not")
    except SystemError as error:
        print("SystemError", error)
    finally:
        go.set()
        thread.join()
''')


def run(how: str) -> str:
    return subprocess.run([sys.executable, "-c", RACE, how], capture_output=True, text=True, timeout=60,
                          check=True).stdout.strip()


def test_two_threads_parsing_at_once_both_succeed():
    assert run("parsing.parse") == "parsed 300 and the other thread too"


def test_the_race_is_real_where_cpython_has_it():
    """What the lock is for (on a CPython with the bug; a fixed one parses both)."""
    outcome = run("ast.parse")
    assert outcome == "parsed 300 and the other thread too" or outcome.startswith(
        "SystemError AST constructor recursion depth mismatch")
