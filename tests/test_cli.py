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


def test_results_json_has_the_documented_shape(class_run, rubric):
    _, results = class_run
    assert results["grader"]["name"] == "dropout-grader"
    assert results["rubric"] == {"id": rubric.id, "sha256": rubric.sha256,
                                 "seeds": {"wide-0.7": 1, "wide-0.86": 2, "equal-0.8": 3}}
    for submission in results["submissions"]:
        assert set(submission) >= {"student", "path", "status", "score", "max_score", "findings"}
        assert submission["status"] in ("graded", "ungradable")
        if submission["status"] == "graded":
            # every rubric step once
            assert [f["step"] for f in submission["findings"]] == list(rubric.steps)
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
    assert "forward_layer1_scale_missing  17/19" in out
    assert "✗ forward.layer1.scale [missing]" in out
    assert "0.7x their expected values: the 1/keep_prob factor is missing" in out
    assert "at cell 3, line 12: A1 = A1 * D1" in out  # the third cell: counted from 1


def test_fail_under_exits_one_for_ci(tmp_path):
    path = SUBMISSIONS / "forward_layer1_scale_missing.ipynb"
    assert grade(path, "--out", tmp_path, "--fail-under", 19).returncode == 1
    assert grade(path, "--out", tmp_path, "--fail-under", 17).returncode == 0


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
    assert json.loads((tmp_path / "results.json").read_text())["submissions"][0]["score"] == 19
    names = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("gradebook.sqlite"))
    assert names == ["feedback", "grades.csv", "index.html", "junit.xml", "results.json"]  # no temporary left
