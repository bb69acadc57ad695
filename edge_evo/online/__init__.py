"""Continuous on-device adaptation (predict every sample, keep learning from labelled ones).

``OnlineAdapter`` is the prequential loop (adapter.py); ``learners`` holds the steady-state
OpenES / (1 + lambda) steps; ``sources`` the record streams (stdin, followed file, UDP, TCP,
Python iterators) and prediction sinks; ``runner`` the long-running service around them
(periodic atomic checkpoints, signals, metrics.jsonl, bounded logs). See docs/online.md.
"""
from .adapter import AdaptConfig, OnlineAdapter
from .parse import BadSample, SampleParser
from .learners import LEARNERS

__all__ = ["AdaptConfig", "OnlineAdapter", "BadSample", "SampleParser", "LEARNERS"]
