"""ENU cell: shapes over offspring x environment copies, a hand-computed step, NIR refusal."""
import numpy as np
import pytest

from edge_evo.models.enu import ENUSpec, enu_run, enu_step


def test_shapes_and_batch_independence():
    spec = ENUSpec(n_in=3, n_hidden=5, n_out=2)
    rng = np.random.default_rng(0)
    G = rng.normal(0, 0.5, (4, spec.n_params)).astype(np.float32)
    xs = rng.random((7, 4, 3, 3)).astype(np.float32)
    ys, h = enu_run(spec, G, xs)
    assert ys.shape == (7, 4, 3, 2) and h.shape == (4, 3, 5) and ys.dtype == np.float32
    assert (ys >= 0).all() and (ys <= 1).all()
    ys1, h1 = enu_run(spec, G[2:3], xs[:, 2:3, 1:2])        # one offspring, one copy alone
    np.testing.assert_allclose(ys1[:, 0, 0], ys[:, 2, 1], rtol=1e-6, atol=1e-7)


def test_hand_made_step():
    spec = ENUSpec(n_in=1, n_hidden=1, n_out=1)               # a = [x, y, h, 1]
    p = {"W_g": np.array([[[0, 0, 0, 0.0], [0, 0, 0, 1.0]]], np.float32),   # u = 0, q = 1
         "W_c": np.array([[[1.0, 0, 1.0, 0]]], np.float32),                   # c = tanh(3 (x + r h))
         "W_o": np.array([[[2.0, 0.25]]], np.float32)}                         # y = clamp(2 h + 0.25)
    x = np.full((1, 1, 1), 0.1, np.float32)
    h = np.full((1, 1, 1), 0.2, np.float32)
    y, h2 = enu_step(spec, p, x, np.zeros((1, 1, 1), np.float32), h)
    z, r = 0.5, 0.5                                             # sigmoid(0), sigmoid(3 (1 - 1))
    c = np.tanh(3 * (0.1 + r * 0.2))
    hh = (1 - z) * 0.2 + z * c
    assert h2[0, 0, 0] == pytest.approx(hh, rel=1e-6)
    assert y[0, 0, 0] == pytest.approx(min(1.0, 2 * hh + 0.25), rel=1e-6)


def test_bad_shapes_and_nir_refusal():
    spec = ENUSpec(n_in=2, n_hidden=3)
    with pytest.raises(ValueError, match="genome length"):
        enu_run(spec, np.zeros((1, 5)), np.zeros((2, 1, 1, 2)))
    nir_export = pytest.importorskip("edge_evo.export.nir_export")
    with pytest.raises(nir_export.NIRUnsupportedError, match="onnx"):
        from edge_evo.export import export
        export((spec, np.zeros(spec.n_params, np.float32)), "/nonexistent/x", to="nir")
