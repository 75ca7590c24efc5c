"""Read a student's dropout mask: is it a Bernoulli(keep_prob) keep-mask of the right shape,
and which recorded random draw produced it, through which threshold?

The draws the sandbox recorded decide between explanations that look alike in the mask alone:
a reversed threshold versus a valid `> 1 - keep_prob`, gaussian versus uniform draws, a raw draw
used as the mask. Without a matching draw the keep rate decides, with a stated margin.
"""

from __future__ import annotations

from math import sqrt

import numpy as np

from dropout_grader.observations import NOTE, OK, WRONG, Draw, Observation

GAUSSIAN_DRAWS = {"randn", "standard_normal", "normal", "Generator.standard_normal",
                  "Generator.normal", "RandomState.randn", "RandomState.standard_normal",
                  "RandomState.normal"}
REFERENCE_DRAWS = {"rand", "random_sample", "RandomState.rand", "RandomState.random_sample"}
# How far (in standard deviations) a keep rate may stray from keep_prob and still be a
# Bernoulli(keep_prob) mask. With hundreds of entries per mask, 1 - keep_prob is far beyond.
KEEP_RATE_SIGMAS = 5.0


def observation(step, verdict=OK, diagnosis=None, value=None, **evidence) -> Observation:
    return Observation(step=step, verdict=verdict, diagnosis=diagnosis, evidence=evidence, value=value)


def diagnose_mask(step: str, D, shape, k: float, draws: list[Draw]) -> Observation:
    """Is D a Bernoulli(k) keep-mask of the activation's shape, and how was it drawn?"""
    if D is None or D.size == 0:
        return observation(step, WRONG, "missing", detail="no mask array in the cache")
    if D.shape != shape:
        return observation(step, WRONG, "wrong_shape", value=D, shape=D.shape, expected_shape=shape)
    if not np.isin(D, (0, 1)).all():
        source = _matching_draw(D, draws, lambda u: u)
        how = f"the raw values of np.random.{source.function}" if source else "values other than 0 and 1"
        return observation(step, WRONG, "not_binary", value=D, detail=how)
    kept = D.astype(bool)
    if kept.all():
        return observation(step, WRONG, "missing", value=D, detail="every unit is kept")
    rate = float(kept.mean())
    evidence = {"keep_rate": rate, "keep_prob": k, "entries": D.size}
    for draw in draws:
        verdict = _explain_by_draw(step, kept, draw, k, evidence)
        if verdict is not None:
            verdict.value = D
            return verdict
    # No recorded draw explains the mask: judge it by its keep rate alone.
    sigma = sqrt(k * (1 - k) / D.size)
    if abs(rate - k) <= KEEP_RATE_SIGMAS * sigma:
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
    if np.array_equal(u.astype(bool), kept) and np.isin(u, (0, 1)).all():
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
        if name in REFERENCE_DRAWS:
            return observation(step, OK, None, **source)
        return observation(step, NOTE, "different_stream", detail=f"rand-like draw from {name}", **source)
    if above and low <= 1 - k < high:
        return observation(step, NOTE, "different_stream", detail="kept where the draw exceeds 1 - keep_prob", **source)
    if (above and low <= k < high) or (below and low < 1 - k <= high):
        return observation(step, WRONG, "threshold_reversed", **source)
    threshold = round(float((low + high) / 2), 3)
    return observation(step, WRONG, "hardcoded_keep_prob", threshold=threshold, **source)
