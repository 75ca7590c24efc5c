"""Child side: describe exactly what a student's function returned, as plain data.

Runs next to student code, on values student code made, so nothing here may fail because of
a value: a hostile `__len__`, `__array__`, `__iter__` or `keys()` is caught and the value is
described as unreadable instead. NaN and inf travel inside the arrays (never in the JSON).

A description ("node") is a JSON object:

    {"type": "array",      "class", "shape", "dtype", "path"?}      numbers, numpy scalars, ndarrays
    {"type": "tuple" | "list" | "namedtuple" | "sequence",
                           "class", "length", "items", "fields"?,
                           "shape"?, "dtype"?, "path"?}              containers
    {"type": "dict",       "class", "length", "keys"}
    {"type": "None"} | {"type": <class name>, "class"}               anything else

`path` names the numeric array sent alongside (in the message's archive). The one rule by
which a value becomes an array (the parent relies on it, see grader/values.py): a value is an
array when `np.asarray` turns it into a numeric (bool, int, float) array: a number, a numpy
scalar, an ndarray or ndarray subclass (sent as a plain ndarray, its class recorded), or a
list/tuple (nested, or of row arrays) of one rectangular shape. Containers keep their items as
well, so a tuple of equal-shaped arrays is both a sequence and an array.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np

MAX_ITEMS = 64  # entries of a returned container that are described
MAX_DEPTH = 4
NUMERIC = "biuf"


def _class_name(value) -> str:
    try:
        return str(type(value).__name__)[:80]
    except BaseException:  # noqa: BLE001 - a metaclass may do anything
        return "object"


@functools.lru_cache(maxsize=64)
def _dtype_name(dtype: np.dtype) -> str:
    return str(dtype)  # numpy builds this string anew on every call


def _numeric_array(value) -> np.ndarray | None:
    """`value` as a plain numeric ndarray, or None. Never raises."""
    if type(value) is np.ndarray and value.dtype.kind in NUMERIC:  # the common case, and cheap
        return value.copy()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if isinstance(value, np.ndarray):
                array = np.array(value, subok=False, copy=True)
            else:
                array = np.array(value, subok=False)
        if not isinstance(array, np.ndarray) or array.dtype.kind not in NUMERIC or array.dtype.hasobject:
            return None
        return array
    except BaseException:  # noqa: BLE001 - inhomogeneous, recursive or hostile: not an array
        return None


def describe(value, arrays: dict[str, np.ndarray], path: str, budget: list[int] | None = None,
             depth: int = 0, send: bool = True) -> dict[str, Any]:
    """Describe a returned value, putting its numeric arrays into `arrays` under their path.
    `budget` is the bytes of arrays still allowed (a larger array is described, not sent);
    `send` is False below a container that was itself sent as one array."""
    budget = budget if budget is not None else [1 << 62]
    try:
        return _describe(value, arrays, path, budget, depth, send)
    except BaseException:  # noqa: BLE001 - a value must never end the child
        return {"type": "unreadable", "class": _class_name(value)}


def _describe(value, arrays, path, budget, depth, send) -> dict[str, Any]:
    if value is None:
        return {"type": "None"}
    name = _class_name(value)
    if isinstance(value, (np.ndarray, np.generic, bool, int, float, complex)):
        node: dict[str, Any] = {"type": "array", "class": name}
        try:
            if type(value) is np.ndarray:  # exactly: a subclass may redefine any attribute
                shape, dtype, nbytes = list(value.shape), _dtype_name(value.dtype), value.nbytes
            else:
                shape, dtype, nbytes = list(np.shape(value)), str(np.asarray(value).dtype), int(np.asarray(value).nbytes)
        except BaseException:  # noqa: BLE001
            return {"type": "unreadable", "class": name}
        node.update(shape=shape, dtype=dtype)
        if nbytes > budget[0]:
            node["too_large"] = True
            return node
        if send:
            array = _numeric_array(value)
            if array is not None:
                budget[0] -= array.nbytes
                arrays[path] = array
                node["path"] = path
        return node
    if isinstance(value, dict):
        keys = [k for k in list(value.keys())[:MAX_ITEMS] if isinstance(k, str)]
        node = {"type": "dict", "class": name, "length": len(value), "keys": {}}
        if depth < MAX_DEPTH:
            node["keys"] = {k[:80]: describe(dict.get(value, k) if type(value) is dict else value[k],
                                             arrays, f"{path}.{k[:80]}", budget, depth + 1, send)
                            for k in keys}
        return node
    if isinstance(value, (tuple, list)):
        kind = ("namedtuple" if isinstance(value, tuple) and hasattr(type(value), "_fields")
                else name if type(value) in (tuple, list) else "sequence")
        items = list(value)
        node = {"type": kind, "class": name, "length": len(items), "items": []}
        if kind == "namedtuple":
            fields = getattr(type(value), "_fields", ())
            node["fields"] = [str(f)[:40] for f in list(fields)[:MAX_ITEMS]]
        whole = _numeric_array(items) if items else None
        if whole is not None and whole.ndim >= 1:
            node.update(shape=list(whole.shape), dtype=str(whole.dtype))
            if whole.nbytes > budget[0]:
                node["too_large"] = True
            elif send:
                budget[0] -= whole.nbytes
                arrays[path] = whole
                node["path"] = path
        if depth < MAX_DEPTH:
            # Items of a container already sent whole are described, not sent again.
            inner = send and "path" not in node
            node["items"] = [describe(v, arrays, f"{path}.{i}", budget, depth + 1, inner)
                             for i, v in enumerate(items[:MAX_ITEMS])]
        return node
    return {"type": name, "class": name}
