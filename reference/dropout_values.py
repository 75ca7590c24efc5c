"""The student's returned values, checked before any arithmetic: which cache entry holds
what, with which shape, and the comparison tolerance their dtype allows.

Every array here came from student code through the child's description (see
grader/reply.py for the rule that makes a value an array). Nothing is assumed about a
shape: a value of the wrong kind or shape becomes a finding on the step that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dropout_grader.observations import WRONG, CallRecord, Observation
from dropout_grader.reference.dropout import CACHE_KEYS, ProbeInputs

PARAMETERS = ("W1", "b1", "W2", "b2", "W3", "b3")
MASKS = ("D1", "D2")


def expected_shapes(probe: ProbeInputs) -> dict[str, tuple[int, ...]]:
    """The shape the template stores under each cache name, for this probe."""
    m = probe.X.shape[1]
    shapes = {name: probe.parameters[name].shape for name in PARAMETERS}
    for n in (1, 2, 3):
        rows = probe.parameters[f"W{n}"].shape[0]
        shapes[f"Z{n}"] = shapes[f"A{n}"] = (rows, m)
        if n < 3:
            shapes[f"D{n}"] = (rows, m)
    return shapes


def as_float(value) -> np.ndarray | None:
    """A student's numeric array as float64 (masks often come back as bool or int)."""
    return None if value is None else np.asarray(value, dtype=np.float64)


def describe_node(node: dict) -> str:
    """A returned value's description in words: 'a list of 12 items', 'None', 'a str'."""
    kind = node.get("type", "?")
    if kind == "None":
        return "None"
    if kind == "array":
        shape = tuple(node.get("shape") or ())
        dtype = node.get("dtype", "")
        if not shape:
            return f"a single number ({dtype})" if dtype else "a single number"
        return f"an array of shape {shape}" + ("" if (dtype or "").startswith(("float", "int", "bool", "uint"))
                                               else f" of {dtype}")
    if kind == "namedtuple":
        return f"a namedtuple {node.get('class', '')} of {node.get('length')} fields"
    if kind == "dict":
        keys = list(node.get("keys") or {})
        return f"a dict with keys {', '.join(keys[:16])}" if keys else "an empty dict"
    if "length" in node:
        return f"a {kind} of {node['length']} items"
    return f"a {node.get('class', kind)}"


@dataclass
class Cache:
    """The student's cache by template name (float64, or None where the entry is no array),
    and each entry's description."""
    named: dict[str, np.ndarray | None]
    nodes: dict[str, dict] = field(default_factory=dict)
    problem: Observation | None = None  # malformed, but read anyway (D and A swapped back)


def read_cache(probe: ProbeInputs, call: CallRecord) -> tuple[Cache | None, Observation | None]:
    """The student's cache, or the `forward.cache: malformed` observation that says which
    entry is wrong, what it holds and what the template stores there."""
    items = call.shape_of_return.get("items") or []
    node = items[1] if len(items) > 1 and isinstance(items[1], dict) else {}
    # The cache's items as the child read them: they point the finding at the cache's line.
    if node.get("type") == "dict":
        parts = [call.values.get(f"1.{key}") for key in (node.get("keys") or {})]
    else:
        parts = [call.values.get(f"1.{i}") for i in range(len(node.get("items") or []))]
    if node.get("type") not in ("tuple", "list", "namedtuple", "sequence"):
        return None, _malformed(f"it is {describe_node(node)}, not a sequence of {len(CACHE_KEYS)} entries", parts)
    if node.get("length") != len(CACHE_KEYS):
        return None, _malformed(f"it has {node.get('length')} entries, not {len(CACHE_KEYS)}", parts)
    entries = node.get("items") or []
    named = {name: as_float(call.values.get(f"1.{i}")) for i, name in enumerate(CACHE_KEYS)}
    nodes = {name: (entries[i] if i < len(entries) and isinstance(entries[i], dict) else {})
             for i, name in enumerate(CACHE_KEYS)}
    shapes = expected_shapes(probe)
    problems = []
    for i, name in enumerate(CACHE_KEYS):
        if name in MASKS:
            continue  # a mask of the wrong kind or shape is the mask step's finding
        value = named[name]
        if value is None:
            problems.append(f"entry {i} ({name}) is {describe_node(nodes[name])}; the template stores "
                            f"{name} there, an array of shape {shapes[name]}")
        elif value.shape != shapes[name]:
            guess = _looks_like(value, probe, shapes)
            what = "is a single number" if value.ndim == 0 else f"has shape {value.shape}{guess}"
            problems.append(f"entry {i} ({name}) {what}; the template stores "
                            f"{name} there, with shape {shapes[name]}")
    if not problems:
        swapped = _swapped_mask(named)
        if swapped:
            # One mistake, charged once: read the entries where they are, go on with the layers.
            detail, n = swapped
            named[f"D{n}"], named[f"A{n}"] = named[f"A{n}"], named[f"D{n}"]
            nodes[f"D{n}"], nodes[f"A{n}"] = nodes[f"A{n}"], nodes[f"D{n}"]
            return Cache(named, nodes, _malformed(detail, parts)), None
    if problems:
        more = "" if len(problems) <= 3 else f" (and {len(problems) - 3} more)"
        return None, _malformed("; ".join(problems[:3]) + more, parts)
    return Cache(named, nodes), None


def _malformed(detail: str, parts: list) -> Observation:
    return Observation("forward.cache", WRONG, "malformed", {"detail": detail}, value=parts)


def _looks_like(value: np.ndarray, probe: ProbeInputs, shapes) -> str:
    for name in PARAMETERS:
        parameter = probe.parameters[name]
        if value.shape == parameter.shape and np.array_equal(value, parameter):
            return f" (it holds {name})"
    if value.ndim == 2 and value.T.shape in shapes.values():
        return " (transposed?)"
    return ""


def _swapped_mask(named) -> tuple[str, int] | None:
    """A cache whose D and A entries hold each other's values: the D slot is not 0/1 (nor a
    pre-scaled 0/c mask) while the A slot is."""
    for n in (1, 2):
        D, A = named[f"D{n}"], named[f"A{n}"]
        if D is None or A is None or D.shape != A.shape:
            continue
        if not _mask_like(D) and _mask_like(A) and not _mask_like(named[f"Z{n}"]):
            index_d, index_a = CACHE_KEYS.index(f"D{n}"), CACHE_KEYS.index(f"A{n}")
            return (f"entries {index_d} and {index_a} (D{n} and A{n}) hold each other's values: "
                    f"entry {index_a} is a 0/1 mask and entry {index_d} is not"), n
    return None


def _mask_like(value) -> bool:
    """At most two levels, 0 and one above it (what np.unique would list), without sorting."""
    if value is None or value.size == 0 or not np.isfinite(value).all():
        return False
    low, high = value.min(), value.max()
    return bool(low == 0 and high > 0 and ((value == 0) | (value == high)).all())


# --- tolerance follows the student's dtype ----------------------------------------------
def widened(rtol: float, atol: float, call: CallRecord) -> tuple[float, float]:
    """The rubric's tolerance, widened to what the least precise float dtype the student's
    values use can hold (float32 arithmetic done right is right). Integer and bool arrays
    (masks) are exact and do not widen it."""
    eps = 0.0
    for value in call.values.values():
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            eps = max(eps, float(np.finfo(value.dtype).eps))
    if eps <= np.finfo(np.float64).eps:
        return rtol, atol
    return max(rtol, 64 * eps), max(atol, 64 * eps)
