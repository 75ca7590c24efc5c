"""A hostile class: every notebook tries something a student's code must not do, in one batch
with well-behaved notebooks between them. Each case asserts its verdict and that its attack
failed: nothing printed ESCAPED (each case prints it only if its attempt worked), no answer-key
text in the output, no leftover process, no host listener contacted, no SysV IPC object left,
canary files untouched, the child's folder removed, and the good notebooks in the batch got
exactly the findings they get alone. Run in every isolation mode this machine offers.

The slow test at the end does the same against a wheel installed in a fresh venv and a
`pip install --user`, the installs a course uses (the editable checkout is the rest)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, load_script, write_notebook
from dropout_grader.pipeline import Grader
from dropout_grader.results import Submission
from dropout_grader.rubric import DEFAULT_RUBRIC, load_rubric
from dropout_grader.sandbox.runner import bubblewrap_works

hostile = load_script("benchmarks", "hostile_cases")
IMPORTS, cases, notebook_source = hostile.IMPORTS, hostile.cases, hostile.notebook_source

MODES = ["process"] + (["bwrap"] if bubblewrap_works() else [])
LIMITS = {"cpu_seconds": 2, "wall_seconds": 4, "memory_mb": 512, "output_kb": 16, "result_mb": 8}


@pytest.fixture(scope="module", params=MODES)
def batch(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"hostile-{request.param}")
    data = yaml.safe_load(DEFAULT_RUBRIC.read_text())
    data["limits"] = LIMITS
    rubric_path = folder / "strict.yaml"
    rubric_path.write_text(yaml.safe_dump(data))
    canary = folder / "canary.txt"
    canary.write_text("untouched")
    good = write_notebook(folder / "good.ipynb", IMPORTS, hostile.GOOD)
    services = hostile.listeners(folder)
    table = cases(hostile.context(folder, good, canary, services))
    submissions = []
    for name, case in table.items():
        path = write_notebook(folder / f"{name}.ipynb", IMPORTS, notebook_source(case))
        submissions += [Submission(name, str(path)), Submission(f"good-after-{name}", str(good))]
    with Grader(load_rubric(rubric_path), isolation=request.param) as grader:
        alone = grader.grade(Submission("good", str(good)))
        results = {r.student: r for r in grader.grade_all(submissions, jobs=2)}
        sandbox_root = grader.sandbox._root
        leftovers = _processes_under(sandbox_root)
        left_on_disk = os.listdir(sandbox_root)
        protections = {p["name"]: p["active"] for p in grader.protections}
    contacted = services.heard()
    services.close()
    ipc = hostile.ipc_objects()
    yield dict(table=table, results=results, alone=alone, canary=canary, leftovers=leftovers,
               contacted=contacted, protections=protections, ipc=ipc, left_on_disk=left_on_disk,
               key=hostile.answer_key_text())


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


NAMES = list(cases(hostile.placeholder_context()))


@pytest.mark.parametrize("name", NAMES)
def test_hostile_case(batch, name):
    if name == "kill_everyone" and not batch["protections"].get("seccomp"):
        pytest.skip("without seccomp this case could kill the machine's processes")
    case = batch["table"][name]
    result = batch["results"][name]
    outcome = next(f for f in result.findings if f.step == "forward.function")
    assert outcome.diagnosis in case["outcome"], (outcome.diagnosis, outcome.message)
    assert "ESCAPED" not in result.output, result.output[:500]
    assert hostile.leaked(result.output, batch["key"]) == []
    if case.get("output_wrong"):
        assert next(f for f in result.findings if f.step == "forward.output").verdict != "ok" or \
            next(f for f in result.findings if f.step == "forward.cache").verdict != "ok"
    # the well-behaved notebook graded right after it is graded exactly as when alone
    assert batch["results"][f"good-after-{name}"].findings == batch["alone"].findings


def test_nothing_escaped(batch):
    assert batch["leftovers"] == []
    assert not batch["contacted"]
    assert batch["ipc"] == []
    assert batch["canary"].read_text() == "untouched"
    assert not Path("/tmp/reduced").exists()
    assert batch["left_on_disk"] == []  # every child's folder removed, 3000 nested ones included


def test_every_protection_is_active_here(batch):
    """On this kernel (Landlock, libseccomp present) nothing may silently be missing."""
    for name in ("capabilities", "landlock", "seccomp"):
        assert batch["protections"].get(name), name


def test_output_is_capped(batch):
    assert len(batch["results"]["print_a_gigabyte"].output) < 20_000


# --- installs a course uses -----------------------------------------------------------------
def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    import shutil

    out = tmp_path_factory.mktemp("wheel")
    source = out / "source"  # a copy, so the build leaves nothing in the checkout
    for name in ("grader", "reference", "rubrics"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)])
    assert built.returncode == 0, built.stderr[-2000:]
    return next(out.glob("dropout_grader-*.whl"))


def _containment(python: str, env: dict | None = None) -> str:
    """The containment benchmark, run by the installed interpreter from outside the checkout
    (less the behaviours that only wait for the wall clock: they do not depend on the install)."""
    ran = _run([python, str(ROOT / "benchmarks" / "containment.py"), "--mode", "process", "--quick"],
               cwd="/", env=env)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    return ran.stdout


@pytest.mark.slow
def test_hostile_cases_contained_in_a_wheel_in_a_fresh_venv(wheel, tmp_path):
    venv = tmp_path / "venv"
    assert _run([sys.executable, "-m", "venv", str(venv)]).returncode == 0
    python = str(venv / "bin" / "python")
    installed = _run([python, "-m", "pip", "install", "-q", str(wheel)])
    assert installed.returncode == 0, installed.stderr[-2000:]
    where = _run([python, "-c", "import dropout_grader; print(dropout_grader.__file__)"], cwd="/").stdout
    assert where.startswith(str(venv)), where  # the wheel, not this checkout
    report = _containment(python)
    assert "all contained" in report, report


@pytest.mark.slow
def test_hostile_cases_contained_in_a_user_install(wheel, tmp_path):
    base = getattr(sys, "_base_executable", sys.executable)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env.setdefault("PIP_CACHE_DIR", os.path.expanduser("~/.cache/pip"))  # the usual cache: faster
    env["HOME"] = str(tmp_path)  # ~/.local is this test's own
    installed = _run([base, "-m", "pip", "install", "-q", "--user", str(wheel)], env=env)
    if installed.returncode != 0 and "externally-managed" in installed.stderr:
        pytest.skip("this interpreter refuses --user installs (PEP 668)")
    assert installed.returncode == 0, installed.stderr[-2000:]
    where = _run([base, "-c", "import dropout_grader; print(dropout_grader.__file__)"], cwd="/", env=env).stdout
    assert where.startswith(str(tmp_path / ".local")), where
    report = _containment(base, env)
    assert "all contained" in report, report
