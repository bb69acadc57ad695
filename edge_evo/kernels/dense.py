"""Population forward passes of int8 MLPs on a shared batch (the reference integer semantics).

Every genome of the population sees the same batch, as in GENREG and in batched ES. The integer
kernels are the source of truth; other engines (kernels/engines.py) must be bit-identical.
Explicit np.int32 casts keep Numba from widening accumulators to int64 (the C twin is int32).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(inline="always", cache=True)
def requant_sat8(acc, shift):
    """rshift_round then saturate to [-127, 127] (the contract's single requantization rule)."""
    if shift > 0:
        acc = (acc + np.int32(1 << (shift - 1))) >> np.int32(shift)
    if acc > 127:
        acc = np.int32(127)
    elif acc < -127:
        acc = np.int32(-127)
    return acc


@njit(inline="always", cache=True)
def neuron_acc(W, b, X, p, xp, n, o, bias_shift):
    """W[p,o,:] . X[xp,n,:] + (b[p,o] << bias_shift) in int32: one neuron's accumulator."""
    acc = np.int32(b[p, o]) << np.int32(bias_shift)
    for j in range(W.shape[2]):
        acc += np.int32(W[p, o, j]) * np.int32(X[xp, n, j])
    return acc


@njit(parallel=True, cache=True)
def dense_hidden_int8(W, b, X, bias_shift, out_shift, lut, out):
    """out[p, n, o] = lut[sat8(rshift_round(W[p,o,:] . X[xp,n,:] + (b[p,o] << bias_shift), out_shift)) + 128].

    W int8 [P, O, I]; b int8 [P, O]; X int8 [1 or P, B, I]; out int8 [P, B, O].
    """
    P, O, _ = W.shape
    shared = X.shape[0] == 1
    for p in prange(P):
        xp = np.int64(0) if shared else np.int64(p)
        for n in range(X.shape[1]):
            for o in range(O):
                out[p, n, o] = lut[requant_sat8(neuron_acc(W, b, X, p, xp, n, o, bias_shift), out_shift) + 128]


@njit(parallel=True, cache=True)
def dense_output_int8(W, b, X, bias_shift, out):
    """out[p, n, o] = W[p,o,:] . X[xp,n,:] + (b[p,o] << bias_shift)   (int32 logits)."""
    P, O, _ = W.shape
    shared = X.shape[0] == 1
    for p in prange(P):
        xp = np.int64(0) if shared else np.int64(p)
        for n in range(X.shape[1]):
            for o in range(O):
                out[p, n, o] = neuron_acc(W, b, X, p, xp, n, o, bias_shift)
