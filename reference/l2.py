"""The maths of the L2-regularization exercise (the same notebook as dropout): the reference
solution, the probe inputs, and the wrong variants a student's values are compared with.

Nothing here runs student code, and the sandboxed child never imports this module: it is
the parent's answer key.

The network is LINEAR->RELU->LINEAR->RELU->LINEAR->SIGMOID without dropout. L2 regularization
adds to the cross-entropy cost J the penalty

    lambd / (2 * m) * (sum(W1**2) + sum(W2**2) + sum(W3**2))

and, since d/dW of lambd/(2m) * W**2 is lambd/m * W, each weight gradient gains lambd/m * W:

    dW = 1/m * dZ @ A_prev.T + lambd / m * W

The 1/2 in the cost is there so that the gradient has no 2; the 1/m puts the penalty on the
same per-example scale as the cross-entropy. Biases are not regularized.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from pydantic import Field

from dropout_grader.assignment import ProbeParameters

CACHE_KEYS = ("Z1", "A1", "W1", "b1", "Z2", "A2", "W2", "b2", "Z3", "A3", "W3", "b3")
GRADIENT_KEYS = ("dZ3", "dW3", "db3", "dA2", "dZ2", "dW2", "db2", "dA1", "dZ1", "dW1", "db1")
LAYERS = (3, 2, 1)  # as backward propagation meets them
FUNCTION_DIAGNOSES = ("not_found", "not_implemented", "signature", "error", "timeout", "memory",
                      "bad_return", "numpy_compat", "defined_twice")

# The steps a finding can name, and the diagnoses each can carry (stable ids, as DESIGN §4).
STEPS: dict[str, tuple[str, ...]] = {
    "cost.function": FUNCTION_DIAGNOSES,
    "cost.cross_entropy": ("wrong_value",),
    "cost.penalty.terms": ("missing", "weights_not_squared", "absolute_values", "layer_missing",
                           "biases_included", "wrong_value"),
    "cost.penalty.scale": ("missing_half", "missing_m", "missing_lambd", "squared_m",
                           "hardcoded_lambd", "wrong_value"),
    "backward.function": FUNCTION_DIAGNOSES,
    **{f"backward.layer{n}.dW.penalty": ("missing", "halved", "missing_m", "doubled",
                                         "hardcoded_lambd", "wrong_weights", "on_dZ", "on_db",
                                         "wrong_value")
       for n in LAYERS},
    "backward.gradients": ("wrong", "biases_regularized"),
}
NOTES = frozenset({"numpy_compat", "defined_twice", "not_assessed"})


def relu(Z):
    return np.maximum(0, Z)


def sigmoid(Z):
    return 1 / (1 + np.exp(-Z))


def cross_entropy(A3, Y) -> float:
    """The course's compute_cost: the mean over examples of the log loss (nansum, as theirs)."""
    m = Y.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        logprobs = np.multiply(-np.log(A3), Y) + np.multiply(-np.log(1 - A3), 1 - Y)
    return float(1.0 / m * np.nansum(logprobs))


def penalty(parameters, lambd: float, m: int) -> float:
    return lambd / (2 * m) * sum(float(np.sum(np.square(parameters[f"W{n}"]))) for n in (1, 2, 3))


def cost(A3, Y, parameters, lambd: float) -> float:
    return cross_entropy(A3, Y) + penalty(parameters, lambd, Y.shape[1])


def forward(X, parameters):
    """The plain forward pass; its cache is what the backward function is given."""
    W1, b1, W2, b2, W3, b3 = (parameters[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
    Z1 = W1 @ X + b1
    A1 = relu(Z1)
    Z2 = W2 @ A1 + b2
    A2 = relu(Z2)
    Z3 = W3 @ A2 + b3
    A3 = sigmoid(Z3)
    return A3, (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)


def backward(X, Y, cache, lambd: float) -> dict[str, np.ndarray]:
    Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3 = cache
    m = X.shape[1]
    dZ3 = A3 - Y
    dW3 = dZ3 @ A2.T / m + lambd / m * W3
    db3 = dZ3.sum(axis=1, keepdims=True) / m
    dA2 = W3.T @ dZ3
    dZ2 = dA2 * (A2 > 0)
    dW2 = dZ2 @ A1.T / m + lambd / m * W2
    db2 = dZ2.sum(axis=1, keepdims=True) / m
    dA1 = W2.T @ dZ2
    dZ1 = dA1 * (A1 > 0)
    dW1 = dZ1 @ X.T / m + lambd / m * W1
    db1 = dZ1.sum(axis=1, keepdims=True) / m
    return {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2, "dZ2": dZ2, "dW2": dW2,
            "db2": db2, "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}


# --- wrong variants -------------------------------------------------------------------
# The factor in front of the sum of squared weights in the cost, as a function of (lambd, m).
COST_SCALES: dict[str, callable] = {
    "ok": lambda lambd, m: lambd / (2 * m),
    "missing_half": lambda lambd, m: lambd / m,  # also what `lambd / m` in the cost gives
    "missing_m": lambda lambd, m: lambd / 2,
    "missing_lambd": lambda lambd, m: 1 / (2 * m),
    "squared_m": lambda lambd, m: lambd / (2 * m * m),
}
# The factor in front of W added to dW, as a function of (lambd, m).
GRADIENT_SCALES: dict[str, callable] = {
    "ok": lambda lambd, m: lambd / m,
    "halved": lambda lambd, m: lambd / (2 * m),  # the cost's factor, carried to the gradient
    "missing_m": lambda lambd, m: lambd,
    "doubled": lambda lambd, m: 2 * lambd / m,
}


def penalty_terms(parameters) -> dict[str, float]:
    """What students sum in the penalty, the correct sum first."""
    W = [parameters[f"W{n}"] for n in (1, 2, 3)]
    b = [parameters[f"b{n}"] for n in (1, 2, 3)]
    squares = [float(np.sum(np.square(w))) for w in W]
    terms = {"ok": sum(squares),
             "weights_not_squared": sum(float(np.sum(w)) for w in W),
             "absolute_values": sum(float(np.sum(np.abs(w))) for w in W),
             "biases_included": sum(squares) + sum(float(np.sum(np.square(x))) for x in b)}
    for n in (1, 2, 3):
        terms[f"layer_missing:{n}"] = sum(squares) - squares[n - 1]
    return terms


# --- probe inputs ---------------------------------------------------------------------
@dataclass(frozen=True)
class ProbeInputs:
    X: np.ndarray
    Y: np.ndarray
    parameters: dict[str, np.ndarray]
    lambd: float
    A3: np.ndarray
    cache: tuple

    # The reference's own numbers for this probe, the same for every student: computed on
    # first use and kept with the probe (the grader builds its probes once per run).
    @cached_property
    def cross_entropy(self) -> float:
        return cross_entropy(self.A3, self.Y)

    @cached_property
    def penalty_terms(self) -> dict[str, float]:
        return penalty_terms(self.parameters)


def make_probe(seed: int, layers: list[int], examples: int, lambd: float) -> ProbeInputs:
    """Inputs that separate the factors: widths unlike each other and unlike the number of
    examples (so misplaced terms raise instead of broadcasting), weights large enough that
    the penalty is a visible share of the cost, pre-activations mostly positive."""
    rng = np.random.default_rng(seed)
    n0, n1, n2, n3 = layers
    X = rng.uniform(-1.0, 1.0, size=(n0, examples))
    parameters = {
        "W1": rng.normal(0.0, 1.0, size=(n1, n0)),
        "b1": rng.uniform(0.2, 1.0, size=(n1, 1)),
        "W2": rng.normal(0.0, 1.0 / np.sqrt(n1), size=(n2, n1)),
        "b2": rng.uniform(0.2, 1.0, size=(n2, 1)),
        "W3": rng.normal(0.0, 1.0 / np.sqrt(n2), size=(n3, n2)),
        "b3": rng.uniform(-0.5, 0.5, size=(n3, 1)),
    }
    Y = (rng.uniform(size=(n3, examples)) < 0.5).astype(float)
    A3, cache = forward(X, parameters)
    return ProbeInputs(X=X, Y=Y, parameters=parameters, lambd=lambd, A3=A3, cache=cache)


# --- what the grader asks of an assignment module --------------------------------------
# The same helper modules the dropout exercise's notebook imports (reg_utils, testCases, ...).
STANDINS = Path(__file__).resolve().parent / "standins"
PLACEHOLDERS = frozenset({
    "layer", "lambd", "probe", "m", "expected", "observed", "factor", "expected_factor", "detail",
    "key", "term", "function", "arguments", "error", "limit", "count", "cells", "implied_lambd",
})

ARGUMENTS = {"cost": "A3, Y, parameters, lambd", "backward": "X, Y, cache, lambd"}
RETURNS = {
    "cost": "the cost, a number",
    "backward": "a dict of gradients with keys " + ", ".join(GRADIENT_KEYS),
}


def call_arguments(role: str, probe: ProbeInputs) -> list:
    if role == "cost":
        return [probe.A3, probe.Y, dict(probe.parameters), probe.lambd]
    return [probe.X, probe.Y, tuple(probe.cache), probe.lambd]


def check_return(role: str, returned: dict) -> str | None:
    kind = returned.get("type")
    if role == "cost":
        if kind == "array" and int(np.prod(returned.get("shape") or [1])) == 1:
            return None
        return _describe(returned)
    if kind != "dict":
        return _describe(returned)
    missing = [k for k in GRADIENT_KEYS if k not in returned.get("keys", {})]
    return f"a dict without the keys {', '.join(missing)}" if missing else None


def _describe(returned: dict) -> str:
    kind = returned.get("type")
    if kind == "array":
        return f"an array of shape {tuple(returned.get('shape', ()))}"
    if "length" in returned:
        return f"a {kind} of {returned['length']} items"
    return f"a {kind}"


def diagnose(role, probe, call, tolerance):
    """Observations for one call on one probe (see l2_diagnosis)."""
    from dropout_grader.reference.l2_diagnosis import diagnose as run

    return run(role, probe, call, tolerance.rtol, tolerance.atol)


# --- the assignment, as the grader's core sees it (dropout_grader.assignment.Assignment) ----
class L2Probe(ProbeParameters):
    """One probe of an L2 rubric: the network's widths, the examples, the regularization strength."""
    layers: list[int] = Field(min_length=4, max_length=4)
    examples: int = Field(ge=2, le=10_000)
    lambd: float = Field(ge=0, le=1000)


class L2Assignment:
    name = "l2"
    namespace = "l2"  # the notebook's other exercise: its ids read l2.cost..., l2.backward...
    roles = ("cost", "backward")
    steps = STEPS
    notes = NOTES
    placeholders = PLACEHOLDERS
    step_groups = {"layer": tuple(str(n) for n in LAYERS)}
    arguments = ARGUMENTS
    returns = RETURNS
    standins = STANDINS
    probe_model = L2Probe
    stream_check_roles = ()  # nothing random to check

    def check_probes(self, probes: list[L2Probe]) -> None:
        lambds = {p.lambd for p in probes}
        if 0 not in lambds:
            raise ValueError("probes: include a probe with lambd: 0, where a constant used in place of "
                             "lambd shows")
        if len(lambds - {0}) < 2:
            raise ValueError("probes: use at least two nonzero lambd values, so the factors separate")
        for p in probes:
            if p.examples in p.layers or p.examples == 2:
                raise ValueError(f"probes: {p.id}: choose a number of examples unlike every layer width "
                                 "(and not 2), so a term added in the wrong place raises instead of broadcasting")

    def make_probe(self, probe: L2Probe) -> ProbeInputs:
        return make_probe(probe.seed, probe.layers, probe.examples, probe.lambd)

    def call_arguments(self, role: str, inputs: ProbeInputs) -> list:
        return call_arguments(role, inputs)

    def probe_facts(self, probe: L2Probe) -> dict:
        return {"lambd": probe.lambd, "m": probe.examples}

    def student_names(self, role: str, parameters: tuple[str, ...]) -> dict[str, str]:
        return {}

    def check_return(self, role: str, returned: dict) -> str | None:
        return check_return(role, returned)

    def diagnose(self, role, inputs, call, tolerance):
        return diagnose(role, inputs, call, tolerance)

    def source_files(self) -> list[Path]:
        here = Path(__file__).resolve().parent
        return [here / "l2.py", here / "l2_diagnosis.py"] + sorted(STANDINS.rglob("*.py"))


ASSIGNMENT = L2Assignment()
