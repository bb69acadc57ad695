"""Numba kernels of the integer EMNS network (seed 000; equations in ``edge_evo/models/emns.py``).

* ``forward_int8``: population forward pass, one (genome, sample) pair per iteration.
* ``build_luts``: every neuron's activation mixture compiled into one int8 table.
* ``mutate_int``: the resistance-modulated universal mutation of seed 000 eq. (2.1)-(2.2),
  integer form (``strategies/emns.py`` docstring), in place, counter RNG.

All integer sums are int32 unless stated; the products with evolved coefficients are int64
(SMULL on a Cortex-M) so a C twin matches bit for bit.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .. import rng

_VF = 11          # VAL_FRAC
_YF = 4           # Y_FRAC
_SF = 3           # LUT index frac of synapse outputs
_VMAX = 10 << _VF
_ZMAX = 5 << _VF
_YMAX = 5 << _YF


@njit(inline="always", cache=True)
def _rsr(a, s):
    # rshift_round for int64, s >= 1
    return (a + (np.int64(1) << np.int64(s - 1))) >> np.int64(s)


@njit(cache=True)
def _forward_one(vals, nmask, cmask, luts, x, layout, agg_t, y_all, buf_in, buf_out):
    """One genome, one sample. Writes every neuron's y (int8 Q4) to y_all; returns nothing."""
    n0 = x.shape[0]
    for i in range(n0):
        buf_in[i] = np.int32(x[i])
    for l in range(layout.shape[0]):
        ni = layout[l, 0]
        no = layout[l, 1]
        oa = layout[l, 2]
        ow = layout[l, 4]
        ob = layout[l, 5]
        og = layout[l, 6]
        coff = layout[l, 7]
        noff = layout[l, 8]
        for o in range(no):
            if nmask[noff + o] == 0:
                buf_out[o] = 0
                y_all[noff + o] = 0
                continue
            s_lin = np.int32(0)
            s_quad = np.int32(0)
            s_sqrt = np.int32(0)
            s_sin = np.int32(0)
            s_gau = np.int32(0)
            base = o * ni
            for i in range(ni):
                if cmask[coff + base + i] == 0:
                    continue
                gw = np.int32((np.int32(vals[og + base + i]) * np.int32(vals[ow + base + i])
                               + np.int32(1 << (_VF - 1))) >> np.int32(_VF))
                s = ((gw * buf_in[i] + np.int32(1 << (_YF - 1))) >> np.int32(_YF)) + np.int32(vals[ob + base + i])
                s = min(max(s, np.int32(-_VMAX)), np.int32(_VMAX))
                s_lin += s
                s_quad += (s * s + np.int32(1 << (_VF - 1))) >> np.int32(_VF)
                q = (s + np.int32(1 << (_VF - _SF - 1))) >> np.int32(_VF - _SF)
                q = min(max(q, np.int32(-127)), np.int32(127)) + 128
                s_sqrt += np.int32(agg_t[0, q])
                s_sin += np.int32(agg_t[1, q])
                s_gau += np.int32(agg_t[2, q])
            a0 = oa + 5 * o
            z = (_rsr(np.int64(vals[a0]) * np.int64(s_lin), _VF)
                 + _rsr(np.int64(vals[a0 + 1]) * np.int64(s_quad), _VF)
                 + _rsr(np.int64(vals[a0 + 2]) * np.int64(s_sqrt), 5)
                 + _rsr(np.int64(vals[a0 + 3]) * np.int64(s_sin), 7)
                 + _rsr(np.int64(vals[a0 + 4]) * np.int64(s_gau), 7))
            z = min(max(z, np.int64(-_ZMAX)), np.int64(_ZMAX))
            zq = np.int32(_rsr(z, _VF - _YF))          # |z| <= 80 after the clip: no saturation needed
            y = np.int32(luts[noff + o, zq + 128])
            buf_out[o] = y
            y_all[noff + o] = y
        for o in range(no):
            buf_in[o] = buf_out[o]


@njit(parallel=True, cache=True)
def forward_int8_par(vals, nmask, cmask, luts, X, layout, agg_t, n_out, y_all):
    """vals int16 [P, n]; nmask/cmask uint8 [P, .]; luts int8 [P, n_neurons, 256]; X int8 [B, n_in];
    y_all int8 [P, B, n_neurons] (out). Returns int8 [P, B, n_out] = last layer's y (Q4)."""
    P = vals.shape[0]
    B = X.shape[0]
    nmax = 1
    for l in range(layout.shape[0]):
        nmax = max(nmax, layout[l, 0], layout[l, 1])
    L = layout.shape[0]
    last = layout[L - 1, 8]
    out = np.empty((P, B, n_out), dtype=np.int8)
    for t in prange(P * B):
        p = t // B
        b = t - p * B
        buf_in = np.empty(nmax, dtype=np.int32)
        buf_out = np.empty(nmax, dtype=np.int32)
        _forward_one(vals[p], nmask[p], cmask[p], luts[p], X[b], layout, agg_t, y_all[p, b], buf_in, buf_out)
        for o in range(n_out):
            out[p, b, o] = y_all[p, b, last + o]
    return out


@njit(cache=True)
def forward_int8_ser(vals, nmask, cmask, luts, X, layout, agg_t, n_out, y_all):
    """vals int16 [P, n]; nmask/cmask uint8 [P, .]; luts int8 [P, n_neurons, 256]; X int8 [B, n_in];
    y_all int8 [P, B, n_neurons] (out). Returns int8 [P, B, n_out] = last layer's y (Q4)."""
    P = vals.shape[0]
    B = X.shape[0]
    nmax = 1
    for l in range(layout.shape[0]):
        nmax = max(nmax, layout[l, 0], layout[l, 1])
    L = layout.shape[0]
    last = layout[L - 1, 8]
    out = np.empty((P, B, n_out), dtype=np.int8)
    for t in range(P * B):
        p = t // B
        b = t - p * B
        buf_in = np.empty(nmax, dtype=np.int32)
        buf_out = np.empty(nmax, dtype=np.int32)
        _forward_one(vals[p], nmask[p], cmask[p], luts[p], X[b], layout, agg_t, y_all[p, b], buf_in, buf_out)
        for o in range(n_out):
            out[p, b, o] = y_all[p, b, last + o]
    return out


def forward_int8(vals, nmask, cmask, luts, X, layout, agg_t, n_out, y_all):
    """Dispatch: threads only pay off for big calls (P * B * n_params > 2M); small ones run serially."""
    work = vals.shape[0] * X.shape[0] * vals.shape[1]
    f = forward_int8_par if work > 2_000_000 else forward_int8_ser
    return f(vals, nmask, cmask, luts, X, layout, agg_t, n_out, y_all)


@njit(cache=True)
def build_luts(vals, layout, act_t, act_shift, out):
    """out[p, neuron] = mixture table of that neuron's activation coefficients (int8 Q4 -> Q4)."""
    P = vals.shape[0]
    for p in range(P):
        for l in range(layout.shape[0]):
            no = layout[l, 1]
            oc = layout[l, 3]
            noff = layout[l, 8]
            for o in range(no):
                for q in range(256):
                    acc = np.int64(0)
                    for k in range(5):
                        acc += _rsr(np.int64(vals[p, oc + 5 * o + k]) * np.int64(act_t[k, q]), act_shift[k])
                    acc = min(max(acc, np.int64(-_YMAX)), np.int64(_YMAX))
                    out[p, noff + o, q] = np.int8(acc)


@njit(cache=True)
def mutate_int(vals, res, pmask, keys, mu_q, val_k, res_k, r_max_q):
    """In place, genome p with stream key keys[p], every j with pmask[p, j]:

        h_c     = u32(key, 4 j + c), c = 0..3;   w = 256 - r_q
        m_v     = rsr(mu_q * w * val_k, 32);      theta += (gauss(h_0) * m_v + (h_1 & 0xFFFF)) >> 16
        m_r     = rsr(mu_q * w * res_k, 32);      r_q   += (gauss(h_2) * m_r + (h_3 & 0xFFFFFF)) >> 24
        clip theta to +-VAL_MAX, r_q to [0, r_max_q]     (int64 math; >> floors = stochastic rounding)
    """
    P, n = vals.shape
    for p in range(P):
        k = keys[p]
        for j in range(n):
            if pmask[p, j] == 0:
                continue
            w = np.int64(256) - np.int64(res[p, j])
            h0 = rng.u32(k, np.uint32(4 * j))
            h1 = rng.u32(k, np.uint32(4 * j + 1))
            h2 = rng.u32(k, np.uint32(4 * j + 2))
            h3 = rng.u32(k, np.uint32(4 * j + 3))
            mv = _rsr(np.int64(mu_q) * w * np.int64(val_k), 32)
            d = (np.int64(rng.gauss(h0)) * mv + np.int64(h1 & np.uint32(0xFFFF))) >> np.int64(16)
            v = min(max(np.int64(vals[p, j]) + d, np.int64(-_VMAX)), np.int64(_VMAX))
            vals[p, j] = np.int16(v)
            mr = _rsr(np.int64(mu_q) * w * np.int64(res_k), 32)
            dr = (np.int64(rng.gauss(h2)) * mr + np.int64(h3 & np.uint32(0xFFFFFF))) >> np.int64(24)
            r = min(max(np.int64(res[p, j]) + dr, np.int64(0)), np.int64(r_max_q))
            res[p, j] = np.uint8(r)


@njit(cache=True)
def mutate_float(vals, res, pmask, keys, mu, res_rate, r_max):
    """Float twin: N(0, 1) = gauss(h_0) / 147.8006 from the same words; no rounding."""
    P, n = vals.shape
    inv = 1.0 / rng.GAUSS_STD
    for p in range(P):
        k = keys[p]
        for j in range(n):
            if pmask[p, j] == 0:
                continue
            w = 1.0 - res[p, j]
            g0 = rng.gauss(rng.u32(k, np.uint32(4 * j))) * inv
            g2 = rng.gauss(rng.u32(k, np.uint32(4 * j + 2))) * inv
            vals[p, j] = min(max(vals[p, j] + g0 * mu * w, -10.0), 10.0)
            res[p, j] = min(max(res[p, j] + g2 * mu * res_rate * w, 0.0), r_max)
