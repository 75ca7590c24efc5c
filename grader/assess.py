"""Turn what came back from the sandbox into findings: decide whether each graded function
could be run at all, merge the reference module's per-probe observations, point each wrong
step at the notebook line that produced it, and attach the rubric's points and messages.

Nothing here is specific to dropout: the assignment module supplies the maths.
"""

from __future__ import annotations

import re
import signal
import string
from dataclasses import dataclass, field

from dropout_grader.assignment import qualified
from dropout_grader.extract import Extraction, GradedFunction
from dropout_grader.observations import (NOTE, OK, WRONG, CallRecord, Observation, fingerprint,
                                         same_summary, sequence_fingerprint, summary)
from dropout_grader.reply import ReplyError, call_record, validate
from dropout_grader.results import Finding
from dropout_grader.rubric import LoadedRubric
from dropout_grader.sandbox.batch import SectionRun
from dropout_grader.sandbox.protocol import ProtocolError

NOT_ASSESSED = "not_assessed"


@dataclass
class RoleRun:
    """Everything known about one graded function of one submission after the sandbox ran."""
    role: str
    function: GradedFunction | None
    calls: list[CallRecord]
    load_failures: list[dict]
    numpy_compat: list[str]
    outcome: Observation  # the `<role>.function` step
    output: str = ""  # what the student's code printed (capped)
    # The probes whose calls a finding that is not right was read from (set when assessed):
    # the ones to run again, traced, for the lines those findings point at.
    located: list[str] = field(default_factory=list)

    @property
    def assessable(self) -> list[CallRecord]:
        """Calls that returned: when the function raised on some probes only (a swapped mask
        breaks on unequal widths), the others still show which step is wrong."""
        return [c for c in self.calls if c.status == "returned"]


def decode_run(role: str, function: GradedFunction, run: SectionRun, rubric: LoadedRubric,
               extraction: Extraction, asked: list[str] | None = None) -> RoleRun:
    """Check the section's reply and judge whether the function ran; never trusts its content
    beyond numeric arrays and plain JSON. How the child ended matters only when the section
    gave no reply (batch.run_sections charges a child's end only to the section it was on
    first)."""
    step = f"{role}.function"
    facts = {"function": function.name, "arguments": rubric.assignment.arguments[role]}
    limits = rubric.spec.limits
    child = run.child
    output = run.output + ("\n[output truncated]\n" if run.output_truncated else "")
    empty = RoleRun(role, function, [], [], [], Observation(step, OK), output)
    if run.reply is None:
        if child.result_too_large:
            empty.outcome = Observation(step, WRONG, "bad_return", dict(
                facts, detail=f"more than {limits.result_mb} MB of data",
                expected=rubric.assignment.returns[role]))
            return empty
        killed_outside = child.signal == signal.SIGKILL and not child.killed_by_grader
        # RLIMIT_CPU sends SIGXCPU, then SIGKILL a second later to a child that ignores it.
        cpu_limit = child.signal == signal.SIGXCPU or (killed_outside and child.cpu_seconds >= limits.cpu_seconds)
        if child.timed_out or cpu_limit:
            limit = (f"{limits.wall_seconds:g} s" if child.timed_out else f"{limits.cpu_seconds} s of CPU time")
            empty.outcome = Observation(step, WRONG, "timeout", dict(facts, limit=limit))
            return empty
    try:
        if run.reply is None:
            raise ProtocolError(run.problem)
        header, arrays = run.reply
        if header.get("out_of_memory") is True:  # the harness's own last word (not an exit code,
            empty.outcome = Observation(step, WRONG, "memory", dict(  # which student code can fake)
                facts, limit=f"{limits.memory_mb} MB"))
            return empty
        reply = validate(header)
        records = [call_record(c, arrays) for c in reply.calls]
        calls = [c for c in records if not c.stream_key]
        asked = asked if asked is not None else [p.id for p in rubric.probes]
        if [c.probe for c in calls] != asked or any(c.role != role for c in records):
            raise ReplyError("the result does not answer the calls that were asked")
        for twin in (c for c in records if c.stream_key):  # the same probe, other streams
            original = next((c for c in calls if c.probe == twin.probe), None)
            if original is None:
                raise ReplyError("the result does not answer the calls that were asked")
            original.rekeyed = twin
    except (ProtocolError, ReplyError) as exc:
        # Only the child's reply is doubted here: a bug of the grader's own propagates.
        how = (f"killed by signal {signal.Signals(child.signal).name}" if child.signal
               else f"exited with code {child.exit_code}")
        if run.reply is None and child.signal == signal.SIGKILL and not child.killed_by_grader:
            # Not the grader's time limits (the CPU time is under them): the code killed itself,
            # or the system's out-of-memory killer took the process using the most memory.
            how += (f" after {child.cpu_seconds:.1f} s of CPU, not by the grader: most often the "
                    "machine ran out of memory")
        problem = str(exc)
        detail = ("the process ended without a result" if run.reply is None and not problem
                  else f"its result was malformed ({problem})")
        empty.outcome = Observation(step, WRONG, "error", dict(
            facts, error=f"gave no result: {detail} ({how}); does the code exit, crash or write to "
                         "file descriptors it does not own?"))
        return empty
    load_failures = [f.model_dump() for f in reply.load_failures]
    compat = [a[:40] for a in reply.numpy_compat][:10]
    role_run = RoleRun(role, function, calls, load_failures, compat, Observation(step, OK), output)
    role_run.outcome = _function_outcome(role_run, rubric, extraction, facts)
    return role_run


def _function_outcome(run: RoleRun, rubric: LoadedRubric, extraction: Extraction, facts) -> Observation:
    step = f"{run.role}.function"
    function = run.function
    probes = {p.id: p for p in rubric.probes}
    first_error: Observation | None = None
    for call in run.calls:
        probe = probes.get(call.probe)
        probe_facts = rubric.assignment.probe_facts(probe) if probe else {}
        evidence = dict(facts, probe=call.probe, **probe_facts)
        if call.status == "signature":
            return Observation(step, WRONG, "signature", dict(
                evidence, detail=f"it is defined as {function.name}({', '.join(function.parameters)})"))
        if call.status == "raised":
            error = call.error or {}
            kind = str(error.get("type", "Exception"))
            message = str(error.get("message", ""))
            where = _error_location(error, extraction)
            text = f"{kind}: {message}" if message else kind
            text += _failed_import_hint(kind, message, run.load_failures, extraction)
            if kind == "NotImplementedError" or function.template_untouched:
                return Observation(step, WRONG, "not_implemented", dict(
                    evidence, detail=f"calling it raised {text}"), value=where)
            if kind == "MemoryError":
                return Observation(step, WRONG, "memory", dict(
                    evidence, limit=f"{rubric.spec.limits.memory_mb} MB"), value=where)
            said = ", ".join(f"{k}={v}" for k, v in probe_facts.items())
            text = f"raised {text} on probe {call.probe}" + (f" ({said})" if said else "")
            first_error = first_error or Observation(step, WRONG, "error", dict(evidence, error=text), value=where)
            continue
        if call.status != "returned":
            return Observation(step, WRONG, "error", dict(evidence, error=f"did not complete ({call.status})"))
        if call.shape_of_return.get("type") == "None":
            diagnosis = "not_implemented" if function.template_untouched else "bad_return"
            return Observation(step, WRONG, diagnosis, dict(
                evidence, detail="None", expected=rubric.assignment.returns[run.role]))
        problem = (_too_large(call.shape_of_return, rubric.spec.limits.result_mb)
                   or rubric.assignment.check_return(run.role, call.shape_of_return))
        if problem:
            return Observation(step, WRONG, "bad_return", dict(
                evidence, detail=problem, expected=rubric.assignment.returns[run.role]))
    if first_error is not None:
        return first_error
    notes = []
    if run.numpy_compat:
        notes.append(Observation(step, NOTE, "numpy_compat", dict(
            facts, detail=", ".join(f"np.{a}" for a in run.numpy_compat))))
    if len(function.definitions) > 1:
        notes.append(Observation(step, NOTE, "defined_twice", dict(
            facts, count=len(function.definitions),
            cells=", ".join(str(c + 1) for c, _ in function.definitions))))
    if notes:
        first = notes[0]
        first.evidence["also"] = [n for n in notes[1:]]
        return first
    return Observation(step, OK)


def _too_large(structure, limit_mb: int) -> str | None:
    """The child describes, but does not send, arrays over its budget."""
    if not isinstance(structure, dict):
        return None
    if structure.get("too_large"):
        return f"an array of shape {tuple(structure.get('shape', ()))}, more than the {limit_mb} MB the grader accepts"
    for child in list(structure.get("items") or []) + list((structure.get("keys") or {}).values()):
        found = _too_large(child, limit_mb)
        if found:
            return found
    return None


def _error_location(error: dict, extraction: Extraction) -> tuple[int, int] | None:
    fragment, line = error.get("fragment"), error.get("line")
    if isinstance(fragment, int) and isinstance(line, int) and 0 <= fragment < len(extraction.fragments):
        frag = extraction.fragments[fragment]
        return frag.cell, frag.cell_line(line)
    return None


def _failed_import_hint(kind, message, load_failures, extraction) -> str:
    if kind != "NameError":
        return ""
    match = re.search(r"name '([^']+)' is not defined", message)
    if not match:
        return ""
    for failure in load_failures:
        index = failure.get("fragment")
        if isinstance(index, int) and 0 <= index < len(extraction.fragments):
            fragment = extraction.fragments[index]
            if match.group(1) in fragment.binds:
                return (f"; the statement that defines it, cell {fragment.cell + 1} line {fragment.first_line}, "
                        f"failed: {failure.get('type')}: {str(failure.get('message'))[:200]}")
    return ""


# --- merging the probes ------------------------------------------------------------------
def merge_observations(step_ids: list[str], per_probe: list[tuple[CallRecord, list[Observation]]]
                       ) -> dict[str, tuple[Observation, CallRecord | None]]:
    """Per step, the first wrong observation over the probes (in rubric order), else the first
    note, else ok. A step no probe could judge is reported as not assessed."""
    merged: dict[str, tuple[Observation, CallRecord | None]] = {}
    rank = {WRONG: 0, NOTE: 1, OK: 2}
    for call, observations in per_probe:
        for obs in observations:
            if obs.verdict == NOTE and obs.diagnosis == NOT_ASSESSED:
                current = merged.get(obs.step)
                if current is None:
                    merged[obs.step] = (obs, call)
                continue
            current = merged.get(obs.step)
            if current is None or current[0].diagnosis == NOT_ASSESSED or rank[obs.verdict] < rank[current[0].verdict]:
                merged[obs.step] = (obs, call)
    for step in step_ids:
        merged.setdefault(step, (Observation(step, NOTE, NOT_ASSESSED, {
            "detail": "an earlier step of this function was wrong, so this one could not be checked"}), None))
    return merged


def locate(obs: Observation, call: CallRecord | None, extraction: Extraction,
           function: GradedFunction | None) -> tuple[int | None, int | None]:
    """The notebook (cell, line) that produced the observed value: the first traced write of
    an array equal to it. Falls back to the function's definition."""
    if isinstance(obs.value, tuple):
        return obs.value
    if obs.verdict == WRONG and obs.value is not None and call is not None:
        valid = [w for w in call.writes if 0 <= w.fragment < len(extraction.fragments)]
        for value in (obs.value, obs.alternative):
            if value is None:
                continue
            if isinstance(value, list):  # a container (a cache): its items' fingerprints
                wanted, approximately = sequence_fingerprint(value), ()
            else:
                wanted, approximately = fingerprint(value), summary(value)
            # The exact array first; else one equal up to rounding (a value the grader rebuilt).
            write = (next((w for w in valid if w.fingerprint == wanted), None)
                     or next((w for w in valid if same_summary(w.summary, approximately)), None))
            if write is not None:
                fragment = extraction.fragments[write.fragment]
                return fragment.cell, fragment.cell_line(write.line)
    if function is not None and obs.verdict == WRONG:
        return function.cell, function.line
    return None, None


class _Evidence(dict):
    def __missing__(self, key):
        return "?"


def render(template: str, evidence: dict) -> str:
    try:
        return template.format_map(_Evidence(evidence))
    except (ValueError, TypeError, IndexError, KeyError):
        # A format spec that does not fit the value ("{keep_rate:.0%}" with "?"): plain text.
        plain = _Evidence({k: str(v) for k, v in evidence.items()})
        return string.Formatter().vformat(re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", template), (), plain)


def to_finding(obs: Observation, rubric: LoadedRubric, where: tuple[int | None, int | None],
               probe_facts: dict) -> Finding:
    step = rubric.steps[obs.step]
    evidence = dict(probe_facts)
    evidence.update(rubric.groups.get(obs.step, {}))  # {layer} of an expanded step
    evidence.update(obs.evidence)
    if obs.diagnosis is None:
        message = render(step.ok, evidence)
    else:
        message = render(step.messages.get(obs.diagnosis, obs.diagnosis), evidence)
    for extra in obs.evidence.get("also", []):
        message += " " + render(step.messages.get(extra.diagnosis, ""), dict(evidence, **extra.evidence))
    full = step.points
    # A step not assessed earns nothing, unless the assignment credits it: it could not be
    # seen only because of a mistake already charged on an earlier step (charged once).
    credited = obs.diagnosis == NOT_ASSESSED and obs.evidence.get("credited") is True
    earned = full if obs.verdict == OK or (obs.verdict == NOTE and obs.diagnosis != NOT_ASSESSED) or credited else 0.0
    cell, line = where
    return Finding(step=qualified(rubric.assignment, obs.step), verdict=obs.verdict, diagnosis=obs.diagnosis, points=earned,
                   max_points=full, message=message, cell=cell, line=line)
