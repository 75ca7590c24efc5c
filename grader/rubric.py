"""The rubric: points, messages, probe inputs, tolerances and limits, read from YAML and
validated so that a mistake in it is reported by key, before any notebook is graded."""

from __future__ import annotations

import hashlib
import importlib.resources
import string
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dropout_grader.assignment import Assignment, AssignmentError, ProbeParameters, load_assignment

# Shipped inside the package (dropout_grader.rubrics), found the same way in every install.
RUBRICS = Path(str(importlib.resources.files("dropout_grader.rubrics")))
DEFAULT_RUBRIC = RUBRICS / "dropout.yaml"  # the dropout exercise alone
DEFAULT_COURSE = RUBRICS / "regularization.yaml"  # what `grade` grades: the whole notebook


class RubricError(Exception):
    """The rubric cannot be used; the message names the file and the offending key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FunctionSpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    arguments: int = Field(ge=0, le=10, description="how many positional arguments it is called with")


class Tolerance(Strict):
    rtol: float = Field(ge=0, le=0.1)
    atol: float = Field(ge=0, le=0.1)


class Limits(Strict):
    cpu_seconds: int = Field(ge=1, le=600)
    wall_seconds: float = Field(gt=0, le=600)
    memory_mb: int = Field(ge=256, le=65536)
    output_kb: int = Field(ge=1, le=100_000, description="student output kept per submission")
    result_mb: int = Field(ge=1, le=1024, description="largest result the child may send")


class Visibility(Strict):
    show_output: bool = Field(True, description="students see what their code printed")
    show_code: bool = Field(True, description="feedback shows the student's code at each finding")
    gradescope: Literal["hidden", "after_due_date", "after_published", "visible"] = "visible"


class Step(Strict):
    title: str
    points: float = Field(ge=0)
    visible: bool = Field(True, description="shown to students; hidden steps still count")
    ok: str = Field(description="message when the step is right")
    messages: dict[str, str] = Field(description="message per diagnosis id")


class Rubric(Strict):
    """The common part of every rubric. `functions` keys and `probes` entries are the
    assignment's to check (its roles; its probe parameters, validated by its probe model)."""
    id: str
    title: str
    assignment: str = Field(pattern=r"^[a-z_][a-z0-9_]*$", description="a registered assignment's name")
    functions: dict[str, FunctionSpec]
    probes: list[dict[str, Any]] = Field(min_length=1)
    tolerance: Tolerance
    limits: Limits
    visibility: Visibility = Visibility()
    steps: dict[str, Step]

    @model_validator(mode="after")
    def _unique_probe_ids(self):
        ids = [p.get("id") for p in self.probes]
        if len(set(ids)) != len(ids):
            raise ValueError("probes: probe ids must be unique")
        return self


class LoadedRubric:
    """A validated rubric, its steps expanded (`forward.layer{layer}.mask` -> one per layer),
    its probes validated by the assignment it names, and that assignment."""

    def __init__(self, path: Path, spec: Rubric, assignment: Assignment, probes: list[ProbeParameters],
                 sha256: str):
        self.path = path
        self.spec = spec
        self.assignment = assignment
        self.probes = probes
        self.sha256 = sha256
        self.groups: dict[str, dict[str, str]] = {}  # expanded step -> the values that made it
        self.steps: dict[str, Step] = expand_steps(spec.steps, assignment, self.groups)

    @property
    def id(self) -> str:
        return self.spec.id

    def max_points(self, step: str) -> float:
        return self.steps[step].points

    @property
    def roles(self) -> list[str]:
        """The graded functions, in the assignment's order (not the YAML file's key order)."""
        return [role for role in self.assignment.roles if role in self.spec.functions]

    def function_steps(self, role: str) -> list[str]:
        return [s for s in self.steps if s.startswith(f"{role}.")]


def expand_steps(steps: dict[str, Step], assignment: Assignment,
                 groups: dict[str, dict[str, str]] | None = None) -> dict[str, Step]:
    """A rubric key with a placeholder of the assignment's step groups (`{layer}`) stands for
    one step per value; `groups` receives, per expanded step, the values that made it."""
    expanded: dict[str, Step] = {}
    for key, step in steps.items():
        made = {key: {}}
        for placeholder, values in assignment.step_groups.items():
            token = "{" + placeholder + "}"
            made = {k.replace(token, v): dict(g, **{placeholder: v}) if token in k else g
                    for k, g in made.items() for v in (values if token in k else ("",))}
        for step_id, group in made.items():
            expanded[step_id] = step
            if groups is not None:
                groups[step_id] = group
    # Keep the assignment's own order, so reports list steps as the computation runs.
    return {s: expanded[s] for s in assignment.steps if s in expanded} | {
        s: v for s, v in expanded.items() if s not in assignment.steps}


def _where(loc) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def load_rubric(path: Path | str = DEFAULT_RUBRIC) -> LoadedRubric:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RubricError(f"rubric {path}: cannot read it ({exc.strerror})") from None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise RubricError(f"rubric {path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise RubricError(f"rubric {path}: expected a mapping of keys at the top level")
    try:
        spec = Rubric.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise RubricError(f"rubric {path}: {_where(first['loc'])}: {first['msg']}{more}") from None
    try:
        assignment = load_assignment(spec.assignment)
    except AssignmentError as exc:
        raise RubricError(f"rubric {path}: assignment: {exc}") from None
    probes = _validate_probes(path, spec, assignment)
    _check_against_assignment(path, spec, assignment)
    return LoadedRubric(path, spec, assignment, probes, hashlib.sha256(raw).hexdigest())


def _validate_probes(path: Path, spec: Rubric, assignment: Assignment) -> list[ProbeParameters]:
    """The probes' own parameters are the assignment's: validated by its model, by key."""
    probes = []
    for index, raw in enumerate(spec.probes):
        try:
            probes.append(assignment.probe_model.model_validate(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
            raise RubricError(f"rubric {path}: {_where(('probes', index, *first['loc']))}: {first['msg']}{more}") from None
    try:
        assignment.check_probes(probes)
    except ValueError as exc:
        raise RubricError(f"rubric {path}: {exc}") from None
    return probes


def _check_against_assignment(path: Path, spec: Rubric, assignment: Assignment) -> None:
    """Every step the assignment can report needs points and a message for each diagnosis;
    the graded functions are the assignment's roles."""
    for role in spec.functions:
        if role not in assignment.roles:
            raise RubricError(f"rubric {path}: functions.{role}: unknown role; assignment "
                              f"{assignment.name} grades {', '.join(assignment.roles)}")
    groups: dict[str, dict[str, str]] = {}
    steps = expand_steps(spec.steps, assignment, groups)
    for key in steps:
        if key not in assignment.steps:
            raise RubricError(f"rubric {path}: steps.{key}: unknown step; the assignment "
                              f"reports {', '.join(assignment.steps)}")
    for key, diagnoses in assignment.steps.items():
        if key not in steps:
            raise RubricError(f"rubric {path}: steps: step {key!r} is missing")
        for diagnosis in diagnoses:
            if diagnosis not in steps[key].messages:
                raise RubricError(f"rubric {path}: steps.{_rubric_key(spec, key, assignment)}.messages: "
                                  f"no message for diagnosis {diagnosis!r}")
        for diagnosis, text in steps[key].messages.items():
            if diagnosis not in diagnoses and diagnosis not in assignment.notes:
                raise RubricError(f"rubric {path}: steps.{_rubric_key(spec, key, assignment)}.messages.{diagnosis}: "
                                  f"unknown diagnosis; this step has {', '.join(diagnoses)}")
            _check_placeholders(path, f"{_rubric_key(spec, key, assignment)}.messages.{diagnosis}", text, assignment)
        _check_placeholders(path, f"{_rubric_key(spec, key, assignment)}.ok", steps[key].ok, assignment)


def _rubric_key(spec: Rubric, step: str, assignment: Assignment) -> str:
    """The rubric's own key for an expanded step (`forward.layer{layer}.mask` for layer 1's)."""
    if step in spec.steps:
        return step
    for key in spec.steps:
        if step in expand_steps({key: spec.steps[key]}, assignment):
            return key
    return step


def _check_placeholders(path: Path, key: str, text: str, assignment: Assignment) -> None:
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(text) if name}
    except ValueError as exc:
        raise RubricError(f"rubric {path}: steps.{key}: bad message template ({exc})") from None
    unknown = fields - set(assignment.placeholders) - set(assignment.step_groups)
    if unknown:
        raise RubricError(f"rubric {path}: steps.{key}: unknown placeholder {{{sorted(unknown)[0]}}}; "
                          f"messages may use {', '.join('{' + p + '}' for p in sorted(set(assignment.placeholders) | set(assignment.step_groups)))}")
