"""The child runner: student code runs in a limited child process, never in the grader, and
only plain data comes back."""

from __future__ import annotations

import io
import json
import struct
import os
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as npst

from dropout_grader.pipeline import Grader
from dropout_grader.results import Submission
from dropout_grader.rubric import load_rubric
from dropout_grader.sandbox.protocol import ProtocolError, pack, split, unpack
from dropout_grader.sandbox.runner import child_environment
from conftest import load_script, rubric_with_limits

hostile = load_script("benchmarks", "hostile_cases")

IMPORTS = "import numpy as np\nfrom reg_utils import relu, sigmoid"


def forward_with(body_before: str = "", return_line: str = "return A3, cache") -> str:
    """A correct forward function with extra statements at its start (see hostile_cases)."""
    return hostile.notebook_source({"before": body_before, "returned": return_line.removeprefix("return ")})


@pytest.fixture(scope="module")
def strict_grader(tmp_path_factory):
    path = rubric_with_limits(tmp_path_factory.mktemp("rubric"), {
        "cpu_seconds": 2, "wall_seconds": 3, "memory_mb": 512, "output_kb": 4, "result_mb": 1})
    with Grader(load_rubric(path)) as grader:
        yield grader


@pytest.fixture
def strict(strict_grader, notebook):
    def run(*code):
        path = notebook(IMPORTS, *code)
        return strict_grader.grade(Submission(path.stem, str(path)))
    return run


def forward_outcome(result):
    return next(f for f in result.findings if f.step == "forward.function")


def test_correct_code_passes_under_strict_limits(strict):
    result = strict(forward_with())
    assert forward_outcome(result).verdict == "ok"
    assert not any(f.step.startswith("forward") and f.verdict == "wrong" for f in result.findings)


@pytest.mark.parametrize("body", ["while True:\n    pass", "import time\ntime.sleep(1000)"])
def test_endless_code_times_out(strict, body):
    started = time.monotonic()
    outcome = forward_outcome(strict(forward_with(body)))
    assert (outcome.verdict, outcome.diagnosis) == ("wrong", "timeout")
    assert time.monotonic() - started < 10


def test_huge_allocation_is_a_memory_finding(strict):
    outcome = forward_outcome(strict(forward_with("big = np.ones((1 << 17, 1 << 14))")))
    assert (outcome.verdict, outcome.diagnosis) == ("wrong", "memory")
    assert "512 MB" in outcome.message


@pytest.mark.parametrize("body", ["import os\nos._exit(0)", "import ctypes\nctypes.string_at(0)"])
def test_exit_or_crash_gives_an_error_without_result(strict, body):
    outcome = forward_outcome(strict(forward_with(body)))
    assert (outcome.verdict, outcome.diagnosis) == ("wrong", "error")
    assert "gave no result" in outcome.message


def test_sys_exit_is_reported_as_an_error(strict):
    outcome = forward_outcome(strict(forward_with("import sys\nsys.exit(3)")))
    assert outcome.diagnosis == "error" and "exit(3)" in outcome.message


def test_printing_is_captured_capped_and_changes_nothing(strict):
    noisy = forward_with('print("forward.layer1.scale ok 19/19 GRD1" * 1000)')
    result = strict(noisy)
    assert "GRD1" in result.output and "[output truncated]" in result.output
    assert len(result.output) < 6000
    assert forward_outcome(result).verdict == "ok"


def test_result_larger_than_the_cap_is_refused(strict):
    outcome = forward_outcome(strict(forward_with(return_line="return np.zeros((800, 800)), cache")))
    assert (outcome.verdict, outcome.diagnosis) == ("wrong", "bad_return")
    assert "more than the 1 MB" in outcome.message


def test_code_runs_in_another_process_without_the_graders_modules(strict):
    result = strict(forward_with(
        "import os\nprint('pid', os.getpid())\n"
        "import sys\nassert 'reference.dropout' not in sys.modules\n"
        "try:\n    import reference.dropout\nexcept ImportError:\n    print('blocked')"))
    assert forward_outcome(result).verdict == "ok"
    pid = int(result.output.split("pid", 1)[1].split()[0])
    assert pid != os.getpid()
    assert "blocked" in result.output


def test_child_environment_carries_no_secrets(monkeypatch, tmp_path):
    monkeypatch.setenv("GITHUB_TOKEN", "s3cret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cret")
    env = child_environment(str(tmp_path))
    assert "s3cret" not in "".join(env.values())
    assert env["HOME"] == str(tmp_path) and env["OPENBLAS_NUM_THREADS"] == "1"


def test_secrets_in_the_graders_environment_do_not_reach_student_code(monkeypatch, notebook, rubric):
    monkeypatch.setenv("GRADER_TEST_SECRET", "s3cret")
    path = notebook(IMPORTS, forward_with(
        "import os\nif any('s3cret' in v for v in os.environ.values()):\n    raise RuntimeError('leaked')"))
    with Grader(rubric) as grader:
        result = grader.grade(Submission("x", str(path)))
    assert forward_outcome(result).verdict == "ok"


def test_a_hostile_notebook_does_not_change_the_others(strict_grader, notebook):
    good = notebook(IMPORTS, forward_with(), name="good")
    hostile = notebook(IMPORTS, forward_with("while True:\n    pass"), name="hostile")
    alone = strict_grader.grade(Submission("good", str(good)))
    batch = list(strict_grader.grade_all([Submission("hostile", str(hostile)),
                                          Submission("good", str(good))], jobs=2))
    assert batch[1].findings == alone.findings
    assert forward_outcome(batch[0]).diagnosis == "timeout"


# --- the result channel -------------------------------------------------------------------
def test_protocol_round_trip():
    header, arrays = unpack(pack({"a": [1, 2]}, {"x": np.arange(6.0).reshape(2, 3), "m": np.array([True])}))
    assert header == {"a": [1, 2]}
    assert arrays["x"].shape == (2, 3) and arrays["m"].dtype == bool


def _message(header: bytes, index: list, data: bytes = b"") -> bytes:
    encoded = json.dumps(index).encode()
    return struct.pack("<4sQQ", b"GRD2", len(header), len(encoded)) + header + encoded + data


@pytest.mark.parametrize("dtype", ["|O", "<U3", "|S8", "<c16", "<M8[s]", "|V8", "object", "<f16", ">f8x"])
def test_protocol_refuses_every_non_numeric_dtype(dtype):
    with pytest.raises(ProtocolError, match="not numeric"):
        unpack(_message(b"{}", [["evil", dtype, [1]]], b"\0" * 64))


@pytest.mark.parametrize("index", [[["x", "<f8", [4]]], [["x", "<f8", [-1]]], [["x", "<f8", [2**40, 2**40]]],
                                   [["x", "<f8", [0] + [2**31] * 31]], [["x", "<f8", [1.5]]], [["x", "<f8"]],
                                   [["x", "<f8", [1]], ["x", "<f8", [1]]], {"x": 1}, [[1, "<f8", [1]]]])
def test_protocol_refuses_lying_indexes(index):
    """Sizes past the bytes there, negative or overflowing shapes, names twice: refused."""
    with pytest.raises(ProtocolError):
        unpack(_message(b"{}", index, b"\0" * 16), max_elements=10**6)


@settings(max_examples=200, deadline=None)
@given(npst.arrays(st.sampled_from(["<f8", ">f8", "<f4", "<f2", "|b1", "<i8", "|u1", ">i4"]),
                   npst.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)),
       st.booleans())
def test_protocol_round_trips_any_numeric_array(array, transposed):
    """Every numeric dtype and byte order, 0-d and empty shapes, non-contiguous layouts."""
    array = array.T if transposed else array
    _, arrays = unpack(pack({}, {"a": array, "b": np.float64(2.5)}))
    assert isinstance(arrays["a"], np.ndarray) and arrays["a"].flags.writeable
    assert arrays["a"].shape == array.shape and arrays["a"].dtype == array.dtype
    assert np.array_equal(arrays["a"], array, equal_nan=array.dtype.kind == "f")
    assert arrays["b"].shape == () and arrays["b"] == 2.5


def test_protocol_bools_are_zero_or_one_whatever_byte_came():
    _, arrays = unpack(_message(b"{}", [["m", "|b1", [3]]], b"\x00\x02\xff" + b"\0" * 5))
    assert arrays["m"].tolist() == [False, True, True] and arrays["m"].view(np.uint8).max() == 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 200))
def test_protocol_garbage_or_mutated_messages_raise_only_protocol_errors(noise, where):
    """Any bytes, and any valid message with bytes overwritten: a parse, or ProtocolError."""
    valid = bytearray(pack({"a": [1]}, {"x": np.arange(6.0), "m": np.array([True, False])}))
    valid[where % len(valid):where % len(valid) + len(noise)] = noise
    for blob in (bytes(noise), bytes(valid)):
        try:
            header, arrays = unpack(blob)
        except ProtocolError:
            continue
        assert isinstance(header, dict)
        assert all(a.dtype.kind in "biuf" for a in arrays.values())
        messages, _ = split(blob)
        assert all(isinstance(h, dict) for h, _ in messages)


def test_protocol_split_reads_messages_up_to_the_first_bad_one():
    one, two = pack({"section": 0}, {"x": np.ones(3)}), pack({"section": 1}, {})
    messages, problem = split(one + two + b"GRD2 and then garbage")
    assert [h for h, _ in messages] == [{"section": 0}, {"section": 1}] and problem
    clean, problem = split(one + two)
    assert problem == "" and [h for h, _ in clean] == [{"section": 0}, {"section": 1}]
    assert clean[0][1]["x"].tolist() == [1.0, 1.0, 1.0]


def test_protocol_refuses_oversize_and_garbage():
    with pytest.raises(ProtocolError, match="more than"):
        unpack(pack({}, {"x": np.zeros(1000)}), max_elements=100)
    with pytest.raises(ProtocolError):
        unpack(b"GRD2" + b"\xff" * 20)
    with pytest.raises(ProtocolError):
        unpack(b"pickle\x80\x04")


def test_a_result_answering_other_calls_is_refused(strict):
    """Forged data on the result channel that names unknown probes is an error, not a crash."""
    forged = forward_with(
        "import io, json, struct\nhead = json.dumps({'calls': [{'role': 'forward', 'probe': 'nope', "
        "'status': 'returned', 'return': {'type': 'None'}}]}).encode()\n"
        "for fd in range(3, 40):\n    try:\n        os.write(fd, struct.pack('<4sQQ', b'GRD2', len(head), 2) + head + b'[]')\n"
        "    except OSError:\n        pass\nos._exit(0)")
    outcome = forward_outcome(strict(forged.replace("def forward", "import os\ndef forward", 1)))
    assert (outcome.verdict, outcome.diagnosis) == ("wrong", "error")


def test_a_sigkill_not_from_the_grader_is_an_error_that_says_so_not_a_timeout(strict):
    """A SIGKILL under the CPU limit is not the limit's: the code killed itself, or the system's
    out-of-memory killer took it. Either way no time limit was hit."""
    outcome = forward_outcome(strict(forward_with("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")))
    assert (outcome.verdict, outcome.diagnosis) == ("wrong", "error")
    assert "SIGKILL" in outcome.message and "not by the grader" in outcome.message


def test_exit_at_import_is_an_error_for_that_notebook_only(strict):
    """A module-level statement the graded code reads runs when the child loads the notebook."""
    result = strict("import os\nSTOP = os._exit(3)", forward_with("print(STOP)"))
    outcome = forward_outcome(result)
    assert (outcome.verdict, outcome.diagnosis) == ("wrong", "error")
    assert "exited with code 3" in outcome.message


# --- the child's view, its privileges and its folder ------------------------------------------

from dropout_grader.sandbox import tree  # noqa: E402
from dropout_grader.sandbox.view import child_view  # noqa: E402


def test_child_view_lists_no_package_folder_nor_the_answer_key():
    import importlib.util
    import sysconfig

    from dropout_grader.reference.dropout import STANDINS

    view = child_view(str(STANDINS)).read
    key = [os.path.realpath(p) for name in ("dropout_grader.reference", "dropout_grader.rubrics")
           for p in importlib.util.find_spec(name).submodule_search_locations]
    grader = os.path.realpath(os.path.dirname(importlib.util.find_spec("dropout_grader").origin))
    for path in view:
        assert os.path.basename(path) not in ("site-packages", "dist-packages"), path
        # nothing allowed contains the answer key or the grader's modules...
        assert not any(k == path or k.startswith(path + os.sep) for k in key + [grader]), path
    # ...yet the standard library and numpy are there
    assert os.path.join(os.path.realpath(sysconfig.get_paths()["stdlib"]), "os.py") in view
    assert os.path.dirname(os.path.realpath(np.__file__)) in view


def _in_fresh_python(code: str) -> str:
    import subprocess
    import sys

    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr[-2000:]
    return ran.stdout


SYSCALL_PROBES = {  # name: C call on x86_64, each harmless if it were allowed
    "io_uring_setup": "libc.syscall(425, 8, ctypes.create_string_buffer(120))",
    "socket": "libc.socket(2, 2, 0)",
    "socketpair": "libc.socketpair(1, 1, 0, (ctypes.c_int * 2)())",
    "shmget": "libc.shmget(0, 4096, 0o1600)",
    "msgget": "libc.msgget(0, 0o1600)",
    "semget": "libc.semget(0, 1, 0o1600)",
    "fanotify_init": "libc.fanotify_init(0, 0)",
    "rt_sigqueueinfo": "libc.syscall(129, os.getppid(), 0, info)",
    "pidfd_open": "libc.syscall(434, os.getppid(), 0)",
    "sched_setaffinity": "libc.syscall(203, os.getppid(), 0, None)",
    "setpriority": "libc.setpriority(0, os.getppid(), 0)",
    "sethostname": "libc.sethostname(b'x' * 200, 200)",
    "mknod": "libc.mknod(b'fifo', 0o10600, 0)",
    "fcntl_setown": "libc.fcntl(0, 8, os.getppid())",
    "kill": "libc.kill(os.getppid(), 0)",
    "tgkill": "libc.syscall(234, os.getppid(), os.getppid(), 0)",
}


def test_seccomp_alone_denies_what_landlock_would_not():
    """Where Landlock is missing or old (no network or scoping ABI), seccomp alone closes
    io_uring, sockets, IPC, fanotify, signals and scheduling aimed at others."""
    out = _in_fresh_python(
        "import ctypes, os, tempfile\nos.chdir(tempfile.mkdtemp())\n"
        "from dropout_grader.sandbox.confine import apply_seccomp\n"
        "assert apply_seccomp().active\n"
        "libc = ctypes.CDLL(None, use_errno=True)\nlibc.syscall.restype = ctypes.c_long\n"
        "info = (ctypes.c_int * 32)()\ninfo[2] = -1\n"
        + "".join(f"r = {call}\nprint({name!r}, r, ctypes.get_errno())\n" for name, call in SYSCALL_PROBES.items())
        + "ctypes.set_errno(0)\nprint('own', libc.kill(os.getpid(), 0), ctypes.get_errno())\n")
    results = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    for name in SYSCALL_PROBES:
        assert results[name] == ["-1", "1"], (name, results[name])  # -1, EPERM
    assert results["own"] == ["0", "0"]  # signals to itself still work (the pid was patched in)


def test_capabilities_are_dropped_even_as_root():
    out = _in_fresh_python(
        "import ctypes\nfrom dropout_grader.sandbox.confine import drop_capabilities\n"
        "print(drop_capabilities().active)\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "header = (ctypes.c_uint32 * 2)(0x20080522, 0)\ndata = (ctypes.c_uint32 * 6)()\n"
        "libc.capget(header, data)\nprint(list(data))\n"
        "print(libc.prctl(23, 21, 0, 0, 0), libc.prctl(39, 0, 0, 0, 0))")  # CAPBSET_READ SYS_ADMIN; NO_NEW_PRIVS
    active, data, flags = out.splitlines()
    assert active == "True" and data == str([0] * 6)
    bounding, no_new_privs = flags.split()
    assert no_new_privs == "1"
    assert bounding == ("0" if os.getuid() == 0 else bounding)


def test_the_zygote_holds_nothing_of_the_answer_key(strict):
    result = strict(forward_with(
        "import sys\nprint('MODULES', sorted(m for m in sys.modules if m.startswith('dropout_grader')))\n"
        "print('FINDERS', [type(f).__name__ for f in sys.meta_path])"))
    modules = result.output.split("MODULES", 1)[1].splitlines()[0]
    assert "reference" not in modules and "rubrics" not in modules and "pipeline" not in modules, modules
    assert "Editable" not in result.output.split("FINDERS", 1)[1].splitlines()[0]


def _nest(root, depth: int, name: str = "d") -> None:
    """`depth` nested folders, made fd-relative (the path is longer than PATH_MAX)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        with open(os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=fd), "w") as handle:
            handle.write("x")
        os.fchmod(fd, 0o500)  # write-protected at the bottom
    finally:
        os.close(fd)


def test_removal_of_3000_nested_folders_neither_recurses_nor_raises(tmp_path):
    root = tmp_path / "job"
    root.mkdir()
    _nest(str(root), 3000)
    used = tree.usage(str(root), 10_000)
    assert used.complete and used.entries == 3001
    assert tree.remove_tree(str(root)) is True
    assert not root.exists()


def test_removal_does_not_follow_symlinks_out(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    root = tmp_path / "job"
    (root / "a").mkdir(parents=True)
    (root / "a" / "out").symlink_to(outside)
    (root / "link").symlink_to(outside / "keep.txt")
    os.chmod(root / "a", 0)
    assert tree.remove_tree(str(root)) is True
    assert (outside / "keep.txt").read_text() == "keep" and not root.exists()


def test_usage_stops_at_its_entry_bound(tmp_path):
    for i in range(50):
        (tmp_path / f"f{i}").write_bytes(b"x" * 5000)
    assert tree.usage(str(tmp_path), 20).complete is False
    whole = tree.usage(str(tmp_path), 1000)
    assert whole.complete and whole.entries == 50 and whole.bytes >= 50 * 4096


@settings(max_examples=25, deadline=None)
@given(st.recursive(st.just(None), lambda kids: st.dictionaries(
    st.text(st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)), min_size=1, max_size=12)
    .filter(lambda n: n not in (".", "..")), kids, max_size=4), max_leaves=20))
def test_removal_of_any_tree_leaves_nothing(tmp_path_factory, shape):
    root = tmp_path_factory.mktemp("any") / "job"
    root.mkdir()

    def make(folder, node):
        for name, child in (node or {}).items():
            path = folder / name
            if child is None:
                path.write_bytes(name.encode("utf-8", "surrogatepass"))
            else:
                path.mkdir()
                make(path, child)
                os.chmod(path, 0o500)

    make(root, shape if isinstance(shape, dict) else {})
    assert tree.remove_tree(str(root)) is True
    assert not root.exists()


def test_a_child_filling_its_folder_is_stopped_and_the_folder_removed(notebook, tmp_path):
    """Process mode: RLIMIT_FSIZE caps each file at 1 MB; the grader measures the folder
    and kills a child past its bound (under bubblewrap the folder is a size-limited tmpfs)."""
    path = rubric_with_limits(tmp_path, {"cpu_seconds": 5, "wall_seconds": 10, "memory_mb": 512, "output_kb": 4,
                                         "result_mb": 1})
    strict_grader = Grader(load_rubric(path), isolation="process")
    path = notebook(IMPORTS, forward_with(
        "chunk = b'x' * ((1 << 20) - 1)\nfor i in range(3072):\n    with open(f'f{i}', 'wb') as f:\n"
        "        f.write(chunk)\nprint('WROTE ALL')"))
    with strict_grader:
        started = time.monotonic()
        result = strict_grader.grade(Submission("disk", str(path)))
        assert time.monotonic() - started < 8  # stopped, not timed out
        assert "WROTE ALL" not in result.output
        assert forward_outcome(result).diagnosis == "error"
        assert os.listdir(strict_grader.sandbox._root) == []
