"""The child runner: student code runs in a limited child process, never in the grader, and
only plain data comes back."""

from __future__ import annotations

import io
import os
import time

import numpy as np
import pytest
import yaml

from dropout_grader.pipeline import Grader
from dropout_grader.results import Submission
from dropout_grader.rubric import DEFAULT_RUBRIC, load_rubric
from dropout_grader.sandbox.protocol import ProtocolError, pack, unpack
from dropout_grader.sandbox.runner import child_environment
from conftest import load_script

hostile = load_script("benchmarks", "hostile_cases")

IMPORTS = "import numpy as np\nfrom reg_utils import relu, sigmoid"


def forward_with(body_before: str = "", return_line: str = "return A3, cache") -> str:
    """A correct forward function with extra statements at its start (see hostile_cases)."""
    return hostile.notebook_source({"before": body_before, "returned": return_line.removeprefix("return ")})


@pytest.fixture(scope="module")
def strict_grader(tmp_path_factory):
    data = yaml.safe_load(DEFAULT_RUBRIC.read_text())
    data["limits"] = {"cpu_seconds": 2, "wall_seconds": 3, "memory_mb": 512, "output_kb": 4, "result_mb": 1}
    path = tmp_path_factory.mktemp("rubric") / "strict.yaml"
    path.write_text(yaml.safe_dump(data))
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


def test_protocol_refuses_pickled_objects():
    buffer = io.BytesIO()
    np.savez(buffer, evil=np.array([object(), {"a": 1}], dtype=object))
    blob = pack({}, {})[:-len(_empty_npz())] + buffer.getvalue()
    with pytest.raises(ProtocolError):
        unpack(blob)


def test_protocol_refuses_oversize_and_garbage():
    with pytest.raises(ProtocolError, match="more than"):
        unpack(pack({}, {"x": np.zeros(1000)}), max_elements=100)
    with pytest.raises(ProtocolError):
        unpack(b"GRD1" + b"\xff" * 20)
    with pytest.raises(ProtocolError):
        unpack(b"pickle\x80\x04")


def _empty_npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer)
    return buffer.getvalue()


def test_a_result_answering_other_calls_is_refused(strict):
    """Forged data on the result channel that names unknown probes is an error, not a crash."""
    forged = forward_with(
        "import io, json, struct\nhead = json.dumps({'calls': [{'role': 'forward', 'probe': 'nope', "
        "'status': 'returned', 'return': {'type': 'None'}}]}).encode()\n"
        "blob = io.BytesIO()\nnp.savez(blob)\n"
        "for fd in range(3, 40):\n    try:\n        os.write(fd, struct.pack('<4sQ', b'GRD1', len(head)) + head + blob.getvalue())\n"
        "    except OSError:\n        pass\nos._exit(0)")
    outcome = forward_outcome(strict(forged.replace("def forward", "import os\ndef forward", 1)))
    assert (outcome.verdict, outcome.diagnosis) == ("wrong", "error")


def test_exit_at_import_is_an_error_for_that_notebook_only(strict):
    """A module-level statement the graded code reads runs when the child loads the notebook."""
    result = strict("import os\nSTOP = os._exit(3)", forward_with("print(STOP)"))
    outcome = forward_outcome(result)
    assert (outcome.verdict, outcome.diagnosis) == ("wrong", "error")
    assert "exited with code 3" in outcome.message
