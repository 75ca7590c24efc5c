"""Each diagnosis, through the whole pipeline (extraction, sandbox, assessment), plus the
mask logic on synthetic draws. A correct solution must never be marked wrong."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import load_examples_module, non_ok
from dropout_grader.observations import Draw
from dropout_grader.reference.dropout_masks import diagnose_mask

ex = load_examples_module()


def grade_code(grade_cells, forward_source=None, backward_source=None, *extra):
    return grade_cells(ex.IMPORTS, *extra, forward_source or ex.forward(), backward_source or ex.backward())


# --- correct code written many ways: never accused ---------------------------------------
CORRECT_FORWARDS = {
    "reference": ex.forward(),
    "bool mask": ex.forward(l1=dict(threshold="D1 = D1 < keep_prob"), l2=dict(threshold="D2 = D2 < keep_prob")),
    "random_sample": ex.forward(l1=dict(draw="D1 = np.random.random_sample(A1.shape)"),
                                l2=dict(draw="D2 = np.random.random_sample(A2.shape)")),
    "one line": ex.forward(l1=dict(draw="D1 = np.random.rand(*A1.shape) < keep_prob", threshold="-",
                                   apply="A1 = A1 * D1 / keep_prob", scale="-")),
    "mask before relu": ex.FORWARD_MASK_BEFORE_RELU,
    "masks up front": ex.FORWARD_MASKS_UPFRONT,
    "RandomState": ex.forward(l1=dict(draw="D1 = np.random.RandomState(5).rand(*A1.shape)")),
    "float32 mask": ex.forward(l1=dict(threshold="D1 = (D1 < keep_prob).astype(np.float32)")),
}
NOTED_FORWARDS = {
    "binomial": ex.forward(l1=dict(draw="D1 = np.random.binomial(1, keep_prob, size=A1.shape)", threshold="-")),
    "complement threshold": ex.forward(l1=dict(threshold="D1 = D1 > 1 - keep_prob")),
    "default_rng": ex.forward(l1=dict(draw="D1 = np.random.default_rng(3).random(A1.shape)")),
    "python random": ex.forward(l1=dict(
        draw="import random\n    D1 = np.array([[random.random() for _ in range(A1.shape[1])] for _ in range(A1.shape[0])])")),
}


@pytest.mark.parametrize("name", sorted(CORRECT_FORWARDS))
def test_correct_forward_variants_are_ok(grade_cells, name):
    result = grade_code(grade_cells, CORRECT_FORWARDS[name])
    assert non_ok(result) == {}
    assert result.score == result.max_score


@pytest.mark.parametrize("name", sorted(NOTED_FORWARDS))
def test_valid_masks_from_other_streams_are_notes_not_faults(grade_cells, name):
    result = grade_code(grade_cells, NOTED_FORWARDS[name])
    assert non_ok(result) == {"forward.layer1.mask": "different_stream"}
    assert result.score == result.max_score


def test_correct_backward_with_relu_derivative_from_Z(grade_cells):
    source = ex.backward().replace("np.int64(A2 > 0)", "np.int64(Z2 > 0)").replace("np.int64(A1 > 0)", "(Z1 > 0)")
    assert non_ok(grade_code(grade_cells, None, source)) == {}


# --- forward mistakes ----------------------------------------------------------------------
FORWARD_MISTAKES = [
    (dict(l1=dict(threshold="D1 = D1 > keep_prob")), "forward.layer1.mask", "threshold_reversed"),
    (dict(l2=dict(threshold="D2 = D2 < 1 - keep_prob")), "forward.layer2.mask", "threshold_reversed"),
    (dict(l1=dict(draw="D1 = np.random.randn(A1.shape[0], A1.shape[1])")), "forward.layer1.mask", "gaussian"),
    (dict(l2=dict(threshold="-")), "forward.layer2.mask", "not_binary"),
    (dict(l1=dict(draw="D1 = np.random.rand(1, A1.shape[1])")), "forward.layer1.mask", "wrong_shape"),
    (dict(l2=dict(threshold="D2 = D2 < 0.8")), "forward.layer2.mask", "hardcoded_keep_prob"),
    (dict(l1=dict(draw="D1 = np.ones(A1.shape)", threshold="-")), "forward.layer1.mask", "missing"),
    (dict(l1=dict(apply="-")), "forward.layer1.apply", "missing"),
    (dict(l1=dict(scale="-")), "forward.layer1.scale", "missing"),
    (dict(l2=dict(scale="-")), "forward.layer2.scale", "missing"),
    (dict(l1=dict(scale="A1 = A1 * keep_prob")), "forward.layer1.scale", "multiplied"),
    (dict(l2=dict(scale="A2 = A2 / keep_prob ** 2")), "forward.layer2.scale", "squared"),
    (dict(l1=dict(scale="A1 = A1 / (1 - keep_prob)")), "forward.layer1.scale", "complement"),
    (dict(l2=dict(scale="A2 = A2 / 0.8")), "forward.layer2.scale", "hardcoded_keep_prob"),
]


@pytest.mark.parametrize("change, step, diagnosis", FORWARD_MISTAKES,
                         ids=[f"{s}:{d}" for _, s, d in FORWARD_MISTAKES])
def test_forward_mistake_is_named_once_at_its_step(grade_cells, change, step, diagnosis):
    result = grade_code(grade_cells, ex.forward(**change))
    assert non_ok(result) == {step: diagnosis}
    finding = next(f for f in result.findings if f.step == step)
    assert finding.verdict == "wrong" and finding.points == 0
    assert finding.cell is not None and finding.line is not None


def test_stale_propagation(grade_cells):
    source = ex.forward().replace("Z2 = np.dot(W2, A1) + b2", "Z2 = np.dot(W2, relu(Z1)) + b2")
    assert non_ok(grade_code(grade_cells, source)) == {"forward.layer1.propagate": "stale"}


def test_dropout_on_the_output_layer(grade_cells):
    source = ex.forward().replace("A3 = sigmoid(Z3)", "A3 = sigmoid(Z3) / keep_prob")
    assert non_ok(grade_code(grade_cells, source)) == {"forward.output": "dropout_applied"}


def test_malformed_cache(grade_cells):
    source = ex.forward().replace("cache = (Z1, D1, A1,", "cache = (Z1, A1,")
    result = grade_code(grade_cells, source)
    assert non_ok(result) == {"forward.cache": "malformed"}


def test_cache_holding_the_pre_dropout_activation(grade_cells):
    source = ex.forward(l1=dict(apply="A1_dropped = A1 * D1", scale="Z2_input = A1_dropped / keep_prob")).replace(
        "Z2 = np.dot(W2, A1) + b2", "Z2 = np.dot(W2, Z2_input) + b2")
    assert non_ok(grade_code(grade_cells, source)) == {"forward.cache": "stale_activation"}


def test_swapped_masks_show_on_the_equal_width_probe(grade_cells):
    # With different widths this raises; so draw both, then use the wrong one when shapes allow.
    source = ex.forward(l2=dict(apply="A2 = A2 * (D1 if D1.shape == A2.shape else D2)"))
    assert non_ok(grade_code(grade_cells, source)) == {"forward.layer2.apply": "wrong_mask"}


# --- backward mistakes ---------------------------------------------------------------------
BACKWARD_MISTAKES = [
    (dict(l1=dict(mask="-")), "backward.layer1.mask", "missing"),
    (dict(l2=dict(mask="-")), "backward.layer2.mask", "missing"),
    (dict(l2=dict(scale="-")), "backward.layer2.scale", "missing"),
    (dict(l1=dict(scale="dA1 = dA1 * keep_prob")), "backward.layer1.scale", "multiplied"),
    (dict(l2=dict(scale="dA2 = dA2 / keep_prob / keep_prob")), "backward.layer2.scale", "squared"),
    (dict(l1=dict(scale="dA1 = dA1 / (1 - keep_prob)")), "backward.layer1.scale", "complement"),
    (dict(l2=dict(scale="dA2 = dA2 / 0.8")), "backward.layer2.scale", "hardcoded_keep_prob"),
    (dict(l1=dict(mask="dA1 = dA1 * (np.random.rand(*dA1.shape) < keep_prob)")), "backward.layer1.mask", "regenerated"),
]


@pytest.mark.parametrize("change, step, diagnosis", BACKWARD_MISTAKES,
                         ids=[f"{s}:{d}" for _, s, d in BACKWARD_MISTAKES])
def test_backward_mistake_is_named_once_at_its_step(grade_cells, change, step, diagnosis):
    result = grade_code(grade_cells, None, ex.backward(**change))
    assert non_ok(result) == {step: diagnosis}


def test_mask_and_scale_both_missing_are_both_named(grade_cells):
    result = grade_code(grade_cells, None, ex.backward(l2=dict(mask="-", scale="-")))
    assert non_ok(result) == {"backward.layer2.mask": "missing", "backward.layer2.scale": "missing"}


def test_wrong_gradient_formula_is_not_a_dropout_step(grade_cells):
    source = ex.backward().replace("dW2 = 1. / m * np.dot(dZ2, A1.T)", "dW2 = np.dot(dZ2, A1.T)")
    result = grade_code(grade_cells, None, source)
    assert non_ok(result) == {"backward.gradients": "wrong"}
    assert "dW2" in next(f.message for f in result.findings if f.step == "backward.gradients")


def test_backward_dropout_on_the_output(grade_cells):
    source = ex.backward().replace("dZ3 = A3 - Y", "dZ3 = (A3 - Y) / keep_prob")
    assert non_ok(grade_code(grade_cells, None, source)) == {"backward.output": "dropout_applied"}


def test_mistakes_in_both_layers_and_both_passes(grade_cells):
    result = grade_code(grade_cells, ex.forward(l1=dict(scale="-"), l2=dict(threshold="D2 = D2 > keep_prob")),
                        ex.backward(l1=dict(scale="dA1 = dA1 * keep_prob")))
    assert non_ok(result) == {"forward.layer1.scale": "missing", "forward.layer2.mask": "threshold_reversed",
                              "backward.layer1.scale": "multiplied"}


# --- function-level outcomes ---------------------------------------------------------------
def test_function_not_found(grade_cells):
    result = grade_cells(ex.IMPORTS, ex.forward())
    assert non_ok(result) == {"backward.function": "not_found"}
    assert all(f.points == 0 for f in result.findings if f.step.startswith("backward"))


def test_numpy_alias_removed_from_numpy_is_a_note(grade_cells):
    source = ex.forward(l1=dict(threshold="D1 = (D1 < keep_prob).astype(np.int)"))
    result = grade_code(grade_cells, source)
    assert non_ok(result) == {"forward.function": "numpy_compat"}
    assert result.score == result.max_score
    assert "np.int" in next(f.message for f in result.findings if f.step == "forward.function")


def test_numpy_2_removed_spellings_are_served_too(grade_cells):
    source = ex.forward(l1=dict(threshold="D1 = (D1 < keep_prob).astype(np.float_)"))
    result = grade_code(grade_cells, source)
    assert non_ok(result) == {"forward.function": "numpy_compat"}
    assert "np.float_" in next(f.message for f in result.findings if f.step == "forward.function")


def test_failed_import_is_named_when_graded_code_needs_it(grade_cells):
    result = grade_cells("from course_helpers_v9 import relu\nimport numpy as np\nfrom reg_utils import sigmoid",
                         ex.forward(), ex.backward())
    finding = next(f for f in result.findings if f.step == "forward.function")
    assert finding.diagnosis == "error"
    assert "relu" in finding.message and "course_helpers_v9" in finding.message


def test_unused_failing_import_does_not_matter(grade_cells):
    result = grade_cells("import a_module_nobody_has\n" + ex.IMPORTS, ex.forward(), ex.backward())
    assert non_ok(result) == {}


# --- the mask logic on synthetic draws ------------------------------------------------------
def test_mask_reading_of_draws():
    rng = np.random.default_rng(0)
    u = rng.uniform(size=(40, 50))
    k = 0.7

    def verdict(mask, draws):
        obs = diagnose_mask("m", mask.astype(float), mask.shape, k, draws)
        return obs.verdict, obs.diagnosis

    rand = [Draw("rand", "40, 50", u)]
    assert verdict(u < k, rand) == ("ok", None)
    assert verdict(u > 1 - k, rand) == ("note", "different_stream")
    assert verdict(u > k, rand) == ("wrong", "threshold_reversed")
    assert verdict(u < 0.5, rand) == ("wrong", "hardcoded_keep_prob")
    assert verdict(u < k, [Draw("Generator.random", "", u)]) == ("note", "different_stream")
    # not recorded at all: judged by the keep rate
    assert verdict(u < k, []) == ("note", "different_stream")
    assert verdict(u < 1 - k, []) == ("wrong", "threshold_reversed")
    assert verdict(u < 0.45, []) == ("wrong", "keep_rate")


def test_swapped_mask_that_breaks_on_unequal_widths_is_still_named(grade_cells):
    # Real students' swapped masks raise on unequal widths; the equal-width probe still runs.
    result = grade_code(grade_cells, None, ex.backward(l2=dict(mask="dA2 = dA2 * D1")))
    assert non_ok(result) == {"backward.function": "error", "backward.layer2.mask": "wrong_mask"}
    assert "could not be broadcast" in next(f.message for f in result.findings if f.step == "backward.function")
