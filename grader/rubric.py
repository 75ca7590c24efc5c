"""The rubric: points, messages, probe inputs, tolerances and limits, read from YAML and
validated so that a mistake in it is reported by key, before any notebook is graded."""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.resources
import string
import types
import typing
from pathlib import Path
from types import ModuleType
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# Shipped inside the package (dropout_grader.rubrics), found the same way in every install.
DEFAULT_RUBRIC = Path(str(importlib.resources.files("dropout_grader.rubrics") / "dropout.yaml"))


class RubricError(Exception):
    """The rubric cannot be used; the message names the file and the offending key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FunctionSpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    arguments: int = Field(ge=0, le=10, description="how many positional arguments it is called with")


class Probe(Strict):
    id: str
    seed: int = Field(ge=0, description="seeds the probe's inputs and np.random before each call")
    layers: list[int] = Field(min_length=4, max_length=4)
    examples: int = Field(ge=2, le=10_000)
    keep_prob: float = Field(gt=0, lt=1)

    @field_validator("layers")
    @classmethod
    def _positive(cls, layers):
        if any(width < 1 for width in layers):
            raise ValueError("every layer width must be at least 1")
        return layers


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
    id: str
    title: str
    assignment: str = Field(pattern=r"^[a-z_][a-z0-9_]*$", description="module under reference/")
    functions: dict[Literal["forward", "backward"], FunctionSpec]
    probes: list[Probe] = Field(min_length=1)
    tolerance: Tolerance
    limits: Limits
    visibility: Visibility = Visibility()
    steps: dict[str, Step]

    @model_validator(mode="after")
    def _probes_tell_faults_apart(self):
        keep_probs = {p.keep_prob for p in self.probes}
        if 0.5 in keep_probs:
            raise ValueError("probes: keep_prob 0.5 cannot tell '<' from '>' or '/k' from '*2'; use values like 0.7 and 0.86")
        if len(keep_probs) < 2:
            raise ValueError("probes: use at least two different keep_prob values, so a hard-coded constant shows")
        ids = [p.id for p in self.probes]
        if len(set(ids)) != len(ids):
            raise ValueError("probes: probe ids must be unique")
        return self


class LoadedRubric:
    """A validated rubric, its steps expanded per layer, and the assignment module it names."""

    def __init__(self, path: Path, spec: Rubric, assignment: ModuleType, sha256: str):
        self.path = path
        self.spec = spec
        self.assignment = assignment
        self.sha256 = sha256
        self.steps: dict[str, Step] = expand_steps(spec.steps, assignment)

    @property
    def id(self) -> str:
        return self.spec.id

    def max_points(self, step: str) -> float:
        return self.steps[step].points

    @property
    def roles(self) -> list[str]:
        """The graded functions, in the assignment's order (not the YAML file's key order)."""
        ordered = dict.fromkeys(step.split(".")[0] for step in self.assignment.STEPS)
        return [role for role in ordered if role in self.spec.functions]

    def function_steps(self, role: str) -> list[str]:
        return [s for s in self.steps if s.startswith(f"{role}.")]


def expand_steps(steps: dict[str, Step], assignment: ModuleType) -> dict[str, Step]:
    """`forward.layer{layer}.mask` in the rubric stands for one step per hidden layer."""
    expanded: dict[str, Step] = {}
    for key, step in steps.items():
        if "{layer}" in key:
            for layer in assignment.HIDDEN_LAYERS:
                expanded[key.replace("{layer}", str(layer))] = step
        else:
            expanded[key] = step
    # Keep the assignment's own order, so reports list steps as the computation runs.
    return {s: expanded[s] for s in assignment.STEPS if s in expanded} | {
        s: v for s, v in expanded.items() if s not in assignment.STEPS}


def _where(loc) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


class DuplicateKeyError(yaml.YAMLError):
    """A key given twice in one mapping: YAML would silently keep the last one."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load, except that a key repeated in one mapping is an error naming both lines,
    and keys are read as the text written: every rubric key is a name, so `no:` or `null:` is
    an unknown key `no`, not False or None."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first_line: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *anchor` merges may be overridden on purpose
                if isinstance(key_node, yaml.ScalarNode):
                    key_node.tag = "tag:yaml.org,2002:str"
                key = self.construct_object(key_node, deep=True)
                try:
                    line = first_line.setdefault(key, key_node.start_mark.line + 1)
                except TypeError:
                    continue  # an unhashable key: SafeLoader reports it itself
                if line != key_node.start_mark.line + 1:
                    raise DuplicateKeyError(f"line {key_node.start_mark.line + 1}: key `{key}` is given "
                                            f"twice in the same mapping (first on line {line}); "
                                            "YAML would silently keep only the last one")
        return super().construct_mapping(node, deep=deep)


def _first_problem(exc: ValidationError) -> str:
    """The first problem, an unknown key before all others: a misspelled `pionts` also makes
    `points` missing, and naming the typo is what helps."""
    errors = exc.errors()
    unknown = [e for e in errors if e["type"] == "extra_forbidden"]
    first = unknown[0] if unknown else errors[0]
    hidden = len(errors) - 1 - sum(
        1 for e in errors if e is not first and e["type"] == "missing" and unknown
        and tuple(e["loc"][:-1]) == tuple(first["loc"][:-1]))
    more = f" (and {hidden} more problems)" if hidden > 0 else ""
    if first["type"] != "extra_forbidden":
        return f"{_where(first['loc'])}: {first['msg']}{more}"
    *parent, key = first["loc"]
    allowed = _fields_at(Rubric, list(parent))
    guess = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    hint = f"; did you mean `{guess[0]}`?" if guess else (f"; allowed: {', '.join(allowed)}" if allowed else "")
    return f"unknown key `{key}` in {_where(parent)}{hint}{more}"


def _fields_at(model, loc: list) -> list[str]:
    """The keys allowed in the mapping at `loc`, found by walking the models' annotations."""
    annotation = model
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return []
            annotation = field.annotation
        elif typing.get_origin(annotation) in (dict, list):
            annotation = typing.get_args(annotation)[-1]  # a dict key or list index: its value
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation):
    """`X | None` -> X."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def load_rubric(path: Path | str = DEFAULT_RUBRIC) -> LoadedRubric:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RubricError(f"rubric {path}: cannot read it ({exc.strerror})") from None
    try:
        data = yaml.load(raw, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except DuplicateKeyError as exc:
        raise RubricError(f"rubric {path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise RubricError(f"rubric {path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise RubricError(f"rubric {path}: expected a mapping of keys at the top level")
    try:
        spec = Rubric.model_validate(data)
    except ValidationError as exc:
        raise RubricError(f"rubric {path}: {_first_problem(exc)}") from None
    try:
        assignment = importlib.import_module(f"dropout_grader.reference.{spec.assignment}")
    except ImportError as exc:
        raise RubricError(f"rubric {path}: assignment: no reference module reference/{spec.assignment}.py ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - a broken reference module, named in one line
        raise RubricError(f"rubric {path}: assignment: reference/{spec.assignment}.py fails to import "
                          f"({type(exc).__name__}: {exc})") from None
    _check_against_assignment(path, spec, assignment)
    return LoadedRubric(path, spec, assignment, hashlib.sha256(raw).hexdigest())


def _check_against_assignment(path: Path, spec: Rubric, assignment: ModuleType) -> None:
    """Every step the reference can report needs points and a message for each diagnosis."""
    steps = expand_steps(spec.steps, assignment)
    for key in steps:
        if key not in assignment.STEPS:
            raise RubricError(f"rubric {path}: steps.{key}: unknown step; the reference "
                              f"reports {', '.join(assignment.STEPS)}")
    for key, diagnoses in assignment.STEPS.items():
        if key not in steps:
            raise RubricError(f"rubric {path}: steps: step {key!r} is missing")
        for diagnosis in diagnoses:
            if diagnosis not in steps[key].messages:
                raise RubricError(f"rubric {path}: steps.{_rubric_key(spec, key)}.messages: "
                                  f"no message for diagnosis {diagnosis!r}")
        for diagnosis, text in steps[key].messages.items():
            if diagnosis not in diagnoses and diagnosis not in assignment.NOTES:
                raise RubricError(f"rubric {path}: steps.{_rubric_key(spec, key)}.messages.{diagnosis}: "
                                  f"unknown diagnosis; this step has {', '.join(diagnoses)}")
            _check_placeholders(path, f"{_rubric_key(spec, key)}.messages.{diagnosis}", text, assignment)
        _check_placeholders(path, f"{_rubric_key(spec, key)}.ok", steps[key].ok, assignment)


def _rubric_key(spec: Rubric, step: str) -> str:
    if step in spec.steps:
        return step
    for key in spec.steps:
        if "{layer}" in key and key.replace("{layer}", step.split("layer")[-1][:1]) == step:
            return key
    return step


def _check_placeholders(path: Path, key: str, text: str, assignment: ModuleType) -> None:
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(text) if name}
    except ValueError as exc:
        raise RubricError(f"rubric {path}: steps.{key}: bad message template ({exc})") from None
    unknown = fields - set(assignment.PLACEHOLDERS)
    if unknown:
        raise RubricError(f"rubric {path}: steps.{key}: unknown placeholder {{{sorted(unknown)[0]}}}; "
                          f"messages may use {', '.join('{' + p + '}' for p in sorted(assignment.PLACEHOLDERS))}")
