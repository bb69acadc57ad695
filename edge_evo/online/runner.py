"""The long-running side of ``edge-evo adapt``: a run folder with periodic atomic checkpoints,
``metrics.jsonl`` (size-bounded, rotated once), clean stops on SIGTERM / SIGINT, and resume.

Crash model: a checkpoint records the adapter state together with the source byte position of
the last record it includes. After SIGKILL, a restart loads the checkpoint (edge_evo.io keeps the
previous pair loadable at every instant of a write) and re-reads the source from that position,
so the final state equals the one of an uninterrupted run; predictions made after the last
checkpoint are emitted again (at-least-once).
"""
from __future__ import annotations

import json
import logging
import os
import signal
import time
from pathlib import Path

from .. import io as eio
from .adapter import OnlineAdapter
from .sources import Sink, Stop, open_source, replayable

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint"
METRICS = "metrics.jsonl"


class _Interrupted(Exception):
    """Raised by the signal handler only while the loop waits for input."""


def rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        try:
            import resource
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        except Exception:   # pragma: no cover - platforms without either
            return None


class MetricsLog:
    """Append-only JSON lines, rotated to ``.1`` above ``max_bytes`` (bounded disk use)."""

    def __init__(self, path: Path, max_bytes: int = 10 << 20):
        self.path, self.max_bytes = Path(path), int(max_bytes)

    def write(self, rec: dict) -> None:
        line = json.dumps(eio._jsonable(rec), sort_keys=True) + "\n"
        try:
            if self.path.exists() and self.path.stat().st_size + len(line) > self.max_bytes:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            with open(self.path, "a") as f:
                f.write(line)
        except OSError as e:
            log.error("cannot write %s (%s); metrics line dropped", self.path, e)


class AdaptRunner:
    """Runs an :class:`OnlineAdapter` over a source spec inside run folder ``out``."""

    def __init__(self, adapter: OnlineAdapter, out, source: str, predictions: str | None = "none",
                 follow: bool = False, checkpoint_every: int = 1000, checkpoint_seconds: float = 60.0,
                 metrics_every: int = 1000, max_samples: int | None = None, metrics_max_bytes: int = 10 << 20,
                 start_position: int = 0):
        self.adapter = adapter
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.source, self.follow = source, follow
        self.sink = Sink(predictions)
        self.checkpoint_every, self.checkpoint_seconds = int(checkpoint_every), float(checkpoint_seconds)
        self.metrics_every, self.max_samples = int(metrics_every), max_samples
        self.metrics = MetricsLog(self.out / METRICS, metrics_max_bytes)
        self.position = int(start_position) if replayable(source) else 0
        self.stop = Stop()
        self.checkpoint_errors = 0
        self.checkpoints = 0
        self._waiting = False

    # ------------------------------------------------------------------ resume
    @staticmethod
    def checkpoint_path(out) -> Path:
        return Path(out) / CHECKPOINT

    @classmethod
    def resume_adapter(cls, out) -> tuple[OnlineAdapter, int] | None:
        """(adapter, source position) from the run folder's checkpoint, or None when there is none."""
        p = cls.checkpoint_path(out)
        if not p.with_name(p.name + ".json").exists():
            return None
        adapter, extra = OnlineAdapter.load(p)
        return adapter, int(extra.get("position") or 0)

    # ------------------------------------------------------------------ pieces
    def write_checkpoint(self) -> bool:
        try:
            self.adapter.save(self.checkpoint_path(self.out), extra={"position": self.position, "source": self.source})
        except OSError as e:
            self.checkpoint_errors += 1
            log.error("checkpoint write failed (%s); the previous checkpoint is kept, adaptation goes on", e)
            self.metrics.write({"event": "checkpoint_error", "error": str(e), "seen": self.adapter.counters["seen"],
                                "t": time.time()})
            return False
        self.checkpoints += 1
        return True

    def write_metrics(self) -> None:
        a = self.adapter
        for ev in a.new_events:
            self.metrics.write({**ev, "t": time.time()})
        a.new_events.clear()
        rec = {"t": time.time(), **a.counters, "quality": a.quality() if a.outcomes.count else None,
               "boost": a.boost_q / 65536, **a.latency_stats(), "rss_bytes": rss_bytes(),
               "checkpoint_errors": self.checkpoint_errors, "sink_errors": self.sink.errors}
        self.metrics.write(rec)

    def _on_signal(self, signum, frame):
        self.stop.requested = True
        log.info("signal %d: finishing the current sample and writing a final checkpoint", signum)
        if self._waiting:
            raise _Interrupted()

    # ------------------------------------------------------------------ loop
    def run(self, install_signals: bool = True) -> dict:
        old = {}
        if install_signals:
            for s in (signal.SIGTERM, signal.SIGINT):
                old[s] = signal.signal(s, self._on_signal)
        a = self.adapter
        it = open_source(self.source, self.position, self.follow, self.stop)
        n = 0
        last_ckpt = time.monotonic()
        try:
            while not self.stop.requested:
                if self.max_samples is not None and n >= self.max_samples:
                    break
                self._waiting = True
                try:
                    rec, pos = next(it)
                except (StopIteration, _Interrupted):
                    break
                finally:
                    self._waiting = False
                if rec.strip():
                    pred = a.feed(rec)
                    if pred is not None:
                        self.sink.write(a.counters["seen"] - 1, pred)
                if pos is not None:
                    self.position = pos
                n += 1
                if n % self.metrics_every == 0:
                    self.write_metrics()
                if n % self.checkpoint_every == 0 or time.monotonic() - last_ckpt > self.checkpoint_seconds:
                    self.write_checkpoint()
                    last_ckpt = time.monotonic()
        finally:
            self._waiting = False
            close = getattr(it, "close", None)
            if close:
                close()
            self.write_checkpoint()
            self.write_metrics()
            self.sink.flush()
            self.sink.close()
            for s, h in old.items():
                signal.signal(s, h)
        return {**a.summary(), "records": n, "checkpoints": self.checkpoints,
                "checkpoint_errors": self.checkpoint_errors, "position": self.position}
