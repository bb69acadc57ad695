"""Evolvable Neural Unit cell (Bertens & Lee 2019, arXiv:1912.07589, section 3): GRU-like gated
memory whose clamped output is fed back as input at the next step::

    a      = [x, y_prev, h, 1]                          (n_in + n_out + H + 1)
    u, q   = W_g a                                      (2 H gate pre-activations)
    z      = sigmoid(3 u)                               update gate
    r      = sigmoid(3 (q - 1))                         reset gate (closed at q = 0)
    c      = tanh(3 W_c [x, y_prev, r * h, 1])          candidate
    h'     = (1 - z) h + z c
    y      = clamp(W_o [h', 1], 0, 1)                   output, fed back next step

The gate input [x, y_prev, h, 1] is our reading of the seed's "GRU over [x, previous output, 1]".
float32, batched: parameters per offspring [P, ...], state per offspring x environment copy
[P, E, H]. NIR cannot express the gates: export ENUs to ONNX or C.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ENUSpec:
    n_in: int
    n_hidden: int = 32
    n_out: int = 1
    kind: str = "enu"

    def __post_init__(self):
        if min(self.n_in, self.n_hidden, self.n_out) < 1:
            raise ValueError(f"ENU sizes must be >= 1, got n_in={self.n_in} n_hidden={self.n_hidden} "
                             f"n_out={self.n_out}")

    @property
    def n_a(self) -> int:
        return self.n_in + self.n_out + self.n_hidden + 1

    def tensors(self) -> list[tuple[str, tuple[int, int]]]:
        H = self.n_hidden
        return [("W_g", (2 * H, self.n_a)), ("W_c", (H, self.n_a)), ("W_o", (self.n_out, H + 1))]

    @property
    def n_params(self) -> int:
        return sum(a * b for _, (a, b) in self.tensors())

    def offsets(self) -> dict[str, int]:
        out, pos = {}, 0
        for name, (a, b) in self.tensors():
            out[name] = pos
            pos += a * b
        return out

    # the spec protocol OpenES needs (shared with MLPSpec): fixed-point scale and fan-in per tensor
    def tensor_frac(self, name: str) -> int:
        return 7

    def fan_in(self, name: str) -> int:
        return dict(self.tensors())[name][1]

    @property
    def dims(self) -> tuple[int, int, int]:
        return (self.n_in, self.n_hidden, self.n_out)

    def unflatten(self, genomes: np.ndarray) -> dict[str, np.ndarray]:
        """[P, n_params] -> {name: [P, rows, cols]} views in the canonical order W_g, W_c, W_o."""
        g = np.atleast_2d(np.asarray(genomes))
        if g.dtype != np.float64:
            g = g.astype(np.float32)
        if g.shape[1] != self.n_params:
            raise ValueError(f"ENU genome length {g.shape[1]} != {self.n_params} parameters of {self}")
        out, pos = {}, 0
        for name, (a, b) in self.tensors():
            out[name] = g[:, pos:pos + a * b].reshape(-1, a, b)
            pos += a * b
        return out


def _sigmoid(x):
    one = x.dtype.type(1.0)
    return one / (one + np.exp(-x))


def enu_step(spec: ENUSpec, params: dict, x: np.ndarray, y_prev: np.ndarray, h: np.ndarray, noise=None):
    """One step for P offspring x E copies: x [P, E, n_in], y_prev [P, E, n_out], h [P, E, H] -> (y, h').

    Computes in the dtype of ``h`` (float32, or float64 for the Brian2 parity reference).
    ``noise`` [P or 1, E, n_out] is added to the output gate before the clamp (seed: N(0, 0.01),
    so units sharing one genome behave slightly differently)."""
    P, E = h.shape[:2]
    if x.shape != (P, E, spec.n_in) or y_prev.shape != (P, E, spec.n_out) or h.shape[2] != spec.n_hidden:
        raise ValueError(f"ENU step shapes: x {x.shape}, y_prev {y_prev.shape}, h {h.shape} do not match "
                         f"[P, E, {spec.n_in}], [P, E, {spec.n_out}], [P, E, {spec.n_hidden}]")
    H = spec.n_hidden
    dt = h.dtype.type
    W = {k: v.astype(h.dtype, copy=False) for k, v in params.items()}
    one = np.ones((P, E, 1), h.dtype)
    a = np.concatenate([x, y_prev, h, one], axis=2).astype(h.dtype)
    g = np.einsum("pka,pea->pek", W["W_g"], a)
    z = _sigmoid(dt(3.0) * g[..., :H])
    r = _sigmoid(dt(3.0) * (g[..., H:] - dt(1.0)))
    ac = np.concatenate([x, y_prev, r * h, one], axis=2).astype(h.dtype)
    c = np.tanh(dt(3.0) * np.einsum("pka,pea->pek", W["W_c"], ac))
    h2 = ((dt(1.0) - z) * h + z * c).astype(h.dtype)
    o = np.einsum("pkh,peh->pek", W["W_o"], np.concatenate([h2, one], axis=2))
    if noise is not None:
        o = o + noise
    y = np.clip(o, 0.0, 1.0)
    return y.astype(h.dtype), h2


def enu_run(spec: ENUSpec, genomes: np.ndarray, xs: np.ndarray):
    """Run T steps from zero state: xs [T, P, E, n_in] -> outputs [T, P, E, n_out], final h [P, E, H]."""
    params = spec.unflatten(genomes)
    xs = np.asarray(xs, dtype=np.float32)
    if xs.ndim != 4:
        raise ValueError(f"xs must be [T, P, E, {spec.n_in}], got {xs.shape}")
    T, P, E, _ = xs.shape
    h = np.zeros((P, E, spec.n_hidden), np.float32)
    y = np.zeros((P, E, spec.n_out), np.float32)
    ys = np.empty((T, P, E, spec.n_out), np.float32)
    for t in range(T):
        y, h = enu_step(spec, params, xs[t], y, h)
        ys[t] = y
    return ys, h


__all__ = ["ENUSpec", "enu_step", "enu_run"]
