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
from dropout_grader.reference.dropout_masks import observation, read_mask
from dropout_grader.reference.dropout_values import (PARAMETERS, as_float, describe_node, expected_shapes,
                                                     read_cache, widened)


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


def _identical(actual, expected) -> bool:
    """Equal entry for entry and shape: then Tolerance.close holds too (its tolerances are
    never negative; inf == inf is close there as well)."""
    return actual is not None and np.shape(actual) == np.shape(expected) and bool(np.array_equal(actual, expected))


def _usable(value, shape) -> bool:
    return value is not None and np.shape(value) == shape and bool(np.isfinite(value).all())


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
    bases = [(apply, base) for apply in APPLY_VARIANTS
             if (base := masked(pre, apply, own_mask, other_mask)) is not None and base.shape == np.shape(value)]
    factors = [(scale, factor(k)) for scale, factor in SCALE_VARIANTS.items()]
    possible = _screen(value, [base for _, base in bases], [f for _, f in factors], tol)
    matches = [(apply, scale, f) for i, (apply, base) in enumerate(bases) for j, (scale, f) in enumerate(factors)
               if possible[i][j] and tol.close(value, base * f)]
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


# Entries of a layer the screen below looks at: enough that a wrong variant almost always
# differs on one of them, few enough that all variants are compared in one small operation.
SCREEN_ENTRIES = 64


def _screen(value, bases: list, factors: list[float], tol: Tolerance) -> list[list[bool]]:
    """Which `base * factor` variants may be close to `value`, judged on a strided sample of
    entries: a variant that is not close (Tolerance.close's rule) on a sampled entry where both
    numbers are finite is not close on the whole array either, so only the survivors (usually
    the one variant that fits) are compared in full. Where the sample cannot be computed
    exactly as the full comparison computes it (not float64), every variant survives."""
    everything = [[True] * len(factors) for _ in bases]
    value = np.asarray(value)
    if not bases or value.size <= SCREEN_ENTRIES or any(b.dtype != np.float64 for b in bases):
        return everything
    step = value.size // SCREEN_ENTRIES
    sample = value.reshape(-1)[::step]
    with np.errstate(all="ignore"):
        # bases x factors x entries, each product the very one `base * factor` makes
        candidates = np.stack([b.reshape(-1)[::step] for b in bases])[:, None, :] * np.array(factors)[None, :, None]
        close = np.abs(sample - candidates) <= tol.atol + tol.rtol * np.abs(candidates)
        refuted = ~close & np.isfinite(sample) & np.isfinite(candidates)
    return (~refuted.any(axis=2)).tolist()


def _ambiguous(prefix: str, first: str, second: str, matches) -> list[Observation]:
    both = " and ".join(f"'{a} mask, {s} scale'" for a, s, _ in matches[:2])
    detail = f"on this probe the values fit both {both}"
    return [_obs(f"{prefix}.{first}", NOTE, "not_assessed", detail=detail),
            _obs(f"{prefix}.{second}", NOTE, "not_assessed", detail=detail)]


def _dropout_observations(prefix, value, pre, mask_obs, own_mask, other_mask, k, tol):
    """The apply and scale observations of one layer, from the value that flowed on."""
    matches = fit_dropout(value, pre, own_mask, other_mask, k, tol)
    mask_missing = mask_obs.diagnosis == "missing"
    if not matches and mask_obs.diagnosis in ("wrong_shape", "not_binary"):
        # one mistake is charged once: the mask's own finding already says it
        detail = f"the mask's {'shape' if mask_obs.diagnosis == 'wrong_shape' else 'values'} are wrong (see the mask step)"
        return [_obs(f"{prefix}.apply", NOTE, "not_assessed", detail=detail),
                _obs(f"{prefix}.scale", NOTE, "not_assessed", detail=detail)]
    if not matches:
        return [_obs(f"{prefix}.apply", NOTE, "not_assessed",
                     detail="the layer's values match no form of mask times a constant"),
                _obs(f"{prefix}.scale", WRONG, "wrong_value", value=value, keep_prob=k)]
    if len(matches) > 1:
        ambiguous = _ambiguous(prefix, "apply", "scale", matches)
        if mask_obs.verdict == WRONG:
            # the wrong mask (all dropped, say) is what hides these steps: charged once, there
            for obs in ambiguous:
                obs.evidence["credited"] = True
        return ambiguous
    apply, scale, factor = matches[0]
    if apply == "ok" or (apply == "missing" and mask_missing):
        apply_obs = _obs(f"{prefix}.apply")
        if mask_missing:  # charged once, on the mask step
            apply_obs = _obs(f"{prefix}.apply", NOTE, "not_assessed",
                             detail="there is no mask to apply", credited=True)
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
    cache, malformed = read_cache(probe, call)
    if malformed is not None:
        return [malformed]
    named = cache.named
    shapes = expected_shapes(probe)
    twin = _rekeyed_masks(probe, call.rekeyed)
    observations: list[Observation] = [cache.problem] if cache.problem else []
    # The parameters come back as they were passed, equal to the bit: say so cheaply first.
    cache_problems = [name for name in PARAMETERS
                      if not (_identical(named[name], P[name]) or tol.close(named[name], P[name]))]

    # The masks first: each layer's dropout is judged with the student's own mask.
    mask_obs: dict[int, Observation] = {}
    own: dict[int, np.ndarray | None] = {}
    for n in (1, 2):
        index = CACHE_KEYS.index(f"D{n}")
        absent = f"entry {index} of the cache, D{n}, is {describe_node(cache.nodes[f'D{n}'])}"
        mask_obs[n], own[n] = read_mask(f"forward.layer{n}.mask", named[f"D{n}"], shapes[f"D{n}"], k,
                                        call.draws, other=own.get(1) if n == 2 else None,
                                        rekeyed=twin.get(f"D{n}"), absent=absent)
        if mask_obs[n].diagnosis == "missing":
            own[n] = None  # nothing to apply: the layer's values are read without a mask

    # Layer by layer, each on the student's own upstream values.
    z_expected = P["W1"] @ X + P["b1"]
    Z1 = named["Z1"]
    Z = Z1
    if tol.close(Z1, z_expected):
        pass
    elif _dropout_on(Z1, z_expected, own[1], own[2], k, tol):
        Z = z_expected  # dropout applied to Z1 before relu: relu(Z*D/k) == relu(Z)*D/k
    else:
        dropped_input = _input_dropout(Z1, X, P["W1"], P["b1"])
        if dropped_input is not None:
            observations.append(_obs("forward.cache", WRONG, "input_dropout", value=dropped_input,
                                     detail=f"Z1 is W1 @ X' + b1 for an X' with {_share(dropped_input)} of "
                                            "its entries zeroed"))
        else:
            cache_problems.append("Z1")
        if not _usable(Z1, z_expected.shape):
            Z = z_expected
    for n in (1, 2):
        W_next, b_next = P[f"W{n + 1}"], P[f"b{n + 1}"]
        prefix = f"forward.layer{n}"
        pre = relu(Z)
        observations.append(mask_obs[n])
        mine, other = own[n], own[3 - n]
        cached = named[f"A{n}"]
        z_next_student = named[f"Z{n + 1}"]
        z_next_shape = (W_next.shape[0], X.shape[1])
        # What actually flowed into the next layer? Normally the cached A; if the cache holds
        # the pre-dropout activation but the next layer saw a dropout result, the latter.
        flowed = cached
        if (tol.close(cached, pre) and z_next_student is not None
                and not tol.close(z_next_student, W_next @ cached + b_next)):
            for candidate in _dropout_candidates(pre, mine, other, k):
                if tol.close(z_next_student, W_next @ candidate + b_next):
                    flowed = candidate
                    observations.append(_obs("forward.cache", WRONG, "stale_activation",
                                             value=cached, layer=n))
                    break
        observations += _dropout_observations(prefix, np.asarray(flowed, dtype=float), pre,
                                              mask_obs[n], mine, other, k, tol)
        # propagate: the next layer must be computed from the dropout result.
        expected_next = W_next @ flowed + b_next
        next_z = z_next_student if _usable(z_next_student, z_next_shape) else expected_next
        if tol.close(z_next_student, expected_next):
            observations.append(_obs(f"{prefix}.propagate"))
        elif n == 1 and _dropout_on(z_next_student, expected_next, own[2], own[1], k, tol):
            observations.append(_obs(f"{prefix}.propagate"))  # layer 2's dropout on Z2
            next_z = expected_next
        elif tol.close(z_next_student, W_next @ pre + b_next):
            observations.append(_obs(f"{prefix}.propagate", WRONG, "stale",
                                     value=z_next_student, layer=n))
        else:
            observations.append(_obs(f"{prefix}.propagate", WRONG, "wrong_value",
                                     value=z_next_student, layer=n))
        Z = next_z

    # Output layer: sigmoid of Z3, with no dropout.
    A3 = as_float(call.values.get("0"))
    expected = sigmoid(Z)
    if tol.close(A3, expected):
        observations.append(_obs("forward.output"))
    elif A3 is not None and A3.shape == expected.shape and _looks_dropped_out(A3, expected, k, tol):
        observations.append(_obs("forward.output", WRONG, "dropout_applied", value=A3))
    else:
        items = call.shape_of_return.get("items") or [{}]
        what = (f"A3 has shape {A3.shape}, not {expected.shape}" if A3 is not None and A3.shape != expected.shape
                else f"A3 is {describe_node(items[0])}" if A3 is None else "")
        observations.append(_obs("forward.output", WRONG, "wrong_value", value=A3, detail=what))

    if cache_problems and not any(o.step == "forward.cache" for o in observations):
        observations.append(_obs("forward.cache", WRONG, "wrong_value",
                                 detail=", ".join(cache_problems)))
    elif not any(o.step == "forward.cache" for o in observations):
        observations.append(_obs("forward.cache"))
    return observations


def _rekeyed_masks(probe: ProbeInputs, call: CallRecord | None) -> dict[str, np.ndarray]:
    """The masks of the same probe run with every random stream keyed differently."""
    if call is None or call.status != "returned":
        return {}
    cache, problem = read_cache(probe, call)
    if cache is None:
        return {}
    return {name: cache.named[name] for name in ("D1", "D2") if cache.named[name] is not None}


def _dropout_on(value, base, own, other, k, tol) -> bool:
    """`value` is `base` (a pre-activation) with this layer's own mask applied, scaled or
    not: dropout done before relu, which relu(Z * D / k) == relu(Z) * D / k makes valid."""
    if value is None or own is None or np.shape(value) != np.shape(base):
        return False
    return any(apply == "ok" for apply, _, _ in fit_dropout(value, base, own, other, k, tol))


def _input_dropout(Z1, X, W1, b1) -> np.ndarray | None:
    """If Z1 is W1 @ X' + b1 for an X' that is X with entries zeroed and/or scaled (dropout on
    the input layer), that X'; else None."""
    if Z1 is None or Z1.shape != (W1.shape[0], X.shape[1]) or not np.all(np.isfinite(Z1)):
        return None
    solved, *_ = np.linalg.lstsq(W1, Z1 - b1, rcond=None)
    if not np.allclose(W1 @ solved + b1, Z1, rtol=1e-6, atol=1e-8):
        return None
    kept = np.abs(solved) > 1e-9 * max(1.0, float(np.abs(X).max()))
    if not kept.any():
        return None
    factor = float(np.median(solved[kept] / X[kept]))
    dropped = X * kept * factor
    if not np.allclose(solved, dropped, rtol=1e-6, atol=1e-8):
        return None
    if kept.all() and abs(factor - 1) < 1e-9:
        return None
    return dropped


def _share(dropped: np.ndarray) -> str:
    return f"{float(np.mean(dropped == 0)):.0%}"


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
        dZ_forms = []
        if not _usable(value, raw.shape):
            what = _what_is(call, f"dA{n}", value, raw.shape)
            observations += [_obs(f"{prefix}.mask", NOTE, "not_assessed", detail=f"dA{n} {what}"),
                             _obs(f"{prefix}.scale", NOTE, "not_assessed", detail=f"dA{n} {what}")]
            wrong_gradients.append((f"dA{n}", value))
            dA = raw * D / k
        else:
            layer = _backward_layer(prefix, value, raw, D, D_other, A, k, tol, call.draws)
            moved = _dropout_on_dZ(prefix, layer, grads.get(f"dZ{n}"), raw, A, k, tol)
            if moved:
                layer, accepted = moved
                dZ_forms.append(accepted)  # charged once, on the mask step
            observations += layer
            dA = value
        dZ = check(f"dZ{n}", dA * (A > 0), dA * (Z > 0), *dZ_forms)
        check(f"dW{n}", dZ @ A_prev.T / m)
        check(f"db{n}", dZ.sum(axis=1, keepdims=True) / m)
        dZ_upper, W_upper = dZ, W2  # layer 1's dA comes through W2

    if wrong_gradients:
        key, value = wrong_gradients[0]
        shapes = _gradient_shapes(probe)
        observations.append(_obs("backward.gradients", WRONG, "wrong", value=value,
                                 key=key, keys=", ".join(k_ for k_, _ in wrong_gradients),
                                 detail=_what_is(call, key, value, shapes.get(key))))
    else:
        observations.append(_obs("backward.gradients"))
    return observations


def _dropped_nonzero(value, mask) -> int:
    """How many entries of units the mask drops still carry a value."""
    if mask is None or np.shape(mask) != np.shape(value):
        return 0
    return int(np.count_nonzero((np.asarray(mask) == 0) & (np.abs(value) > 1e-12)))


def _gradient_shapes(probe: ProbeInputs) -> dict[str, tuple]:
    shapes = {}
    for n in (1, 2, 3):
        W = probe.parameters[f"W{n}"]
        shapes.update({f"dZ{n}": (W.shape[0], probe.X.shape[1]), f"dW{n}": W.shape, f"db{n}": (W.shape[0], 1)})
        if n < 3:
            shapes[f"dA{n}"] = (W.shape[0], probe.X.shape[1])
    return shapes


def _what_is(call: CallRecord, key: str, value, shape) -> str:
    """What is wrong with a returned gradient, in words: None, a shape, or its values."""
    if value is None:
        node = ((call.shape_of_return.get("keys") or {}).get(key)) or {}
        return f"is {describe_node(node)}, not an array" + (f" of shape {shape}" if shape else "")
    if shape is not None and value.shape != tuple(shape):
        return f"has shape {value.shape}, not {tuple(shape)}"
    if not np.all(np.isfinite(value)):
        return "holds NaN or infinite values"
    return "is not what your own upstream values give"


def _dropout_on_dZ(prefix, layer, dZ, raw, A, k, tol):
    """Dropout moved from dA to dZ: dA left as W.T @ dZ, and dZ = dA * relu'(A) * D / k. The
    returned dZ (and so dW, db) are right; the one mistake is on dA, named once."""
    if [o.diagnosis for o in layer] != ["missing", "missing"] or dZ is None or dZ.shape != raw.shape:
        return None
    base = raw * (A > 0)  # D is 1 wherever A > 0, so the mask adds nothing here
    for scale, factor in SCALE_VARIANTS.items():
        if scale != "missing" and tol.close(dZ, base * factor(k)):
            evidence = dict(keep_prob=k, factor=round(factor(k), 4), divisor=round(1 / factor(k), 4),
                            ratio=round(factor(k) * k, 4))
            mask = _obs(f"{prefix}.mask", WRONG, "applied_to_dZ", value=dZ)
            scale_obs = (_obs(f"{prefix}.scale", **evidence) if scale == "ok"
                         else _obs(f"{prefix}.scale", WRONG, scale, value=dZ, **evidence))
            return [mask, scale_obs], dZ
    return None


def _from_activations(prefix, value, raw, A, k, tol):
    """dA masked with the activations' sign pattern (A > 0) instead of the cached D."""
    base = raw * (A > 0)
    for scale, factor in SCALE_VARIANTS.items():
        if tol.close(value, base * factor(k)):
            evidence = dict(keep_prob=k, factor=round(factor(k), 4), divisor=round(1 / factor(k), 4),
                            ratio=round(factor(k) * k, 4))
            scale_obs = (_obs(f"{prefix}.scale", **evidence) if scale == "ok"
                         else _obs(f"{prefix}.scale", WRONG, scale, value=value, **evidence))
            # the line that masked (before any scaling) is the one at fault
            mask = _obs(f"{prefix}.mask", WRONG, "from_activations", value=base)
            mask.alternative = value  # masked and scaled on one line
            return [mask, scale_obs]
    return None


def _backward_layer(prefix, value, raw, D, D_other, A, k, tol, draws):
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
        from_activations = _from_activations(prefix, value, raw, A, k, tol)
        if from_activations:
            return from_activations
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
    tol = Tolerance(*widened(tol.rtol, tol.atol, call))
    if role == "forward":
        return diagnose_forward(probe, call, tol)
    return diagnose_backward(probe, call, tol)
