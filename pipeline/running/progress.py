"""Driver-side progress: a bar on a terminal, plain periodic lines otherwise (CI logs)."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, desc: str, total: int, stream=None, interval: float = 10.0) -> None:
        self.desc, self.total, self.done = desc, total, 0
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval = interval
        self.start = self.last = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.tty:
            self._draw(now)
        elif now - self.last >= self.interval or self.done == self.total:
            self.stream.write(self._line(now) + "\n")
            self.stream.flush()
            self.last = now

    def _line(self, now: float) -> str:
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        return f"{self.desc}: {self.done}/{self.total} tasks, {rate:.2f}/s, {elapsed:.1f}s elapsed, eta {eta:.0f}s"

    def _draw(self, now: float) -> None:
        width = 24
        filled = int(width * self.done / self.total) if self.total else width
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self._line(now)}")
        if self.done == self.total:
            self.stream.write("\n")
        self.stream.flush()
