"""Finding notebooks and naming students."""

from __future__ import annotations

import json
import os
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SUBMISSIONS
from dropout_grader.discover import DiscoveryError, discover as _discover, gradescope_student, platform_student

GRADED = {"forward": "forward_propagation_with_dropout", "backward": "backward_propagation_with_dropout"}


def discover(paths, **kwargs):
    """No CI variables: the tests must name students the same on a laptop and in Actions."""
    return _discover(paths, environ=kwargs.pop("environ", {}), **kwargs).submissions


def touch(path, text="{}"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_folder_layouts_and_student_ids(tmp_path):
    touch(tmp_path / "ada.ipynb")
    touch(tmp_path / "bob" / "Regularization.ipynb")
    touch(tmp_path / "cyd" / "week1" / "anything.ipynb")
    touch(tmp_path / "bob" / ".ipynb_checkpoints" / "Regularization-checkpoint.ipynb")
    touch(tmp_path / ".hidden" / "x.ipynb")
    touch(tmp_path / "notes.txt")
    found = discover([tmp_path])
    assert [(s.student, os.path.relpath(s.path, tmp_path)) for s in found] == [
        ("ada", "ada.ipynb"),
        ("bob", "bob/Regularization.ipynb"),
        ("week1", os.path.join("cyd", "week1", "anything.ipynb")),
    ]


def test_the_student_is_the_deepest_folder_and_the_sections_are_kept(tmp_path):
    touch(tmp_path / "class" / "section2" / "alice" / "hw.ipynb")
    touch(tmp_path / "class" / "section2" / "dave" / "hw.ipynb")
    touch(tmp_path / "class" / "section1" / "bob" / "hw.ipynb")
    found = discover([tmp_path / "class"])
    assert [(s.student, s.section) for s in found] == [
        ("bob", "section1"), ("alice", "section2"), ("dave", "section2")]


def test_same_id_in_two_places_is_told_apart(tmp_path):
    touch(tmp_path / "a" / "ada" / "hw.ipynb")
    touch(tmp_path / "b" / "ada" / "hw.ipynb")
    touch(tmp_path / "other" / "ada.ipynb")
    assert [s.student for s in discover([tmp_path])] == ["ada", "ada#2", "other"]
    assert [s.student for s in discover([tmp_path / "other", tmp_path / "a"])] == ["ada", "ada#2"]


def test_the_notebook_that_implements_the_functions_is_graded_not_the_template(tmp_path):
    real = (SUBMISSIONS / "correct_reference.ipynb").read_text()
    student = tmp_path / "class" / "alice"
    # The real one sorts first and is older: neither order nor age may pick the template.
    touch(student / "a_Regularization.ipynb", real)
    os.utime(student / "a_Regularization.ipynb", (time.time() - 3600,) * 2)
    touch(student / "b_template.ipynb", _template(real))
    result = _discover([tmp_path / "class"], GRADED, environ={})
    assert [(s.student, os.path.basename(s.path)) for s in result.submissions] == [("alice", "a_Regularization.ipynb")]
    assert len(result.warnings) == 1
    assert "alice has 2 notebooks" in result.warnings[0] and "b_template.ipynb" in result.warnings[0]


def test_two_copies_alike_the_newest_is_graded(tmp_path):
    real = (SUBMISSIONS / "correct_reference.ipynb").read_text()
    old = touch(tmp_path / "c" / "bob" / "z_old.ipynb", real)
    os.utime(old, (time.time() - 3600,) * 2)
    touch(tmp_path / "c" / "bob" / "a_new.ipynb", real)
    for _ in range(2):  # the same answer every time
        result = _discover([tmp_path / "c"], GRADED, environ={})
        assert [os.path.basename(s.path) for s in result.submissions] == ["a_new.ipynb"]


def _template(notebook_text: str) -> str:
    """The course's template: the code between the markers not written yet."""
    data = json.loads(notebook_text)
    for cell in data["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if "def forward_propagation_with_dropout" in source or "def backward_propagation_with_dropout" in source:
            header = source.split("\n", 1)[0]
            cell["source"] = (header + "\n    # YOUR CODE STARTS HERE\n    A3 = None\n"
                              "    # YOUR CODE ENDS HERE\n    return A3\n")
    return json.dumps(data)


def test_student_option_names_a_single_notebook(tmp_path):
    path = touch(tmp_path / "Regularization.ipynb")
    assert [s.student for s in discover([path], student="s1234")] == ["s1234"]


@pytest.mark.parametrize("environ, expected", [
    ({"GITHUB_REPOSITORY": "course/dropout-hw-alice", "GITHUB_ACTOR": "ta"}, "dropout-hw-alice"),
    ({"GITHUB_ACTOR": "alice"}, "alice"),
    ({"GITLAB_CI": "true", "CI_PROJECT_PATH_SLUG": "course-hw-bob"}, "course-hw-bob"),
    ({}, "Regularization"),
])
def test_a_single_notebook_takes_the_platforms_id(tmp_path, environ, expected):
    path = touch(tmp_path / "Regularization.ipynb")
    assert [s.student for s in discover([path], environ=environ)] == [expected]


def test_gradescope_metadata_names_the_student(tmp_path):
    (tmp_path / "submission_metadata.json").write_text(json.dumps(
        {"id": 1, "users": [{"email": "ada@example.edu", "id": 7, "name": "Ada L"}]}))
    path = touch(tmp_path / "submission" / "Regularization.ipynb")
    environ = {"AUTOGRADER_ROOT": str(tmp_path), "GITHUB_ACTOR": "someone"}
    assert platform_student(environ) == "ada@example.edu"
    assert [s.student for s in discover([path], environ=environ)] == ["ada@example.edu"]


def test_a_group_on_gradescope_is_named_by_every_member(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"users": [{"email": "a@x"}, {"email": "b@x"}]}))
    assert gradescope_student(tmp_path / "m.json") == "a@x+b@x"


@settings(max_examples=60, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=10))
def test_any_metadata_gives_an_id_or_none_never_a_crash(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("m") / "submission_metadata.json"
    path.write_text(json.dumps({"users": data}))
    owner = gradescope_student(path)
    assert owner is None or (isinstance(owner, str) and owner)


def test_unreadable_metadata_is_ignored(tmp_path):
    (tmp_path / "m.json").write_bytes(b"\xff\xfe not json")
    assert gradescope_student(tmp_path / "m.json") is None


def test_a_single_notebook_uses_its_stem(tmp_path):
    path = touch(tmp_path / "some" / "alice_dropout.ipynb")
    assert [s.student for s in discover([path])] == ["alice_dropout"]


def test_missing_path_is_a_usage_error(tmp_path):
    with pytest.raises(DiscoveryError, match="no such file or folder"):
        discover([tmp_path / "missing"])


def test_folder_without_notebooks_is_a_usage_error(tmp_path):
    with pytest.raises(DiscoveryError, match="no .ipynb files .*it is empty"):
        discover([tmp_path])
    touch(tmp_path / "hw.py")
    with pytest.raises(DiscoveryError, match=r"no .ipynb files .*\(it holds hw.py\)"):
        discover([tmp_path])


def test_symlinked_folders_are_not_followed(tmp_path):
    outside = tmp_path / "outside"
    touch(outside / "secret.ipynb")
    root = tmp_path / "class"
    touch(root / "ada.ipynb")
    (root / "link").symlink_to(outside, target_is_directory=True)
    assert [s.student for s in discover([root])] == ["ada"]


def test_links_to_files_outside_the_folder_are_reported_not_followed(tmp_path):
    outside = touch(tmp_path / "elsewhere" / "secret.ipynb")
    root = tmp_path / "class"
    inside = touch(root / "ada.ipynb")
    (root / "bob.ipynb").symlink_to(outside)
    (root / "cyd.ipynb").symlink_to(inside)
    found = {s.student: s for s in discover([root])}
    assert found["ada"].problem is None and found["cyd"].problem is None
    assert "symbolic link" in found["bob"].problem and "outside" in found["bob"].problem
