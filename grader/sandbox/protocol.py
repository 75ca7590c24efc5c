"""What crosses between the grader and its sandboxed child: a JSON header plus numeric
arrays in an .npz archive, read back with `allow_pickle=False`. Never pickle: a child
running student code must not be able to make the grader execute anything by what it sends.

Imported by both sides, so it needs nothing but numpy and the standard library.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from typing import Any

import numpy as np

MAGIC = b"GRD1"
_HEADER = struct.Struct("<4sQ")  # magic, length of the JSON header
ALLOWED_KINDS = frozenset("biuf")  # bool, signed, unsigned, float: nothing else comes back


class ProtocolError(Exception):
    """The bytes are not a well-formed message, or break a limit."""


def archive(arrays: dict[str, np.ndarray]) -> bytes:
    """Arrays as an .npz archive (made once and reused when the arrays do not change)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def pack(header: dict[str, Any], arrays: dict[str, np.ndarray] | bytes) -> bytes:
    """A message: the JSON header, then the arrays (or an archive already made of them)."""
    body = json.dumps(header, allow_nan=False, default=_plain).encode()
    packed = arrays if isinstance(arrays, bytes) else archive(arrays)
    return _HEADER.pack(MAGIC, len(body)) + body + packed


def unpack(blob: bytes, max_arrays: int = 10_000, max_elements: int = 50_000_000
           ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Parse a message; refuse anything but numeric arrays and plain JSON."""
    if len(blob) < _HEADER.size:
        raise ProtocolError("message too short")
    magic, length = _HEADER.unpack_from(blob)
    if magic != MAGIC or _HEADER.size + length > len(blob):
        raise ProtocolError("bad message header")
    try:
        header = json.loads(blob[_HEADER.size:_HEADER.size + length])
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("header is not a JSON object")
    arrays: dict[str, np.ndarray] = {}
    payload = blob[_HEADER.size + length:]
    try:
        # Sizes are checked before anything is decompressed: a small archive may inflate.
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
        if inflated > max_elements * 8 + 1_000_000:
            raise ProtocolError(f"arrays would take {inflated} bytes, over the limit")
        with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
            if len(archive.files) > max_arrays:
                raise ProtocolError(f"{len(archive.files)} arrays, more than {max_arrays}")
            total = 0
            for name in archive.files:
                array = archive[name]
                if not isinstance(array, np.ndarray):  # np.load hands back a non-.npy member as bytes
                    raise ProtocolError(f"member {name!r} is not an array")
                if array.dtype.kind not in ALLOWED_KINDS:
                    raise ProtocolError(f"array {name!r} has dtype {array.dtype}, not numeric")
                total += array.size
                if total > max_elements:
                    raise ProtocolError(f"more than {max_elements} array elements")
                arrays[name] = array
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ProtocolError(f"arrays cannot be read: {exc}") from None
    return header, arrays


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
