"""Name the wrong step of a student's inverted dropout, one probe at a time.

The method (DESIGN.md §3): condition on the student's own masks and upstream values, rebuild
each expected intermediate value from them, the correct one and each wrong variant, and
report the variant that matches. Each step is graded on the student's own upstream values,
so one mistake is reported once, where it happens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dropout_grader.observations import NOTE, OK, WRONG, CallRecord, Observation
from dropout_grader.reference.dropout import APPLY_VARIANTS, CACHE_KEYS, SCALE_VARIANTS, ProbeInputs, masked, relu, sigmoid
from dropout_grader.reference.dropout_masks import diagnose_mask, observation


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float

    def close(self, actual, expected) -> bool:
        if actual is None or expected is None:
            return False
        actual, expected = np.asarray(actual), np.asarray(expected)
        if actual.shape != expected.shape:
            return False
        # np.allclose's rule, without its overhead (it is called ~200 times per notebook);
        # infinities are left to np.allclose itself, which treats inf == inf as close.
        with np.errstate(invalid="ignore", over="ignore"):
            close = np.abs(actual - expected) <= self.atol + self.rtol * np.abs(expected)
        if close.all():
            return True
        if np.isinf(actual).any() or np.isinf(expected).any():
            return bool(np.allclose(actual, expected, rtol=self.rtol, atol=self.atol))
        return False


def _usable(value, shape) -> bool:
    return value is not None and np.shape(value) == shape and bool(np.all(np.isfinite(value)))


def _float(value):
    """A student's array as float64 (masks often come back as bool or int)."""
    return None if value is None else np.asarray(value, dtype=np.float64)


def _obs(step, verdict=OK, diagnosis=None, value=None, **evidence) -> Observation:
    return observation(step, verdict, diagnosis, value, **evidence)


# --- the dropout result of one layer -------------------------------------------------------
def fit_dropout(value, pre, own_mask, other_mask, k, tol: Tolerance) -> list[tuple[str, str, float]]:
    """Every (apply, scale, factor) variant that turns the pre-dropout activation into
    `value`. Usually one; none when no variant explains it; several when this probe cannot
    tell them apart (the caller then says so instead of picking one)."""
    matches = []
    for apply in APPLY_VARIANTS:
        base = masked(pre, apply, own_mask, other_mask)
        if base is None or base.shape != np.shape(value):
            continue
        for scale, factor in SCALE_VARIANTS.items():
            if tol.close(value, base * factor(k)):
                matches.append((apply, scale, factor(k)))
    if matches:
        return matches
    for apply in APPLY_VARIANTS:  # a constant factor that is none of the named ones
        base = masked(pre, apply, own_mask, other_mask)
        if base is None or base.shape != np.shape(value):
            continue
        nonzero = np.abs(base) > 1e-12
        if not nonzero.any():
            continue
        factor = float(np.median(value[nonzero] / base[nonzero]))
        if factor != 0 and tol.close(value, base * factor):
            return [(apply, "hardcoded_keep_prob", factor)]
    return []


def _ambiguous(prefix: str, first: str, second: str, matches) -> list[Observation]:
    both = " and ".join(f"'{a} mask, {s} scale'" for a, s, _ in matches[:2])
    detail = f"on this probe the values fit both {both}"
    return [_obs(f"{prefix}.{first}", NOTE, "not_assessed", detail=detail),
            _obs(f"{prefix}.{second}", NOTE, "not_assessed", detail=detail)]


def _dropout_observations(prefix, value, pre, mask_obs, own_mask, other_mask, k, tol):
    """The apply and scale observations of one layer, from the value that flowed on."""
    matches = fit_dropout(value, pre, own_mask, other_mask, k, tol)
    mask_missing = mask_obs.diagnosis == "missing"
    if not matches:
        return [_obs(f"{prefix}.apply", NOTE, "not_assessed",
                     detail="the layer's values match no form of mask times a constant"),
                _obs(f"{prefix}.scale", WRONG, "wrong_value", value=value, keep_prob=k)]
    if len(matches) > 1:
        return _ambiguous(prefix, "apply", "scale", matches)
    apply, scale, factor = matches[0]
    if apply == "ok" or (apply == "missing" and mask_missing):
        apply_obs = _obs(f"{prefix}.apply")
        if mask_missing:
            apply_obs = _obs(f"{prefix}.apply", NOTE, "not_assessed",
                             detail="there is no mask to apply")
    else:
        # Point at the line that applied the wrong mask: the value before it was scaled.
        shown = value if apply == "missing" else masked(pre, apply, own_mask, other_mask)
        apply_obs = _obs(f"{prefix}.apply", WRONG, apply, value=shown,
                         dropped_nonzero=_dropped_nonzero(value, own_mask))
    kept = value[np.abs(value) > 1e-12]
    evidence = dict(keep_prob=k, factor=round(factor, 4), divisor=round(1 / factor, 4),
                    ratio=round(factor * k, 4) if factor else 0.0, kept_entries=int(kept.size))
    if scale == "ok":
        scale_obs = _obs(f"{prefix}.scale", **evidence)
    else:
        scale_obs = _obs(f"{prefix}.scale", WRONG, scale, value=value, **evidence)
    return [apply_obs, scale_obs]


# --- forward ------------------------------------------------------------------------------
def diagnose_forward(probe: ProbeInputs, call: CallRecord, tol: Tolerance) -> list[Observation]:
    k, X, P = probe.keep_prob, probe.X, probe.parameters
    values = call.values  # "0" is A3, "1.i" the i-th cache entry
    cache = [_float(values.get(f"1.{i}")) for i in range(len(CACHE_KEYS))]
    named = dict(zip(CACHE_KEYS, cache))
    observations: list[Observation] = []
    items = call.shape_of_return.get("items") or [{}, {}]
    cache_shape = items[1] if len(items) > 1 else {}
    if cache_shape.get("type") not in ("tuple", "list") or cache_shape.get("length") != len(CACHE_KEYS):
        what = (f"it has {cache_shape.get('length')} entries" if "length" in cache_shape
                else f"it is a {cache_shape.get('type')}")
        return [_obs("forward.cache", WRONG, "malformed",
                     detail=f"{what}, not the {len(CACHE_KEYS)} entries ({', '.join(CACHE_KEYS)})")]
    needed = ("Z1", "A1", "Z2", "A2", "Z3")
    absent = [name for name in needed if named[name] is None]
    if absent:
        return [_obs("forward.cache", WRONG, "malformed",
                     detail=f"cache entries {', '.join(absent)} are not arrays")]
    cache_problems = [name for name in ("W1", "b1", "W2", "b2", "W3", "b3")
                      if not tol.close(named[name], P[name])]

    # Layer by layer, each on the student's own upstream values.
    z_expected = P["W1"] @ X + P["b1"]
    if not tol.close(named["Z1"], z_expected):
        cache_problems.append("Z1")
    Z = named["Z1"] if _usable(named["Z1"], z_expected.shape) else z_expected
    masks = {1: named["D1"], 2: named["D2"]}
    for n in (1, 2):
        W_next, b_next = P[f"W{n + 1}"], P[f"b{n + 1}"]
        prefix = f"forward.layer{n}"
        pre = relu(Z)
        mask = masks[n]
        mask_obs = diagnose_mask(f"{prefix}.mask", mask, pre.shape, k, call.draws)
        observations.append(mask_obs)
        own = mask if mask is not None and mask_obs.diagnosis != "missing" else None
        other = masks[3 - n]
        cached = named[f"A{n}"]
        z_next_student = named[f"Z{n + 1}"]
        z_next_shape = (W_next.shape[0], X.shape[1])
        # What actually flowed into the next layer? Normally the cached A; if the cache holds
        # the pre-dropout activation but the next layer saw a dropout result, the latter.
        flowed = cached
        if (tol.close(cached, pre) and z_next_student is not None
                and not tol.close(z_next_student, W_next @ cached + b_next)):
            for candidate in _dropout_candidates(pre, own, other, k):
                if tol.close(z_next_student, W_next @ candidate + b_next):
                    flowed = candidate
                    observations.append(_obs("forward.cache", WRONG, "stale_activation",
                                             value=cached, layer=n))
                    break
        observations += _dropout_observations(prefix, np.asarray(flowed, dtype=float), pre,
                                              mask_obs, own, other, k, tol)
        # propagate: the next layer must be computed from the dropout result.
        expected_next = W_next @ flowed + b_next
        if tol.close(z_next_student, expected_next):
            observations.append(_obs(f"{prefix}.propagate"))
        elif tol.close(z_next_student, W_next @ pre + b_next):
            observations.append(_obs(f"{prefix}.propagate", WRONG, "stale",
                                     value=z_next_student, layer=n))
        else:
            observations.append(_obs(f"{prefix}.propagate", WRONG, "wrong_value",
                                     value=z_next_student, layer=n))
        Z = z_next_student if _usable(z_next_student, z_next_shape) else expected_next

    # Output layer: sigmoid of Z3, with no dropout.
    A3 = _float(values.get("0"))
    expected = sigmoid(Z)
    if tol.close(A3, expected):
        observations.append(_obs("forward.output"))
    elif A3 is not None and A3.shape == expected.shape and _looks_dropped_out(A3, expected, k, tol):
        observations.append(_obs("forward.output", WRONG, "dropout_applied", value=A3))
    else:
        observations.append(_obs("forward.output", WRONG, "wrong_value", value=A3))

    if cache_problems and not any(o.step == "forward.cache" for o in observations):
        observations.append(_obs("forward.cache", WRONG, "wrong_value",
                                 detail=", ".join(cache_problems)))
    elif not any(o.step == "forward.cache" for o in observations):
        observations.append(_obs("forward.cache"))
    return observations


def _dropout_candidates(pre, own, other, k):
    for apply in APPLY_VARIANTS:
        base = masked(pre, apply, own, other)
        if base is None or base.shape != pre.shape or apply == "missing":
            continue
        for factor in SCALE_VARIANTS.values():
            yield base * factor(k)


def _looks_dropped_out(actual, expected, k, tol) -> bool:
    """Output values that are the sigmoid scaled by a dropout factor, or with units zeroed."""
    if any(tol.close(actual, expected * f(k)) for f in SCALE_VARIANTS.values()):
        return True
    zeroed = np.isclose(actual, 0) & ~np.isclose(expected, 0)
    kept = ~zeroed
    if zeroed.any() and kept.any():
        ratio = actual[kept] / expected[kept]
        return bool(np.allclose(ratio, ratio[0], rtol=1e-6))
    return False


# --- backward -----------------------------------------------------------------------------
def diagnose_backward(probe: ProbeInputs, call: CallRecord, tol: Tolerance) -> list[Observation]:
    k, X, Y = probe.keep_prob, probe.X, probe.Y
    Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3 = probe.cache
    m = X.shape[1]
    grads = {key: _float(value) for key, value in call.values.items()}
    observations: list[Observation] = []
    wrong_gradients: list[tuple[str, np.ndarray]] = []

    def used(key, expected):
        """The student's value if usable (error carried forward), else the expected one."""
        value = grads.get(key)
        return value if _usable(value, expected.shape) else expected

    def check(key, *expected_forms):
        value = grads.get(key)
        if not any(tol.close(value, form) for form in expected_forms):
            wrong_gradients.append((key, value))
        return used(key, expected_forms[0])

    # Output layer: dZ3 = A3 - Y, no dropout.
    dZ3_expected = A3 - Y
    dZ3 = grads.get("dZ3")
    if tol.close(dZ3, dZ3_expected):
        observations.append(_obs("backward.output"))
    elif dZ3 is not None and dZ3.shape == dZ3_expected.shape and _looks_dropped_out(dZ3, dZ3_expected, k, tol):
        observations.append(_obs("backward.output", WRONG, "dropout_applied", value=dZ3))
    else:
        observations.append(_obs("backward.output"))
        wrong_gradients.append(("dZ3", dZ3))
    dZ3 = used("dZ3", dZ3_expected)
    check("dW3", dZ3 @ A2.T / m)
    check("db3", dZ3.sum(axis=1, keepdims=True) / m)

    dZ_upper, W_upper = dZ3, W3
    for n, D, D_other, A, A_prev, Z in ((2, D2, D1, A2, A1, Z2), (1, D1, D2, A1, X, Z1)):
        prefix = f"backward.layer{n}"
        raw = W_upper.T @ dZ_upper
        value = grads.get(f"dA{n}")
        if not _usable(value, raw.shape):
            observations += [_obs(f"{prefix}.mask", NOTE, "not_assessed",
                                  detail=f"dA{n} is not an array of shape {raw.shape}"),
                             _obs(f"{prefix}.scale", NOTE, "not_assessed",
                                  detail=f"dA{n} is not an array of shape {raw.shape}")]
            wrong_gradients.append((f"dA{n}", value))
            dA = raw * D / k
        else:
            observations += _backward_layer(prefix, value, raw, D, D_other, k, tol, call.draws)
            dA = value
        dZ = check(f"dZ{n}", dA * (A > 0), dA * (Z > 0))
        check(f"dW{n}", dZ @ A_prev.T / m)
        check(f"db{n}", dZ.sum(axis=1, keepdims=True) / m)
        dZ_upper, W_upper = dZ, W2  # layer 1's dA comes through W2

    if wrong_gradients:
        key, value = wrong_gradients[0]
        observations.append(_obs("backward.gradients", WRONG, "wrong", value=value,
                                 key=key, keys=", ".join(k_ for k_, _ in wrong_gradients)))
    else:
        observations.append(_obs("backward.gradients"))
    return observations


def _dropped_nonzero(value, mask) -> int:
    """How many entries of units the mask drops still carry a value."""
    if mask is None or np.shape(mask) != np.shape(value):
        return 0
    return int(np.count_nonzero((np.asarray(mask) == 0) & (np.abs(value) > 1e-12)))


def _backward_layer(prefix, value, raw, D, D_other, k, tol, draws):
    matches = fit_dropout(value, raw, D, D_other, k, tol)
    if len(matches) > 1:
        return _ambiguous(prefix, "mask", "scale", matches)
    if matches:
        apply, scale, factor = matches[0]
        shown = value if apply == "missing" else masked(raw, apply, D, D_other)
        mask_obs = (_obs(f"{prefix}.mask") if apply == "ok"
                    else _obs(f"{prefix}.mask", WRONG, apply, value=shown,
                              dropped_nonzero=_dropped_nonzero(value, D)))
    else:
        # A mask that is neither the cached one nor the other layer's: drawn afresh?
        kept = np.abs(value) > 1e-12
        fresh = kept.astype(float)
        refit = fit_dropout(value, raw, fresh, None, k, tol)
        if len(refit) != 1 or refit[0][0] != "ok" or not draws:
            return [_obs(f"{prefix}.mask", NOTE, "not_assessed",
                         detail="dA matches no form of mask times a constant"),
                    _obs(f"{prefix}.scale", WRONG, "wrong_value", value=value, keep_prob=k)]
        _, scale, factor = refit[0]
        mask_obs = _obs(f"{prefix}.mask", WRONG, "regenerated", value=raw * fresh,
                        draw=f"np.random.{draws[0].function}({draws[0].arguments})")
    evidence = dict(keep_prob=k, factor=round(factor, 4), divisor=round(1 / factor, 4),
                    ratio=round(factor * k, 4))
    scale_obs = (_obs(f"{prefix}.scale", **evidence) if scale == "ok"
                 else _obs(f"{prefix}.scale", WRONG, scale, value=value, **evidence))
    return [mask_obs, scale_obs]


def diagnose(role: str, probe: ProbeInputs, call: CallRecord, tol: Tolerance) -> list[Observation]:
    if role == "forward":
        return diagnose_forward(probe, call, tol)
    return diagnose_backward(probe, call, tol)
