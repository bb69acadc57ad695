"""Issue 9 on the emulated Cortex-M4, subset version: the imported GENREG gen-600 genome classifies test images
streamed through semihosting exactly like the numba kernels and the integer ONNX graph, and a short on-device
adaptation run is bit-exact with the Python OpenES run (the full 10k / 300-generation case:
benchmarks/bench_byom_m4.py)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _example():
    spec = importlib.util.spec_from_file_location("byom_m4_run", REPO / "examples" / "byom_m4" / "run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ex = _example()
DATA = ex.data_dir()
pytestmark = [pytest.mark.skipif(DATA is None, reason="../shared/data (mnist/ and genreg/) is absent")]


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    out = tmp_path_factory.mktemp("byom")
    # calibration on 10k train images keeps the test fast; the formats equal the 60k calibration's
    spec, genome, rep, model = ex.import_g600(out, DATA, calib_size=10000)
    return out, spec, genome, rep, model


def test_readout_equals_full_model(imported):
    """The adaptation evolves the read-out on hidden activations: its logits must be the full model's."""
    from edge_evo.fixedpoint import quantize_input_u8
    from edge_evo.models.forward import forward
    from edge_evo.models.mlp import Population
    from edge_evo.tasks import load_mnist
    _, spec, genome, rep, _ = imported
    assert rep["int8_accuracy"] >= 0.810 and abs(rep["float_accuracy"] - 0.8120) < 1e-9
    X, _ = load_mnist("mnist", "test", path=DATA, download=False)
    X = X[:300]
    full = forward(Population.from_flat(spec, genome[None]), quantize_input_u8(X), engine="numba")[0]
    rs = ex.readout_spec(spec)
    ro = forward(Population.from_flat(rs, genome[spec.offsets()["W2"]:][None]), ex.hidden(spec, genome, X))[0]
    assert np.array_equal(full, ro)


def test_margins():
    L = np.array([[[5, 9, 1], [3, 2, 100]]])       # [P=1, B=2, C=3]
    m = ex.margins(L, np.array([1, 0]), 50)
    assert m.tolist() == [[4, -50]]


@pytest.mark.skipif(ex.tools_missing() is not None, reason=str(ex.tools_missing()))
def test_device_classifies_like_kernels_and_onnx(imported):
    out, spec, genome, _, model = imported
    r = ex.classify(out, spec, genome, model, DATA, n=500)
    assert r["device_lines"] == r["numba_lines"], (r["device_lines"], r["numba_lines"])
    assert r["equal"] and r["device_correct"] == r["numba_correct"] == r["onnx_correct"]
    assert r["device_lines"][-1] == f"hash {r['onnx_hash']}"
    assert 0.7 < r["device_correct"] / 500 < 0.9


@pytest.mark.skipif(ex.tools_missing() is not None, reason=str(ex.tools_missing()))
def test_device_adaptation_bit_exact(imported):
    out, spec, genome, _, _ = imported
    ad = ex.adapt(out, spec, genome, DATA, train=300, hold_from=9500, hold=200, gens=12, report=4, population=8,
                  batch=32)
    assert ad["equal"], list(zip(ad["device_lines"], ad["python_lines"]))
    lines = ad["device_lines"]
    assert [l.split()[0] for l in lines] == ["heldout", "gen", "gen", "gen", "heldout", "final"]
    # the mean moved away from the imported read-out
    ro0 = genome[spec.offsets()["W2"]:]
    from edge_evo.export.c_evolve import fnv1a
    assert int(lines[-1].split()[1]) != fnv1a(ro0)
