"""Single-ENU tasks of seed 002: Numba cell kernel (float32 and fixed point), the IAF and STDP
references (Brian2 vs NumPy twins), their losses / metrics, and a short OpenES run."""
import numpy as np
import pytest

pytest.importorskip("brian2")

from edge_evo.kernels.enu import (enu_cell_run, enu_cell_run_q, quantize_enu, quantize_inputs, A_FRAC)
from edge_evo.models.enu import ENUSpec, enu_run, enu_step
from edge_evo.strategies.openes import OpenES
from edge_evo.tasks.enu_train import evolve, orthogonal_genome
from edge_evo.tasks.iaf import (IAFTask, iaf_brian2, iaf_hand_genome, iaf_inputs, iaf_loss, iaf_numpy,
                                spike_metrics)
from edge_evo.tasks.stdp import STDPTask, stdp_brian2, stdp_episodes, stdp_inputs, stdp_numpy, stdp_window

KERNEL_ATOL = 1e-4      # float32 kernel vs NumPy enu_run, outputs and state over 100 steps


def _genomes(spec, P, scale, seed=0):
    g = np.random.default_rng(seed).standard_normal((P, spec.n_params)) * scale
    return g.astype(np.float32)


# ---------------------------------------------------------------- references
def test_iaf_brian2_equals_numpy_twin():
    x = iaf_inputs(3, 64)
    s_b, v_b = iaf_brian2(x)
    s_n, v_n = iaf_numpy(x)
    assert s_b.sum() > 64 * 10                    # ~21 spikes per 100-step episode
    assert np.array_equal(s_b, s_n)
    assert np.array_equal(v_b, v_n)
    # the seed's rule by hand on one sequence
    h, spk = 0.0, []
    for xt in x[0].astype(np.float64):
        h += xt
        spk.append(h >= 0.5)
        if h >= 0.5:
            h = 0.0
    assert np.array_equal(np.array(spk), s_n[0])


def test_stdp_brian2_equals_numpy_twin():
    x, tp, tb, m = stdp_episodes(5, 64)
    assert 0 < m.sum() < 64 and (tp != tb).all()
    w_b = stdp_brian2(tp, tb, m)
    w_n = stdp_numpy(tp, tb, m)
    np.testing.assert_allclose(w_b, w_n, rtol=0, atol=1e-12)
    # final weight follows the window where the neuromodulator is present, else stays at W0
    np.testing.assert_allclose(w_b[:, -1], 0.5 + m * stdp_window(tb - tp), atol=1e-12)
    k = int(np.argmax(m))
    later = max(tp[k], tb[k])
    assert w_b[k, later - 1] == 0.5 and w_b[k, later] != 0.5   # the update lands at the later spike's step


# ---------------------------------------------------------------- kernels
def test_kernel_equals_numpy_reference():
    spec = ENUSpec(2, 12, 3)
    P, E, T = 5, 3, 100
    g = np.concatenate([_genomes(spec, P - 1, 0.3), orthogonal_genome(spec, 1)[None]])
    rs = np.random.default_rng(1)
    xs = rs.uniform(0, 1, (T, 1, E, 2)).astype(np.float32)
    ys, hs = enu_cell_run(spec, g, xs)
    yr, hr = enu_run(spec, g, np.broadcast_to(xs, (T, P, E, 2)))
    assert ys.shape == (T, P, E, 3) and hs.shape == (P, E, 12)
    np.testing.assert_allclose(ys, yr, atol=KERNEL_ATOL)
    np.testing.assert_allclose(hs, hr, atol=KERNEL_ATOL)
    # per-offspring inputs give the same as shared ones
    ys2, _ = enu_cell_run(spec, g, np.ascontiguousarray(np.broadcast_to(xs, (T, P, E, 2))))
    assert np.array_equal(ys, ys2)


def test_kernel_gain_and_noise_match_reference_step():
    spec = ENUSpec(1, 8, 2)
    P, E, T = 3, 4, 30
    g = _genomes(spec, P, 0.2, seed=2)
    xs = np.random.default_rng(2).uniform(0, 1, (T, 1, E, 1)).astype(np.float32)
    noise = (np.random.default_rng(3).standard_normal((T, P, E, 2)) * 0.01).astype(np.float32)
    gain = 4.0
    ys, _ = enu_cell_run(spec, g, xs, noise=noise, gain=gain)
    gs = g.copy()                                  # gain * (W_o [h,1] + n) == (gain W_o) [h,1] + gain n
    gs[:, spec.offsets()["W_o"]:] *= gain
    params = spec.unflatten(gs)
    h = np.zeros((P, E, 8), np.float32)
    y = np.zeros((P, E, 2), np.float32)
    for t in range(T):
        y, h = enu_step(spec, params, np.broadcast_to(xs[t], (P, E, 1)), y, h, noise=gain * noise[t])
        np.testing.assert_allclose(ys[t], y, atol=KERNEL_ATOL)


def test_kernel_rejects_bad_shapes():
    spec = ENUSpec(1, 4, 1)
    g = _genomes(spec, 2, 0.1)
    with pytest.raises(ValueError, match="xs must be"):
        enu_cell_run(spec, g, np.zeros((5, 3, 2, 1), np.float32))
    with pytest.raises(ValueError, match="genomes must be"):
        enu_cell_run(spec, g[:, :-1], np.zeros((5, 1, 2, 1), np.float32))


def test_fixed_point_cell_tracks_float():
    """int16 Q12 state, int8 LUT gates, int32 accumulators vs float32: stated tolerance on an
    orthogonal-init genome over 100 steps: state max |dh| <= 0.05; outputs mean |dy| <= 0.01 and
    99th percentile <= 0.05 (rare single steps differ more where the float output sits at a
    clamp edge or a gate flips)."""
    spec = ENUSpec(1, 16, 1)
    g = np.stack([orthogonal_genome(spec, s) for s in range(4)])
    g[:, spec.offsets()["W_o"]:] *= 2.0
    xs = np.random.default_rng(4).uniform(0, 0.25, (100, 1, 8, 1)).astype(np.float32)
    ys, hs = enu_cell_run(spec, g, xs)
    q, fr = zip(*[quantize_enu(spec, gi) for gi in g])
    yq, hq = enu_cell_run_q(spec, np.stack(q), np.stack(fr), quantize_inputs(xs))
    assert yq.dtype == np.int16 and hq.dtype == np.int16
    err = np.abs(yq / 2.0 ** A_FRAC - ys)
    assert ys.std() > 0.05                          # the outputs move, so the comparison means something
    assert np.percentile(err, 99) <= 0.05 and err.mean() <= 0.01, (np.percentile(err, 99), err.mean())
    assert np.abs(hq / 2.0 ** A_FRAC - hs).max() <= 0.05


def test_fixed_point_cell_holds_large_output_weights():
    """A large output gain (upstream's IAF uses 1000) folds into W_o beyond the int8 range: the
    quantiser picks a negative frac (weight = q 2^-frac) instead of saturating, and the binary
    outputs follow the float cell."""
    spec = ENUSpec(1, 8, 1)
    g = np.stack([orthogonal_genome(spec, s) for s in range(2)])
    g[:, -1] = -0.1                                  # output bias: off at rest, on for larger h
    xs = np.random.default_rng(5).uniform(0, 0.25, (100, 1, 8, 1)).astype(np.float32)
    ys, _ = enu_cell_run(spec, g, xs, gain=1000.0)
    q, fr = zip(*[quantize_enu(spec, gi, gain=1000.0) for gi in g])
    assert all(f[2] < 0 for f in fr), fr
    old = [np.clip(np.floor(1000.0 * gi[spec.offsets()["W_o"]:] + 0.5), -127, 127) for gi in g]
    assert any(np.abs(o).max() == 127 for o in old)  # the weights that saturated before
    yq, _ = enu_cell_run_q(spec, np.stack(q), np.stack(fr), quantize_inputs(xs))
    on_f, on_q = ys > 0.5, yq > 2 ** (A_FRAC - 1)
    assert 0.05 < on_f.mean() < 0.95
    assert (on_f == on_q).mean() >= 0.95, (on_f == on_q).mean()


# ---------------------------------------------------------------- losses and metrics
def test_iaf_loss_and_metric_rank_mimics():
    s, _ = iaf_numpy(iaf_inputs(7, 16))
    perfect = s.astype(np.float32)
    shift1 = np.zeros_like(perfect)
    shift1[:, 1:] = perfect[:, :-1]
    shift3 = np.zeros_like(perfect)
    shift3[:, 3:] = perfect[:, :-3]
    silent = np.zeros_like(perfect)
    always = np.ones_like(perfect)
    L = {k: iaf_loss(v, s).mean() for k, v in
         dict(perfect=perfect, shift1=shift1, shift3=shift3, silent=silent, always=always).items()}
    assert L["perfect"] == 0.0
    assert L["perfect"] < L["shift1"] < L["shift3"] < L["silent"]
    assert L["shift1"] < L["always"]
    half = 0.75 * perfect                           # right timing, height 0.75: only the height term
    assert 0 < iaf_loss(half, s).mean() < L["shift1"]
    m = spike_metrics(perfect, s)
    assert m["within1"] == 1.0 and m["exact"] == 1.0 and m["extra"] == 0.0 and m["max_err"] == 0
    m1 = spike_metrics(shift1, s)
    assert m1["within1"] > 0.98 and m1["exact"] < 0.1 and m1["median_err"] == 1.0
    assert spike_metrics(shift3, s)["within1"] < 0.6
    sparse = np.zeros((2, 100), bool)               # spikes every 10 steps: a 3-step shift is 3 steps off
    sparse[:, 5::10] = True
    late = np.roll(sparse, 3, axis=1).astype(np.float32)
    m3 = spike_metrics(late, sparse)
    assert m3["within1"] == 0.0 and m3["missed"] == 1.0 and m3["extra"] == 1.0
    assert m3["median_err"] == 3.0 and m3["max_err"] == 3


def test_hand_set_genome_makes_the_cell_an_iaf_neuron():
    """The cell can express the IAF task (one memory unit used): near-perfect spikes on held-out
    inputs, against the Brian2 reference, with any number of memory units."""
    for H in (1, 4):
        spec = ENUSpec(1, H, 1)
        task = IAFTask(spec, seed=3, n_train=8, n_test=64, envs=4, gain=10)
        m = task.evaluate(iaf_hand_genome(spec, gain=10))
        assert m["within1"] >= 0.97 and m["extra"] <= 0.03 and m["exact"] >= 0.95, m
    g = iaf_hand_genome(ENUSpec(1, 4, 1), s=0.05, gain=10)
    assert np.abs(g).max() == 200.0                      # the steep output: 2000 / gain
    with pytest.raises(ValueError, match="1 input and 1 output"):
        iaf_hand_genome(ENUSpec(4, 4, 1))


def test_stdp_target_and_fitness():
    spec = ENUSpec(4, 4, 1)
    task = STDPTask(spec, seed=1, n_train=32, n_test=16, envs=8)
    tr = task.train
    np.testing.assert_allclose(tr["y"], tr["inputs"][..., 0] * tr["w"], rtol=1e-6)
    assert set(np.unique(tr["inputs"][..., 1].sum(1))) == {1.0} and set(np.unique(tr["inputs"][..., 3].sum(1))) == {1.0}
    sc = task.scores(_genomes(spec, 4, 0.1), generation=0)
    assert sc.shape == (4, 8) and (sc <= 0).all()
    # an output gain g is W_o scaled by g (the same cell function)
    g = _genomes(spec, 2, 0.1)
    g2 = g.copy()
    g2[:, spec.offsets()["W_o"]:] *= 0.5
    task2 = STDPTask(spec, seed=1, n_train=32, n_test=16, envs=8, gain=2.0)
    np.testing.assert_allclose(task2.scores(g2, 0), task.scores(g, 0), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="gain"):
        STDPTask(spec, seed=1, n_train=32, n_test=16, envs=8, gain=0.0)
    # the window probe reads a known weight change back exactly from a synthetic output
    assert np.allclose(stdp_window([-10, 10]), [-0.5 / np.e, 0.5 / np.e])


def test_short_openes_run_improves_iaf():
    spec = ENUSpec(1, 8, 1)
    task = IAFTask(spec, seed=2, n_train=64, n_test=32, envs=8)
    es = OpenES(spec, "paper", mode="float32", population=32, sigma=0.02, lr=0.3)
    st = es.init_from(0, orthogonal_genome(spec, 0))
    before = task.evaluate(es.best_genome(st))["loss"]
    st, hist = evolve(es, st, task, 40, log_every=5, progress=False)
    after = task.evaluate(es.best_genome(st))["loss"]
    assert after < 0.5 * before, (before, after)
    assert len(hist) >= 5 and hist[-1]["generation"] == 40


_NOJIT_SCRIPT = """
import sys, numpy as np
from edge_evo.models.enu import ENUSpec
from edge_evo.kernels.enu import enu_cell_run, enu_cell_run_q, quantize_enu, quantize_inputs
spec = ENUSpec(2, 4, 1)
g = (np.random.default_rng(0).standard_normal((2, spec.n_params)) * 0.3).astype(np.float32)
xs = np.random.default_rng(1).uniform(0, 1, (6, 1, 3, 2)).astype(np.float32)
y, h = enu_cell_run(spec, g, xs)
q, fr = quantize_enu(spec, g[0])
yq, hq = enu_cell_run_q(spec, q[None], fr[None], quantize_inputs(xs))
np.savez(sys.argv[1], y=y, h=h, yq=yq, hq=hq)
"""


def test_kernels_same_without_jit(tmp_path):
    """The kernels are plain Python under NUMBA_DISABLE_JIT=1: float32 within 1e-6, fixed point bit-exact."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    root = str(Path(__file__).resolve().parents[1])
    out = {}
    for flag in ("0", "1"):
        env = dict(os.environ, NUMBA_DISABLE_JIT=flag, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
        f = tmp_path / f"jit{flag}.npz"
        subprocess.run([sys.executable, "-c", _NOJIT_SCRIPT, str(f)], check=True, env=env, cwd=root, timeout=300)
        out[flag] = np.load(f, allow_pickle=False)
    np.testing.assert_allclose(out["0"]["y"], out["1"]["y"], atol=1e-6)
    np.testing.assert_allclose(out["0"]["h"], out["1"]["h"], atol=1e-6)
    assert np.array_equal(out["0"]["yq"], out["1"]["yq"]) and np.array_equal(out["0"]["hq"], out["1"]["hq"])
