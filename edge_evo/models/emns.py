"""EMNS network (seed 000, Karahan 2025, "Evolvable Modular Neural Systems", sections 3.1-3.2).

Each non-input neuron j has five aggregation coefficients ``a`` and five activation coefficients
``b``; each synapse i->j has a weight ``w``, a bias and a gain. Float equations (the clipping is
the one of the public code, theomgdev/EMNS ``lib_and_demo.py``)::

    s_ij = clip(g_ij * w_ij * y_i + bias_ij, -10, 10)                       # synapse (3.2)
    z_j  = clip(a_lin sum s + a_quad sum s^2 + a_sqrt sum sqrt|s|
                + a_sin sum sin s + a_gauss sum exp(-s^2), -5, 5)          # aggregation (3.1)
    y_j  = clip(sum_k b_k h_k(clip(z_j, -15, 15)), -5, 5),  h = tanh, sigmoid, relu, swish, linear

The network output is the ``y`` of the last layer. Parameters per neuron: 10 + 3 * fan_in
([3, 8, 5, 1] has 347).

Variable topology uses a fixed **maximum** layout (``max_dims``) with active masks: ``nmask`` (one
byte per non-input neuron) and ``cmask`` (one byte per synapse). Growth flips mask bits; an inactive
synapse contributes nothing at all (not even ``exp(-0^2) = 1`` to the Gaussian sum).

Flat genome order, per layer l = 1..L: ``agg[l]`` [n_out, 5], ``act[l]`` [n_out, 5], ``w[l]``,
``bias[l]``, ``gain[l]`` (each [n_out, n_in] row-major). RNG indices use this flat index.

Integer mode (``VAL_FRAC`` = 11, layer signals ``Y_FRAC`` = 4)::

    values     int16 Q11 (clip +-10 = +-20480);  resistance uint8 Q0.8 (r = r_q / 256)
    x, y       int8 Q4 (+-7.9; y in +-5 = +-80)
    gw         = rshift_round(g * w, 11)                                  int32 Q11
    s          = clip(rshift_round(gw * y_i, 4) + bias, +-20480)           int32 Q11
    S_lin     += s;   S_quad += rshift_round(s * s, 11)                    int32 Q11
    q          = requantize(s, 11 - 3)                                     int8 Q3 (LUT index)
    S_sqrt    += SQRT[q];  S_sin += SIN[q];  S_gauss += GAUSS[q]           Q5, Q7, Q7 tables
    z          = sum_k rshift_round(int64(a_k) * S_k, frac(S_k))           int64 -> Q11, clip +-10240
    y          = MIX_j[requantize(z, 11 - 4) + 128]                        int8 Q4
    MIX_j[q]   = clip(sum_k rshift_round(int64(b_k) * H_k[q], 11 + hfrac_k - 4), +-80)

The square term is an integer multiply (x^2 reaches 100, which no int8 table holds). ``MIX_j`` is
the neuron's evolved activation mixture compiled into one int8 table from the integer basis tables
``H_k`` (tanh, sigmoid: Q4 -> Q7; relu, swish, linear: Q4 -> Q4), so a C twin rebuilds it exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import make_lut, quantize

VAL_FRAC = 11
VAL_MAX = 10 * (1 << VAL_FRAC)            # +-10 in Q11
Y_FRAC = 4
S_IDX_FRAC = 3
Z_MAX = 5 * (1 << VAL_FRAC)               # +-5 in Q11
Y_MAX = 5 * (1 << Y_FRAC)                 # +-5 in Q4
AGG_NAMES = ("linear", "square", "sqrt_abs", "sin", "gauss")
ACT_NAMES = ("tanh", "sigmoid", "relu", "swish", "linear")
ACT_FRACS = (7, 7, 4, 4, 4)               # output frac of each activation basis table
AGG_FRACS = (VAL_FRAC, VAL_FRAC, 5, 7, 7)  # frac of each aggregation sum S_k
MAX_FAN_IN = 4096                         # keeps S_quad (<= fan_in * 204800) below 2^31


def basis_tables() -> tuple[np.ndarray, np.ndarray]:
    """(agg tables int8 [3, 256]: sqrt_abs Q3->Q5, sin Q3->Q7, gauss Q3->Q7;
    act tables int8 [5, 256]: Q4 -> ACT_FRACS)."""
    agg = np.stack([make_lut("sqrt_abs", S_IDX_FRAC, 5), make_lut("sin", S_IDX_FRAC, 7),
                    make_lut("gauss", S_IDX_FRAC, 7)])
    act = np.stack([make_lut(n, Y_FRAC, f) for n, f in zip(ACT_NAMES, ACT_FRACS)])
    return agg, act


@dataclass(frozen=True)
class EMNSSpec:
    """``dims``: initial active sizes; ``max_dims``: the allocated layout (None = dims).
    Input and output sizes cannot grow. ``max_connections``: cap on active synapses (None = all)."""
    dims: tuple[int, ...]
    max_dims: tuple[int, ...] | None = None
    max_connections: int | None = None

    def __post_init__(self):
        dims = tuple(int(d) for d in self.dims)
        object.__setattr__(self, "dims", dims)
        if len(dims) < 2 or min(dims) < 1:
            raise ValueError(f"dims must list >= 2 positive layer sizes, got {dims}")
        mx = dims if self.max_dims is None else tuple(int(d) for d in self.max_dims)
        object.__setattr__(self, "max_dims", mx)
        if len(mx) != len(dims):
            raise ValueError(f"max_dims {mx} must have as many layers as dims {dims}")
        if mx[0] != dims[0] or mx[-1] != dims[-1]:
            raise ValueError("input and output sizes cannot grow: max_dims must equal dims at both ends")
        if any(m < d for m, d in zip(mx, dims)):
            raise ValueError(f"max_dims {mx} must be >= dims {dims} layer by layer")
        if max(mx[:-1]) > MAX_FAN_IN:
            raise ValueError(f"fan-in above {MAX_FAN_IN} could overflow the int32 sums; use fewer inputs")
        n0 = sum(dims[l] * dims[l + 1] for l in range(len(dims) - 1))
        if self.max_connections is not None and self.max_connections < n0:
            raise ValueError(f"max_connections={self.max_connections} is below the {n0} connections of "
                             f"the initial dense network {dims}; raise it or shrink dims")

    # ----------------------------------------------------------------- layout
    @property
    def n_layers(self) -> int:
        return len(self.dims) - 1

    def layout(self) -> np.ndarray:
        """int64 [L, 9]: n_in, n_out, off_agg, off_act, off_w, off_bias, off_gain, off_conn, off_neuron."""
        rows, off, coff, noff = [], 0, 0, 0
        for l in range(self.n_layers):
            ni, no = self.max_dims[l], self.max_dims[l + 1]
            nc = ni * no
            rows.append((ni, no, off, off + 5 * no, off + 10 * no, off + 10 * no + nc,
                         off + 10 * no + 2 * nc, coff, noff))
            off += 10 * no + 3 * nc
            coff += nc
            noff += no
        return np.array(rows, dtype=np.int64)

    @property
    def n_params(self) -> int:
        """Allocated parameters (maximum layout)."""
        return int(sum(10 * self.max_dims[l + 1] + 3 * self.max_dims[l] * self.max_dims[l + 1]
                       for l in range(self.n_layers)))

    @property
    def n_neurons(self) -> int:
        return int(sum(self.max_dims[1:]))

    @property
    def n_conn(self) -> int:
        return int(sum(self.max_dims[l] * self.max_dims[l + 1] for l in range(self.n_layers)))

    def to_dict(self) -> dict:
        return {"model": "emns", "dims": list(self.dims), "max_dims": list(self.max_dims),
                "max_connections": self.max_connections}

    @classmethod
    def from_dict(cls, d: dict) -> "EMNSSpec":
        return cls(tuple(d["dims"]), tuple(d["max_dims"]), d.get("max_connections"))

    # ----------------------------------------------------------------- masks
    def initial_masks(self) -> tuple[np.ndarray, np.ndarray]:
        """(nmask uint8 [n_neurons], cmask uint8 [n_conn]) of the dense initial network ``dims``."""
        nmask = np.zeros(self.n_neurons, dtype=np.uint8)
        cmask = np.zeros(self.n_conn, dtype=np.uint8)
        for l, row in enumerate(self.layout()):
            ni, no, coff, noff = int(row[0]), int(row[1]), int(row[7]), int(row[8])
            nmask[noff:noff + self.dims[l + 1]] = 1
            c = cmask[coff:coff + ni * no].reshape(no, ni)
            c[:self.dims[l + 1], :self.dims[l]] = 1
        return nmask, cmask

    def param_mask(self, nmask: np.ndarray, cmask: np.ndarray) -> np.ndarray:
        """bool [..., n_params]: parameters of active neurons and synapses (only those mutate)."""
        nmask = np.asarray(nmask).astype(bool)
        cmask = np.asarray(cmask).astype(bool)
        lead = nmask.shape[:-1]
        out = np.zeros(lead + (self.n_params,), dtype=bool)
        for row in self.layout():
            ni, no, oa, oc, ow, ob, og, coff, noff = (int(v) for v in row)
            nm = nmask[..., noff:noff + no]
            out[..., oa:oa + 5 * no] = np.repeat(nm, 5, axis=-1)
            out[..., oc:oc + 5 * no] = np.repeat(nm, 5, axis=-1)
            cm = cmask[..., coff:coff + ni * no]
            for o in (ow, ob, og):
                out[..., o:o + ni * no] = cm
        return out

    def n_active_params(self, nmask, cmask) -> int:
        return int(self.param_mask(nmask, cmask).sum())

    def active_dims(self, nmask) -> tuple[int, ...]:
        lay = self.layout()
        return (self.dims[0],) + tuple(int(np.asarray(nmask)[int(r[8]):int(r[8]) + int(r[1])].sum()) for r in lay)


# --------------------------------------------------------------------- initial values
def initial_genome(spec: EMNSSpec, weight_std: float, u_res: np.ndarray, g_w: np.ndarray):
    """Float (values, resistances) of the whole allocated layout (seed-facts: agg linear (1, 0.3),
    other agg (0, U(0.05, 0.1)); act tanh (1, 0.3), others (0, U(0.05, 0.15)); weight
    (N(0, weight_std), 0.2); bias (0, 0.1); gain (1, 0.2)). ``u_res`` U(0, 1) and ``g_w`` N(0, 1)
    per flat index come from the counter RNG (the caller)."""
    v = np.zeros(spec.n_params)
    r = np.zeros(spec.n_params)
    for row in spec.layout():
        ni, no, oa, oc, ow, ob, og, _, _ = (int(x) for x in row)
        for o in range(no):
            a0, c0 = oa + 5 * o, oc + 5 * o
            v[a0], r[a0] = 1.0, 0.3
            r[a0 + 1:a0 + 5] = 0.05 + 0.05 * u_res[a0 + 1:a0 + 5]
            v[c0], r[c0] = 1.0, 0.3
            r[c0 + 1:c0 + 5] = 0.05 + 0.10 * u_res[c0 + 1:c0 + 5]
        n = ni * no
        v[ow:ow + n] = weight_std * g_w[ow:ow + n]
        r[ow:ow + n] = 0.2
        r[ob:ob + n] = 0.1
        v[og:og + n] = 1.0
        r[og:og + n] = 0.2
    return v, r


def to_int(values: np.ndarray, resist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float (values, resistances) -> (int16 Q11, uint8 Q0.8), round half up, clipped."""
    vq = np.clip(np.floor(np.asarray(values, dtype=np.float64) * (1 << VAL_FRAC) + 0.5), -VAL_MAX, VAL_MAX)
    rq = np.clip(np.floor(np.asarray(resist, dtype=np.float64) * 256 + 0.5), 0, 255)
    return vq.astype(np.int16), rq.astype(np.uint8)


def to_float(values_q: np.ndarray, resist_q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return values_q.astype(np.float64) / (1 << VAL_FRAC), resist_q.astype(np.float64) / 256.0


def quantize_inputs(X) -> np.ndarray:
    """Float inputs -> int8 Q4 (range +-7.94; standardise features first)."""
    X = np.asarray(X, dtype=np.float64)
    if not np.all(np.isfinite(X)):
        raise ValueError("inputs contain NaN or inf: clean the data before quantizing")
    return quantize(X, Y_FRAC)


# --------------------------------------------------------------------- float forward (NumPy)
def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def forward_float(spec: EMNSSpec, values, nmask, cmask, X, return_activity: bool = False):
    """Float forward of a population: values [P, n] -> outputs [P, B, n_out] (float64).

    With ``return_activity`` also returns y of every neuron [P, B, n_neurons] (0 when inactive)."""
    V = np.atleast_2d(np.asarray(values, dtype=np.float64))
    nm = np.atleast_2d(nmask).astype(bool)
    cm = np.atleast_2d(cmask).astype(bool)
    P = V.shape[0]
    X = np.asarray(X, dtype=np.float64)
    y = np.broadcast_to(X, (P,) + X.shape)             # [P, B, n_in]
    acts = []
    for row in spec.layout():
        ni, no, oa, oc, ow, ob, og, coff, noff = (int(x) for x in row)
        a = V[:, oa:oa + 5 * no].reshape(P, no, 5)
        b = V[:, oc:oc + 5 * no].reshape(P, no, 5)
        W = V[:, ow:ow + ni * no].reshape(P, no, ni)
        Bi = V[:, ob:ob + ni * no].reshape(P, no, ni)
        G = V[:, og:og + ni * no].reshape(P, no, ni)
        m = cm[:, coff:coff + ni * no].reshape(P, 1, no, ni)
        s = np.clip((G * W)[:, None] * y[:, :, None, :] + Bi[:, None], -10, 10)   # [P, B, no, ni]
        feats = (s, s * s, np.sqrt(np.abs(s)), np.sin(s), np.exp(-s * s))
        z = sum(a[:, None, :, k] * np.where(m, f, 0.0).sum(-1) for k, f in enumerate(feats))
        z = np.clip(np.clip(z, -5, 5), -15, 15)
        sz = _sig(z)
        hs = (np.tanh(z), sz, np.maximum(z, 0), z * sz, z)
        out = np.clip(sum(b[:, None, :, k] * h for k, h in enumerate(hs)), -5, 5)
        y = np.where(nm[:, None, noff:noff + no], out, 0.0)
        acts.append(y)
    if return_activity:
        return y, np.concatenate(acts, axis=-1)
    return y


# --------------------------------------------------------------------- integer mixture tables
def mixture_lut(act_q: np.ndarray, act_tables: np.ndarray | None = None) -> np.ndarray:
    """Compile activation coefficients (int16 Q11 [..., 5]) into int8 tables [..., 256] (Q4 -> Q4)."""
    if act_tables is None:
        act_tables = basis_tables()[1]
    b = np.asarray(act_q, dtype=np.int64)[..., :, None]            # [..., 5, 1]
    H = act_tables.astype(np.int64)                                 # [5, 256]
    sh = np.array([VAL_FRAC + f - Y_FRAC for f in ACT_FRACS], dtype=np.int64)[:, None]
    t = (b * H + (np.int64(1) << (sh - 1))) >> sh
    return np.clip(t.sum(axis=-2), -Y_MAX, Y_MAX).astype(np.int8)


__all__ = ["EMNSSpec", "VAL_FRAC", "VAL_MAX", "Y_FRAC", "basis_tables", "initial_genome", "to_int", "to_float",
           "quantize_inputs", "forward_float", "mixture_lut", "AGG_NAMES", "ACT_NAMES"]


@dataclass
class EMNSPopulation:
    """Genomes to evaluate: values [P, n] (int16 Q11 or float32), resist [P, n] (uint8 Q0.8 or
    float32), nmask [P, n_neurons], cmask [P, n_conn] (uint8), luts [P, n_neurons, 256] (int8 mode)."""
    values: np.ndarray
    resist: np.ndarray
    nmask: np.ndarray
    cmask: np.ndarray
    luts: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(self.values.shape[0])


__all__ += ["EMNSPopulation"]
