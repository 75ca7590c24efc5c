"""Scale-out on a Dask cluster: a LocalCluster whose workers each run their own sandbox."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SUBMISSIONS, expected_examples

distributed = pytest.importorskip("distributed")
GRADE = str(Path(sys.executable).with_name("grade"))
# --scheduler grades one assignment at a time: the dropout exercise here.
DROPOUT = str(Path(__file__).resolve().parent.parent / "rubrics" / "dropout.yaml")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=40) as local:
        yield local


def test_grading_on_a_cluster_equals_grading_here(cluster, tmp_path):
    here = subprocess.run([GRADE, str(SUBMISSIONS), "--rubric", DROPOUT, "--out", str(tmp_path / "here"), "-q"],
                          capture_output=True, text=True, timeout=300)
    there = subprocess.run([GRADE, str(SUBMISSIONS), "--rubric", DROPOUT, "--out", str(tmp_path / "there"), "-q",
                            "--scheduler", cluster.scheduler_address], capture_output=True, text=True, timeout=300)
    assert here.returncode == 0 and there.returncode == 0, there.stderr[-2000:]

    def findings(folder):
        data = json.loads((folder / "results.json").read_text())
        return {s["student"]: (s["path"], s["score"], s["findings"]) for s in data["submissions"]}

    assert findings(tmp_path / "there") == findings(tmp_path / "here")
    assert set(findings(tmp_path / "there")) == set(expected_examples())
    # the results came back to this machine's gradebook: a second run reuses them all
    again = subprocess.run([GRADE, str(SUBMISSIONS), "--rubric", DROPOUT, "--out", str(tmp_path / "there"), "-q",
                            "--scheduler", cluster.scheduler_address], capture_output=True, text=True, timeout=300)
    count = len(expected_examples())
    assert f"{count} of {count} unchanged" in again.stdout


def test_an_unreachable_scheduler_is_a_usage_error(tmp_path):
    completed = subprocess.run([GRADE, str(SUBMISSIONS / "correct_reference.ipynb"), "--rubric", DROPOUT, "--out", str(tmp_path),
                                "--scheduler", "tcp://127.0.0.1:1"], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2 and "cannot reach the Dask scheduler" in completed.stderr
    assert "Traceback" not in completed.stderr


WORKER_WITHOUT_THE_GRADER = """
import sys
sys.modules["dropout_grader"] = None  # as on a machine where the package was never installed
from distributed.cli.dask_worker import main
sys.argv = ["dask-worker", sys.argv[1], "--nthreads", "1", "--no-dashboard", "--no-nanny"]  # one process: ours
main()
"""


def test_workers_without_the_grader_are_named_in_one_line(tmp_path):
    import time

    with distributed.LocalCluster(n_workers=0, dashboard_address=None, silence_logs=40) as empty:
        worker = subprocess.Popen([sys.executable, "-c", WORKER_WITHOUT_THE_GRADER, empty.scheduler_address],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with distributed.Client(empty.scheduler_address) as client:
                client.wait_for_workers(1, timeout=60)
            completed = subprocess.run([GRADE, str(SUBMISSIONS / "correct_reference.ipynb"), "--rubric", DROPOUT, "--out", str(tmp_path),
                                        "--scheduler", empty.scheduler_address],
                                       capture_output=True, text=True, timeout=120)
        finally:
            worker.terminate()
            worker.wait(30)
    assert completed.returncode == 2, completed.stderr
    assert "1 Dask worker(s) cannot import the grader" in completed.stderr
    assert "pip install 'dropout-grader[dask]'" in completed.stderr
    assert completed.stderr.count("\n") == 1 and "Traceback" not in completed.stderr


def test_only_a_bounded_number_of_notebooks_is_in_flight(cluster):
    """The class is sent as results come back, never all at once (each task carries its
    notebook's bytes: a whole class would be all in memory here and on the scheduler)."""
    from dropout_grader.distributed import DaskGrading
    from dropout_grader.results import Submission
    from dropout_grader.rubric import load_rubric

    grading = DaskGrading(cluster.scheduler_address, load_rubric(DROPOUT))
    try:
        assert grading.in_flight() >= 2  # every worker thread kept busy
        grading.in_flight = lambda jobs=None: 2
        outstanding, seen = [0], []
        submit = grading.client.submit

        def counted(*args, **kwargs):
            outstanding[0] += 1
            seen.append(outstanding[0])
            return submit(*args, **kwargs)

        grading.client.submit = counted
        submissions = [Submission(p.stem, str(p)) for p in sorted(SUBMISSIONS.glob("correct_*.ipynb"))][:5]
        indices = []
        for index, result in grading.grade_as_completed(submissions):
            outstanding[0] -= 1
            indices.append(index)
            assert result.score == result.max_score, result.student
    finally:
        grading.close()
    assert sorted(indices) == list(range(len(submissions)))
    assert len(seen) == len(submissions) and max(seen) <= 2
