"""Property-based: whatever a student's function returns, the grader answers with findings
and never fails. Arbitrary values, caches and gradient dicts (random shapes, dtypes,
containers, NaN/inf, swapped and missing entries) go through the child's description
(grader/sandbox/values.py), the message format, the parent's validation and decoding, the
diagnosis, merging, line pointers and messages: exactly the path of a real reply, with a
stand-in sandbox that answers every call with the generated value."""

from __future__ import annotations

import collections
import json
import string
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dropout_grader.extract import extract
from dropout_grader.notebook import Cell
from dropout_grader.pipeline import Grader
from dropout_grader.reference.dropout import CACHE_KEYS, GRADIENT_KEYS, backward, forward
from dropout_grader.reply import call_record, validate
from dropout_grader.reference.dropout import DropoutProbe as Probe
from dropout_grader.rubric import load_rubric
from dropout_grader.sandbox.protocol import pack, split, unpack
from dropout_grader.sandbox.runner import ChildRun
from dropout_grader.sandbox.values import describe

SOURCE = ("import numpy as np\n"
          "def forward_propagation_with_dropout(X, parameters, keep_prob):\n    return None\n"
          "def backward_propagation_with_dropout(X, Y, cache, keep_prob):\n    return None\n")
Cache = collections.namedtuple("Cache", CACHE_KEYS)
Pair = collections.namedtuple("Pair", "A3 cache")


class Tagged(np.ndarray):
    """An ndarray subclass a student might return (np.matrix-like)."""


# --- values -------------------------------------------------------------------------------
DTYPES = st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.int8, np.bool_, np.complex128])


def arrays(shape=None):
    shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5) if shape is None else st.just(shape)
    return DTYPES.flatmap(lambda dtype: hnp.arrays(dtype, shapes, elements=_elements(dtype)))


def _elements(dtype):
    if np.dtype(dtype).kind == "f":
        return st.floats(allow_nan=True, allow_infinity=True, width=np.dtype(dtype).itemsize * 8)
    if np.dtype(dtype).kind == "c":
        return st.complex_numbers(allow_nan=True, allow_infinity=True)
    return None


scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=5), st.builds(np.float32, st.floats(width=32)), st.builds(np.int8, st.integers(-128, 127)))
leaves = st.one_of(scalars, arrays(), arrays().map(lambda a: a.view(Tagged)))
values = st.recursive(leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.lists(inner, max_size=4).map(tuple),
    st.dictionaries(st.text(string.ascii_letters, max_size=4), inner, max_size=4)), max_leaves=12)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_any_value_is_described_and_read_back(value):
    arrays_out: dict[str, np.ndarray] = {}
    node = describe(value, arrays_out, "c0")
    header = {"calls": [{"role": "forward", "probe": "p", "status": "returned", "return": node}]}
    decoded, read = unpack(pack(header, arrays_out))  # JSON without NaN: the child never dies on one
    record = call_record(validate(decoded).calls[0], read)
    for key, array in record.values.items():
        assert isinstance(array, np.ndarray) and array.dtype.kind in "biuf", key
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        np.testing.assert_array_equal(record.values[""], np.asarray(value))  # NaN and inf intact
        assert record.values[""].dtype == value.dtype


def test_containers_keep_their_type_and_list_masks_are_arrays():
    mask = [[1.0, 0.0], [0.0, 1.0]]
    arrays_out: dict[str, np.ndarray] = {}
    cache = Cache(*([np.ones(3)] + [mask] * 13))
    node = describe(Pair(np.zeros((1, 2)), cache), arrays_out, "c0")
    assert node["type"] == "namedtuple" and node["class"] == "Pair" and node["fields"] == ["A3", "cache"]
    assert node["items"][1]["type"] == "namedtuple" and node["items"][1]["length"] == 14
    header = {"calls": [{"role": "forward", "probe": "p", "status": "returned", "return": node}]}
    record = call_record(validate(header).calls[0], arrays_out)
    np.testing.assert_array_equal(record.values["1.1"], np.array(mask))
    # a container that is one array as a whole: its items are read from it
    whole = describe((np.array(mask), mask), arrays_out, "c1")
    header = {"calls": [{"role": "forward", "probe": "p", "status": "returned", "return": whole}]}
    record = call_record(validate(header).calls[0], arrays_out)
    np.testing.assert_array_equal(record.values["1"], np.array(mask))
    rows = describe([np.ones(3), np.zeros(3)], {}, "c0")
    assert rows["type"] == "list" and rows["shape"] == [2, 3]


class Hostile:
    def __len__(self):
        raise RuntimeError("no")

    def __array__(self, *args, **kwargs):
        raise RuntimeError("no")


class HostileList(list):
    def __iter__(self):
        raise RuntimeError("no")


def test_hostile_values_are_described_not_fatal():
    for value in (Hostile(), HostileList([1, 2]), [Hostile()], {"dA1": Hostile()}):
        node = describe(value, {}, "c0")
        assert isinstance(node, dict) and "type" in node


# --- through the grader -------------------------------------------------------------------
class ScriptedSandbox:
    """Answers every job with the value `script(call)` gives for each call."""
    isolation = "process"
    requested = "process"

    def __init__(self):
        self.script = None

    def run(self, job: bytes) -> ChildRun:
        messages, _ = split(job)  # the common header, then one per section; the inputs are known
        replies = [pack({"protections": []}, {})]
        for section, (header, _) in enumerate(messages[1:]):
            calls, out = self.section(header)
            replies.append(pack({"section": section, "calls": calls}, out))
        return ChildRun(result=b"".join(replies), exit_code=0)

    def section(self, header: dict) -> tuple[list, dict]:
        calls, out = [], {}
        for number, call in enumerate(header.get("calls", [])):
            value = self.script(call)
            record = {"role": call["role"], "probe": call["probe"], "stream_key": call.get("stream_key", 0),
                      "status": "returned", "return": describe(value, out, f"c{number}"),
                      "draws": [], "writes": []}
            if isinstance(value, dict) and "__draw__" in value:  # a forged draw record
                out[f"c{number}.draw0"] = np.asarray(value["__draw__"], dtype=np.float64)
                record["draws"] = [{"function": "rand", "arguments": "", "values": f"c{number}.draw0"}]
            calls.append(record)
        return calls, out

    def close(self):
        pass


SMALL_PROBES = [Probe(id="small-0.7", seed=1, layers=[3, 12, 8, 1], examples=10, keep_prob=0.7),
                Probe(id="equal-0.8", seed=3, layers=[3, 9, 9, 1], examples=8, keep_prob=0.8)]


@pytest.fixture(scope="module")
def scripted():
    """The rubric with small probes (the values' shapes matter, not their size), so that
    thousands of examples run in seconds."""
    rubric = load_rubric()
    rubric.spec = rubric.spec.model_copy(update={"probes": [p.model_dump() for p in SMALL_PROBES]})
    rubric.probes = SMALL_PROBES
    sandbox = ScriptedSandbox()
    grader = Grader(rubric, sandbox=sandbox)
    extraction = extract([Cell(0, SOURCE)], grader.graded_names)
    return grader, sandbox, extraction


def probe_inputs(grader, probe_id):
    return next(p for p in grader.probes if p.id == probe_id).inputs


ENTRY_CHANGES = ["keep", "keep", "keep", "random", "right_shape", "transpose", "scalar", "none", "list",
                 "nan", "zeros", "ones", "float32", "text"]


@st.composite
def forward_returns(draw):
    """A function of the probe: the reference's (A3, cache), then mutated."""
    entry_changes = draw(st.lists(st.sampled_from(ENTRY_CHANGES), min_size=14, max_size=14))
    container = draw(st.sampled_from(["tuple", "list", "namedtuple", "dict", "short", "long", "swap"]))
    outer = draw(st.sampled_from(["tuple", "tuple", "namedtuple", "reversed", "a3_only", "none", "list"]))
    noise = draw(arrays())
    swap = draw(st.tuples(st.integers(0, 13), st.integers(0, 13)))
    seed = draw(st.integers(0, 2**16))

    def make(inputs):
        rng = np.random.default_rng(seed)
        k = inputs.keep_prob
        n1, n2 = inputs.parameters["W1"].shape[0], inputs.parameters["W2"].shape[0]
        m = inputs.X.shape[1]
        D1 = (rng.uniform(size=(n1, m)) < k).astype(float)
        D2 = (rng.uniform(size=(n2, m)) < k).astype(float)
        A3, cache = forward(inputs.X, inputs.parameters, k, D1, D2)
        entries = [_change(e, change, noise, rng) for e, change in zip(cache, entry_changes)]
        if container == "swap":
            entries[swap[0]], entries[swap[1]] = entries[swap[1]], entries[swap[0]]
        packed = {"tuple": tuple, "list": list, "namedtuple": lambda e: Cache(*e),
                  "dict": lambda e: dict(zip(CACHE_KEYS, e)), "short": lambda e: tuple(e[:12]),
                  "long": lambda e: tuple(e) + (noise,), "swap": tuple}[container](entries)
        return {"tuple": (A3, packed), "namedtuple": Pair(A3, packed), "reversed": (packed, A3),
                "a3_only": A3, "none": None, "list": [A3, packed]}[outer]

    return make


def _change(entry, change, noise, rng):
    if change == "keep":
        return entry
    if change == "random":
        return noise
    if change == "right_shape":
        return rng.normal(size=entry.shape)
    if change == "transpose":
        return entry.T
    if change == "scalar":
        return float(entry.flat[0])
    if change == "none":
        return None
    if change == "list":
        return entry.tolist()
    if change == "nan":
        spoiled = entry.astype(float).copy()
        spoiled.flat[0] = np.nan
        spoiled.flat[-1] = np.inf
        return spoiled
    if change == "zeros":
        return np.zeros_like(entry)
    if change == "ones":
        return np.ones_like(entry)
    if change == "float32":
        return entry.astype(np.float32)
    return "text"


def check_findings(grader, findings, role):
    steps = {f.step for f in findings}
    assert steps == set(grader.rubric.function_steps(role))
    for finding in findings:
        assert finding.verdict in ("ok", "note", "wrong")
        assert 0 <= finding.points <= finding.max_points
        assert isinstance(finding.message, str) and finding.message


@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(forward_returns())
def test_any_forward_return_yields_findings(scripted, make):
    grader, sandbox, extraction = scripted
    sandbox.script = lambda call: make(probe_inputs(grader, call["probe"]))
    findings = grader.assess_role(grader.run_function("forward", extraction), extraction)
    check_findings(grader, findings, "forward")


def test_the_reference_values_score_full_marks_on_every_container(scripted):
    grader, sandbox, extraction = scripted
    for kind in (tuple, list, lambda e: Cache(*e)):
        def script(call, kind=kind):
            inputs = probe_inputs(grader, call["probe"])
            rng = np.random.default_rng(call.get("stream_key", 0))
            masks = [(rng.uniform(size=(inputs.parameters[f"W{n}"].shape[0], inputs.X.shape[1])) < inputs.keep_prob)
                     .astype(float) for n in (1, 2)]
            A3, cache = forward(inputs.X, inputs.parameters, inputs.keep_prob, *masks)
            return A3, kind([e.tolist() if i in (1, 6) else e for i, e in enumerate(cache)])  # list masks
        sandbox.script = script
        findings = grader.assess_role(grader.run_function("forward", extraction), extraction)
        assert {f.step: f.diagnosis for f in findings if f.verdict == "wrong"} == {}


GRADIENT_CHANGES = ["keep", "keep", "keep", "random", "right_shape", "transpose", "none", "list", "nan",
                    "zeros", "float32", "text", "missing"]


@st.composite
def gradient_dicts(draw):
    changes = draw(st.lists(st.sampled_from(GRADIENT_CHANGES), min_size=11, max_size=11))
    noise = draw(arrays())
    swap = draw(st.one_of(st.none(), st.tuples(st.sampled_from(GRADIENT_KEYS), st.sampled_from(GRADIENT_KEYS))))
    container = draw(st.sampled_from(["dict", "dict", "list", "ordered", "extra"]))
    seed = draw(st.integers(0, 2**16))

    def make(inputs):
        rng = np.random.default_rng(seed)
        grads = backward(inputs.X, inputs.Y, inputs.cache, inputs.keep_prob)
        out = {}
        for key, change in zip(GRADIENT_KEYS, changes):
            if change != "missing":
                out[key] = _change(grads[key], change, noise, rng)
        if swap and swap[0] in out and swap[1] in out:
            out[swap[0]], out[swap[1]] = out[swap[1]], out[swap[0]]
        if container == "list":
            return list(out.values())
        if container == "ordered":
            return collections.OrderedDict(out)
        if container == "extra":
            out["dA3"] = noise
        return out

    return make


@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(gradient_dicts())
def test_any_gradient_dict_yields_findings(scripted, make):
    grader, sandbox, extraction = scripted
    sandbox.script = lambda call: make(probe_inputs(grader, call["probe"]))
    findings = grader.assess_role(grader.run_function("backward", extraction), extraction)
    check_findings(grader, findings, "backward")


def test_forged_draw_records_do_not_make_a_fixed_mask_dropout(scripted):
    """A mask that does not change when the streams do, with a draw record that 'explains' it."""
    grader, sandbox, extraction = scripted

    def script(call):
        inputs = probe_inputs(grader, call["probe"])
        rng = np.random.default_rng(7)  # the same whatever the stream key
        u = [rng.uniform(size=(inputs.parameters[f"W{n}"].shape[0], inputs.X.shape[1])) for n in (1, 2)]
        masks = [(x < inputs.keep_prob).astype(float) for x in u]
        A3, cache = forward(inputs.X, inputs.parameters, inputs.keep_prob, *masks)
        return A3, cache

    sandbox.script = script
    findings = {f.step: f for f in grader.assess_role(grader.run_function("forward", extraction), extraction)}
    assert findings["forward.layer1.mask"].diagnosis == "not_random"
    assert findings["forward.layer2.mask"].diagnosis == "not_random"
