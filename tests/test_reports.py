"""Every report format parsed back with a real parser; untrusted text escaped everywhere; the
class report opened in a real headless browser."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from conftest import ROOT, SUBMISSIONS, load_examples_module, write_notebook
from dropout_grader.report import github, gradescope, grades_csv, html, junit, results_json
from dropout_grader.results import Submission

GRADE = str(Path(sys.executable).with_name("grade"))
SCHEMAS = ROOT / "grader" / "report" / "schemas"
EVIL = '<script>alert("x")</script>, "quoted"\nname'
EVIL_SHOWN = EVIL.replace("\n", " ") + " ~" + hashlib.sha256(EVIL.encode()).hexdigest()[:16]  # one line, told apart
ex = load_examples_module()


@pytest.fixture(scope="module")
def run(grader, tmp_path_factory):
    """A small class: a hostile name and code, a wrong step, a correct one, an unreadable file."""
    folder = tmp_path_factory.mktemp("class")
    hostile = write_notebook(folder / "evil.ipynb", ex.IMPORTS, ex.forward(l1=dict(
        scale="-", apply="A1 = A1 * D1  # </pre><script>alert('code')</script>")), ex.backward())
    hostile_print = ex.forward().replace("np.random.seed(1)", "print('<script>out</script> ::error::fake')")
    noisy = write_notebook(folder / "noisy.ipynb", ex.IMPORTS, hostile_print, ex.backward())
    broken = folder / "broken.ipynb"
    broken.write_text("{not json")
    submissions = [Submission(EVIL, str(hostile)), Submission("=cmd|' /C calc'!A0", str(noisy)),
                   Submission("correct", str(SUBMISSIONS / "correct_reference.ipynb")),
                   Submission("broken", str(broken))]
    return grader.run_result(list(grader.grade_all(submissions)))


def test_results_json_matches_its_schema(run):
    document = json.loads(results_json.render(run))
    jsonschema.validate(document, json.loads((SCHEMAS / "results.schema.json").read_text()))
    assert document["submissions"][0]["student"] == EVIL_SHOWN


def test_grades_csv_parses_and_round_trips(run):
    text = grades_csv.render(run)
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:])))
    assert [r["student"] for r in rows] == [EVIL_SHOWN, "'=cmd|' /C calc'!A0", "correct", "broken"]
    assert rows[0]["forward.layer1.scale"] == "0" and rows[0]["forward.layer1.mask"] == "1"
    assert rows[0]["wrong_steps"] == "forward.layer1.scale: missing"
    assert rows[2]["score"] == rows[2]["max_score"] == "19"
    assert rows[3]["status"] == "ungradable"
    assert {step.id for step in run.steps} <= set(rows[0])  # a column per rubric step


def test_junit_is_valid_xml_gitlab_can_read(run):
    root = ET.fromstring(junit.render(run).encode())
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites][2:] == ["correct", "broken"]
    evil = suites[0]
    cases = evil.findall("testcase")
    assert len(cases) == len(run.steps)
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["forward.layer1.scale"]
    assert failed[0].get("classname") == EVIL_SHOWN + ".forward"
    props = {p.get("name"): p.get("value") for p in failed[0].find("properties")}
    assert props["points"] == "0" and props["max_points"] == "2" and "wide-0.7=1" in props["seed"]
    assert evil.get("failures") == "1" and evil.get("errors") == "0"
    broken = suites[3]
    assert broken.get("errors") == "1" and broken.find("testcase/error") is not None


def test_gradescope_file_matches_its_schema(run):
    schema = json.loads((SCHEMAS / "gradescope.schema.json").read_text())
    for result in run.submissions:
        document = gradescope.document(run, result)
        jsonschema.validate(document, schema)
        assert document["score"] == result.score
    jsonschema.validate(gradescope.failure_document("boom"), schema)


def test_html_escapes_untrusted_names_code_and_output(run):
    page = html.feedback_html(run, run.submissions[0])
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "alert(&#39;code&#39;)" in page or "alert(&#x27;code&#x27;)" in page
    noisy = html.feedback_html(run, run.submissions[1])
    assert "<script>out" not in noisy and "&lt;script&gt;out" in noisy
    report = html.class_report(run)
    assert "<script>" not in report and "&lt;script&gt;alert" in report
    assert html.file_name(EVIL) != EVIL and "/" not in html.file_name("../../etc/passwd")


def test_markdown_feedback_keeps_tables_intact(run):
    text = html.feedback_markdown(run, run.submissions[0])
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert all(line.count(" | ") >= 3 for line in table)
    outside_fences = "".join(part for i, part in enumerate(text.split("```")) if i % 2 == 0)
    assert "<script>" not in outside_fences  # inside a fence it is shown as code, inert


def test_github_escaping_and_limits(run):
    assert github.escape_data("50%\r\nnext") == "50%25%0D%0Anext"
    assert github.escape_property("a: b, c") == "a%3A b%2C c"
    commands = github.annotations(run, {})
    assert commands and all(c.startswith("::error file=") and "\n" not in c for c in commands)
    assert len(commands) <= github.MAX_ANNOTATIONS
    fenced = github.fenced_output(run.submissions[1], token="t0k")
    assert fenced.startswith("::stop-commands::t0k\n") and fenced.endswith("\n::t0k::\n")


def test_notebook_line_points_into_the_ipynb_file():
    path = SUBMISSIONS / "forward_layer1_scale_missing.ipynb"
    text = path.read_text()
    line = github.notebook_line(text, 2, "    A1 = A1 * D1")
    assert "A1 = A1 * D1" in text.splitlines()[line - 1]


def test_github_mode_end_to_end(tmp_path):
    summary = tmp_path / "summary.md"
    notebook = write_notebook(tmp_path / "student.ipynb", ex.IMPORTS,
                              ex.forward(l1=dict(scale="-")).replace(
                                  "np.random.seed(1)", "np.random.seed(1)\n    print('::add-mask::x ::error::fake')"),
                              ex.backward())
    # A notebook of the dropout exercise alone: graded on its rubric, not the whole notebook's.
    completed = subprocess.run([GRADE, str(notebook), "--rubric", str(ROOT / "rubrics" / "dropout.yaml"),
                                "--out", str(tmp_path / "out"), "--fail-under", "19"],
                               capture_output=True, text=True, timeout=120,
                               env={**os.environ, "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary),
                                    "NO_COLOR": "1"})
    assert completed.returncode == 1
    lines = completed.stdout.splitlines()
    errors = [line for line in lines if line.startswith("::error ")]
    assert len(errors) == 1 and "title=student%3A forward.layer1.scale" in errors[0]
    line_number = int(errors[0].split("line=")[1].split(",")[0])
    assert "A1 = A1 * D1" in notebook.read_text().splitlines()[line_number - 1]
    start = next(i for i, line in enumerate(lines) if line.startswith("::stop-commands::"))
    token = lines[start].split("::")[2]
    end = lines.index(f"::{token}::")
    assert any("::error::fake" in line for line in lines[start:end])
    assert not any("::error::fake" in line for line in lines[:start] + lines[end:])
    assert "| `forward.layer1.scale` | ❌ missing | 0/2 |" in summary.read_text()


def test_gradescope_file_from_the_command_line(tmp_path):
    target = tmp_path / "gs" / "results.json"
    target.parent.mkdir()
    completed = subprocess.run([GRADE, str(SUBMISSIONS / "forward_layer2_scale_missing.ipynb"),
                                "--out", str(tmp_path / "out"), "--gradescope", str(target), "-q"],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0
    document = json.loads(target.read_text())
    assert document["score"] == 26  # 17/19 on dropout, 9/9 on L2: the default grades the whole notebook
    failed = [t for t in document["tests"] if t["status"] == "failed"]
    assert [t["name"].split(":")[0] for t in failed] == ["forward.layer2.scale"]


def test_gradescope_file_is_written_even_when_grading_fails(tmp_path):
    target = tmp_path / "results.json"
    completed = subprocess.run([GRADE, str(SUBMISSIONS / "correct_reference.ipynb"), "--rubric",
                                str(tmp_path / "missing.yaml"), "--gradescope", str(target)],
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 2
    document = json.loads(target.read_text())
    assert document["score"] == 0 and "could not grade" in document["output"]


def test_progress_lines_when_not_a_terminal():
    from dropout_grader.report.progress import Progress

    stream = io.StringIO()
    progress = Progress(3, stream=stream, every_seconds=0)
    for _ in range(3):
        progress.advance()
    assert stream.getvalue().splitlines()[-1].startswith("3/3 graded")
    quiet = io.StringIO()
    Progress(3, stream=quiet, enabled=False).advance()
    assert quiet.getvalue() == ""


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium here (.ci/run installs Debian's chromium)")
@pytest.mark.parametrize("page", ["index.html", "feedback/forward_layer1_scale_missing.html"])
def test_pages_load_in_a_real_browser(page, tmp_path_factory):
    out = tmp_path_factory.getbasetemp() / "browser-reports"
    if not (out / "index.html").exists():
        assert subprocess.run([GRADE, str(SUBMISSIONS), "--out", str(out), "-q"], capture_output=True,
                              timeout=300).returncode == 0
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0"]
    url = (out / page).as_uri()
    profile = tmp_path_factory.mktemp("profile")
    dom = subprocess.run([CHROMIUM, *flags, f"--user-data-dir={profile}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert console == []
    if page == "index.html":
        assert dom.stdout.count("<svg") >= 2
        assert 'id="score-distribution"' in dom.stdout and 'id="mistakes-by-step"' in dom.stdout
        assert "forward_layer1_scale_missing" in dom.stdout
    else:
        assert "forward.layer1.scale" in dom.stdout and 'class="at"' in dom.stdout
    shots = ROOT / "reports" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    shot = shots / (page.replace("/", "_") + ".png")
    taken = subprocess.run([CHROMIUM, *flags, f"--user-data-dir={profile}", "--window-size=1100,1600",
                            f"--screenshot={shot}", url], capture_output=True, text=True, timeout=120)
    assert taken.returncode == 0 and shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


# --- synthetic runs: every report of a class built without grading anything -----------------
import re  # noqa: E402
import stat  # noqa: E402
from dataclasses import replace  # noqa: E402

from hypothesis import given, settings, strategies as st  # noqa: E402
from markdown_it import MarkdownIt  # noqa: E402
from wcwidth import wcswidth  # noqa: E402

from dropout_grader.pipeline import run_result as make_run  # noqa: E402
from dropout_grader.report import audience, neutral, terminal  # noqa: E402
from dropout_grader.report.write import write_reports  # noqa: E402
from dropout_grader.results import GRADED, UNGRADABLE, Finding, SubmissionResult  # noqa: E402

HOSTILE_PIECES = ["\x1b[31m", "\x1b]0;title\x07", "\x9b2J", "\x9d8;;http://x\x9c", "\x90q\x9c", "\x00", "\x07",
                  "\x7f", "\x85", "\r", "\r\n", "\n", "\t", "\u2028", "\u202e", "\ufffe", "\uffff", "\ud800",
                  "\U0010ffff", "::error::forged", "::add-mask::x", "  ::warning::w", "\u00a0::notice::n",
                  "##[error]legacy", "[link](javascript:alert(1))", "![img](x)", "<a href='x'>a</a>",
                  "<script>s</script>", "&lt;", "`code`", "```", "|", "**b**", "_i_", "~~s~~", "\\", "日本",
                  "e\u0301", "👩\u200d👩\u200d👧"]
hostile_text = st.lists(st.one_of(st.sampled_from(HOSTILE_PIECES),
                                  st.text(st.characters(exclude_categories=()), max_size=8)),
                        max_size=12).map("".join)
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]")


@settings(max_examples=300, deadline=None)
@given(hostile_text, st.integers(min_value=40, max_value=400))
def test_neutral_clean_removes_every_control_and_caps(text, limit):
    cleaned = neutral.clean(text, limit)
    assert CONTROLS.search(cleaned) is None
    assert len(cleaned) <= max(limit, len(text) and limit)
    assert neutral.clean(cleaned, limit) == cleaned  # idempotent: reports may clean twice
    assert "\n" not in neutral.clean(text, limit, one_line=True)


@settings(max_examples=300, deadline=None)
@given(hostile_text)
def test_neutral_log_never_starts_a_workflow_command(text):
    for line in neutral.log(neutral.clean(text, 10_000)).split("\n"):
        assert not line.lstrip("".join(c for c in line if neutral._is_blank(c))).startswith("::")
        assert not re.match(r"\s*::", line) and "##[" not in line


@settings(max_examples=300, deadline=None)
@given(hostile_text)
def test_neutral_markdown_is_inert_in_a_table_cell_and_a_paragraph(text):
    parser = MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough")
    table = parser.render(f"| a | b |\n|---|---|\n| {neutral.markdown(text)} | end |\n")
    assert set(re.findall(r"<([a-z0-9]+)", table)) <= {"table", "thead", "tbody", "tr", "th", "td"}
    assert table.count("<td>") == 2  # no cell boundary came from the text
    paragraph = parser.render("Not graded: " + neutral.markdown(text))
    assert set(re.findall(r"<([a-z0-9]+)", paragraph)) <= {"p"}


@settings(max_examples=300, deadline=None)
@given(hostile_text)
def test_neutral_xml_always_parses(text):
    element = ET.Element("case", message=neutral.xml(text))
    element.text = neutral.xml(text)
    back = ET.fromstring(ET.tostring(element, encoding="unicode"))
    assert back.get("message").replace("\r", "").replace("\n", "").replace("\t", "") == \
        neutral.xml(text).replace("\r", "").replace("\n", "").replace("\t", "")


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(exclude_categories=()), max_size=300), st.text(st.characters(exclude_categories=()),
                                                                             max_size=300))
def test_feedback_file_names_are_safe_and_unique_per_id(a, b):
    name = html.file_name(a)
    assert re.fullmatch(r"[a-z0-9._~-]+", name) and len(name) <= html.FILE_NAME_CHARS + 17
    assert not name.startswith(".") and name.split(".")[0] not in html.WINDOWS_RESERVED
    if a != b:
        assert html.file_name(a) != html.file_name(b)


def test_feedback_file_names_of_long_ids_sharing_a_prefix_differ():
    first, second = "s" * 150 + "-alice", "s" * 150 + "-bob"
    assert html.file_name(first) != html.file_name(second)
    assert html.file_name("Alice") != html.file_name("alice")  # case-insensitive file systems
    assert html.file_name("alice") == "alice"


def _findings(run_steps, wrong=None, not_assessed=(), cell=2, line=4, code="A1 = A1 * D1"):
    """Every rubric step ok, but those in `wrong` (step -> (diagnosis, message)) and in
    `not_assessed`."""
    wrong = wrong or {}
    out = []
    for step in run_steps:
        if step.id in wrong:
            diagnosis, message = wrong[step.id]
            out.append(Finding(step.id, "wrong", diagnosis, 0.0, step.max_points, message, cell, line, code))
        elif step.id in not_assessed:
            out.append(Finding(step.id, "note", "not_assessed", 0.0, step.max_points,
                               "Not assessed: forward_propagation_with_dropout could not be graded."))
        else:
            out.append(Finding(step.id, "ok", None, step.max_points, step.max_points, f"{step.id} is right."))
    return out


def _result(run_steps, student="ada", path="class/ada/hw.ipynb", **kwargs):
    output = kwargs.pop("output", "")
    sources = kwargs.pop("sources", {2: "def f():\n    pass\n    D1 = 1\n    A1 = A1 * D1\n    return A1\n"})
    findings = _findings(run_steps, **kwargs)
    return SubmissionResult(student=student, path=path, status=GRADED, score=sum(f.points for f in findings),
                            max_score=sum(s.max_points for s in run_steps), findings=findings, output=output,
                            sources=sources, code_sha256="c0de" * 16, graded_at="2026-11-29 15:00:00 UTC")


@pytest.fixture(scope="module")
def steps(rubric):
    return make_run(rubric, [], []).steps


def _run(rubric, results, hidden=()):
    run = make_run(rubric, results, [])
    return replace(run, steps=[replace(s, visible=s.id not in hidden) for s in run.steps])


def test_terminal_table_forged_name_cannot_issue_a_workflow_command(rubric, steps):
    forged = _result(steps, student="x\n::error::forged/notebook.ipynb\x9b31m\x9d0;t\x07\x1b[2J",
                     wrong={"forward.layer1.scale": ("missing", "bad\r::warning::also forged")})
    table = terminal.render_table(_run(rubric, [forged, _result(steps)]), terminal.Style(color=False))
    for line in table.splitlines():
        assert not line.lstrip().startswith("::")
    assert not re.search("[\x1b\x9b\x9d\x07\r]", table)
    feedback = terminal.render_feedback(replace(forged, output="ok\n  ::error::printed\n##[error]x"),
                                        terminal.Style(color=False))
    assert all(not line.lstrip().startswith("::") and "##[" not in line for line in feedback.splitlines())


def test_terminal_table_aligns_wide_characters_and_cuts_with_an_ellipsis(rubric, steps):
    names = ["日本語の学生さん", "e\u0301le\u0300ve", "bob", "a-very-long-student-identifier-beyond-thirty-two"]
    table = terminal.render_table(_run(rubric, [_result(steps, student=n) for n in names]),
                                  terminal.Style(color=False))
    rows = table.splitlines()[1:]
    ends = [wcswidth(row[:row.index("/")]) for row in rows]  # where each score's "/" sits
    assert len(set(ends)) == 1, rows
    assert "a-very-long-student-identifier-…" in rows[3] and wcswidth("a-very-long-student-identifier-…") == 32


def test_terminal_counts_notebooks_and_cells_as_people_do(rubric, steps):
    one = _run(rubric, [_result(steps, wrong={"forward.layer1.scale": ("missing", "m")})])
    assert terminal.render_summary(one, 1.0).startswith("1 notebook:")
    assert terminal.render_summary(_run(rubric, [_result(steps)] * 2), 1.0).startswith("2 notebooks:")
    assert "at cell 3, line 4" in terminal.render_feedback(one.submissions[0], terminal.Style(color=False))


BIG = 5 * 1024 * 1024


def test_a_5mb_exception_name_and_output_do_not_bloat_any_report(rubric, steps, tmp_path):
    name = "E" * BIG
    huge = _result(steps, student="s" * BIG, path="p" * BIG, output="o" * BIG, code="c" * BIG,
                   sources={2: "x" * BIG}, wrong={"forward.function": ("error", f"raised {name}: {name}")})
    run = _run(rubric, [huge, _result(steps, student="bob")])
    texts = {"results.json": results_json.render(run), "junit.xml": junit.render(run),
             "grades.csv": grades_csv.render(run), "index.html": html.class_report(run),
             "feedback.html": html.feedback_html(run, huge), "feedback.md": html.feedback_markdown(run, huge),
             "gradescope": gradescope.render(run, huge), "summary": github.summary(run),
             "annotations": "\n".join(github.annotations(run, {})),
             "terminal": terminal.render_table(run, terminal.Style(False)) + terminal.render_feedback(
                 huge, terminal.Style(False))}
    for report, text in texts.items():
        assert len(text.encode()) < 300_000, report
    written = write_reports(run, tmp_path)
    assert max(p.stat().st_size for p in written) < 300_000
    assert "cut: 5,242,880 characters in all" in texts["results.json"]


def test_the_step_summary_of_a_large_class_stays_under_one_mib(rubric, steps):
    message = "x" * 5000
    wrong = {s.id: ("missing", message) for s in steps if s.max_points}
    run = _run(rubric, [_result(steps, student=f"student{i}", wrong=wrong) for i in range(400)])
    text = github.summary(run)
    assert len(text.encode()) <= github.SUMMARY_BYTES
    assert re.search(r"\d+ more students not shown", text)
    assert len(github.summary(run, budget=10_000).encode()) <= 10_000


def test_markdown_feedback_and_summary_make_no_live_links(rubric, steps):
    evil = "[click me](javascript:alert(1)) <img src=x onerror=alert(1)> ![i](http://x/i.png)"
    result = _result(steps, student="[me](javascript:x)", wrong={"forward.function": ("error", evil)})
    run = _run(rubric, [result])
    parser = MarkdownIt("commonmark", {"html": True}).enable("table")
    for text in (html.feedback_markdown(run, result), github.summary(run)):
        rendered = parser.render(text)
        assert "<a " not in rendered and "<img" not in rendered and "javascript:alert(1)" in rendered


HIDDEN = "forward.layer1.scale"


def test_hidden_steps_reach_no_student_output_and_every_instructor_output(rubric, steps):
    result = _result(steps, wrong={HIDDEN: ("missing", "the secret step"), "forward.layer2.mask":
                                   ("threshold_reversed", "shown")})
    run = _run(rubric, [result, _result(steps, student="bob")], hidden={HIDDEN})
    student_facing = {
        "annotations": "\n".join(github.annotations(run, {})), "summary": github.summary(run),
        "junit": junit.render(run), "feedback.html": html.feedback_html(run, result),
        "feedback.md": html.feedback_markdown(run, result),
        "terminal table": terminal.render_table(run, terminal.Style(False), hidden=audience.hidden_steps(run)),
        "terminal feedback": terminal.render_feedback(result, terminal.Style(False),
                                                      hidden=audience.hidden_steps(run))}
    for output, text in student_facing.items():
        assert HIDDEN not in text and "secret" not in text, output
        assert "forward.layer2.mask" in text or "layer2 mask" in text or "L2 mask" in text, output
    tests = gradescope.document(run, result)["tests"]
    assert {t["visibility"] for t in tests if t["name"].startswith(HIDDEN)} == {"hidden"}
    for output, text in {"results.json": results_json.render(run), "grades.csv": grades_csv.render(run),
                         "index.html": html.class_report(run)}.items():
        assert HIDDEN in text, output


def test_the_terminal_is_student_facing_in_ci_github_and_gradescope():
    assert audience.terminal_audience({}) == audience.STAFF
    assert audience.terminal_audience({"CI": "true"}) == audience.STUDENT
    assert audience.terminal_audience({"GITLAB_CI": "true"}) == audience.STUDENT
    assert audience.terminal_audience({}, github=True) == audience.STUDENT
    assert audience.terminal_audience({}, gradescope=True) == audience.STUDENT
    assert audience.terminal_audience({"CI": "true"}, choice=audience.STAFF) == audience.STAFF


def test_annotation_paths_are_relative_to_the_workspace(tmp_path):
    workspace = tmp_path / "repo"
    assert github.annotation_path(str(workspace / "hw" / "nb.ipynb"), str(workspace)) == "hw/nb.ipynb"
    assert github.annotation_path("hw/nb.ipynb", str(workspace), cwd=str(workspace)) == "hw/nb.ipynb"
    assert github.annotation_path("nb.ipynb", str(workspace), cwd=str(workspace / "hw")) == "hw/nb.ipynb"
    assert github.annotation_path("../x/nb.ipynb", None, cwd=str(workspace)) == "../x/nb.ipynb"
    assert github.annotation_path(str(tmp_path / "o.ipynb"), str(workspace), cwd=str(tmp_path)) == "o.ipynb"


def test_junit_skips_what_was_not_assessed_counts_right_and_filters_xml(rubric, steps):
    failed = _result(steps, wrong={"forward.function": ("error", "raised \ufffe\ud800\x00\x1b[31m")},
                     not_assessed={s.id for s in steps if s.id.startswith("forward.") and s.id != "forward.function"},
                     output="printed \uffff\x0c\x9b")
    wrong = _result(steps, student="bob", wrong={"forward.layer1.scale": ("missing", "m")})
    ungradable = SubmissionResult("carl", "c.ipynb", UNGRADABLE, 0, 19, [Finding(
        "notebook", "wrong", "unreadable", 0, 0, "not JSON \ufffe")])
    text = junit.render(_run(rubric, [failed, wrong, ungradable]))
    root = ET.fromstring(text.encode())
    for suite in root.findall("testsuite"):
        cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(cases)
        for kind in ("failure", "error", "skipped"):
            key = kind + ("s" if kind != "skipped" else "")
            assert int(suite.get(key)) == sum(c.find(kind) is not None for c in cases), (kind, suite.get("name"))
    first = root.findall("testsuite")[0]
    assert first.get("skipped") == "10" and first.get("errors") == "0" and first.get("failures") == "1"
    assert first.find("testcase[@name='forward.layer1.scale']/skipped") is not None
    assert root.get("tests") == str(2 * len(steps) + 1) and root.get("skipped") == "10"
    assert root.get("failures") == "2" and root.get("errors") == "1"
    assert all(c.get("file") for c in root.iter("testcase"))
    assert not re.search("[\ufffe\uffff\x00\x1b\x0c\x9b]", text)


def _class(steps, kinds):
    """One student per mistake kind (step -> diagnosis), plus a correct one."""
    return [_result(steps, student=f"s{i}", wrong={step: (diagnosis, f"{step} {diagnosis}")})
            for i, (step, diagnosis) in enumerate(kinds)] + [_result(steps, student="right")]


def test_class_report_shows_every_mistake_kind(rubric, steps):
    kinds = [(s.id, d) for s in steps for d in ("missing", "multiplied") if s.max_points][:20]
    page = html.class_report(_run(rubric, _class(steps, kinds)))
    chart = page[page.index('id="mistakes-by-step"'):page.index("</svg>", page.index('id="mistakes-by-step"'))]
    assert chart.count('<g id="mistake-bar-') == html.CHART_KINDS
    assert re.search(r'and 5 more kinds of mistake: see <a href="#mistakes">', page)
    table = ET.fromstring(page[page.index('<table id="mistakes">'):page.index("</table>", page.index(
        '<table id="mistakes">')) + 8])
    assert len(table.findall("tbody/tr")) == 20


def test_class_report_charts_are_text_with_titles(rubric, steps):
    page = html.class_report(_run(rubric, _class(steps, [("forward.layer1.scale", "missing")] * 2)))
    svg = page[page.index('id="mistakes-by-step"'):]
    svg = svg[svg.index("<svg"):svg.index("</svg>") + 6]
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    texts = ["".join(t.itertext()) for t in root.iter(f"{ns}text")]
    assert "forward.layer1.scale: missing" in texts and "Mistakes by step" in texts
    titles = ["".join(t.itertext()) for t in root.iter(f"{ns}title")]
    assert titles[0].startswith("Mistakes by step") and "forward.layer1.scale: missing: 2 students (67%)" in titles


def test_reteach_topics_are_kinds_of_mistake_not_one_students_text(rubric, steps):
    results = [_result(steps, student=f"a{i}", wrong={"forward.layer1.scale": ("missing", "m")}) for i in range(3)]
    results += [_result(steps, student=f"b{i}", wrong={"forward.layer2.scale": ("missing", "m")}) for i in range(2)]
    results += [_result(steps, student="typo", wrong={"forward.function": (
        "error", "raised AttributeError: module 'numpy.random' has no attribute 'rnad'")})]
    page = html.class_report(_run(rubric, results))
    reteach = page[page.index('<ol id="reteach">'):page.index("</ol>")]
    items = re.findall(r"<li>(.*?)</li>", reteach, re.S)
    assert "5 students" in items[0] and "forward.layer{1,2}.scale" in items[0] and "layers 1 and 2" in items[0]
    assert "rnad" not in reteach and "forward.function" in items[1]


def test_feedback_pages_say_when_what_and_which_code_cells_from_1_not_assessed_once(rubric, steps):
    result = _result(steps, wrong={"forward.function": ("error", "raised NameError")},
                     not_assessed={s.id for s in steps if s.id.startswith("forward.") and s.id != "forward.function"})
    run = _run(rubric, [result])
    for page in (html.feedback_html(run, result), html.feedback_markdown(run, result)):
        assert "2026-11-29 15:00:00 UTC" in page and "c0dec0dec0de" in page
        assert "hw.ipynb" in page and "cell 3, line 4" in page
        assert page.count("could not be graded") == 1
    rows = list(csv.DictReader(io.StringIO(grades_csv.render(run)[1:])))
    assert rows[0]["graded_at"] == "2026-11-29 15:00:00 UTC" and rows[0]["code_sha256"] == "c0de" * 16
    assert "1 notebook:" in html.class_report(run)
    assert "cell 3, line 4" in github.summary(run) or "forward.function" in github.summary(run)
    assert gradescope.document(run, result)["tests"][0]["output"].count("cell 3, line 4") == 1
    statuses = {t["name"].split(":")[0]: t["status"] for t in gradescope.document(run, result)["tests"]}
    assert statuses["forward.layer1.scale"] == "failed" and statuses["backward.layer1.scale"] == "passed"


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_report_files_respect_the_umask(rubric, steps, tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        written = write_reports(_run(rubric, [_result(steps)]), tmp_path)
    finally:
        os.umask(previous)
    assert {stat.S_IMODE(p.stat().st_mode) for p in written} == {mode}


def test_feedback_of_students_no_longer_in_the_run_is_removed(rubric, steps, tmp_path):
    write_reports(_run(rubric, [_result(steps, student="alice"), _result(steps, student="bob")]), tmp_path)
    (tmp_path / "feedback" / "notes.txt").write_text("mine")
    (tmp_path / "feedback" / ".alice.html.0123456789ab.tmp").write_text("interrupted")
    write_reports(_run(rubric, [_result(steps, student="alice")]), tmp_path)
    assert sorted(p.name for p in (tmp_path / "feedback").iterdir()) == ["alice.html", "alice.md", "notes.txt"]


def test_github_mode_hides_hidden_steps_and_attaches_annotations_to_the_workspace(tmp_path):
    """End to end, as a student's push runs it: a rubric hiding the scale steps, the notebook
    in a sub-folder of GITHUB_WORKSPACE, the grader started from another folder."""
    text = (ROOT / "rubrics" / "dropout.yaml").read_text()
    key = "  forward.layer{layer}.scale:\n"
    rubric = tmp_path / "hidden.yaml"
    rubric.write_text(text.replace(key, key + "    visible: false\n", 1))
    workspace = tmp_path / "repo"
    (workspace / "hw").mkdir(parents=True)
    notebook = write_notebook(workspace / "hw" / "student.ipynb", ex.IMPORTS,
                              ex.forward(l1=dict(scale="-"), l2=dict(apply="A2 = A2")), ex.backward())
    summary = tmp_path / "summary.md"
    summary.write_text("x" * (1024 * 1024 - 2000))  # earlier steps left little room
    completed = subprocess.run([GRADE, str(notebook), "--rubric", str(rubric), "--out", str(tmp_path / "out")],
                               capture_output=True, text=True, timeout=120, cwd=tmp_path,
                               env={**os.environ, "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary),
                                    "GITHUB_WORKSPACE": str(workspace), "NO_COLOR": "1"})
    assert completed.returncode == 0, completed.stderr
    assert "forward.layer1.scale" not in completed.stdout and "forward.layer2.scale" not in completed.stdout
    assert "backward.layer1.scale" in completed.stdout  # visible steps are all there
    errors = [line for line in completed.stdout.splitlines() if line.startswith("::error ")]
    assert len(errors) == 1 and errors[0].startswith("::error file=hw/student.ipynb,line=")
    assert "forward.layer2.apply" in errors[0]
    assert summary.stat().st_size <= 1024 * 1024 and "forward.layer1.scale" not in summary.read_text()
    junit_text = (tmp_path / "out" / "junit.xml").read_text()
    assert "forward.layer1.scale" not in junit_text and "backward.layer1.scale" in junit_text
    document = json.loads((tmp_path / "out" / "results.json").read_text())
    assert {"forward.layer1.scale": "missing"}.items() <= {
        f["step"]: f["diagnosis"] for f in document["submissions"][0]["findings"]}.items()


def test_messages_count_cells_from_1(grade_cells):
    """The notebook's first cell is cell 1 in every message a person reads (results.json keeps
    the 0-based index in `cell`)."""
    result = grade_cells(ex.IMPORTS, ex.forward(), ex.forward(), ex.backward())
    note = next(f for f in result.findings if f.diagnosis == "defined_twice")
    assert "(cells 2, 3)" in note.message
    broken = grade_cells(ex.IMPORTS, "def forward_propagation_with_dropout(X, parameters, keep_prob=0.5):\n    return (",
                         ex.backward())
    error = next(f for f in broken.findings if f.step == "forward.function")
    assert "cell 2, line 2" in error.message and error.cell == 1


def test_ids_that_clean_or_cut_alike_keep_their_own_feedback_pages(rubric, steps, tmp_path):
    ids = ["s" * 300 + "-alice", "s" * 300 + "-bob", "carl", "carl\x1b", "carl\n"]
    mark = {i: "printed by " + hashlib.sha256(i.encode()).hexdigest()[:12] for i in ids}
    results = [_result(steps, student=i, output=mark[i]) for i in ids]
    shown = [r.student for r in neutral.bounded(_run(rubric, results)).submissions]
    assert len(set(shown)) == len(ids) and shown[2] == "carl"
    written = write_reports(_run(rubric, results), tmp_path, notebook_pages=False)
    pages = sorted(p for p in written if p.suffix == ".html" and p.parent.name == "feedback")
    assert len(pages) == len(ids)
    for student in ids:
        page = tmp_path / "feedback" / f"{html.file_name(neutral.identifier(student))}.html"
        assert mark[student] in page.read_text()
    index = (tmp_path / "index.html").read_text()
    assert all(f'href="feedback/{p.name}"' in index for p in pages)


def test_the_notebook_page_also_says_when_what_and_which_code(rubric, steps, tmp_path):
    notebook = write_notebook(tmp_path / "hw.ipynb", ex.IMPORTS, ex.forward(), ex.backward())
    result = replace(_result(steps, wrong={"forward.layer1.scale": ("missing", "m")}), path=str(notebook))
    write_reports(_run(rubric, [result]), tmp_path / "out")
    page = (tmp_path / "out" / "feedback" / "ada.notebook.html").read_text()
    graded = page[page.index('id="graded"'):]
    graded = graded[:graded.index("</p>")]
    assert "2026-11-29 15:00:00 UTC" in graded and "c0dec0dec0de" in graded and "hw.ipynb" in graded


def test_an_error_quoting_a_hostile_path_is_one_inert_line(tmp_path):
    completed = subprocess.run([GRADE, "nope\n::error::forged\x1b[31m\x9b2J", "--out", str(tmp_path)],
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 2
    lines = completed.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("grade: error: ") and not re.search("[\x1b\x9b]", lines[0])


def test_the_fail_under_list_names_no_hidden_step_and_no_forged_line(rubric, steps):
    from dropout_grader.cli import Bar, below_the_bar

    result = _result(steps, student="eve\n::error::forged", wrong={HIDDEN: ("missing", "m")})
    run = _run(rubric, [result], hidden={HIDDEN})
    text = below_the_bar(run.submissions, Bar(19, False), audience.hidden_steps(run))
    lines = text.splitlines()
    assert len(lines) == 2 and HIDDEN not in text and not lines[1].lstrip().startswith("::")
    assert HIDDEN in below_the_bar(run.submissions, Bar(19, False))  # the staff's view names it


# --- reports streamed from the gradebook; nothing made again that did not change -----------

from dropout_grader.gradebook import Gradebook  # noqa: E402
from dropout_grader.pipeline import grading_error  # noqa: E402
from dropout_grader.results import MISSING, Entry, ResultView, Submission as _Submission  # noqa: E402
from dropout_grader.reuse import Reuse  # noqa: E402

KEY_LINE = re.compile(r"<!-- dropout-grader-page-key: [^>]*-->\n|<dc:date>[^<]*</dc:date>")


def _stored_class(rubric, steps, tmp_path, monkeypatch):
    """A class whose results are in a gradebook (a grading error and a missing student kept
    in memory), as the CLI holds it: a ResultView, loaded in batches of 2."""
    book = Gradebook(f"sqlite:///{tmp_path / 'book.sqlite'}")
    reuse = Reuse(book, "rubric-sha", "build")
    results = [_result(steps, student=f"s{i}", wrong={"forward.layer1.scale": ("missing", f"m{i}")} if i % 2 else {},
                       output=f"printed \x1b[31m{i}") for i in range(5)]
    results.append(SubmissionResult("carl", "c.ipynb", UNGRADABLE, 0, 19, [Finding(
        "notebook", "wrong", "unreadable", 0, 0, "not JSON")]))
    for result in results:
        reuse.remember(result, None)
    results[1].section = "s2"
    results.append(grading_error(_Submission("eve", "e.ipynb"), RuntimeError("boom"), 19))
    results.append(SubmissionResult("zed", "", MISSING, 0, 19))
    batches = []

    def load(ids):
        batches.append(len(ids))
        return book.load(ids)

    monkeypatch.setattr(ResultView, "BATCH", 2)
    view = ResultView([Entry.of(r) for r in results], load)
    assert [e.result is None for e in view.entries] == [True] * 6 + [False, False]
    return book, results, view, batches


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): KEY_LINE.sub("", p.read_text(encoding="utf-8"))
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_reports_made_from_the_gradebook_equal_those_made_in_memory(rubric, steps, tmp_path, monkeypatch):
    book, results, view, batches = _stored_class(rubric, steps, tmp_path, monkeypatch)
    try:
        written = write_reports(_run(rubric, view), tmp_path / "stored", notebook_pages=False)
        write_reports(_run(rubric, results), tmp_path / "memory", notebook_pages=False)
    finally:
        book.close()
    stored = _files(tmp_path / "stored")
    assert stored == _files(tmp_path / "memory")
    assert {str(p.relative_to(tmp_path / "stored")) for p in written} == set(stored)
    assert max(batches) <= 2 and len(batches) >= 3 * 3  # the class loaded a batch at a time, per pass
    assert results_json.render(_run(rubric, view)) == results_json.render(_run(rubric, results))
    document = json.loads((tmp_path / "stored" / "results.json").read_text())
    assert [s["student"] for s in document["submissions"]] == [r.student for r in results]


def _stamps(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_ino)
            for p in folder.rglob("*") if p.is_file()}


def test_an_unchanged_run_rewrites_no_report_and_a_change_only_its_own(rubric, steps, tmp_path, monkeypatch):
    book, results, view, _ = _stored_class(rubric, steps, tmp_path, monkeypatch)
    out = tmp_path / "out"
    try:
        write_reports(_run(rubric, view), out, notebook_pages=False)
        before = _stamps(out)
        write_reports(_run(rubric, view), out, notebook_pages=False)
        assert _stamps(out) == before
        # One student regraded with another score: their pages and the class reports change.
        changed = replace(results[2], score=results[2].score - 1, gradebook_id=None)
        Reuse(book, "rubric-sha", "build").remember(changed, None)
        entries = list(view.entries)
        entries[2] = Entry.of(changed)
        write_reports(_run(rubric, ResultView(entries, book.load)), out, notebook_pages=False)
        after = _stamps(out)
        remade = sorted(name for name in after if after[name] != before.get(name))
        assert remade == ["feedback/s2.html", "feedback/s2.md", "grades.csv", "index.html", "junit.xml",
                          "results.json"]
        # A class report replaced by hand is made again, with the other three.
        (out / "grades.csv").write_text("edited")
        write_reports(_run(rubric, ResultView(entries, book.load)), out, notebook_pages=False)
        assert (out / "grades.csv").read_text(encoding="utf-8").startswith("\ufeffstudent,")
    finally:
        book.close()
