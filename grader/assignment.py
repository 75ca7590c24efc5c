"""The contract between the grader's core and an assignment (DESIGN §2, "an assignment is a
plugin"), and how assignments are found.

The core knows nothing of dropout, layers or keep_prob. An assignment tells it which functions
it grades (its roles), how to turn a rubric's probe parameters into call arguments, how to
judge one call's observed values (`diagnose`, answering `Observation`s per step), the steps
and diagnosis ids it can report, and the stand-in helper modules the sandboxed child may
import. Assignments are registered under the entry-point group `dropout_grader.assignments`,
so a course ships its own as a separate package:

    [project.entry-points."dropout_grader.assignments"]
    my_dropout = "my_course.grading:ASSIGNMENT"

and its rubric says `assignment: my_dropout`. The built-in ones (dropout, l2) register the
same way in this project's pyproject.toml.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from dropout_grader.observations import CallRecord, Observation

ENTRY_POINT_GROUP = "dropout_grader.assignments"


class ProbeParameters(BaseModel):
    """What every probe has; an assignment subclasses this with its own parameters (keep_prob,
    lambd, layer widths, ...), which the rubric's `probes` entries are validated against."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    seed: int = Field(ge=0, description="seeds the probe's inputs and np.random before each call")


@runtime_checkable
class Assignment(Protocol):
    """One assignment's knowledge, as the core uses it. Attributes are read once per run."""

    name: str  # what a rubric's `assignment:` names
    namespace: str  # prefix of its step ids in results ("" keeps them as they are)
    roles: tuple[str, ...]  # the graded functions' roles, in the order a student writes them
    steps: Mapping[str, tuple[str, ...]]  # step id -> the diagnosis ids it can carry
    notes: frozenset[str]  # diagnoses that are valid code done another way (verdict "note")
    placeholders: frozenset[str]  # what the rubric's messages may use
    step_groups: Mapping[str, tuple[str, ...]]  # `{layer}` in a rubric key -> its values
    arguments: Mapping[str, str]  # role -> how it is called, for messages ("X, parameters, keep_prob")
    returns: Mapping[str, str]  # role -> what it should return, for messages
    standins: Path  # folder of helper modules the child may import (never the answer key)
    probe_model: type[ProbeParameters]
    # Roles whose first probe is run a second time with every random stream keyed differently
    # underneath (the call record's `rekeyed`): what the student drew must change with it.
    stream_check_roles: tuple[str, ...]

    def check_probes(self, probes: list[Any]) -> None:
        """Rules across probes (raise ValueError with a message naming `probes`)."""

    def make_probe(self, probe: Any) -> Any:
        """The inputs of one probe, from its validated parameters (done once per run)."""

    def call_arguments(self, role: str, inputs: Any) -> list:
        """The positional arguments `role`'s function is called with on these inputs."""

    def probe_facts(self, probe: Any) -> dict[str, Any]:
        """Evidence every message about this probe may use (e.g. {"keep_prob": 0.7})."""

    def student_names(self, role: str, parameters: tuple[str, ...]) -> dict[str, str]:
        """The student's own names for the template's parameters, for messages ({kp})."""

    def check_return(self, role: str, returned: dict) -> str | None:
        """What is wrong with the structure of a returned value, as the sandbox described it."""

    def diagnose(self, role: str, inputs: Any, call: CallRecord, tolerance: Any) -> list[Observation]:
        """Observations of every step this call lets the assignment judge (one probe)."""

    def source_files(self) -> list[Path]:
        """The files whose content can change a grade (the gradebook's build id)."""


# The members of the contract, to name what a broken plugin lacks.
CONTRACT = ("name", "namespace", "roles", "steps", "notes", "placeholders", "step_groups", "arguments",
            "returns", "standins", "probe_model", "stream_check_roles", "check_probes", "make_probe",
            "call_arguments", "probe_facts", "student_names", "check_return", "diagnose", "source_files")


class AssignmentError(Exception):
    """No assignment of that name is registered, or the one registered is broken."""


def available() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def load_assignment(name: str) -> Assignment:
    """The assignment registered as `name` in the entry-point group."""
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        names = ", ".join(available()) or "none"
        raise AssignmentError(f"no assignment {name!r} is installed (registered: {names})")
    try:
        assignment = found[0].load()
    except ImportError as exc:
        raise AssignmentError(f"assignment {name!r} ({found[0].value}) cannot be imported: {exc}") from None
    if isinstance(assignment, type):
        assignment = assignment()
    missing = [member for member in CONTRACT if not hasattr(assignment, member)]
    if missing:
        raise AssignmentError(f"assignment {name!r} ({found[0].value}) does not implement the contract: "
                              f"it lacks {', '.join(missing)}")
    return assignment


def qualified(assignment: Assignment, step: str) -> str:
    """A step id as results show it: the assignment's namespace, then its own id."""
    return f"{assignment.namespace}.{step}" if assignment.namespace else step
