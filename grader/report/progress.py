"""Progress on long runs: a bar with an ETA on a terminal, a plain line every few seconds
otherwise (CI logs), nothing with --quiet."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, stream=None, enabled: bool = True, every_seconds: float = 5.0):
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = enabled and total > 1
        self.tty = self.enabled and self.stream.isatty()
        self.every = every_seconds
        self.done = 0
        self.started = time.monotonic()
        self._last_line = self.started

    def advance(self, count: int = 1) -> None:
        self.done += count
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + self.line(now) + "\033[K")
            self.stream.flush()
        elif now - self._last_line >= self.every or self.done == self.total:
            self.stream.write(self.line(now) + "\n")
            self.stream.flush()
            self._last_line = now

    def line(self, now: float) -> str:
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        remaining = (self.total - self.done) / rate if rate > 0 else 0.0
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        bar = "█" * filled + "·" * (width - filled) if self.tty else ""
        return (f"{bar} {self.done}/{self.total} graded, {rate:.1f}/s, "
                f"ETA {int(remaining) // 60}:{int(remaining) % 60:02d}").strip()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()
