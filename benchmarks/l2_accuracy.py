"""The L2 rows of the diagnosis benchmark: every variant of benchmarks/l2_mutants.py graded as
a notebook through the whole grader (sandbox included), next to the course's method (its
public test: compare the outputs on one test case with the expected ones, exactly).

    python benchmarks/l2_accuracy.py        (also printed by benchmarks/diagnosis_accuracy.py)
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import nbformat
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from l2_mutants import VARIANTS  # noqa: E402

from dropout_grader.pipeline import Grader  # noqa: E402
from dropout_grader.reference import l2  # noqa: E402
from dropout_grader.results import Submission  # noqa: E402
from dropout_grader.rubric import RUBRICS, load_rubric  # noqa: E402

# The course's test case: one set of inputs, one lambd (as its public tests use).
COURSE_CASE = l2.make_probe(99, [3, 2, 3, 1], 5, 0.1)


def course_passes(variant) -> bool:
    namespace: dict = {}
    exec(compile(variant.source, variant.name, "exec"), namespace)  # noqa: S102 - our own variants
    name = "compute_cost_with_regularization" if variant.role == "cost" else "backward_propagation_with_regularization"
    try:
        got = namespace[name](*l2.call_arguments(variant.role, COURSE_CASE))
    except Exception:  # noqa: BLE001 - our own variant code, run to see whether the course's test passes
        return False
    if variant.role == "cost":
        return bool(np.isclose(got, l2.cost(COURSE_CASE.A3, COURSE_CASE.Y, COURSE_CASE.parameters, 0.1)))
    want = l2.backward(COURSE_CASE.X, COURSE_CASE.Y, COURSE_CASE.cache, 0.1)
    return all(np.shape(got.get(k)) == v.shape and np.allclose(got[k], v) for k, v in want.items())


def evaluate() -> tuple[list, float]:
    with tempfile.TemporaryDirectory() as folder:
        submissions = []
        for variant in VARIANTS:
            path = Path(folder) / f"{variant.name}.ipynb"
            nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(variant.source)]), path)
            submissions.append(Submission(variant.name, str(path)))
        started = time.monotonic()
        with Grader(load_rubric(RUBRICS / "l2.yaml")) as grader:
            results = list(grader.grade_all(submissions))
        seconds = time.monotonic() - started
    rows = []
    for variant, result in zip(VARIANTS, results):
        own = [f for f in result.findings if f.step.startswith(f"l2.{variant.role}.")]
        found = {(f.step[3:], f.diagnosis) for f in own if f.verdict == "wrong"}
        lines = [f.line is not None and not (f.code or "").lstrip().startswith("def ")
                 for f in own if f.verdict == "wrong"]
        rows.append((variant, found == set(variant.expected), lines, course_passes(variant)))
    return rows, seconds


def report(rows, seconds: float) -> str:
    wrong = [r for r in rows if r[0].expected]
    correct = [r for r in rows if not r[0].expected]
    lines = [ok for r in wrong for ok in r[2]]
    out = [f"L2 variants: {len(wrong)} wrong, {len(correct)} correct; graded in {seconds:.1f} s", "",
           f"{'':44}{'this grader':>16}{'course method':>18}",
           f"{'wrong: exact step + diagnosis':44}{_pct(sum(r[1] for r in wrong), len(wrong)):>16}{'0 (names no step)':>18}",
           f"{'wrong: flagged as wrong at all':44}{_pct(len(wrong), len(wrong)):>16}"
           f"{_pct(sum(not r[3] for r in wrong), len(wrong)):>18}",
           f"{'correct variants accused':44}{f'{sum(not r[1] for r in correct)} of {len(correct)}':>16}"
           f"{f'{sum(not r[3] for r in correct)} of {len(correct)}':>18}",
           f"{'wrong findings pointing at a code line':44}{_pct(sum(lines), len(lines)):>16}{'-':>18}", ""]
    table = defaultdict(list)
    for row in wrong:
        for step, diagnosis in row[0].expected:
            table[f"l2.{re.sub(r'layer[123]', 'layer{n}', step)}:{diagnosis}"].append(row)
    out.append(f"{'catalogue entry':52}{'variants':>9}{'exact':>8}{'course fails':>14}")
    for key in sorted(table):
        group = table[key]
        out.append(f"{key:52}{len(group):>9}{sum(r[1] for r in group):>8}{sum(not r[3] for r in group):>14}")
    return "\n".join(out)


def _pct(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.1f}%)" if whole else "-"


def main() -> None:
    rows, seconds = evaluate()
    print(report(rows, seconds))


if __name__ == "__main__":
    main()
