"""Shared timing helper of the benchmarks: medians, because this machine is shared and noisy."""
import time

import numpy as np


def median_ms(fn, repeats: int) -> tuple[float, float]:
    """(median, min) wall milliseconds of ``fn()`` over ``repeats`` calls, after one warm-up call
    (Numba compilation, caches)."""
    fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return 1e3 * float(np.median(ts)), 1e3 * float(np.min(ts))
