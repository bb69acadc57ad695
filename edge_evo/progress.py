"""Progress reporting with an ETA: a live line on a terminal, sparse log records otherwise.

On a terminal (``stream.isatty()``) one line is redrawn with ``\\r`` at most every ``min_interval``
seconds; in a pipe, CI log or notebook capture nothing is drawn and a ``logging`` INFO record is
emitted every ``every_pct`` percent, so logs stay short.
"""
from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger(__name__)


def format_seconds(s: float) -> str:
    if s != s or s == float("inf"):
        return "?"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


class Progress:
    """``with Progress(total, "evolve") as p: p.update(1, best=0.9)``."""

    def __init__(self, total: int, desc: str = "", stream=None, enabled: bool = True, every_pct: float = 10.0,
                 min_interval: float = 0.1, clock=time.monotonic):
        self.total = max(int(total), 0)
        self.desc = desc
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        self.every_pct = float(every_pct)
        self.min_interval = min_interval
        self.clock = clock
        self.n = 0
        self.t0 = clock()
        self._last_draw = -1e9
        self._next_pct = self.every_pct
        self._drawn = False
        try:
            self.tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self.tty = False

    # ------------------------------------------------------------------
    def eta(self) -> float:
        el = self.clock() - self.t0
        if self.n <= 0:
            return float("nan")
        return el / self.n * max(self.total - self.n, 0)

    def line(self, postfix: dict | None = None) -> str:
        el = self.clock() - self.t0
        pct = 100.0 * self.n / self.total if self.total else 100.0
        width = 20
        fill = int(width * self.n / self.total) if self.total else width
        bar = "#" * fill + "-" * (width - fill)
        rate = self.n / el if el > 0 else 0.0
        extra = "".join(f" {k}={v:.4g}" if isinstance(v, float) else f" {k}={v}" for k, v in (postfix or {}).items())
        head = f"{self.desc}: " if self.desc else ""
        return (f"{head}{pct:5.1f}% [{bar}] {self.n}/{self.total} {format_seconds(el)}<{format_seconds(self.eta())}"
                f" {rate:.2f}it/s{extra}")

    def update(self, n: int = 1, **postfix) -> None:
        self.n += n
        if not self.enabled:
            return
        now = self.clock()
        if self.tty:
            if now - self._last_draw >= self.min_interval or self.n >= self.total:
                self.stream.write("\r" + self.line(postfix) + "\x1b[K")
                self.stream.flush()
                self._last_draw = now
                self._drawn = True
        elif self.total:
            pct = 100.0 * self.n / self.total
            if pct + 1e-9 >= self._next_pct or self.n >= self.total:
                log.info("%s", self.line(postfix))
                while self._next_pct <= pct + 1e-9:
                    self._next_pct += self.every_pct

    def close(self) -> None:
        if self.enabled and self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


__all__ = ["Progress", "format_seconds"]
