"""The bulk of a child's reply checked without pydantic: the traced writes, hundreds per call.

The check accepts only what the harness itself writes, in exactly the schema's types
(grader/reply.py, WriteModel): ints that are ints (not bools, within 64 bits), ASCII strs
within the field's length, a summary of at most 4 floats or ASCII strs. For such input
pydantic's lax validation changes nothing, so what this returns is what validating with
pydantic and reading the models back gives (tests/test_plain_reply.py compares the two).
Anything else returns None, and the caller validates the whole reply with pydantic, for the
schema's own coercions and error messages: the reply is hostile input, and this is a
shortcut, never a second schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

from dropout_grader.observations import Write

MAX_WRITES = 20_000
_INT64 = range(-2**63, 2**63)
_ABSENT = object()


def _text(value, limit: int | None = None) -> bool:
    # ASCII only: then the length is the character count pydantic measures, and no text that
    # pydantic might read otherwise (a lone surrogate, say) takes the shortcut.
    return type(value) is str and value.isascii() and (limit is None or len(value) <= limit)


def _integer(value) -> bool:
    return type(value) is int and value in _INT64


def _texts(values: tuple, limit: int) -> bool:
    return (set(map(type, values)) == {str} and all(map(str.isascii, values))
            and max(map(len, values)) <= limit)


def _integers(values: tuple) -> bool:
    return set(map(type, values)) == {int} and min(values) in _INT64 and max(values) in _INT64


def plain_writes(raw) -> Sequence[Write] | None:
    """A call's `writes` as `Write`s (name cut to 80 characters, summary as floats or ()),
    or None if any is not exactly what the harness writes. Checked column by column: there
    are hundreds of writes per call, and a check per field of each costs more than the
    rest of the reply."""
    if type(raw) is not list or len(raw) > MAX_WRITES:
        return None
    if not raw:
        return []
    if set(map(type, raw)) != {dict}:
        return None
    try:
        columns = [(w["fragment"], w["line"], w["name"], w["fingerprint"], w["summary"]) for w in raw]
    except KeyError:  # a field left out: the schema refuses it, or gives summary its default
        return _plain_writes_one_by_one(raw)
    fragments, lines, names, fingerprints, summaries = zip(*columns)
    if not (_integers(fragments) and _integers(lines) and _texts(names, 200) and _texts(fingerprints, 64)
            and set(map(type, summaries)) == {list} and max(map(len, summaries)) <= 4):
        return None
    kinds = set(map(type, chain.from_iterable(summaries)))
    if not (kinds <= {float} or (kinds <= {float, str}
                                 and all(_text(x) for s in summaries for x in s if type(x) is str))):
        return None
    return Writes(fragments, lines, names, fingerprints, summaries)


@dataclass(frozen=True)
class Writes(Sequence):
    """Checked writes, each made a `Write` only when read: only a wrong finding looks for the
    line that wrote its value, so most calls' writes are never read."""
    fragments: tuple[int, ...]
    lines: tuple[int, ...]
    names: tuple[str, ...]
    fingerprints: tuple[str, ...]
    summaries: tuple[list, ...]

    def __len__(self) -> int:
        return len(self.fragments)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return Write(self.fragments[index], self.lines[index], self.names[index][:80], self.fingerprints[index],
                     summary_floats(self.summaries[index]))


def _plain_writes_one_by_one(raw: list) -> list[Write] | None:
    writes = []
    for w in raw:
        name, fingerprint = w.get("name"), w.get("fingerprint")
        fragment, line = w.get("fragment"), w.get("line")
        numbers = w.get("summary", _ABSENT)
        if numbers is _ABSENT:
            numbers = []
        if not (_integer(fragment) and _integer(line) and _text(name, 200) and _text(fingerprint, 64)
                and type(numbers) is list and len(numbers) <= 4
                and all(type(x) is float or _text(x) for x in numbers)):
            return None
        writes.append(Write(fragment, line, name[:80], fingerprint, summary_floats(numbers)))
    return writes


def summary_floats(numbers: list) -> tuple[float, ...]:
    """A write's summary as floats; () if any entry does not read as one."""
    try:
        return tuple(float(x) for x in numbers)
    except ValueError:
        return ()
