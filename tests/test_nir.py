"""Spiking conversion (models/snn) and NIR export: shapes, IF dynamics by hand, round trip, errors."""
import numpy as np
import pytest

from edge_evo.models.mlp import MLPSpec
from edge_evo.models.snn import AffineLayer, IFLayer, SpikingNet, convert_mlp, simulate, predict

nir = pytest.importorskip("nir", reason="nir not installed (pip install 'nir>=1.0.6')")
from edge_evo.export import export, EXPORTERS  # noqa: E402
from edge_evo.export.nir_export import (NIRUnsupportedError, check_nir_expressible, from_nir, read_nir,  # noqa: E402
                                        to_nir, write_nir)


def _model(dims=(12, 6, 4), seed=0):
    rng = np.random.default_rng(seed)
    spec = MLPSpec(dims)
    return spec, rng.integers(-90, 91, spec.n_params).astype(np.int8)


def _inputs(n=16, n_in=12, seed=1):
    return np.random.default_rng(seed).integers(0, 128, (n, n_in)).astype(np.int8)


@pytest.mark.parametrize("coding", ["current", "spikes"])
def test_conversion_shapes(coding):
    spec, g = _model()
    net = convert_mlp(spec, g, _inputs(), input_coding=coding)
    kinds = [type(L).__name__ for L in net.layers]
    expect = ["AffineLayer", "IFLayer", "AffineLayer", "IFLayer"]
    assert kinds == (["IFLayer"] + expect if coding == "spikes" else expect)
    hid, out = net.layers[-3], net.layers[-1]
    assert hid.size == 12 and out.size == 4                     # tanh units split into +/- pairs
    A1, A2 = net.layers[-4], net.layers[-2]
    assert A1.weight.shape == (12, 12) and A2.weight.shape == (4, 12)
    np.testing.assert_array_equal(A1.weight[:6], -A1.weight[6:])
    np.testing.assert_array_equal(A2.weight[:, :6], -A2.weight[:, 6:])
    for L in net.layers:                                         # integer units: exact float64 sums
        arrs = [L.weight, L.bias] if isinstance(L, AffineLayer) else [L.v_threshold]
        assert all(np.array_equal(a, np.round(a)) for a in arrs)
    counts, v = simulate(net, _inputs(5), 10)
    assert counts.shape == (5, 4) and counts.dtype == np.int32 and v.shape == (5, 4)
    assert counts.max() <= 10


def test_if_dynamics_by_hand():
    # one neuron, threshold 10, constant current 4: v = 4, 8, 12 -> spike -> 2, 6, 10 (not > 10), 14 -> spike -> 4
    net = SpikingNet((AffineLayer([[1.0]], [0.0]), IFLayer([1000.0], [10.0])), 1, dt=1e-3, reset="subtract")
    c, v, rec = simulate(net, np.array([[4]], dtype=np.int8), 7, record=True)
    assert rec[0][:, 0, 0].tolist() == [False, False, True, False, False, True, False]
    assert c[0, 0] == 2 and v[0, 0] == 8.0                      # 7 * 4 - 2 * 10
    z = SpikingNet((AffineLayer([[1.0]], [0.0]), IFLayer([1000.0], [10.0], [0.0])), 1, dt=1e-3, reset="zero")
    c, v, rec = simulate(z, np.array([[4]], dtype=np.int8), 7, record=True)
    assert rec[0][:, 0, 0].tolist() == [False, False, True, False, False, True, False]
    assert v[0, 0] == 4.0                                       # reset to 0 at step 6, then +4


def test_rate_code_matches_hardtanh():
    # with enough steps the +/- pair rates reproduce clip(z / c, -1, 1) within 1/T
    spec, g = _model(seed=3)
    X = _inputs(8, seed=4)
    net = convert_mlp(spec, g, X, c=1.0)
    T = 400
    _, _, rec = simulate(net, X, T, record=True)
    r = rec[0].mean(axis=0)
    A = net.layers[0]
    z = (X.astype(float) @ A.weight[:6].T + A.bias[:6]) / net.layers[1].v_threshold[0]
    np.testing.assert_allclose(r[:, :6] - r[:, 6:], np.clip(z, -1, 1), atol=2.0 / T)


def test_converted_net_agrees_with_int8_model():
    from edge_evo.models.forward import forward
    from edge_evo.models.mlp import Population
    spec, g = _model((12, 16, 3), seed=5)
    X = _inputs(200, seed=6)
    ref = forward(Population.from_flat(spec, g), X, engine="numba")[0].argmax(1)
    net = convert_mlp(spec, g, X)
    pred = predict(*simulate(net, X, 64))
    assert np.mean(pred == ref) > 0.8


@pytest.mark.parametrize("compat", [False, True])
@pytest.mark.parametrize("coding,reset", [("current", "subtract"), ("spikes", "zero")])
def test_nir_round_trip(tmp_path, compat, coding, reset):
    spec, g = _model()
    X = _inputs()
    net = convert_mlp(spec, g, X, input_coding=coding, reset=reset)
    graph = to_nir(net)
    path = write_nir(graph, tmp_path / "m", compat=compat)
    assert path.suffix == ".nir"
    back = read_nir(path)
    assert set(back.nodes) == set(graph.nodes) and sorted(back.edges) == sorted(graph.edges)
    for k, n in graph.nodes.items():
        m = back.nodes[k]
        assert type(m) is type(n)
        for f in ("weight", "bias", "r", "v_threshold", "v_reset"):
            if hasattr(n, f):
                np.testing.assert_array_equal(np.asarray(getattr(m, f)), np.asarray(getattr(n, f)))
    assert float(back.metadata["dt"]) == net.dt
    net2 = from_nir(back)
    assert net2.reset == reset and net2.info["input_coding"] == coding
    c1, v1, r1 = simulate(net, X, 25, record=True)
    c2, v2, r2 = simulate(net2, X, 25, record=True)
    assert all(np.array_equal(a, b) for a, b in zip(r1, r2))
    np.testing.assert_array_equal(v1, v2)
    if compat:
        import h5py
        with h5py.File(path) as f:
            assert "v_reset" not in f["node/nodes/if0"]


def test_export_registry(tmp_path):
    spec, g = _model()
    assert "nir" in EXPORTERS
    p = export((spec, g), tmp_path / "x", to="nir", calib=_inputs())
    assert isinstance(read_nir(p).nodes["if1"], nir.IF)
    with pytest.raises(ValueError, match="calibration"):
        export((spec, g), tmp_path / "y", to="nir")              # 12 inputs: no default data set


def test_unsupported_models_name_onnx_and_c():
    from dataclasses import dataclass

    @dataclass
    class ENUSpec:                                              # stands in for models.enu.ENUSpec
        n_units: int = 4
    with pytest.raises(NIRUnsupportedError, match="to='onnx'"):
        check_nir_expressible((ENUSpec(), np.zeros(3)))
    with pytest.raises(NIRUnsupportedError, match="ENU"):
        export((ENUSpec(), np.zeros(3)), "/nonexistent/x", to="nir")
    spec = MLPSpec((4, 3, 2), activation="sigmoid")
    with pytest.raises(ValueError, match="ONNX/C"):
        convert_mlp(spec, np.zeros(spec.n_params, np.int8), np.zeros((2, 4), np.int8))
    with pytest.raises(TypeError, match="int8"):
        convert_mlp(MLPSpec((4, 3, 2)), np.zeros(23, np.float32), np.zeros((2, 4), np.int8))


def test_bad_graph_and_inputs(tmp_path):
    g = nir.NIRGraph.from_list(nir.Input(input_type={"input": np.array([2])}),
                               nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)),
                               nir.Output(output_type={"output": np.array([2])}))
    with pytest.raises(NIRUnsupportedError, match="LIF"):
        from_nir(g)
    with pytest.raises(ValueError, match="no such NIR file"):
        read_nir(tmp_path / "missing.nir")
    spec, gen = _model()
    with pytest.raises(ValueError, match="int8"):
        convert_mlp(spec, gen, np.zeros((3, 12), np.float32))
