"""The real student notebooks in ../shared/corpus: every row of LABELS.tsv must match, and no
correct function may be marked wrong."""

from __future__ import annotations

import csv

import pytest

from conftest import CORPUS
from dropout_grader.results import Submission

LABELS = CORPUS / "LABELS.tsv"
pytestmark = pytest.mark.skipif(not LABELS.exists(), reason=f"the real corpus is not at {CORPUS}")


def rows():
    if not LABELS.exists():
        return []
    lines = [line for line in LABELS.read_text().splitlines() if line and not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


def acceptable(label: str) -> list[dict[str, set[str]]]:
    """'ok', or 'step:a|b;step2:c', with ' OR ' between acceptable sets."""
    options = []
    for option in label.split(" OR "):
        option = option.strip()
        if option == "ok":
            options.append({})
            continue
        wanted = {}
        for part in option.split(";"):
            step, diagnoses = part.strip().split(":")
            wanted[step] = set(diagnoses.split("|"))
        options.append(wanted)
    return options


def matches(wrong: dict[str, str], options) -> bool:
    return any(set(wrong) == set(option) and all(wrong[s] in option[s] for s in option) for option in options)


@pytest.fixture(scope="module")
def graded(grader):
    submissions = [Submission(row["file"], str(CORPUS / "real" / row["file"])) for row in rows()]
    return {r.student: r for r in grader.grade_all(submissions)}


@pytest.mark.parametrize("row", rows(), ids=lambda row: row["file"][:40])
def test_label(graded, row):
    result = graded[row["file"]]
    assert result.status == "graded"
    for function in ("forward", "backward"):
        wrong = {f.step: f.diagnosis for f in result.findings
                 if f.verdict == "wrong" and f.step.startswith(function + ".")}
        assert matches(wrong, acceptable(row[function])), (function, wrong, row[function])


# The L2 exercise of the same notebooks (our own labels, read by hand from each notebook):
# every other notebook is right on both L2 functions.
L2_EXPECTED = {
    "29__": {"l2.cost.function": "not_implemented", "l2.backward.function": "not_implemented"},
    "43__": {"l2.cost.function": "not_implemented", "l2.backward.function": "not_implemented"},
    "59__": {"l2.cost.function": "not_implemented", "l2.backward.function": "not_implemented"},
    "73__": {"l2.cost.function": "not_implemented", "l2.backward.function": "not_implemented"},
    # dW3 filled in, dW2 and dW1 left empty: the function raises NameError for dW2.
    "91__": {"l2.backward.function": "error"},
}


@pytest.fixture(scope="module")
def l2_graded():
    from dropout_grader.pipeline import Grader
    from dropout_grader.rubric import RUBRICS, load_rubric

    submissions = [Submission(row["file"], str(CORPUS / "real" / row["file"])) for row in rows()]
    with Grader(load_rubric(RUBRICS / "l2.yaml")) as grader:
        return {r.student: r for r in grader.grade_all(submissions, jobs=2)}


@pytest.mark.parametrize("row", rows(), ids=lambda row: row["file"][:40])
def test_l2_findings(l2_graded, row):
    result = l2_graded[row["file"]]
    wrong = {f.step: f.diagnosis for f in result.wrong}
    assert wrong == L2_EXPECTED.get(row["file"][:4], {})
    if not wrong:
        assert result.score == result.max_score == 9
