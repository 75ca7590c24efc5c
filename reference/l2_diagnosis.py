"""Name the wrong scaling step of a student's L2 regularization, one probe at a time.

As for dropout (DESIGN §3): rebuild each expected value from the student's own upstream values,
the correct one and each wrong variant, and report the variant that matches. The cost is one
number, so it is decomposed: cost = cross-entropy + factor x terms, with the factor and the
terms each taken from a small set of what students write (l2.COST_SCALES, l2.penalty_terms);
the probes' lambd values (0 among them) separate the factor from a constant.
"""

from __future__ import annotations

import math

import numpy as np

from dropout_grader.observations import NOTE, OK, WRONG, CallRecord, Observation
from dropout_grader.reference.l2 import COST_SCALES, GRADIENT_SCALES, LAYERS, ProbeInputs

# float32 arithmetic done right is right: its rounding is about 1e-7 relative.
FLOAT32_RTOL = 5e-5


class Tolerance:
    def __init__(self, rtol: float, atol: float):
        self.rtol, self.atol = rtol, atol

    def close(self, actual, expected) -> bool:
        if actual is None or expected is None:
            return False
        if type(actual) is float and type(expected) is float:
            # The cost is one number: the same IEEE arithmetic as below, without numpy's
            # per-call overhead (the cost's catalogue is scanned number by number).
            return math.isfinite(actual) and bool(abs(actual - expected) <= self.atol + self.rtol * abs(expected))
        actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
        if actual.shape != expected.shape or not np.isfinite(actual).all():
            return False
        return bool((np.abs(actual - expected) <= self.atol + self.rtol * np.abs(expected)).all())


def _obs(step, verdict=OK, diagnosis=None, value=None, **evidence) -> Observation:
    return Observation(step=step, verdict=verdict, diagnosis=diagnosis, evidence=evidence, value=value)


def _tolerance(value, rtol: float, atol: float) -> Tolerance:
    dtype = getattr(value, "dtype", None)
    if dtype is not None and dtype.kind == "f" and dtype.itemsize < 8:
        return Tolerance(max(rtol, FLOAT32_RTOL), max(atol, 1e-6))
    return Tolerance(rtol, atol)


def _number(value) -> float | None:
    if value is None:
        return None
    array = np.asarray(value)
    if array.size != 1 or array.dtype.kind not in "biuf":
        return None
    return float(array.reshape(()))


# --- the cost ---------------------------------------------------------------------------
CROSS_ENTROPY_VARIANTS = {
    "ok": lambda ce, m: ce,
    "summed, not averaged over the examples": lambda ce, m: ce * m,
    "with the wrong sign": lambda ce, m: -ce,
}


def _fits(observed: float, probe: ProbeInputs, tol: Tolerance):
    """Every (cross-entropy variant, scale, term) that gives the observed cost, correct parts
    first, lazily: the caller takes the first it needs (a correct cost is the very first)."""
    m, lambd = probe.Y.shape[1], probe.lambd
    ce = probe.cross_entropy
    terms = probe.penalty_terms
    for ce_name, ce_of in CROSS_ENTROPY_VARIANTS.items():
        for scale, factor in COST_SCALES.items():
            for term, total in terms.items():
                if tol.close(observed, ce_of(ce, m) + factor(lambd, m) * total):
                    yield ce_name, scale, term, ce_of(ce, m)


def diagnose_cost(probe: ProbeInputs, call: CallRecord, rtol: float, atol: float) -> list[Observation]:
    raw = call.values.get("")
    observed = _number(raw)
    m, lambd = probe.Y.shape[1], probe.lambd
    facts = dict(lambd=lambd, m=m)
    if observed is None or not np.isfinite(observed):
        detail = "not a finite number" if observed is not None else "not a number"
        return [_obs("cost.cross_entropy", WRONG, "wrong_value", value=raw, detail=detail,
                     observed=observed, expected=round(probe.cross_entropy, 6), **facts),
                _obs("cost.penalty.terms", NOTE, "not_assessed", detail="the cost is not a finite number"),
                _obs("cost.penalty.scale", NOTE, "not_assessed", detail="the cost is not a finite number")]
    tol = _tolerance(raw, rtol, atol)
    ce = probe.cross_entropy
    terms = probe.penalty_terms
    observations: list[Observation] = []
    penalty_value = np.asarray(observed - ce)
    fits = _fits(observed, probe, tol)
    if lambd == 0:
        # No factor of lambd can show at lambd = 0: only what does not scale with it.
        fits = (f for f in fits if COST_SCALES[f[1]](lambd, m) != 0 or f[2] == "ok")
    # Only the first fit is used; the correct cross-entropy's fits all come first.
    fit = next(fits, None)
    if lambd == 0 and ((fit is not None and fit[0] == "ok") or tol.close(observed, ce)):
        return [_obs("cost.cross_entropy", **facts), _obs("cost.penalty.terms", **facts),
                _obs("cost.penalty.scale", **facts)]
    if fit is not None:
        ce_name, scale, term, ce_used = fit
        penalty_value = np.asarray(observed - ce_used)
        if ce_name == "ok":
            observations.append(_obs("cost.cross_entropy", **facts))
        else:
            observations.append(_obs("cost.cross_entropy", WRONG, "wrong_value", value=np.asarray(ce_used),
                                     detail=ce_name, observed=round(ce_used, 6), expected=round(ce, 6), **facts))
        observations.append(_terms_observation(term, penalty_value, facts))
        expected_factor = COST_SCALES["ok"](lambd, m)
        if scale == "ok":
            observations.append(_obs("cost.penalty.scale", **facts))
        else:
            observations.append(_obs("cost.penalty.scale", WRONG, scale, value=penalty_value,
                                     factor=_short(COST_SCALES[scale](lambd, m)),
                                     expected_factor=_short(expected_factor), **facts))
        return observations
    if tol.close(observed, ce) and lambd != 0:
        return [_obs("cost.cross_entropy", **facts),
                _obs("cost.penalty.terms", WRONG, "missing", value=np.asarray(observed), **facts),
                _obs("cost.penalty.scale", NOTE, "not_assessed", detail="there is no penalty term to scale")]
    # A factor none of the named ones: a constant in place of lambd shows at lambd = 0.
    factor = float(penalty_value) / terms["ok"] if terms["ok"] else 0.0
    if factor > 0 and tol.close(observed, ce + factor * terms["ok"]):
        implied = factor * 2 * m
        diagnosis = "hardcoded_lambd" if lambd == 0 or not np.isclose(implied, lambd) else "wrong_value"
        return [_obs("cost.cross_entropy", **facts), _obs("cost.penalty.terms", **facts),
                _obs("cost.penalty.scale", WRONG, diagnosis, value=penalty_value, factor=_short(factor),
                     expected_factor=_short(COST_SCALES["ok"](lambd, m)), implied_lambd=_short(implied),
                     **facts)]
    if lambd == 0:
        return [_obs("cost.cross_entropy", WRONG, "wrong_value", value=np.asarray(observed),
                     detail="the cost at lambd = 0 is not the cross-entropy", observed=_short(observed),
                     expected=_short(ce), **facts),
                _obs("cost.penalty.terms", NOTE, "not_assessed", detail="the cross-entropy part is wrong"),
                _obs("cost.penalty.scale", NOTE, "not_assessed", detail="the cross-entropy part is wrong")]
    return [_obs("cost.cross_entropy", NOTE, "not_assessed",
                 detail="the cost could not be split into cross-entropy and penalty"),
            _obs("cost.penalty.terms", NOTE, "not_assessed",
                 detail="the cost could not be split into cross-entropy and penalty"),
            _obs("cost.penalty.scale", WRONG, "wrong_value", value=penalty_value, observed=_short(observed),
                 expected=_short(ce + COST_SCALES["ok"](lambd, m) * terms["ok"]), **facts)]


def _terms_observation(term: str, penalty_value, facts) -> Observation:
    if term == "ok":
        return _obs("cost.penalty.terms", **facts)
    if term.startswith("layer_missing:"):
        return _obs("cost.penalty.terms", WRONG, "layer_missing", value=penalty_value,
                    layer=int(term.split(":")[1]), **facts)
    return _obs("cost.penalty.terms", WRONG, term, value=penalty_value, **facts)


def _short(value: float) -> float:
    return float(f"{value:.6g}")


# --- the backward pass ---------------------------------------------------------------------
def _array(values: dict, key: str):
    value = values.get(key)
    if value is None:
        return None
    array = np.asarray(value)
    return array.astype(np.float64) if array.dtype.kind in "biuf" else None


def _usable(value, shape) -> bool:
    return value is not None and value.shape == shape and bool(np.isfinite(value).all())


def diagnose_backward(probe: ProbeInputs, call: CallRecord, rtol: float, atol: float) -> list[Observation]:
    Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3 = probe.cache
    X, Y, lambd = probe.X, probe.Y, probe.lambd
    m = X.shape[1]
    weights, biases, inputs = {1: W1, 2: W2, 3: W3}, {1: b1, 2: b2, 3: b3}, {1: X, 2: A1, 3: A2}
    activations = {1: A1, 2: A2}
    values = call.values
    tol = _tolerance(next((v for v in values.values() if v is not None), None), rtol, atol)
    observations: list[Observation] = []
    gradient_problem: Observation | None = None
    facts = dict(lambd=lambd, m=m)
    expected_dZ = A3 - Y
    for n in LAYERS:
        step = f"backward.layer{n}.dW.penalty"
        dZ = _array(values, f"dZ{n}")
        dZ_offset = None
        if not tol.close(dZ, expected_dZ):
            if dZ is not None and dZ.shape == expected_dZ.shape and np.all(np.isfinite(dZ)):
                offset = dZ - expected_dZ
                if np.allclose(offset, offset.flat[0], rtol=1e-9, atol=1e-12) and offset.flat[0] != 0:
                    dZ_offset = float(offset.flat[0])  # a constant added to dZ
            if dZ_offset is None and gradient_problem is None:
                gradient_problem = _obs("backward.gradients", WRONG, "wrong", value=dZ, key=f"dZ{n}", **facts)
        if not _usable(dZ, expected_dZ.shape):
            dZ = expected_dZ
        base = dZ @ inputs[n].T / m
        dW = _array(values, f"dW{n}")
        W = weights[n]
        observations.append(_penalty_observation(step, n, dW, base, W, weights, biases[n],
                                                 _array(values, f"db{n}"), dZ, dZ_offset, probe, tol,
                                                 facts))
        db = _array(values, f"db{n}")
        expected_db = dZ.sum(axis=1, keepdims=True) / m
        if not tol.close(db, expected_db) and gradient_problem is None:
            if not (db is not None and db.shape == expected_db.shape and _proportional(db - expected_db, biases[n], tol)):
                gradient_problem = _obs("backward.gradients", WRONG, "wrong", value=db, key=f"db{n}", **facts)
            elif observations[-1].verdict == OK:
                gradient_problem = _obs("backward.gradients", WRONG, "biases_regularized", value=db,
                                        key=f"db{n}", layer=n, **facts)
        if n == 1:
            break
        dA = _array(values, f"dA{n - 1}")
        expected_dA = W.T @ dZ
        if not tol.close(dA, expected_dA) and gradient_problem is None:
            gradient_problem = _obs("backward.gradients", WRONG, "wrong", value=dA, key=f"dA{n - 1}", **facts)
        if not _usable(dA, expected_dA.shape):
            dA = expected_dA
        expected_dZ = dA * (activations[n - 1] > 0)
    observations.append(gradient_problem or _obs("backward.gradients", **facts))
    return observations


def _proportional(residual, reference, tol: Tolerance) -> float | None:
    """The factor c with residual == c * reference, if there is one (and it is not 0)."""
    if residual.shape != reference.shape:
        return None
    norm = float(np.sum(reference * reference))
    if norm == 0:
        return None
    factor = float(np.sum(residual * reference)) / norm
    if factor == 0 or not tol.close(residual, factor * reference):
        return None
    return factor


def _penalty_observation(step, n, dW, base, W, weights, b, db, dZ, dZ_offset, probe, tol, facts):
    lambd, m = facts["lambd"], facts["m"]
    evidence = dict(facts, layer=n, expected_factor=_short(lambd / m))
    if dW is None or dW.shape != W.shape:
        return _obs(step, WRONG, "wrong_value", value=dW, detail=f"dW{n} has shape "
                    f"{None if dW is None else dW.shape}, W{n} has shape {W.shape}", **evidence)
    residual = dW - base
    for name, scale in GRADIENT_SCALES.items():
        factor = scale(lambd, m)
        if tol.close(dW, base + factor * W):
            if name == "ok" or lambd == 0:  # at lambd = 0 every multiple of lambd is 0: all agree
                return _obs(step, **evidence)
            return _obs(step, WRONG, name, value=dW, factor=_short(factor), **evidence)
    if tol.close(dW, base):  # no penalty in dW: moved to db or dZ, or missing
        if lambd == 0:
            return _obs(step, **evidence)
        if db is not None and db.shape == b.shape:
            expected_db = dZ.sum(axis=1, keepdims=True) / m
            if _proportional(db - expected_db, b, tol) is not None:
                return _obs(step, WRONG, "on_db", value=db, **evidence)
        if dZ_offset is not None:
            return _obs(step, WRONG, "on_dZ", value=dZ, **evidence)
        return _obs(step, WRONG, "missing", value=dW, **evidence)
    for other, W_other in weights.items():
        if other != n and W_other.shape == W.shape and tol.close(dW, base + lambd / m * W_other):
            return _obs(step, WRONG, "wrong_weights", value=dW, detail=f"W{other}", **evidence)
    factor = _proportional(residual, W, tol)
    if factor is not None:
        implied = factor * m
        diagnosis = "hardcoded_lambd" if lambd == 0 or not np.isclose(implied, lambd) else "wrong_value"
        return _obs(step, WRONG, diagnosis, value=dW, factor=_short(factor), implied_lambd=_short(implied),
                    **evidence)
    return _obs(step, WRONG, "wrong_value", value=dW,
                detail=f"dW{n} - dZ{n} @ A{n - 1}.T / m is not a multiple of W{n}", **evidence)


def diagnose(role: str, probe: ProbeInputs, call: CallRecord, rtol: float, atol: float) -> list[Observation]:
    if role == "cost":
        return diagnose_cost(probe, call, rtol, atol)
    return diagnose_backward(probe, call, rtol, atol)
