"""Write the example class in submissions/: one notebook per diagnosis the grader names,
several correct solutions written differently, a notebook without the graded functions, and
an unreadable file. Also writes submissions/expected.json, the findings each must get (the
end-to-end tests assert them).

All code here is written for this project; none of it comes from the course's notebooks.

    python scripts/make_submissions.py [--out submissions]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

IMPORTS = """\
%matplotlib inline
import numpy as np
import matplotlib.pyplot as plt
from reg_utils import sigmoid, relu, plot_decision_boundary
from testCases import *
"""

FORWARD = '''\
def forward_propagation_with_dropout(X, parameters, keep_prob=0.5):
    """Three-layer forward pass with inverted dropout on the two hidden layers."""
    np.random.seed(1)
    W1, b1 = parameters["W1"], parameters["b1"]
    W2, b2 = parameters["W2"], parameters["b2"]
    W3, b3 = parameters["W3"], parameters["b3"]

    Z1 = np.dot(W1, X) + b1
    A1 = relu(Z1)
{layer1}
    Z2 = np.dot(W2, A1) + b2
    A2 = relu(Z2)
{layer2}
    Z3 = np.dot(W3, A2) + b3
    A3 = sigmoid(Z3)

    cache = (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)
    return A3, cache
'''

BACKWARD = '''\
def backward_propagation_with_dropout(X, Y, cache, keep_prob):
    """Gradients of the three-layer network, through the dropout masks of the forward pass."""
    m = X.shape[1]
    (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3) = cache

    dZ3 = A3 - Y
    dW3 = 1. / m * np.dot(dZ3, A2.T)
    db3 = 1. / m * np.sum(dZ3, axis=1, keepdims=True)
    dA2 = np.dot(W3.T, dZ3)
{layer2}
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1. / m * np.dot(dZ2, A1.T)
    db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True)
    dA1 = np.dot(W2.T, dZ2)
{layer1}
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1. / m * np.dot(dZ1, X.T)
    db1 = 1. / m * np.sum(dZ1, axis=1, keepdims=True)

    return {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2, "dZ2": dZ2, "dW2": dW2,
            "db2": db2, "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}
'''


def forward_layer(n: int, draw=None, threshold=None, apply=None, scale=None) -> str:
    """The four dropout lines of hidden layer n, each replaceable by a mistake."""
    lines = [
        draw or f"D{n} = np.random.rand(A{n}.shape[0], A{n}.shape[1])",
        threshold or f"D{n} = (D{n} < keep_prob).astype(int)",
        apply or f"A{n} = A{n} * D{n}",
        scale or f"A{n} = A{n} / keep_prob",
    ]
    return "\n".join("    " + line for line in lines if line != "-")


def backward_layer(n: int, mask=None, scale=None) -> str:
    lines = [mask or f"dA{n} = dA{n} * D{n}", scale or f"dA{n} = dA{n} / keep_prob"]
    return "\n".join("    " + line for line in lines if line != "-")


def fill(template: str, layer1: str, layer2: str) -> str:
    return template.replace("{layer1}", layer1).replace("{layer2}", layer2)


def forward(l1: dict | None = None, l2: dict | None = None) -> str:
    return fill(FORWARD, forward_layer(1, **(l1 or {})), forward_layer(2, **(l2 or {})))


def backward(l1: dict | None = None, l2: dict | None = None) -> str:
    return fill(BACKWARD, backward_layer(1, **(l1 or {})), backward_layer(2, **(l2 or {})))


@dataclass
class Example:
    name: str
    cells: list[str]  # code cells after the imports (markdown is added around them)
    expected: dict[str, str] = field(default_factory=dict)  # step -> diagnosis (non-ok findings)
    at: dict[str, str] = field(default_factory=dict)  # step -> the code line it must point at
    status: str = "graded"


def standard(forward_source=None, backward_source=None, extra=()) -> list[str]:
    return [*extra, forward_source or forward(),
            "X_check = np.random.randn(3, 5)\nprint('forward defined')",
            backward_source or backward()]


HELPER = '''\
def dropout_mask(A, keep_prob):
    """Keep each unit of A with probability keep_prob."""
    return np.random.rand(*A.shape) < keep_prob


def apply_dropout(A, D, keep_prob):
    return np.divide(np.multiply(A, D), keep_prob)
'''

FORWARD_WITH_HELPERS = '''\
def forward_propagation_with_dropout(X, parameters, keep_prob=0.5):
    W1, b1, W2, b2, W3, b3 = (parameters[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
    Z1 = W1 @ X + b1
    D1 = dropout_mask(Z1, keep_prob)
    A1 = apply_dropout(relu(Z1), D1, keep_prob)
    Z2 = W2 @ A1 + b2
    D2 = dropout_mask(Z2, keep_prob)
    A2 = apply_dropout(relu(Z2), D2, keep_prob)
    Z3 = W3 @ A2 + b3
    A3 = sigmoid(Z3)
    return A3, (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)
'''

FORWARD_MASKS_UPFRONT = '''\
def forward_propagation_with_dropout(X, parameters, keep_prob=0.5):
    m = X.shape[1]
    W1, b1 = parameters["W1"], parameters["b1"]
    W2, b2 = parameters["W2"], parameters["b2"]
    W3, b3 = parameters["W3"], parameters["b3"]
    # both masks first, then the layers
    D1 = np.random.rand(W1.shape[0], m) < keep_prob
    D2 = np.random.rand(W2.shape[0], m) < keep_prob
    Z1 = W1.dot(X) + b1
    A1 = np.maximum(Z1, 0)
    A1 *= D1
    A1 /= keep_prob
    Z2 = W2.dot(A1) + b2
    A2 = np.maximum(Z2, 0)
    A2 *= D2
    A2 /= keep_prob
    Z3 = W3.dot(A2) + b3
    A3 = 1 / (1 + np.exp(-Z3))
    return A3, (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)
'''

FORWARD_MASK_BEFORE_RELU = forward(
    l1=dict(apply="A1 = relu(Z1 * D1 / keep_prob)", scale="-"),
    l2=dict(apply="A2 = relu(Z2 * D2 / keep_prob)", scale="-"))

TEMPLATE_FORWARD = fill(
    FORWARD,
    "    ### START CODE HERE ###\n    D1 = None\n    D1 = None\n    A1 = None\n    A1 = None\n    ### END CODE HERE ###",
    "    ### START CODE HERE ###\n    D2 = None\n    D2 = None\n    A2 = None\n    A2 = None\n    ### END CODE HERE ###")
TEMPLATE_BACKWARD = fill(
    BACKWARD,
    "    ### START CODE HERE ###\n    dA1 = None\n    dA1 = None\n    ### END CODE HERE ###",
    "    ### START CODE HERE ###\n    dA2 = None\n    dA2 = None\n    ### END CODE HERE ###")


def examples() -> list[Example]:
    ok = {}
    return [
        # --- correct solutions, written differently -------------------------------------
        Example("correct_reference", standard(), ok),
        Example("correct_inplace_numpy_calls", standard(forward(
            l1=dict(apply="A1 = np.multiply(A1, D1)", scale="A1 = np.divide(A1, keep_prob)"),
            l2=dict(apply="A2 *= D2", scale="A2 /= keep_prob")), backward(
            l1=dict(mask="dA1 = np.multiply(dA1, D1)", scale="dA1 = np.divide(dA1, keep_prob)"),
            l2=dict(mask="dA2 *= D2", scale="dA2 /= keep_prob"))), ok),
        Example("correct_helpers_in_another_cell", standard(FORWARD_WITH_HELPERS, extra=[HELPER]), ok),
        Example("correct_masks_drawn_up_front", standard(FORWARD_MASKS_UPFRONT), ok),
        Example("correct_mask_before_relu", standard(FORWARD_MASK_BEFORE_RELU), ok),
        Example("correct_binomial", standard(forward(
            l1=dict(draw="D1 = np.random.binomial(1, keep_prob, size=A1.shape)", threshold="-"),
            l2=dict(draw="D2 = np.random.binomial(1, keep_prob, size=A2.shape)", threshold="-"))), {
            "forward.layer1.mask": "different_stream", "forward.layer2.mask": "different_stream"}),
        Example("correct_complement_threshold", standard(forward(
            l1=dict(threshold="D1 = D1 > 1 - keep_prob"), l2=dict(threshold="D2 = D2 > 1 - keep_prob"))), {
            "forward.layer1.mask": "different_stream", "forward.layer2.mask": "different_stream"}),
        Example("correct_default_rng", standard(forward(
            l1=dict(draw="rng = np.random.default_rng(7)\n    D1 = rng.random(A1.shape)"),
            l2=dict(draw="D2 = rng.random(A2.shape)"))), {
            "forward.layer1.mask": "different_stream", "forward.layer2.mask": "different_stream"}),
        Example("correct_defined_twice", standard(extra=[forward(l1=dict(scale="-"))]), {
            "forward.function": "defined_twice"}),
        # --- forward mistakes ---------------------------------------------------------------
        Example("forward_layer1_threshold_reversed", standard(forward(l1=dict(threshold="D1 = (D1 > keep_prob).astype(int)"))),
                {"forward.layer1.mask": "threshold_reversed"}, at={"forward.layer1.mask": "D1 = (D1 > keep_prob).astype(int)"}),
        Example("forward_layer2_not_binary", standard(forward(l2=dict(threshold="-"))),
                {"forward.layer2.mask": "not_binary"}),
        Example("forward_layer1_mask_missing", standard(forward(l1=dict(draw="D1 = np.ones(A1.shape)", threshold="-"))),
                {"forward.layer1.mask": "missing"}),
        Example("forward_layer2_wrong_shape", standard(forward(l2=dict(draw="D2 = np.random.rand(A2.shape[0], 1)"))),
                {"forward.layer2.mask": "wrong_shape"}),
        Example("forward_layer1_apply_missing", standard(forward(l1=dict(apply="-"))),
                {"forward.layer1.apply": "missing"}, at={"forward.layer1.apply": "A1 = A1 / keep_prob"}),
        Example("forward_layer1_scale_missing", standard(forward(l1=dict(scale="-"))),
                {"forward.layer1.scale": "missing"}, at={"forward.layer1.scale": "A1 = A1 * D1"}),
        Example("forward_layer2_scale_missing", standard(forward(l2=dict(scale="-"))),
                {"forward.layer2.scale": "missing"}, at={"forward.layer2.scale": "A2 = A2 * D2"}),
        Example("forward_layer2_scale_multiplied", standard(forward(l2=dict(scale="A2 = A2 * keep_prob"))),
                {"forward.layer2.scale": "multiplied"}, at={"forward.layer2.scale": "A2 = A2 * keep_prob"}),
        Example("forward_layer1_scale_squared", standard(forward(l1=dict(scale="A1 = A1 / keep_prob / keep_prob"))),
                {"forward.layer1.scale": "squared"}),
        Example("forward_layer2_scale_complement", standard(forward(l2=dict(scale="A2 = A2 / (1 - keep_prob)"))),
                {"forward.layer2.scale": "complement"}),
        # --- backward mistakes --------------------------------------------------------------
        Example("backward_layer1_mask_missing", standard(backward_source=backward(l1=dict(mask="-"))),
                {"backward.layer1.mask": "missing"}),
        Example("backward_layer2_scale_missing", standard(backward_source=backward(l2=dict(scale="-"))),
                {"backward.layer2.scale": "missing"}, at={"backward.layer2.scale": "dA2 = dA2 * D2"}),
        Example("backward_layer1_scale_multiplied", standard(backward_source=backward(l1=dict(scale="dA1 = dA1 * keep_prob"))),
                {"backward.layer1.scale": "multiplied"}),
        Example("backward_layer2_scale_squared", standard(backward_source=backward(l2=dict(scale="dA2 = dA2 / keep_prob**2"))),
                {"backward.layer2.scale": "squared"}),
        Example("backward_layer1_scale_complement", standard(backward_source=backward(l1=dict(scale="dA1 = dA1 / (1 - keep_prob)"))),
                {"backward.layer1.scale": "complement"}),
        # --- values as students write them (issue 10) and forged evidence (issue 9) -------
        Example("correct_list_masks_namedtuple_cache", standard(forward(
            l1=dict(threshold="D1 = (D1 < keep_prob).astype(int).tolist()"),
            l2=dict(threshold="D2 = list(D2 < keep_prob)")).replace(
            "    cache = (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)",
            "    Cache = namedtuple('Cache', 'Z1 D1 A1 W1 b1 Z2 D2 A2 W2 b2 Z3 A3 W3 b3')\n"
            "    cache = Cache(Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)"),
            extra=["from collections import namedtuple"]), ok),
        Example("correct_float32_dropout_before_relu", standard(forward(
            l1=dict(apply="Z1 = Z1 * D1 / keep_prob", scale="A1 = relu(Z1)"),
            l2=dict(threshold="D2 = (D2 < keep_prob).astype(np.float32)")).replace(
            "    Z1 = np.dot(W1, X) + b1", "    X = X.astype(np.float32)\n    Z1 = np.dot(W1.astype(np.float32), X) + b1")), ok),
        Example("correct_pre_scaled_mask", standard(forward(
            l1=dict(threshold="D1 = (D1 < keep_prob) / keep_prob", scale="-"))), {"forward.layer1.mask": "pre_scaled"}),
        Example("forward_layer2_mask_reused", standard(forward(l2=dict(draw="-", threshold="D2 = D1[:A2.shape[0]]"))),
                {"forward.layer2.mask": "reused"}, at={"forward.layer2.mask": "D2 = D1[:A2.shape[0]]"}),
        Example("forward_layer1_mask_not_random", standard(forward(l1=dict(
            draw="D1 = (np.arange(A1.size).reshape(A1.shape) * 7919 % 100) / 100.0"))),
                {"forward.layer1.mask": "not_random"}, at={"forward.layer1.mask": "D1 = (D1 < keep_prob).astype(int)"}),
        Example("forward_layer1_mask_drops_everything", standard(forward(l1=dict(threshold="D1 = (D1 < int(keep_prob)).astype(int)"))),
                {"forward.layer1.mask": "keep_rate"}, at={"forward.layer1.mask": "D1 = (D1 < int(keep_prob)).astype(int)"}),
        Example("forward_cache_swapped", standard(forward().replace("cache = (Z1, D1, A1,", "cache = (Z1, A1, D1,")),
                {"forward.cache": "malformed"}, at={"forward.cache": "cache = (Z1, A1, D1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)"}),
        Example("forward_input_dropout", standard(forward().replace(
            "    Z1 = np.dot(W1, X) + b1\n",
            "    X = X * (np.random.rand(*X.shape) < keep_prob) / keep_prob\n    Z1 = np.dot(W1, X) + b1\n")),
            {"forward.cache": "input_dropout"}, at={"forward.cache": "X = X * (np.random.rand(*X.shape) < keep_prob) / keep_prob"}),
        Example("backward_layer1_mask_from_activations", standard(backward_source=backward(l1=dict(mask="dA1 = dA1 * (A1 > 0)"))),
                {"backward.layer1.mask": "from_activations"}, at={"backward.layer1.mask": "dA1 = dA1 * (A1 > 0)"}),
        Example("backward_layer2_dropout_on_dZ", standard(backward_source=backward(l2=dict(mask="-", scale="-")).replace(
            "    dZ2 = np.multiply(dA2, np.int64(A2 > 0))\n", "    dZ2 = np.multiply(dA2, np.int64(A2 > 0)) * D2 / keep_prob\n")),
            {"backward.layer2.mask": "applied_to_dZ"}, at={"backward.layer2.mask": "dZ2 = np.multiply(dA2, np.int64(A2 > 0)) * D2 / keep_prob"}),
        # --- two mistakes in one notebook: each reported once, at its own step -------------
        Example("two_mistakes_forward_and_backward", standard(
            forward(l1=dict(threshold="D1 = D1 > keep_prob")), backward(l2=dict(scale="-"))),
            {"forward.layer1.mask": "threshold_reversed", "backward.layer2.scale": "missing"}),
        # --- functions that cannot be graded ----------------------------------------------
        Example("template_untouched", standard(TEMPLATE_FORWARD, TEMPLATE_BACKWARD),
                {"forward.function": "not_implemented", "backward.function": "not_implemented"}),
        Example("raises_attribute_error", standard(forward(l1=dict(draw="D1 = np.random.rnad(*A1.shape)"))),
                {"forward.function": "error"}, at={"forward.function": "D1 = np.random.rnad(*A1.shape)"}),
        Example("backward_wrong_signature", standard(backward_source=backward().replace(
            "(X, Y, cache, keep_prob)", "(cache, keep_prob)").replace("m = X.shape[1]", "m = cache[0].shape[1]")),
            {"backward.function": "signature"}),
        Example("forward_returns_nothing", standard(forward().replace("    return A3, cache\n", "")),
                {"forward.function": "bad_return"}),
        Example("syntax_error_in_forward", standard(forward().replace("A3 = sigmoid(Z3)", "A3 = sigmoid(Z3")),
                {"forward.function": "error"}),
        Example("no_graded_functions", ["print('I did not do the assignment')"], {"notebook": "no_code"},
                status="ungradable"),
    ]


# Each example's score (of 19) and the line every wrong finding points at, pinned: the tests
# assert them (tests/test_diagnosis_examples.py, tests/test_cli.py).
PINNED: dict[str, tuple[float, dict[str, str]]] = {
    'correct_reference': (19, {}),
    'correct_inplace_numpy_calls': (19, {}),
    'correct_helpers_in_another_cell': (19, {}),
    'correct_masks_drawn_up_front': (19, {}),
    'correct_mask_before_relu': (19, {}),
    'correct_binomial': (19, {}),
    'correct_complement_threshold': (19, {}),
    'correct_default_rng': (19, {}),
    'correct_defined_twice': (19, {}),
    'forward_layer1_threshold_reversed': (18, {'forward.layer1.mask': 'D1 = (D1 > keep_prob).astype(int)'}),
    'forward_layer2_not_binary': (18, {'forward.layer2.mask': 'D2 = np.random.rand(A2.shape[0], A2.shape[1])'}),
    'forward_layer1_mask_missing': (18, {'forward.layer1.mask': 'D1 = np.ones(A1.shape)'}),
    'forward_layer2_wrong_shape': (18, {'forward.layer2.mask': 'D2 = (D2 < keep_prob).astype(int)'}),
    'forward_layer1_apply_missing': (18.5, {'forward.layer1.apply': 'A1 = A1 / keep_prob'}),
    'forward_layer1_scale_missing': (17, {'forward.layer1.scale': 'A1 = A1 * D1'}),
    'forward_layer2_scale_missing': (17, {'forward.layer2.scale': 'A2 = A2 * D2'}),
    'forward_layer2_scale_multiplied': (17, {'forward.layer2.scale': 'A2 = A2 * keep_prob'}),
    'forward_layer1_scale_squared': (17, {'forward.layer1.scale': 'A1 = A1 / keep_prob / keep_prob'}),
    'forward_layer2_scale_complement': (17, {'forward.layer2.scale': 'A2 = A2 / (1 - keep_prob)'}),
    'backward_layer1_mask_missing': (18, {'backward.layer1.mask': 'dA1 = dA1 / keep_prob'}),
    'backward_layer2_scale_missing': (17, {'backward.layer2.scale': 'dA2 = dA2 * D2'}),
    'backward_layer1_scale_multiplied': (17, {'backward.layer1.scale': 'dA1 = dA1 * keep_prob'}),
    'backward_layer2_scale_squared': (17, {'backward.layer2.scale': 'dA2 = dA2 / keep_prob**2'}),
    'backward_layer1_scale_complement': (17, {'backward.layer1.scale': 'dA1 = dA1 / (1 - keep_prob)'}),
    'correct_list_masks_namedtuple_cache': (19, {}),
    'correct_float32_dropout_before_relu': (19, {}),
    'correct_pre_scaled_mask': (19, {}),
    'forward_layer2_mask_reused': (18, {'forward.layer2.mask': 'D2 = D1[:A2.shape[0]]'}),
    'forward_layer1_mask_not_random': (18, {'forward.layer1.mask': 'D1 = (D1 < keep_prob).astype(int)'}),
    'forward_layer1_mask_drops_everything': (18, {'forward.layer1.mask': 'D1 = (D1 < int(keep_prob)).astype(int)'}),
    'forward_cache_swapped': (18, {'forward.cache': 'cache = (Z1, A1, D1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)'}),
    'forward_input_dropout': (18, {'forward.cache': 'X = X * (np.random.rand(*X.shape) < keep_prob) / keep_prob'}),
    'backward_layer1_mask_from_activations': (18, {'backward.layer1.mask': 'dA1 = dA1 * (A1 > 0)'}),
    'backward_layer2_dropout_on_dZ': (18, {'backward.layer2.mask': 'dZ2 = np.multiply(dA2, np.int64(A2 > 0)) * D2 / keep_prob'}),
    'two_mistakes_forward_and_backward': (16, {'forward.layer1.mask': 'D1 = D1 > keep_prob', 'backward.layer2.scale': 'dA2 = dA2 * D2'}),
    'template_untouched': (0, {'forward.function': 'Z2 = np.dot(W2, A1) + b2', 'backward.function': 'dZ2 = np.multiply(dA2, np.int64(A2 > 0))'}),
    'raises_attribute_error': (8.5, {'forward.function': 'D1 = np.random.rnad(*A1.shape)'}),
    'backward_wrong_signature': (10.5, {'backward.function': 'def backward_propagation_with_dropout(cache, keep_prob):'}),
    'forward_returns_nothing': (8.5, {'forward.function': 'def forward_propagation_with_dropout(X, parameters, keep_prob=0.5):'}),
    'syntax_error_in_forward': (8.5, {'forward.function': 'A3 = sigmoid(Z3'}),
    'no_graded_functions': (0, {}),
}


def notebook_for(example: Example):
    cells = [new_markdown_cell(f"# Dropout assignment ({example.name.replace('_', ' ')})"),
             new_code_cell(IMPORTS)]
    for source in example.cells:
        cells.append(new_code_cell(source))
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "submissions"))
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    expected = {}
    for example in examples():
        nbformat.write(notebook_for(example), out / f"{example.name}.ipynb")
        score, at = PINNED[example.name]
        assert example.at.items() <= at.items(), example.name
        expected[example.name] = {"status": example.status, "findings": example.expected, "at": at,
                                  "score": score}
    (out / "unreadable.ipynb").write_text('{"cells": [{"cell_type": "code", "source": "trunc')
    expected["unreadable"] = {"status": "ungradable", "findings": {"notebook": "unreadable"}, "at": {}, "score": 0}
    (out / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")
    print(f"wrote {len(expected)} notebooks to {out}")


if __name__ == "__main__":
    main()
