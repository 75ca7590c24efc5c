"""A mutant corpus for the diagnosis benchmark: every catalogue entry in both hidden layers,
written in several coding styles, pairs of mistakes in one notebook, and correct solutions
written differently. Each mutant knows the findings a correct grader reports and the notebook
line each wrong finding must point at.

All code here is written for this project (no course material).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import make_submissions as examples  # noqa: E402 - the example class's template is style one

IMPORTS = "import numpy as np\nfrom reg_utils import relu, sigmoid\n"
NOTE_DIAGNOSES = {"numpy_compat", "different_stream", "defined_twice"}


@dataclass
class Layer:
    """The dropout lines of one hidden layer (forward) in a style's own words. A line set to
    None is deleted. `a` and `d` are the style's names for the activation and the mask."""
    draw: str | None
    threshold: str | None
    apply: str | None
    scale: str | None


@dataclass
class BackLayer:
    mask: str | None
    scale: str | None


@dataclass
class Style:
    name: str
    a: str  # activation name pattern, "{n}" is the layer
    d: str  # mask name pattern
    da: str
    forward: str  # template with {layer1} {layer2} and names filled in
    backward: str  # template with {layer1} {layer2}
    layer: callable  # n -> Layer (the correct lines)
    back_layer: callable  # n -> BackLayer
    helpers: bool = False  # the layer lines live in helper functions in their own cells

    def names(self, n: int) -> dict[str, str]:
        return {"A": self.a.format(n=n), "D": self.d.format(n=n), "dA": self.da.format(n=n),
                "Do": self.d.format(n=3 - n), "n": str(n)}


# --- the styles ---------------------------------------------------------------------------
FORWARD_2 = '''\
def forward_propagation_with_dropout(X, params, kp):
    w1, c1, w2, c2, w3, c3 = (params[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
    z1 = w1 @ X + c1
    a1 = np.maximum(z1, 0)
{layer1}
    z2 = w2 @ a1 + c2
    a2 = np.maximum(z2, 0)
{layer2}
    z3 = w3 @ a2 + c3
    out = 1 / (1 + np.exp(-z3))
    return out, (z1, keep1, a1, w1, c1, z2, keep2, a2, w2, c2, z3, out, w3, c3)
'''

BACKWARD_2 = '''\
def backward_propagation_with_dropout(X, Y, cache, kp):
    z1, keep1, a1, w1, c1, z2, keep2, a2, w2, c2, z3, out, w3, c3 = cache
    n = X.shape[1]
    g3 = out - Y
    grads = {"dZ3": g3, "dW3": g3 @ a2.T / n, "db3": g3.sum(axis=1, keepdims=True) / n}
    da2 = w3.T @ g3
{layer2}
    g2 = da2 * (a2 > 0)
    grads.update(dA2=da2, dZ2=g2, dW2=g2 @ a1.T / n, db2=g2.sum(axis=1, keepdims=True) / n)
    da1 = w2.T @ g2
{layer1}
    g1 = da1 * (a1 > 0)
    grads.update(dA1=da1, dZ1=g1, dW1=g1 @ X.T / n, db1=g1.sum(axis=1, keepdims=True) / n)
    return grads
'''

FORWARD_3 = '''\
def forward_propagation_with_dropout(X, parameters, keep_prob=0.5):
    np.random.seed(1)
    W1, b1 = parameters["W1"], parameters["b1"]
    W2, b2 = parameters["W2"], parameters["b2"]
    W3, b3 = parameters["W3"], parameters["b3"]
    Z1 = np.dot(W1, X) + b1
    A1, D1 = layer1_dropout(relu(Z1), keep_prob)
    Z2 = np.dot(W2, A1) + b2
    A2, D2 = layer2_dropout(relu(Z2), keep_prob)
    Z3 = np.dot(W3, A2) + b3
    A3 = sigmoid(Z3)
    cache = (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)
    return A3, cache
'''

HELPER_3 = '''\
def layer{n}_dropout(a, keep_prob):
    """Inverted dropout for hidden layer {n}: returns the new activations and the mask."""
{L}
    return a, d
'''

BACKWARD_3 = '''\
def backward_propagation_with_dropout(X, Y, cache, keep_prob):
    m = X.shape[1]
    (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3) = cache
    dZ3 = A3 - Y
    dW3 = np.dot(dZ3, A2.T) / m
    db3 = np.sum(dZ3, axis=1, keepdims=True) / m
    dA2 = layer2_undo(np.dot(W3.T, dZ3), D2, D1, keep_prob)
    dZ2 = dA2 * (A2 > 0)
    dW2 = np.dot(dZ2, A1.T) / m
    db2 = np.sum(dZ2, axis=1, keepdims=True) / m
    dA1 = layer1_undo(np.dot(W2.T, dZ2), D1, D2, keep_prob)
    dZ1 = dA1 * (A1 > 0)
    dW1 = np.dot(dZ1, X.T) / m
    db1 = np.sum(dZ1, axis=1, keepdims=True) / m
    return {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2, "dZ2": dZ2, "dW2": dW2,
            "db2": db2, "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}
'''

BACK_HELPER_3 = '''\
def layer{n}_undo(da, d, d_other, keep_prob):
    """Backward through layer {n}'s dropout."""
{B}
    return da
'''

FORWARD_4 = '''\
def forward_propagation_with_dropout(X, parameters, keep_prob=0.5):
    m = X.shape[1]
    W1, b1 = parameters["W1"], parameters["b1"]
    W2, b2 = parameters["W2"], parameters["b2"]
    W3, b3 = parameters["W3"], parameters["b3"]
    # both masks first
    {draw1}
    {draw2}
    {threshold1}
    {threshold2}
    Z1 = W1.dot(X) + b1
    A1 = np.maximum(Z1, 0)
{layer1}
    Z2 = W2.dot(A1) + b2
    A2 = np.maximum(Z2, 0)
{layer2}
    Z3 = W3.dot(A2) + b3
    A3 = 1 / (1 + np.exp(-Z3))
    return A3, (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)
'''

STYLES = [
    Style("template", "A{n}", "D{n}", "dA{n}", examples.FORWARD, examples.BACKWARD,
          lambda n: Layer(f"D{n} = np.random.rand(A{n}.shape[0], A{n}.shape[1])",
                          f"D{n} = (D{n} < keep_prob).astype(int)",
                          f"A{n} = A{n} * D{n}", f"A{n} = A{n} / keep_prob"),
          lambda n: BackLayer(f"dA{n} = dA{n} * D{n}", f"dA{n} = dA{n} / keep_prob")),
    Style("renamed_numpy_calls", "a{n}", "keep{n}", "da{n}", FORWARD_2, BACKWARD_2,
          lambda n: Layer(f"keep{n} = np.random.rand(*a{n}.shape)", f"keep{n} = keep{n} < kp",
                          f"a{n} = np.multiply(a{n}, keep{n})", f"a{n} /= kp"),
          lambda n: BackLayer(f"da{n} = np.multiply(da{n}, keep{n})", f"da{n} = np.divide(da{n}, kp)")),
    Style("helpers_in_other_cells", "a", "d", "da", FORWARD_3, BACKWARD_3,
          lambda n: Layer("d = np.random.rand(a.shape[0], a.shape[1])", "d = d < keep_prob",
                          "a = a * d", "a = a / keep_prob"),
          lambda n: BackLayer("da = da * d", "da = da / keep_prob"), helpers=True),
    Style("masks_up_front_in_place", "A{n}", "D{n}", "dA{n}", FORWARD_4, examples.BACKWARD,
          lambda n: Layer(f"D{n} = np.random.rand(W{n}.shape[0], m)", f"D{n} = D{n} < keep_prob",
                          f"A{n} *= D{n}", f"A{n} /= keep_prob"),
          lambda n: BackLayer(f"dA{n} *= D{n}", f"dA{n} /= keep_prob")),
]


# --- mutations ------------------------------------------------------------------------------
@dataclass
class Mutation:
    """One catalogue entry in one layer: how to change the lines, what is expected, and which
    line the finding must point at (a slot name, or literal code)."""
    step: str
    diagnosis: str
    forward: dict | None = None  # slot -> new line (None deletes)
    backward: dict | None = None
    at: str | None = None  # slot whose (final) line the finding points at
    at_code: str | None = None  # or the exact code line
    also: dict[str, str] = field(default_factory=dict)  # other findings it causes by design
    replace: tuple[str, str] | None = None  # a textual edit of the rendered forward/backward


def keep_prob_name(style: Style) -> str:
    return "kp" if style.name == "renamed_numpy_calls" else "keep_prob"


def forward_mutations(style: Style, n: int) -> list[Mutation]:
    names = style.names(n)
    A, D = names["A"], names["D"]
    kp = keep_prob_name(style)
    shape = f"{A}.shape[0], {A}.shape[1]" if style.name != "masks_up_front_in_place" else f"W{n}.shape[0], m"
    L = f"forward.layer{n}"
    return [
        Mutation(f"{L}.mask", "threshold_reversed", {"threshold": f"{D} = {D} > {kp}"}, at="threshold"),
        Mutation(f"{L}.mask", "gaussian", {"draw": f"{D} = np.random.randn({shape})"}, at="threshold"),
        Mutation(f"{L}.mask", "not_binary", {"threshold": None}, at="draw"),
        Mutation(f"{L}.mask", "wrong_shape", {"draw": f"{D} = np.random.rand({shape.split(',')[0]}, 1)"}, at="threshold"),
        Mutation(f"{L}.mask", "hardcoded_keep_prob", {"threshold": f"{D} = {D} < 0.75"}, at="threshold"),
        Mutation(f"{L}.mask", "missing", {"draw": f"{D} = np.ones(({shape}))", "threshold": None}, at="draw",
                 also={f"{L}.apply": "not_assessed"}),
        Mutation(f"{L}.apply", "missing", {"apply": None}, at="scale"),
        Mutation(f"{L}.scale", "missing", {"scale": None}, at="apply"),
        Mutation(f"{L}.scale", "multiplied", {"scale": f"{A} = {A} * {kp}"}, at="scale"),
        Mutation(f"{L}.scale", "squared", {"scale": f"{A} = {A} / {kp} ** 2"}, at="scale"),
        Mutation(f"{L}.scale", "complement", {"scale": f"{A} = {A} / (1 - {kp})"}, at="scale"),
        Mutation(f"{L}.scale", "hardcoded_keep_prob", {"scale": f"{A} = {A} / 0.75"}, at="scale"),
    ]


def backward_mutations(style: Style, n: int) -> list[Mutation]:
    names = style.names(n)
    dA = names["dA"]
    kp = keep_prob_name(style)
    L = f"backward.layer{n}"
    return [
        Mutation(f"{L}.mask", "missing", backward={"mask": None}, at="scale"),
        Mutation(f"{L}.mask", "regenerated", backward={
            "mask": f"{dA} = {dA} * (np.random.rand(*{dA}.shape) < {kp})"}, at="mask"),
        Mutation(f"{L}.scale", "missing", backward={"scale": None}, at="mask"),
        Mutation(f"{L}.scale", "multiplied", backward={"scale": f"{dA} = {dA} * {kp}"}, at="scale"),
        Mutation(f"{L}.scale", "squared", backward={"scale": f"{dA} = {dA} / {kp} / {kp}"}, at="scale"),
        Mutation(f"{L}.scale", "complement", backward={"scale": f"{dA} = {dA} / (1 - {kp})"}, at="scale"),
        Mutation(f"{L}.scale", "hardcoded_keep_prob", backward={"scale": f"{dA} = {dA} / 0.75"}, at="scale"),
    ]


def up_front_only_mutations() -> list[Mutation]:
    """A swapped mask in the forward pass needs both masks drawn before the layers; on unequal
    widths it raises, on the equal-width probe it shows."""
    return [
        Mutation("forward.layer1.apply", "wrong_mask", {"apply": "A1 *= D2"}, at="apply",
                 also={"forward.function": "error"}),
        Mutation("forward.layer2.apply", "wrong_mask", {"apply": "A2 *= D1"}, at="apply",
                 also={"forward.function": "error"}),
    ]


def template_only_mutations() -> list[Mutation]:
    """Entries that are about the whole function or its wiring, in the template style."""
    return [
        Mutation("forward.layer2.apply", "wrong_mask",
                 replace=("A2 = A2 * D2", "Dx = D1 if D1.shape == A2.shape else D2\n    A2 = A2 * Dx"), at_code="A2 = A2 * Dx"),
        Mutation("forward.layer1.propagate", "stale", replace=("Z2 = np.dot(W2, A1) + b2", "Z2 = np.dot(W2, relu(Z1)) + b2"),
                 at_code="Z2 = np.dot(W2, relu(Z1)) + b2"),
        Mutation("forward.layer2.propagate", "stale", replace=("Z3 = np.dot(W3, A2) + b3", "Z3 = np.dot(W3, relu(Z2)) + b3"),
                 at_code="Z3 = np.dot(W3, relu(Z2)) + b3"),
        Mutation("forward.output", "dropout_applied", replace=(
            "A3 = sigmoid(Z3)", "A3 = sigmoid(Z3) * (np.random.rand(*Z3.shape) < keep_prob) / keep_prob"),
            at_code="A3 = sigmoid(Z3) * (np.random.rand(*Z3.shape) < keep_prob) / keep_prob"),
        Mutation("forward.cache", "stale_activation", replace=(
            "    Z2 = np.dot(W2, A1) + b2\n    A2 = relu(Z2)\n",
            "    A1_kept = A1\n    A1 = relu(Z1)\n    Z2 = np.dot(W2, A1_kept) + b2\n    A2 = relu(Z2)\n"),
            at_code="A1 = relu(Z1)"),
        Mutation("forward.cache", "malformed", replace=(
            "cache = (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)", "cache = (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)"),
            at_code="cache = (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)"),  # the cache's own line
        Mutation("backward.layer2.mask", "wrong_mask", backward={"mask": "dA2 = dA2 * D1"}, at="mask",
                 also={"backward.function": "error"}),
        Mutation("backward.layer1.mask", "wrong_mask", backward={"mask": "dA1 = dA1 * D2"}, at="mask",
                 also={"backward.function": "error"}),
        Mutation("backward.output", "dropout_applied", replace=("dZ3 = A3 - Y", "dZ3 = (A3 - Y) / keep_prob"),
                 at_code="dZ3 = (A3 - Y) / keep_prob"),
        Mutation("backward.gradients", "wrong", replace=("dW2 = 1. / m * np.dot(dZ2, A1.T)", "dW2 = np.dot(dZ2, A1.T)"),
                 at_code="dW2 = np.dot(dZ2, A1.T)"),
        Mutation("backward.gradients", "wrong", replace=("db1 = 1. / m * np.sum(dZ1, axis=1, keepdims=True)",
                                                         "db1 = np.sum(dZ1, axis=1, keepdims=True)"),
                 at_code="db1 = np.sum(dZ1, axis=1, keepdims=True)"),
        Mutation("forward.function", "not_implemented", replace=("    D1 = np.random.rand(A1.shape[0], A1.shape[1])\n",
                                                                 "    ### START CODE HERE ###\n    D1 = None\n    ### END CODE HERE ###\n"),
                 at_code="D1 = (D1 < keep_prob).astype(int)"),
        Mutation("forward.function", "error", replace=("np.random.rand(A1.shape[0], A1.shape[1])", "np.random.rand(A1.shape[0], A1.shape[2])"),
                 at_code="D1 = np.random.rand(A1.shape[0], A1.shape[2])"),
        Mutation("forward.function", "bad_return", replace=("return A3, cache", "return A3"),
                 at_code="def forward_propagation_with_dropout(X, parameters, keep_prob=0.5):"),
        Mutation("backward.function", "signature", replace=("(X, Y, cache, keep_prob)", "(X, Y, cache)"),
                 at_code="def backward_propagation_with_dropout(X, Y, cache):"),
        Mutation("forward.function", "numpy_compat", replace=(".astype(int)", ".astype(np.int)")),
    ]


# --- notebooks --------------------------------------------------------------------------------
@dataclass
class Mutant:
    name: str
    cells: list[str]  # code cells (the first is the imports)
    expected: dict[str, str]  # step -> diagnosis of every finding that is not plain ok
    at: dict[str, str]  # step -> the code line the finding must point at
    correct: bool = False
    family: str = ""  # the class of failure (issue 10 variants), for the benchmark's rows


def _render_lines(lines: list[str | None], indent: str = "    ") -> str:
    return "\n".join(indent + line for line in lines if line is not None)


def build(style: Style, forward_changes: dict[int, dict] | None = None,
          backward_changes: dict[int, dict] | None = None) -> tuple[list[str], dict[tuple, str]]:
    """Cells for a style with per-layer slot changes; also the final text of every slot, so a
    mutation can say which line its finding points at."""
    forward_changes = forward_changes or {}
    backward_changes = backward_changes or {}
    slots: dict[tuple, str] = {}
    cells: list[str] = [IMPORTS]
    layers = {}
    for n in (1, 2):
        base = style.layer(n).__dict__.copy()
        base.update(forward_changes.get(n, {}))
        layers[n] = base
        back = style.back_layer(n).__dict__.copy()
        back.update(backward_changes.get(n, {}))
        for slot, line in list(base.items()):
            slots[("forward", n, slot)] = line
        for slot, line in back.items():
            slots[("backward", n, slot)] = line
        layers[(n, "back")] = back
    if style.name == "masks_up_front_in_place":
        fill = {f"draw{n}": layers[n]["draw"] or "pass" for n in (1, 2)}
        fill.update({f"threshold{n}": layers[n]["threshold"] or "pass" for n in (1, 2)})
        forward = FORWARD_4
        for key, value in fill.items():
            forward = forward.replace("{" + key + "}", value)
        forward = examples.fill(forward, *(_render_lines([layers[n]["apply"], layers[n]["scale"]]) for n in (1, 2)))
    elif style.helpers:
        for n in (1, 2):
            lines = [layers[n][s] for s in ("draw", "threshold", "apply", "scale")]
            cells.append(HELPER_3.replace("{n}", str(n)).replace("{L}", _render_lines(lines)))
        forward = style.forward
    else:
        forward = examples.fill(style.forward, *(_render_lines([layers[n][s] for s in (
            "draw", "threshold", "apply", "scale")]) for n in (1, 2)))
    cells.append(forward)
    cells.append("X_t = np.ones((2, 3))\nprint('checked the shapes')")
    if style.helpers:
        for n in (1, 2):
            back = layers[(n, "back")]
            cells.append(BACK_HELPER_3.replace("{n}", str(n)).replace("{B}", _render_lines([back["mask"], back["scale"]])))
        backward = style.backward
    else:
        backward = examples.fill(style.backward, *(_render_lines([layers[(n, "back")]["mask"], layers[(n, "back")]["scale"]])
                                                   for n in (1, 2)))
    cells.append(backward)
    return cells, slots


def _expected_line(style: Style, mutation: Mutation, slots, n: int, role: str) -> str | None:
    if mutation.at_code:
        return mutation.at_code
    if mutation.at:
        return slots[(role, n, mutation.at)]
    return None


def single(style: Style, mutation: Mutation) -> Mutant:
    layer = int(mutation.step.split("layer")[1][0]) if "layer" in mutation.step else 1
    role = mutation.step.split(".")[0]
    forward_changes = {layer: mutation.forward} if mutation.forward else {}
    backward_changes = {layer: mutation.backward} if mutation.backward else {}
    cells, slots = build(style, forward_changes, backward_changes)
    if mutation.replace:
        old, new = mutation.replace
        hits = [i for i, c in enumerate(cells) if old in c]
        assert hits, (style.name, mutation.step, old)
        cells[hits[0]] = cells[hits[0]].replace(old, new, 1)
    expected = {mutation.step: mutation.diagnosis, **{k: v for k, v in mutation.also.items() if v != "not_assessed"}}
    line = _expected_line(style, mutation, slots, layer, role)
    at = {mutation.step: line} if line and mutation.diagnosis != "numpy_compat" else {}
    name = f"{style.name}__{mutation.step}__{mutation.diagnosis}"
    # A note is not a fault: a notebook whose only finding is a note is a correct one.
    return Mutant(name, cells, expected, at, correct=mutation.diagnosis in NOTE_DIAGNOSES)


def pair(style: Style, first: Mutation, second: Mutation) -> Mutant:
    """Two mistakes in one notebook, each in its own layer or pass."""
    forward_changes, backward_changes = {}, {}
    for mutation in (first, second):
        layer = int(mutation.step.split("layer")[1][0])
        if mutation.forward:
            forward_changes.setdefault(layer, {}).update(mutation.forward)
        if mutation.backward:
            backward_changes.setdefault(layer, {}).update(mutation.backward)
    cells, slots = build(style, forward_changes, backward_changes)
    expected, at = {}, {}
    for mutation in (first, second):
        layer = int(mutation.step.split("layer")[1][0])
        expected[mutation.step] = mutation.diagnosis
        expected.update({k: v for k, v in mutation.also.items() if v != "not_assessed"})
        line = _expected_line(style, mutation, slots, layer, mutation.step.split(".")[0])
        if line:
            at[mutation.step] = line
    name = f"{style.name}__pair__{first.step}.{first.diagnosis}+{second.step}.{second.diagnosis}"
    return Mutant(name, cells, expected, at)


CORRECT_TEMPLATE_VARIANTS = {
    "bool_mask": {1: {"threshold": "D1 = D1 < keep_prob"}, 2: {"threshold": "D2 = D2 < keep_prob"}},
    "random_sample": {1: {"draw": "D1 = np.random.random_sample(A1.shape)"}, 2: {"draw": "D2 = np.random.random_sample(A2.shape)"}},
    "one_line_apply_scale": {1: {"apply": "A1 = A1 * D1 / keep_prob", "scale": None}},
    "np_where": {1: {"apply": "A1 = np.where(D1 == 1, A1 / keep_prob, 0)", "scale": None}},
    "float32_mask": {2: {"threshold": "D2 = (D2 < keep_prob).astype(np.float32)"}},
    "mask_before_relu": {1: {"apply": "A1 = relu(Z1 * D1 / keep_prob)", "scale": None}},
    "binomial": {1: {"draw": "D1 = np.random.binomial(1, keep_prob, size=A1.shape)", "threshold": None}},
    "complement_threshold": {2: {"threshold": "D2 = D2 > 1 - keep_prob"}},
    "default_rng": {1: {"draw": "D1 = np.random.default_rng(42).random(A1.shape)"}},
    "extra_draw_first": {1: {"draw": "noise = np.random.rand(3)\n    D1 = np.random.rand(A1.shape[0], A1.shape[1])"}},
    "random_state": {2: {"draw": "D2 = np.random.RandomState(3).rand(A2.shape[0], A2.shape[1])"}},
    "choice": {1: {"draw": "D1 = np.random.choice([0, 1], size=A1.shape, p=[1 - keep_prob, keep_prob])", "threshold": None}},
}
NOTED = {"binomial": {"forward.layer1.mask": "different_stream"},
         "complement_threshold": {"forward.layer2.mask": "different_stream"},
         "default_rng": {"forward.layer1.mask": "different_stream"},
         "choice": {"forward.layer1.mask": "different_stream"}}


def correct_variants() -> list[Mutant]:
    mutants = []
    for style in STYLES:
        cells, _ = build(style)
        mutants.append(Mutant(f"correct__{style.name}", cells, {}, {}, correct=True))
    template = STYLES[0]
    for name, changes in CORRECT_TEMPLATE_VARIANTS.items():
        cells, _ = build(template, changes)
        mutants.append(Mutant(f"correct__template_{name}", cells, NOTED.get(name, {}), {}, correct=True))
    cells, _ = build(template)
    cells[-1] = cells[-1].replace("np.int64(A2 > 0)", "(Z2 > 0)").replace("np.int64(A1 > 0)", "(Z1 > 0)")
    mutants.append(Mutant("correct__template_relu_derivative_from_Z", cells, {}, {}, correct=True))
    cells, _ = build(template)
    cells.insert(1, cells[1].replace("A1 = A1 / keep_prob", "A1 = A1"))  # an earlier, wrong draft
    mutants.append(Mutant("correct__template_defined_twice", cells, {"forward.function": "defined_twice"}, {}, correct=True))
    return mutants


def corpus() -> list[Mutant]:
    mutants: list[Mutant] = []
    for style in STYLES:
        for n in (1, 2):
            mutants += [single(style, m) for m in forward_mutations(style, n)]
            mutants += [single(style, m) for m in backward_mutations(style, n)]
    mutants += [single(STYLES[0], m) for m in template_only_mutations()]
    mutants += [single(STYLES[3], m) for m in up_front_only_mutations()]
    # pairs: a forward and a backward mistake, or mistakes in both layers, across styles
    for i, style in enumerate(STYLES):
        forward_1 = forward_mutations(style, 1)
        forward_2 = forward_mutations(style, 2)
        backward_2 = backward_mutations(style, 2)
        for j in range(3):
            mutants.append(pair(style, forward_1[(i + 3 * j) % len(forward_1)], backward_2[(i + j) % len(backward_2)]))
            mutants.append(pair(style, forward_1[(i + 5 * j + 1) % len(forward_1)],
                                forward_2[(i + 2 * j + 7) % len(forward_2)]))
    mutants += correct_variants()
    seen: dict[str, int] = {}
    for mutant in mutants:  # two mutants of one entry in one style get told apart
        seen[mutant.name] = seen.get(mutant.name, 0) + 1
        if seen[mutant.name] > 1:
            mutant.name += f"_{seen[mutant.name]}"
    return mutants


# --- variants of issue 10's classes of failure, written as students write them -------------
# Each has a family (the class of failure it belongs to); the benchmark prints a row per
# family. They are graded through the same path and judged the same way as the corpus above.
LOOP_FORWARD = '''\
def forward_propagation_with_dropout(X, parameters, keep_prob=0.5):
    np.random.seed(1)
    A = X
    Zs, Ds, As = {}, {}, {}
    for l in (1, 2):
        Z = parameters["W" + str(l)] @ A + parameters["b" + str(l)]
        A = np.maximum(0, Z)
        Ds[l] = np.random.rand(*A.shape) < keep_prob
        A = A * Ds[l]
        A = A / keep_prob
        Zs[l], As[l] = Z, A
    Z3 = parameters["W3"] @ A + parameters["b3"]
    A3 = 1 / (1 + np.exp(-Z3))
    P = parameters
    cache = (Zs[1], Ds[1], As[1], P["W1"], P["b1"], Zs[2], Ds[2], As[2], P["W2"], P["b2"], Z3, A3, P["W3"], P["b3"])
    return A3, cache
'''

INLINE_BACKWARD = '''\
def backward_propagation_with_dropout(X, Y, cache, keep_prob):
    Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3 = cache
    m = X.shape[1]
    dZ3 = A3 - Y
    dA2 = W3.T @ dZ3 * D2 / keep_prob
    dZ2 = dA2 * (A2 > 0)
    dA1 = W2.T @ dZ2 * D1 / keep_prob
    dZ1 = dA1 * (A1 > 0)
    return {"dZ3": dZ3, "dW3": dZ3 @ A2.T / m, "db3": dZ3.sum(axis=1, keepdims=True) / m,
            "dA2": dA2, "dZ2": dZ2, "dW2": dZ2 @ A1.T / m, "db2": dZ2.sum(axis=1, keepdims=True) / m,
            "dA1": dA1, "dZ1": dZ1, "dW1": dZ1 @ X.T / m, "db1": dZ1.sum(axis=1, keepdims=True) / m}
'''

CACHE_LINE = "cache = (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)"


@dataclass
class Variant:
    family: str
    name: str
    forward: str | None = None
    backward: str | None = None
    imports: str = IMPORTS
    expected: dict[str, str] = field(default_factory=dict)
    at: dict[str, str] = field(default_factory=dict)


def _fwd(**layers) -> str:
    return examples.forward(l1=layers.get("l1"), l2=layers.get("l2"))


def _loop(old: str, new: str) -> str:
    assert old in LOOP_FORWARD, old
    return LOOP_FORWARD.replace(old, new)


def _renamed(layer1: dict | None = None, layer2: dict | None = None) -> str:
    """Style two (lowercase names, np.multiply, a parameter called kp) with slot changes."""
    lines = {}
    for n, changes in ((1, layer1 or {}), (2, layer2 or {})):
        base = STYLES[1].layer(n).__dict__.copy()
        base.update(changes)
        lines[n] = _render_lines([base[s] for s in ("draw", "threshold", "apply", "scale")])
    return examples.fill(FORWARD_2, lines[1], lines[2])


def issue10_variants() -> list[Variant]:
    T = CACHE_LINE
    v = [
        # correct code that used to be marked wrong
        Variant("correct: list masks", "list_of_lists", _fwd(l1=dict(threshold="D1 = (D1 < keep_prob).astype(int).tolist()"))),
        Variant("correct: list masks", "list_of_row_arrays", _fwd(l2=dict(threshold="D2 = list(D2 < keep_prob)"))),
        Variant("correct: list masks", "renamed_list", _renamed({"threshold": "keep1 = [list(row < kp) for row in keep1]"})),
        Variant("correct: namedtuple/list cache", "namedtuple", examples.forward().replace(
            "    " + T, "    from collections import namedtuple\n    Cache = namedtuple('Cache', 'Z1 D1 A1 W1 b1 Z2 D2 A2 W2 b2 Z3 A3 W3 b3')\n"
            "    cache = Cache(Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)")),
        Variant("correct: namedtuple/list cache", "list_cache", examples.forward().replace(T, "cache = [" + T[9:-1] + "]")),
        Variant("correct: namedtuple/list cache", "loop_list_cache", _loop("    cache = (", "    cache = list((").replace(
            'P["b3"])\n', 'P["b3"]))\n')),
        Variant("correct: dropout on Z before relu", "template_overwrite", _fwd(l1=dict(apply="Z1 = Z1 * D1 / keep_prob", scale="A1 = relu(Z1)"))),
        Variant("correct: dropout on Z before relu", "both_layers", _fwd(l1=dict(apply="Z1 = Z1 * D1", scale="Z1 = Z1 / keep_prob\n    A1 = relu(Z1)"),
                                                                          l2=dict(apply="Z2 = Z2 * D2 / keep_prob", scale="A2 = relu(Z2)"))),
        Variant("correct: float32", "cast_inputs", examples.forward().replace(
            '    W1, b1 = parameters["W1"], parameters["b1"]',
            '    X = X.astype(np.float32)\n    parameters = {k: v.astype(np.float32) for k, v in parameters.items()}\n'
            '    W1, b1 = parameters["W1"], parameters["b1"]')),
        Variant("correct: float32", "float32_masks_and_division", _fwd(
            l1=dict(threshold="D1 = (D1 < keep_prob).astype(np.float32)", scale="A1 = (A1 / keep_prob).astype(np.float32)"))),
        Variant("correct: helper modules of the week", "gc_utils", imports="import numpy as np\nfrom gc_utils import relu, sigmoid\n"),
        Variant("correct: helper modules of the week", "init_utils", imports="import numpy as np\nfrom init_utils import *\n"),
        Variant("correct: NaN/inf in a debugging line", "log_of_negative", _fwd(l1=dict(
            draw="check = np.log(A1 - A1 - 1)\n    print('debug', check.mean(), np.inf)\n    D1 = np.random.rand(A1.shape[0], A1.shape[1])"))),
        Variant("correct: NaN/inf in a debugging line", "inf_local", _fwd(l2=dict(
            draw="ratio = A2 / 0.0\n    D2 = np.random.rand(A2.shape[0], A2.shape[1])"))),
        Variant("correct: pre-scaled mask (note)", "pre_scaled", _fwd(l1=dict(threshold="D1 = (D1 < keep_prob) / keep_prob", scale="-")),
                expected={"forward.layer1.mask": "pre_scaled"}),
        Variant("correct: rand-like draws", "random", _fwd(l1=dict(draw="D1 = np.random.random(A1.shape)"))),
        Variant("correct: rand-like draws", "uniform01", _fwd(l2=dict(draw="D2 = np.random.uniform(0.0, 1.0, A2.shape)"))),
        Variant("correct: rand-like draws", "ranf", _fwd(l1=dict(draw="D1 = np.random.ranf(A1.shape)"))),
        Variant("correct: loop with masks in a dict", "loop", LOOP_FORWARD),
        Variant("correct: inline gradients", "inline", backward=INLINE_BACKWARD),
        # crashes: cache slots of the wrong shape, an all-zero mask
        Variant("cache: wrong kind or order", "transposed", examples.forward().replace(T, T.replace("A1, W1", "A1.T, W1")),
                expected={"forward.cache": "malformed"}, at={"forward.cache": T.replace("A1, W1", "A1.T, W1")}),
        Variant("cache: wrong kind or order", "scalar", examples.forward().replace(T, T.replace("A1, W1", "0, W1")),
                expected={"forward.cache": "malformed"}, at={"forward.cache": T.replace("A1, W1", "0, W1")}),
        Variant("cache: wrong kind or order", "reordered", examples.forward().replace(T, "cache = (W1, b1, Z1, D1, A1, W2, b2, Z2, D2, A2, W3, b3, Z3, A3)"),
                expected={"forward.cache": "malformed"}, at={"forward.cache": "cache = (W1, b1, Z1, D1, A1, W2, b2, Z2, D2, A2, W3, b3, Z3, A3)"}),
        Variant("cache: wrong kind or order", "A_D_swapped", examples.forward().replace(T, T.replace("D1, A1", "A1, D1")),
                expected={"forward.cache": "malformed"}, at={"forward.cache": T.replace("D1, A1", "A1, D1")}),
        Variant("cache: wrong kind or order", "dict", examples.forward().replace(T, "cache = {'Z1': Z1, 'D1': D1, 'A1': A1}"),
                expected={"forward.cache": "malformed"}, at={"forward.cache": "cache = {'Z1': Z1, 'D1': D1, 'A1': A1}"}),
        Variant("mask: all kept or all dropped", "int_keep_prob", _fwd(l1=dict(threshold="D1 = (D1 < int(keep_prob)).astype(int)")),
                expected={"forward.layer1.mask": "keep_rate"}, at={"forward.layer1.mask": "D1 = (D1 < int(keep_prob)).astype(int)"}),
        Variant("mask: all kept or all dropped", "renamed_all_dropped", _renamed(layer2={"threshold": "keep2 = keep2 > 1"}),
                expected={"forward.layer2.mask": "keep_rate"}, at={"forward.layer2.mask": "keep2 = keep2 > 1"}),
        Variant("mask: all kept or all dropped", "all_kept_drawn", _fwd(l2=dict(threshold="D2 = (D2 < 1.0).astype(int)")),
                expected={"forward.layer2.mask": "keep_rate"}, at={"forward.layer2.mask": "D2 = (D2 < 1.0).astype(int)"}),
        # wrong code that used to score full marks
        Variant("mask: reused across layers", "slice", _fwd(l2=dict(draw="-", threshold="D2 = D1[:A2.shape[0]]")),
                expected={"forward.layer2.mask": "reused"}, at={"forward.layer2.mask": "D2 = D1[:A2.shape[0]]"}),
        Variant("mask: reused across layers", "renamed_slice", _renamed(layer2={"draw": None, "threshold": "keep2 = keep1[:a2.shape[0], :]"}),
                expected={"forward.layer2.mask": "reused"}, at={"forward.layer2.mask": "keep2 = keep1[:a2.shape[0], :]"}),
        Variant("mask: reused across layers", "last_rows", _fwd(l2=dict(draw="-", threshold="D2 = D1[-A2.shape[0]:]")),
                expected={"forward.layer2.mask": "reused"}, at={"forward.layer2.mask": "D2 = D1[-A2.shape[0]:]"}),
        Variant("function fails on some probes", "D2_with_A1_shape", _fwd(l2=dict(draw="D2 = np.random.rand(A1.shape[0], A1.shape[1])")),
                expected={"forward.function": "error"}),
        Variant("dropout on the input", "template", examples.forward().replace(
            "    Z1 = np.dot(W1, X) + b1\n", "    D0 = np.random.rand(*X.shape) < keep_prob\n    X = X * D0 / keep_prob\n    Z1 = np.dot(W1, X) + b1\n"),
                expected={"forward.cache": "input_dropout"}, at={"forward.cache": "X = X * D0 / keep_prob"}),
        Variant("dropout on the input", "loop", _loop("    A = X\n", "    A = X * (np.random.rand(*X.shape) < keep_prob)\n    A = A / keep_prob\n"),
                expected={"forward.cache": "input_dropout"}, at={"forward.cache": "A = A / keep_prob"}),
        # wrong attribution
        Variant("backward: mask from activations", "template", backward=examples.backward(l1=dict(mask="dA1 = dA1 * (A1 > 0)")),
                expected={"backward.layer1.mask": "from_activations"}, at={"backward.layer1.mask": "dA1 = dA1 * (A1 > 0)"}),
        Variant("backward: mask from activations", "one_line", backward=examples.backward(l2=dict(mask="dA2 = dA2 * (A2 > 0) / keep_prob", scale="-")),
                expected={"backward.layer2.mask": "from_activations"}, at={"backward.layer2.mask": "dA2 = dA2 * (A2 > 0) / keep_prob"}),
        Variant("backward: dropout on dZ", "template", backward=examples.backward(l2=dict(mask="-", scale="-")).replace(
            "    dZ2 = np.multiply(dA2, np.int64(A2 > 0))\n", "    dZ2 = np.multiply(dA2, np.int64(A2 > 0))\n    dZ2 = dZ2 * D2 / keep_prob\n"),
                expected={"backward.layer2.mask": "applied_to_dZ"}, at={"backward.layer2.mask": "dZ2 = dZ2 * D2 / keep_prob"}),
        Variant("backward: dropout on dZ", "layer1", backward=examples.backward(l1=dict(mask="-", scale="-")).replace(
            "    dZ1 = np.multiply(dA1, np.int64(A1 > 0))\n", "    dZ1 = np.multiply(dA1, np.int64(A1 > 0)) * D1 / keep_prob\n"),
                expected={"backward.layer1.mask": "applied_to_dZ"}, at={"backward.layer1.mask": "dZ1 = np.multiply(dA1, np.int64(A1 > 0)) * D1 / keep_prob"}),
        Variant("mask: wrong shape charged once", "one_dimensional", _fwd(l1=dict(
            draw="D1 = np.random.rand(A1.shape[0])", apply="A1 = A1 * D1.reshape(-1, 1)")),
                expected={"forward.layer1.mask": "wrong_shape"}, at={"forward.layer1.mask": "D1 = (D1 < keep_prob).astype(int)"}),
        Variant("mask: wrong shape charged once", "per_example", _renamed({"draw": "keep1 = np.random.rand(1, a1.shape[1])"}),
                expected={"forward.layer1.mask": "wrong_shape"}, at={"forward.layer1.mask": "keep1 = keep1 < kp"}),
        Variant("backward: gradient left as None", "dA1_none", backward=examples.backward().replace('"dA1": dA1', '"dA1": None'),
                expected={"backward.gradients": "wrong"}),
        # line pointers in loops, dicts and inline expressions
        Variant("lines: loops and inline", "loop_scale_missing", _loop("        A = A / keep_prob\n", ""),
                expected={"forward.layer1.scale": "missing", "forward.layer2.scale": "missing"},
                at={"forward.layer1.scale": "A = A * Ds[l]", "forward.layer2.scale": "A = A * Ds[l]"}),
        Variant("lines: loops and inline", "loop_reversed", _loop("Ds[l] = np.random.rand(*A.shape) < keep_prob", "Ds[l] = np.random.rand(*A.shape) > keep_prob"),
                expected={"forward.layer1.mask": "threshold_reversed", "forward.layer2.mask": "threshold_reversed"},
                at={"forward.layer1.mask": "Ds[l] = np.random.rand(*A.shape) > keep_prob",
                    "forward.layer2.mask": "Ds[l] = np.random.rand(*A.shape) > keep_prob"}),
        Variant("lines: loops and inline", "inline_dW2", backward=INLINE_BACKWARD.replace('"dW2": dZ2 @ A1.T / m', '"dW2": dZ2 @ A1.T'),
                expected={"backward.gradients": "wrong"},
                at={"backward.gradients": '"dA2": dA2, "dZ2": dZ2, "dW2": dZ2 @ A1.T, "db2": dZ2.sum(axis=1, keepdims=True) / m,'}),
        Variant("lines: loops and inline", "inline_scale_missing", backward=INLINE_BACKWARD.replace("dA1 = W2.T @ dZ2 * D1 / keep_prob", "dA1 = W2.T @ dZ2 * D1"),
                expected={"backward.layer1.scale": "missing"}, at={"backward.layer1.scale": "dA1 = W2.T @ dZ2 * D1"}),
        Variant("lines: loops and inline", "list_mask_reversed", _fwd(l1=dict(threshold="D1 = (D1 > keep_prob).astype(int).tolist()")),
                expected={"forward.layer1.mask": "threshold_reversed"}, at={"forward.layer1.mask": "D1 = (D1 > keep_prob).astype(int).tolist()"}),
        # forged evidence (issue 9)
        Variant("forged: mask not from the stream", "fixed_pattern", _fwd(l1=dict(
            draw="D1 = (np.arange(A1.size).reshape(A1.shape) * 7919 % 100) / 100.0")),
                expected={"forward.layer1.mask": "not_random"}, at={"forward.layer1.mask": "D1 = (D1 < keep_prob).astype(int)"}),
        Variant("forged: mask not from the stream", "fake_records", _fwd(l2=dict(draw=(
            "fake = (np.arange(A2.size).reshape(A2.shape) * 7919 % 100) / 100.0\n"
            "    for cell in (np.random.rand.__closure__ or ()):\n"
            "        if hasattr(cell.cell_contents, 'log'):\n"
            "            cell.cell_contents.log('rand', A2.shape, {}, fake)\n"
            "    D2 = fake"))), expected={"forward.layer2.mask": "not_random"}),
        Variant("forged: mask not from the stream", "equal_bounds", _fwd(l1=dict(draw="D1 = np.random.uniform(0.3, 0.3, A1.shape)")),
                expected={"forward.layer1.mask": "keep_rate"}),
        Variant("forged: mask not from the stream", "own_generator", _renamed({"draw": "keep1 = np.random.RandomState(np.random.MT19937(np.random.SeedSequence(0))).rand(*a1.shape)"})),
    ]
    return v


def issue10_mutants() -> list[Mutant]:
    mutants = []
    for variant in issue10_variants():
        cells = [variant.imports, variant.forward or examples.forward(), "X_t = np.ones((2, 3))",
                 variant.backward or examples.backward()]
        correct = all(d in NOTE_DIAGNOSES | {"pre_scaled"} for d in variant.expected.values())
        slug = re.sub(r"[^a-z0-9]+", "_", variant.family.lower()).strip("_")
        mutants.append(Mutant(f"issue10__{slug}__{variant.name}", cells, variant.expected, variant.at,
                              correct=correct, family=variant.family))
    return mutants
