"""The Gradescope bundle, end to end: the zip unpacked into a simulated /autograder, setup.sh
installing the wheel it carries into a fresh virtual environment, run_autograder grading a
correct, a wrong, a missing and a two-notebook submission into results/results.json."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import jsonschema
import pytest

from conftest import ROOT, SUBMISSIONS

GRADE = str(Path(sys.executable).with_name("grade"))
SCHEMA = json.loads((ROOT / "grader" / "report" / "schemas" / "gradescope.schema.json").read_text())


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "autograder.zip"
    completed = subprocess.run([GRADE, "gradescope-bundle", str(out)], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "set the assignment's autograder points to 19" in completed.stdout
    return out


@pytest.fixture(scope="module")
def installed(bundle, tmp_path_factory) -> dict[str, str]:
    """setup.sh run into a fresh venv. Only the wheel is installed from the zip: the
    dependencies come from this test environment (a .pth line), so the test needs no network."""
    base = tmp_path_factory.mktemp("image")
    source = base / "source"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(source)
    for name in ("setup.sh", "run_autograder"):  # zipfile does not restore modes; Gradescope does
        (source / name).chmod(0o755)
    venv = base / "grader-venv"
    # From the base interpreter, as Gradescope's python3: a venv made from this venv's python
    # reaches it through a symlink chain that bubblewrap's view of the file system lacks.
    subprocess.run([os.path.realpath(sys.executable), "-m", "venv", str(venv)], check=True, timeout=300)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    shared = Path(sys.prefix) / "share" / "jupyter"  # data files (nbconvert's templates) too
    if shared.is_dir():
        (venv / "share").mkdir(exist_ok=True)
        (venv / "share" / "jupyter").symlink_to(shared)
    env = {**os.environ, "AUTOGRADER_ROOT": str(base), "GRADER_VENV": str(venv), "GRADER_SKIP_APT": "1",
           "GRADER_PIP_OPTIONS": "--no-deps --no-index --force-reinstall", "NO_COLOR": "1"}
    env.pop("GITHUB_ACTIONS", None)
    completed = subprocess.run(["bash", str(source / "setup.sh")], capture_output=True, text=True, env=env, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "grade 0.1.0" in completed.stdout
    # The grader that runs is the wheel's, not this checkout's.
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import dropout_grader; print(dropout_grader.__file__)"],
                           capture_output=True, text=True, env=env, check=True).stdout
    assert where.startswith(str(site)), where
    return {"base": str(base), "env": env}


def run_autograder(installed, tmp_path, files: dict[str, Path | bytes]) -> tuple[dict, subprocess.CompletedProcess]:
    """A fresh /autograder for one submission, as Gradescope lays it out."""
    root = tmp_path / "autograder"
    shutil.copytree(Path(installed["base"]) / "source", root / "source", symlinks=True)
    (root / "submission").mkdir()
    for name, content in files.items():
        target = root / "submission" / name
        target.write_bytes(content if isinstance(content, bytes) else content.read_bytes())
    (root / "submission_metadata.json").write_text(json.dumps(
        {"id": 99, "users": [{"email": "ada@example.edu", "id": 7, "name": "Ada"}]}))
    env = {**installed["env"], "AUTOGRADER_ROOT": str(root)}
    # Gradescope copies run_autograder to /autograder and runs it from there.
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    completed = subprocess.run(["bash", str(root / "run_autograder")], capture_output=True, text=True,
                               env=env, cwd=root, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(results, SCHEMA)
    return results, completed


def test_the_zip_holds_what_gradescope_runs(bundle):
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        modes = {i.filename: i.external_attr >> 16 for i in archive.infolist()}
        wheel = [n for n in names if n.endswith(".whl")]
        assert sorted(names) == sorted(["setup.sh", "run_autograder", "rubric.yaml", *wheel]) and len(wheel) == 1
        assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
        with zipfile.ZipFile(archive.open(wheel[0])) as inner:
            inside = inner.namelist()
            metadata = inner.read(next(n for n in inside if n.endswith(".dist-info/METADATA"))).decode()
    assert "dropout_grader/cli.py" in inside and "dropout_grader/rubrics/dropout.yaml" in inside
    assert "dropout_grader/reference/standins/reg_utils.py" in inside
    assert "dropout_grader/report/templates/feedback.html.j2" in inside
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in inside)
    assert "Requires-Python: >=3.10" in metadata  # Gradescope's Ubuntu 22.04 image has 3.10


def test_the_bundle_is_reproducible(bundle, tmp_path):
    again = tmp_path / "again.zip"
    subprocess.run([GRADE, "gradescope-bundle", str(again)], check=True, capture_output=True, timeout=120)
    assert again.read_bytes() == bundle.read_bytes()


def test_a_custom_rubric_goes_in_the_bundle_and_a_broken_one_is_refused(tmp_path):
    rubric = tmp_path / "course.yaml"
    rubric.write_text((ROOT / "rubrics" / "dropout.yaml").read_text().replace("id: dropout-c2w1", "id: my-course"))
    out = tmp_path / "b.zip"
    assert subprocess.run([GRADE, "gradescope-bundle", str(out), "--rubric", str(rubric)], timeout=120).returncode == 0
    assert b"id: my-course" in zipfile.ZipFile(out).read("rubric.yaml")
    rubric.write_text("id: [")
    refused = subprocess.run([GRADE, "gradescope-bundle", str(tmp_path / "c.zip"), "--rubric", str(rubric)],
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "not valid YAML" in refused.stderr and not (tmp_path / "c.zip").exists()


def test_a_correct_notebook_gets_full_marks(installed, tmp_path):
    results, completed = run_autograder(installed, tmp_path, {"Regularization.ipynb": SUBMISSIONS / "correct_reference.ipynb"})
    assert results["score"] == 19
    assert len(results["tests"]) == 18 and all(t["status"] == "passed" for t in results["tests"])
    assert "ada@example.edu  19/19" in completed.stdout  # the id from submission_metadata.json


def test_a_wrong_notebook_names_the_wrong_step(installed, tmp_path):
    results, _ = run_autograder(installed, tmp_path, {"Regularization.ipynb": SUBMISSIONS / "forward_layer1_scale_missing.ipynb"})
    assert results["score"] == 17
    failed = [t for t in results["tests"] if t["status"] == "failed"]
    assert [t["name"].split(":")[0] for t in failed] == ["forward.layer1.scale"]
    assert "1/keep_prob factor is missing" in failed[0]["output"]


def test_no_notebook_tells_the_student_to_upload_one(installed, tmp_path):
    results, _ = run_autograder(installed, tmp_path, {"Regularization.py": b"# %%\nimport numpy as np\n"})
    assert results["score"] == 0 and results["tests"] == []
    assert "no .ipynb files found" in results["output"] and "Regularization.py" in results["output"]
    assert "Upload exactly one Jupyter notebook (.ipynb)" in results["output"]
    assert "instructor has been told" not in results["output"]


def test_two_notebooks_the_implemented_one_is_graded_and_the_student_is_told(installed, tmp_path):
    template = json.loads((SUBMISSIONS / "correct_reference.ipynb").read_text())
    for cell in template["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if source.lstrip().startswith("def ") and "_with_dropout" in source:
            cell["source"] = source.split("\n", 1)[0] + "\n    # YOUR CODE STARTS HERE\n    A3 = None\n    # YOUR CODE ENDS HERE\n    return A3\n"
    results, _ = run_autograder(installed, tmp_path, {
        "Regularization.ipynb": SUBMISSIONS / "correct_reference.ipynb",
        "Regularization_template.ipynb": json.dumps(template).encode()})
    assert results["score"] == 19
    assert results["output"].startswith("ada@example.edu has 2 notebooks; graded ")
    assert "Regularization.ipynb and not " in results["output"] and "Regularization_template.ipynb" in results["output"]


def test_a_grader_that_cannot_start_still_leaves_a_readable_result(installed, tmp_path):
    env = {**installed["env"], "GRADER_VENV": str(tmp_path / "no-such-venv")}
    results, _ = run_autograder({**installed, "env": env}, tmp_path, {"Regularization.ipynb": SUBMISSIONS / "correct_reference.ipynb"})
    assert results["score"] == 0
    assert "problem with the autograder, not with your work" in results["output"]
