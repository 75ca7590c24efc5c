"""Shared fixtures: the rubric, one warm grader for the session, and notebook builders."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from dropout_grader.pipeline import Grader
from dropout_grader.results import Submission
from dropout_grader.rubric import DEFAULT_RUBRIC, load_rubric

ROOT = Path(__file__).resolve().parent.parent
SUBMISSIONS = ROOT / "submissions"
CORPUS = ROOT.parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def rubric():
    return load_rubric()


@pytest.fixture(scope="session")
def grader(rubric):
    """The dropout exercise alone (rubrics/dropout.yaml)."""
    with Grader(rubric) as warm:
        yield warm


@pytest.fixture(scope="session")
def course_grader():
    """What `grade` grades by default: the whole notebook, dropout and L2 (rubrics/regularization.yaml)."""
    from dropout_grader.course import CourseGrader, load_course
    from dropout_grader.rubric import DEFAULT_COURSE

    with CourseGrader(load_course(DEFAULT_COURSE)) as warm:
        yield warm


def rubric_with_limits(folder: Path, limits: dict) -> Path:
    """The dropout rubric with other sandbox limits, written in `folder`."""
    data = yaml.safe_load(DEFAULT_RUBRIC.read_text())
    data["limits"] = limits
    path = folder / "limits.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def write_notebook(path: Path, *code: str, markdown: str | None = None) -> Path:
    cells = ([new_markdown_cell(markdown)] if markdown else []) + [new_code_cell(c) for c in code]
    nbformat.write(new_notebook(cells=cells), path)
    return path


@pytest.fixture
def notebook(tmp_path):
    """notebook(*code_cells) -> path of a new notebook with those code cells."""
    counter = iter(range(10_000))

    def make(*code: str, name: str | None = None) -> Path:
        return write_notebook(tmp_path / f"{name or 'nb%d' % next(counter)}.ipynb", *code)

    return make


@pytest.fixture
def grade_cells(grader, notebook):
    """grade_cells(*code_cells) -> SubmissionResult, through the full pipeline."""

    def run(*code: str):
        path = notebook(*code)
        return grader.grade(Submission(path.stem, str(path)))

    return run


def non_ok(result) -> dict[str, str]:
    """step -> diagnosis for every finding that is not plain ok (not_assessed left out)."""
    return {f.step: f.diagnosis for f in result.findings
            if f.verdict != "ok" and f.diagnosis != "not_assessed"}


def expected_examples() -> dict:
    return json.loads((SUBMISSIONS / "expected.json").read_text())


def load_script(folder: str, name: str):
    """A module from scripts/ or benchmarks/ (not packages), loaded once."""
    import importlib.util
    import sys

    if name in sys.modules:
        return sys.modules[name]
    sys.path.insert(0, str(ROOT / folder))  # for the module's own sibling imports
    spec = importlib.util.spec_from_file_location(name, ROOT / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def load_examples_module():
    """scripts/make_submissions.py, whose code builders the tests reuse."""
    return load_script("scripts", "make_submissions")
