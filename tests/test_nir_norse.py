"""Optional: an independent NIR importer (Norse, PyTorch) runs our exported IF graph and produces
the same spikes as our reference interpreter. Skips unless norse + torch are installed
(CPU torch: pip install torch --index-url https://download.pytorch.org/whl/cpu; pip install norse nirtorch)."""
import numpy as np
import pytest

pytest.importorskip("nir")
torch = pytest.importorskip("torch")
norse_torch = pytest.importorskip("norse.torch")

from edge_evo.export.nir_export import read_nir, to_nir, write_nir  # noqa: E402
from edge_evo.models.mlp import MLPSpec  # noqa: E402
from edge_evo.models.snn import convert_mlp, simulate  # noqa: E402


@pytest.mark.parametrize("coding", ["current", "spikes"])
def test_norse_reproduces_reset_to_zero_graph(tmp_path, coding):
    # NIR's IF equation resets to v_reset: graphs converted with reset="zero" follow it exactly
    rng = np.random.default_rng(0)
    spec = MLPSpec((12, 6, 4))
    g = rng.integers(-90, 91, spec.n_params).astype(np.int8)
    X = rng.integers(0, 128, (16, 12)).astype(np.int8)
    net = convert_mlp(spec, g, X, input_coding=coding, reset="zero")
    T = 48
    counts, _, rec = simulate(net, X, T, record=True)
    graph = read_nir(write_nir(to_nir(net), tmp_path / "m.nir"))
    m = norse_torch.from_nir(graph, dt=net.dt, ignore_warnings=True).double()
    x = torch.tensor(X.astype(np.float64), dtype=torch.float64)
    state, spikes = None, []
    with torch.no_grad():
        for _ in range(T):
            out, state = m(x, state)
            spikes.append(out.numpy().copy())
    spikes = np.array(spikes)                                     # [T, B, n_out]
    assert spikes.sum() > 0, "the test network must spike"
    np.testing.assert_array_equal(spikes.astype(bool), rec[-1])   # every output spike, step by step
    np.testing.assert_array_equal(spikes.sum(0).astype(np.int32), counts)
