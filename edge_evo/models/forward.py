"""Population forward pass dispatch: int8 (bit-exact engines) or float32 research mode."""
from __future__ import annotations

import numpy as np

from ..fixedpoint.lut import LUT_FUNCTIONS
from ..kernels.engines import INT8_ENGINES, ENGINE_NAMES, forward_float32, resolve_engine
from .mlp import Population

_LUT_CACHE: dict = {}


def _lut(spec):
    key = (spec.activation, spec.z_frac, spec.h_frac)
    if key not in _LUT_CACHE:
        _LUT_CACHE[key] = spec.lut()
    return _LUT_CACHE[key]


def forward(pop: Population, X: np.ndarray, engine: str = "auto") -> np.ndarray:
    """Logits [P, B, n_out]: int32 for an int8 population (X int8), float32 for a float one."""
    spec = pop.spec
    if X.ndim != 2 or X.shape[1] != spec.dims[0]:
        raise ValueError(f"X must be [batch, {spec.dims[0]}], got shape {X.shape}")
    layers = [pop.layer(l) for l in range(spec.n_layers)]
    if pop.dtype == np.int8:
        if X.dtype != np.int8:
            raise TypeError(f"int8 population needs int8 inputs (Q{spec.x_frac}); got {X.dtype}: "
                            "use edge_evo.fixedpoint.quantize_input_u8 or quantize")
        if engine not in ENGINE_NAMES:
            raise ValueError(f"unknown engine {engine!r}; choose one of {list(ENGINE_NAMES)}")
        fn = INT8_ENGINES[resolve_engine(engine, pop.size, X.shape[0])]
        shifts = [(spec.bias_shift(l), spec.out_shift(l)) for l in range(spec.n_layers)]
        return fn(layers, np.ascontiguousarray(X), shifts, _lut(spec))
    if pop.dtype == np.float32:
        return forward_float32(layers, X.astype(np.float32, copy=False), LUT_FUNCTIONS[spec.activation])
    raise TypeError(f"population dtype must be int8 or float32, got {pop.dtype}")
