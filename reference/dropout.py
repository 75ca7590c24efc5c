"""The maths of the inverted-dropout assignment: the reference solution, the probe inputs,
and the wrong variants that a student's intermediate values are compared with.

Nothing here runs student code, and the sandboxed child never imports this module: it is
the parent's answer key.

The network is LINEAR->RELU->LINEAR->RELU->LINEAR->SIGMOID with dropout on both hidden
layers. Inverted dropout on a hidden activation A with keep probability k is

    D = rand(*A.shape) < k      # mask: keep each unit with probability k
    A = A * D                   # apply: shut the dropped units down
    A = A / k                   # scale: keep E[A] what it is at test time

and since the forward function carries the factor D/k, so does its derivative: dA = dA * D / k.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

CACHE_KEYS = ("Z1", "D1", "A1", "W1", "b1", "Z2", "D2", "A2", "W2", "b2", "Z3", "A3", "W3", "b3")
GRADIENT_KEYS = ("dZ3", "dW3", "db3", "dA2", "dZ2", "dW2", "db2", "dA1", "dZ1", "dW1", "db1")
HIDDEN_LAYERS = (1, 2)

# The steps a finding can name, and the diagnoses each step can carry (DESIGN.md §4).
# The rubric gives each step its points and each diagnosis its message.
STEPS: dict[str, tuple[str, ...]] = {
    "forward.function": ("not_found", "not_implemented", "signature", "error", "timeout",
                         "memory", "bad_return", "numpy_compat", "defined_twice"),
    **{
        f"forward.layer{n}.{part}": diagnoses
        for n in HIDDEN_LAYERS
        for part, diagnoses in (
            ("mask", ("threshold_reversed", "gaussian", "not_binary", "wrong_shape",
                      "hardcoded_keep_prob", "keep_rate", "missing", "different_stream",
                      "reused", "not_random", "pre_scaled")),
            ("apply", ("missing", "wrong_mask")),
            ("scale", ("missing", "multiplied", "squared", "complement", "hardcoded_keep_prob",
                       "wrong_value")),
            ("propagate", ("stale", "wrong_value")),
        )
    },
    "forward.output": ("dropout_applied", "wrong_value"),
    "forward.cache": ("stale_activation", "malformed", "wrong_value", "input_dropout"),
    "backward.function": ("not_found", "not_implemented", "signature", "error", "timeout",
                          "memory", "bad_return", "numpy_compat", "defined_twice"),
    "backward.output": ("dropout_applied",),
    **{
        f"backward.layer{n}.{part}": diagnoses
        for n in (2, 1)
        for part, diagnoses in (
            ("mask", ("missing", "wrong_mask", "regenerated", "from_activations", "applied_to_dZ")),
            ("scale", ("missing", "multiplied", "squared", "complement", "hardcoded_keep_prob",
                       "wrong_value")),
        )
    },
    "backward.gradients": ("wrong",),
}

# Diagnoses that are valid code done another way: reported as notes, never as faults.
NOTES = frozenset({"different_stream", "numpy_compat", "defined_twice", "not_assessed", "pre_scaled"})

# Roles whose first probe is run a second time with every random stream keyed differently
# (grader/sandbox/recorder.py): a mask that does not change is not drawn from the stream.
STREAM_CHECK_ROLES = ("forward",)


def relu(Z: np.ndarray) -> np.ndarray:
    return np.maximum(0, Z)


def sigmoid(Z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-Z))


def forward(X, parameters, keep_prob, D1, D2):
    """The reference forward pass with given masks (so the grader controls the randomness)."""
    W1, b1, W2, b2, W3, b3 = (parameters[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
    Z1 = W1 @ X + b1
    A1 = relu(Z1) * D1 / keep_prob
    Z2 = W2 @ A1 + b2
    A2 = relu(Z2) * D2 / keep_prob
    Z3 = W3 @ A2 + b3
    A3 = sigmoid(Z3)
    return A3, (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)


def backward(X, Y, cache, keep_prob) -> dict[str, np.ndarray]:
    """The reference backward pass: the gradients of `forward` for the cached masks."""
    Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3 = cache
    m = X.shape[1]
    dZ3 = A3 - Y
    dW3 = dZ3 @ A2.T / m
    db3 = dZ3.sum(axis=1, keepdims=True) / m
    dA2 = (W3.T @ dZ3) * D2 / keep_prob
    dZ2 = dA2 * (A2 > 0)
    dW2 = dZ2 @ A1.T / m
    db2 = dZ2.sum(axis=1, keepdims=True) / m
    dA1 = (W2.T @ dZ2) * D1 / keep_prob
    dZ1 = dA1 * (A1 > 0)
    dW1 = dZ1 @ X.T / m
    db1 = dZ1.sum(axis=1, keepdims=True) / m
    return {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2, "dZ2": dZ2, "dW2": dW2,
            "db2": db2, "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}


# --- wrong variants -------------------------------------------------------------------
# Each scale variant is the factor a student's code multiplies the masked values by, as a
# function of keep_prob. Order matters only where two coincide, which the rubric's probes
# avoid by never using keep_prob = 0.5.
SCALE_VARIANTS: dict[str, callable] = {
    "ok": lambda k: 1 / k,
    "missing": lambda k: 1.0,
    "multiplied": lambda k: k,
    "squared": lambda k: 1 / k**2,
    "complement": lambda k: 1 / (1 - k),
}

# How the mask was applied: the student's own mask, none, or the other layer's mask.
APPLY_VARIANTS = ("ok", "missing", "wrong_mask")


def masked(values: np.ndarray, apply: str, own_mask, other_mask):
    """`values` with the mask applied as the `apply` variant says, or None if it cannot be."""
    if apply == "ok":
        mask = own_mask
    elif apply == "wrong_mask":
        mask = other_mask
    else:
        return values
    if mask is None:
        return None
    try:
        return values * mask
    except ValueError:  # shapes do not broadcast: this variant cannot be what they did
        return None


# --- probe inputs ---------------------------------------------------------------------
@dataclass(frozen=True)
class ProbeInputs:
    """What one probe passes to the student's functions, and the grader's own masks for
    the cache the backward function is graded on."""
    X: np.ndarray
    Y: np.ndarray
    parameters: dict[str, np.ndarray]
    keep_prob: float
    cache: tuple  # built by the reference with the grader's masks, never the student's


def make_probe(seed: int, layers: list[int], examples: int, keep_prob: float) -> ProbeInputs:
    """Inputs that make faults distinguishable: positive-leaning pre-activations so that
    masks are visible, distinct layer widths unless the rubric asks for equal ones."""
    rng = np.random.default_rng(seed)
    n0, n1, n2, n3 = layers
    X = rng.uniform(-1.0, 1.0, size=(n0, examples))
    parameters = {
        "W1": rng.normal(0.0, 1.0 / np.sqrt(n0), size=(n1, n0)),
        "b1": rng.uniform(0.5, 1.5, size=(n1, 1)),
        "W2": rng.normal(0.0, 1.0 / np.sqrt(n1), size=(n2, n1)),
        "b2": rng.uniform(0.5, 1.5, size=(n2, 1)),
        "W3": rng.normal(0.0, 1.0 / np.sqrt(n2), size=(n3, n2)),
        "b3": rng.uniform(-0.5, 0.5, size=(n3, 1)),
    }
    Y = (rng.uniform(size=(n3, examples)) < 0.5).astype(float)
    D1 = (rng.uniform(size=(n1, examples)) < keep_prob).astype(float)
    D2 = (rng.uniform(size=(n2, examples)) < keep_prob).astype(float)
    _, cache = forward(X, parameters, keep_prob, D1, D2)
    return ProbeInputs(X=X, Y=Y, parameters=parameters, keep_prob=keep_prob, cache=cache)


# --- what the grader asks of an assignment module --------------------------------------
# Where the sandboxed child finds its stand-ins for the course's helper modules. Kept apart
# from this file so that whatever the child may read, the answer key is not among them.
STANDINS = Path(__file__).resolve().parent / "standins"

# Placeholders the rubric's messages may use: evidence the diagnosis measures, and the
# function-level facts the grader supplies.
PLACEHOLDERS = frozenset({
    "layer", "keep_prob", "probe", "keep_rate", "entries", "draw", "threshold", "shape",
    "expected_shape", "detail", "factor", "divisor", "ratio", "kept_entries", "key", "keys",
    "function", "arguments", "error", "limit", "expected", "count", "cells", "dropped_nonzero",
    "kp",
})

# How each function is called: positional arguments built from a probe's inputs.
RETURNS = {
    "forward": "a tuple (A3, cache) with cache the 14-tuple (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)",
    "backward": "a dict of gradients with keys " + ", ".join(GRADIENT_KEYS),
}


ARGUMENTS = {"forward": "X, parameters, keep_prob", "backward": "X, Y, cache, keep_prob"}


def student_names(role: str, parameters: tuple[str, ...]) -> dict[str, str]:
    """The student's own names for the template's parameters, for messages: `kp` is what
    they call keep_prob (called positionally, any name works)."""
    position = len(ARGUMENTS[role].split(", ")) - 1
    name = parameters[position] if len(parameters) > position else "keep_prob"
    return {"kp": name}


def check_return(role: str, returned: dict) -> str | None:
    """What is wrong with the shape of a returned value (described by the sandbox), if anything."""
    kind = returned.get("type")
    if role == "forward":
        if kind not in ("tuple", "list", "namedtuple", "sequence") or returned.get("length") != 2:
            return _describe(returned)
        first, second = (returned.get("items") or [{}, {}])[:2]
        if first.get("length") == len(CACHE_KEYS) and second.get("type") == "array":
            return f"a {kind} (cache, A3), in the other order"
        return None
    if kind != "dict":
        return _describe(returned)
    missing = [k for k in GRADIENT_KEYS if k not in returned.get("keys", {})]
    if missing:
        return f"a dict without the keys {', '.join(missing)}"
    return None


def _describe(returned: dict) -> str:
    kind = returned.get("type")
    if kind == "array":
        shape = tuple(returned.get("shape", ()))
        return f"an array of shape {shape}" if shape else "a single number"
    if kind == "dict":
        return f"a dict with keys {', '.join(list(returned.get('keys') or {})[:16])}"
    if "length" in returned:
        return f"a {kind} of {returned['length']} items"
    return "None" if kind == "None" else f"a {returned.get('class', kind)}"


def call_arguments(role: str, probe: ProbeInputs) -> list:
    if role == "forward":
        return [probe.X, dict(probe.parameters), probe.keep_prob]
    return [probe.X, probe.Y, tuple(probe.cache), probe.keep_prob]


def diagnose(role, probe, call, tolerance):
    """Observations for one call on one probe (see dropout_diagnosis)."""
    from dropout_grader.reference.dropout_diagnosis import Tolerance, diagnose as run

    return run(role, probe, call, Tolerance(tolerance.rtol, tolerance.atol))
