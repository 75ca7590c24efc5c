"""How well does the grader name the wrong step? Measured on a mutant corpus, next to the
course's own test method applied to the same notebooks.

    python benchmarks/diagnosis_accuracy.py [-j N] [--show-misses]

Builds the corpus of benchmarks/mutants.py (every catalogue entry x both layers x four coding
styles, pairs of mistakes, correct solutions written differently), grades it through the same
code path as `grade` (Grader.grade_all), and prints: the exact step+diagnosis rate, correct
solutions accused, line-pointer accuracy, and a per-entry table. In the same run it applies the
course's method: call each function once under a fixed seed and compare the returned arrays
exactly (np.allclose) with the reference solution's, as the course's public tests do.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy as np
from nbformat.v4 import new_code_cell, new_notebook

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mutants as corpus_module  # noqa: E402

from dropout_grader.extract import extract  # noqa: E402
from dropout_grader.notebook import read_code_cells  # noqa: E402
from dropout_grader.pipeline import Grader  # noqa: E402
from dropout_grader.results import Submission, SubmissionResult  # noqa: E402
from dropout_grader.rubric import Probe, load_rubric  # noqa: E402


@dataclass
class Outcome:
    mutant: corpus_module.Mutant
    result: SubmissionResult
    course_passes: bool
    course_first_difference: str

    @property
    def found(self) -> dict[str, str]:
        return {f.step: f.diagnosis for f in self.result.findings
                if f.verdict != "ok" and f.diagnosis != "not_assessed"}

    @property
    def exact(self) -> bool:
        return self.found == self.mutant.expected

    @property
    def accused(self) -> bool:
        return any(f.verdict == "wrong" for f in self.result.findings)

    def lines(self) -> list[tuple[str, bool]]:
        checks = []
        for step, code in self.mutant.at.items():
            finding = next((f for f in self.result.findings if f.step == step and f.verdict == "wrong"), None)
            if finding is not None:
                checks.append((step, (finding.code or "").strip() == code.strip()))
        return checks


def write_notebooks(mutants, folder: Path) -> list[Submission]:
    submissions = []
    for mutant in mutants:
        path = folder / f"{mutant.name}.ipynb"
        nbformat.write(new_notebook(cells=[new_code_cell(c) for c in mutant.cells]), path)
        submissions.append(Submission(mutant.name, str(path)))
    return submissions


# --- the course's method ------------------------------------------------------------------
COURSE_PROBES = [Probe(id="course-forward", seed=12345, layers=[3, 2, 3, 1], examples=5, keep_prob=0.7),
                 Probe(id="course-backward", seed=12345, layers=[3, 2, 3, 1], examples=5, keep_prob=0.8)]


def course_grader() -> Grader:
    """The course's public tests: one small test case, one fixed seed (here the global state
    before the call is arbitrary, as in a notebook; the template seeds inside the function)."""
    rubric = load_rubric()
    rubric.spec = rubric.spec.model_copy(update={"probes": COURSE_PROBES})
    return Grader(rubric)


def course_outputs(grader: Grader, path: str) -> dict[str, dict[str, np.ndarray] | str]:
    """role -> the arrays returned on the course's test case (or why there are none)."""
    cells = read_code_cells(Path(path))
    extraction = extract(cells, {r: s.name for r, s in grader.rubric.spec.functions.items()})
    outputs: dict[str, dict[str, np.ndarray] | str] = {}
    for role, probe in (("forward", "course-forward"), ("backward", "course-backward")):
        if role not in extraction.functions:
            outputs[role] = "not found"
            continue
        run = grader.run_function(role, extraction)
        call = next((c for c in run.calls if c.probe == probe), None)
        outputs[role] = call.values if call and call.status == "returned" else f"{run.outcome.diagnosis or 'no result'}"
    return outputs


def course_verdict(expected, got) -> tuple[bool, str]:
    for role in ("forward", "backward"):
        want, have = expected[role], got[role]
        if isinstance(have, str):
            return False, f"{role}: {have}"
        for key, value in want.items():
            other = have.get(key)
            if other is None or other.shape != value.shape or not np.allclose(other, value):
                return False, f"{role}: wrong values for output {key}"
    return True, ""


# --- report ---------------------------------------------------------------------------------
def entry_id(step: str, diagnosis: str) -> str:
    return f"{re.sub(r'layer[12]', 'layer{n}', step)}:{diagnosis}"


def report(outcomes: list[Outcome], seconds: float, show_misses: bool) -> str:
    wrong = [o for o in outcomes if not o.mutant.correct]
    correct = [o for o in outcomes if o.mutant.correct]
    singles = [o for o in wrong if "__pair__" not in o.mutant.name]
    pairs = [o for o in wrong if "__pair__" in o.mutant.name]
    line_checks = [ok for o in wrong for _, ok in o.lines()]
    exact = sum(o.exact for o in wrong)
    accused = sum(o.accused for o in correct)
    correct_exact = sum(o.exact for o in correct)
    course_rejects = sum(not o.course_passes for o in correct)
    course_detects = sum(not o.course_passes for o in wrong)
    out = []
    out.append(f"mutant corpus: {len(wrong)} wrong notebooks ({len(singles)} single mistakes, {len(pairs)} pairs), "
               f"{len(correct)} correct ones, {len(corpus_module.STYLES)} coding styles; graded in {seconds:.1f} s")
    out.append("")
    out.append(f"{'':44}{'this grader':>16}{'course method':>18}")
    out.append(f"{'wrong notebooks: exact step + diagnosis':44}{_pct(exact, len(wrong)):>16}{'0 (names no step)':>18}")
    out.append(f"{'wrong notebooks: flagged as wrong at all':44}{_pct(sum(o.accused for o in wrong), len(wrong)):>16}"
               f"{_pct(course_detects, len(wrong)):>18}")
    out.append(f"{'pairs of mistakes: both named exactly':44}{_pct(sum(o.exact for o in pairs), len(pairs)):>16}{'0':>18}")
    out.append(f"{'correct notebooks accused':44}{f'{accused} of {len(correct)}':>16}"
               f"{f'{course_rejects} of {len(correct)}':>18}")
    out.append(f"{'correct notebooks: exact findings (notes)':44}{_pct(correct_exact, len(correct)):>16}{'-':>18}")
    out.append(f"{'wrong findings pointing at the right line':44}{_pct(sum(line_checks), len(line_checks)):>16}{'-':>18}")
    out.append("")
    table: dict[str, list[Outcome]] = defaultdict(list)
    for o in singles:
        step, diagnosis = next(iter((s, d) for s, d in o.mutant.expected.items()
                                    if not (s.endswith(".function") and d == "error" and len(o.mutant.expected) > 1)))
        table[entry_id(step, diagnosis)].append(o)
    out.append(f"{'catalogue entry':52}{'mutants':>8}{'exact':>8}{'line ok':>9}{'course fails':>14}")
    for key in sorted(table):
        rows = table[key]
        lines = [ok for o in rows for _, ok in o.lines()]
        out.append(f"{key:52}{len(rows):>8}{sum(o.exact for o in rows):>8}"
                   f"{(f'{sum(lines)}/{len(lines)}' if lines else '-'):>9}{sum(not o.course_passes for o in rows):>14}")
    if show_misses:
        out.append("")
        for o in outcomes:
            if not o.exact or not all(ok for _, ok in o.lines()):
                out.append(f"MISS {o.mutant.name}: expected {o.mutant.expected}, found {o.found}")
                for step, ok in o.lines():
                    if not ok:
                        finding = next(f for f in o.result.findings if f.step == step)
                        out.append(f"     line for {step}: expected {o.mutant.at[step]!r}, got {finding.code!r}")
    return "\n".join(out)


def family_report(outcomes: list[Outcome]) -> str:
    """One row per class of failure of issue 10 (benchmarks/mutants.py, issue10_variants)."""
    rows: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        rows[o.mutant.family].append(o)
    out = [f"{'own variants, by class of failure':52}{'variants':>9}{'exact':>7}{'line ok':>9}{'accused':>9}{'course fails':>14}"]
    for family in sorted(rows):
        group = rows[family]
        lines = [ok for o in group for _, ok in o.lines()]
        accused = sum(o.accused for o in group if o.mutant.correct)
        out.append(f"{family:52}{len(group):>9}{sum(o.exact for o in group):>7}"
                   f"{(f'{sum(lines)}/{len(lines)}' if lines else '-'):>9}"
                   f"{(str(accused) if any(o.mutant.correct for o in group) else '-'):>9}"
                   f"{sum(not o.course_passes for o in group):>14}")
    exact = sum(o.exact for o in outcomes)
    lines = [ok for o in outcomes for _, ok in o.lines()]
    correct = [o for o in outcomes if o.mutant.correct]
    out.append(f"{'all own variants':52}{len(outcomes):>9}{exact:>7}{f'{sum(lines)}/{len(lines)}':>9}"
               f"{sum(o.accused for o in correct):>9}{sum(not o.course_passes for o in outcomes):>14}")
    return "\n".join(out)


def _pct(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.1f}%)" if whole else "-"


def evaluate(mutants, jobs: int | None = None) -> tuple[list[Outcome], float]:
    with tempfile.TemporaryDirectory() as folder:
        submissions = write_notebooks(mutants, Path(folder))
        started = time.monotonic()
        with Grader(load_rubric()) as grader:
            results = list(grader.grade_all(submissions, jobs=jobs))
        seconds = time.monotonic() - started
        reference_path = next(s.path for s in submissions if s.student == "correct__template")
        with course_grader() as course:
            expected = course_outputs(course, reference_path)
            verdicts = [course_verdict(expected, course_outputs(course, s.path)) for s in submissions]
    outcomes = [Outcome(m, r, passes, why) for m, r, (passes, why) in zip(mutants, results, verdicts)]
    return outcomes, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description="Diagnosis accuracy on a mutant corpus.")
    parser.add_argument("-j", "--jobs", type=int, default=None)
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    mutants = corpus_module.corpus()
    own = corpus_module.issue10_mutants()
    outcomes, seconds = evaluate(mutants + own, args.jobs)
    print(report(outcomes[:len(mutants)], seconds, args.show_misses))
    print()
    print(family_report(outcomes[len(mutants):]))
    if args.show_misses:
        for o in outcomes[len(mutants):]:
            if not o.exact or not all(ok for _, ok in o.lines()):
                print(f"MISS {o.mutant.name}: expected {o.mutant.expected}, found {o.found}")
                for step, ok in o.lines():
                    if not ok:
                        finding = next(f for f in o.result.findings if f.step == step)
                        print(f"     line for {step}: expected {o.mutant.at[step]!r}, got {finding.code!r}")


if __name__ == "__main__":
    main()
