"""EMNS (seed 000): model layout, float/int forward, integer mutation vs reference, modes,
growth / formation / pruning, serialisation, determinism without JIT."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from edge_evo import rng
from edge_evo.models.emns import EMNSSpec, forward_float, mixture_lut, basis_tables, VAL_FRAC
from edge_evo.strategies import get_strategy
from edge_evo.strategies.base import State
from edge_evo.strategies.emns import EMNS, EMNSParams, binned_mi, fit
from edge_evo.strategies.reference import emns_ref as ref


def _data(n=40, seed=0):
    r = np.random.default_rng(seed)
    X = r.uniform(-2, 2, (n, 2))
    return X, np.sin(X[:, 0]) + 0.5 * np.cos(X[:, 1])


def test_layout_347_and_spec_errors():
    spec = EMNSSpec((3, 8, 5, 1))
    nm, cm = spec.initial_masks()
    assert spec.n_active_params(nm, cm) == 347 == spec.n_params
    big = EMNSSpec((3, 8, 5, 1), max_dims=(3, 12, 6, 1))
    assert big.n_active_params(*big.initial_masks()) == 347 < big.n_params
    with pytest.raises(ValueError, match="max_dims"):
        EMNSSpec((3, 8, 1), max_dims=(3, 4, 1))
    with pytest.raises(ValueError, match="input and output"):
        EMNSSpec((3, 8, 1), max_dims=(4, 8, 1))
    with pytest.raises(ValueError, match="max_connections"):
        EMNSSpec((3, 8, 1), max_connections=10)
    with pytest.raises(TypeError, match="EMNSSpec"):
        EMNS(object())
    with pytest.raises(ValueError, match="variant"):
        EMNSParams(variant="nope")
    assert get_strategy("emns") is EMNS


def test_float_forward_matches_reference():
    spec = EMNSSpec((2, 4, 3, 1), max_dims=(2, 5, 3, 1))
    s = EMNS(spec, "select", mode="float32")
    st = s.init(3)
    pop = s.ask(st)
    X, _ = _data(6)
    out = forward_float(spec, pop.values, pop.nmask, pop.cmask, X)
    for p in range(pop.size):
        for b in range(len(X)):
            want = ref.forward(spec, pop.values[p].astype(np.float64), pop.nmask[p], pop.cmask[p], X[b])
            np.testing.assert_allclose(out[p, b], want, rtol=1e-6, atol=1e-7)


def test_int_forward_tracks_float():
    spec = EMNSSpec((2, 6, 3, 1))
    si, sf = EMNS(spec, mode="int8"), EMNS(spec, mode="float32")
    sti = si.init(5)
    stf = sf.init(5)
    # randomise so the non-linear terms matter, same float genome in both modes
    r = np.random.default_rng(1)
    v = stf.arrays["values"] + r.normal(0, 0.3, stf.arrays["values"].shape).astype(np.float32)
    stf.arrays["values"] = v
    sti.arrays["values"] = np.clip(np.floor(v * 2048 + 0.5), -20480, 20480).astype(np.int16)
    X, _ = _data(50)
    yi = si.predict(sti, X)
    yf = sf.predict(stf, X)
    assert np.abs(yi - yf).mean() < 0.12 * max(1.0, np.abs(yf).mean())


def test_mixture_lut_kernel_equals_numpy_and_tanh():
    spec = EMNSSpec((2, 3, 1))
    s = EMNS(spec, mode="int8")
    v = s.init(0).arrays["values"].copy()
    r = np.random.default_rng(2)
    v[:] = r.integers(-4000, 4000, v.shape)
    luts = s.luts(v)[0]
    for row in spec.layout():
        no, oc, noff = int(row[1]), int(row[3]), int(row[8])
        np.testing.assert_array_equal(luts[noff:noff + no], mixture_lut(v[oc:oc + 5 * no].reshape(no, 5)))
    # b = tanh only: the Q4 table is tanh rounded from the Q7 basis table
    t = mixture_lut(np.array([1 << VAL_FRAC, 0, 0, 0, 0]))
    q = np.arange(-128, 128)
    assert np.abs(t / 16 - np.tanh(q / 16)).max() <= 1 / 32 + 1 / 256 + 1e-9   # Q7 then Q4 rounding


def test_mutate_int_kernel_equals_reference_and_float_twin():
    spec = EMNSSpec((2, 4, 1))
    s = EMNS(spec, mode="int8", mu0=0.05)
    st = s.init(7)
    pop = s.ask(st)
    val_k, res_k, rmax = s.int_constants()
    pm = spec.param_mask(st.arrays["nmask"], st.arrays["cmask"])
    key = rng.py_key(7, 0, 1)
    v, r = ref.mutate_int(st.arrays["values"], st.arrays["resist"], pm, key, st.scalars["mu_q"], val_k, res_k, rmax)
    np.testing.assert_array_equal(pop.values[1], v)
    np.testing.assert_array_equal(pop.resist[1], r)
    assert not np.array_equal(pop.values[1], pop.values[0])
    sf = EMNS(spec, mode="float32", mu0=0.05)
    stf = sf.init(7)
    popf = sf.ask(stf)
    vf, rf = ref.mutate_float(stf.arrays["values"], stf.arrays["resist"], pm, key, 0.05, 0.02, 0.95)
    np.testing.assert_allclose(popf.values[1], vf, atol=1e-5)
    np.testing.assert_allclose(popf.resist[1], rf, atol=1e-6)


def test_int_steps_unbiased_with_the_float_scale():
    """Stochastic rounding: the int step distribution matches N(0, (mu (1-r))^2) even sub-LSB."""
    from edge_evo.kernels.emns import mutate_int
    s = EMNS(EMNSSpec((2, 1)), mode="int8")
    val_k, _, _ = s.int_constants()
    res_k = int(round(2.0 ** 32 * 0.02 / rng.GAUSS_STD))
    n = 20000
    vals = np.zeros((1, n), np.int16)
    res = np.full((1, n), 128, np.uint8)               # r = 0.5
    mu = 0.01
    mutate_int(vals, res, np.ones((1, n), np.uint8), np.array([rng.py_key(1, 2, 3)], np.uint32),
               np.int64(round(mu * 2 ** 24)), np.int64(val_k), np.int64(res_k), np.int64(243))
    dv = vals[0] / 2048.0
    assert abs(dv.std() - mu * 0.5) < 0.05 * mu * 0.5 and abs(dv.mean()) < 3 * mu * 0.5 / np.sqrt(n)
    dr = (res[0].astype(np.float64) - 128) / 256     # sd 1e-4 = 0.026 LSB: only rounding makes it move
    assert 0 < np.count_nonzero(dr) < n // 5
    assert abs(dr.std() - mu * 0.02 * 0.5) < 0.5 * mu * 0.02 * 0.5 + 2 / 256 / np.sqrt(n) * 10
    assert abs(dr.mean()) < 4 * (1 / 256) * np.sqrt(np.count_nonzero(dr)) / n


def test_mu_adaptation_rule():
    s = EMNS(EMNSSpec((2, 1)), mode="float32")
    sc = {"mu": 0.05}
    s._adapt_mu(sc, 0.01); assert sc["mu"] == pytest.approx(0.05 * 0.98)
    s._adapt_mu(sc, -0.01); assert sc["mu"] == pytest.approx(0.05 * 0.98 * 1.01)
    s._adapt_mu(sc, 0.0); assert sc["mu"] == pytest.approx(0.05 * 0.98 * 1.01 * 0.999)
    assert ref.adapt_mu(0.05, 0.01) == pytest.approx(0.05 * 0.98)
    si = EMNS(EMNSSpec((2, 1)), mode="int8")
    sc = {"mu_q": 1 << 24}
    si._adapt_mu(sc, -1.0)
    assert sc["mu_q"] == round(0.1 * 2 ** 24)      # clipped at mu_max


@pytest.mark.parametrize("mode", ["int8", "float32"])
def test_select_learns_and_paper_never_reverts(mode):
    X, Y = _data(60)
    spec = EMNSSpec((2, 6, 1))
    s = EMNS(spec, "select", mode=mode, mu0=0.05)
    st0 = s.init(1)
    p0 = s.evaluate(s.parent(st0), X, Y).mean()
    st = fit(s, X, Y, 250, seed=1)
    assert st.scalars["best_perf"] > p0 + 0.05
    pp = EMNS(spec, "paper", mode=mode)
    stp = pp.init(1)
    mus = []
    for _ in range(5):
        pop = pp.ask(stp)
        assert pop.size == 1
        stp = pp.tell(stp, pop, pp.evaluate(pop, X, Y))
        assert stp.scalars["accepted"] == 1
        mus.append(pp.mu(stp))
    assert not np.array_equal(stp.arrays["values"], st0.arrays["values"])


def test_population_variant_and_serialisation_resume():
    X, Y = _data(30)
    spec = EMNSSpec((2, 4, 1), max_dims=(2, 6, 1))
    s = EMNS(spec, "population", mode="int8", offspring=4, grow_patience=3)
    st = fit(s, X, Y, 6, seed=2)
    arrs, meta = st.to_arrays()
    meta = json.loads(json.dumps(meta))
    st2 = State.from_arrays(spec, {k: v.copy() for k, v in arrs.items()}, meta)
    a = fit(s, X, Y, 6, state=st)
    b = fit(s, X, Y, 6, state=st2)
    for k in a.arrays:
        np.testing.assert_array_equal(a.arrays[k], b.arrays[k])
    assert a.scalars == b.scalars


def test_growth_extends_fan_in_and_refuses_past_limits():
    spec = EMNSSpec((2, 3, 2, 1), max_dims=(2, 4, 2, 1), max_connections=40)
    s = EMNS(spec, mode="int8")
    st = s.init(0)
    n0 = spec.n_active_params(st.arrays["nmask"], st.arrays["cmask"])
    g = s.add_neuron(st, layer=0)
    assert spec.active_dims(g.arrays["nmask"]) == (2, 4, 2, 1)
    # one neuron in layer 1: 10 + 3*2 incoming, plus 3 params on each of the 2 next-layer neurons
    assert spec.n_active_params(g.arrays["nmask"], g.arrays["cmask"]) == n0 + 10 + 6 + 6
    assert g.scalars["events"].startswith("grow:L1")
    r0 = spec.layout()[0]
    new_r = g.arrays["resist"][int(r0[4]) + 3 * 2:int(r0[4]) + 4 * 2]
    assert np.all(new_r == round(0.1 * 256))
    X, _ = _data(5)
    assert s.predict(g, X).shape == (5, 1)
    with pytest.raises(ValueError, match="max_dims"):
        s.add_neuron(g, layer=0)
    tight = EMNSSpec((2, 3, 1), max_dims=(2, 6, 1), max_connections=9)
    with pytest.raises(ValueError, match="max_connections"):
        EMNS(tight).add_neuron(EMNS(tight).init(0))


def test_growth_on_stagnation_then_refusal():
    X, Y = _data(20)
    spec = EMNSSpec((2, 2, 1), max_dims=(2, 3, 1))
    s = EMNS(spec, "select", mode="int8", grow_patience=2, mu0=0.001, mu_max=0.001, mu_min=0.001)
    events = []
    st = fit(s, X, Y, 40, seed=0, callback=lambda t: events.append(t.scalars["events"]))
    joined = ";".join(events)
    assert "grow" in joined
    if st.scalars["n_grow"]:
        assert spec.active_dims(st.arrays["nmask"]) == (2, 3, 1)
        assert "grow_refused" in joined


def test_pruning_and_mi_formation():
    X, Y = _data(40)
    spec = EMNSSpec((2, 3, 1))
    s = EMNS(spec, "select", mode="float32", prune_eps=10.0, prune_steps=3, form_rate=0.0)
    st = fit(s, X, Y, 4, seed=0)
    assert st.scalars["n_prune"] > 0
    lay = spec.layout()
    for row in lay:
        ni, no, coff = int(row[0]), int(row[1]), int(row[7])
        per = st.arrays["cmask"][coff:coff + ni * no].reshape(no, ni).sum(1)
        assert np.all(per >= 1)
    # formation: MI of a copied signal is maximal, of independent ones small
    r = np.random.default_rng(0)
    u = r.uniform(size=2000)
    assert binned_mi(u, u, 4) > 0.99 * np.log(4)
    assert binned_mi(u, r.uniform(size=2000), 4) < 0.02
    f = EMNS(spec, "select", mode="float32", form_rate=1.0)
    pruned = s.parent(st)
    act = f.forward(pruned, X, return_activity=True)[1]
    before = int(st.arrays["cmask"].sum())
    st_f = State(st.generation, st.seed, None, {k: v.copy() for k, v in st.arrays.items()}, dict(st.scalars))
    ev = f._form(st_f.arrays, act[0], 0, 1)
    assert int(st_f.arrays["cmask"].sum()) == before + len([e for e in ev if e.startswith("form:")])
    assert len(ev) > 0


_DET = r"""
import hashlib, numpy as np
from edge_evo.models.emns import EMNSSpec
from edge_evo.strategies.emns import EMNS, fit
r = np.random.default_rng(0); X = r.uniform(-2, 2, (8, 2)); Y = np.sin(X[:, 0])
s = EMNS(EMNSSpec((2, 3, 1), max_dims=(2, 4, 1)), "population", mode="int8", offspring=2, grow_patience=2)
st = fit(s, X, Y, 4, seed=9)
h = hashlib.sha256(st.arrays["values"].tobytes() + st.arrays["resist"].tobytes() + st.arrays["cmask"].tobytes())
print(h.hexdigest(), st.scalars["mu_q"])
"""


def test_int8_deterministic_and_identical_without_jit():
    env = dict(os.environ)
    outs = []
    for jit in ("0", "1"):
        env["NUMBA_DISABLE_JIT"] = jit
        outs.append(subprocess.run([sys.executable, "-c", _DET], env=env, capture_output=True, text=True,
                                   check=True, timeout=300).stdout.strip())
    assert outs[0] == outs[1] and len(outs[0]) > 64
