"""The contract between the grader and an assignment's reference module.

The grader runs the student's functions in the sandbox and hands the reference module one
`CallRecord` per call; the reference module answers with `Observation`s (one per step it
could judge). The grader then merges probes, attaches points, messages and line pointers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

OK, NOTE, WRONG = "ok", "note", "wrong"


@dataclass(frozen=True)
class Draw:
    """One call the student's code made to a random number function, in order."""
    function: str  # e.g. "rand", "randn", "binomial", "Generator.random"
    arguments: str  # a short, printable rendering of the arguments
    values: np.ndarray | None  # what it returned, when numeric and not too large


@dataclass(frozen=True)
class Write:
    """A traced assignment: at (fragment, line) a value with this fingerprint was produced.
    `summary` (size, nonzero count, sum, sum of absolute values) lets the grader find a value
    it rebuilt itself, equal up to rounding, where the exact fingerprint cannot."""
    fragment: int
    line: int
    name: str
    fingerprint: str
    summary: tuple[float, ...] = ()


@dataclass
class CallRecord:
    """What one call of a student function gave back, as plain data from the child."""
    role: str  # "forward" or "backward"
    probe: str
    status: str  # "returned" | "raised" | "not_run"
    values: dict[str, np.ndarray] = field(default_factory=dict)
    shape_of_return: dict[str, Any] = field(default_factory=dict)  # what was returned, described
    # (grader/sandbox/values.py); `values` holds, by position ("0", "1.3", "dZ3"), every part
    # of it that the child could turn into a numeric array, in the student's own dtype.
    draws: list[Draw] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    error: dict[str, Any] | None = None  # {"type", "message", "fragment", "line"}
    stream_key: int = 0  # nonzero: a second run of the probe with every random stream changed
    rekeyed: "CallRecord | None" = None  # that second run, when one was asked for


@dataclass
class Observation:
    """One step judged on one probe. `diagnosis` is None when the step is ok; `evidence`
    fills the placeholders of the rubric's message; `value` is the student's array that
    shows the fault, used to find the line that produced it."""
    step: str
    verdict: str
    diagnosis: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    value: np.ndarray | None = None
    # Where `value` was written by no traced line (one line did two steps), the line that
    # wrote this one is at fault instead.
    alternative: np.ndarray | None = None


def json_safe(numbers) -> list:
    """Floats for JSON written with allow_nan=False: NaN and infinities as the strings
    float() reads back ("nan", "inf", "-inf")."""
    return [x if math.isfinite(x) else str(x) for x in numbers]


def summary(value) -> tuple[float, ...]:
    array = np.asarray(value, dtype=np.float64)
    with np.errstate(all="ignore"):
        return (float(array.size), float(np.count_nonzero(array)), float(array.sum()), float(np.abs(array).sum()))


def same_summary(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    if len(a) != 4 or len(b) != 4 or a[0] != b[0] or a[1] != b[1]:
        return False
    return all(abs(x - y) <= 1e-9 * max(1.0, abs(x), abs(y)) for x, y in zip(a[2:], b[2:]))


def fingerprint(value) -> str:
    """A digest of an array's values, equal in child and parent for equal float64 data."""
    import hashlib

    array = np.ascontiguousarray(np.asarray(value, dtype=np.float64))
    digest = hashlib.blake2b(array.tobytes(), digest_size=10)
    digest.update(repr(array.shape).encode())
    return digest.hexdigest()


def sequence_fingerprint(items) -> str:
    """A digest of a container of values (a cache), from each item's fingerprint; an item
    that is no numeric array counts only as "not an array". Equal in child and parent when
    each side reads the items by the same rule (grader/sandbox/values.py)."""
    import hashlib

    digest = hashlib.blake2b(b"sequence", digest_size=10)
    for item in items:
        digest.update((fingerprint(item) if item is not None else "~").encode() + b"|")
    return digest.hexdigest()
