"""A hostile class: every notebook tries something a student's code must not do, in one batch
with well-behaved notebooks between them. Each case asserts its verdict and that nothing
escaped: no leftover process, the listener saw nothing, canary files untouched, and the good
notebooks in the batch got exactly the findings they get alone. Run in every isolation mode
this machine offers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from conftest import load_script, write_notebook
from dropout_grader.pipeline import Grader
from dropout_grader.results import Submission
from dropout_grader.rubric import DEFAULT_RUBRIC, load_rubric
from dropout_grader.sandbox.runner import bubblewrap_works

hostile = load_script("benchmarks", "hostile_cases")
IMPORTS, cases, notebook_source = hostile.IMPORTS, hostile.cases, hostile.notebook_source

MODES = ["process"] + (["bwrap"] if bubblewrap_works() else [])


@pytest.fixture(scope="module", params=MODES)
def batch(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"hostile-{request.param}")
    data = yaml.safe_load(DEFAULT_RUBRIC.read_text())
    data["limits"] = {"cpu_seconds": 2, "wall_seconds": 4, "memory_mb": 512, "output_kb": 16, "result_mb": 8}
    rubric_path = folder / "strict.yaml"
    rubric_path.write_text(yaml.safe_dump(data))
    canary = folder / "canary.txt"
    canary.write_text("untouched")
    good = write_notebook(folder / "good.ipynb", IMPORTS, hostile.GOOD)
    tcp, udp = hostile.listeners()
    ctx = {"other": good, "canary": canary, "tcp": tcp.getsockname()[1], "udp": udp.getsockname()[1]}
    table = cases(ctx)
    submissions = []
    for name, case in table.items():
        path = write_notebook(folder / f"{name}.ipynb", IMPORTS, notebook_source(case))
        submissions += [Submission(name, str(path)), Submission(f"good-after-{name}", str(good))]
    with Grader(load_rubric(rubric_path), isolation=request.param) as grader:
        alone = grader.grade(Submission("good", str(good)))
        results = {r.student: r for r in grader.grade_all(submissions, jobs=2)}
        sandbox_root = grader.sandbox._root
        leftovers = _processes_under(sandbox_root)
        protections = {p["name"]: p["active"] for p in grader.protections}
    contacted = hostile.heard(tcp, udp)
    tcp.close()
    udp.close()
    yield dict(table=table, results=results, alone=alone, canary=canary, leftovers=leftovers,
               contacted=contacted, protections=protections)


def _processes_under(root: str) -> list[int]:
    """Processes still running in (or below) the sandbox's folder: a child's descendants."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd").startswith(root + "/job-"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


NAMES = list(cases({"other": Path("/x"), "canary": Path("/x"), "tcp": 1, "udp": 1}))


@pytest.mark.parametrize("name", NAMES)
def test_hostile_case(batch, name):
    if name == "kill_everyone" and not batch["protections"].get("seccomp"):
        pytest.skip("without seccomp this case could kill the machine's processes")
    case = batch["table"][name]
    result = batch["results"][name]
    outcome = next(f for f in result.findings if f.step == "forward.function")
    assert outcome.diagnosis in case["outcome"], (outcome.diagnosis, outcome.message)
    assert "ESCAPED" not in result.output, result.output[:500]
    if case.get("output_wrong"):
        assert next(f for f in result.findings if f.step == "forward.output").verdict != "ok" or \
            next(f for f in result.findings if f.step == "forward.cache").verdict != "ok"
    # the well-behaved notebook graded right after it is graded exactly as when alone
    assert batch["results"][f"good-after-{name}"].findings == batch["alone"].findings


def test_nothing_escaped(batch):
    assert batch["leftovers"] == []
    assert not batch["contacted"]
    assert batch["canary"].read_text() == "untouched"
    assert not Path("/tmp/reduced").exists()


def test_output_is_capped(batch):
    assert len(batch["results"]["print_a_gigabyte"].output) < 20_000
