"""IPython's input transformer, run on untrusted cells in a worker process with a memory
limit and a wall clock.

The transformer re-tokenises the whole cell for every magic it rewrites: 400 lines of
`x = %ls` take 7 s, a 40 kB cell of them a minute, a 300 kB cell minutes of CPU. extract.py
refuses the shapes known to be slow before asking; this worker bounds whatever else there is.
One worker serves the whole run (IPython is imported once, ~0.5 s, only when a cell needs it);
a worker that overruns is killed and the next cell gets a fresh one.

Protocol on the worker's stdin/stdout: a 4-byte big-endian length and UTF-8 text each way;
the reply's first byte is b"o" (translated) or b"e" (IPython cannot make sense of it).
"""

from __future__ import annotations

import os
import selectors
import struct
import subprocess
import sys
import threading
import time

WALL_SECONDS = 5.0  # a real import cell takes milliseconds
MEMORY_MB = 1024


class TransformRefused(Exception):
    """The cell cannot be translated within the bounds; the message says why."""


class BoundedTransformer:
    """Callable: `transform(source) -> python source`. Thread-safe (one cell at a time)."""

    def __init__(self, wall_seconds: float = WALL_SECONDS, memory_mb: int = MEMORY_MB):
        self.wall_seconds = wall_seconds
        self.memory_mb = memory_mb
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None

    def __call__(self, source: str) -> str:
        data = source.encode("utf-8", errors="surrogatepass")
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._start()
            process = self._process
            try:
                process.stdin.write(struct.pack(">I", len(data)) + data)
                process.stdin.flush()
                reply = self._read_reply(process)
            except (OSError, ValueError):  # the pipe broke: it died (memory limit, crash)
                reply = None
            if reply is None:
                self._stop()
                raise TransformRefused(f"IPython's transformer could not translate the cell within "
                                       f"{self.wall_seconds:g} s and {self.memory_mb} MB")
        status, text = reply[:1], reply[1:].decode("utf-8", errors="surrogatepass")
        return text if status == b"o" else source  # "e": let ast report the syntax error

    def _start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-s", "-m", "dropout_grader.ipython_worker", str(self.memory_mb)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            start_new_session=True)  # Ctrl-C at the terminal is the grader's to handle, not its

    def _read_reply(self, process) -> bytes | None:
        """The reply, or None if the worker overran the wall clock or died."""
        fd = process.stdout.fileno()
        deadline = time.monotonic() + self.wall_seconds
        buffer = bytearray()
        need = 4
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while len(buffer) < need:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    return None
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return None
                buffer += chunk
                if need == 4 and len(buffer) >= 4:
                    need = 4 + struct.unpack(">I", buffer[:4])[0]
        return bytes(buffer[4:need])

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()
            for stream in (process.stdin, process.stdout):
                try:
                    stream.close()
                except OSError:
                    pass

    def close(self) -> None:
        with self._lock:
            self._stop()


def _serve(memory_mb: int) -> None:
    import resource
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    from IPython.core.inputtransformer2 import TransformerManager

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = stdin.read(4)
        if len(head) < 4:
            return  # the grader closed the pipe (or is gone)
        source = stdin.read(struct.unpack(">I", head)[0]).decode("utf-8", errors="surrogatepass")
        try:
            reply = b"o" + TransformerManager().transform_cell(source).encode("utf-8", errors="surrogatepass")
        # IPython's code fed hostile input, in a process that exists only for that: whatever it
        # raises (TokenError, the RuntimeError of its 500-round limit, MemoryError under our
        # limit, ...) means "cannot translate", and the cell is reported as not parsing.
        except Exception:  # noqa: BLE001 - third-party code on untrusted input, isolated here
            reply = b"e"
        stdout.write(struct.pack(">I", len(reply)) + reply)
        stdout.flush()


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
