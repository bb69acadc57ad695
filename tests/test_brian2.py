"""Brian2 backend: the same IF network in Brian2 and in the NumPy interpreter gives identical spikes."""
import numpy as np
import pytest

from edge_evo.backends import brian2_available
from edge_evo.models.mlp import MLPSpec
from edge_evo.models.snn import AffineLayer, IFLayer, SpikingNet, convert_mlp, simulate

pytestmark = pytest.mark.skipif(not brian2_available(),
                                reason="brian2 not importable (pip install brian2 'numpy<2.4')")


def _net(coding, reset, dims=(20, 8, 5), seed=0):
    rng = np.random.default_rng(seed)
    spec = MLPSpec(dims)
    g = rng.integers(-100, 101, spec.n_params).astype(np.int8)
    X = rng.integers(0, 128, (6, dims[0])).astype(np.int8)
    return convert_mlp(spec, g, X, input_coding=coding, reset=reset), X


@pytest.mark.parametrize("coding,reset", [("current", "subtract"), ("spikes", "zero"), ("spikes", "subtract")])
def test_brian2_spikes_equal_numpy(coding, reset):
    from edge_evo.backends.brian2_backend import simulate_brian2
    net, X = _net(coding, reset)
    c1, v1, r1 = simulate(net, X, 30, record=True)
    c2, v2, r2 = simulate_brian2(net, X, 30, record=True)
    assert len(r1) == len(r2)
    for a, b in zip(r1, r2):
        assert a.shape == b.shape and a.any()
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_array_equal(v1, v2)


def test_brian2_zero_delay_chain_by_hand():
    # 1 -> IF(th 10) -> w=20 -> IF(th 15): the second layer spikes in the same step as the first
    from edge_evo.backends.brian2_backend import simulate_brian2
    net = SpikingNet((AffineLayer([[1.0]], [0.0]), IFLayer([1000.0], [10.0]),
                      AffineLayer([[20.0]], [0.0]), IFLayer([1000.0], [15.0])), 1)
    _, _, rec = simulate_brian2(net, np.array([[6]], np.int8), 6, record=True)
    first = rec[0][:, 0, 0].tolist()
    assert first == [False, True, False, True, False, True]
    assert rec[1][:, 0, 0].tolist() == first


def test_brian2_bad_input():
    from edge_evo.backends.brian2_backend import simulate_brian2
    net, X = _net("current", "subtract")
    with pytest.raises(ValueError, match="batch"):
        simulate_brian2(net, X[:, :3], 5)
    with pytest.raises(ValueError, match="target"):
        simulate_brian2(net, X, 5, target="cuda")
