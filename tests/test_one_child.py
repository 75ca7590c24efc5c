"""One child per notebook (grader/plan.py, grader/sandbox/batch.py): every graded function
runs in one child, and what one function does to that child is never charged to another.
Lines are traced only for functions with a wrong step."""

from __future__ import annotations

import re
import time

import nbformat
import pytest

from dropout_grader.pipeline import Grader
from dropout_grader.plan import Plan
from dropout_grader.results import Submission
from dropout_grader.rubric import load_rubric
from conftest import SUBMISSIONS, rubric_with_limits

CORRECT = SUBMISSIONS / "correct_reference.ipynb"


def with_statements(tmp_path, role: str, statements: str, source: str = str(CORRECT), name: str = "nb") -> str:
    """The correct notebook, with `statements` first in the body of the `role` function
    (and anything before `def`, marked `@top`, at module level in that cell)."""
    notebook = nbformat.read(source, as_version=4)
    function = {"forward": "forward_propagation_with_dropout", "backward": "backward_propagation_with_dropout"}[role]
    top, _, body = statements.partition("@body\n") if "@body\n" in statements else ("", "", statements)
    for cell in notebook.cells:
        match = re.search(rf"^def {function}\(.*\):\n", cell.source, re.M) if cell.cell_type == "code" else None
        if match:
            indented = "".join(f"    {line}\n" for line in body.splitlines())
            cell.source = (cell.source[:match.start()] + top + cell.source[match.start():match.end()] + indented
                           + cell.source[match.end():])
            break
    else:
        raise AssertionError(f"no {function} in {source}")
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(notebook, path)
    return str(path)


def planned(grader: Grader, path: str) -> Plan:
    """Load, plan and run a notebook, keeping the plan (it counts the children)."""
    submission = Submission("s", path)
    started = time.monotonic()
    plan = grader.plan(submission, grader.load(submission, started), started)
    grader.run_plans([plan])
    return plan


def steps(grader: Grader, plan: Plan, role: str) -> dict[str, tuple[str, str]]:
    return {f.step: (f.verdict, f.diagnosis) for f in grader.result(plan).findings if f.step.startswith(role)}


def test_a_correct_notebook_runs_in_one_untraced_child(grader):
    plan = planned(grader, str(CORRECT))
    assert plan.children == 1
    assert all(f.verdict == "ok" for f in grader.result(plan).findings)


def test_a_wrong_step_is_traced_in_one_more_child_and_points_at_its_line(grader):
    plan = planned(grader, str(SUBMISSIONS / "forward_layer1_scale_missing.ipynb"))
    assert plan.children == 2  # the untraced run, then the forward function again, traced
    wrong = [f for f in grader.result(plan).findings if f.verdict == "wrong"]
    assert [f.step for f in wrong] == ["forward.layer1.scale"]
    assert wrong[0].line is not None and wrong[0].code.strip().startswith("A1")


def test_a_crash_in_backward_leaves_forward_graded(grader, tmp_path):
    plan = planned(grader, with_statements(tmp_path, "backward", "import os\nos._exit(3)"))
    assert plan.children == 2  # backward ran after forward: charged only once it ran first, alone
    assert all(verdict == "ok" for verdict, _ in steps(grader, plan, "forward").values())
    outcome = grader.result(plan).findings
    backward = next(f for f in outcome if f.step == "backward.function")
    assert (backward.verdict, backward.diagnosis) == ("wrong", "error") and "exited with code 3" in backward.message


def test_a_crash_in_forward_is_forward_s_and_backward_runs_in_a_new_child(grader, tmp_path):
    plan = planned(grader, with_statements(tmp_path, "forward", "import os\nos._exit(3)"))
    assert plan.children == 2
    assert steps(grader, plan, "forward")["forward.function"] == ("wrong", "error")
    assert all(verdict == "ok" for verdict, _ in steps(grader, plan, "backward").values())


@pytest.fixture(scope="module")
def tight_grader(tmp_path_factory):
    # A wall clock far above the CPU limit: on a loaded machine CPU seconds take longer to get.
    path = rubric_with_limits(tmp_path_factory.mktemp("rubric"), {
        "cpu_seconds": 3, "wall_seconds": 30, "memory_mb": 1024, "output_kb": 16, "result_mb": 8})
    with Grader(load_rubric(path)) as grader:
        yield grader


def test_memory_forward_keeps_is_not_charged_to_backward(tight_grader, tmp_path):
    """Forward keeps 600 MB alive; backward needs 500 MB for a moment. Each fits the 1 GB
    limit alone, not together: backward is run again in a fresh child, and passes."""
    keeper = "KEPT = []\n@body\nKEPT.append(np.ones((150, 2**17)))\n"
    spender = "import numpy as np\nnp.ones((500, 2**17)).sum()"
    path = with_statements(tmp_path, "forward", keeper)
    path = with_statements(tmp_path, "backward", spender, source=path, name="both")
    plan = planned(tight_grader, path)
    assert all(verdict == "ok" for verdict, _ in steps(tight_grader, plan, "forward").values())
    assert all(verdict == "ok" for verdict, _ in steps(tight_grader, plan, "backward").values())
    assert plan.children == 2


def test_cpu_time_forward_spends_is_not_charged_to_backward(tight_grader, tmp_path):
    """Each function spends most of the 3 s CPU limit; together they pass it."""
    spend = "import time\n_t = time.process_time()\nwhile time.process_time() - _t < 0.5:\n    pass"
    path = with_statements(tmp_path, "forward", spend)  # 4 calls: 2 s
    path = with_statements(tmp_path, "backward", spend, source=path, name="both")  # 3 calls: 1.5 s
    plan = planned(tight_grader, path)
    assert steps(tight_grader, plan, "forward")["forward.function"][0] == "ok"
    assert steps(tight_grader, plan, "backward")["backward.function"][0] == "ok"
    assert plan.children == 2


def test_what_forward_leaves_in_the_namespace_backward_does_not_see(grader, tmp_path):
    """Each function runs in a namespace of its own, as when each had its own child."""
    path = with_statements(tmp_path, "forward", "global LEFT\nLEFT = 1")
    path = with_statements(tmp_path, "backward", "LEFT", source=path, name="both")
    plan = planned(grader, path)
    assert steps(grader, plan, "forward")["forward.function"][0] == "ok"
    backward = next(f for f in grader.result(plan).findings if f.step == "backward.function")
    assert backward.diagnosis == "error" and "NameError" in backward.message


def test_a_stand_in_module_forward_spoils_is_restored_for_backward(grader, tmp_path):
    """Student code replacing a helper module's function affects only its own calls."""
    path = with_statements(tmp_path, "forward", "import reg_utils\nreg_utils.relu_backward = None")
    path = with_statements(tmp_path, "backward", "import reg_utils\nassert reg_utils.relu_backward is not None",
                           source=path, name="both")
    plan = planned(grader, path)
    assert all(verdict == "ok" for verdict, _ in steps(grader, plan, "backward").values())


def test_the_course_runs_both_exercises_in_one_child(course_grader):
    part = course_grader.parts[0]
    submission = Submission("s", str(CORRECT))
    started = time.monotonic()
    notebook = part.load(submission, started)
    plans = [p.plan(submission, notebook, started) for p in course_grader.parts]
    part.run_plans(plans)
    assert [plan.children for plan in plans] == [1, 1]  # the same one child, counted by each
    assert all(f.verdict == "ok" for plan in plans for f in plan.grader.result(plan).findings)


def test_the_course_s_result_says_when_it_was_graded(course_grader):
    """Every report prints the grading's time; the merged result carries it (was empty)."""
    result = course_grader.grade(Submission("s", str(CORRECT)))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", result.graded_at)


def test_the_course_s_time_is_the_notebook_s_not_the_sum_of_its_parts(course_grader):
    """The parts run in one child from one start: their times overlap, they do not add up."""
    started = time.monotonic()
    result = course_grader.grade(Submission("s", str(CORRECT)))
    assert result.seconds <= time.monotonic() - started + 0.01
