"""What crosses between the grader and its sandboxed child: a JSON header plus numeric arrays
as raw bytes, each described (name, dtype, shape) in a JSON index. Never pickle, never a
format with code in it: a child running student code must not be able to make the grader
execute anything by what it sends, so the reader builds arrays only from an allow-list of
numeric dtypes, with every size checked against the bytes actually there.

    message = "GRD2" | u64 header length | u64 index length | header JSON | index JSON | data
    index   = [[name, dtype, shape], ...]   arrays laid out in that order, each padded to 8 bytes

Several messages may follow one another on one stream (`split`): the child sends one per
section of its job. Imported by both sides, so it needs nothing but numpy and the stdlib.
(The earlier format was .npz, whose zip members and per-array headers cost ~100 us each:
10-40 ms per notebook on both sides of the pipe.)
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

MAGIC = b"GRD2"
_HEADER = struct.Struct("<4sQQ")  # magic, length of the JSON header, length of the JSON index
_ALIGN = 8
# bool, signed, unsigned, float, in the sizes numpy has: nothing else comes back
_DTYPE = re.compile(r"[<>|=](b1|[iu][1248]|f[248])")
MAX_DIMENSIONS = 32
MAX_DIMENSION_SIZE = 2**31  # numpy refuses shapes whose sizes overflow, even with no element


class ProtocolError(Exception):
    """The bytes are not a well-formed message, or break a limit."""


@dataclass(frozen=True)
class Archive:
    """Arrays already laid out (made once and reused when they do not change)."""
    index: list
    data: bytes


def archive(arrays: dict[str, np.ndarray]) -> Archive:
    index, chunks, size = [], [], 0
    for name, array in arrays.items():
        array = np.asarray(array)  # (not ascontiguousarray: it makes a 0-d array 1-d)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"array {name!r} has dtype {array.dtype}, not numeric")
        index.append([name, array.dtype.str, list(array.shape)])
        raw = array.tobytes()  # C order, whatever the array's layout
        chunks.append(raw)
        size += len(raw)
        if size % _ALIGN:
            padding = _ALIGN - size % _ALIGN
            chunks.append(bytes(padding))
            size += padding
    return Archive(index, b"".join(chunks))


def pack(header: dict[str, Any], arrays: dict[str, np.ndarray] | Archive) -> bytes:
    """A message: the JSON header, then the arrays (or an archive already made of them)."""
    body = json.dumps(header, allow_nan=False, default=_plain).encode()
    laid_out = arrays if isinstance(arrays, Archive) else archive(arrays)
    index = json.dumps(laid_out.index).encode()
    return b"".join((_HEADER.pack(MAGIC, len(body), len(index)), body, index, laid_out.data))


def unpack(blob: bytes, max_arrays: int = 10_000, max_elements: int = 50_000_000
           ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Parse one message that fills `blob`; refuse anything but numeric arrays and plain JSON."""
    header, arrays, end = _read(memoryview(blob), 0, max_arrays, max_elements)
    if end != len(blob):
        raise ProtocolError(f"{len(blob) - end} bytes after the message")
    return header, arrays


def split(blob: bytes, max_arrays: int = 10_000, max_elements: int = 50_000_000
          ) -> tuple[list[tuple[dict[str, Any], dict[str, np.ndarray]]], str]:
    """The messages at the start of a stream, in order, and why reading stopped before its end
    ("" when every byte was read): what follows a malformed message cannot be trusted."""
    view, offset, messages = memoryview(blob), 0, []
    while offset < len(blob):
        try:
            header, arrays, offset = _read(view, offset, max_arrays, max_elements)
        except ProtocolError as exc:
            return messages, str(exc)
        messages.append((header, arrays))
        max_arrays -= len(arrays)
        max_elements -= sum(a.size for a in arrays.values())
    return messages, ""


def _read(view: memoryview, offset: int, max_arrays: int, max_elements: int
          ) -> tuple[dict[str, Any], dict[str, np.ndarray], int]:
    if len(view) - offset < _HEADER.size:
        raise ProtocolError("message too short")
    magic, header_length, index_length = _HEADER.unpack_from(view, offset)
    offset += _HEADER.size
    if magic != MAGIC or header_length + index_length > len(view) - offset:
        raise ProtocolError("bad message header")
    header = _json(view[offset:offset + header_length], "header")
    offset += header_length
    if not isinstance(header, dict):
        raise ProtocolError("header is not a JSON object")
    index = _json(view[offset:offset + index_length], "index")
    offset += index_length
    if not isinstance(index, list):
        raise ProtocolError("the array index is not a list")
    if len(index) > max_arrays:
        raise ProtocolError(f"{len(index)} arrays, more than {max_arrays}")
    arrays: dict[str, np.ndarray] = {}
    total = 0
    for entry in index:
        name, dtype, shape = _entry(entry)
        if name in arrays:
            raise ProtocolError(f"array {name!r} twice")
        count = 1
        for size in shape:
            count *= size
        total += count
        if total > max_elements:
            raise ProtocolError(f"more than {max_elements} array elements")
        nbytes = count * dtype.itemsize
        if nbytes > len(view) - offset:
            raise ProtocolError(f"array {name!r} runs past the end of the message")
        # A copy: the arrays own their memory, writable, aligned, independent of the stream.
        try:
            array = np.frombuffer(view[offset:offset + nbytes], dtype=dtype).reshape(shape).copy()
        except ValueError as exc:  # a shape numpy cannot make ("array is too big")
            raise ProtocolError(f"array {name[:80]!r}: {exc}") from None
        if dtype.kind == "b":  # a bool is one byte 0 or 1; the child may send any byte
            array = array.view(np.uint8).astype(bool)  # (a comparison would make 0-d a scalar)
        arrays[name] = array
        offset += nbytes + (-nbytes % _ALIGN)
    if offset > len(view):
        raise ProtocolError("the last array's padding runs past the end of the message")
    return header, arrays, offset


def _json(data: memoryview, what: str):
    try:
        return json.loads(bytes(data))
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"{what} is not JSON: {exc}") from None


def _entry(entry) -> tuple[str, np.dtype, tuple[int, ...]]:
    if not (isinstance(entry, list) and len(entry) == 3):
        raise ProtocolError("an index entry is not [name, dtype, shape]")
    name, dtype, shape = entry
    if not isinstance(name, str):
        raise ProtocolError("an array's name is not a string")
    if not (isinstance(dtype, str) and _DTYPE.fullmatch(dtype)):
        raise ProtocolError(f"array {name[:80]!r} has dtype {str(dtype)[:20]!r}, not numeric")
    if not (isinstance(shape, list) and len(shape) <= MAX_DIMENSIONS
            and all(type(size) is int and 0 <= size <= MAX_DIMENSION_SIZE for size in shape)):
        raise ProtocolError(f"array {name[:80]!r} has a malformed shape")
    return name, np.dtype(dtype), tuple(shape)


def _plain(value):
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


# --- call arguments as plain data --------------------------------------------------------
def encode_value(value, arrays: dict[str, np.ndarray], path: str) -> dict:
    """Describe an argument (arrays, dicts, tuples, numbers) so the child can rebuild it."""
    if isinstance(value, np.ndarray):
        arrays[path] = value
        return {"array": path}
    if isinstance(value, dict):
        return {"dict": {k: encode_value(v, arrays, f"{path}.{k}") for k, v in value.items()}}
    if isinstance(value, (tuple, list)):
        kind = "tuple" if isinstance(value, tuple) else "list"
        return {kind: [encode_value(v, arrays, f"{path}.{i}") for i, v in enumerate(value)]}
    if isinstance(value, (bool, int, float, str)) or value is None:
        return {"value": value}
    raise TypeError(f"cannot send a {type(value).__name__} to the sandbox")


def decode_value(spec: dict, arrays: dict[str, np.ndarray]):
    if "array" in spec:
        return arrays[spec["array"]].copy()
    if "dict" in spec:
        return {k: decode_value(v, arrays) for k, v in spec["dict"].items()}
    if "tuple" in spec:
        return tuple(decode_value(v, arrays) for v in spec["tuple"])
    if "list" in spec:
        return [decode_value(v, arrays) for v in spec["list"]]
    return spec["value"]
