"""Numba kernels of the Evolvable Neural Unit cell (the equation is ``edge_evo.models.enu``).

Float32 kernel ``enu_cell_run``: P offspring x E environment copies x T steps, parallel over P::

    a  = [x, y_prev, h, 1];  u, q = W_g a;  z = sigmoid(3u);  r = sigmoid(3(q - 1))
    c  = tanh(3 W_c [x, y_prev, r*h, 1]);  h' = (1 - z) h + z c
    y  = clamp(gain * (W_o [h', 1] + noise), 0, 1)

``gain`` = 1 is ``models.enu.enu_run`` (tested equal within 2e-5 absolute on outputs and state);
``gain`` = g equals ``enu_run`` with W_o and the noise scaled by g, which is how it is computed (the
seed's IAF output is ``clamp(1000 * out, 0, 1)``). Inputs shared by every offspring are passed as
[T, 1, E, n_in] and read in place, never broadcast to P copies. The cell itself is
``enu_cells_step`` (all units of one genome, units along the vector axis), the one float32 cell of
the project: the ENU network kernel (``kernels/enu_net.py``) calls it for its synapse and neuron
ENUs.

Fixed-point kernel ``enu_cell_run_q`` (the device's view of the same cell)::

    activations x, y, h, r*h, c  int16 Q12 (A_FRAC)       W_g, W_c: int8 Q(f) of 3*W (the slope 3 folded in)
    W_o: int8 Q(f_o)                                       accumulators int32
    z = LUT_sigmoid[sat8(rshift_round(acc_u, f + 12 - 5))]          LUT in Q5 -> out Q7
    r = LUT_sigmoid[sat8(rshift_round(acc_q - 3 << (f+12), f + 7))]
    c = LUT_tanh[sat8(rshift_round(acc_c, f + 7))] << 5               Q7 -> Q12
    h' = h + rshift_round(z * (c - h), 7)                             (1 - z) h + z c with one product
    y = clamp(rshift_round(acc_o, f_o), 0, 4096)                      Q12, fed back

Every rounding is the project's ``rshift_round`` (round half up); the LUTs are
``fixedpoint.make_lut('sigmoid'|'tanh', 5, 7)``. ``quantize_enu`` turns a float genome into the
int8 tensors with a power-of-two frac per tensor chosen from its largest weight.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..fixedpoint import make_lut, quantize

A_FRAC = 12           # int16 activations and state: value = q / 4096
LUT_IN_FRAC = 5       # LUT input: 3u in [-4, 4), step 1/32
LUT_OUT_FRAC = 7      # LUT output: gate / candidate in [-1, 1), step 1/128
A_ONE = 1 << A_FRAC


def _check(spec, genomes, xs, noise):
    g = np.ascontiguousarray(genomes, dtype=np.float32)
    if g.ndim != 2 or g.shape[1] != spec.n_params:
        raise ValueError(f"genomes must be [P, {spec.n_params}] for {spec}, got {np.shape(genomes)}")
    x = np.asarray(xs, dtype=np.float32)
    P = g.shape[0]
    if x.ndim != 4 or x.shape[3] != spec.n_in or x.shape[1] not in (1, P):
        raise ValueError(f"xs must be [T, P={P} or 1, E, {spec.n_in}], got {x.shape}")
    T, _, E, _ = x.shape
    if noise is None:
        nz = np.zeros((1, 1, 1, spec.n_out), np.float32)
    else:
        nz = np.asarray(noise, dtype=np.float32)
        if nz.ndim != 4 or nz.shape[0] != T or nz.shape[1] not in (1, P) or nz.shape[2] != E \
                or nz.shape[3] != spec.n_out:
            raise ValueError(f"noise must be [T={T}, P or 1, E={E}, {spec.n_out}], got {nz.shape}")
    return g, x, nz, T, P, E


# ---------------------------------------------------------------- float32 cell
# Units along the fast axis: every gate is a row update ``G[k, :] += W[k, i] * A[i, :]`` that LLVM
# vectorises without reassociating any sum (fastmath off; each unit's sum runs bias first, then its
# inputs in order; weights exactly 0 are skipped, which changes no bit).
#
# exp(x) = 2^n e^r, n = round(x / ln 2), |r| <= ln(2)/2, e^r by its Taylor series to r^7 (remainder
# < 6e-9): plain arithmetic, so LLVM vectorises it over whole rows of units (the libm expf call is
# scalar here: no SVML). ln 2 is split hi + lo so r stays exact.
_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693145751953125)        # 12 significant bits: n * hi is exact for |n| < 2^12
_LN2_LO = np.float32(1.4286068203094173e-06)   # ln 2 - hi
_XMAX = np.float32(87.0)


@njit(cache=True, fastmath=False, inline="always")
def _exp_inplace(v, m, bits, fbits):
    """v[:m] = exp(v[:m]) (float32, |rel err| ~1e-7, arguments clamped to +-87);
    bits int32 scratch and fbits its float32 view build 2^n from the exponent field."""
    for k in range(m):
        x = min(max(v[k], -_XMAX), _XMAX)
        n = np.floor(x * _LOG2E + np.float32(0.5))
        r = (x - n * _LN2_HI) - n * _LN2_LO
        p = np.float32(1.0 / 5040.0)
        p = p * r + np.float32(1.0 / 720.0)
        p = p * r + np.float32(1.0 / 120.0)
        p = p * r + np.float32(1.0 / 24.0)
        p = p * r + np.float32(1.0 / 6.0)
        p = p * r + np.float32(0.5)
        p = p * r + np.float32(1.0)
        v[k] = p * r + np.float32(1.0)
        bits[k] = (np.int32(n) + np.int32(127)) << np.int32(23)
    for k in range(m):
        v[k] = v[k] * fbits[k]


@njit(cache=True, fastmath=False, inline="always")
def _row_affine(out, r, W, k, j0, X, x0, n, start):
    """out[r, :] (first set to W[k, -1], the bias column, when ``start``) += W[k, j0 + i] X[x0 + i, :]
    for i = 0..n-1 in order, weights exactly 0 skipped. The u loops run over whole rows of units and
    vectorise."""
    U = out.shape[1]
    if start:
        b = W[k, W.shape[1] - 1]
        for u in range(U):
            out[r, u] = b
    for i in range(n):
        w = W[k, j0 + i]
        if w != np.float32(0.0):
            for u in range(U):
                out[r, u] += w * X[x0 + i, u]


@njit(cache=True, fastmath=False, inline="always")
def enu_cells_step(wg, wc, wo, A, n_x, noise, G, CB, RH, fbits, bits):
    """One float32 step of U units sharing one genome, in place (the only float32 ENU cell: the
    single-cell runner below and the network kernel both call it).
    A [n_a, U] = rows [x (n_x) | y_prev (C) | h (H) | 1]; the y_prev and h rows are overwritten
    with y and h'. wg [2H, n_a], wc [H, n_a], wo [C, H + 1];
    noise [C, U] output-gate noise; G [2H, U], CB, RH [H, U], fbits / bits [>= 2H U] scratch."""
    n_a, U = A.shape
    C = wo.shape[0]
    H = wc.shape[0]
    H2 = 2 * H
    h0 = n_x + C
    nb = n_a - 1                     # the ones row: its weight column is the bias
    for k in range(H2):
        _row_affine(G, k, wg, k, 0, A, 0, nb, True)
    # z = sigmoid(3 u), r = sigmoid(3 (q - 1)), as 1 / (1 + exp(-...))
    for k in range(H):
        for u in range(U):
            G[k, u] = np.float32(-3.0) * G[k, u]
    for k in range(H, H2):
        for u in range(U):
            G[k, u] = np.float32(-3.0) * (G[k, u] - np.float32(1.0))
    gf = G.reshape(H2 * U)
    _exp_inplace(gf, H2 * U, bits, fbits)
    for i in range(H2 * U):
        gf[i] = np.float32(1.0) / (np.float32(1.0) + gf[i])
    # candidate: the memory enters through the reset gate (r * h)
    for j in range(H):
        for u in range(U):
            RH[j, u] = G[H + j, u] * A[h0 + j, u]
    for k in range(H):
        _row_affine(CB, k, wc, k, 0, A, 0, h0, True)
        _row_affine(CB, k, wc, k, h0, RH, 0, H, False)
        for u in range(U):
            CB[k, u] = np.float32(-6.0) * CB[k, u]
    cf = CB.reshape(H * U)
    _exp_inplace(cf, H * U, bits, fbits)
    for k in range(H):
        for u in range(U):
            c = np.float32(2.0) / (np.float32(1.0) + CB[k, u]) - np.float32(1.0)     # tanh(3 c~)
            A[h0 + k, u] = (np.float32(1.0) - G[k, u]) * A[h0 + k, u] + G[k, u] * c
    # output gate: y = clamp(W_o [h', 1] + noise, 0, 1), into the y_prev rows (no longer needed)
    for c in range(C):
        _row_affine(A, n_x + c, wo, c, 0, A, h0, H, True)
        for u in range(U):
            o = A[n_x + c, u] + noise[c, u]
            A[n_x + c, u] = min(max(o, np.float32(0.0)), np.float32(1.0))


@njit(cache=True)
def cell_buffers(H, U):
    """Scratch of ``enu_cells_step`` for U units: (G, CB, RH, fbits, bits)."""
    fbits = np.empty(2 * H * U, np.float32)
    return (np.empty((2 * H, U), np.float32), np.empty((H, U), np.float32), np.empty((H, U), np.float32),
            fbits, fbits.view(np.int32))


@njit(parallel=True, cache=True)
def _run_float(wg, wc, wo, xs, noise, gain, ys, hs):
    T, Px, E, n_in = xs.shape
    P, H2, n_a = wg.shape
    H = H2 // 2
    n_out = wo.shape[1]
    Tn, Pn, En = noise.shape[0], noise.shape[1], noise.shape[2]
    for p in prange(P):
        px = np.int64(p) if Px > 1 else np.int64(0)   # prange's index may be unsigned
        pn = np.int64(p) if Pn > 1 else np.int64(0)
        A = np.zeros((n_a, E), np.float32)             # rows [x | y_prev | h | 1], zero start state
        for e in range(E):
            A[n_a - 1, e] = np.float32(1.0)
        nb = np.zeros((n_out, E), np.float32)
        G, CB, RH, fbits, bits = cell_buffers(H, E)
        for t in range(T):
            tn = np.int64(t) if Tn > 1 else np.int64(0)
            for e in range(E):
                en = np.int64(e) if En > 1 else np.int64(0)
                for i in range(n_in):
                    A[i, e] = xs[t, px, e, i]
                for i in range(n_out):
                    nb[i, e] = gain * noise[tn, pn, en, i]
            enu_cells_step(wg[p], wc[p], wo[p], A, n_in, nb, G, CB, RH, fbits, bits)
            for e in range(E):
                for i in range(n_out):
                    ys[t, p, e, i] = A[n_in + i, e]
        for e in range(E):
            for k in range(H):
                hs[p, e, k] = A[n_in + n_out + k, e]


def enu_cell_run(spec, genomes, xs, noise=None, gain: float = 1.0):
    """Run T steps from zero state. genomes [P, n_params] float32, xs [T, P or 1, E, n_in]
    -> (outputs [T, P, E, n_out], final h [P, E, H]) float32. ``noise`` [T, P or 1, E, n_out]
    is added to the output gate before the gain and clamp."""
    g, x, nz, T, P, E = _check(spec, genomes, xs, noise)
    t = spec.unflatten(g)
    wg, wc = np.ascontiguousarray(t["W_g"]), np.ascontiguousarray(t["W_c"])
    wo = np.ascontiguousarray(np.float32(gain) * t["W_o"])          # the gain folded into W_o
    ys = np.empty((T, P, E, spec.n_out), np.float32)
    hs = np.empty((P, E, spec.n_hidden), np.float32)
    _run_float(wg, wc, wo, x, nz, np.float32(gain), ys, hs)
    return ys, hs


# ---------------------------------------------------------------- fixed point cell
FRAC_MIN = -6          # weights up to 127 * 64: steep gates and outputs (the IAF's gain 1000 folded into W_o)


def _frac_for(w: np.ndarray) -> int:
    """Largest frac in [FRAC_MIN, 7] whose int8 range still holds max|w| (weight = q 2^-frac; a
    negative frac stores large weights with a coarser step)."""
    m = float(np.max(np.abs(w))) if w.size else 0.0
    f = 7
    while f > FRAC_MIN and m * 2.0 ** f > 127.5:
        f -= 1
    return f


def quantize_enu(spec, genome, gain: float = 1.0):
    """Float genome [n_params] -> int8 flat genome (3*W_g, 3*W_c, gain*W_o) and fracs (f_g, f_c, f_o)."""
    t = spec.unflatten(np.asarray(genome, np.float32)[None])
    wg = 3.0 * t["W_g"][0].astype(np.float64)
    wc = 3.0 * t["W_c"][0].astype(np.float64)
    wo = float(gain) * t["W_o"][0].astype(np.float64)
    fr = np.array([_frac_for(wg), _frac_for(wc), _frac_for(wo)], np.int32)
    q = np.concatenate([quantize(wg, fr[0]).ravel(), quantize(wc, fr[1]).ravel(), quantize(wo, fr[2]).ravel()])
    return q.astype(np.int8), fr


def enu_luts() -> tuple[np.ndarray, np.ndarray]:
    return make_lut("sigmoid", LUT_IN_FRAC, LUT_OUT_FRAC), make_lut("tanh", LUT_IN_FRAC, LUT_OUT_FRAC)


@njit(inline="always", cache=True)
def _rsr(acc, s):
    # rshift_round: round half up (the project's one rule); s >= 1 here
    return (acc + (np.int64(1) << np.int64(s - 1))) >> np.int64(s)


@njit(inline="always", cache=True)
def _lut8(lut, acc, s):
    v = _rsr(acc, s)
    v = min(max(v, np.int64(-127)), np.int64(127))
    return np.int32(lut[v + 128])


@njit(cache=True)
def enu_unit_step_q(g, fr, n_in, H, n_out, x, y, h, sig, tnh, a, hn):
    """One fixed-point ENU step of one unit, in place (see the module docstring). g int8 flat genome,
    x, y, h int16 Q12, scratch a int32 [na + H], hn int32 [H]."""
    na = n_in + n_out + H + 1
    oc = 2 * H * na
    oo = oc + H * na
    fg = np.int64(fr[0])
    fc = np.int64(fr[1])
    fo = np.int64(fr[2])
    for i in range(n_in):
        a[i] = np.int32(x[i])
    for i in range(n_out):
        a[n_in + i] = np.int32(y[i])
    hb = n_in + n_out
    for k in range(H):
        a[hb + k] = np.int32(h[k])
    a[na - 1] = np.int32(A_ONE)
    s_g = fg + A_FRAC - LUT_IN_FRAC
    q_bias = np.int64(3) << (fg + A_FRAC)            # the reset gate's "- 1" times the folded 3
    for k in range(H):
        su = np.int32(0)
        sq = np.int32(0)
        ru = k * na
        rq = (H + k) * na
        for j in range(na):
            su += np.int32(g[ru + j]) * a[j]
            sq += np.int32(g[rq + j]) * a[j]
        hn[k] = _lut8(sig, np.int64(su), s_g)                           # z, Q7
        r = _lut8(sig, np.int64(sq) - q_bias, s_g)                      # Q7
        a[na + k] = np.int32(_rsr(np.int64(r) * np.int64(h[k]), LUT_OUT_FRAC))   # r*h, Q12
    for k in range(H):
        a[hb + k] = a[na + k]
    s_c = fc + A_FRAC - LUT_IN_FRAC
    for k in range(H):
        s = np.int32(0)
        rc = oc + k * na
        for j in range(na):
            s += np.int32(g[rc + j]) * a[j]
        c = np.int64(_lut8(tnh, np.int64(s), s_c)) << np.int64(A_FRAC - LUT_OUT_FRAC)
        hk = np.int64(h[k])
        hn[k] = np.int32(hk + _rsr(np.int64(hn[k]) * (c - hk), LUT_OUT_FRAC))
    for k in range(H):
        h[k] = np.int16(hn[k])
    for i in range(n_out):
        ro = oo + i * (H + 1)
        s = np.int32(g[ro + H]) * np.int32(A_ONE)
        for k in range(H):
            s += np.int32(g[ro + k]) * np.int32(h[k])
        if fo > 0:
            v = _rsr(np.int64(s), fo)
        else:                                         # frac <= 0: the weight is q 2^-frac, exact
            v = np.int64(s) << np.int64(-fo)
        y[i] = np.int16(min(max(v, np.int64(0)), np.int64(A_ONE)))


@njit(parallel=True, cache=True)
def _run_q(g, fr, xs, n_in, H, n_out, sig, tnh, ys, hs):
    T, E = xs.shape[0], xs.shape[2]
    Px = xs.shape[1]
    P = g.shape[0]
    na = n_in + n_out + H + 1
    for p in prange(P):
        px = np.int64(p) if Px > 1 else np.int64(0)
        a = np.empty(na + H, np.int32)
        hn = np.empty(H, np.int32)
        h = np.empty(H, np.int16)
        y = np.empty(n_out, np.int16)
        for e in range(E):
            h[:] = 0
            y[:] = 0
            for t in range(T):
                enu_unit_step_q(g[p], fr[p], n_in, H, n_out, xs[t, px, e], y, h, sig, tnh, a, hn)
                for i in range(n_out):
                    ys[t, p, e, i] = y[i]
            for k in range(H):
                hs[p, e, k] = h[k]


def quantize_inputs(xs) -> np.ndarray:
    """float inputs -> int16 Q12 (round half up, saturated to the int16 range)."""
    v = np.floor(np.asarray(xs, np.float64) * A_ONE + 0.5)
    return np.clip(v, -32767, 32767).astype(np.int16)


def enu_cell_run_q(spec, genomes_q, fracs, xs_q):
    """Fixed-point run: genomes_q [P, n_params] int8 (from ``quantize_enu``), fracs [P, 3] int32,
    xs_q [T, P or 1, E, n_in] int16 Q12 -> (outputs [T, P, E, n_out] int16 Q12, final h int16 Q12)."""
    g = np.ascontiguousarray(np.atleast_2d(genomes_q))
    fr = np.ascontiguousarray(np.atleast_2d(fracs), dtype=np.int32)
    if g.dtype != np.int8 or g.shape[1] != spec.n_params or fr.shape != (g.shape[0], 3):
        raise ValueError(f"genomes_q must be int8 [P, {spec.n_params}] with fracs [P, 3] (use quantize_enu), "
                         f"got {g.dtype} {g.shape} and {fr.shape}")
    x = np.asarray(xs_q)
    if x.dtype != np.int16 or x.ndim != 4 or x.shape[3] != spec.n_in or x.shape[1] not in (1, g.shape[0]):
        raise ValueError(f"xs_q must be int16 Q12 [T, P or 1, E, {spec.n_in}] (use quantize_inputs), "
                         f"got {x.dtype} {x.shape}")
    T, _, E, _ = x.shape
    P = g.shape[0]
    sig, tnh = enu_luts()
    ys = np.empty((T, P, E, spec.n_out), np.int16)
    hs = np.empty((P, E, spec.n_hidden), np.int16)
    _run_q(g, fr, x, spec.n_in, spec.n_hidden, spec.n_out, sig, tnh, ys, hs)
    return ys, hs


__all__ = ["enu_cell_run", "enu_cells_step", "cell_buffers", "enu_cell_run_q", "enu_unit_step_q", "quantize_enu",
           "quantize_inputs", "enu_luts", "A_FRAC"]
