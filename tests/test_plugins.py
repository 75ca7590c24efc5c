"""An assignment is a plugin: a third one is a package plus an entry point, with no edit to
the grader's core. Shown with a tiny assignment made here, in a folder of its own with its
distribution metadata, found through the entry-point group like the built-in ones."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from dropout_grader.assignment import AssignmentError, available, load_assignment
from dropout_grader.course import load_course
from dropout_grader.results import Submission
from dropout_grader.rubric import RUBRICS, RubricError, load_rubric

ROOT = Path(__file__).resolve().parent.parent
GRADE = str(Path(sys.executable).with_name("grade"))

# A course's own assignment: `double(x)` must return 2 * x. Its module lives outside the
# project; the grader knows it only by its entry point.
PLUGIN = '''
from pathlib import Path

import numpy as np
from pydantic import Field

from dropout_grader.assignment import ProbeParameters
from dropout_grader.observations import OK, WRONG, Observation


class DoubleProbe(ProbeParameters):
    size: int = Field(ge=1, le=100)


class Doubling:
    name = "doubling"
    namespace = "doubling"
    roles = ("f",)
    steps = {"f.function": ("not_found", "not_implemented", "signature", "error", "timeout", "memory",
                            "bad_return", "numpy_compat", "defined_twice"),
             "f.value": ("halved", "wrong_value")}
    notes = frozenset({"numpy_compat", "defined_twice", "not_assessed"})
    placeholders = frozenset({"function", "arguments", "error", "limit", "detail", "expected", "count",
                              "cells", "probe", "size"})
    step_groups = {}
    arguments = {"f": "x"}
    returns = {"f": "an array"}
    standins = Path(__file__).resolve().parent / "standins"
    probe_model = DoubleProbe
    stream_check_roles = ()

    def check_probes(self, probes):
        if len({p.size for p in probes}) < 1:
            raise ValueError("probes: none")

    def make_probe(self, probe):
        return np.random.default_rng(probe.seed).uniform(1, 2, size=probe.size)

    def call_arguments(self, role, inputs):
        return [inputs]

    def probe_facts(self, probe):
        return {"size": probe.size}

    def student_names(self, role, parameters):
        return {}

    def check_return(self, role, returned):
        return None if returned.get("type") == "array" else f"a {returned.get('type')}"

    def diagnose(self, role, inputs, call, tolerance):
        value = call.values.get("")
        if value is not None and value.shape == inputs.shape and np.allclose(value, 2 * inputs):
            return [Observation("f.value", OK)]
        if value is not None and value.shape == inputs.shape and np.allclose(value, inputs / 2):
            return [Observation("f.value", WRONG, "halved", value=value)]
        return [Observation("f.value", WRONG, "wrong_value", value=value)]

    def source_files(self):
        return [Path(__file__)]


ASSIGNMENT = Doubling()
'''

RUBRIC = '''
id: doubling-test
title: Doubling (a test-only assignment)
assignment: doubling
functions:
  f: {name: double, arguments: 1}
probes:
  - {id: small, seed: 1, size: 5}
  - {id: large, seed: 2, size: 50}
tolerance: {rtol: 1.0e-6, atol: 1.0e-9}
limits: {cpu_seconds: 5, wall_seconds: 10, memory_mb: 1024, output_kb: 16, result_mb: 8}
steps:
  f.function:
    title: double can be run
    points: 0
    ok: "It ran."
    messages:
      not_found: "No {function}."
      not_implemented: "{function}: {detail}"
      signature: "{function}({arguments}): {detail}"
      error: "{function} {error}"
      timeout: "{function}: {limit}"
      memory: "{function}: {limit}"
      bad_return: "{function} returned {detail}, not {expected}"
      numpy_compat: "{function}: {detail}"
      defined_twice: "{function}: {count} times, cells {cells}"
  f.value:
    title: twice the input
    points: 3
    ok: "double(x) is 2 * x."
    messages:
      halved: "double(x) divides by 2 instead of multiplying (size {size})."
      wrong_value: "double(x) is not 2 * x."
      not_assessed: "Not assessed: {detail}."
'''


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory):
    """A folder on sys.path holding the plugin's module and its distribution metadata (what
    `pip install` of the course's own package would leave in site-packages)."""
    folder = tmp_path_factory.mktemp("site")
    (folder / "doubling_plugin.py").write_text(PLUGIN)
    (folder / "standins").mkdir()
    info = folder / "doubling_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: doubling-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[dropout_grader.assignments]\ndoubling = doubling_plugin:ASSIGNMENT\n")
    (folder / "rubric.yaml").write_text(RUBRIC)
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))


def test_the_built_in_assignments_register_as_plugins_do():
    assert {"dropout", "l2"} <= set(available())
    assert load_assignment("l2").roles == ("cost", "backward")


def test_a_third_assignment_is_a_package_and_an_entry_point(plugin_path, tmp_path):
    assert "doubling" in available()
    rubric = load_rubric(plugin_path / "rubric.yaml")
    assert rubric.roles == ["f"]
    from dropout_grader.pipeline import Grader

    cells = {"good": "def double(x):\n    return 2 * x\n", "bad": "def double(x):\n    y = x / 2\n    return y\n"}
    submissions = []
    for name, code in cells.items():
        path = tmp_path / f"{name}.ipynb"
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)]), path)
        submissions.append(Submission(name, str(path)))
    with Grader(rubric, isolation="process") as grader:
        good, bad = grader.grade_all(submissions)
    assert (good.score, good.max_score) == (3, 3)
    assert [(f.step, f.diagnosis, f.line) for f in bad.wrong] == [("doubling.f.value", "halved", 2)]
    assert "size 5" in bad.wrong[0].message


def test_a_broken_plugin_is_named_in_one_line(plugin_path, tmp_path, monkeypatch):
    folder = tmp_path / "broken"
    info = folder / "broken_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[dropout_grader.assignments]\nbroken = broken_plugin:ASSIGNMENT\n"
                                           "empty = json:JSONDecoder\n")
    (folder / "broken_plugin.py").write_text("raise ImportError('no numpy here')\n")
    monkeypatch.syspath_prepend(str(folder))
    with pytest.raises(AssignmentError, match="cannot be imported: no numpy here"):
        load_assignment("broken")
    with pytest.raises(AssignmentError, match="does not implement the contract: it lacks name"):
        load_assignment("empty")
    rubric = tmp_path / "r.yaml"
    rubric.write_text(RUBRIC.replace("assignment: doubling", "assignment: broken"))
    with pytest.raises(RubricError, match=r"assignment: assignment 'broken'"):
        load_rubric(rubric)


def test_probe_parameters_are_validated_by_the_assignment(tmp_path):
    text = (RUBRICS / "l2.yaml").read_text().replace("lambd: 0.7}", "lambd: -1}")
    path = tmp_path / "l2.yaml"
    path.write_text(text)
    with pytest.raises(RubricError, match=r"probes\.1\.lambd: Input should be greater than or equal to 0"):
        load_rubric(path)
    path.write_text((RUBRICS / "l2.yaml").read_text().replace("lambd: 0.0}", "lambd: 0.3}"))
    with pytest.raises(RubricError, match="include a probe with lambd: 0"):
        load_rubric(path)
    path.write_text((RUBRICS / "dropout.yaml").read_text().replace("keep_prob: 0.86}", "keep_prob: 0.86, lambd: 1}"))
    with pytest.raises(RubricError, match=r"unknown key `lambd` in probes.1; allowed: id, seed, layers, examples, keep_prob"):
        load_rubric(path)


def test_adding_an_assignment_does_not_change_another_s_build_id(plugin_path):
    from dropout_grader.build import build_id

    dropout, l2 = load_assignment("dropout"), load_assignment("l2")
    assert build_id(dropout) != build_id(l2)
    # The doubling plugin is installed now; dropout's build is what it was, by construction:
    assert all("l2" not in p.name and "doubling" not in p.name for p in dropout.source_files())


def test_the_course_rubric_grades_both_exercises_of_a_notebook(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from l2_mutants import VARIANTS
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    correct_dropout = nbformat.read(ROOT / "submissions" / "correct_reference.ipynb", as_version=4)
    variant = next(v for v in VARIANTS if v.name == "cost_missing_half")
    correct_dropout.cells.append(nbformat.v4.new_code_cell(variant.source))
    path = tmp_path / "whole.ipynb"
    nbformat.write(correct_dropout, path)
    course = load_course(RUBRICS / "regularization.yaml")
    assert [p.assignment.name for p in course.parts] == ["dropout", "l2"]
    out = tmp_path / "out"
    completed = subprocess.run([GRADE, str(path), "--rubric", str(RUBRICS / "regularization.yaml"), "--out", str(out),
                                "-q", "--no-notebook-html"], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    results = json.loads((out / "results.json").read_text())
    (only,) = results["submissions"]
    wrong = {(f["step"], f["diagnosis"]) for f in only["findings"] if f["verdict"] == "wrong"}
    # Dropout all right; the L2 cost's one mistake; the L2 backward function is not in this notebook.
    assert ("l2.cost.penalty.scale", "missing_half") in wrong
    assert not any(step.startswith(("forward.", "backward.")) for step, _ in wrong)
    assert only["max_score"] == 19 + 9
    assert results["rubric"]["id"] == "regularization-c2w1"
    import jsonschema

    schema = json.loads((ROOT / "grader" / "report" / "schemas" / "results.schema.json").read_text())
    jsonschema.validate(results, schema)
