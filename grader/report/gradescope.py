"""Gradescope's results.json for its autograder: a test per visible rubric step."""

from __future__ import annotations

import json

from dropout_grader.report import neutral
from dropout_grader.results import RunResult, SubmissionResult


def document(run: RunResult, result: SubmissionResult) -> dict:
    """Hidden steps get Gradescope's "hidden" visibility; cells are counted from 1; output is
    plain text (Gradescope's default `output_format`), cleaned and capped by `neutral`."""
    result = neutral.bounded_result(result)
    steps = {s.id: s for s in run.steps}
    tests = []
    for number, finding in enumerate(result.findings, start=1):
        step = steps.get(finding.step)
        visible = step.visible if step else True
        where = f"\n(cell {finding.cell + 1}, line {finding.line}: {finding.code.strip()})" if (
            finding.cell is not None and finding.code and run.show_code) else ""
        tests.append({
            "number": str(number),
            "name": f"{finding.step}: {step.title}" if step else finding.step,
            "score": finding.points,
            "max_score": finding.max_points,
            # A step not assessed earned nothing: not a pass (Gradescope knows only these two).
            "status": "failed" if finding.verdict == "wrong" or finding.diagnosis == "not_assessed" else "passed",
            "output": finding.message + where,
            "visibility": run.gradescope_visibility if visible else "hidden",
        })
    output = ""
    if result.output and run.show_output:
        output = "What your code printed while it was graded:\n" + result.output
    return {"score": result.score, "execution_time": round(result.seconds, 3), "output": output,
            "output_format": "text", "test_output_format": "text", "test_name_format": "text",
            "visibility": run.gradescope_visibility, "stdout_visibility": "hidden", "tests": tests}


def failure_document(message: str, student_can_fix: bool = False) -> dict:
    """When grading fails the student still gets a readable result, not a platform error, and
    it says truthfully whose move it is: nothing here tells the instructor by itself."""
    if student_can_fix:
        advice = ("Upload exactly one Jupyter notebook (.ipynb), the one where you wrote "
                  "the graded functions, and submit again.")
    else:
        advice = ("This is a problem with the autograder, not with your work. Please tell "
                  "your instructor (quote this message); your submission was received and "
                  "can be graded again once it is fixed.")
    return {"score": 0, "output": f"The autograder could not grade this submission: {message}.\n{advice}",
            "visibility": "visible", "tests": []}


def render(run: RunResult, result: SubmissionResult) -> str:
    return json.dumps(document(run, result), indent=2, ensure_ascii=False) + "\n"
