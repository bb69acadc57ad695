"""Genetic operators on one population tensor: uniform crossover, masked Gaussian mutation,
weighted and top-k selection, uniform initialisation (Holland 1975; Syswerda 1989 for uniform
crossover). Every random draw is the counter-based RNG of ``edge_evo.rng``, so the C runtime can
rebuild any child genome alone from (seed, generation, child index, flat index).

Each operator works on ONE tensor ``[P, n]`` of a Population and takes that tensor's ``offset``
in the flat genome: element ``j`` uses RNG index ``idx = offset + j`` = its flat genome index.

Streams (``k = key(seed, generation, child)``; ``km = absorb(k, stream_salt)``)::

    crossover:  c = u32(k, idx >> 5);       child[j] = a[j] if (c >> (idx & 31)) & 1 == 0 else b[j]
                                            (one word per 32 flat indices, p = 0.5 per element)
    mutation:   h = u32(km, idx);           mask = h < threshold      (p = threshold / 2**32)
                noise word  w = mix32(h ^ NOISE_SALT)
                int8:    child = sat8(v + gauss_scaled(w, mult))                where the mask fires
                float32: child = v + float32(gauss(w)) * float32(sigma / 147.8006) where it fires
    init:       h = u32(absorb(key(seed, 0, PURPOSE_INIT), i), idx)
                float32: v = lo + (hi - lo) * h / 2**32                     (IEEE double, then cast)
                int8:    v = bounded(h, 2 * r_q + 1) - r_q   (uniform on [-r_q, r_q]; r_q = the range
                         in Q(frac) units, quantize(r, frac), an integer computed on the host, so the
                         device init needs no floating point)
    selection:  h_d = u32(key(seed, generation, PURPOSE_SELECT), d)   (d-th draw)
                weighted (int64 weights, total < 2**32): r = bounded(h_d, total);
                pick = first i with cumsum[i] > r   (binary search)

Cost per element: 2/32 + 2 + 1 = ~3.06 mix32 (was 6 with one u32 per decision). The noise word
is derived from the mask word: given the mask fires, h is uniform on [0, threshold) and mix32 (a
bijection with full avalanche) spreads it over all 32 bits, so the four bytes that ``gauss`` sums
are close to independent and uniform, and the noise is independent of where h fell in the mask
interval (tests/test_operators.py checks std, mean and that independence). Crossover (key k) and
mutation (key km) never share a word. ``breed_int8`` / ``breed_float`` fuse crossover + mutation
in one pass and are bit-identical to calling the two in turn. Flat indices must stay below 2**32.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..rng import key, absorb, mix32, u32, gauss, gauss_scaled, bounded, GAUSS_STD, MASK32, py_key

_U = np.uint32
MUTATION_SALT = 0x4D555441     # "MUTA": salt of the mutation stream key
NOISE_SALT = 0x4E4F4953        # "NOIS": turns a mask word into its noise word
MAX_INDEX = MASK32             # flat indices are uint32 counters
# 1 << b as a table: a block's bits are then a contiguous load (LLVM keeps a variable shift of
# a uint32 in 64-bit lanes, as Numba types it).
_BITS = np.array([1 << b for b in range(32)], dtype=np.uint32)


# ---------------------------------------------------------------- crossover / mutation
# Written branch-free (both parents loaded, noise always drawn, then selected) so LLVM vectorises
# the hashes: a conditional load or a conditional draw makes the loop scalar and ~8x slower.
# Rows are walked in blocks of 32 flat indices so each crossover word is hashed once. Numba
# widens every uint32 operation to uint64, so each result is cast back with _U: 64-bit lanes
# would halve the vector width.
# the RNG's Numba twins already keep every step in uint32 lanes
_mix32, _u32, _gauss32, _gauss_scaled32 = mix32, u32, gauss, gauss_scaled


@njit(inline="always", cache=True)
def _block_end(offset, j, n):
    """Local index one past the 32-index block holding flat index offset + j (capped at n)."""
    return min(n, (((offset + j) >> 5) + 1) * 32 - offset)


@njit(inline="always", cache=True)
def _pick(va, vb, c, bit):
    """Parent b where c has the bit set (bit = 1 << (idx & 31), read from _BITS)."""
    return vb if _U(c & bit) else va


@njit(inline="always", cache=True)
def _mut_int8(v, km, idx, threshold, mult):
    h = _u32(km, idx)
    g = _gauss_scaled32(_mix32(_U(h ^ _U(NOISE_SALT))), mult)
    s = np.int32(np.int32(v) + (g if h < threshold else np.int32(0)))
    return np.int8(min(max(s, np.int32(-127)), np.int32(127)))


@njit(inline="always", cache=True)
def _mut_float(v, km, idx, threshold, scale):
    h = _u32(km, idx)
    g = np.float32(_gauss32(_mix32(_U(h ^ _U(NOISE_SALT))))) * scale
    return np.float32(v + g) if h < threshold else v


@njit(parallel=True, cache=True)
def crossover_uniform(parent_a_rows, parent_b_rows, src, seed, generation, offset, out):
    """out[i, j] = src[b_i, j] if bit (idx & 31) of u32(key(seed, generation, i), idx >> 5) is set
    else src[a_i, j], with idx = offset + j."""
    P, n = out.shape
    for i in prange(P):
        k = key(_U(seed), _U(generation), _U(i))
        ra = src[parent_a_rows[i]]
        rb = src[parent_b_rows[i]]
        o = out[i]
        j = 0
        while j < n:
            c = _u32(k, (offset + j) >> 5)
            e = _block_end(offset, j, n)
            oo, aa, bb = o[j:e], ra[j:e], rb[j:e]
            bits = _BITS[(offset + j) & 31:]
            for q in range(e - j):
                oo[q] = _pick(aa[q], bb[q], c, bits[q])
            j = e


@njit(parallel=True, cache=True)
def mutate_masked_int8(tensor, seed, generation, offset, threshold, mult, stream_salt):
    """In place: tensor[i, j] = sat8(tensor[i, j] + gauss_scaled(..)) with probability threshold / 2**32."""
    P, n = tensor.shape
    t = _U(threshold)
    m = np.int32(mult)
    for i in prange(P):
        km = absorb(key(_U(seed), _U(generation), _U(i)), _U(stream_salt))
        row = tensor[i]
        for j in range(n):
            row[j] = _mut_int8(row[j], km, offset + j, t, m)


@njit(parallel=True, cache=True)
def mutate_masked_float(tensor, seed, generation, offset, threshold, sigma, stream_salt):
    """Float twin: tensor[i, j] += float32(gauss(w)) * float32(sigma / 147.8006) where the mask fires."""
    P, n = tensor.shape
    t = _U(threshold)
    scale = np.float32(sigma / GAUSS_STD)
    for i in prange(P):
        km = absorb(key(_U(seed), _U(generation), _U(i)), _U(stream_salt))
        row = tensor[i]
        for j in range(n):
            row[j] = _mut_float(row[j], km, offset + j, t, scale)


@njit(parallel=True, cache=True)
def breed_int8(parent_a_rows, parent_b_rows, src, seed, generation, offset, threshold, mult, stream_salt, out):
    """crossover_uniform then mutate_masked_int8, fused into one pass (bit-identical)."""
    P, n = out.shape
    t = _U(threshold)
    m = np.int32(mult)
    for i in prange(P):
        k = key(_U(seed), _U(generation), _U(i))
        km = absorb(k, _U(stream_salt))
        ra = src[parent_a_rows[i]]
        rb = src[parent_b_rows[i]]
        o = out[i]
        j = 0
        while j < n:
            c = _u32(k, (offset + j) >> 5)
            e = _block_end(offset, j, n)
            oo, aa, bb = o[j:e], ra[j:e], rb[j:e]     # slices: q >= 0 is provable, no wraparound code
            bits = _BITS[(offset + j) & 31:]
            for q in range(e - j):
                oo[q] = _mut_int8(_pick(np.int32(aa[q]), np.int32(bb[q]), c, bits[q]), km, offset + j + q, t, m)
            j = e


@njit(parallel=True, cache=True)
def breed_float(parent_a_rows, parent_b_rows, src, seed, generation, offset, threshold, sigma, stream_salt, out):
    """crossover_uniform then mutate_masked_float, fused into one pass (bit-identical)."""
    P, n = out.shape
    t = _U(threshold)
    scale = np.float32(sigma / GAUSS_STD)
    for i in prange(P):
        k = key(_U(seed), _U(generation), _U(i))
        km = absorb(k, _U(stream_salt))
        ra = src[parent_a_rows[i]]
        rb = src[parent_b_rows[i]]
        o = out[i]
        j = 0
        while j < n:
            c = _u32(k, (offset + j) >> 5)
            e = _block_end(offset, j, n)
            oo, aa, bb = o[j:e], ra[j:e], rb[j:e]     # slices: q >= 0 is provable, no wraparound code
            bits = _BITS[(offset + j) & 31:]
            for q in range(e - j):
                oo[q] = _mut_float(_pick(aa[q], bb[q], c, bits[q]), km, offset + j + q, t, scale)
            j = e


def breed(parent_a_rows, parent_b_rows, src, seed, generation, offset, threshold, sigma_or_mult,
          out, stream_salt=MUTATION_SALT):
    """Dispatch on dtype: int8 takes an integer gauss multiplier, float32 a sigma (real units)."""
    _check_offset(offset, src.shape[1])
    a = np.ascontiguousarray(parent_a_rows, dtype=np.int64)
    b = np.ascontiguousarray(parent_b_rows, dtype=np.int64)
    if a.shape != (out.shape[0],) or b.shape != (out.shape[0],):
        raise ValueError(f"need one parent pair per child: got {a.shape}, {b.shape} for {out.shape[0]} children")
    if a.size and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= src.shape[0]):
        raise ValueError(f"parent rows must lie in [0, {src.shape[0]})")
    if src.dtype == np.int8:
        breed_int8(a, b, src, seed, generation, offset, np.uint32(threshold), np.int32(sigma_or_mult),
                   np.uint32(stream_salt), out)
    elif src.dtype == np.float32:
        breed_float(a, b, src, seed, generation, offset, np.uint32(threshold), float(sigma_or_mult),
                    np.uint32(stream_salt), out)
    else:
        raise TypeError(f"population tensors must be int8 or float32, got {src.dtype}")
    return out


def _check_offset(offset, n):
    if offset < 0 or offset + n > MAX_INDEX:
        raise ValueError(f"flat genome indices [{offset}, {offset + n}) exceed the uint32 RNG counter range")


# ---------------------------------------------------------------- initialisation
@njit(parallel=True, cache=True)
def _uniform_init(init_key, offset, lo, hi, out):
    P, n = out.shape
    width = hi - lo
    for i in prange(P):
        k = absorb(_U(init_key), _U(i))
        for j in range(n):
            out[i, j] = lo + width * (np.float64(u32(k, _U(offset + j))) * 2.0 ** -32)


def uniform_init(P: int, n: int, seed: int, offset: int, lo: float, hi: float, purpose: int) -> np.ndarray:
    """float64 [P, n] with U(lo, hi) values; genome i uses key absorb(key(seed, 0, purpose), i).
    Each value is lo + (hi - lo) * (h * 2**-32) in IEEE double (no FMA), so C reproduces it."""
    _check_offset(offset, n)
    out = np.empty((P, n), dtype=np.float64)
    _uniform_init(np.uint32(py_key(seed, 0, purpose)), offset, float(lo), float(hi), out)
    return out


@njit(parallel=True, cache=True)
def _uniform_init_int8(init_key, offset, r_q, out):
    P, n = out.shape
    span = _U(2 * r_q + 1)
    for i in prange(P):
        k = absorb(_U(init_key), _U(i))
        for j in range(n):
            out[i, j] = np.int8(bounded(u32(k, _U(offset + j)), span) - r_q)


def uniform_init_int8(P: int, n: int, seed: int, offset: int, r_q: int, purpose: int) -> np.ndarray:
    """int8 [P, n] uniform on the integers [-r_q, r_q]: bounded(h, 2 * r_q + 1) - r_q with h the
    same word as uniform_init's (key absorb(key(seed, 0, purpose), i), index offset + j). Integer
    only, so the C engine's initial population needs no double arithmetic."""
    if isinstance(r_q, (bool, np.bool_)) or not isinstance(r_q, (int, np.integer)):
        raise TypeError(f"r_q must be an integer range in Q units (quantize(r, frac)), got {type(r_q).__name__}")
    if not 0 <= int(r_q) <= 127:
        raise ValueError(f"r_q must be in [0, 127] (an int8 range), got {r_q}: use a smaller init range")
    _check_offset(offset, n)
    out = np.empty((P, n), dtype=np.int8)
    _uniform_init_int8(np.uint32(py_key(seed, 0, purpose)), offset, np.int64(r_q), out)
    return out


# ---------------------------------------------------------------- selection
@njit(cache=True)
def _weighted_int(cum, total, k, n_draws, out):
    for d in range(n_draws):
        r = bounded(u32(k, _U(d)), total)
        out[d] = np.searchsorted(cum, r, side="right")


@njit(cache=True)
def _weighted_float(cum, total, k, n_draws, out):
    for d in range(n_draws):
        r = (np.float64(u32(k, _U(d))) * 2.0 ** -32) * total
        i = np.searchsorted(cum, r, side="right")
        out[d] = min(i, cum.shape[0] - 1)    # guards r == total after float rounding


def weighted_select(weights, n_draws: int, seed: int, generation: int, purpose: int) -> np.ndarray:
    """n_draws indices drawn with replacement, P(i) = w_i / sum(w), from key(seed, generation, purpose).

    Integer weights (the bit-exact path): int64 cumulative sum, total must be in [1, 2**32);
    draw d picks the first i with cumsum[i] > bounded(u32(k, d), total). Float weights: the same
    with r = (u32 / 2**32) * total in float64.
    """
    w = np.asarray(weights)
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"weights must be a non-empty 1-D array, got shape {w.shape}")
    out = np.empty(int(n_draws), dtype=np.int64)
    k = np.uint32(py_key(seed, generation, purpose))
    if np.issubdtype(w.dtype, np.integer):
        if w.min() < 0:
            raise ValueError("selection weights must be >= 0")
        cum = np.cumsum(w.astype(np.int64))
        total = int(cum[-1])
        if not 1 <= total <= MASK32:
            raise ValueError(f"integer selection weights must sum to [1, 2**32), got {total}: rescale them")
        _weighted_int(cum, np.int64(total), k, out.size, out)
    else:
        w = w.astype(np.float64)
        if not np.all(np.isfinite(w)) or w.min() < 0 or w.sum() <= 0:
            raise ValueError("float selection weights must be finite, >= 0, and not all zero")
        cum = np.cumsum(w)
        _weighted_float(cum, float(cum[-1]), k, out.size, out)
    return out


def uniform_select(n_choices: int, n_draws: int, seed: int, generation: int, purpose: int) -> np.ndarray:
    """n_draws indices uniform in [0, n_choices): bounded(u32(key(seed, generation, purpose), d), n)."""
    if n_choices < 1:
        raise ValueError("need at least one candidate to select from")
    return weighted_select(np.ones(n_choices, dtype=np.int64), n_draws, seed, generation, purpose)


def topk(fitness, k: int) -> np.ndarray:
    """Indices of the k best (highest) fitness values, best first; ties go to the lower index."""
    f = np.asarray(fitness)
    if f.ndim != 1:
        raise ValueError(f"fitness must be 1-D, got shape {f.shape}")
    if np.issubdtype(f.dtype, np.floating) and not np.all(np.isfinite(f)):
        raise ValueError("fitness contains NaN or inf: check the task's scores")
    if not 1 <= k <= f.size:
        raise ValueError(f"k must be in [1, {f.size}], got {k}")
    # negate in a wide type so the most negative int32 cannot overflow
    neg = -f.astype(np.float64) if np.issubdtype(f.dtype, np.floating) else -f.astype(np.int64)
    return np.argsort(neg, kind="stable")[:k]


__all__ = ["crossover_uniform", "mutate_masked_int8", "mutate_masked_float", "breed_int8", "breed_float",
           "breed", "uniform_init", "uniform_init_int8", "weighted_select", "uniform_select", "topk", "MUTATION_SALT", "NOISE_SALT"]
