"""Forward engines for a whole population. All integer engines are bit-identical to
``numba`` (the reference loops of kernels/dense.py); tests/test_engines.py proves it.

* ``numba``: reference integer loops, parallel over genomes.
* ``blas``:  layer 1 of every genome as ONE float32 GEMM, [B, I] x [I, P*H]. int8 x int8 products
  summed over <= 1040 terms stay below 2**24, so float32 holds them exactly; then the integer
  epilogue (bias, requantize, LUT) and the remaining (small) layers in the reference loops.
* ``ort``:   layer 1 as ONE onnxruntime integer GEMM (kernels/ort_gemm.py), same epilogue; inputs
  with negative values fall back to the float32 GEMM for layer 1.
* ``native``: every layer in C (kernels/native.py): AVX512-VNNI or AVX2 when the CPU has them,
  a portable loop otherwise; compiled on first use with the system compiler.
* ``auto``:  :func:`resolve_engine` picks the fastest exact engine available here.
"""
from __future__ import annotations

import numpy as np

import logging

from .dense import dense_hidden_int8, dense_output_int8
from .epilogue import bias_only_bt, bias_requant_lut_bt

log = logging.getLogger(__name__)


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


def _rest_layers(layers, h, shifts, lut):
    """Layers 2.. in the reference loops (they are small: fan-in = hidden width)."""
    P = layers[0][0].shape[0]
    B = h.shape[1]
    for l, (W, b) in enumerate(layers[1:], start=1):
        O = W.shape[1]
        if l < len(layers) - 1:
            nxt = np.empty((P, B, O), dtype=np.int8)
            dense_hidden_int8(W, b, h, shifts[l][0], shifts[l][1], lut, nxt)
        else:
            nxt = np.empty((P, B, O), dtype=np.int32)
            dense_output_int8(W, b, h, shifts[l][0], nxt)
        h = nxt
    return h


def _gemm_engine(layers, X, shifts, lut, products):
    """Layer 1 from products(W1, X) -> exact [B, P*H] products, then the integer epilogue."""
    W1, b1 = layers[0]
    P, H, I = W1.shape
    B = X.shape[0]
    prod = products(W1, X)
    if len(layers) == 1:
        out = np.empty((P, B, H), dtype=np.int32)
        bias_only_bt(prod, b1, shifts[0][0], out)
        return out
    h = np.empty((P, B, H), dtype=np.int8)
    bias_requant_lut_bt(prod, b1, shifts[0][0], shifts[0][1], lut, h)
    return _rest_layers(layers, h, shifts, lut)


# int8 x int8 summed over <= 1040 terms stays below 2**24: float32 holds every partial sum exactly
EXACT_F32_TERMS = 1040


def _blas_products(W1, X):
    P, H, I = W1.shape
    W = W1.reshape(P * H, I)
    if I <= EXACT_F32_TERMS:
        return X.astype(np.float32) @ W.astype(np.float32).T
    # wider fan-in (e.g. 100x100 images): exact float32 GEMMs over slices of <= 1040 inputs,
    # summed in int32
    acc = np.zeros((X.shape[0], P * H), dtype=np.int32)
    for k in range(0, I, EXACT_F32_TERMS):
        sl = slice(k, k + EXACT_F32_TERMS)
        acc += (X[:, sl].astype(np.float32) @ W[:, sl].astype(np.float32).T).astype(np.int32)
    return acc


def forward_int8_blas(layers, X, shifts, lut):
    return _gemm_engine(layers, X, shifts, lut, _blas_products)


def forward_int8_ort(layers, X, shifts, lut, threads=2):
    from . import ort_gemm

    if X.size and X.min() < 0:  # u8 operand needs x >= 0 (see ort_gemm); stay exact via BLAS
        return forward_int8_blas(layers, X, shifts, lut)
    return _gemm_engine(layers, X, shifts, lut, lambda W1, X_: ort_gemm.layer1_products(W1, X_, threads))


def forward_int8_native(layers, X, shifts, lut, threads=2):
    from . import native

    return native.forward_int8_native(layers, X, shifts, lut, threads=threads)


INT8_ENGINES = {"numba": forward_int8_numba, "blas": forward_int8_blas, "ort": forward_int8_ort,
                "native": forward_int8_native}
ENGINE_NAMES = tuple(INT8_ENGINES) + ("auto",)

# below this many (genome, sample) pairs, call overheads dominate: the reference loops win
SMALL_WORK = 1024
_AVAILABLE: dict = {}


def engine_available(name: str) -> bool:
    """Whether an int8 engine can run here (native: compiler; ort: onnxruntime). Cached."""
    if name not in _AVAILABLE:
        if name == "native":
            from . import native
            _AVAILABLE[name] = native.available()
        elif name == "ort":
            from . import ort_gemm
            _AVAILABLE[name] = ort_gemm.available()
        else:
            _AVAILABLE[name] = name in INT8_ENGINES
        if not _AVAILABLE[name]:
            log.info("engine %r is not available here", name)
    return _AVAILABLE[name]


def resolve_engine(name: str, P: int, B: int) -> str:
    """The concrete int8 engine for ``name``; ``auto`` picks the fastest exact one available.

    Order for ``auto`` (all are bit-identical to ``numba``): tiny workloads (P * B < SMALL_WORK)
    -> numba; else native (C kernel), else ort, else blas.
    """
    if name != "auto":
        if name not in INT8_ENGINES:
            raise ValueError(f"unknown engine {name!r}; choose one of {sorted(ENGINE_NAMES)}")
        return name
    if P * B < SMALL_WORK:
        return "numba"
    for cand in ("native", "ort"):
        if engine_available(cand):
            return cand
    return "blas"


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
