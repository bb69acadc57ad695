"""NumPy reference of OpenES (seed 002, Algorithm 1), to read next to ``strategies/openes.py``.

Plain loops over mirrored pairs, no Numba. ``float_step`` is the paper's algorithm in float64
(float tolerance against the float32 kernels); ``int8_step`` restates the integer update of the
module docstring with NumPy int64 arithmetic and must equal the kernels bit for bit.
"""
from __future__ import annotations

import numpy as np

from ...rng import GAUSS_MAX, GAUSS_STD, py_key

M32 = np.uint64(0xFFFFFFFF)


def _mix32(x):
    x = x & M32
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & M32
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & M32
    return x ^ (x >> np.uint64(16))


def u32(key: int, idx: np.ndarray) -> np.ndarray:
    k = np.uint64(key)
    return _mix32(_mix32(idx.astype(np.uint64) ^ k) + k)


def gauss(h):
    return sum(((h >> np.uint64(s)) & np.uint64(255)).astype(np.int64) for s in (0, 8, 16, 24)) - GAUSS_MAX


def noise_units(seed, generation, k, n) -> np.ndarray:
    """gauss(h) of pair k, every flat index 0..n-1 (int64, ~N(0, 147.8^2))."""
    return gauss(u32(py_key(seed, generation, k), np.arange(n)))


def ranks(f):
    order = np.argsort(-np.asarray(f, dtype=np.float64), kind="stable")
    r = np.empty(len(f), dtype=np.int64)
    r[order] = np.arange(len(f))
    return r


def shaping_float(f, shaping):
    """Paper: u = (1.0 .. 0.0 by rank)^5 / sum; centred: (P-1-2r) / sum |.|."""
    P = len(f)
    r = ranks(f)
    if shaping == "rank5":
        u = ((P - 1 - r) / (P - 1)) ** 5
        return u / u.sum()
    c = (P - 1 - 2 * r).astype(np.float64)
    return c / np.abs(c).sum()


def float_step(theta, m, fitness, seed, generation, sigma, lr, beta, wd=0.0, shaping="rank5"):
    """One tell: returns (theta, m) after the update from the fitnesses of the 2K mirrored genomes."""
    w = shaping_float(fitness, shaping)
    g = np.zeros(len(theta))
    for k in range(len(fitness) // 2):
        eps = sigma * noise_units(seed, generation, k, len(theta)) / GAUSS_STD
        g += (w[2 * k] - w[2 * k + 1]) * eps
    m = beta * m + g - wd * theta
    return theta + lr * m, m


def float_ask(theta, seed, generation, P, sigma):
    rows = []
    for k in range(P // 2):
        eps = sigma * noise_units(seed, generation, k, len(theta)) / GAUSS_STD
        rows += [theta + eps, theta - eps]
    return np.array(rows)


def rshift_round(a, s):
    return (np.asarray(a, dtype=np.int64) + (1 << (s - 1))) >> s


def int8_ask(mean, sm, seed, generation, P, F=8):
    """sm: gauss multiplier per flat index (int64 array)."""
    c = rshift_round(mean, F)
    rows = []
    for k in range(P // 2):
        e = rshift_round(noise_units(seed, generation, k, len(mean)) * sm, 16)
        rows += [np.clip(c + e, -127, 127), np.clip(c - e, -127, 127)]
    return np.array(rows, dtype=np.int8)


def int8_step(mean, mom, w_q16, fitness, sm, seed, generation, beta_q, lr_q, wd_q, F=8):
    """Integer tell: w_q16 = shaping table by rank; returns (mean, mom) int32."""
    wr = np.asarray(w_q16, dtype=np.int64)[ranks(fitness)]
    G = np.zeros(len(mean), dtype=np.int64)
    for k in range(len(fitness) // 2):
        e = rshift_round(noise_units(seed, generation, k, len(mean)) * sm, 16)
        G += (wr[2 * k] - wr[2 * k + 1]) * e
    assert np.abs(G).max(initial=0) < 2 ** 31
    mean = np.asarray(mean, dtype=np.int64)
    g = rshift_round(G, 16 - F) - rshift_round(wd_q * mean, 16)
    mom = np.clip(rshift_round(beta_q * np.asarray(mom, dtype=np.int64), 16) + g, -(1 << 30), 1 << 30)
    mean = np.clip(mean + rshift_round(lr_q * mom, 16), -(127 << F), 127 << F)
    return mean.astype(np.int32), mom.astype(np.int32)
