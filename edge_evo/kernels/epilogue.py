"""Integer epilogue of GEMM engines, reading the GEMM's [B, P*O] layout directly.

A GEMM of all genomes at once, ``X [B, I] @ W1^T [I, P*O]``, leaves sample-major products; the
population layout is genome-major [P, B, O]. Fusing that transpose into the epilogue (bias,
requantize, LUT of models/mlp.py) saves a full pass over the accumulator. Values are exact
integers (int32, or float32 holding integers below 2**24), so the cast is exact.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .dense import requant_sat8


@njit(parallel=True, cache=True)
def bias_requant_lut_bt(acc, b, bias_shift, out_shift, lut, out):
    """acc [B, P*O] (int32 or integer-valued float32) -> out int8 [P, B, O] (hidden layer)."""
    P, B, O = out.shape
    for p in prange(P):
        for n in range(B):
            for o in range(O):
                a = np.int32(acc[n, p * O + o]) + (np.int32(b[p, o]) << np.int32(bias_shift))
                out[p, n, o] = lut[requant_sat8(a, out_shift) + 128]


@njit(parallel=True, cache=True)
def bias_only_bt(acc, b, bias_shift, out):
    """acc [B, P*O] -> int32 logits [P, B, O] (a one-layer model)."""
    P, B, O = out.shape
    for p in prange(P):
        for n in range(B):
            for o in range(O):
                out[p, n, o] = np.int32(acc[n, p * O + o]) + (np.int32(b[p, o]) << np.int32(bias_shift))
