"""Brian2 backend for ENU networks and cells: the same network in Brian2 and in the NumPy reference
(``enu_net_run`` in float64) agrees to 1e-9 over 100 steps with output noise on; spikes are the
upward crossings of the threshold by output channel 0; monitors record what they say."""
import logging

import numpy as np
import pytest

from edge_evo.backends import brian2_available
from edge_evo.models.enu import ENUSpec, enu_step
from edge_evo.models.enu_net import ENUNetSpec, enu_net_run

pytestmark = pytest.mark.skipif(not brian2_available(),
                                reason="brian2 not importable (pip install brian2 'numpy<2.4')")

TOL = 1e-9


def _genome(spec, seed=0):
    """An OpenES offspring (init U(+-1/sqrt(fan_in)) + sigma 0.1 noise): the genomes the backend
    validates in practice. (Random N(0, 0.5) genomes are chaotic: the float64 reference itself moves
    by ~1e-8 after 100 steps when one input changes by 1 ulp, see docs/enu.md.)"""
    from edge_evo.strategies.openes import OpenES
    es = OpenES(spec, "paper", mode="float32", population=2, sigma=0.1, lr=0.05)
    return es.ask(es.init(seed)).to_flat()[0].astype(np.float64)


def _inputs(spec, T, E, seed=1):
    return np.random.default_rng(seed).uniform(0, 1, (T, E, spec.n_sensors, spec.channels))


def _max_diff(res, ys, st):
    return max(np.abs(res.ys - ys[:, 0]).max(), np.abs(res.state.y_n - st.y_n).max(),
               np.abs(res.state.h_n - st.h_n).max(), np.abs(res.state.y_s - st.y_s).max(),
               np.abs(res.state.h_s - st.h_s).max())


def _crossings(y0, theta):
    """(step, unit) of every upward crossing: y0 > theta now, <= theta one step earlier (0 before t=0)."""
    prev = np.vstack([np.zeros((1, y0.shape[1])), y0[:-1]])
    return sorted(zip(*np.nonzero((y0 > theta) & (prev <= theta))))


def test_cell_code_writes_state_after_all_reads():
    from edge_evo.backends.brian2_enu import enu_cell_code
    spec = ENUSpec(2, 3, 2)
    code = enu_cell_code(spec, 5, ["x0", "x1"], ["y0", "y1"], ["h0", "h1", "h2"], ["n0", "n1"], "t").splitlines()
    writes = [i for i, line in enumerate(code) if line.split(" = ")[0] in ("y0", "y1", "h0", "h1", "h2")]
    reads = [i for i, line in enumerate(code) if any(f"*{v}" in line or f"{v})" in line for v in ("y0", "h0"))
             and i not in writes]
    assert len(writes) == 5 and min(writes) > max(reads)
    assert code[-5:] == ["h0 = th0", "h1 = th1", "h2 = th2", "y0 = ty0", "y1 = ty1"]
    # weights are read by offset from the one flat genome, never written as constants
    assert "enu_w(5)" in code[0] and f"enu_w({5 + spec.n_params - 1})" in "\n".join(code)


def test_net_parity_numpy_target_with_noise_and_reuse():
    from edge_evo.backends.brian2_enu import ENUNetBrian2
    spec = ENUNetSpec.tmaze(channels=2, memory=3)
    T, E = 40, 2
    xs = _inputs(spec, T, E)
    net = ENUNetBrian2(spec, E=E, T=T, target="numpy", record_units=[0, 9, 15])
    for seed in (0, 1):                       # second genome: in-place weight write, same network
        g = _genome(spec, seed)
        ys, st = enu_net_run(spec, g[None], xs[:, None], 0.01, seed, dtype=np.float64)
        res = net.run(g, xs, noise_std=0.01, noise_seed=seed)
        assert res.target == "numpy" and res.ys.shape == (T, E, spec.n_neurons, spec.channels)
        assert _max_diff(res, ys, st) <= TOL
    # noise matters (so the comparison above really exercised it)
    ys0, _ = enu_net_run(spec, g[None], xs[:, None], 0.0, 0, dtype=np.float64)
    assert np.abs(ys0 - ys).max() > 1e-4
    # traces: units are E*n_sensors sensors, then E*N neurons; unit 0 = sensor 0 of copy 0 (sees x),
    # 9 = neuron 1 of copy 0, 15 = neuron 1 of copy 1
    assert [res.unit_labels[u] for u in (0, 9, 15)] == ["e0 sensor 0", "e0 hidden 1", "e1 hidden 1"]
    np.testing.assert_array_equal(res.traces["y0"][:, 0], xs[:, 0, 0, 0])
    for col, e in ((1, 0), (2, 1)):
        assert max(np.ptp(res.traces[f"y{c}"][:, col]) for c in range(spec.channels)) > 0.01
        for c in range(spec.channels):
            np.testing.assert_allclose(res.traces[f"y{c}"][:, col], ys[:, 0, e, 1, c], rtol=0, atol=TOL)
    assert res.traces["h2"].shape == (T, 3)
    assert res.traces["h2"][-1, 2] == res.state.h_n[0, 1, 1, 2]                   # last trace = final state


def test_spikes_are_upward_crossings_of_channel0():
    from edge_evo.backends.brian2_enu import simulate_enu_net_brian2
    spec = ENUNetSpec.tmaze(channels=2, memory=3)
    T, E, theta = 30, 1, 0.45
    xs = _inputs(spec, T, E, seed=3)
    g = _genome(spec, 2)
    res = simulate_enu_net_brian2(spec, g, xs, noise_std=0.01, noise_seed=4, target="numpy", spike_threshold=theta)
    ys, _ = enu_net_run(spec, g[None], xs[:, None], 0.01, 4, dtype=np.float64)
    y0 = np.concatenate([xs[:, 0, :, 0], ys[:, 0, 0, :, 0]], axis=1)            # [T, sensors + neurons]
    np.testing.assert_allclose(res.y0, y0, rtol=0, atol=TOL)
    want = _crossings(y0, theta)
    got = sorted(zip(res.spike_steps.tolist(), res.spike_units.tolist()))
    assert len(want) > 5 and got == [(int(a), int(b)) for a, b in want]


def test_single_cell_parity():
    from edge_evo.backends.brian2_enu import simulate_enu_brian2
    spec = ENUSpec(3, 5, 2)
    rng = np.random.default_rng(5)
    g = rng.uniform(-1, 1, spec.n_params) / np.sqrt(spec.n_a)
    T, E = 100, 3
    xs = rng.uniform(0, 1, (T, E, 3))
    p = spec.unflatten(g)
    h, y, ys = np.zeros((1, E, 5)), np.zeros((1, E, 2)), []
    for t in range(T):
        y, h = enu_step(spec, p, xs[t][None], y, h)
        ys.append(y[0])
    res = simulate_enu_brian2(spec, g, xs, target="numpy", record_units=[1])
    assert np.abs(res.ys[:, :, 0] - np.asarray(ys)).max() <= TOL
    assert np.abs(res.state.h_n.reshape(E, 5) - h[0]).max() <= TOL
    assert res.traces["h4"].shape == (T, 1) and res.traces["h4"][-1, 0] == res.state.h_n[0, 1, 0, 4]


def test_bad_input_raises_naming_the_fix():
    from edge_evo.backends.brian2_enu import ENUNetBrian2, resolve_target, simulate_enu_net_brian2
    spec = ENUNetSpec.tmaze(channels=2, memory=2)
    xs = _inputs(spec, 5, 1)
    with pytest.raises(ValueError, match="genome must be"):
        simulate_enu_net_brian2(spec, np.zeros(3), xs, target="numpy")
    with pytest.raises(ValueError, match=r"xs must be \[T, E"):
        simulate_enu_net_brian2(spec, np.zeros(spec.n_params), xs[:, :, :2], target="numpy")
    with pytest.raises(ValueError, match="target must be"):
        resolve_target("gpu")
    with pytest.raises(TypeError, match="simulate_enu_brian2"):
        ENUNetBrian2(ENUSpec(2, 2, 2))


def test_cython_unavailable_falls_back_to_numpy_with_a_warning(monkeypatch, caplog):
    import edge_evo.backends.brian2_enu as be
    monkeypatch.setattr(be, "_CYTHON_OK", None)
    import brian2.codegen.runtime.cython_rt as crt
    monkeypatch.setattr(crt.CythonCodeObject, "is_available", classmethod(lambda cls: False))
    with caplog.at_level(logging.WARNING, logger="edge_evo.backends.brian2_enu"):
        assert be.resolve_target("cython") == "numpy"
    assert "falling back to the numpy target" in caplog.text
    monkeypatch.setattr(be, "_CYTHON_OK", None)       # the next user re-checks the real compiler


def test_raster_png(tmp_path):
    pytest.importorskip("matplotlib")
    from edge_evo.backends.brian2_enu import simulate_enu_net_brian2
    spec = ENUNetSpec.tmaze(channels=2, memory=2)
    res = simulate_enu_net_brian2(spec, _genome(spec), _inputs(spec, 20, 1), 0.01, 0, target="numpy")
    p = res.write_raster(tmp_path, title="test")
    assert p == tmp_path / "raster.png" and p.stat().st_size > 2000
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.parametrize("channels,memory", [(4, 8), (8, 16)])
def test_net_parity_cython_100_steps(channels, memory):
    """The issue's target: Cython target, 100 steps, noise on, E = 2 copies (compiles on a cold
    cache: ~1-3 min per size on 2 busy cores; later runs reuse the cache)."""
    from edge_evo.backends.brian2_enu import simulate_enu_net_brian2
    spec = ENUNetSpec.tmaze(channels=channels, memory=memory)
    T, E = 100, 2
    xs = _inputs(spec, T, E)
    g = _genome(spec, 7)
    ys, st = enu_net_run(spec, g[None], xs[:, None], 0.01, 11, dtype=np.float64)
    res = simulate_enu_net_brian2(spec, g, xs, noise_std=0.01, noise_seed=11, target="cython")
    if res.target != "cython":
        pytest.skip("no working C++ compiler for Brian2's cython target")
    assert _max_diff(res, ys, st) <= TOL
