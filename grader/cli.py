"""`grade PATH [PATH...]`: grade notebooks, print the results, write reports."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from dropout_grader import __version__
from dropout_grader.discover import DiscoveryError, discover, platform_student
from dropout_grader.errors import GradebookError
from dropout_grader.notebook import NotebookError, read_notebook_bytes
from dropout_grader.report import audience, github, gradescope, terminal
from dropout_grader.report.files import write_atomic
from dropout_grader.report.progress import Progress
from dropout_grader.report.write import write_reports
from dropout_grader.course import load_course, start_sandbox
from dropout_grader.own_modules import read_own_modules
from dropout_grader.results import GRADING_ERROR, STORABLE, Entry, ResultView, selected
from dropout_grader.reuse import file_sha256
from dropout_grader.roster import RosterError, load_roster, missing_results, not_on_roster
from dropout_grader.rubric import DEFAULT_COURSE, DEFAULT_RUBRIC, RubricError
from dropout_grader.sandbox.runner import ISOLATION_MODES, SandboxError

EXIT_OK, EXIT_BELOW_THRESHOLD, EXIT_USAGE = 0, 1, 2
EXIT_GRADING_ERROR = 3  # the grader or its sandbox failed on some notebook: not the students' doing
EXIT_INTERRUPTED = 130  # Ctrl-C (or SIGTERM): what was graded is kept, nothing wrong is stored
ERROR_LOG = "grading-errors.log"  # in --out: the tracebacks of grading errors


class UsageError(Exception):
    pass


class SubmissionError(UsageError):
    """The paths hold nothing gradable: on Gradescope, the student's upload is at fault."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump, exit 2
        raise UsageError(f"{message} (see grade --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="grade",
        description="Grade inverted-dropout notebooks and name the wrong step.",
        epilog="Also: `grade history STUDENT [--out DIR | --gradebook URL]` lists a student's past "
               "results; `grade rubric --show | --copy FILE | --check FILE` prints, copies or checks a "
               "rubric; `grade gradescope-bundle OUT.zip [--rubric FILE]` writes a Gradescope "
               "autograder. Exit status: 0 when every notebook was graded or reported ungradable, "
               "1 when --fail-under is given and a score is below it, 2 for a usage error, "
               "3 when the grader itself failed on some notebook (a grading error: nothing stored "
               f"for it, traceback in DIR/{ERROR_LOG}), 130 when interrupted.")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="a notebook, or a folder searched recursively for *.ipynb")
    parser.add_argument("--out", default="reports", metavar="DIR",
                        help="where to write the reports: results.json, grades.csv, junit.xml, "
                             "index.html, feedback/ (default: reports/)")
    parser.add_argument("--rubric", default=str(DEFAULT_COURSE), metavar="FILE",
                        help="the rubric YAML, or a course file naming several rubrics graded in one pass "
                             "(default: the whole notebook, rubrics/regularization.yaml: dropout and L2; "
                             "rubrics/dropout.yaml or rubrics/l2.yaml grades one exercise)")
    parser.add_argument("-j", "--jobs", type=_positive_int, default=os.cpu_count() or 1, metavar="N",
                        help="notebooks graded at once (default: the number of cores)")
    parser.add_argument("--fail-under", type=_bar, default=None, metavar="SCORE",
                        help="exit with status 1 if any score is below SCORE, in points or as a "
                             "percentage of the rubric's total (100%%); the students below are listed")
    parser.add_argument("--roster", metavar="FILE.csv", default=None,
                        help="the class list (columns id, and optionally name, email, sis_id, "
                             "section): students on it with no notebook are reported as missing")
    parser.add_argument("--student", metavar="ID", default=None,
                        help="the student the notebook(s) belong to (default: the folder name; for "
                             "one notebook, the id Gradescope or GitHub gives, else the file's stem)")
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


@dataclass(frozen=True)
class Bar:
    """--fail-under: points, or a percentage of the rubric's total."""
    value: float
    percent: bool

    def points(self, max_score: float) -> float:
        return self.value * max_score / 100 if self.percent else self.value

    def describe(self, max_score: float) -> str:
        if self.percent:
            return f"{self.value:g}% of {max_score:g} = {self.points(max_score):g} points"
        return f"{self.value:g} of {max_score:g} points"


def _bar(text: str) -> Bar:
    percent = text.strip().endswith("%")
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected points (19) or a percentage (100%), got {text!r}") from None
    if not value >= 0 or (percent and value > 100):  # `not >=` also refuses NaN
        raise argparse.ArgumentTypeError(f"must be between 0 and {'100%' if percent else 'the total'}, got {text!r}")
    return Bar(value, percent)


def main(argv: list[str] | None = None) -> int:
    gradescope = _gradescope_path(sys.argv[1:] if argv is None else argv)
    _terminate_as_interrupt()
    try:
        return run(argv)
    except SubmissionError as error:  # what the student sent cannot be graded: they can fix it
        print(f"grade: error: {terminal.one_line(error)}", file=sys.stderr)
        _gradescope_failure(gradescope, str(error), student_can_fix=True)
        return EXIT_USAGE
    except UsageError as error:
        print(f"grade: error: {terminal.one_line(error)}", file=sys.stderr)
        _gradescope_failure(gradescope, str(error))
        return EXIT_USAGE
    except BrokenPipeError:  # `grade ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor at exit's flush
        return EXIT_OK
    except KeyboardInterrupt:  # before grading started, or while writing reports
        print("grade: interrupted; nothing was stored for notebooks not yet graded", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 - not handled: a bug of ours; keep Gradescope readable, re-raise
        _gradescope_failure(gradescope, f"internal error ({type(error).__name__})")
        raise


def console() -> None:
    """The `grade` command: `main`, then a quick exit. Tearing the interpreter down (every module
    of numpy, SQLAlchemy, pydantic... and a last garbage collection) takes 0.1-0.5 s, longer than
    grading one notebook; by the time `main` returns everything is finished (reports written and
    closed, gradebook closed, children ended), and the atexit handlers are still run. Only a
    normal return takes this way out: an exception or SystemExit leaves the usual way."""
    import atexit

    code = main()
    atexit._run_exitfuncs()  # noqa: SLF001 - what the interpreter's own exit would run first
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:  # `grade ... | head`: the reader left (main already said nothing more)
            pass
    os._exit(code)


def _terminate_as_interrupt() -> None:
    """SIGTERM (a CI job cancelled, `kill`) ends the run as Ctrl-C does: cleanly."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, interrupt)


def run(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["history"]:
        return history(argv[1:])
    if argv[:1] == ["rubric"]:
        return rubric_command(argv[1:])
    if argv[:1] == ["gradescope-bundle"]:
        return bundle_command(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        course = load_course(args.rubric)
        roster = load_roster(args.roster) if args.roster else None
    except (RubricError, RosterError) as error:
        raise UsageError(str(error)) from None
    # On Gradescope every file uploaded belongs to one student, named even without metadata.
    student = args.student or ((platform_student(os.environ) or "student") if args.gradescope else None)
    try:
        graded = {f.name: f.name for part in course.parts for f in part.spec.functions.values()}
        found = discover(args.paths, graded, student)
    except DiscoveryError as error:
        raise (SubmissionError if args.gradescope else UsageError)(str(error)) from None
    submissions = found.submissions
    pages = start_renderer_process(args, submissions)
    for warning in found.warnings:
        print(f"grade: warning: {terminal.one_line(warning)}", file=sys.stderr)
    if args.gradescope and len(submissions) != 1:
        raise UsageError(f"--gradescope grades one student's notebook; {len(submissions)} students were found")
    out = Path(args.out)
    check_writable(out)
    style = terminal.Style(color=sys.stdout.isatty() and "NO_COLOR" not in os.environ)
    width = shutil.get_terminal_size((100, 24)).columns
    started = time.monotonic()
    sandbox = book = None
    try:
        # Started first: the sandbox's interpreter boots (numpy, the confinement) in a process
        # of its own while this one opens the gradebook.
        sandbox = None if args.scheduler else start_sandbox(course, args.isolation)
        book = open_gradebook(args.gradebook or default_url(out))
        # The gradebook stays open until the reports are written: they are read from it.
        return _grade_and_report(args, course, roster, found, submissions, out, style, width, book, started,
                                 pages, sandbox)
    except (SandboxError, GradebookError) as error:
        print(f"grade: error: {terminal.one_line(error)}", file=sys.stderr)
        _gradescope_failure(args.gradescope, str(error))
        return EXIT_USAGE
    finally:
        if book is not None:
            book.close()
        if sandbox is not None:
            sandbox.close()


def _grade_and_report(args, course, roster, found, submissions, out: Path, style, width: int, book,
                      started: float, pages, sandbox) -> int:
    """`pages`: the notebook pages' renderer process (start_renderer_process), or None;
    `sandbox`: the course's, already started (course.start_sandbox), or None."""
    backend = open_backend(args, course, book, out / ERROR_LOG, sandbox)
    announced = []

    def announce() -> None:
        """The seeds and the isolation, said once: before the first notebook is sent to the
        sandbox, whose check (booting in the background meanwhile) it waits for."""
        if announced:
            return
        announced.append(True)
        before = backend.run_result([])
        isolation, warning = terminal.render_isolation(before)
        if warning:
            print(f"grade: warning: {warning}", file=sys.stderr)
        if not args.quiet:
            print(terminal.render_seeds(before), flush=True)
            print(isolation + (f" (on the workers of {args.scheduler})" if args.scheduler else ""), flush=True)

    try:
        entries = grade_with_progress(backend, submissions, args.jobs, args.quiet, announce)
        announce()
        # Every result is in the gradebook (but grading errors, kept in `entries`): the run
        # holds a view that loads them again, a batch at a time, for each report.
        run_result = backend.run_result(ResultView(entries, book.load))
    finally:
        backend.close()
    seconds = time.monotonic() - started
    # The gradebook's view (reports, --fail-under) has the roster's missing students too; the
    # terminal lists what was graded, and names the missing in one line.
    missing = []
    if roster is not None:
        strangers = not_on_roster(roster, [e.student for e in entries])
        if strangers:
            print(f"grade: warning: not on the roster {args.roster}: {terminal.one_line(', '.join(strangers))}",
                  file=sys.stderr)
        missing = missing_results(roster, {e.student for e in entries}, _rubric_total(run_result))
    everyone = replace(run_result, submissions=run_result.submissions + missing)
    try:
        write_reports(everyone, out, notebook_pages=args.notebook_html, jobs=args.jobs, renderer_process=pages)
        if args.gradescope:
            document = gradescope.document(run_result, run_result.submissions[0])
            if found.warnings:  # the student uploaded several notebooks: say which one counted
                document["output"] = terminal.printable("\n".join(found.warnings)) + "\n\n" + document["output"]
            write_atomic(Path(args.gradescope), json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    except OSError as error:
        raise UsageError(f"cannot write the reports in {out}: {error.strerror}") from None
    finally:
        if pages is not None:
            pages.close()
    if args.github:
        publish_to_github(run_result)
    reader = audience.terminal_audience(os.environ, github=args.github, gradescope=bool(args.gradescope),
                                        choice=args.audience)
    hidden = audience.hidden_steps(run_result) if reader == audience.STUDENT else set()
    if not args.quiet:
        if len(entries) == 1:
            result = run_result.submissions[0]
            print(terminal.render_feedback(result, style, width, hidden=hidden,
                                           show_output=not args.github and (run_result.show_output or reader == audience.STAFF),
                                           show_code=run_result.show_code or reader == audience.STAFF))
            if args.github and result.output and run_result.show_output:
                print("printed by the notebook's code:")
                print(github.fenced_output(result), end="")
        else:
            for line in terminal.table_lines(run_result, style, width, hidden=hidden):
                print(line)
    reused = sum(e.reused for e in entries)
    if reused:
        print(f"{reused} of {len(entries)} unchanged since the gradebook's last grading: reused "
              "(--regrade grades them again)")
    print(terminal.render_summary(run_result, seconds) + f"; reports in {out}/ (index.html, results.json)")
    failed = [e.result for e in entries if e.status == GRADING_ERROR]
    if failed:
        print(f"grade: error: the grader failed on {len(failed)} notebook(s), not through the students' code "
              f"({', '.join(terminal.printable(r.student) for r in failed[:5])}{', ...' if len(failed) > 5 else ''}); "
              f"nothing was stored for them; tracebacks in {out / ERROR_LOG}; run the same command again "
              "to retry them", file=sys.stderr)
        if args.gradescope:
            _gradescope_failure(args.gradescope, failed[0].error)
        return EXIT_GRADING_ERROR
    if missing:
        print(f"{len(missing)} on the roster with no notebook (missing in grades.csv): "
              + terminal.one_line(", ".join(r.student for r in missing)))
    if args.fail_under is not None:
        below = below_the_bar(everyone.submissions, args.fail_under, hidden)
        if below:
            print(below)
            return EXIT_BELOW_THRESHOLD
    return EXIT_OK


def start_renderer_process(args, submissions):
    """For a few notebooks (a CI job, a Gradescope upload) whose notebook pages are not on disk
    yet or are graded again, the process that will render them, started now so that nbconvert's import overlaps the
    grading (report/renderer_process.py). A class, or pages already there (a re-run, where most
    are unchanged and not rendered again), are rendered the usual way."""
    from dropout_grader.report.html import file_name
    from dropout_grader.report.neutral import identifier
    from dropout_grader.report.notebook_html import PARALLEL_FROM, page_name
    from dropout_grader.report.renderer_process import RendererProcess
    from dropout_grader.report.write import FEEDBACK

    if not args.notebook_html or len(submissions) >= PARALLEL_FROM:
        return None
    folder = Path(args.out) / FEEDBACK
    # (--regrade: every page changes, if only its date.)
    if not args.regrade and all((folder / page_name(file_name(identifier(s.student)))).exists() for s in submissions):
        return None
    return RendererProcess.start()


def _rubric_total(run_result) -> float:
    return sum(step.max_points for step in run_result.steps)


def below_the_bar(results, bar: Bar, hidden=frozenset()) -> str:
    """The students under --fail-under, each with the score and why, for the CI log (the
    steps in `hidden` not named)."""
    under = selected(results, lambda r: r.score < bar.points(r.max_score))  # only these are loaded
    if not under:
        return ""
    total = under[0].max_score
    lines = [f"--fail-under: {len(under)} of {len(results)} student{'s' if len(results) != 1 else ''} "
             f"below the bar of {bar.describe(total)}:"]
    width = max(terminal.display_width(terminal.one_line(r.student)) for r in under)
    for r in under:
        why = {"missing": "missing: no notebook", "ungradable": "ungradable"}.get(r.status) or (
            "; ".join(f"{f.step} [{f.diagnosis}]" for f in r.wrong if f.step not in hidden)
            or "points lost on notes")
        lines.append(f"  {terminal.fit(terminal.one_line(r.student), width)}  {r.score:>5g}/{r.max_score:g}  "
                     f"{terminal.one_line(why)}")
    return "\n".join(lines)


def check_writable(out: Path) -> None:
    """--out must take the reports: found out before grading, not after."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".grade-check-"):
            pass
    except OSError as error:
        raise UsageError(f"cannot write the reports in {out}: {error.strerror or error}") from None


def publish_to_github(run_result) -> None:
    """Annotations on the notebook lines, and the summary table on the job's page."""
    texts = {}
    for result in run_result.submissions:
        try:  # opened as every untrusted notebook is: a regular file only, bounded
            texts[result.path] = read_notebook_bytes(Path(result.path)).decode("utf-8", errors="replace")
        except NotebookError:
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


def open_backend(args, course, book, error_log: Path, sandbox=None):
    """This machine's sandbox (`sandbox`, if started already), or a Dask cluster's workers
    (each with its own sandbox)."""
    if args.scheduler:
        try:
            from dropout_grader.distributed import ClusterError, DaskGrading, check_address
        except ImportError:
            raise UsageError("--scheduler needs Dask: pip install 'dropout-grader[dask]'") from None
        try:
            check_address(args.scheduler)
            if len(course.parts) > 1:
                raise UsageError(f"--scheduler grades one assignment at a time; {args.rubric} has "
                                 f"{len(course.parts)} parts: give --rubric one of them "
                                 f"({', '.join(Path(p.path).name for p in course.parts)})")
            return DaskGrading(args.scheduler, course.parts[0], args.isolation, gradebook=book,
                               regrade=args.regrade, error_log=error_log)
        except ClusterError as error:
            raise UsageError(str(error)) from None
    if len(course.parts) > 1:
        from dropout_grader.course import CourseGrader

        return CourseGrader(course, isolation=args.isolation, gradebook=book, regrade=args.regrade,
                            error_log=error_log, sandbox=sandbox)
    from dropout_grader.pipeline import Grader

    return Grader(course.parts[0], sandbox=sandbox, isolation=args.isolation, gradebook=book,
                  regrade=args.regrade, error_log=error_log)


def default_url(folder: Path) -> str:
    return f"sqlite:///{(folder / 'gradebook.sqlite').resolve()}"


def open_gradebook(url: str):
    from dropout_grader.gradebook import Gradebook  # SQLAlchemy: imported when needed

    try:
        return Gradebook(url)
    except GradebookError as error:
        raise UsageError(str(error)) from None


CHUNK = 500  # notebooks checked for reuse in one gradebook query, then graded together
HASHING_THREADS = 2


def grade_with_progress(grader, submissions, jobs: int, quiet: bool, before_grading=lambda: None) -> list[Entry]:
    """Grade every submission; each result is committed to the gradebook the moment it is
    known, so after Ctrl-C or kill -9 the same command grades only what is missing. What
    comes back is one small Entry per submission, in order: the results stay in the
    gradebook (grading errors, never stored, stay on their entry). `before_grading()` is
    called before the first notebook that is not reused is graded."""
    entries: list[Entry | None] = [None] * len(submissions)
    progress = Progress(len(submissions), enabled=not quiet)
    reuse = getattr(grader, "reuse", None)
    try:
        for start in range(0, len(submissions), CHUNK):
            indices = range(start, min(start + CHUNK, len(submissions)))
            unchanged, digests = reused_files(reuse, submissions, indices)
            for index, entry in unchanged.items():
                entries[index] = entry
            progress.advance(len(unchanged))
            fresh = [i for i in indices if i not in unchanged]
            if fresh:
                before_grading()
            for position, result in grader.grade_as_completed([submissions[i] for i in fresh], jobs):
                index = fresh[position]
                result.section = submissions[index].section
                entries[index] = Entry.of(result, digests.get(index))
                progress.advance()
        progress.close()
    except KeyboardInterrupt:
        # A second Ctrl-C must not cut the cleanup short (children killed, threads joined,
        # gradebook closed): it takes a few seconds at most.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        progress.close()
        kept = sum(e is not None and e.status in STORABLE for e in entries)
        print(f"grade: interrupted; {kept} of {len(submissions)} results are in the gradebook, the "
              "notebooks being graded were abandoned (nothing stored for them); run the same command "
              "again to grade the rest", file=sys.stderr)
        raise SystemExit(EXIT_INTERRUPTED) from None
    return entries


def reused_files(reuse, submissions, indices) -> tuple[dict[int, Entry], dict[int, str]]:
    """The submissions among `indices` whose very file (and helper modules) the gradebook
    already graded under this rubric and build, found with one query for all of them and
    never sent to the grader; and the file digest of every submission that could be read.
    The same check the grader makes per notebook (reuse.Reuse.known), made for the class."""
    if reuse is None or reuse.gradebook is None:
        return {}, {}
    modules_of: dict[str, dict[str, str]] = {}  # per folder: a flat class folder is listed once

    def digest(index: int) -> str | None:
        submission = submissions[index]
        if submission.problem:
            return None
        try:
            data = read_notebook_bytes(Path(submission.path))
        except NotebookError:
            return None  # the grader says why
        folder = os.path.dirname(submission.path)
        if folder not in modules_of:
            modules_of[folder] = read_own_modules(submission.path)
        return file_sha256(data, modules_of[folder])

    # Reading and hashing release the GIL: two threads read a class of large notebooks twice as fast.
    with ThreadPoolExecutor(max_workers=HASHING_THREADS) as pool:
        digests = {index: sha for index, sha in zip(indices, pool.map(digest, indices)) if sha is not None}
    rows = reuse.known_files([(submissions[i].student, sha) for i, sha in digests.items()])
    found = {index: rows[(submissions[index].student, sha)] for index, sha in digests.items()
             if (submissions[index].student, sha) in rows}
    stored = reuse.digests([row.id for row in found.values()]) if found else {}
    unchanged = {}
    for index, row in found.items():
        if row.id in stored:  # (a row deleted meanwhile is graded again)
            unchanged[index] = Entry(submissions[index].student, row.status, row.score, row.max_score, True,
                                     submissions[index].section, stored[row.id], row=row.id,
                                     file_sha256=digests[index])
    return unchanged, digests


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


def rubric_command(argv: list[str]) -> int:
    """`grade rubric`: a copy of a shipped rubric to edit, or a check of an edited one."""
    parser = _Parser(prog="grade rubric", description="Print, copy or check a rubric.")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--show", action="store_true", help="print a shipped rubric")
    action.add_argument("--copy", metavar="FILE", help="write a shipped rubric to FILE, to edit it")
    action.add_argument("--check", metavar="FILE", help="validate FILE (a rubric or a course file) and "
                                                        "print its steps and total")
    parser.add_argument("--exercise", choices=("dropout", "l2"), default="dropout",
                        help="which shipped rubric --show and --copy use (default: dropout; `grade` "
                             "grades both, through rubrics/regularization.yaml)")
    args = parser.parse_args(argv)
    shipped = DEFAULT_RUBRIC.with_name(f"{args.exercise}.yaml")
    if args.show:
        print(shipped.read_text(encoding="utf-8"), end="")
        return EXIT_OK
    if args.copy:
        target = Path(args.copy)
        if target.exists():
            raise UsageError(f"{target} exists; not overwriting it (remove it, or choose another name)")
        try:
            write_atomic(target, shipped.read_text(encoding="utf-8"))
        except OSError as error:
            raise UsageError(f"cannot write {target}: {error.strerror}") from None
        print(f"wrote {target}; edit it, check it with `grade rubric --check {target}`, "
              f"then grade with `--rubric {target}`")
        return EXIT_OK
    try:
        course = load_course(args.check)
    except RubricError as error:
        raise UsageError(str(error)) from None
    steps = sum(len(part.steps) for part in course.parts)
    print(f"{args.check}: valid; {course.id}, {steps} steps, {_course_total(course):g} points, "
          f"sha256 {course.sha256[:12]}" + (f" ({len(course.parts)} parts: "
          f"{', '.join(p.id for p in course.parts)})" if len(course.parts) > 1 else ""))
    return EXIT_OK


def _course_total(course) -> float:
    return sum(step.points for part in course.parts for step in part.steps.values())


def bundle_command(argv: list[str]) -> int:
    """`grade gradescope-bundle OUT.zip`: the autograder zip a Gradescope assignment takes."""
    from dropout_grader.gradescope_bundle import BundleError, write_bundle

    parser = _Parser(prog="grade gradescope-bundle",
                     description="Write a Gradescope autograder zip: setup.sh, run_autograder, the "
                                 "rubric and a wheel of this grader (installed without the network "
                                 "beyond the package index).")
    parser.add_argument("out", metavar="OUT.zip")
    parser.add_argument("--rubric", default=str(DEFAULT_COURSE), metavar="FILE",
                        help="the rubric to grade with (default: the shipped one)")
    args = parser.parse_args(argv)
    try:
        course = load_course(args.rubric)
        parts = tuple(str(Path(p.path).relative_to(Path(args.rubric).parent)) for p in course.parts
                      if Path(p.path) != Path(args.rubric))
        contents = write_bundle(Path(args.out), Path(args.rubric), parts)
    except (RubricError, BundleError) as error:
        raise UsageError(str(error)) from None
    except ValueError:  # a part outside the course file's folder
        raise UsageError(f"{args.rubric}: a Gradescope bundle takes course parts from the course "
                         "file's own folder") from None
    total = _course_total(course)
    print(f"wrote {args.out}: {', '.join(contents)}")
    print(f"upload it in Gradescope (Configure Autograder, Zip file upload, Ubuntu 22.04 base "
          f"image); set the assignment's autograder points to {total:g}")
    return EXIT_OK


def _gradescope_path(argv: list[str]) -> str | None:
    """Found before parsing, so that even a failed parse leaves Gradescope a result."""
    for i, arg in enumerate(argv):
        if arg == "--gradescope" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--gradescope="):
            return arg.split("=", 1)[1]
    return None


def _gradescope_failure(path: str | None, message: str, student_can_fix: bool = False) -> None:
    if path:
        try:
            document = gradescope.failure_document(message, student_can_fix)
            write_atomic(Path(path), json.dumps(document, indent=2) + "\n")
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main())
