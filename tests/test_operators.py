"""Genetic operators (kernels/operators.py): statistics, ranges, fusion and JIT-free equality."""
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from edge_evo.kernels.operators import (crossover_uniform, mutate_masked_int8, mutate_masked_float, breed,
                                        weighted_select, uniform_select, topk, uniform_init, uniform_init_int8, MUTATION_SALT,
                                        NOISE_SALT)
from edge_evo.rng import (bernoulli_threshold, gauss_multiplier, py_key, py_u32, py_absorb, py_gauss_scaled,
                          py_gauss, py_mix32, fill_u32, GAUSS_STD)

P, N = 64, 4096


def _src(dtype=np.int8, seed=0):
    r = np.random.default_rng(seed)
    if dtype == np.int8:
        return r.integers(-127, 128, (P, N)).astype(np.int8)
    return r.standard_normal((P, N)).astype(np.float32)


def test_crossover_picks_parent_values_half_each():
    src = _src()
    a = np.arange(P) % 7
    b = (np.arange(P) + 3) % 11
    out = np.empty_like(src)
    crossover_uniform(a, b, src, 5, 2, 100, out)
    from_a = out == src[a]
    from_b = out == src[b]
    assert np.all(from_a | from_b)
    only_a = (from_a & ~from_b).sum() / (from_a ^ from_b).sum()
    assert abs(only_a - 0.5) < 0.01
    # element j of child i follows the spec: bit (idx & 31) of u32(key(seed, gen, i), idx >> 5),
    # idx = offset + j; offset 100 is not a multiple of 32, so the first block is partial
    k = py_key(5, 2, 9)
    for j in (0, 1, 27, 28, 59, 60, 77, N - 1):
        idx = 100 + j
        want = src[b[9], j] if (py_u32(k, idx >> 5) >> (idx & 31)) & 1 else src[a[9], j]
        assert out[9, j] == want


def test_crossover_block_layout_is_offset_invariant():
    """The word of flat index idx is u32(k, idx >> 5) whatever the tensor split: a child bred in
    one piece equals the same child bred as tensors at arbitrary offsets (also mid-block)."""
    src = _src()
    a, b = np.arange(P), np.arange(P)[::-1].copy()
    whole = np.empty_like(src)
    crossover_uniform(a, b, src, 1, 2, 40, whole)
    for lo, hi in ((0, 5), (5, 37), (37, 64), (64, 65), (65, 1000), (1000, N)):
        part = np.empty((P, hi - lo), dtype=src.dtype)
        crossover_uniform(a, b, np.ascontiguousarray(src[:, lo:hi]), 1, 2, 40 + lo, part)
        assert np.array_equal(part, whole[:, lo:hi])


def _np_mix32(x):
    x = x.astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x7FEB352D)
    x ^= x >> np.uint32(15)
    x *= np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def _np_gauss_scaled(w, m):
    g = sum(((w >> np.uint32(8 * i)) & np.uint32(255)).astype(np.int64) for i in range(4)) - 510
    return (g * m + 32768) >> 16


def _mask_words(seed, gen, child, n, offset=0):
    out = np.empty(n, dtype=np.uint32)
    fill_u32(np.uint32(py_absorb(py_key(seed, gen, child), MUTATION_SALT)), np.uint32(offset), out)
    return out


def test_mutation_rate_noise_and_saturation_int8():
    thr, mult = bernoulli_threshold(0.07), gauss_multiplier(20.0)
    t = np.zeros((P, N), dtype=np.int8)
    mutate_masked_int8(t, 3, 1, 0, np.uint32(thr), np.int32(mult), np.uint32(MUTATION_SALT))
    # pure-Python spec for a few elements: h = u32(km, idx); mask h < thr; noise word mix32(h ^ NOISE_SALT)
    for i, j in ((0, 0), (2, 5), (63, N - 1)):
        h = py_u32(py_absorb(py_key(3, 1, i), MUTATION_SALT), j)
        want = py_gauss_scaled(py_mix32(h ^ NOISE_SALT), mult) if h < thr else 0
        assert t[i, j] == max(-127, min(127, want))
    # whole rows, rebuilt with the same spec in numpy
    h = np.stack([_mask_words(3, 1, i, N) for i in range(P)])
    mask = h < thr
    noise = _np_gauss_scaled(_np_mix32(h ^ np.uint32(NOISE_SALT)), mult)
    assert np.array_equal(t, np.where(mask, np.clip(noise, -127, 127), 0).astype(np.int8))
    assert abs(mask.mean() - 0.07) < 0.003
    assert abs(noise[mask].std() - 20.0) < 0.5
    assert abs(noise[mask].mean()) < 0.5
    assert abs((t != 0).mean() - 0.07 * 0.98) < 0.003        # ~2 % of N(0, 20) draws round to 0
    # saturation: big noise on extreme values never leaves [-127, 127]
    big = np.full((P, N), 120, dtype=np.int8)
    big[::2] = -120
    mutate_masked_int8(big, 3, 1, 0, np.uint32(bernoulli_threshold(0.5)), np.int32(gauss_multiplier(200.0)),
                       np.uint32(MUTATION_SALT))
    assert big.min() == -127 and big.max() == 127


def test_noise_independent_of_mask_word():
    """The noise word is derived from the mask word. Given the mask fires, h is uniform on
    [0, threshold); the noise must not depend on where in that interval h fell, and its byte-sum
    distribution must match gauss() of independent uniform words (Irwin-Hall of 4 bytes)."""
    thr = bernoulli_threshold(0.07)
    h = np.concatenate([_mask_words(9, g, i, 1 << 16) for g in range(4) for i in range(8)])   # 2.1 M words
    hit = h[h < thr]
    w = _np_mix32(hit ^ np.uint32(NOISE_SALT))
    g = _np_gauss_scaled(w, 65536)                               # m = 2**16: the raw gauss value
    assert abs(hit.size / h.size - 0.07) < 0.001
    assert abs(g.mean()) < 1.0 and abs(g.std() - GAUSS_STD) < 1.0
    # no trend across the mask interval: mean and std per eighth of [0, thr) agree
    part = (hit.astype(np.uint64) * 8 // thr).astype(np.int64)
    for q in range(8):
        gq = g[part == q]
        assert abs(gq.mean()) < 3 * GAUSS_STD / np.sqrt(gq.size) + 0.5
        assert abs(gq.std() / GAUSS_STD - 1) < 0.03
    assert abs(np.corrcoef(hit.astype(np.float64), g)[0, 1]) < 0.01
    assert abs(np.corrcoef(hit.astype(np.float64), np.abs(g))[0, 1]) < 0.01
    # each byte of the noise word uniform (chi-square, 255 dof: mean 255, sd 22.6)
    for sh in (0, 8, 16, 24):
        c = np.bincount(((w >> np.uint32(sh)) & np.uint32(255)).astype(np.int64), minlength=256)
        e = w.size / 256
        assert ((c - e) ** 2 / e).sum() < 255 + 6 * 22.6
    # masked elements take parent a or b half each: crossover and mutation words are independent
    src = np.stack([np.zeros(N, np.int8), np.ones(N, np.int8)])
    out = np.empty((P, N), dtype=np.int8)
    crossover_uniform(np.zeros(P, np.int64), np.ones(P, np.int64), src, 9, 0, 0, out)
    m = np.stack([_mask_words(9, 0, i, N) for i in range(P)]) < thr
    assert abs(out[m].mean() - 0.5) < 0.02


def test_mutation_float_rate_and_sigma():
    x = np.zeros((P, N), dtype=np.float32)
    mutate_masked_float(x, 8, 0, 0, np.uint32(bernoulli_threshold(0.07)), 0.1, np.uint32(MUTATION_SALT))
    hit = x[x != 0]
    assert abs(hit.size / x.size - 0.07) < 0.005
    assert abs(hit.std() - 0.1) < 0.005
    # spec: v + float32(gauss(mix32(h ^ NOISE_SALT))) * float32(sigma / 147.8006) where h < threshold
    thr = bernoulli_threshold(0.07)
    for i, j in ((0, 0), (1, 3), (5, 100), (63, N - 1)):
        h = py_u32(py_absorb(py_key(8, 0, i), MUTATION_SALT), j)
        want = np.float32(py_gauss(py_mix32(h ^ NOISE_SALT))) * np.float32(0.1 / GAUSS_STD) if h < thr else 0.0
        assert x[i, j] == np.float32(want)


@pytest.mark.parametrize("dtype", [np.int8, np.float32])
def test_fused_breed_equals_crossover_then_mutation(dtype):
    src = _src(dtype)
    a, b = np.arange(P)[::-1].copy(), np.arange(P) // 2
    thr = bernoulli_threshold(0.1)
    fused = np.empty_like(src)
    sig = gauss_multiplier(6.4) if dtype == np.int8 else 0.1
    breed(a, b, src, 11, 4, 1234, thr, sig, fused)
    two = np.empty_like(src)
    crossover_uniform(a, b, src, 11, 4, 1234, two)
    if dtype == np.int8:
        mutate_masked_int8(two, 11, 4, 1234, np.uint32(thr), np.int32(sig), np.uint32(MUTATION_SALT))
    else:
        mutate_masked_float(two, 11, 4, 1234, np.uint32(thr), sig, np.uint32(MUTATION_SALT))
    assert np.array_equal(fused, two)


def test_weighted_select_frequencies_and_errors():
    w = np.array([0, 1, 3, 6], dtype=np.int64)
    d = weighted_select(w, 20000, 1, 0, 0x80000001)
    freq = np.bincount(d, minlength=4) / d.size
    assert freq[0] == 0
    assert np.allclose(freq, w / w.sum(), atol=0.015)
    assert np.array_equal(d, weighted_select(w, 20000, 1, 0, 0x80000001))
    f = weighted_select(w.astype(float), 20000, 1, 0, 0x80000001)
    assert np.allclose(np.bincount(f, minlength=4) / f.size, w / w.sum(), atol=0.015)
    u = uniform_select(5, 10000, 2, 3, 0x80000001)
    assert u.min() == 0 and u.max() == 4
    with pytest.raises(ValueError, match="sum"):
        weighted_select(np.array([2 ** 32], dtype=np.int64), 1, 0, 0, 1)
    with pytest.raises(ValueError, match=">= 0"):
        weighted_select(np.array([-1, 2]), 1, 0, 0, 1)


def test_topk_stable_descending():
    f = np.array([1.0, 3.0, 3.0, -2.0, 3.0])
    assert list(topk(f, 4)) == [1, 2, 4, 0]
    assert list(topk(np.array([-2 ** 31, 5, 5], dtype=np.int32), 3)) == [1, 2, 0]
    with pytest.raises(ValueError, match="NaN"):
        topk(np.array([np.nan, 1.0]), 1)


def test_uniform_init_int8_matches_pure_python_spec():
    """Stream spec: h = u32(absorb(key(seed, 0, PURPOSE_INIT), i), idx); v = bounded(h, 2 r_q + 1) - r_q."""
    from edge_evo.rng import py_absorb, py_bounded
    seed, off, P, n = 9, 37, 3, 70
    for r_q in (0, 1, 12, 127):
        v = uniform_init_int8(P, n, seed, off, r_q, 0x80000004)
        assert v.dtype == np.int8 and v.shape == (P, n)
        k0 = py_key(seed, 0, 0x80000004)
        want = [[py_bounded(py_u32(py_absorb(k0, i), off + j), 2 * r_q + 1) - r_q for j in range(n)]
                for i in range(P)]
        assert v.tolist() == want
    # uniform over all 2 r_q + 1 integers, counter-based (a slice equals a smaller call)
    big = uniform_init_int8(4, 20000, 3, 0, 5, 0x80000004)
    counts = np.bincount(big.ravel().astype(np.int64) + 5, minlength=11)
    assert len(counts) == 11 and counts.min() > 0.9 * big.size / 11
    assert np.array_equal(uniform_init_int8(4, 10, 3, 100, 5, 0x80000004), big[:, 100:110])
    with pytest.raises(ValueError, match="r_q"):
        uniform_init_int8(2, 3, 0, 0, 128, 0x80000004)
    with pytest.raises(TypeError, match="r_q"):
        uniform_init_int8(2, 3, 0, 0, 0.5, 0x80000004)


def test_init_population_int8_uses_integer_ranges():
    from edge_evo.models.mlp import MLPSpec
    from edge_evo.strategies._breeding import init_population, init_range_q
    spec = MLPSpec((6, 4, 3), w_frac=5, b_frac=4)
    pop = init_population(spec, 5, 2, "int8", 0.37, 0.123)
    assert init_range_q(0.37, 5) == 12 and init_range_q(0.123, 4) == 2 and init_range_q(9.0, 6) == 127
    off = spec.offsets()
    for name, shape in spec.tensors():
        r_q = 12 if name.startswith("W") else 2
        assert np.array_equal(pop.tensors[name],
                              uniform_init_int8(5, int(np.prod(shape)), 2, off[name], r_q, 0x80000004))
        assert np.abs(pop.tensors[name].astype(int)).max() <= r_q


def test_uniform_init_range_and_determinism():
    v = uniform_init(8, 1000, 3, 50, -0.5, 0.5, 0x80000004)
    assert v.min() >= -0.5 and v.max() < 0.5 and abs(v.mean()) < 0.02
    assert np.array_equal(v, uniform_init(8, 1000, 3, 50, -0.5, 0.5, 0x80000004))
    # genome i alone, offset o: same values from a smaller call (counter-based, no hidden state)
    w = uniform_init(8, 10, 3, 60, -0.5, 0.5, 0x80000004)
    assert np.array_equal(w, v[:, 10:20])


_NOJIT_SCRIPT = r"""
import hashlib, numpy as np
from edge_evo.kernels.operators import crossover_uniform, mutate_masked_int8, mutate_masked_float, breed, weighted_select, uniform_init, uniform_init_int8, MUTATION_SALT
from edge_evo.rng import bernoulli_threshold, gauss_multiplier
r = np.random.default_rng(0)
src = r.integers(-127, 128, (3, 40)).astype(np.int8); fs = r.standard_normal((3, 40)).astype(np.float32)
a = np.array([2, 0, 1]); b = np.array([1, 1, 0]); h = hashlib.sha256()
o = np.empty_like(src); crossover_uniform(a, b, src, 7, 3, 99, o); h.update(o.tobytes())
mutate_masked_int8(o, 7, 3, 99, np.uint32(bernoulli_threshold(0.3)), np.int32(gauss_multiplier(9.0)), np.uint32(MUTATION_SALT)); h.update(o.tobytes())
f = fs.copy(); mutate_masked_float(f, 7, 3, 99, np.uint32(bernoulli_threshold(0.3)), 0.1, np.uint32(MUTATION_SALT)); h.update(f.tobytes())
o2 = np.empty_like(src); breed(a, b, src, 7, 3, 99, bernoulli_threshold(0.3), gauss_multiplier(9.0), o2); h.update(o2.tobytes())
h.update(weighted_select(np.array([3, 0, 5, 1]), 50, 7, 3, 0x80000001).tobytes())
h.update(weighted_select(np.array([0.3, 0.0, 0.5]), 50, 7, 3, 0x80000001).tobytes())
h.update(uniform_init(3, 40, 7, 5, -0.1, 0.1, 0x80000004).tobytes())
h.update(uniform_init_int8(3, 40, 7, 5, 9, 0x80000004).tobytes())
print(h.hexdigest())
"""


def test_operators_identical_without_jit():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    digests = []
    for disable in ("0", "1"):
        env = dict(os.environ, NUMBA_DISABLE_JIT=disable, PYTHONPATH=root, PYTHONWARNINGS="ignore")
        res = subprocess.run([sys.executable, "-c", _NOJIT_SCRIPT], env=env, capture_output=True, text=True,
                             timeout=300)
        assert res.returncode == 0, res.stderr
        digests.append(res.stdout.strip().splitlines()[-1])
    assert digests[0] == digests[1]
