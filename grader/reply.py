"""The sandboxed child's reply, validated, and turned into `CallRecord`s.

The child runs next to student code, which can write to the child's result descriptor, so
everything in the reply is untrusted: it is validated against this schema (pydantic), and a
reply that fails is the child's fault (a `ReplyError`, reported as a finding by assess.py).
Anything else that goes wrong while reading a *valid* reply is a bug of the grader and
propagates.

The one rule by which a returned value becomes an array (grader/sandbox/values.py makes it
in the child): a part of the returned value is an array exactly when its description names an
array in the archive; that array keeps the student's dtype and shape. Everything else (None,
strings, dicts, ragged lists, objects) is not an array, and the diagnosis says what it is
instead. Arrays are addressed by position in the returned value ("0", "1.3", "dZ3"), built
here from the description's structure, never from names the child chose.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from dropout_grader.observations import CallRecord, Draw, Write
from dropout_grader.plain_reply import MAX_WRITES, plain_writes, summary_floats

MAX_CALLS = 64
MAX_DRAWS = 1000


class ReplyError(Exception):
    """The child's reply is not one the harness could have written."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Node(_Model):
    """The description of one returned value (see grader/sandbox/values.py)."""
    type: str = Field(max_length=120)
    class_: str | None = Field(None, alias="class", max_length=120)
    shape: list[int] | None = Field(None, max_length=64)
    dtype: str | None = Field(None, max_length=60)
    path: str | None = Field(None, max_length=400)
    too_large: bool = False
    length: int | None = None
    fields: list[str] | None = Field(None, max_length=64)
    items: list["Node"] = Field(default_factory=list, max_length=64)
    keys: dict[str, "Node"] = Field(default_factory=dict, max_length=64)


class DrawModel(_Model):
    function: str = Field(max_length=200)
    arguments: str = Field("", max_length=1000)
    values: str | None = Field(None, max_length=400)


class WriteModel(_Model):
    fragment: int
    line: int
    name: str = Field(max_length=200)
    fingerprint: str = Field(max_length=64)
    summary: list[float | str] = Field(default_factory=list, max_length=4)


class ErrorModel(_Model):
    type: str = Field("Exception", max_length=300)
    message: str = Field("", max_length=2000)
    fragment: int | None = None
    line: int | None = None


class CallModel(_Model):
    role: str = Field(max_length=40)
    probe: str = Field(max_length=200)
    status: Literal["returned", "raised", "signature", "not_run"]
    stream_key: int = 0
    returned: Node | None = Field(None, alias="return")
    draws: list[DrawModel] = Field(default_factory=list, max_length=5_000)
    writes: list[WriteModel] = Field(default_factory=list, max_length=MAX_WRITES)
    error: ErrorModel | None = None
    # The writes as grader/plain_reply.py checked them, when it did instead of pydantic.
    _plain_writes: Sequence[Write] | None = PrivateAttr(default=None)


class FailureModel(_Model):
    fragment: int | None = None
    type: str = Field("Exception", max_length=300)
    message: str = Field("", max_length=2000)
    line: int | None = None


class Reply(_Model):
    calls: list[CallModel] = Field(max_length=MAX_CALLS)
    load_failures: list[FailureModel] = Field(default_factory=list, max_length=10_000)
    numpy_compat: list[str] = Field(default_factory=list, max_length=100)
    out_of_memory: bool = False


def validate(header: dict[str, Any]) -> Reply:
    """The reply checked against the schema. Its bulk, the traced writes, is first checked by
    a plain loop that accepts only what the harness writes (grader/plain_reply.py); the rest
    goes through pydantic. If the plain check does not accept the writes, or pydantic refuses
    the rest, the whole reply is validated by pydantic, so its coercions and its error
    messages are exactly the schema's."""
    reply = _validate_plainly(header)
    if reply is not None:
        return reply
    try:
        return Reply.model_validate(header)
    except (ValidationError, RecursionError) as error:
        first = str(error).splitlines()
        raise ReplyError(" ".join(first[:3])[:300]) from None


def _validate_plainly(header) -> Reply | None:
    calls = header.get("calls") if type(header) is dict else None
    if type(calls) is not list or len(calls) > MAX_CALLS:
        return None
    checked = []
    for call in calls:
        writes = plain_writes(call.get("writes", [])) if type(call) is dict else None
        if writes is None:
            return None
        checked.append(writes)
    try:
        reply = Reply.model_validate(dict(header, calls=[dict(c, writes=[]) for c in calls]))
    except (ValidationError, RecursionError):
        return None  # validated again, whole, for the schema's own message
    for model, writes in zip(reply.calls, checked):
        model._plain_writes = writes
    return reply


def call_record(call: CallModel, arrays: dict[str, np.ndarray]) -> CallRecord:
    values: dict[str, np.ndarray] = {}

    def collect(node: dict, where: str, depth: int = 0, inherited: np.ndarray | None = None) -> None:
        # A container the child sent as one array sends its items only as part of it.
        path = node.get("path")
        array = arrays.get(path) if path is not None else inherited
        if array is not None:
            values[where] = array
        if depth > 8:
            return
        for index, item in enumerate(node["items"]):
            part = (np.asarray(array[index]) if array is not None and array.ndim >= 1 and index < len(array)
                    else None)
            collect(item, f"{where}.{index}" if where else str(index), depth + 1, part)
        for key, item in node["keys"].items():
            collect(item, f"{where}.{key}" if where else key, depth + 1)

    structure: dict[str, Any] = {}
    if call.returned is not None:
        structure = call.returned.model_dump(by_alias=True, exclude_none=True)
        collect(structure, "")
    elif call.status == "returned":
        structure = {"type": "None"}
    draws = [Draw(d.function[:60], d.arguments[:200], arrays.get(d.values) if d.values else None)
             for d in call.draws[:MAX_DRAWS]]
    writes = call._plain_writes
    if writes is None:
        writes = [Write(w.fragment, w.line, w.name[:80], w.fingerprint, summary_floats(w.summary))
                  for w in call.writes]
    error = call.error.model_dump() if call.error is not None else None
    return CallRecord(role=call.role, probe=call.probe, status=call.status, values=values,
                      shape_of_return=structure, draws=draws, writes=writes, error=error,
                      stream_key=call.stream_key)
