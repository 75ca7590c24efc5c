"""The L2-regularization assignment's diagnosis, on its own: every variant of
benchmarks/l2_mutants.py (our own code, run in this process) is called on the probes, and the
merged findings must be exactly the variant's expected ones."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from dropout_grader.assess import merge_observations
from dropout_grader.observations import WRONG, CallRecord
from dropout_grader.reference import l2
from dropout_grader.reference.l2_diagnosis import diagnose

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from l2_mutants import VARIANTS  # noqa: E402

# lambd = 0 first: a constant in place of lambd shows there; widths unlike the examples.
PROBES = [l2.make_probe(1, [3, 20, 7, 1], 25, 0.0), l2.make_probe(2, [4, 18, 11, 1], 30, 0.7),
          l2.make_probe(3, [3, 16, 9, 1], 40, 1.9)]


def record(role: str, probe, returned) -> CallRecord:
    """What the sandbox would report: a number at "" for the cost, the dict's arrays by key."""
    if role == "cost":
        values = {"": np.asarray(returned)}
    else:
        values = {k: np.asarray(v) for k, v in returned.items()}
    return CallRecord(role=role, probe=str(id(probe)), status="returned", values=values)


def findings(variant) -> set[tuple[str, str]]:
    namespace: dict = {}
    exec(compile(variant.source, variant.name, "exec"), namespace)  # noqa: S102 - our own mutants
    function = namespace["compute_cost_with_regularization" if variant.role == "cost"
                         else "backward_propagation_with_regularization"]
    per_probe = []
    for probe in PROBES:
        call = record(variant.role, probe, function(*l2.call_arguments(variant.role, probe)))
        per_probe.append((call, diagnose(variant.role, probe, call, 1e-6, 1e-9)))
    steps = [s for s in l2.STEPS if s.startswith(f"{variant.role}.") and not s.endswith(".function")]
    merged = merge_observations(steps, per_probe)
    for step, (obs, _) in merged.items():
        assert obs.diagnosis is None or obs.diagnosis in l2.STEPS[step] or obs.diagnosis in l2.NOTES, (step, obs)
    return {(step, obs.diagnosis) for step, (obs, _) in merged.items() if obs.verdict == WRONG}


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
def test_each_variant_gets_exactly_its_findings(variant):
    assert findings(variant) == set(variant.expected)


def test_every_catalogue_entry_that_a_variant_can_show_is_covered():
    shown = {pair for v in VARIANTS for pair in v.expected}
    steps = {step.replace("layer1", "layer{n}").replace("layer2", "layer{n}").replace("layer3", "layer{n}")
             for step, _ in shown}
    assert {"cost.penalty.scale", "cost.penalty.terms", "cost.cross_entropy", "backward.layer{n}.dW.penalty",
            "backward.gradients"} <= steps


def test_the_reference_solution_is_its_own_answer():
    for probe in PROBES:
        A3, Y = probe.A3, probe.Y
        cost = l2.cost(A3, Y, probe.parameters, probe.lambd)
        obs = diagnose("cost", probe, record("cost", probe, cost), 1e-6, 1e-9)
        assert all(o.verdict == "ok" for o in obs)
        grads = l2.backward(probe.X, Y, probe.cache, probe.lambd)
        obs = diagnose("backward", probe, record("backward", probe, grads), 1e-6, 1e-9)
        assert all(o.verdict == "ok" for o in obs), [o for o in obs if o.verdict != "ok"]


@pytest.mark.parametrize("bad", [None, np.nan, np.inf, np.zeros((2, 2)), np.array("x")])
def test_a_cost_that_is_not_a_number_is_a_finding_not_a_crash(bad):
    probe = PROBES[1]
    call = CallRecord(role="cost", probe="p", status="returned", values={} if bad is None else {"": np.asarray(bad)})
    obs = diagnose("cost", probe, call, 1e-6, 1e-9)
    assert {o.step for o in obs} == {"cost.cross_entropy", "cost.penalty.terms", "cost.penalty.scale"}
    assert any(o.verdict == WRONG for o in obs)


@pytest.mark.parametrize("mangle", ["missing", "transposed", "scalar", "nan", "strings", "int"])
def test_odd_gradient_values_are_findings_not_crashes(mangle):
    probe = PROBES[2]
    grads = {k: np.asarray(v) for k, v in l2.backward(probe.X, probe.Y, probe.cache, probe.lambd).items()}
    for key in ("dW2", "dZ2", "db1"):
        if mangle == "missing":
            del grads[key]
        elif mangle == "transposed":
            grads[key] = grads[key].T
        elif mangle == "scalar":
            grads[key] = np.asarray(1.0)
        elif mangle == "nan":
            grads[key] = np.full_like(grads[key], np.nan)
        elif mangle == "strings":
            grads[key] = np.asarray("x")
        else:
            grads[key] = grads[key].astype(int)
    call = CallRecord(role="backward", probe="p", status="returned", values=grads)
    obs = diagnose("backward", probe, call, 1e-6, 1e-9)
    assert any(o.verdict == WRONG for o in obs)
    assert {o.step for o in obs} == {s for s in l2.STEPS if s.startswith("backward.") and s != "backward.function"}
