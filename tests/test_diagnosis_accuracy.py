"""The diagnosis benchmark's targets, asserted on its mutant corpus (benchmarks/mutants.py):
every mutant named exactly, no correct notebook accused, lines right on at least 95%."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import load_script
from dropout_grader.reference.dropout_diagnosis import Tolerance, fit_dropout


def _load(name):
    return load_script("benchmarks", name)


@pytest.fixture(scope="module")
def outcomes():
    benchmark = _load("diagnosis_accuracy")
    mutants = benchmark.corpus_module.corpus()
    # A slice that still covers every entry: all single mistakes of two styles, the
    # wiring and function-level entries, every pair and every correct variant.
    chosen = [m for m in mutants
              if m.name.split("__")[0] in ("template", "helpers_in_other_cells", "correct")
              or "__pair__" in m.name or "wrong_mask" in m.name]
    chosen += benchmark.corpus_module.issue10_mutants()  # every class of failure of issue 10
    result, _ = benchmark.evaluate(chosen, jobs=2)
    return result


def test_every_class_of_failure_of_issue_10_has_own_variants():
    variants = _load("mutants").issue10_mutants()
    families = {m.family for m in variants}
    assert len(variants) >= 45 and len(families) >= 20
    assert sum(m.correct for m in variants) >= 20


def test_the_corpus_is_as_large_as_promised():
    mutants = _load("mutants")
    corpus = mutants.corpus()
    assert len([m for m in corpus if "__pair__" in m.name]) >= 20
    assert len([m for m in corpus if m.correct]) >= 15
    assert len(mutants.STYLES) >= 3


def test_every_wrong_mutant_is_named_exactly(outcomes):
    misses = [(o.mutant.name, o.mutant.expected, o.found) for o in outcomes if not o.exact]
    assert misses == []


def test_no_correct_mutant_is_accused(outcomes):
    assert [o.mutant.name for o in outcomes if o.mutant.correct and o.accused] == []


def test_lines_are_right_on_at_least_95_percent(outcomes):
    checks = [ok for o in outcomes for _, ok in o.lines()]
    assert len(checks) > 50
    assert sum(checks) / len(checks) >= 0.95


def test_the_course_method_is_measured_on_the_same_notebooks(outcomes):
    # exact comparison under one seed rejects correct code that draws differently
    assert any(o.mutant.correct and not o.course_passes for o in outcomes)
    assert all(o.course_passes for o in outcomes if o.mutant.name == "correct__template")


def test_ambiguous_evidence_is_reported_as_such():
    tol = Tolerance(1e-6, 1e-9)
    pre = np.zeros((4, 5))  # nothing survives relu: every variant fits
    mask = (np.arange(20).reshape(4, 5) % 3 > 0).astype(float)
    assert len(fit_dropout(pre, pre, mask, None, 0.7, tol)) > 1
    from dropout_grader.reference.dropout_diagnosis import _dropout_observations
    from dropout_grader.observations import Observation
    observations = _dropout_observations("forward.layer1", pre, pre, Observation("m", "ok"), mask, None, 0.7, tol)
    assert [(o.verdict, o.diagnosis) for o in observations] == [("note", "not_assessed")] * 2
    assert "fit both" in observations[0].evidence["detail"]
