"""Golden vectors (tests/golden/core_v1.npz): a change of rounding, RNG or layout anywhere fails here.
The C runtime and the integer ONNX graph are checked against the same file."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from edge_evo import rng
from edge_evo.fixedpoint import rshift_round, requantize, make_lut, LUT_FUNCTIONS
from edge_evo.models.mlp import MLPSpec, Population
from edge_evo.models.forward import forward

GOLDEN = pathlib.Path(__file__).parent / "golden" / "core_v1.npz"


@pytest.fixture(scope="module")
def g():
    with np.load(GOLDEN, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def test_rng_golden(g):
    for t, k in zip(g["rng/key_triples"], g["rng/keys"]):
        assert rng.key(np.uint32(t[0]), np.uint32(t[1]), np.uint32(t[2])) == k
    for k, row in zip(g["rng/keys"], g["rng/u32"]):
        assert [rng.u32(np.uint32(k), np.uint32(i)) for i in g["rng/index"]] == row.tolist()
    assert np.array_equal(np.array([[rng.gauss(h) for h in row] for row in g["rng/u32"]]), g["rng/gauss"])
    for m, row in zip(g["rng/gauss_mult"], g["rng/gauss_scaled"]):
        assert [rng.gauss_scaled(h, m) for h in g["rng/u32"][4]] == row.tolist()
    for n, row in zip(g["rng/bounded_n"], g["rng/bounded"]):
        assert [rng.bounded(h, n) for h in g["rng/u32"][4]] == row.tolist()


def test_fixedpoint_golden(g):
    for s in (0, 1, 2, 8, 13):
        assert np.array_equal(rshift_round(g["fx/acc"], s), g[f"fx/rshift_round_{s}"])
        assert np.array_equal(requantize(g["fx/acc"], s), g[f"fx/requantize_{s}"])
    for name in LUT_FUNCTIONS:
        assert np.array_equal(make_lut(name, 5, 7), g[f"lut/{name}_q5_q7"]), name


@pytest.mark.parametrize("tag", ["small", "mnist", "deep"])
@pytest.mark.parametrize("engine", ["numba", "blas"])
def test_mlp_golden(g, tag, engine):
    spec = MLPSpec(tuple(g[f"mlp/{tag}/dims"]))
    pop = Population.from_flat(spec, g[f"mlp/{tag}/genomes"])
    assert np.array_equal(forward(pop, g[f"mlp/{tag}/X"], engine=engine), g[f"mlp/{tag}/logits"])


def test_mlp_golden_without_jit():
    code = ("import numpy as np; from edge_evo.models.mlp import MLPSpec, Population;"
            "from edge_evo.models.forward import forward;"
            f"z = np.load({str(GOLDEN)!r}, allow_pickle=False);"
            "spec = MLPSpec(tuple(z['mlp/small/dims'])); pop = Population.from_flat(spec, z['mlp/small/genomes']);"
            "print(np.array_equal(forward(pop, z['mlp/small/X']), z['mlp/small/logits']))")
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
