"""The notebook pages' renderer, made ready in a process of its own while the notebooks are graded.

Importing nbconvert and compiling its templates costs ~0.4-0.7 s of CPU, more than grading one
notebook. For a run of a few notebooks (`grade one.ipynb`, a CI job, a Gradescope upload) the
CLI forks this process when the run starts; it imports nbconvert and renders a small page of its
own (which compiles the templates and loads the filters' modules) while the parent grades, on
the other core. When the reports are written, `write_pages` hands it the pages to render; it
runs the very code the parent would (notebook_html._render_one), so the pages are the same.

It holds nothing of the run until the parent sends it pages, and never runs student code. If it
is gone (killed, crashed), `render` says so and the parent renders the pages itself, so any
error is reported where it always was.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys


class RendererProcess:
    """A forked process with nbconvert imported and its templates compiled."""

    @classmethod
    def start(cls) -> RendererProcess | None:
        """The process, or None where processes cannot be forked (the pages are then rendered
        in the grader's process, as for a class)."""
        return cls() if "fork" in multiprocessing.get_all_start_methods() else None

    def __init__(self):
        context = multiprocessing.get_context("fork")  # the grader's modules come along, imported
        self._connection, child_end = context.Pipe()
        for stream in (sys.stdout, sys.stderr):  # the child must not write the parent's buffers again
            stream.flush()
        self._process = context.Process(target=_serve, args=(child_end, self._connection), daemon=True,
                                         name="dropout-grader-pages")
        self._process.start()
        child_end.close()

    def render(self, tasks: list) -> list | None:
        """`notebook_html._render_one(task)` of each task, in the child: its PageOutcomes, or
        None if the child is gone (the caller renders the pages itself)."""
        try:
            self._connection.send(tasks)
            return self._connection.recv()
        except (EOFError, OSError):
            return None

    def close(self) -> None:
        self._connection.close()
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()


def _serve(connection, parent_end) -> None:
    parent_end.close()  # so that the parent's exit, however abrupt, ends our recv()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it ends us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # (the CLI turns SIGTERM into KeyboardInterrupt)
    from dropout_grader.report import notebook_html

    try:
        _warm_up(notebook_html)
        while True:
            tasks = connection.recv()
            connection.send([notebook_html._render_one(task) for task in tasks])
    except (EOFError, OSError):  # the parent is gone, or closed its end: nothing more to do
        pass
    # Anything else is for the parent to meet and report: it renders the same pages itself when
    # we are gone, so we leave without a traceback of our own (which would be printed twice).
    except Exception:  # noqa: BLE001 - not swallowed: the parent repeats the work and reports it
        pass
    finally:
        connection.close()
        os._exit(0)  # no atexit handlers of the parent's, which this process inherited


def _warm_up(notebook_html) -> None:
    """Render a small page: imports nbconvert, compiles the templates, loads the filters."""
    import nbformat
    from nbformat import v4

    from dropout_grader.results import Finding, RunResult, StepInfo, SubmissionResult

    try:
        renderer = notebook_html._renderer()
    except notebook_html.RendererUnavailable:
        return  # each page will say so, as in the parent
    notebook = v4.new_notebook(cells=[
        v4.new_markdown_cell("# A heading\n\nSome *text*, `code` and a [link](https://example.org)."),
        v4.new_code_cell("import numpy as np\nprint(np.ones(1))\n", outputs=[
            v4.new_output("stream", name="stdout", text="[1.]\n"),
            v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}),
            v4.new_output("execute_result", data={"text/plain": "1", "text/html": "<b>1</b>"}, execution_count=1),
            v4.new_output("error", ename="E", evalue="v", traceback=["\x1b[31mE\x1b[0m: v"]),
        ])])
    run = RunResult("warm-up", "0", "warm-up", "", {}, steps=[StepInfo("step", "A step", 1.0)])
    result = SubmissionResult("warm-up", "", "graded", 0.0, 1.0,
                              findings=[Finding("step", "wrong", "why", 0.0, 1.0, "a message", 1, 2)])
    renderer.render(run, result, nbformat.writes(notebook).encode(), "warm-up", {"feedback": "warm-up.html"})
