"""The plain check of a reply's writes (grader/plain_reply.py) is a shortcut, never a second
schema: whatever it accepts, pydantic accepts and reads the same; whatever it does not, the
reply is validated by pydantic alone, with the schema's coercions and error messages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from dropout_grader.observations import Write
from dropout_grader.plain_reply import Writes, plain_writes, summary_floats
from dropout_grader.reply import Reply, ReplyError, call_record, validate


def harness_write(i: int) -> dict:
    return {"fragment": i % 3, "line": i + 1, "name": f"A{i}", "fingerprint": f"{i:020x}",
            "summary": [12.0, 9.0, -1.5, 3.25]}


def header(writes) -> dict:
    call = {"role": "forward", "probe": "p", "status": "returned", "writes": writes, "draws": [],
            "return": {"type": "array", "class": "ndarray", "shape": [2, 3], "dtype": "float64", "path": "c0"}}
    return {"calls": [call], "load_failures": [], "numpy_compat": []}


def schema_writes(head: dict) -> list[Write]:
    """What pydantic alone makes of the writes, read as call_record reads them."""
    return [Write(w.fragment, w.line, w.name[:80], w.fingerprint, summary_floats(w.summary))
            for w in Reply.model_validate(head).calls[0].writes]


def same(a, b) -> bool:
    """Equal writes, NaN in a summary equal to NaN."""
    return [repr(w) for w in a] == [repr(w) for w in b]


def schema_message(head: dict) -> str | None:
    try:
        Reply.model_validate(head)
    except ValidationError as error:
        return " ".join(str(error).splitlines()[:3])[:300]
    return None


def test_the_harness_writes_are_read_as_the_schema_reads_them():
    raw = [harness_write(i) for i in range(50)] + [
        {"fragment": 0, "line": 2, "name": "x" * 150, "fingerprint": "f", "summary": ["nan", "inf", 1.0, 2.0]},
        {"fragment": 1, "line": 3, "name": "cache", "fingerprint": "g", "summary": []},
        {"fragment": 1, "line": 4, "name": "odd", "fingerprint": "h", "summary": ["not a number", 1.0]}]
    checked = plain_writes(raw)
    assert isinstance(checked, Writes)
    assert same(checked, schema_writes(header(raw)))
    assert checked[-1].summary == () and checked[-3].name == "x" * 80
    assert same(call_record(validate(header(raw)).calls[0], {}).writes, schema_writes(header(raw)))


def test_writes_are_a_sequence_of_writes():
    checked = plain_writes([harness_write(i) for i in range(5)])
    assert len(checked) == 5
    assert checked[1:3] == [checked[1], checked[2]]
    assert checked[-1] == Write(1, 5, "A4", f"{4:020x}", (12.0, 9.0, -1.5, 3.25))
    assert [w.line for w in checked] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("change", [
    {"line": "3"},  # a string the schema reads as an int
    {"line": 3.0},  # a whole float, likewise
    {"fragment": True},  # a bool, which is no int here
    {"fragment": 2**70},  # beyond 64 bits
    {"name": "é" * 10},  # not ASCII
    {"name": "\ud800"},  # a lone surrogate
    {"summary": [1, 2, 3, 4]},  # ints where floats are written
])
def test_writes_the_plain_check_refuses_are_left_to_the_schema(change):
    raw = [harness_write(0), dict(harness_write(1), **change)]
    assert plain_writes(raw) is None
    head = header(raw)
    expected = schema_message(head)
    if expected is None:
        assert same(call_record(validate(head).calls[0], {}).writes, schema_writes(head))
    else:
        with pytest.raises(ReplyError) as raised:
            validate(head)
        assert str(raised.value) == expected


@pytest.mark.parametrize("change", [
    {"name": "n" * 201}, {"fingerprint": "f" * 65}, {"summary": [1.0] * 5}, {"line": None},
    {"summary": None}, {"summary": [None]},
])
def test_a_malformed_write_is_refused_with_the_schemas_own_message(change):
    head = header([harness_write(0), dict(harness_write(1), **change)])
    with pytest.raises(ReplyError) as raised:
        validate(head)
    assert str(raised.value) == schema_message(head)
    assert "calls.0.writes.1" in str(raised.value)


def test_a_write_without_summary_gets_the_schemas_default():
    raw = [{k: v for k, v in harness_write(0).items() if k != "summary"}]
    assert list(plain_writes(raw)) == schema_writes(header(raw)) == [Write(0, 1, "A0", f"{0:020x}", ())]


def test_a_reply_refused_elsewhere_keeps_the_schemas_message():
    head = header([harness_write(0)])
    head["calls"][0]["status"] = "exploded"
    with pytest.raises(ReplyError) as raised:
        validate(head)
    assert str(raised.value) == schema_message(head)


def test_too_many_writes_are_refused():
    head = header([harness_write(0)] * 20_001)
    assert plain_writes(head["calls"][0]["writes"]) is None
    with pytest.raises(ReplyError):
        validate(head)


# What a hostile child might put in a write's fields, harness-like or not.
_values = st.one_of(
    st.integers(min_value=-2**70, max_value=2**70), st.booleans(), st.none(),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=70), st.text(max_size=210),
    st.lists(st.one_of(st.floats(), st.text(max_size=5), st.integers(), st.none()), max_size=6))
_writes = st.lists(st.one_of(
    st.builds(harness_write, st.integers(min_value=0, max_value=10**6)),
    st.dictionaries(st.sampled_from(["fragment", "line", "name", "fingerprint", "summary", "other"]), _values),
    st.builds(lambda i, key, value: dict(harness_write(i), **{key: value}), st.integers(min_value=0, max_value=99),
              st.sampled_from(["fragment", "line", "name", "fingerprint", "summary"]), _values),
    _values), max_size=6)


@settings(max_examples=300, deadline=None)
@given(_writes)
def test_whatever_the_plain_check_accepts_the_schema_reads_the_same(raw):
    head = header(raw)
    checked = plain_writes(raw)
    message = schema_message(head)
    if checked is not None:
        assert message is None
        assert same(checked, schema_writes(head))
    if message is None:
        assert same(call_record(validate(head).calls[0], {}).writes, schema_writes(head))
    else:
        with pytest.raises(ReplyError) as raised:
            validate(head)
        assert str(raised.value) == message
