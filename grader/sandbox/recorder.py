"""Child side: watch the student's code without changing what it computes.

- `RandomRecorder` wraps numpy's random entry points (legacy functions, `RandomState`,
  `default_rng` Generators) and logs every draw: function, arguments, values.
- `install_numpy_compat` gives back aliases NumPy removed (`np.int`, ...) and notes their use.
- `LineTracer` records, for traced student frames, which line produced which value, so a
  finding can point at the line that wrote the wrong array.

Runs only inside the sandboxed child, after limits are set and before student code loads.
"""

from __future__ import annotations

import random as pyrandom
import sys
from typing import Any

import numpy as np

from dropout_grader.observations import fingerprint, json_safe, sequence_fingerprint, summary
from dropout_grader.sandbox.values import _numeric_array

LEGACY = ("rand", "random_sample", "random", "ranf", "sample", "uniform", "randn",
          "standard_normal", "normal", "binomial", "choice", "randint", "random_integers",
          "permutation", "shuffle", "beta", "exponential", "poisson", "integers")
GENERATOR = ("random", "uniform", "standard_normal", "normal", "binomial", "choice",
             "integers", "permutation", "permuted", "shuffle", "exponential", "poisson")
MAX_LOGGED_VALUES = 2_000_000  # elements of drawn values kept per call of a graded function
MAX_LOGGED_DRAWS = 5_000  # calls logged per call of a graded function
# Names NumPy removed (1.24: the builtin aliases; 2.0: the old spellings) that old course code
# still uses; served with the value they had, and reported as a numpy_compat note.
REMOVED_ALIASES = {"int": int, "float": float, "bool": bool, "object": object,
                   "complex": complex, "str": str, "long": int, "unicode": str,
                   "float_": np.float64, "complex_": np.complex128, "unicode_": np.str_, "string_": np.bytes_,
                   "NaN": np.nan, "NAN": np.nan, "Inf": np.inf, "Infinity": np.inf, "PINF": np.inf,
                   "NINF": -np.inf, "infty": np.inf}


def _describe(args, kwargs) -> str:
    parts = [_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()]
    return ", ".join(parts)[:200]


def _short(value) -> str:
    if isinstance(value, np.ndarray):
        return f"<array {value.shape}>"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class RandomRecorder:
    def __init__(self):
        self.draws: list[dict[str, Any]] = []
        self.values: list[np.ndarray | None] = []
        self._kept = 0
        self.stream_key = 0  # nonzero: every seed is mixed with it (see _install_keying)

    def reset(self) -> None:
        self.draws, self.values, self._kept = [], [], 0

    def log(self, name: str, args, kwargs, result) -> None:
        if len(self.draws) >= MAX_LOGGED_DRAWS:
            return  # a loop of scalar draws: the first ones are hint enough
        values = None
        if isinstance(result, (np.ndarray, float, int, np.generic)):
            array = np.asarray(result)
            if array.dtype.kind in "biuf" and self._kept + array.size <= MAX_LOGGED_VALUES:
                values = array.copy()
                self._kept += array.size
        self.draws.append({"function": name, "arguments": _describe(args, kwargs)})
        self.values.append(values)

    def _wrap(self, name: str, function):
        recorder = self

        def recorded(*args, **kwargs):
            result = function(*args, **kwargs)
            recorder.log(name, args, kwargs, result)
            return result

        recorded.__name__ = getattr(function, "__name__", name)
        recorded.__doc__ = getattr(function, "__doc__", None)
        return recorded

    def install(self) -> None:
        """Replace numpy's random entry points with recording wrappers."""
        random = np.random
        for name in LEGACY:
            if hasattr(random, name):
                setattr(random, name, self._wrap(name, getattr(random, name)))
        recorder = self
        original_default_rng = random.default_rng
        RecordedRandomState.recorder = self

        class RecordedGenerator:
            """Delegates to a real Generator, logging the draws that make masks."""

            def __init__(self, generator):
                object.__setattr__(self, "_generator", generator)

            def __getattr__(self, name):
                attribute = getattr(self._generator, name)
                if name in GENERATOR and callable(attribute):
                    return recorder._wrap(f"Generator.{name}", attribute)
                return attribute

        def default_rng(seed=None, *args, **kwargs):
            return RecordedGenerator(original_default_rng(keyed(seed, recorder.stream_key), *args, **kwargs))

        random.RandomState = RecordedRandomState
        random.default_rng = default_rng
        self._install_keying()

    def _install_keying(self) -> None:
        """Every way to seed a random stream goes through `keyed`, so that a call made with a
        stream key draws other numbers than the same call without one, even after the
        student's own `np.random.seed(1)`. The parent compares the two: a mask that does not
        change is not drawn from the stream (recorded draws are a hint, never proof)."""
        recorder = self
        legacy_seed = np.random.seed

        def seed(seed=None):
            return legacy_seed(keyed(seed, recorder.stream_key))

        np.random.seed = seed
        for name in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"):
            original = getattr(np.random, name, None)
            if original is not None:
                setattr(np.random, name, _keyed_bit_generator(original, self))
        python_seed = pyrandom.seed

        def python_random_seed(a=None, version=2):
            return python_seed(keyed(a, recorder.stream_key), version)

        pyrandom.seed = python_random_seed

        class KeyedRandom(pyrandom.Random):
            def seed(self, a=None, version=2):
                super().seed(keyed(a, recorder.stream_key), version)

        pyrandom.Random = KeyedRandom


def _keyed_bit_generator(cls, recorder: "RandomRecorder"):
    def make(seed=None, *args, **kwargs):
        return cls(keyed(seed, recorder.stream_key), *args, **kwargs)

    make.__name__ = cls.__name__
    return make


def keyed(seed, key: int):
    """`seed` mixed with a stream key (unchanged when the key is 0 or the seed is None)."""
    if not key or seed is None:
        return seed
    if isinstance(seed, (bool, np.bool_)):
        return seed
    if isinstance(seed, (int, np.integer)):
        return (int(seed) * 0x9E3779B1 + key * 0x85EBCA77 + 0x27D4EB2F) % 2**32
    if isinstance(seed, np.random.SeedSequence):
        return np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, key))
    if isinstance(seed, (float, str, bytes)):  # Python's random accepts these
        return f"{seed!r}/{key}"
    if isinstance(seed, (list, tuple, np.ndarray)):
        try:
            return [keyed(int(x), key) for x in np.asarray(seed).ravel()]
        except (TypeError, ValueError, OverflowError):
            return seed
    return seed


class RecordedRandomState(np.random.RandomState):
    """`np.random.RandomState(seed)` whose draws are logged. Defined once, in the zygote:
    subclassing numpy's RandomState costs about 10 ms, too much to pay in every child. Each
    child has one recorder, set by RandomRecorder.install."""

    recorder: RandomRecorder | None = None

    def __init__(self, seed=None):
        recorder = type(self).recorder
        super().__init__(keyed(seed, recorder.stream_key) if recorder is not None else seed)

    def seed(self, seed=None):
        recorder = type(self).recorder
        super().seed(keyed(seed, recorder.stream_key) if recorder is not None else seed)

    def __getattribute__(self, name):
        attribute = super().__getattribute__(name)
        recorder = type(self).recorder
        if recorder is not None and name in LEGACY and callable(attribute):
            return recorder._wrap(f"RandomState.{name}", attribute)
        return attribute


class NumpyCompat:
    """Serve aliases NumPy removed (np.int, ...), remembering which were used."""

    def __init__(self):
        self.used: list[str] = []

    def install(self) -> None:
        original = getattr(np, "__getattr__", None)
        compat = self

        def __getattr__(name):
            if name in REMOVED_ALIASES:
                if name not in compat.used:
                    compat.used.append(name)
                return REMOVED_ALIASES[name]
            if original is None:
                raise AttributeError(f"module 'numpy' has no attribute {name!r}")
            return original(name)

        np.__getattr__ = __getattr__


def assigned_names(source: str) -> dict[int, frozenset[str]]:
    """For each statement (by its first line), the local names it may write: assignment
    targets, augmented and in-place updates (`A *= D`, `A[...] = x`, `out=A`, `A.fill(0)`).
    The tracer fingerprints these after each line, and other arrays only if their identity
    changed, instead of hashing every array at every line."""
    import ast

    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return {}

    def roots(node) -> set[str]:
        names = set()
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                names.add(sub.id)
        return names

    written: dict[int, set[str]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt):
            continue
        names: set[str] = set()
        if isinstance(node, ast.Assign):
            for target in node.targets:
                names |= roots(target)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            names |= roots(node.target)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            names |= roots(node.target)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    names |= roots(item.optional_vars)
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Call):
                    names |= {n for k in sub.keywords if k.arg == "out" for n in roots(k.value)}
                    if isinstance(sub.func, ast.Attribute) and isinstance(sub.func.value, ast.Name):
                        names.add(sub.func.value.id)  # A.fill(0), A.sort(), np.copyto(...)
                        if sub.args and isinstance(sub.args[0], ast.Name):
                            names.add(sub.args[0].id)
                elif isinstance(sub, ast.NamedExpr):
                    names |= roots(sub.target)
        if names:
            written.setdefault(node.lineno, set()).update(names)
    return {line: frozenset(names) for line, names in written.items()}


def _small(value: list | tuple, limit: int = 1_000_000) -> bool:
    """A cheap bound on the elements of a nested list before converting it: a list that grows
    in a loop must not be copied whole at every line."""
    first = value[0]
    if isinstance(first, np.ndarray):
        return len(value) * first.size <= limit
    if isinstance(first, (list, tuple)):
        return len(value) * len(first) <= limit and len(value) <= 10_000
    return len(value) <= limit


class LineTracer:
    """Attribute each new value of a traced frame's locals to the line that produced it.

    Only frames whose code comes from the notebook (filenames "<fragment N>") are traced;
    numpy and the harness run untraced. After each line, the arrays that line may write
    (`assigned`, from the source) and any local whose identity changed are fingerprinted
    and recorded as written by that line; so is a function's returned array.
    """

    def __init__(self, assigned: dict[int, dict[int, frozenset[str]]], max_writes: int = 20_000,
                 max_events: int = 50_000, sources: dict[int, list[str]] | None = None):
        self.assigned = assigned
        self.sources = sources or {}  # fragment -> its lines: where a returned dict's keys are
        self.writes: list[dict[str, Any]] = []
        self.max_writes = max_writes
        # Tracing costs a little per line; a student's Python loop must not turn that into
        # a timeout. Past this many line events the call runs on untraced.
        self.events_left = max_events
        # Lists converted to arrays (list masks) cost a copy each; a list grown in a loop must
        # not turn that into a timeout.
        self.container_budget = 5_000_000
        self._ids: dict[int, dict[str, int]] = {}  # frame -> local name -> id of its value
        self._last_line: dict[int, int] = {}

    @staticmethod
    def _fragment(frame) -> int | None:
        name = frame.f_code.co_filename
        if name.startswith("<fragment ") and name.endswith(">"):
            return int(name[10:-1])
        return None

    def _record(self, fragment: int, line: int, name: str, value) -> None:
        if len(self.writes) < self.max_writes:
            self.writes.append({"fragment": fragment, "line": line, "name": name,
                                "fingerprint": fingerprint(value), "summary": json_safe(summary(value))})

    def _record_container(self, fragment: int, line: int, name: str, value) -> None:
        """A list mask (or list of row arrays) as the array the parent will see; the arrays
        held in a dict (masks kept by layer, gradients returned inline) one by one."""
        if isinstance(value, dict):
            for key, item in list(value.items())[:32]:
                if isinstance(item, np.ndarray) and item.dtype.kind in "biuf" and item.size <= 1_000_000:
                    self._record(fragment, line, f"{name}[{key!r}]"[:80], item)
                elif isinstance(item, (list, tuple)):
                    self._record_container(fragment, line, f"{name}[{key!r}]"[:80], item)
            if len(value) <= 64:
                self._record_sequence(fragment, line, name, list(value.values()))
        elif (isinstance(value, (list, tuple)) and 0 < len(value) <= 100_000 and self.container_budget > 0
              and _small(value)):
            array = _numeric_array(value)
            if array is not None:
                self.container_budget -= array.size
            if array is not None and array.ndim >= 1 and array.size <= 1_000_000:
                self._record(fragment, line, name, array)
            elif len(value) <= 64:
                self._record_sequence(fragment, line, name, list(value))

    def _record_keys(self, fragment: int, line: int, returned: dict) -> None:
        """A dict literal returned over several lines: each array at the line that names its
        key (the return event only knows the statement's first line)."""
        lines = self.sources.get(fragment) or []
        for key, item in list(returned.items())[:32]:
            if not (isinstance(key, str) and isinstance(item, np.ndarray) and item.dtype.kind in "biuf"
                    and item.size <= 1_000_000):
                continue
            for number in range(line, min(line + 20, len(lines) + 1)):
                text = lines[number - 1]
                if f'"{key}"' in text or f"'{key}'" in text:
                    if number != line:
                        self._record(fragment, number, f"<return>[{key!r}]"[:80], item)
                    break

    def _record_sequence(self, fragment: int, line: int, name: str, items: list) -> None:
        """A container that is no array (a cache): its items' fingerprints, so that a finding
        about the whole cache points at the line that built it."""
        if len(self.writes) >= self.max_writes:
            return
        arrays = []
        for item in items:
            if isinstance(item, (np.ndarray, np.generic, int, float)):
                array = _numeric_array(item)
            elif isinstance(item, (list, tuple)) and item and _small(item):
                array = _numeric_array(item)
                array = array if array is not None and array.ndim >= 1 else None
            else:
                array = None
            if array is not None and array.size > 1_000_000:
                return
            arrays.append(array)
        self.writes.append({"fragment": fragment, "line": line, "name": name[:80],
                            "fingerprint": sequence_fingerprint(arrays), "summary": []})

    def _changes(self, frame, fragment: int) -> None:
        key = id(frame)
        line = self._last_line.get(key)
        local = frame.f_locals
        if line is not None:
            before = self._ids.get(key, {})
            names = self.assigned.get(fragment, {}).get(line, ())
            for name, value in local.items():
                if (isinstance(value, np.ndarray) and value.dtype.kind in "biuf" and value.size <= 1_000_000
                        and (name in names or before.get(name) != id(value))):
                    self._record(fragment, line, name, value)
                elif name in names and isinstance(value, (list, tuple, dict)):
                    self._record_container(fragment, line, name, value)
        self._ids[key] = {name: id(value) for name, value in local.items()}

    def trace(self, frame, event, arg):
        fragment = self._fragment(frame)
        if fragment is None or self.events_left <= 0:
            return None
        return self._local

    def _local(self, frame, event, arg):
        self.events_left -= 1
        if self.events_left <= 0:
            return None
        fragment = self._fragment(frame)
        if event == "line":
            self._changes(frame, fragment)
            self._last_line[id(frame)] = frame.f_lineno
        elif event == "return":
            self._changes(frame, fragment)
            line = self._last_line.get(id(frame), frame.f_lineno)
            if isinstance(arg, np.ndarray) and arg.dtype.kind in "biuf":
                self._record(fragment, line, "<return>", arg)
            elif isinstance(arg, dict):  # gradients computed inline in the returned dict
                self._record_keys(fragment, line, arg)  # first: the line naming the key wins
                self._record_container(fragment, line, "<return>", arg)
            elif isinstance(arg, tuple) and len(arg) <= 64:  # (A3, cache) built inline
                for index, item in enumerate(arg):
                    if isinstance(item, (list, tuple)):
                        self._record_container(fragment, line, f"<return>[{index}]", item)
            self._ids.pop(id(frame), None)
            self._last_line.pop(id(frame), None)
        return self._local

    def __enter__(self):
        sys.settrace(self.trace)
        return self

    def __exit__(self, *exc):
        sys.settrace(None)
        return False
