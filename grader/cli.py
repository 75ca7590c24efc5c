"""`grade PATH [PATH...]`: grade notebooks, print the results, write reports."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from dropout_grader import __version__
from dropout_grader.discover import DiscoveryError, discover
from dropout_grader.errors import GradebookError
from dropout_grader.report import audience, github, gradescope, terminal
from dropout_grader.report.files import write_atomic
from dropout_grader.report.progress import Progress
from dropout_grader.report.write import write_reports
from dropout_grader.rubric import DEFAULT_RUBRIC, RubricError, load_rubric
from dropout_grader.sandbox.runner import ISOLATION_MODES, SandboxError

EXIT_OK, EXIT_BELOW_THRESHOLD, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump, exit 2
        raise UsageError(f"{message} (see grade --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="grade",
        description="Grade inverted-dropout notebooks and name the wrong step.",
        epilog="Also: `grade history STUDENT [--out DIR | --gradebook URL]` lists a student's past "
               "results. Exit status: 0 when every notebook was graded or reported ungradable, "
               "1 when --fail-under is given and a score is below it, 2 for a usage error.")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="a notebook, or a folder searched recursively for *.ipynb")
    parser.add_argument("--out", default="reports", metavar="DIR",
                        help="where to write the reports: results.json, grades.csv, junit.xml, "
                             "index.html, feedback/ (default: reports/)")
    parser.add_argument("--rubric", default=str(DEFAULT_RUBRIC), metavar="FILE",
                        help="the rubric YAML (default: rubrics/dropout.yaml)")
    parser.add_argument("-j", "--jobs", type=_positive_int, default=os.cpu_count() or 1, metavar="N",
                        help="notebooks graded at once (default: the number of cores)")
    parser.add_argument("--fail-under", type=float, default=None, metavar="SCORE",
                        help="exit with status 1 if any score is below SCORE (for CI)")
    parser.add_argument("--gradebook", metavar="URL", default=None,
                        help="database recording every grading (default: sqlite in DIR/gradebook.sqlite; "
                             "any SQLAlchemy URL, e.g. postgresql://...)")
    parser.add_argument("--regrade", action="store_true",
                        help="grade every notebook again, even those unchanged since the gradebook's last grading")
    parser.add_argument("--gradescope", metavar="PATH", default=None,
                        help="also write Gradescope's results.json for the one notebook graded "
                             "(written even if grading fails)")
    parser.add_argument("--github", action="store_true", default=os.environ.get("GITHUB_ACTIONS") == "true",
                        help="GitHub Actions mode: annotations, a job summary, fenced student output "
                             "(on by default when GITHUB_ACTIONS=true)")
    parser.add_argument("--scheduler", metavar="ADDRESS", default=None,
                        help="grade on a Dask distributed cluster (tcp://HOST:PORT); results and "
                             "reports come back here")
    parser.add_argument("--isolation", choices=ISOLATION_MODES, default="auto",
                        help="how student code is confined: bwrap (bubblewrap namespaces), process "
                             "(child process with limits, Landlock and seccomp), auto (bwrap if it works)")
    parser.add_argument("--audience", choices=audience.AUDIENCES, default=None,
                        help="who reads what grade prints: student leaves out the rubric's hidden steps "
                             "(default: student in GitHub or Gradescope mode or when CI is set, else staff)")
    parser.add_argument("--no-notebook-html", dest="notebook_html", action="store_false",
                        help="do not write feedback/<student>.notebook.html (each student's notebook "
                             "rendered with the findings under their cells)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the closing line")
    parser.add_argument("--version", action="version", version=f"grade {__version__}")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    gradescope = _gradescope_path(sys.argv[1:] if argv is None else argv)
    try:
        return run(argv)
    except UsageError as error:
        print(f"grade: error: {terminal.one_line(error)}", file=sys.stderr)
        _gradescope_failure(gradescope, str(error))
        return EXIT_USAGE
    except Exception as error:  # noqa: BLE001 - a bug of ours: say so, and keep Gradescope readable
        _gradescope_failure(gradescope, f"internal error ({type(error).__name__})")
        raise
    except KeyboardInterrupt:
        print("grade: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `grade ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def run(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["history"]:
        return history(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        rubric = load_rubric(args.rubric)
        submissions = discover(args.paths)
    except (RubricError, DiscoveryError) as error:
        raise UsageError(str(error)) from None
    if args.gradescope and len(submissions) != 1:
        raise UsageError(f"--gradescope grades one notebook; {len(submissions)} were found")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create {out}: {error.strerror}") from None
    style = terminal.Style(color=sys.stdout.isatty() and "NO_COLOR" not in os.environ)
    width = shutil.get_terminal_size((100, 24)).columns
    started = time.monotonic()
    try:
        book = open_gradebook(args.gradebook or default_url(out))
        backend = open_backend(args, rubric, book)
        try:
            before = backend.run_result([])
            isolation, warning = terminal.render_isolation(before)
            if warning:
                print(f"grade: warning: {warning}", file=sys.stderr)
            if not args.quiet:
                print(terminal.render_seeds(before), flush=True)
                print(isolation + (f" (on the workers of {args.scheduler})" if args.scheduler else ""), flush=True)
            results = grade_with_progress(backend, submissions, args.jobs, args.quiet)
            run_result = backend.run_result(results)
        finally:
            backend.close()
            book.close()
    except (SandboxError, GradebookError) as error:
        print(f"grade: error: {terminal.one_line(error)}", file=sys.stderr)
        _gradescope_failure(args.gradescope, str(error))
        return EXIT_USAGE
    seconds = time.monotonic() - started
    try:
        write_reports(run_result, out, notebook_pages=args.notebook_html, jobs=args.jobs)
        if args.gradescope:
            write_atomic(Path(args.gradescope), gradescope.render(run_result, results[0]))
    except OSError as error:
        raise UsageError(f"cannot write the reports in {out}: {error.strerror}") from None
    if args.github:
        publish_to_github(run_result)
    reader = audience.terminal_audience(os.environ, github=args.github, gradescope=bool(args.gradescope),
                                        choice=args.audience)
    hidden = audience.hidden_steps(run_result) if reader == audience.STUDENT else set()
    if not args.quiet:
        if len(results) == 1:
            print(terminal.render_feedback(results[0], style, width, hidden=hidden,
                                           show_output=not args.github and (run_result.show_output or reader == audience.STAFF),
                                           show_code=run_result.show_code or reader == audience.STAFF))
            if args.github and results[0].output and run_result.show_output:
                print("printed by the notebook's code:")
                print(github.fenced_output(results[0]), end="")
        else:
            print(terminal.render_table(run_result, style, width, hidden=hidden))
    reused = sum(r.reused for r in results)
    if reused:
        print(f"{reused} of {len(results)} unchanged since the gradebook's last grading: reused "
              "(--regrade grades them again)")
    print(terminal.render_summary(run_result, seconds) + f"; reports in {out}/ (index.html, results.json)")
    if args.fail_under is not None and any(r.score < args.fail_under for r in results):
        return EXIT_BELOW_THRESHOLD
    return EXIT_OK


def publish_to_github(run_result) -> None:
    """Annotations on the notebook lines, and the summary table on the job's page."""
    texts = {}
    for result in run_result.submissions:
        try:
            texts[result.path] = Path(result.path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            pass
    for command in github.annotations(run_result, texts, workspace=os.environ.get("GITHUB_WORKSPACE")):
        print(command)
    summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        try:
            # GitHub drops a step's summary over 1 MiB whole: fit in what earlier steps left.
            used = os.path.getsize(summary_path) if os.path.exists(summary_path) else 0
            with open(summary_path, "a", encoding="utf-8") as handle:
                handle.write(github.summary(run_result, budget=github.SUMMARY_BYTES - used))
        except OSError as error:
            print(f"grade: warning: cannot write the job summary ({error.strerror})", file=sys.stderr)


def open_backend(args, rubric, book):
    """This machine's sandbox, or a Dask cluster's workers (each with its own sandbox)."""
    if args.scheduler:
        try:
            from dropout_grader.distributed import DaskGrading
        except ImportError:
            raise UsageError("--scheduler needs Dask: pip install 'dropout-grader[dask]'") from None
        try:
            return DaskGrading(args.scheduler, rubric, args.isolation, gradebook=book, regrade=args.regrade)
        except (OSError, TimeoutError) as error:
            raise UsageError(f"cannot reach the Dask scheduler at {args.scheduler}: {error}") from None
    from dropout_grader.pipeline import Grader

    return Grader(rubric, isolation=args.isolation, gradebook=book, regrade=args.regrade)


def default_url(folder: Path) -> str:
    return f"sqlite:///{(folder / 'gradebook.sqlite').resolve()}"


def open_gradebook(url: str):
    from dropout_grader.gradebook import Gradebook  # SQLAlchemy: imported when needed

    try:
        return Gradebook(url)
    except GradebookError as error:
        raise UsageError(str(error)) from None


def grade_with_progress(grader, submissions, jobs: int, quiet: bool) -> list:
    """Grade every submission; each result is committed to the gradebook the moment it is
    known, so after Ctrl-C or kill -9 the same command grades only what is missing."""
    results = [None] * len(submissions)
    progress = Progress(len(submissions), enabled=not quiet)
    try:
        for index, result in grader.grade_as_completed(submissions, jobs):
            results[index] = result
            progress.advance()
        progress.close()
    except KeyboardInterrupt:
        progress.close()
        graded = sum(r is not None for r in results)
        print(f"grade: interrupted after {graded} of {len(submissions)}; their results are in the "
              "gradebook; run the same command again to grade the rest", file=sys.stderr)
        raise SystemExit(130) from None
    return results


def history(argv: list[str]) -> int:
    """`grade history STUDENT`: every past grading of a student, oldest first."""
    parser = _Parser(prog="grade history", description="A student's past results, from the gradebook.")
    parser.add_argument("student")
    parser.add_argument("--out", default="reports", metavar="DIR", help="where the gradebook is (default: reports/)")
    parser.add_argument("--gradebook", metavar="URL", default=None, help="the gradebook's database URL")
    args = parser.parse_args(argv)
    url = args.gradebook or default_url(Path(args.out))
    if args.gradebook is None and not (Path(args.out) / "gradebook.sqlite").exists():
        raise UsageError(f"no gradebook in {args.out}/ (grade with --out {args.out} first, or pass --gradebook URL)")
    book = open_gradebook(url)
    entries = book.history(args.student)
    book.close()
    if not entries:
        print(f"no gradings of {args.student!r} in the gradebook")
        return EXIT_OK
    for entry in entries:
        wrong = "; ".join(entry.wrong) or ("all steps right" if entry.status == "graded" else entry.status)
        print(f"{entry.graded_at:%Y-%m-%d %H:%M:%S}  {entry.score:g}/{entry.max_score:g}  code {entry.code_sha256[:10]}  "
              f"rubric {entry.rubric_sha256[:10]}  v{entry.grader_version}  {terminal.printable(wrong)}")
    return EXIT_OK


def _gradescope_path(argv: list[str]) -> str | None:
    """Found before parsing, so that even a failed parse leaves Gradescope a result."""
    for i, arg in enumerate(argv):
        if arg == "--gradescope" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--gradescope="):
            return arg.split("=", 1)[1]
    return None


def _gradescope_failure(path: str | None, message: str) -> None:
    if path:
        try:
            write_atomic(Path(path), json.dumps(gradescope.failure_document(message), indent=2) + "\n")
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main())
