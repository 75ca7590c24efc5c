"""Finding notebooks and naming students."""

from __future__ import annotations

import os

import pytest

from dropout_grader.discover import DiscoveryError, discover


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
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
        ("cyd", os.path.join("cyd", "week1", "anything.ipynb")),
    ]


def test_same_id_twice_is_told_apart(tmp_path):
    touch(tmp_path / "ada" / "first.ipynb")
    touch(tmp_path / "ada" / "second.ipynb")
    touch(tmp_path / "other" / "ada.ipynb")
    ids = [s.student for s in discover([tmp_path / "ada", tmp_path / "other"])]
    assert ids == ["first", "second", "ada"]
    ids = [s.student for s in discover([tmp_path])]
    assert ids == ["ada", "ada#2", "other"]


def test_a_single_notebook_uses_its_stem(tmp_path):
    path = touch(tmp_path / "some" / "alice_dropout.ipynb")
    assert [s.student for s in discover([path])] == ["alice_dropout"]


def test_missing_path_is_a_usage_error(tmp_path):
    with pytest.raises(DiscoveryError, match="no such file or folder"):
        discover([tmp_path / "missing"])


def test_folder_without_notebooks_is_a_usage_error(tmp_path):
    with pytest.raises(DiscoveryError, match="no .ipynb files"):
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
