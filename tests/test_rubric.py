"""The rubric is validated before grading; each error names the key and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

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
    assert "unknown key `gpu` in limits" in problem(path)


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


def edited(tmp_path, old: str, new: str) -> str:
    """The shipped rubric's text with one edit, as an instructor makes it (comments, anchors kept)."""
    text = DEFAULT_RUBRIC.read_text()
    assert old in text
    path = tmp_path / "edited.yaml"
    path.write_text(text.replace(old, new, 1))
    return str(path)


def test_a_misspelled_key_is_named_with_a_suggestion_not_reported_as_missing(tmp_path):
    path = edited(tmp_path, 'title: "layer {layer}: divide by keep_prob"\n    points: 2',
                  'title: "layer {layer}: divide by keep_prob"\n    pionts: 2')
    message = problem(path)
    assert "unknown key `pionts` in steps.forward.layer{layer}.scale; did you mean `points`?" in message
    assert "Field required" not in message and "more problems" not in message


def test_an_unknown_key_with_nothing_close_lists_the_allowed_keys(tmp_path):
    path = edited(tmp_path, "  cpu_seconds: 10\n", "  cpu_seconds: 10\n  zzz: 1\n")
    message = problem(path)
    assert "unknown key `zzz` in limits; allowed: cpu_seconds, wall_seconds, memory_mb" in message


def test_a_misspelled_key_in_a_probe_is_named(tmp_path):
    path = edited(tmp_path, "{id: wide-0.7, seed: 1,", "{id: wide-0.7, sed: 1,")
    assert "unknown key `sed` in probes.0; did you mean `seed`?" in problem(path)


def test_a_duplicate_key_is_refused_with_both_lines(tmp_path):
    path = edited(tmp_path, "  cpu_seconds: 10\n", "  cpu_seconds: 10\n  cpu_seconds: 600\n")
    message = problem(path)
    assert "key `cpu_seconds` is given twice in the same mapping (first on line" in message
    line = DEFAULT_RUBRIC.read_text().splitlines().index("  cpu_seconds: 10") + 2
    assert f"line {line}:" in message


def test_a_duplicate_step_is_refused(tmp_path):
    text = DEFAULT_RUBRIC.read_text()
    block = text[text.index("  forward.output:"):text.index("  forward.cache:")]
    path = tmp_path / "twice.yaml"
    path.write_text(text.replace(block, block + block.replace("points: 1", "points: 5"), 1))
    assert "key `forward.output` is given twice" in problem(str(path))


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))
def test_any_unknown_key_is_named_as_unknown(tmp_path_factory, key):
    fields = {"cpu_seconds", "wall_seconds", "memory_mb", "output_kb", "result_mb"}
    if key in fields:
        return
    folder = tmp_path_factory.mktemp("r")
    message = problem(edited(folder, "  cpu_seconds: 10\n", f"  cpu_seconds: 10\n  {key}: 1\n"))
    assert f"unknown key `{key}` in limits" in message


def test_grade_rubric_shows_copies_and_checks(tmp_path):
    shown = grade_cli("rubric", "--show")
    assert shown.returncode == 0 and shown.stdout == DEFAULT_RUBRIC.read_text()
    copy = tmp_path / "my.yaml"
    copied = grade_cli("rubric", "--copy", copy)
    assert copied.returncode == 0 and copy.read_text() == DEFAULT_RUBRIC.read_text()
    again = grade_cli("rubric", "--copy", copy)
    assert again.returncode == 2 and "exists; not overwriting" in again.stderr
    checked = grade_cli("rubric", "--check", copy)
    assert checked.returncode == 0 and "valid; dropout-c2w1, 18 steps, 19 points" in checked.stdout
    copy.write_text(copy.read_text().replace("    points: 2", "    pionts: 2", 1))
    bad = grade_cli("rubric", "--check", copy)
    assert bad.returncode == 2 and "did you mean `points`?" in bad.stderr
    assert bad.stderr.count("\n") == 1


def grade_cli(*args):
    import os
    import subprocess
    import sys
    from pathlib import Path

    return subprocess.run([str(Path(sys.executable).with_name("grade")), *map(str, args)],
                          capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"}, timeout=120)


def test_rubric_show_prints_either_shipped_exercise_and_check_takes_the_course(tmp_path):
    import subprocess
    import sys

    grade = str(Path(sys.executable).with_name("grade"))
    shown = subprocess.run([grade, "rubric", "--show", "--exercise", "l2"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "assignment: l2" in shown.stdout
    course = Path(__file__).resolve().parent.parent / "rubrics" / "regularization.yaml"
    checked = subprocess.run([grade, "rubric", "--check", str(course)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and "28 points" in checked.stdout and "2 parts" in checked.stdout
