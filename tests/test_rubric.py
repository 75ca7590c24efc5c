"""The rubric is validated before grading; each error names the key and what is wrong."""

from __future__ import annotations

import pytest
import yaml

from dropout_grader.rubric import DEFAULT_RUBRIC, RubricError, load_rubric


def test_the_shipped_rubric_loads_with_every_step(rubric):
    assert rubric.id == "dropout-c2w1"
    assert set(rubric.steps) == set(rubric.assignment.steps)
    assert rubric.steps["forward.layer2.scale"].points == 2
    assert len(rubric.sha256) == 64


def variant(tmp_path, change) -> str:
    data = yaml.safe_load(DEFAULT_RUBRIC.read_text())
    change(data)
    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def problem(path) -> str:
    with pytest.raises(RubricError) as caught:
        load_rubric(path)
    return str(caught.value)


def test_wrong_type_names_the_key(tmp_path):
    path = variant(tmp_path, lambda d: d["steps"]["forward.layer{layer}.scale"].update(points="two"))
    assert "steps.forward.layer{layer}.scale.points" in problem(path)


def test_missing_key(tmp_path):
    path = variant(tmp_path, lambda d: d.pop("tolerance"))
    assert "tolerance: Field required" in problem(path)


def test_unknown_key(tmp_path):
    path = variant(tmp_path, lambda d: d["limits"].update(gpu=1))
    assert "limits.gpu" in problem(path)


def test_only_half_keep_prob_is_refused(tmp_path):
    def halves(data):
        for probe in data["probes"]:
            probe["keep_prob"] = 0.5
    assert "keep_prob 0.5" in problem(variant(tmp_path, halves))


def test_a_single_keep_prob_is_refused(tmp_path):
    def same(data):
        for probe in data["probes"]:
            probe["keep_prob"] = 0.8
    assert "at least two different keep_prob" in problem(variant(tmp_path, same))


def test_unknown_step(tmp_path):
    path = variant(tmp_path, lambda d: d["steps"].update({"forward.layer3.mask": d["steps"]["forward.output"]}))
    assert "steps.forward.layer3.mask: unknown step" in problem(path)


def test_missing_step(tmp_path):
    path = variant(tmp_path, lambda d: d["steps"].pop("backward.gradients"))
    assert "step 'backward.gradients' is missing" in problem(path)


def test_missing_message_for_a_diagnosis(tmp_path):
    path = variant(tmp_path, lambda d: d["steps"]["forward.layer{layer}.scale"]["messages"].pop("squared"))
    assert "forward.layer{layer}.scale.messages: no message for diagnosis 'squared'" in problem(path)


def test_unknown_placeholder(tmp_path):
    path = variant(tmp_path, lambda d: d["steps"]["forward.output"].update(ok="fine {colour}"))
    assert "unknown placeholder {colour}" in problem(path)


def test_invalid_yaml_gives_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("id: x\nsteps: [unclosed\n")
    assert "not valid YAML at line" in problem(path)


def test_missing_file(tmp_path):
    assert "cannot read it" in problem(tmp_path / "none.yaml")


def test_unknown_assignment(tmp_path):
    path = variant(tmp_path, lambda d: d.update(assignment="convolution"))
    assert "no assignment 'convolution' is installed (registered: dropout, l2)" in problem(path)
