"""Bounded ring buffers: the sliding window of labelled samples that fitness is measured on, and
the window of prequential outcomes the drift detector watches. Fixed memory, whatever the stream
length."""
from __future__ import annotations

import numpy as np


class SampleWindow:
    """The last ``capacity`` labelled samples (int8 features, int64 targets), oldest first on read."""

    def __init__(self, capacity: int, n_in: int):
        if capacity < 1:
            raise ValueError(f"window must hold >= 1 sample, got {capacity}")
        self.capacity = int(capacity)
        self.X = np.zeros((self.capacity, int(n_in)), dtype=np.int8)
        self.y = np.zeros(self.capacity, dtype=np.int64)
        self.head = 0      # next slot to write
        self.count = 0

    def push(self, x: np.ndarray, y: int) -> None:
        self.X[self.head] = x
        self.y[self.head] = y
        self.head = (self.head + 1) % self.capacity
        self.count = min(self.count + 1, self.capacity)

    def order(self) -> np.ndarray:
        """Slot indices oldest -> newest."""
        start = (self.head - self.count) % self.capacity
        return (start + np.arange(self.count)) % self.capacity

    def contents(self) -> tuple[np.ndarray, np.ndarray]:
        o = self.order()
        return self.X[o], self.y[o]

    def keep_newest(self, n: int) -> None:
        """Forget all but the ``n`` newest samples (after a drift the old concept misleads fitness)."""
        self.count = min(self.count, max(0, int(n)))

    def to_arrays(self, prefix: str) -> dict:
        return {f"{prefix}/X": self.X, f"{prefix}/y": self.y,
                f"{prefix}/ptr": np.array([self.head, self.count], dtype=np.int64)}

    def load_arrays(self, arrs: dict, prefix: str) -> None:
        X, y = arrs[f"{prefix}/X"], arrs[f"{prefix}/y"]
        if X.shape != self.X.shape:
            raise ValueError(f"checkpoint window is {X.shape}, this run needs {self.X.shape}")
        self.X[...] = X
        self.y[...] = y
        self.head, self.count = (int(v) for v in arrs[f"{prefix}/ptr"])


class OutcomeWindow:
    """The last ``capacity`` prequential outcomes (1/0 correct, or absolute error) with a running sum."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"drift window must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.v = np.zeros(self.capacity, dtype=np.float64)
        self.head = 0
        self.count = 0

    def push(self, value: float) -> None:
        self.v[self.head] = value
        self.head = (self.head + 1) % self.capacity
        self.count = min(self.count + 1, self.capacity)

    @property
    def full(self) -> bool:
        return self.count == self.capacity

    def mean(self) -> float:
        if self.count == 0:
            return float("nan")
        # the sum over the slots in use, in slot order: identical on every platform
        return float(np.sum(self.v[:self.count]) if self.count < self.capacity else np.sum(self.v)) / self.count

    def clear(self) -> None:
        self.count = 0
        self.head = 0

    def to_arrays(self, prefix: str) -> dict:
        return {f"{prefix}/v": self.v, f"{prefix}/ptr": np.array([self.head, self.count], dtype=np.int64)}

    def load_arrays(self, arrs: dict, prefix: str) -> None:
        self.v[...] = arrs[f"{prefix}/v"]
        self.head, self.count = (int(x) for x in arrs[f"{prefix}/ptr"])
