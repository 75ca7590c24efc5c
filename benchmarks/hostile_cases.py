"""Hostile notebooks: code that tries what a student's code must not do. Shared by the
hostile tests (tests/test_hostile.py) and the containment benchmark (containment.py).
Each case is the body of an otherwise correct forward function, and the verdicts allowed."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUBRIC = ROOT / "rubrics" / "dropout.yaml"

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


def listeners():
    """A TCP and a UDP socket on 127.0.0.1 that hostile code tries to reach."""
    import socket

    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    tcp.setblocking(False)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    return tcp, udp


def heard(tcp, udp) -> bool:
    """Did anything connect or send (without waiting)?"""
    for receive in (tcp.accept, lambda: udp.recv(100)):
        try:
            receive()
            return True
        except BlockingIOError:
            pass
    return False


def notebook_source(case: dict) -> str:
    return FORWARD.format(before=textwrap.indent(case.get("before", ""), "    "),
                          after=textwrap.indent(case.get("after", ""), "    "),
                          returned=case.get("returned", "A3, cache"))


GOOD = FORWARD.format(before="", after="", returned="A3, cache")
