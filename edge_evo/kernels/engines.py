"""Forward engines for a whole population. All integer engines are bit-identical to
``numba`` (the reference loops of kernels/dense.py); tests/test_engines.py proves it.

* ``numba``: reference integer loops, parallel over genomes.
* ``blas``:  layer 1 of every genome as ONE float32 GEMM, [B, I] x [I, P*H]. int8 x int8 products
  summed over <= 1040 terms stay below 2**24, so float32 holds them exactly; then the integer
  epilogue (bias, requantize, LUT) and the remaining (small) layers in the reference loops.
"""
from __future__ import annotations

import numpy as np

from .dense import dense_hidden_int8, dense_output_int8, bias_requant_lut


def _as_batch(X):
    return X[None] if X.ndim == 2 else X


def forward_int8_numba(layers, X, shifts, lut):
    """layers: list of (W [P,O,I] int8, b [P,O] int8); X int8 [B, I]; shifts: list of (bias_shift, out_shift)."""
    h = _as_batch(X)
    P = layers[0][0].shape[0]
    for l, (W, b) in enumerate(layers):
        B = h.shape[1]
        O = W.shape[1]
        if l < len(layers) - 1:
            out = np.empty((P, B, O), dtype=np.int8)
            dense_hidden_int8(W, b, h, shifts[l][0], shifts[l][1], lut, out)
        else:
            out = np.empty((P, B, O), dtype=np.int32)
            dense_output_int8(W, b, h, shifts[l][0], out)
        h = out
    return h


def forward_int8_blas(layers, X, shifts, lut):
    W1, b1 = layers[0]
    P, H, I = W1.shape
    B = X.shape[0]
    if len(layers) == 1:
        return forward_int8_numba(layers, X, shifts, lut)
    prod = X.astype(np.float32) @ W1.reshape(P * H, I).astype(np.float32).T   # [B, P*H], exact
    acc = np.ascontiguousarray(prod.reshape(B, P, H).transpose(1, 0, 2)).astype(np.int32)
    h = np.empty((P, B, H), dtype=np.int8)
    bias_requant_lut(acc, b1, shifts[0][0], shifts[0][1], lut, h)
    rest = layers[1:]
    out = h
    for l, (W, b) in enumerate(rest, start=1):
        O = W.shape[1]
        if l < len(layers) - 1:
            nxt = np.empty((P, B, O), dtype=np.int8)
            dense_hidden_int8(W, b, out, shifts[l][0], shifts[l][1], lut, nxt)
        else:
            nxt = np.empty((P, B, O), dtype=np.int32)
            dense_output_int8(W, b, out, shifts[l][0], nxt)
        out = nxt
    return out


INT8_ENGINES = {"numba": forward_int8_numba, "blas": forward_int8_blas}


def forward_float32(layers, X, act):
    """Float research mode: layer 1 of all genomes as one GEMM, then batched matmuls."""
    W1, b1 = layers[0]
    P, H, I = W1.shape
    B = X.shape[0]
    z = (X.astype(np.float32, copy=False) @ W1.reshape(P * H, I).T).reshape(B, P, H).transpose(1, 0, 2)
    z = z + b1[:, None, :]
    h = act(z) if len(layers) > 1 else z
    for l, (W, b) in enumerate(layers[1:], start=1):
        z = np.matmul(h, W.transpose(0, 2, 1)) + b[:, None, :]
        h = act(z) if l < len(layers) - 1 else z
    return h.astype(np.float32, copy=False)
