"""End to end through the `grade` command, as an instructor runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SUBMISSIONS, expected_examples

GRADE = [str(Path(sys.executable).with_name("grade"))]


def grade(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(GRADE + [str(a) for a in args], capture_output=True, text=True,
                          env={**os.environ, "NO_COLOR": "1", **(env or {})}, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def class_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    completed = grade(SUBMISSIONS, "--out", out)
    return completed, json.loads((out / "results.json").read_text())


def test_grading_the_example_class_exits_zero(class_run):
    completed, _ = class_run
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr and "error" not in completed.stderr
    count = len(expected_examples())
    assert f"{count}/{count} graded" in completed.stderr  # progress, as plain lines when not a terminal
    assert "probe seeds: wide-0.7=1 wide-0.86=2 equal-0.8=3" in completed.stdout
    assert f"{count} notebooks:" in completed.stdout and "2 ungradable" in completed.stdout


def test_results_json_has_the_documented_shape(class_run):
    from dropout_grader.assignment import qualified
    from dropout_grader.course import load_course
    from dropout_grader.rubric import DEFAULT_COURSE

    _, results = class_run
    course = load_course(DEFAULT_COURSE)  # the default: the whole notebook, dropout and L2
    assert results["grader"]["name"] == "dropout-grader"
    assert results["rubric"] == {"id": course.id, "sha256": course.sha256,
                                 "seeds": {"wide-0.7": 1, "wide-0.86": 2, "equal-0.8": 3,
                                           "lambd-0": 11, "lambd-0.7": 12, "lambd-1.9": 13}}
    steps = [qualified(part.assignment, step) for part in course.parts for step in part.steps]
    for submission in results["submissions"]:
        assert set(submission) >= {"student", "path", "status", "score", "max_score", "findings"}
        assert submission["status"] in ("graded", "ungradable")
        if submission["status"] == "graded":
            # every rubric step once
            assert [f["step"] for f in submission["findings"]] == steps
            assert submission["score"] == sum(f["points"] for f in submission["findings"])
        for finding in submission["findings"]:
            assert finding["verdict"] in ("ok", "note", "wrong")
            assert (finding["diagnosis"] is None) == (finding["verdict"] == "ok")
            if finding["cell"] is not None:
                assert isinstance(finding["line"], int) and finding["line"] >= 1


def test_every_example_gets_exactly_its_expected_findings(class_run):
    _, results = class_run
    by_student = {s["student"]: s for s in results["submissions"]}
    expected = expected_examples()
    assert set(by_student) == set(expected)
    for student, want in expected.items():
        got = by_student[student]
        assert got["status"] == want["status"], student
        findings = {f["step"]: f["diagnosis"] for f in got["findings"]
                    if f["verdict"] != "ok" and f["diagnosis"] != "not_assessed"}
        assert findings == want["findings"], student
        for step, code in want["at"].items():
            finding = next(f for f in got["findings"] if f["step"] == step)
            assert finding["code"].strip() == code, (student, step, finding)


def test_correct_examples_get_full_marks(class_run):
    _, results = class_run
    for submission in results["submissions"]:
        if submission["student"].startswith("correct_"):
            assert submission["score"] == submission["max_score"], submission["student"]


def test_a_single_notebook_shows_the_students_feedback(tmp_path):
    completed = grade(SUBMISSIONS / "forward_layer1_scale_missing.ipynb", "--out", tmp_path)
    assert completed.returncode == 0
    out = completed.stdout
    assert "forward_layer1_scale_missing  26/28" in out  # 17/19 on dropout, 9/9 on L2
    assert "✗ forward.layer1.scale [missing]" in out
    assert "0.7x their expected values: the 1/keep_prob factor is missing" in out
    assert "at cell 3, line 12: A1 = A1 * D1" in out  # the third cell: counted from 1


def test_fail_under_exits_one_for_ci(tmp_path):
    path = SUBMISSIONS / "forward_layer1_scale_missing.ipynb"
    assert grade(path, "--out", tmp_path, "--fail-under", 28).returncode == 1
    assert grade(path, "--out", tmp_path, "--fail-under", 26).returncode == 0


@pytest.mark.parametrize("args, words", [
    (["--frobnicate", "x.ipynb"], "unrecognized arguments: --frobnicate"),
    (["does/not/exist.ipynb"], "no such file or folder"),
    (["-j", "0", "x.ipynb"], "must be at least 1"),
    ([], "the following arguments are required: PATH"),
])
def test_usage_errors_are_one_line_and_exit_two(tmp_path, args, words):
    completed = grade(*args, cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1 and words in completed.stderr
    assert "Traceback" not in completed.stderr


def test_invalid_rubric_is_a_usage_error(tmp_path):
    rubric = tmp_path / "r.yaml"
    rubric.write_text((ROOT / "rubrics" / "dropout.yaml").read_text().replace("points: 2", "points: -2", 1))
    completed = grade(SUBMISSIONS / "correct_reference.ipynb", "--rubric", rubric, "--out", tmp_path)
    assert completed.returncode == 2
    assert "points: Input should be greater than or equal to 0" in completed.stderr
    assert completed.stderr.count("\n") == 1


def test_results_json_is_replaced_atomically(tmp_path):
    (tmp_path / "results.json").write_text("old")
    assert grade(SUBMISSIONS / "correct_reference.ipynb", "--out", tmp_path).returncode == 0
    assert json.loads((tmp_path / "results.json").read_text())["submissions"][0]["score"] == 28
    names = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("gradebook.sqlite"))
    assert names == ["feedback", "grades.csv", "index.html", "junit.xml", "results.json"]  # no temporary left


# --- the three outcomes, the grader's own limits and its exit statuses ---------------------------

BROKEN_GRADER = """
import sys
import dropout_grader.pipeline as pipeline
from dropout_grader.cli import main

def broken(*args, **kwargs):  # a deliberately broken grader function
    raise KeyError("a bug of ours")

pipeline.decode_run = broken
sys.exit(main(sys.argv[1:]))
"""


def test_a_broken_grader_function_is_a_grading_error_with_its_own_exit_status(tmp_path):
    import csv
    import sqlite3

    import jsonschema

    out = tmp_path / "out"
    completed = subprocess.run([sys.executable, "-c", BROKEN_GRADER, str(SUBMISSIONS / "correct_reference.ipynb"),
                                "--out", str(out), "-q"], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 3, completed.stderr
    assert "Traceback" not in completed.stderr
    log = out / "grading-errors.log"
    assert f"the grader failed on 1 notebook(s), not through the students' code" in completed.stderr
    assert str(log) in completed.stderr and "KeyError" in log.read_text()
    assert "0 ungradable, 1 grading errors" in completed.stdout
    results = json.loads((out / "results.json").read_text())
    jsonschema.validate(results, json.loads((ROOT / "grader/report/schemas/results.schema.json").read_text()))
    (submission,) = results["submissions"]
    assert submission["status"] == "grading_error" and str(log) in submission["error"]
    assert not [f for f in submission["findings"] if f["verdict"] == "wrong"]
    row = next(csv.DictReader((out / "grades.csv").read_text(encoding="utf-8-sig").splitlines()))
    assert row["status"] == "grading_error" and row["score"] == ""  # no 0 for an LMS to import
    with sqlite3.connect(out / "gradebook.sqlite") as connection:
        assert connection.execute("SELECT count(*) FROM gradings").fetchone()[0] == 0
    on_gradescope = subprocess.run([sys.executable, "-c", BROKEN_GRADER, str(SUBMISSIONS / "correct_reference.ipynb"),
                                    "--out", str(tmp_path / "gs"), "-q", "--gradescope", str(tmp_path / "gs.json")],
                                   capture_output=True, text=True, timeout=120)
    assert on_gradescope.returncode == 3
    document = json.loads((tmp_path / "gs.json").read_text())
    assert document["tests"] == [] and "not in the student's code" in document["output"]  # no 0/19 shown as a grade
    fixed = grade(SUBMISSIONS / "correct_reference.ipynb", "--out", out, "-q")  # the same command, bug gone
    assert fixed.returncode == 0 and "reused" not in fixed.stdout
    assert json.loads((out / "results.json").read_text())["submissions"][0]["score"] == 28


def test_a_fifo_in_the_class_folder_does_not_hang_the_batch(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "ada.ipynb").write_bytes((SUBMISSIONS / "correct_reference.ipynb").read_bytes())
    os.mkfifo(folder / "notebook.ipynb")
    completed = grade(folder, "--out", tmp_path / "out", "-q")
    assert completed.returncode == 0, completed.stderr
    results = {s["student"]: s for s in json.loads((tmp_path / "out" / "results.json").read_text())["submissions"]}
    assert results["ada"]["score"] == 28
    assert "named pipe (FIFO)" in results["notebook"]["findings"][0]["message"]


def test_an_unwritable_out_is_found_before_grading(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    completed = grade(SUBMISSIONS, "--out", blocker / "reports")
    assert completed.returncode == 2 and completed.stderr.count("\n") == 1
    assert f"cannot write the reports in {blocker / 'reports'}" in completed.stderr
    assert "graded" not in completed.stderr  # no progress: nothing was graded first
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert grade(SUBMISSIONS, "--out", locked).returncode == 2


@pytest.mark.parametrize("address, words", [
    ("http://127.0.0.1:8786", "not http://"),
    ("tcp://127.0.0.1", "expected tcp://HOST:PORT"),
    ("tcp://127.0.0.1:notaport", "expected tcp://HOST:PORT"),
    ("tcp://:8786", "expected tcp://HOST:PORT"),
])
def test_scheduler_mistakes_are_one_line_usage_errors(tmp_path, address, words):
    pytest.importorskip("distributed")
    completed = grade(SUBMISSIONS / "correct_reference.ipynb", "--out", tmp_path, "--scheduler", address)
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.count("\n") == 1 and words in completed.stderr
    assert "Traceback" not in completed.stderr


def test_a_reader_that_leaves_early_ends_the_run_quietly(tmp_path):
    completed = subprocess.run(["bash", "-c", f"'{GRADE[0]}' '{SUBMISSIONS}' --out '{tmp_path}' | head -1; "
                                              "echo \"status ${PIPESTATUS[0]}\""],
                               capture_output=True, text=True, timeout=300, env={**os.environ, "NO_COLOR": "1"})
    assert completed.stdout.startswith("rubric ")
    assert "status 0" in completed.stdout
    assert "Traceback" not in completed.stderr and "BrokenPipeError" not in completed.stderr


def test_an_unchanged_re_run_rewrites_no_report(tmp_path):
    """Grade, grade again (every result reused: results.json now says so, nothing else
    changes), and again: the third run rewrites no file at all, and the second no page."""
    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("correct_reference.ipynb", "forward_layer1_scale_missing.ipynb", "unreadable.ipynb"):
        (folder / name).write_bytes((SUBMISSIONS / name).read_bytes())
    out = tmp_path / "out"
    dropout = ROOT / "rubrics" / "dropout.yaml"

    def stamps():
        return {str(p.relative_to(out)): (p.stat().st_mtime_ns, p.stat().st_ino) for p in out.rglob("*")
                if p.is_file() and not p.name.startswith("gradebook.sqlite")}

    assert grade(folder, "--rubric", dropout, "--out", out, "-q").returncode == 0
    first = stamps()
    assert grade(folder, "--rubric", dropout, "--out", out, "-q").returncode == 0
    second = stamps()
    assert sorted(name for name in second if second[name] != first[name]) == [
        "grades.csv", "index.html", "junit.xml", "results.json"]
    assert all(s["reused"] for s in json.loads((out / "results.json").read_text())["submissions"]
               if s["status"] == "graded")
    completed = grade(folder, "--rubric", dropout, "--out", out)
    assert completed.returncode == 0 and "3 of 3 unchanged" in completed.stdout
    assert "forward.layer1.scale" in completed.stdout or "L1 scale" in completed.stdout  # the table, loaded
    assert stamps() == second
