"""Every report format parsed back with a real parser; untrusted text escaped everywhere; the
class report opened in a real headless browser."""

from __future__ import annotations

import csv
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
    assert document["submissions"][0]["student"] == EVIL


def test_grades_csv_parses_and_round_trips(run):
    text = grades_csv.render(run)
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:])))
    assert [r["student"] for r in rows] == [EVIL, "'=cmd|' /C calc'!A0", "correct", "broken"]
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
    assert failed[0].get("classname") == EVIL + ".forward"
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
    completed = subprocess.run([GRADE, str(notebook), "--out", str(tmp_path / "out"), "--fail-under", "19"],
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
    assert document["score"] == 17
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
