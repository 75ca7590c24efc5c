"""The roster (who should have submitted) and --fail-under (who is below the bar), as a course
runs them: unit tests of the CSV reader, then end to end through `grade`."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SUBMISSIONS
from dropout_grader.results import MISSING
from dropout_grader.roster import RosterError, load_roster, missing_results, not_on_roster

GRADE = str(Path(sys.executable).with_name("grade"))
DROPOUT = Path(__file__).resolve().parent.parent / "rubrics" / "dropout.yaml"


def grade(*args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB"))}
    # The dropout exercise's rubric: these tests are about the roster, its scores out of 19.
    return subprocess.run([GRADE, *map(str, args), "--rubric", str(DROPOUT)], capture_output=True, text=True,
                          env={**env, "NO_COLOR": "1"}, timeout=300)


def roster_file(tmp_path, text: str, encoding="utf-8") -> Path:
    path = tmp_path / "roster.csv"
    path.write_bytes(text.encode(encoding))
    return path


def test_the_documented_columns_are_read_and_others_ignored(tmp_path):
    path = roster_file(tmp_path, "\ufeffID,Name,email,sis_id,Section,Notes\n"
                                 "alice,Alice A,a@x.edu,1001,s1,late\n\n bob ,Bob,,1002,,\n")
    students = load_roster(path)
    assert [(s.id, s.name, s.email, s.sis_id, s.section) for s in students] == [
        ("alice", "Alice A", "a@x.edu", "1001", "s1"), ("bob", "Bob", "", "1002", "")]


@pytest.mark.parametrize("text, words", [
    ("name,email\nAlice,a@x\n", "no `id` column in the header row; columns: id, name, email"),
    ("student_id,name\n1,Alice\n", "no `id` column in the header row; is `student_id` meant to be `id`?"),
    ("id,name\nalice,A\n,B\n", "line 3: the id is empty"),
    ("id,name\nalice,A\nbob,B\nalice,C\n", "line 4: id 'alice' is already on line 2"),
    ("id,name\n", "no students in it"),
])
def test_a_bad_roster_is_named_by_line(tmp_path, text, words):
    with pytest.raises(RosterError, match="roster .*roster.csv: " + words.replace("?", r"\?").replace("(", r"\(")):
        load_roster(roster_file(tmp_path, text))


def test_a_roster_not_in_utf8_says_so(tmp_path):
    with pytest.raises(RosterError, match="not UTF-8 text"):
        load_roster(roster_file(tmp_path, "id,name\nzoë,Zoë\n", encoding="latin-1"))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12).filter(lambda t: t.strip() == t and "\x00" not in t),
                min_size=1, max_size=8, unique=True))
def test_any_ids_round_trip_and_the_missing_are_exactly_the_rest(tmp_path_factory, ids):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "name"])
    for student in ids:
        writer.writerow([student, f"name of {student}"])
    path = tmp_path_factory.mktemp("r") / "roster.csv"
    path.write_bytes(buffer.getvalue().encode("utf-8"))
    try:
        students = load_roster(path)
    except RosterError as error:  # only an id that is blank once stripped may be refused
        assert "the id is empty" in str(error) and any(not s.strip() for s in ids)
        return
    assert [s.id for s in students] == [s.strip() for s in ids]
    graded = set([s.id for s in students][::2])
    missing = missing_results(students, graded, 19.0)
    assert {r.student for r in missing} == {s.id for s in students} - graded
    assert all(r.status == MISSING and r.score == 0 and r.max_score == 19 for r in missing)
    assert not_on_roster(students, ["stranger-\x01"]) == ["stranger-\x01"]


@pytest.fixture(scope="module")
def class_with_roster(tmp_path_factory):
    base = tmp_path_factory.mktemp("course")
    for section, student, notebook in [("s1", "alice", "correct_reference"),
                                       ("s2", "bob", "forward_layer1_scale_missing")]:
        (base / "class" / section / student).mkdir(parents=True)
        shutil.copy(SUBMISSIONS / f"{notebook}.ipynb", base / "class" / section / student / "hw.ipynb")
    roster = roster_file(base, "id,name,email,sis_id\nalice,Alice,a@x,1\nbob,Bob,b@x,2\ncarol,Carol,c@x,3\n")
    out = base / "reports"
    completed = grade(base / "class", "--roster", roster, "--out", out, "--fail-under", "100%")
    return completed, out


def test_roster_students_without_a_notebook_are_missing_in_the_gradebook(class_with_roster):
    completed, out = class_with_roster
    assert "Traceback" not in completed.stderr
    rows = list(csv.DictReader(io.StringIO((out / "grades.csv").read_text(encoding="utf-8-sig"))))
    assert [(r["student"], r["section"], r["status"], r["score"]) for r in rows] == [
        ("alice", "s1", "graded", "19"), ("bob", "s2", "graded", "17"), ("carol", "", "missing", "0")]
    results = json.loads((out / "results.json").read_text())
    assert [s["status"] for s in results["submissions"]] == ["graded", "graded", "missing"]
    schema = Path(__file__).resolve().parent.parent / "grader" / "report" / "schemas" / "results.schema.json"
    jsonschema.validate(results, json.loads(schema.read_text()))
    index = (out / "index.html").read_text()
    assert "carol" in index and "missing: on the roster, no notebook found" in index
    assert "2 notebooks: 2 graded, 0 ungradable; 1 on the roster with no notebook (missing)" in index
    assert not (out / "feedback" / "carol.html").exists()
    assert "1 on the roster with no notebook (missing in grades.csv): carol" in completed.stdout


def test_fail_under_a_percentage_names_the_students_below_and_the_bar(class_with_roster):
    completed, _ = class_with_roster
    assert completed.returncode == 1
    lines = completed.stdout.splitlines()
    start = lines.index("--fail-under: 2 of 3 students below the bar of 100% of 19 = 19 points:")
    assert lines[start + 1].split() == ["bob", "17/19", "forward.layer1.scale", "[missing]"]
    assert lines[start + 2].split() == ["carol", "0/19", "missing:", "no", "notebook"]


def test_fail_under_in_points_and_nobody_below(tmp_path):
    completed = grade(SUBMISSIONS / "forward_layer1_scale_missing.ipynb", "--out", tmp_path,
                      "--fail-under", "17", "--student", "bob")
    assert completed.returncode == 0 and "--fail-under" not in completed.stdout
    assert "bob  17/19" in completed.stdout


@pytest.mark.parametrize("value", ["abc", "101%", "-1", "nan"])
def test_a_bad_bar_is_a_usage_error(tmp_path, value):
    completed = grade(SUBMISSIONS / "correct_reference.ipynb", "--out", tmp_path, "--fail-under", value)
    assert completed.returncode == 2 and completed.stderr.count("\n") == 1
    assert "--fail-under" in completed.stderr and "Traceback" not in completed.stderr


def test_a_bad_roster_is_a_usage_error_before_grading(tmp_path):
    roster = roster_file(tmp_path, "name\nAlice\n")
    completed = grade(SUBMISSIONS / "correct_reference.ipynb", "--out", tmp_path / "out", "--roster", roster)
    assert completed.returncode == 2 and "no `id` column" in completed.stderr
    assert not (tmp_path / "out" / "results.json").exists()
