"""Hostile notebooks: code that tries what a student's code must not do. Shared by the
hostile tests (tests/test_hostile.py) and the containment benchmark (containment.py).
Each case is the body of an otherwise correct forward function, and the verdicts allowed."""

from __future__ import annotations

import os
import socket
import textwrap
from dataclasses import dataclass
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


# ctypes access to raw system calls, as hostile code would do it (x86_64 numbers where glibc
# has no wrapper; elsewhere the call fails with ENOSYS, which counts as contained too).
LIBC = "import ctypes, errno\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.syscall.restype = ctypes.c_long\n"
IPC_KEY = 0x47524431  # SysV IPC key the hostile cases use; the tests check none survives


def fails(expression: str, setup: str = "") -> str:
    """ESCAPED unless the C call returns a negative value (denied, whatever the errno)."""
    return attempt(LIBC + setup + f"if ({expression}) < 0:\n    raise OSError(ctypes.get_errno(), 'denied')")


def not_permitted(expression: str) -> str:
    """ESCAPED unless the call fails with EPERM, i.e. before the kernel even looks at its
    (deliberately invalid, harmless) arguments: a privileged caller would get EINVAL."""
    return attempt(LIBC + f"if ({expression}) < 0 and ctypes.get_errno() == errno.EPERM:\n"
                          "    raise PermissionError('denied')")


# Answer-key finders: the way an attacker, or the grader itself, would look for the reference
# solution and the rubric in any install. Each prints what it read and ESCAPED on success.
STEAL = """\
hits = []
def steal(path):
    if 'standins' in path:  # the stand-in helper modules are the child's to read
        return
    try:
        with open(path, 'rb') as handle:
            hits.append(handle.read(2000).decode('latin-1'))
    except OSError:
        pass
def steal_folder(folder, depth=0):
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        path = os.path.join(folder, name)
        if os.path.isdir(path) and depth < 3:
            steal_folder(path, depth + 1)
        elif name.endswith(('.py', '.yaml', '.sqlite', '.json')):
            steal(path)
"""
REVEAL = "\nif hits:\n    print('\\n'.join(hits))\n    print('ESCAPED')"


def finder(code: str) -> str:
    return "try:\n" + textwrap.indent(STEAL + code + REVEAL, "    ") + "\nexcept BaseException:\n    pass"


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
        # 512 MB of page faults: about 1 s of CPU, which a loaded machine can stretch past the wall clock
        "gradual_growth": dict(before="hoard = []\nwhile True:\n    hoard.append(np.ones(1 << 20))",
                               outcome={"memory", "timeout"}),
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
        "chmod_other_student": dict(before=attempt(f"os.chmod({str(ctx['other'])!r}, 0)"), outcome={None}),
        "touch_and_tag_canary": dict(before=attempt(
            f"os.utime({str(ctx['canary'])!r}, (0, 0))\nos.setxattr({str(ctx['canary'])!r}, 'user.x', b'1')"),
            outcome={None}),
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
        # --- the answer key, found the way the grader finds it ------------------------------
        "find_spec_answer_key": dict(before=finder(
            "import importlib, importlib.util\n"
            "for name in ('dropout_grader.reference.dropout', 'dropout_grader.reference.dropout_diagnosis',\n"
            "             'dropout_grader.reference', 'dropout_grader.rubrics', 'dropout_grader.pipeline'):\n"
            "    try:\n        spec = importlib.util.find_spec(name)\n    except BaseException:\n        continue\n"
            "    if spec is not None:\n"
            "        steal(spec.origin or '')\n"
            "        for folder in spec.submodule_search_locations or []:\n            steal_folder(folder)\n"
            "    try:\n        module = importlib.import_module(name)\n        hits.append(repr(vars(module))[:2000])\n"
            "    except BaseException:\n        pass"), outcome={None}),
        "walk_site_packages": dict(before=finder(
            "import site\nroots = list(site.getsitepackages()) + [site.getusersitepackages()] + sys.path\n"
            "roots.append(os.path.dirname(os.path.dirname(np.__file__)))\n"
            "import dropout_grader\nfor folder in dropout_grader.__path__:\n"
            "    roots += [folder, os.path.dirname(folder)]\n"
            "for root in roots:\n"
            "    for where, folders, files in os.walk(root):\n"
            "        if any(part in where for part in ('dropout_grader', 'reference', 'rubrics', 'grader')):\n"
            "            for name in files:\n                steal(os.path.join(where, name))\n"
            "        for name in files:\n"
            "            if name.startswith('__editable__') or name.endswith(('.pth', 'RECORD')):\n"
            "                steal(os.path.join(where, name))"), outcome={None}),
        "editable_finder_mapping": dict(before=finder(
            "for module in list(sys.modules.values()):\n"
            "    mapping = getattr(module, 'MAPPING', None)\n"
            "    if isinstance(mapping, dict):\n"
            "        for folder in mapping.values():\n            steal_folder(folder)\n"
            "for hook in list(sys.meta_path) + list(sys.path_hooks):\n"
            "    mapping = getattr(hook, 'MAPPING', None) or getattr(getattr(hook, '__self__', None), 'MAPPING', None)\n"
            "    if isinstance(mapping, dict):\n"
            "        for folder in mapping.values():\n            steal_folder(folder)"), outcome={None}),
        "grader_package_relative": dict(before=finder(
            "import dropout_grader, dropout_grader.sandbox.harness as harness\n"
            "for folder in list(dropout_grader.__path__) + [os.path.dirname(harness.__file__)]:\n"
            "    for relative in ('reference', '../reference', 'rubrics', '../rubrics', '.', '..'):\n"
            "        steal_folder(os.path.normpath(os.path.join(folder, relative)))"), outcome={None}),
        "proc_of_parents": dict(before=finder(
            f"for pid in (os.getppid(), {os.getpid()}, 1):\n"
            "    for name in ('cmdline', 'environ', 'maps', 'cwd/rubric.yaml'):\n"
            "        steal(f'/proc/{pid}/{name}')"), outcome={None}),
        "read_gradebook": dict(before=attempt(f"print(open({str(ctx['gradebook'])!r}).read()[:50])"), outcome={None}),
        # --- io_uring, sockets to host services, IPC, fanotify -----------------------------
        "io_uring": dict(before=fails("libc.syscall(425, 8, ctypes.create_string_buffer(120))"), outcome={None}),
        "unix_socket_to_host_service": dict(before=attempt(
            f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({str(ctx['unix'])!r})\ns.sendall(b'hi')"),
            outcome={None}),
        "abstract_unix_socket": dict(before=attempt(
            f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({ctx['abstract']!r})\ns.sendall(b'hi')"),
            outcome={None}),
        "udp_grader_variables": dict(before=attempt(
            f"import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto("
            f"repr(sorted(os.environ)).encode(), ('127.0.0.1', {ctx['udp']}))"), outcome={None}),
        "sysv_shared_memory": dict(before=fails(f"libc.shmget({IPC_KEY}, 4096, 0o1666)"), outcome={None}),
        "sysv_message_queue": dict(before=fails(f"libc.msgget({IPC_KEY}, 0o1666)"), outcome={None}),
        "sysv_semaphore": dict(before=fails(f"libc.semget({IPC_KEY}, 1, 0o1666)"), outcome={None}),
        "posix_message_queue": dict(before=fails("libc.mq_open(b'/grader-hostile', 0o100 | 0o2, 0o600, None)"),
                                    outcome={None}),
        "fanotify": dict(before=fails("libc.fanotify_init(0, 0)"), outcome={None}),
        # --- signals and scheduling aimed outside the child ----------------------------------
        "rt_sigqueueinfo_to_zygote": dict(before=fails(
            "libc.syscall(129, os.getppid(), 0, info)", "info = (ctypes.c_int * 32)()\ninfo[2] = -1\n"), outcome={None}),
        "rt_tgsigqueueinfo_to_grader": dict(before=fails(
            f"libc.syscall(297, {os.getpid()}, {os.getpid()}, 0, info)", "info = (ctypes.c_int * 32)()\ninfo[2] = -1\n"),
            outcome={None}),
        "pidfd_of_zygote": dict(before=fails("libc.syscall(434, os.getppid(), 0)"), outcome={None}),
        "sigio_to_grader": dict(before=fails(f"libc.fcntl(r, 8, {os.getpid()})", "r, w = os.pipe()\n"), outcome={None}),
        "sched_setaffinity_zygote": dict(before=attempt(
            "os.sched_setaffinity(os.getppid(), os.sched_getaffinity(os.getppid()))"), outcome={None}),
        "setpriority_zygote": dict(before=attempt(
            "os.setpriority(os.PRIO_PROCESS, os.getppid(), os.getpriority(os.PRIO_PROCESS, os.getppid()))"),
            outcome={None}),
        "sched_setscheduler_zygote": dict(before=attempt(
            "os.sched_setscheduler(os.getppid(), os.SCHED_OTHER, os.sched_param(0))"), outcome={None}),
        # --- the kernel, as root ----------------------------------------------------------
        "read_kmsg": dict(before=attempt("os.read(os.open('/dev/kmsg', os.O_RDONLY | os.O_NONBLOCK), 8192)"),
                          outcome={None}),
        "reboot": dict(before=not_permitted("libc.syscall(169, 0xfee1dead, 672274793, 0x7777, None)"), outcome={None}),
        "sethostname": dict(before=not_permitted("libc.sethostname(b'x' * 200, 200)"), outcome={None}),
        "capabilities_kept": dict(before=attempt(
            LIBC + "header = (ctypes.c_uint32 * 2)(0x20080522, 0)\ndata = (ctypes.c_uint32 * 6)()\n"
            "assert libc.capget(header, data) == 0\n"
            "assert any(data) or libc.prctl(23, 21, 0, 0, 0) == 1"), outcome={None}),
        # --- disk ---------------------------------------------------------------------------
        "gigabyte_three_times": dict(before=attempt(
            "chunk = b'x' * (1 << 20)\nwritten = 0\nfor name in ('a', 'b', 'c'):\n"
            "    try:\n        with open(name, 'wb') as f:\n            for _ in range(1024):\n"
            "                written += f.write(chunk)\n    except OSError:\n        pass\n"
            "assert written > 64 << 20"), outcome={None}),
        "many_megabyte_files": dict(before=attempt(
            "chunk = b'x' * ((1 << 20) - 1)\nfor i in range(3072):\n"
            "    with open(f'f{i}', 'wb') as f:\n        f.write(chunk)"), outcome={None, "error", "timeout"}),
        "nested_folders": dict(before=attempt(
            "import time\nt = time.monotonic()\nfor _ in range(3000):\n    os.mkdir('d')\n    os.chdir('d')\n"
            "print('made in', time.monotonic() - t)\n"
            "os.chmod('.', 0)\nraise OSError('made them')"), outcome={None, "timeout"}),
        "symlink_out_of_the_folder": dict(before=attempt(
            f"os.symlink({str(ctx['canary'].parent)!r}, 'out')\nos.mkdir('x')\n"
            f"os.symlink({str(ctx['canary'])!r}, 'x/canary')\nraise OSError('linked')"), outcome={None}),
    }


@dataclass
class Listeners:
    """Host services hostile code tries to reach: TCP and UDP on 127.0.0.1, a Unix socket in
    a folder of the host, an abstract Unix socket. `heard()` says whether anything arrived."""
    tcp: socket.socket
    udp: socket.socket
    unix: socket.socket
    abstract: socket.socket

    def context(self) -> dict:
        return {"tcp": self.tcp.getsockname()[1], "udp": self.udp.getsockname()[1],
                "unix": self.unix.getsockname(), "abstract": self.abstract.getsockname()}

    def heard(self) -> bool:
        for receive in (self.tcp.accept, lambda: self.udp.recv(100), self.unix.accept, self.abstract.accept):
            try:
                receive()
                return True
            except BlockingIOError:
                pass
        return False

    def close(self) -> None:
        for sock in (self.tcp, self.udp, self.unix, self.abstract):
            sock.close()


def listeners(folder: Path) -> Listeners:
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(folder / "service.sock"))
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind(f"\0grader-hostile-{os.getpid()}-{id(folder)}")
    for sock in (tcp, unix, abstract):
        sock.listen(8)
    for sock in (tcp, udp, unix, abstract):
        sock.setblocking(False)
    return Listeners(tcp, udp, unix, abstract)


def context(folder: Path, other: Path, canary: Path, services: Listeners) -> dict:
    """What the cases aim at: another student's notebook, a canary file, a gradebook, the
    listeners."""
    gradebook = folder / "gradebook.sqlite"
    gradebook.write_text("SQLite format 3 GRADEBOOK-CONTENT")
    return {"other": other, "canary": canary, "gradebook": gradebook, **services.context()}


def placeholder_context() -> dict:
    """Enough to list the cases' names."""
    return {"other": Path("/x"), "canary": Path("/x"), "gradebook": Path("/x"), "tcp": 1, "udp": 1,
            "unix": "/x", "abstract": "\0x"}


def ipc_objects() -> list[str]:
    """SysV IPC objects with the hostile cases' key that exist on this machine now."""
    found = []
    for kind in ("shm", "msg", "sem"):
        try:
            lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()[1:]
        except OSError:
            continue
        found += [f"{kind} {line.split()[1]}" for line in lines if line.split() and int(line.split()[0]) == IPC_KEY]
    return found


def answer_key_text() -> list[str]:
    """Distinctive lines of the reference solution and the rubric, found through the installed
    package as the grader finds them: none may appear in what a child printed."""
    import importlib.util

    lines = []
    for name in ("dropout_grader.reference", "dropout_grader.rubrics"):
        spec = importlib.util.find_spec(name)
        for folder in spec.submodule_search_locations or []:
            for path in sorted(Path(folder).iterdir()):
                if path.suffix in (".py", ".yaml") and path.name != "__init__.py":
                    lines += [line.strip() for line in path.read_text().splitlines() if len(line.strip()) > 40]
    return lines


def leaked(output: str, key_lines: list[str]) -> list[str]:
    return [line for line in key_lines if line in output][:3]


def notebook_source(case: dict) -> str:
    return FORWARD.format(before=textwrap.indent(case.get("before", ""), "    "),
                          after=textwrap.indent(case.get("after", ""), "    "),
                          returned=case.get("returned", "A3, cache"))


GOOD = FORWARD.format(before="", after="", returned="A3, cache")
