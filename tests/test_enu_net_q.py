"""Fixed-point ENU network (kernels/enu_net_q.py) against the float64 reference."""
import numpy as np
import pytest

from edge_evo.kernels.enu import A_ONE
from edge_evo.kernels.enu_net_q import enu_net_run_q, quantize_enu_net
from edge_evo.models.enu_net import ENUNetSpec, enu_net_run
from edge_evo.strategies.openes import OpenES


def _case(seed=0):
    spec = ENUNetSpec.tmaze(channels=4, memory=8)
    es = OpenES(spec, "paper", mode="float32", population=2)
    g = es.ask(es.init(seed)).to_flat()[0]                     # an offspring genome as training sees it
    xs = (np.random.default_rng(seed + 1).random((100, 3, 4, 4)) < 0.3).astype(np.float64)
    return spec, g, xs


def test_tracks_float_reference_over_100_steps():
    spec, g, xs = _case()
    ref, _ = enu_net_run(spec, g[None], xs[:, None], noise_std=0.0, dtype=np.float64)
    q = enu_net_run_q(spec, quantize_enu_net(spec, g), xs)
    assert q.dtype == np.int16 and q.shape == (100, 3, 6, 4)
    d = np.abs(q / A_ONE - ref[:, 0])
    assert ref.max() > 0.05, "the reference must do something"
    assert d.max() <= 0.03 and d.mean() <= 0.005             # measured: max 0.0125, mean 0.002


def test_deterministic_and_copies_independent():
    spec, g, xs = _case(1)
    qz = quantize_enu_net(spec, g)
    a = enu_net_run_q(spec, qz, xs)
    np.testing.assert_array_equal(a, enu_net_run_q(spec, qz, xs))
    np.testing.assert_array_equal(a[:, 1:2], enu_net_run_q(spec, qz, xs[:, 1:2]))


def test_bad_input():
    spec, g, xs = _case()
    with pytest.raises(ValueError, match="parameters"):
        quantize_enu_net(spec, g[:-1])
    with pytest.raises(ValueError, match="n_sensors"):
        enu_net_run_q(spec, quantize_enu_net(spec, g), xs[:, :, :3])
