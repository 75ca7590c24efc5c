"""A hostile class: every notebook tries something a student's code must not do, in one batch
with well-behaved notebooks between them. Each case asserts its verdict and that nothing
escaped: no leftover process, the listener saw nothing, canary files untouched, and the good
notebooks in the batch got exactly the findings they get alone. Run in every isolation mode
this machine offers."""

from __future__ import annotations

import os
import socket
import textwrap
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, write_notebook
from grader.pipeline import Grader
from grader.results import Submission
from grader.rubric import DEFAULT_RUBRIC, load_rubric
from grader.sandbox.runner import bubblewrap_works

IMPORTS = "import numpy as np\nfrom reg_utils import relu, sigmoid\nimport os, sys"

FORWARD = '''\
def forward_propagation_with_dropout(X, parameters, keep_prob):
{before}
    W1, b1, W2, b2, W3, b3 = (parameters[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
    Z1 = W1 @ X + b1
    A1 = relu(Z1)
    D1 = np.random.rand(*A1.shape) < keep_prob
    A1 = A1 * D1 / keep_prob
    Z2 = W2 @ A1 + b2
    A2 = relu(Z2)
    D2 = np.random.rand(*A2.shape) < keep_prob
    A2 = A2 * D2 / keep_prob
    Z3 = W3 @ A2 + b3
    A3 = sigmoid(Z3)
    cache = (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)
{after}
    return {returned}
'''


def attempt(code: str) -> str:
    """Try something; if it works, say so on stdout (the test fails on 'ESCAPED')."""
    return f"try:\n{textwrap.indent(code, '    ')}\n    print('ESCAPED')\nexcept BaseException:\n    pass"


def cases(ctx) -> dict[str, dict]:
    """name -> {"before"/"after" code, "returned", the forward.function verdicts allowed}."""
    reference = ROOT / "reference" / "dropout.py"
    return {
        # --- time, memory, processes ----------------------------------------------------
        "infinite_loop": dict(before="while True:\n    pass", outcome={"timeout"}),
        "sleep_forever": dict(before="import time\ntime.sleep(10_000)", outcome={"timeout"}),
        "ignore_sigterm": dict(before="import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass",
                               outcome={"timeout"}),
        "huge_allocation": dict(before="big = np.ones((1 << 17, 1 << 14))", outcome={"memory"}),
        "gradual_growth": dict(before="hoard = []\nwhile True:\n    hoard.append(np.ones(1 << 20))", outcome={"memory"}),
        "fork_bomb": dict(before=attempt("while True:\n    os.fork()"), outcome={None}),
        "daemon_double_fork": dict(before=attempt(
            "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        import time\n        time.sleep(10_000)\n    os._exit(0)"),
            outcome={None}),
        "subprocess": dict(before=attempt("import subprocess\nsubprocess.run(['sleep', '1000'])"), outcome={None}),
        "os_system": dict(before=attempt("assert os.system('sleep 1000 &') == 0"), outcome={None}),
        "print_a_gigabyte": dict(before="chunk = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)",
                                 outcome={None, "timeout"}),
        "os_exit": dict(before="os._exit(0)", outcome={"error"}),
        "sys_exit": dict(before="sys.exit(1)", outcome={"error"}),
        "deep_recursion": dict(before="def down(n):\n    return down(n + 1)\ndown(0)", outcome={"error"}),
        "segfault": dict(before="import ctypes\nctypes.string_at(0)", outcome={"error"}),
        # --- reading what is not theirs -------------------------------------------------
        "read_reference": dict(before=attempt(f"print(open({str(reference)!r}).read()[:50])"), outcome={None}),
        "read_rubric": dict(before=attempt(f"print(open({str(DEFAULT_RUBRIC)!r}).read()[:50])"), outcome={None}),
        "read_grader_source": dict(before=attempt(f"print(open({str(ROOT / 'grader' / 'pipeline.py')!r}).read()[:50])"),
                                   outcome={None}),
        "read_other_student": dict(before=attempt(f"print(open({str(ctx['other'])!r}).read()[:50])"), outcome={None}),
        "read_parent_environ": dict(before=attempt(f"print(open('/proc/{os.getpid()}/environ').read()[:50])"),
                                    outcome={None}),
        "list_the_class": dict(before=attempt(f"print(os.listdir({str(ctx['other'].parent)!r}))"), outcome={None}),
        # --- writing, linking, network, signals ---------------------------------------------
        "overwrite_canary": dict(before=attempt(f"open({str(ctx['canary'])!r}, 'w').write('pwned')"), outcome={None}),
        "delete_canary": dict(before=attempt(f"os.remove({str(ctx['canary'])!r})"), outcome={None}),
        "hard_link": dict(before=attempt(f"os.link({str(ctx['canary'])!r}, 'stolen')"), outcome={None}),
        "tcp": dict(before=attempt(f"import socket\nsocket.create_connection(('127.0.0.1', {ctx['tcp']}), timeout=1).sendall(b'hi')"),
                    outcome={None}),
        "udp": dict(before=attempt(f"import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'hi', ('127.0.0.1', {ctx['udp']}))"),
                    outcome={None}),
        "kill_parent": dict(before=attempt("import signal\nos.kill(os.getppid(), signal.SIGKILL)"), outcome={None}),
        "kill_the_grader": dict(before=attempt(f"import signal\nos.kill({os.getpid()}, signal.SIGKILL)"), outcome={None}),
        "kill_everyone": dict(before=attempt("import signal\nos.kill(-1, signal.SIGKILL)"), outcome={None}),
        "raise_limits": dict(before=attempt("import resource\nresource.setrlimit(resource.RLIMIT_CPU, (10_000, 10_000))"),
                             outcome={None}),
        # --- lying about the result -------------------------------------------------------------
        "monkeypatch_numpy_and_builtins": dict(after="np.allclose = lambda *a, **k: True\nimport builtins\nbuiltins.len = lambda x: 0",
                                               outcome={None}),
        "print_fake_result": dict(after="print('GRD1{\"calls\": []}')\nprint('forward.layer1.scale ok 19/19')", outcome={None}),
        "forge_result_channel": dict(after="for fd in range(3, 40):\n    try:\n        os.write(fd, b'GRD1' + b'\\x00' * 8 + b'{}')\n    except OSError:\n        pass",
                                     outcome={"error", None}),
        "pickle_on_result_channel": dict(after=(
            "import io, pickle, struct, zipfile\nblob = io.BytesIO()\n"
            "with zipfile.ZipFile(blob, 'w') as z:\n    z.writestr('x.npy', pickle.dumps(os.system))\n"
            "head = b'{\"calls\": []}'\nfor fd in range(3, 40):\n    try:\n"
            "        os.write(fd, struct.pack('<4sQ', b'GRD1', len(head)) + head + blob.getvalue())\n"
            "    except OSError:\n        pass\nos._exit(0)"), outcome={"error"}),
        "lying_array_subclass": dict(before="class Liar(np.ndarray):\n    def __eq__(self, other):\n        return True",
                                     returned="np.zeros((1, X.shape[1])).view(Liar), cache", outcome={None}, output_wrong=True),
        "lying_array_protocol": dict(before="class Liar:\n    def __array__(self, *a, **k):\n        raise RuntimeError('no')\n"
                                            "    def __reduce__(self):\n        return (os.system, ('touch /tmp/reduced',))",
                                     returned="Liar(), cache", outcome={None}, output_wrong=True),
        "huge_result": dict(returned="np.zeros((1 << 12, 1 << 12)), cache", outcome={"bad_return"}),
    }


MODES = ["process"] + (["bwrap"] if bubblewrap_works() else [])


@pytest.fixture(scope="module", params=MODES)
def batch(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"hostile-{request.param}")
    data = yaml.safe_load(DEFAULT_RUBRIC.read_text())
    data["limits"] = {"cpu_seconds": 2, "wall_seconds": 4, "memory_mb": 512, "output_kb": 16, "result_mb": 8}
    rubric_path = folder / "strict.yaml"
    rubric_path.write_text(yaml.safe_dump(data))
    canary = folder / "canary.txt"
    canary.write_text("untouched")
    good = write_notebook(folder / "good.ipynb", IMPORTS, FORWARD.format(before="", after="", returned="A3, cache"))
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    tcp.setblocking(False)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    ctx = {"other": good, "canary": canary, "tcp": tcp.getsockname()[1], "udp": udp.getsockname()[1]}
    table = cases(ctx)
    submissions = []
    for name, case in table.items():
        source = FORWARD.format(before=textwrap.indent(case.get("before", ""), "    "),
                                after=textwrap.indent(case.get("after", ""), "    "),
                                returned=case.get("returned", "A3, cache"))
        path = write_notebook(folder / f"{name}.ipynb", IMPORTS, source)
        submissions += [Submission(name, str(path)), Submission(f"good-after-{name}", str(good))]
    with Grader(load_rubric(rubric_path), isolation=request.param) as grader:
        alone = grader.grade(Submission("good", str(good)))
        results = {r.student: r for r in grader.grade_all(submissions, jobs=2)}
        sandbox_root = grader.sandbox._root
        leftovers = _processes_under(sandbox_root)
        protections = {p["name"]: p["active"] for p in grader.protections}
    try:
        connection = tcp.accept()
    except BlockingIOError:
        connection = None
    try:
        datagram = udp.recv(100)
    except BlockingIOError:
        datagram = None
    tcp.close()
    udp.close()
    yield dict(table=table, results=results, alone=alone, canary=canary, leftovers=leftovers,
               connection=connection, datagram=datagram, protections=protections)


def _processes_under(root: str) -> list[int]:
    """Processes still running in (or below) the sandbox's folder: a child's descendants."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd").startswith(root + "/job-"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


NAMES = list(cases({"other": Path("/x"), "canary": Path("/x"), "tcp": 1, "udp": 1}))


@pytest.mark.parametrize("name", NAMES)
def test_hostile_case(batch, name):
    if name == "kill_everyone" and not batch["protections"].get("seccomp"):
        pytest.skip("without seccomp this case could kill the machine's processes")
    case = batch["table"][name]
    result = batch["results"][name]
    outcome = next(f for f in result.findings if f.step == "forward.function")
    assert outcome.diagnosis in case["outcome"], (outcome.diagnosis, outcome.message)
    assert "ESCAPED" not in result.output, result.output[:500]
    if case.get("output_wrong"):
        assert next(f for f in result.findings if f.step == "forward.output").verdict != "ok" or \
            next(f for f in result.findings if f.step == "forward.cache").verdict != "ok"
    # the well-behaved notebook graded right after it is graded exactly as when alone
    assert batch["results"][f"good-after-{name}"].findings == batch["alone"].findings


def test_nothing_escaped(batch):
    assert batch["leftovers"] == []
    assert batch["connection"] is None and batch["datagram"] is None
    assert batch["canary"].read_text() == "untouched"
    assert not Path("/tmp/reduced").exists()


def test_output_is_capped(batch):
    assert len(batch["results"]["print_a_gigabyte"].output) < 20_000
