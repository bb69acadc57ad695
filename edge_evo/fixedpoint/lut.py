"""256-entry int8 lookup tables for nonlinearities.

A LUT maps an int8 input q (value q * 2**-in_frac) to an int8 output
``quantize(f(q * 2**-in_frac), out_frac)``. Index = q + 128. LUTs are *data*: every backend
(Numba, C, ONNX Gather) reads the same 256 bytes, so their float generation need not be
reproduced on the device.
"""
from __future__ import annotations

import numpy as np

from .ops import quantize


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# name -> float function; the registry drives LUT tests and exporters.
LUT_FUNCTIONS = {
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "relu": lambda x: np.maximum(x, 0.0),
    "swish": lambda x: x * _sigmoid(x),
    "linear": lambda x: x,
    "square": lambda x: x * x,
    "sqrt_abs": lambda x: np.sqrt(np.abs(x)),
    "sin": np.sin,
    "gauss": lambda x: np.exp(-x * x),
}


def make_lut(name: str, in_frac: int, out_frac: int) -> np.ndarray:
    """Return the int8[256] table of ``name`` for Q(in_frac) -> Q(out_frac)."""
    try:
        f = LUT_FUNCTIONS[name]
    except KeyError:
        raise ValueError(f"unknown LUT function {name!r}; choose one of {sorted(LUT_FUNCTIONS)}") from None
    q = np.arange(-128, 128, dtype=np.float64)
    return quantize(f(q * 2.0 ** -in_frac), out_frac)


def lut_apply(lut: np.ndarray, q) -> np.ndarray:
    """Apply an int8[256] table to int8 values."""
    return lut[np.asarray(q, dtype=np.int16) + 128]
