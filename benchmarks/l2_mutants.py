"""L2-regularization variants written the way students write them: correct ones in several
styles, and one per catalogue entry of reference/l2.py, each with the finding a correct
grader reports. Used by tests/test_l2.py and by the diagnosis benchmark.

Each variant is the source of a notebook cell defining `compute_cost_with_regularization` or
`backward_propagation_with_regularization`, with `expected` the (step, diagnosis) findings.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    name: str
    role: str  # "cost" | "backward"
    source: str
    expected: frozenset[tuple[str, str]]  # (step, diagnosis) of every wrong finding


COST_HEADER = '''import numpy as np

def compute_cost(a3, Y):
    m = Y.shape[1]
    logprobs = np.multiply(-np.log(a3), Y) + np.multiply(-np.log(1 - a3), 1 - Y)
    return 1. / m * np.nansum(logprobs)

'''

COST_TEMPLATE = COST_HEADER + '''def compute_cost_with_regularization(A3, Y, parameters, lambd):
    m = Y.shape[1]
    W1 = parameters["W1"]
    W2 = parameters["W2"]
    W3 = parameters["W3"]
    cross_entropy_cost = {cross_entropy}
    L2_regularization_cost = {penalty}
    cost = cross_entropy_cost + L2_regularization_cost
    return cost
'''

SQUARES = "(np.sum(np.square(W1)) + np.sum(np.square(W2)) + np.sum(np.square(W3)))"


def _cost(name: str, penalty: str, expected=(), cross_entropy: str = "compute_cost(A3, Y)") -> Variant:
    return Variant(name, "cost", COST_TEMPLATE.format(cross_entropy=cross_entropy, penalty=penalty),
                   frozenset(expected))


COSTS = [
    _cost("cost_correct", f"lambd / (2 * m) * {SQUARES}"),
    _cost("cost_correct_loop", "lambd / (2 * m) * sum(np.sum(parameters['W' + str(l)] ** 2) for l in range(1, 4))"),
    _cost("cost_correct_norm", "(lambd / (2 * m)) * (np.linalg.norm(W1) ** 2 + np.linalg.norm(W2) ** 2 + np.linalg.norm(W3) ** 2)"),
    _cost("cost_correct_float32", f"np.float32(lambd / (2 * m) * {SQUARES})"),
    _cost("cost_missing_half", f"lambd / m * {SQUARES}", [("cost.penalty.scale", "missing_half")]),
    _cost("cost_missing_m", f"lambd / 2 * {SQUARES}", [("cost.penalty.scale", "missing_m")]),
    _cost("cost_missing_lambd", f"1 / (2 * m) * {SQUARES}", [("cost.penalty.scale", "missing_lambd")]),
    _cost("cost_squared_m", f"lambd / (2 * m * m) * {SQUARES}", [("cost.penalty.scale", "squared_m")]),
    _cost("cost_hardcoded_lambd", f"0.7 / (2 * m) * {SQUARES}", [("cost.penalty.scale", "hardcoded_lambd")]),
    _cost("cost_not_squared", "lambd / (2 * m) * (np.sum(W1) + np.sum(W2) + np.sum(W3))",
          [("cost.penalty.terms", "weights_not_squared")]),
    _cost("cost_absolute", "lambd / (2 * m) * (np.sum(np.abs(W1)) + np.sum(np.abs(W2)) + np.sum(np.abs(W3)))",
          [("cost.penalty.terms", "absolute_values")]),
    _cost("cost_layer3_missing", "lambd / (2 * m) * (np.sum(np.square(W1)) + np.sum(np.square(W2)))",
          [("cost.penalty.terms", "layer_missing")]),
    _cost("cost_biases_included", "lambd / (2 * m) * sum(np.sum(np.square(v)) for v in parameters.values())",
          [("cost.penalty.terms", "biases_included")]),
    _cost("cost_penalty_missing", "0", [("cost.penalty.terms", "missing")]),
    _cost("cost_cross_entropy_summed", f"lambd / (2 * m) * {SQUARES}",
          [("cost.cross_entropy", "wrong_value")], cross_entropy="compute_cost(A3, Y) * m"),
    _cost("cost_two_mistakes", "lambd / m * (np.sum(W1) + np.sum(W2) + np.sum(W3))",
          [("cost.penalty.scale", "missing_half"), ("cost.penalty.terms", "weights_not_squared")]),
]

BACKWARD_TEMPLATE = '''import numpy as np

def backward_propagation_with_regularization(X, Y, cache, lambd):
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache
    dZ3 = A3 - Y{dZ3_extra}
    dW3 = 1. / m * np.dot(dZ3, A2.T){pen3}
    db3 = 1. / m * np.sum(dZ3, axis=1, keepdims=True){db3_extra}
    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1. / m * np.dot(dZ2, A1.T){pen2}
    db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True)
    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1. / m * np.dot(dZ1, X.T){pen1}
    db1 = 1. / m * np.sum(dZ1, axis=1, keepdims=True)
    return {{"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2, "dZ2": dZ2, "dW2": dW2, "db2": db2,
            "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}}
'''


def _backward(name: str, expected=(), dZ3_extra: str = "", db3_extra: str = "", **penalties) -> Variant:
    pens = {f"pen{n}": penalties.get(f"pen{n}", f" + lambd / m * W{n}") for n in (1, 2, 3)}
    return Variant(name, "backward", BACKWARD_TEMPLATE.format(dZ3_extra=dZ3_extra, db3_extra=db3_extra, **pens),
                   frozenset(expected))


BACKWARDS = [
    _backward("backward_correct"),
    _backward("backward_correct_factored", pen3=" + (lambd / m) * W3", pen2=" + W2 * lambd / m",
              pen1=" + np.multiply(lambd / m, W1)"),
    _backward("backward_layer3_missing", [("backward.layer3.dW.penalty", "missing")], pen3=""),
    _backward("backward_layer1_halved", [("backward.layer1.dW.penalty", "halved")], pen1=" + lambd / (2 * m) * W1"),
    _backward("backward_layer2_missing_m", [("backward.layer2.dW.penalty", "missing_m")], pen2=" + lambd * W2"),
    _backward("backward_layer2_doubled", [("backward.layer2.dW.penalty", "doubled")], pen2=" + 2 * lambd / m * W2"),
    _backward("backward_layer1_hardcoded", [("backward.layer1.dW.penalty", "hardcoded_lambd")],
              pen1=" + 0.7 / m * W1"),
    _backward("backward_layer3_on_db", [("backward.layer3.dW.penalty", "on_db")], pen3="",
              db3_extra=" + lambd / m * b3"),
    _backward("backward_biases_regularized", [("backward.gradients", "biases_regularized")],
              db3_extra=" + lambd / m * b3"),
    _backward("backward_layer3_on_dZ", [("backward.layer3.dW.penalty", "on_dZ")], pen3="",
              dZ3_extra=" + lambd / m * np.sum(W3)"),
]

VARIANTS = COSTS + BACKWARDS
