"""Read a student's dropout mask: is it a Bernoulli(keep_prob) keep-mask of the right shape,
and which recorded random draw produced it, through which threshold?

The draws the sandbox recorded decide between explanations that look alike in the mask alone:
a reversed threshold versus a valid `> 1 - keep_prob`, gaussian versus uniform draws, a raw draw
used as the mask. Without a matching draw the keep rate decides, with a stated margin.
"""

from __future__ import annotations

import re
from math import sqrt

import numpy as np

from dropout_grader.observations import NOTE, OK, WRONG, Draw, Observation

GAUSSIAN_DRAWS = {"randn", "standard_normal", "normal", "Generator.standard_normal",
                  "Generator.normal", "RandomState.randn", "RandomState.standard_normal",
                  "RandomState.normal"}
# Draws that give exactly np.random.rand's numbers from the same state: a mask made from them
# is the reference's, not a "different stream".
REFERENCE_DRAWS = {"rand", "random_sample", "random", "ranf", "sample", "RandomState.rand",
                   "RandomState.random_sample", "RandomState.random"}
UNIT_UNIFORM = re.compile(r"^((low=)?0(\.0*)?, (high=)?1(\.0*)?(,|$)|size=|$)")
# How far (in standard deviations) a keep rate may stray from keep_prob and still be a
# Bernoulli(keep_prob) mask. With hundreds of entries per mask, 1 - keep_prob is far beyond.
KEEP_RATE_SIGMAS = 5.0


def observation(step, verdict=OK, diagnosis=None, value=None, **evidence) -> Observation:
    return Observation(step=step, verdict=verdict, diagnosis=diagnosis, evidence=evidence, value=value)


def read_mask(step: str, D, shape, k: float, draws: list[Draw], other=None, rekeyed=None,
              absent: str = "no mask array in the cache") -> tuple[Observation, np.ndarray | None]:
    """Diagnose a student's mask and return it as a 0/1 array to apply (None if there is no
    usable one). `other` is the other layer's mask (a mask reused across layers), `rekeyed`
    the same mask from a run whose random streams were all keyed differently: a mask that
    stays the same is not drawn from the stream, whatever the recorded draws say."""
    if D is None:
        return observation(step, WRONG, "missing", detail=absent), None
    if D.size == 0:
        return observation(step, WRONG, "missing", detail="the mask is empty"), None
    if D.shape != shape:
        detail = "a single number" if D.ndim == 0 else f"shape {D.shape}"
        return observation(step, WRONG, "wrong_shape", value=D, shape=D.shape, expected_shape=shape,
                           detail=detail), D
    binary, prescaled = binary_mask(D, k)
    if binary is None:
        if not np.all(np.isfinite(D)):
            return observation(step, WRONG, "not_binary", value=D, detail="NaN or infinite values"), None
        source = _matching_draw(D, draws, lambda u: u)
        how = f"the raw values of np.random.{source.function}" if source else "values other than 0 and 1"
        return observation(step, WRONG, "not_binary", value=D, detail=how), D
    kept = binary.astype(bool)
    rate = float(kept.mean())
    evidence = {"keep_rate": rate, "keep_prob": k, "entries": D.size}
    if kept.all() or not kept.any():
        drew = any(d.values is not None and d.values.size == D.size for d in draws)
        if kept.all() and not drew:
            return observation(step, WRONG, "missing", value=D, detail="every unit is kept"), binary
        what = "keeps every unit" if kept.all() else "drops every unit"
        return observation(step, WRONG, "keep_rate", value=D, detail=what, **evidence), binary
    reused = _reused(binary, other)
    # Drawn for this layer after all (a second np.random.seed(1) gives the same numbers):
    # correlated with the other layer, but drawn; the draw's own reading decides.
    if reused and not any(_explain_by_draw(step, kept, d, k, evidence) for d in draws):
        return observation(step, WRONG, "reused", value=D, detail=reused, **evidence), binary
    if rekeyed is not None:
        twin, _ = binary_mask(rekeyed, k) if rekeyed.shape == D.shape else (None, False)
        if twin is not None and np.array_equal(twin, binary):
            return observation(step, WRONG, "not_random", value=D, **evidence), binary
    verdict = diagnose_mask(step, binary, shape, k, draws)
    if prescaled and verdict.verdict != WRONG:
        verdict = observation(step, NOTE, "pre_scaled", value=D, divisor=round(1 / float(D.max()), 4),
                              **evidence)
    verdict.value = D
    return verdict, binary


def binary_mask(D, k: float) -> tuple[np.ndarray | None, bool]:
    """D as a 0/1 array, and whether it came pre-scaled (0 and 1/keep_prob, the other common
    convention: D = (rand < keep_prob) / keep_prob); None if it is neither."""
    if not np.isfinite(D).all():
        return None, False
    if _zeros_and_ones(D):  # the usual mask: no need to list its levels
        return D, False
    levels = np.unique(D)
    nonzero = levels[levels != 0]
    if len(nonzero) == 1 and levels[0] >= 0 and abs(float(nonzero[0]) * k - 1) <= 1e-5:
        return (D != 0).astype(np.float64), True
    return None, False


def _zeros_and_ones(values) -> bool:
    """Every entry is 0 or 1: np.isin(values, (0, 1)).all(), which compares the same way
    (one == per level) but costs more on arrays this small."""
    values = np.asarray(values)
    return bool(((values == 0) | (values == 1)).all())


def _reused(mask, other) -> str | None:
    """The other layer's mask, or a block of its rows, used again: not an independent draw."""
    if other is None or other.ndim != 2 or mask.ndim != 2 or other.shape[1] != mask.shape[1]:
        return None
    rows = mask.shape[0]
    if other.shape[0] < rows:
        return None
    other = other != 0
    for start in sorted({0, other.shape[0] - rows}):
        if np.array_equal(other[start:start + rows], mask != 0):
            if other.shape[0] == rows:
                return "it is the other layer's mask"
            return f"it is rows {start} to {start + rows - 1} of the other layer's mask"
    return None


def diagnose_mask(step: str, D, shape, k: float, draws: list[Draw]) -> Observation:
    """Is D a Bernoulli(k) keep-mask of the activation's shape, and how was it drawn? The
    recorded draws say how; the keep rate, measured on D itself, must agree."""
    if D is None or D.size == 0:
        return observation(step, WRONG, "missing", detail="no mask array in the cache")
    if D.shape != shape:
        return observation(step, WRONG, "wrong_shape", value=D, shape=D.shape, expected_shape=shape)
    if not _zeros_and_ones(D):
        source = _matching_draw(D, draws, lambda u: u)
        how = f"the raw values of np.random.{source.function}" if source else "values other than 0 and 1"
        return observation(step, WRONG, "not_binary", value=D, detail=how)
    kept = D.astype(bool)
    if kept.all():
        return observation(step, WRONG, "missing", value=D, detail="every unit is kept")
    rate = float(kept.mean())
    evidence = {"keep_rate": rate, "keep_prob": k, "entries": D.size}
    if not kept.any():
        return observation(step, WRONG, "keep_rate", value=D, detail="drops every unit", **evidence)
    sigma = sqrt(k * (1 - k) / D.size)
    plausible = abs(rate - k) <= KEEP_RATE_SIGMAS * sigma
    for draw in draws:
        verdict = _explain_by_draw(step, kept, draw, k, evidence)
        if verdict is not None:
            if verdict.verdict != WRONG and not plausible:
                break  # the draws say "fine", the mask's own keep rate does not: trust the mask
            verdict.value = D
            return verdict
    # No recorded draw explains the mask: judge it by its keep rate alone.
    if plausible:
        return observation(step, NOTE, "different_stream", value=D,
                    detail="drawn in a way the grader did not record", **evidence)
    if abs(rate - (1 - k)) <= KEEP_RATE_SIGMAS * sigma:
        return observation(step, WRONG, "threshold_reversed", value=D, **evidence)
    return observation(step, WRONG, "keep_rate", value=D, **evidence)


def _matching_draw(values, draws, transform) -> Draw | None:
    for draw in draws:
        if draw.values is not None and draw.values.size == values.size:
            if np.array_equal(transform(draw.values.reshape(values.shape)), values):
                return draw
    return None


def _explain_by_draw(step, kept, draw: Draw, k, evidence) -> Observation | None:
    """If this draw produced the mask, say how; None if it did not."""
    if draw.values is None or draw.values.size != kept.size:
        return None
    u = draw.values.reshape(kept.shape).astype(float)
    name = draw.function
    source = dict(evidence, draw=f"np.random.{name}({draw.arguments})")
    if np.array_equal(u.astype(bool), kept) and _zeros_and_ones(u):
        # binomial / choice: the draw is the mask itself; judge by its keep rate.
        sigma = sqrt(evidence["keep_prob"] * (1 - evidence["keep_prob"]) / kept.size)
        if abs(evidence["keep_rate"] - k) <= KEEP_RATE_SIGMAS * sigma:
            return observation(step, NOTE, "different_stream", detail=f"a 0/1 draw from {name}", **source)
        if abs(evidence["keep_rate"] - (1 - k)) <= KEEP_RATE_SIGMAS * sigma:
            return observation(step, WRONG, "threshold_reversed", **source)
        return observation(step, WRONG, "keep_rate", **source)
    kept_values, dropped_values = u[kept], u[~kept]
    below = kept_values.max() < dropped_values.min()  # kept <=> u < threshold
    above = kept_values.min() > dropped_values.max()  # kept <=> u > threshold
    if not (below or above):
        return None
    if name in GAUSSIAN_DRAWS:
        return observation(step, WRONG, "gaussian", **source)
    low, high = ((kept_values.max(), dropped_values.min()) if below
                 else (dropped_values.max(), kept_values.min()))
    if below and low < k <= high:
        if _reference_stream(draw):
            return observation(step, OK, None, **source)
        return observation(step, NOTE, "different_stream", detail=f"rand-like draw from {name}", **source)
    if above and low <= 1 - k < high:
        return observation(step, NOTE, "different_stream", detail="kept where the draw exceeds 1 - keep_prob", **source)
    if (above and low <= k < high) or (below and low < 1 - k <= high):
        return observation(step, WRONG, "threshold_reversed", **source)
    threshold = round(float((low + high) / 2), 3)
    return observation(step, WRONG, "hardcoded_keep_prob", threshold=threshold, **source)


def _reference_stream(draw: Draw) -> bool:
    name = draw.function
    if name in REFERENCE_DRAWS:
        return True
    # uniform(0, 1, shape) is low + (high - low) * random_sample(shape): the same numbers
    return name in ("uniform", "RandomState.uniform") and bool(UNIT_UNIFORM.match(draw.arguments))
