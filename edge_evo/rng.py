"""Counter-based integer RNG: noise = f(seed, generation, individual, index).

Specification (all arithmetic on unsigned 32-bit words, every step masked to 32 bits, so a C
twin with ``uint32_t`` on a 32-bit Cortex-M gives the same bits; nothing relies on 64-bit
wrap-around)::

    mix32(x):                       # "lowbias32" integer hash (C. Wellons), a bijection
        x ^= x >> 16; x = x * 0x7FEB352D; x ^= x >> 15; x = x * 0x846CA68B; x ^= x >> 16
    absorb(k, v) = mix32((k ^ v) + 0x9E3779B9)
    key(seed, generation, individual) = absorb(absorb(absorb(0x6A09E667, seed), generation), individual)
    u32(key, index)  = mix32(mix32(index ^ key) + key)
    bounded(h, n)    = (h * n) >> 32                       # 32x32->64 product (UMULL), n >= 1
    bernoulli(h, t)  = h < t,   t = round(p * 2**32)       # threshold computed off-device
    gauss(h)         = b0 + b1 + b2 + b3 - 510             # bytes of h; Irwin-Hall(4), std 147.8006
    gauss_scaled(h, m) = (gauss(h) * m + 32768) >> 16      # m = round(sigma * 65536 / 147.8006)

``gauss`` lies in [-510, 510]; ``gauss_scaled`` is the contract's round-half-up shift applied to
an int32 product (|gauss * m| < 2**31 for m < 2**22). A genome can therefore be stored as
(parent, seed): every draw is recomputed from its counters instead of being stored.

The ``py_*`` functions are the readable pure-Python specification; the Numba functions below
(used inside kernels) are tested equal to them bit for bit.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

MASK32 = 0xFFFFFFFF
GOLDEN = 0x9E3779B9
KEY_INIT = 0x6A09E667
GAUSS_STD = math.sqrt(4 * (256 * 256 - 1) / 12.0)  # 147.8006...
GAUSS_MAX = 510


def _check_u32(name, v):
    v = int(v)
    if not 0 <= v <= MASK32:
        raise ValueError(f"{name} must be an unsigned 32-bit integer, got {v}")
    return v


# ---------------------------------------------------------------- pure Python specification
def py_mix32(x: int) -> int:
    x &= MASK32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & MASK32
    x ^= x >> 15
    x = (x * 0x846CA68B) & MASK32
    x ^= x >> 16
    return x


def py_absorb(k: int, v: int) -> int:
    return py_mix32(((k ^ v) + GOLDEN) & MASK32)


def py_key(seed: int, generation: int, individual: int) -> int:
    k = py_absorb(KEY_INIT, _check_u32("seed", seed))
    k = py_absorb(k, _check_u32("generation", generation))
    return py_absorb(k, _check_u32("individual", individual))


def py_u32(key: int, index: int) -> int:
    return py_mix32((py_mix32((index ^ key) & MASK32) + key) & MASK32)


def py_bounded(h: int, n: int) -> int:
    return (h * n) >> 32


def py_gauss(h: int) -> int:
    return (h & 255) + ((h >> 8) & 255) + ((h >> 16) & 255) + (h >> 24) - GAUSS_MAX


def py_gauss_scaled(h: int, m: int) -> int:
    return (py_gauss(h) * m + 32768) >> 16


# ---------------------------------------------------------------- off-device parameter helpers
def bernoulli_threshold(p: float) -> int:
    """uint32 threshold t with P(u32 < t) = p (to 2**-32)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"probability must be in [0, 1], got {p}")
    return min(int(round(p * 2.0 ** 32)), MASK32)


def gauss_multiplier(sigma: float) -> int:
    """Multiplier m such that gauss_scaled(h, m) has standard deviation ~sigma (integer units)."""
    if not (sigma >= 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma must be finite and >= 0, got {sigma}")
    m = int(round(sigma * 65536.0 / GAUSS_STD))
    if m >= 1 << 22:
        raise ValueError(f"sigma {sigma} too large for gauss_scaled (max ~{(1 << 22) * GAUSS_STD / 65536:.0f})")
    return m


# ---------------------------------------------------------------- Numba twins (scalar, inlined)
# uint32 lanes throughout: LLVM then vectorises 16 lanes per AVX-512 op (2x faster than uint64).
_U = np.uint32


# Numba widens every uint32 operation to uint64; casting each step back keeps the hash in 32-bit
# lanes (otherwise LLVM emulates 64-bit multiplies and halves the vector width).
@njit(inline="always", cache=True)
def mix32(x):
    x = _U(x)
    x = _U(x ^ _U(x >> _U(16)))
    x = _U(x * _U(0x7FEB352D))
    x = _U(x ^ _U(x >> _U(15)))
    x = _U(x * _U(0x846CA68B))
    return _U(x ^ _U(x >> _U(16)))


@njit(inline="always", cache=True)
def absorb(k, v):
    return mix32(_U(_U(_U(k) ^ _U(v)) + _U(GOLDEN)))


@njit(cache=True)
def key(seed, generation, individual):
    k = absorb(_U(KEY_INIT), seed)
    k = absorb(k, generation)
    return absorb(k, individual)


@njit(inline="always", cache=True)
def u32(k, index):
    k = _U(k)
    return mix32(_U(mix32(_U(_U(index) ^ k)) + k))


@njit(inline="always", cache=True)
def bounded(h, n):
    return np.int64((np.uint64(h) * np.uint64(n)) >> np.uint64(32))


@njit(inline="always", cache=True)
def gauss(h):
    h = _U(h)
    s = np.int32(h & _U(255)) + np.int32(_U(h >> _U(8)) & _U(255))
    s = np.int32(s + np.int32(_U(h >> _U(16)) & _U(255)))
    return np.int32(np.int32(s + np.int32(h >> _U(24))) - np.int32(GAUSS_MAX))


@njit(inline="always", cache=True)
def gauss_scaled(h, m):
    # |gauss * m| < 2**31 for m < 2**22: nothing wraps in int32
    return np.int32(np.int32(np.int32(gauss(h) * np.int32(m)) + np.int32(32768)) >> np.int32(16))


# ---------------------------------------------------------------- vectorised streams
@njit(cache=True, parallel=True)
def fill_u32(k, start, out):
    """out[i] = u32(k, start + i)."""
    for i in prange(out.shape[0]):
        out[i] = u32(k, _U(start) + _U(i))


@njit(cache=True, parallel=True)
def fill_gauss_scaled(k, start, m, out):
    """out[i] = gauss_scaled(u32(k, start + i), m) (int32)."""
    for i in prange(out.shape[0]):
        out[i] = gauss_scaled(u32(k, _U(start) + _U(i)), m)


def keys(seed: int, generation: int, individuals) -> np.ndarray:
    """Stream keys of several individuals (uint32 array)."""
    return np.array([py_key(seed, generation, int(i)) for i in individuals], dtype=np.uint32)


def u32_stream(seed: int, generation: int, individual: int, n: int, start: int = 0) -> np.ndarray:
    out = np.empty(n, dtype=np.uint32)
    fill_u32(np.uint32(py_key(seed, generation, individual)), np.uint32(start), out)
    return out


def gauss_stream(seed: int, generation: int, individual: int, n: int, sigma: float, start: int = 0) -> np.ndarray:
    out = np.empty(n, dtype=np.int32)
    fill_gauss_scaled(np.uint32(py_key(seed, generation, individual)), np.uint32(start),
                      np.int32(gauss_multiplier(sigma)), out)
    return out
