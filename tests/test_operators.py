"""Genetic operators (kernels/operators.py): statistics, ranges, fusion and JIT-free equality."""
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from edge_evo.kernels.operators import (crossover_uniform, mutate_masked_int8, mutate_masked_float, breed,
                                        weighted_select, uniform_select, topk, uniform_init, MUTATION_SALT)
from edge_evo.rng import bernoulli_threshold, gauss_multiplier, py_key, py_u32, py_absorb, py_gauss_scaled

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
    # element j of child i follows the spec: u32(key(seed, gen, i), offset + j) < 2**31 -> parent a
    k = py_key(5, 2, 9)
    for j in (0, 1, 77, N - 1):
        want = src[a[9], j] if py_u32(k, 100 + j) < 2 ** 31 else src[b[9], j]
        assert out[9, j] == want


def test_mutation_rate_noise_and_saturation_int8():
    thr, mult = bernoulli_threshold(0.07), gauss_multiplier(20.0)
    t = np.zeros((P, N), dtype=np.int8)
    mutate_masked_int8(t, 3, 1, 0, np.uint32(thr), np.int32(mult), np.uint32(MUTATION_SALT))
    # mask (even counters) and noise (odd counters) of the salted key, rebuilt from the spec
    rows = range(4)
    mask = np.array([[py_u32(py_absorb(py_key(3, 1, i), MUTATION_SALT), 2 * j) < thr for j in range(N)]
                     for i in rows])
    noise = np.array([[py_gauss_scaled(py_u32(py_absorb(py_key(3, 1, i), MUTATION_SALT), 2 * j + 1), mult)
                       for j in range(N)] for i in rows])
    assert np.array_equal(t[:4], np.where(mask, noise, 0).astype(np.int8))
    assert abs(mask.mean() - 0.07) < 0.01
    assert abs(noise[mask].std() - 20.0) < 1.5
    assert abs((t != 0).mean() - 0.07 * 0.98) < 0.005        # ~2 % of N(0, 20) draws round to 0
    # saturation: big noise on extreme values never leaves [-127, 127]
    big = np.full((P, N), 120, dtype=np.int8)
    big[::2] = -120
    mutate_masked_int8(big, 3, 1, 0, np.uint32(bernoulli_threshold(0.5)), np.int32(gauss_multiplier(200.0)),
                       np.uint32(MUTATION_SALT))
    assert big.min() == -127 and big.max() == 127


def test_mutation_float_rate_and_sigma():
    x = np.zeros((P, N), dtype=np.float32)
    mutate_masked_float(x, 8, 0, 0, np.uint32(bernoulli_threshold(0.07)), 0.1, np.uint32(MUTATION_SALT))
    hit = x[x != 0]
    assert abs(hit.size / x.size - 0.07) < 0.005
    assert abs(hit.std() - 0.1) < 0.005


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


def test_uniform_init_range_and_determinism():
    v = uniform_init(8, 1000, 3, 50, -0.5, 0.5, 0x80000004)
    assert v.min() >= -0.5 and v.max() < 0.5 and abs(v.mean()) < 0.02
    assert np.array_equal(v, uniform_init(8, 1000, 3, 50, -0.5, 0.5, 0x80000004))
    # genome i alone, offset o: same values from a smaller call (counter-based, no hidden state)
    w = uniform_init(8, 10, 3, 60, -0.5, 0.5, 0x80000004)
    assert np.array_equal(w, v[:, 10:20])


_NOJIT_SCRIPT = r"""
import hashlib, numpy as np
from edge_evo.kernels.operators import crossover_uniform, mutate_masked_int8, mutate_masked_float, breed, weighted_select, uniform_init, MUTATION_SALT
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
