"""The Cortex-M DSP path of dense_acc (SXTB16/SMLAD, firmware_export/edge_evo_rt.c) on layer widths
the golden vectors do not cover: fewer than 4 inputs, every remainder mod 8, odd row counts and rows
starting at any byte; logits must equal the numba kernels exactly on the emulated M4."""
import numpy as np
import pytest

from edge_evo.export import c_build
from edge_evo.export.c_export import check_on_target
from edge_evo.models.mlp import MLPSpec

SHAPES = [(3, 5, 2), (7, 9, 1), (13, 11, 3), (1, 4, 6), (29, 17, 6, 5)]


@pytest.mark.parametrize("target", ["cortex-m4f", "cortex-m7"])
def test_dsp_path_exact_on_odd_shapes(target):
    try:
        c_build.require(target, emulate=True)
    except c_build.ToolchainMissing as e:
        pytest.skip(str(e))
    gen = np.random.default_rng(0)
    for dims in SHAPES:
        spec = MLPSpec(dims)
        genome = gen.integers(-127, 128, spec.n_params).astype(np.int8)
        X = gen.integers(-127, 128, (6, dims[0])).astype(np.int8)   # negative inputs too
        r = check_on_target((spec, genome), X, target=target)
        assert r["exact"], dims
