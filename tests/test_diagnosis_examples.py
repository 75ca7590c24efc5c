"""The example class (submissions/, written by scripts/make_submissions.py): every notebook's
score and the line each wrong finding points at are pinned in submissions/expected.json."""

from __future__ import annotations

import pytest

from conftest import SUBMISSIONS, expected_examples
from dropout_grader.results import Submission

EXPECTED = expected_examples()


@pytest.fixture(scope="module")
def graded(grader):
    submissions = [Submission(name, str(SUBMISSIONS / f"{name}.ipynb")) for name in sorted(EXPECTED)]
    return {r.student: r for r in grader.grade_all(submissions, jobs=2)}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_score_findings_and_lines_are_pinned(graded, name):
    want, result = EXPECTED[name], graded[name]
    assert result.status == want["status"]
    assert result.score == want["score"]
    found = {f.step: f.diagnosis for f in result.findings if f.verdict != "ok" and f.diagnosis != "not_assessed"}
    assert found == want["findings"]
    lines = {f.step: f.code.strip() for f in result.findings if f.verdict == "wrong" and f.code}
    assert lines == want["at"]


def test_every_wrong_finding_of_a_graded_example_points_at_a_line(graded):
    for result in graded.values():
        if result.status == "graded":
            for finding in result.findings:
                if finding.verdict == "wrong":
                    assert finding.cell is not None and finding.line is not None, (result.student, finding.step)
