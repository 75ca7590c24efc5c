"""Nothing lost, and the same inputs always give the same findings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import ROOT, SUBMISSIONS, write_notebook
from dropout_grader.results import Submission
from dropout_grader.rubric import DEFAULT_RUBRIC

GRADE = str(Path(sys.executable).with_name("grade"))
SLOW = '''import numpy as np
def forward_propagation_with_dropout(X, parameters, keep_prob):
    import time
    time.sleep(1000)
'''


def _recorded(book: Path) -> int:
    import sqlite3

    if not book.exists():
        return 0
    try:
        with sqlite3.connect(book) as connection:
            return connection.execute("SELECT count(*) FROM gradings").fetchone()[0]
    except sqlite3.Error:
        return 0


def _zygotes() -> set[int]:
    """This checkout's zygotes (other checkouts on the machine may be grading meanwhile)."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes() if entry.name.isdigit() else b""
            if b"dropout_grader.sandbox.zygote" in command and str(ROOT).encode() in command:
                found.add(int(entry.name))
        except OSError:
            pass
    return found


def findings_of(results_path: Path) -> dict:
    data = json.loads(results_path.read_text())
    return {s["student"]: (s["status"], s["score"], s["findings"]) for s in data["submissions"]}


def test_a_killed_run_resumes_and_ends_as_an_uninterrupted_one(tmp_path):
    rubric = yaml.safe_load(DEFAULT_RUBRIC.read_text())
    rubric["limits"]["wall_seconds"] = 8
    rubric_path = tmp_path / "rubric.yaml"
    rubric_path.write_text(yaml.safe_dump(rubric))
    folder = tmp_path / "class"
    folder.mkdir()
    write_notebook(folder / "a_slow.ipynb", SLOW)
    quick = sorted(SUBMISSIONS.glob("correct_*.ipynb"))[:3] + sorted(SUBMISSIONS.glob("forward_*.ipynb"))[:2]
    for path in quick:
        (folder / path.name).write_bytes(path.read_bytes())
    command = [GRADE, str(folder), "--rubric", str(rubric_path), "-j", "2", "-q"]

    zygotes_before = _zygotes()
    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen(command + ["--out", str(interrupted)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    book = interrupted / "gradebook.sqlite"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if _recorded(book) >= len(quick):
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # no chance to clean up
    process.wait()
    assert not (interrupted / "results.json").exists()
    assert _recorded(book) == len(quick)
    time.sleep(1)
    assert _zygotes() <= zygotes_before  # the zygote and the sleeping child died with it

    resumed = subprocess.run(command + ["--out", str(interrupted)], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(quick)} of {len(quick) + 1} unchanged since the gradebook's last grading: reused" in resumed.stdout

    straight = subprocess.run(command + ["--out", str(tmp_path / "straight")], capture_output=True, text=True, timeout=120)
    assert straight.returncode == 0
    resumed_findings = findings_of(interrupted / "results.json")  # (reused results included)
    assert resumed_findings == findings_of(tmp_path / "straight" / "results.json")
    slow = {f["step"]: f["diagnosis"] for f in resumed_findings["a_slow"][2]}
    assert slow["forward.function"] == "timeout"


def test_same_findings_whatever_the_jobs_hash_seed_and_random_state(tmp_path):
    runs = []
    for jobs, hash_seed in (("1", "1"), ("4", "2")):
        out = tmp_path / f"run-{jobs}"
        completed = subprocess.run([GRADE, str(SUBMISSIONS), "--out", str(out), "-j", jobs, "-q"],
                                   env={**os.environ, "PYTHONHASHSEED": hash_seed}, capture_output=True, timeout=300)
        assert completed.returncode == 0
        runs.append(findings_of(out / "results.json"))
    assert runs[0] == runs[1]


def test_the_graders_own_random_state_changes_nothing(grader):
    path = SUBMISSIONS / "correct_default_rng.ipynb"
    np.random.seed(1)
    first = grader.grade(Submission("x", str(path))).findings
    np.random.seed(99)
    np.random.rand(1000)
    second = grader.grade(Submission("x", str(path))).findings
    assert first == second


# --- Ctrl-C: SIGINT to the process group, as a terminal sends it ------------------------------

def _class_of(folder: Path, count: int) -> None:
    """`count` notebooks cycling through the example class (correct, wrong, ungradable)."""
    examples = sorted(SUBMISSIONS.glob("*.ipynb"))
    folder.mkdir()
    for i in range(count):
        source = examples[i % len(examples)]
        (folder / f"s{i:03d}_{source.stem}.ipynb").write_bytes(source.read_bytes())


def _stored_results(book: Path) -> dict:
    import sqlite3

    with sqlite3.connect(book) as connection:
        rows = connection.execute("SELECT student, status, result FROM gradings").fetchall()
    return {student: (status, json.loads(result)) for student, status, result in rows}


def _interrupted_then_resumed_equals_straight(tmp_path, count: int) -> None:
    folder = tmp_path / "class"
    _class_of(folder, count)
    command = [GRADE, str(folder), "-j", "2", "-q"]
    straight_out = tmp_path / "straight"
    straight = subprocess.run(command + ["--out", str(straight_out)], capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr
    expected = findings_of(straight_out / "results.json")

    out = tmp_path / "interrupted"
    book = out / "gradebook.sqlite"
    previous = 0
    for share in (0.1, 0.5, 0.9):  # three moments of the run; each re-run starts where the last stopped
        process = subprocess.Popen(command + ["--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, start_new_session=True)  # its own group, as at a terminal
        deadline = time.monotonic() + 300
        while _recorded(book) < max(previous + 1, int(share * count)) and time.monotonic() < deadline:
            if process.poll() is not None:
                break
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group
        stdout, stderr = process.communicate(timeout=60)
        assert "Traceback" not in stderr, stderr
        if process.returncode == 0:  # it had already finished: nothing was interrupted
            break
        assert process.returncode == 130, stderr
        assert "interrupted;" in stderr and "run the same command again" in stderr
        stored = _stored_results(book)
        assert len(stored) < count
        for student, (status, result) in stored.items():  # nothing wrong was stored
            want_status, want_score, want_findings = expected[student]
            assert (status, result["score"], result["findings"]) == (want_status, want_score, want_findings), student
        previous = len(stored)
    resumed = subprocess.run(command + ["--out", str(out)], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert findings_of(out / "results.json") == expected


def test_ctrl_c_at_three_moments_then_the_same_command_equals_an_uninterrupted_run(tmp_path):
    # 64 notebooks (two passes over the example class, every kind of outcome): each run takes
    # a few seconds on 2 shared cores, enough for SIGINT to land at 10%, 50% and 90%. The
    # issue's 150-notebook version is the slow test below.
    _interrupted_then_resumed_equals_straight(tmp_path, 64)


@pytest.mark.slow
def test_ctrl_c_at_three_moments_of_a_150_notebook_run(tmp_path):
    _interrupted_then_resumed_equals_straight(tmp_path, 150)
