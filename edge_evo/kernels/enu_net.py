"""Population kernel of the ENU network (seed 002, section 3): float32 Numba twin of
``models/enu_net.py`` (whose docstring is the equation) for P offspring x E environment copies.

Layout: the state arrays are those of ``ENUNetState`` (``y_n [P, E, N, C]``, ``h_n [P, E, N, H]``,
``y_s [P, E, N, S, C]``, ``h_s [P, E, N, S, H]``), updated in place. Sensor input ``x`` is
``[1 or P, E, n_sensors, C]``: with a leading 1 all offspring read the same rows (never copied P times).

Speed: one (offspring, env copy) pair per parallel task; every cell is written as rank-1 updates
``acc[:] += a[i] * W^T[i, :]`` over the transposed weights (``pack``), an inner loop over outputs
that LLVM vectorises without reassociating sums (``fastmath=False``), and inputs that are exactly
zero (clamped outputs, silent sensors) are skipped, which changes no bit of the result. The weights
of one offspring (about 33 KB at C=16, H=32) stay in L1 while its 48 synapses are swept.

Output noise comes from ``noise_table``: the same counter-RNG stream as
``models.enu_net.output_noise`` (key ``(noise_seed, step, PURPOSE_NOISE)``, index ``(e, n, c)`` for
neurons then ``(e, n, s, c)`` after them, so both draw bit-identical noise), drawn once per step
for all offspring instead of being hashed again in every offspring.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from .. import rng
from ..models.enu_net import PURPOSE_NOISE, ENUNetSpec, ENUNetState


@dataclass(frozen=True)
class Packed:
    """Per-offspring weights, transposed for the rank-1 update loops (float32, C-contiguous)."""
    wg_n: np.ndarray   # [P, n_a, 2H]   neuron cell
    wc_n: np.ndarray   # [P, n_a, H]
    wo_n: np.ndarray   # [P, H + 1, C]
    wg_s: np.ndarray   # [P, n_a, 2H]   synapse cell
    wc_s: np.ndarray   # [P, n_a, H]
    wo_s: np.ndarray   # [P, H + 1, C]
    pre: np.ndarray    # [N, S] int64 source index of every synapse

    @property
    def P(self) -> int:
        return self.wg_n.shape[0]


def pack(spec: ENUNetSpec, genomes: np.ndarray) -> Packed:
    """[P, n_params] genomes (any float dtype) -> transposed float32 weights of every offspring."""
    g = np.atleast_2d(np.asarray(genomes, dtype=np.float32))
    pn, ps = spec.split(g)

    def t(w):
        return np.ascontiguousarray(w.transpose(0, 2, 1), dtype=np.float32)
    return Packed(t(pn["W_g"]), t(pn["W_c"]), t(pn["W_o"]), t(ps["W_g"]), t(ps["W_c"]), t(ps["W_o"]),
                  np.ascontiguousarray(np.asarray(spec.pre, dtype=np.int64)))


# ---------------------------------------------------------------------------- exp, one cell
# exp(x) = 2^n e^r, n = round(x / ln 2), |r| <= ln(2)/2, e^r by its Taylor series to r^7 (remainder
# < 6e-9): plain arithmetic, so LLVM vectorises it, unlike the libm expf call (no SVML here), which
# cost more than all the multiply-adds of a small cell. ln 2 is split hi + lo so r stays exact.
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
def _cell(wg, wc, wo, a, n_x, hm, ym, u, noise, nbase, g, cb, bits, fbits):
    """One ENU cell in place. a = [x (n_x), y_prev (C), h (H), 1] is filled by the caller;
    hm[u] [H] and ym[u] [C] are the unit's state (rows indexed here: a view per unit would cost
    two reference-count updates); noise[nbase:nbase + C] is its output-gate noise;
    g [2H], cb [H], bits / fbits [2H] are scratch."""
    H = hm.shape[1]
    C = ym.shape[1]
    n_a = a.shape[0]
    H2 = 2 * H
    for k in range(H2):
        g[k] = np.float32(0.0)
    for i in range(n_a):
        v = a[i]
        if v != np.float32(0.0):          # exact: adding +-0 products changes nothing
            for k in range(H2):
                g[k] += v * wg[i, k]
    # gates z = sigmoid(3 u), r = sigmoid(3 (q - 1)) = 1 / (1 + exp(-...))
    for k in range(H):
        g[k] = np.float32(-3.0) * g[k]
    for k in range(H, H2):
        g[k] = np.float32(-3.0) * (g[k] - np.float32(1.0))
    _exp_inplace(g, H2, bits, fbits)
    for k in range(H2):
        g[k] = np.float32(1.0) / (np.float32(1.0) + g[k])
    # candidate: same inputs, but the memory enters through the reset gate (r * h)
    for k in range(H):
        cb[k] = np.float32(0.0)
    nh = n_x + C
    for i in range(nh):
        v = a[i]
        if v != np.float32(0.0):
            for k in range(H):
                cb[k] += v * wc[i, k]
    for j in range(H):
        v = g[H + j] * hm[u, j]
        if v != np.float32(0.0):
            for k in range(H):
                cb[k] += v * wc[nh + j, k]
    for k in range(H):
        cb[k] = np.float32(-6.0) * (cb[k] + wc[n_a - 1, k])
    _exp_inplace(cb, H, bits, fbits)
    for k in range(H):
        c = np.float32(2.0) / (np.float32(1.0) + cb[k]) - np.float32(1.0)    # tanh(3 c~)
        hm[u, k] = (np.float32(1.0) - g[k]) * hm[u, k] + g[k] * c
    # output gate: o = W_o [h', 1] (+ noise), clamped to [0, 1]
    for k in range(C):
        ym[u, k] = np.float32(0.0)
    for j in range(H):
        v = hm[u, j]
        if v != np.float32(0.0):
            for k in range(C):
                ym[u, k] += v * wo[j, k]
    for k in range(C):
        o = (ym[u, k] + wo[H, k]) + noise[nbase + k]
        ym[u, k] = min(max(o, np.float32(0.0)), np.float32(1.0))


@njit(cache=True)
def work_size(N, C, H):
    """float32 scratch one (offspring, env copy) needs in ``net_step``."""
    return (3 * C + H + 1) + (2 * C + H + 1) + 5 * H + N * C


@njit(cache=True, fastmath=False)
def net_step(wg_n, wc_n, wo_n, wg_s, wc_s, wo_s, pre, x, y_n, h_n, y_s, h_s, noise, e, E, work):
    """One network step of one (offspring, env copy): x [n_sensors, C]; y_n [N, C], h_n [N, H],
    y_s [N, S, C], h_s [N, S, H] updated in place; noise = this step's row of ``noise_table``;
    work = float32 scratch of ``work_size``.
    Synapses read the previous step's neuron outputs, so all synapses run before any neuron."""
    N, S = pre.shape
    C = y_n.shape[1]
    H = h_n.shape[1]
    Ns = x.shape[0]
    o = 0
    a_s = work[o:o + 3 * C + H + 1]
    o += 3 * C + H + 1
    a_n = work[o:o + 2 * C + H + 1]
    o += 2 * C + H + 1
    g = work[o:o + 2 * H]
    o += 2 * H
    cb = work[o:o + H]
    o += H
    fbits = work[o:o + 2 * H]             # float32 view of int32 scratch for _exp_inplace
    bits = fbits.view(np.int32)
    o += 2 * H
    integ = work[o:o + N * C].reshape((N, C))
    integ[:] = np.float32(0.0)
    a_s[3 * C + H] = np.float32(1.0)
    a_n[2 * C + H] = np.float32(1.0)
    syn_base = E * N * C
    ys2 = y_s.reshape((N * S, C))             # one view per step; units are rows
    hs2 = h_s.reshape((N * S, H))
    for n in range(N):
        for s in range(S):
            u = n * S + s
            src = pre[n, s]
            if src < Ns:
                for c in range(C):
                    a_s[c] = x[src, c]
            else:
                for c in range(C):
                    a_s[c] = y_n[src - Ns, c]
            for c in range(C):
                a_s[C + c] = y_n[n, c]             # post-synaptic feedback
                a_s[2 * C + c] = ys2[u, c]         # the synapse's own previous output
            for j in range(H):
                a_s[3 * C + j] = hs2[u, j]
            _cell(wg_s, wc_s, wo_s, a_s, 2 * C, hs2, ys2, u, noise,
                  syn_base + ((e * N + n) * S + s) * C, g, cb, bits, fbits)
            for c in range(C):
                integ[n, c] += ys2[u, c]
    inv = np.float32(S)
    for n in range(N):
        for c in range(C):
            a_n[c] = integ[n, c] / inv
            a_n[C + c] = y_n[n, c]
        for j in range(H):
            a_n[2 * C + j] = h_n[n, j]
        _cell(wg_n, wc_n, wo_n, a_n, C, h_n, y_n, n, noise, (e * N + n) * C, g, cb, bits, fbits)


@njit(parallel=True, cache=True, fastmath=False)
def _noise_table(noise_seed, step0, scale, out):
    """out[t, i] = gauss(u32(key(noise_seed, step0 + t, PURPOSE_NOISE), i)) * scale, float64 -> float32."""
    T, M = out.shape
    for t in prange(T):
        k = rng.key(noise_seed, step0 + t, PURPOSE_NOISE)
        for i in range(M):
            out[t, i] = np.float32(np.float64(rng.gauss(rng.u32(k, np.uint32(i)))) * scale)


def noise_table(spec: ENUNetSpec, noise_seed: int, step0: int, n_steps: int, E: int, std: float) -> np.ndarray:
    """Output-gate noise of steps step0 .. step0 + n_steps - 1, [n_steps, E N C (1 + S)] float32,
    row t = the flat ``models.enu_net.output_noise(spec, noise_seed, step0 + t, E, std)`` (neurons,
    then synapses). Drawn once per step and env copy, shared by all offspring."""
    M = E * spec.n_neurons * spec.channels * (1 + spec.n_synapses)
    out = np.zeros((n_steps, M), np.float32)
    if std != 0:
        _noise_table(np.uint32(noise_seed), np.int64(step0), noise_scale(std), out)
    return out


@njit(parallel=True, cache=True, fastmath=False)
def _steps(wg_n, wc_n, wo_n, wg_s, wc_s, wo_s, pre, x, y_n, h_n, y_s, h_s, noise, n_out, acc):
    """n_steps network steps with fixed sensor input; acc [P, E, n_out] += channel 0 of the output neurons."""
    P, E = y_n.shape[0], y_n.shape[1]
    N = y_n.shape[2]
    shared = x.shape[0] == 1
    work_n = work_size(N, y_n.shape[3], h_n.shape[3])
    for pe in prange(P * E):
        p = pe // E
        e = pe - p * E
        xp = 0 if shared else p
        work = np.empty(work_n, np.float32)
        for t in range(noise.shape[0]):
            net_step(wg_n[p], wc_n[p], wo_n[p], wg_s[p], wc_s[p], wo_s[p], pre, x[xp, e],
                     y_n[p, e], h_n[p, e], y_s[p, e], h_s[p, e], noise[t], e, E, work)
            for k in range(n_out):
                acc[p, e, k] += y_n[p, e, N - n_out + k, 0]


def noise_scale(std: float) -> float:
    """Factor from the integer Irwin-Hall draw to N(0, std^2) (0 = no noise)."""
    if not (np.isfinite(std) and std >= 0):
        raise ValueError(f"noise std must be finite and >= 0, got {std}")
    return float(std) / rng.GAUSS_STD


def enu_net_steps(spec: ENUNetSpec, packed: Packed, x: np.ndarray, st: ENUNetState, n_steps: int = 1,
                  step0: int = 0, noise_std: float = 0.0, noise_seed: int = 0) -> np.ndarray:
    """Advance ``st`` (float32, in place) by ``n_steps`` steps with sensor input x [1 or P, E, n_sensors, C];
    step ``t`` draws output noise with key (noise_seed, step0 + t). Returns the sum over the steps of
    channel 0 of the output neurons, [P, E, n_out] float32 (the T-maze's action evidence)."""
    P, E, N, C = st.y_n.shape
    if P != packed.P:
        raise ValueError(f"state has {P} offspring but the packed weights {packed.P}; pack the same population")
    for name in ("y_n", "h_n", "y_s", "h_s"):
        a = getattr(st, name)
        if a.dtype != np.float32 or not a.flags.c_contiguous:
            raise TypeError(f"kernel state {name} must be C-contiguous float32 (ENUNetState.zeros(..., np.float32))")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 4 or x.shape[0] not in (1, P) or x.shape[1:] != (E, spec.n_sensors, C):
        raise ValueError(f"sensor input {x.shape} != [1 or P={P}, E={E}, n_sensors={spec.n_sensors}, C={C}]")
    acc = np.zeros((P, E, spec.n_out), np.float32)
    noise = noise_table(spec, noise_seed, step0, n_steps, E, noise_std)
    _steps(packed.wg_n, packed.wc_n, packed.wo_n, packed.wg_s, packed.wc_s, packed.wo_s, packed.pre, x,
           st.y_n, st.h_n, st.y_s, st.h_s, noise, spec.n_out, acc)
    return acc


def enu_net_run(spec: ENUNetSpec, genomes: np.ndarray, xs: np.ndarray, noise_std: float = 0.0,
                noise_seed: int = 0):
    """Kernel twin of ``models.enu_net.enu_net_run``: xs [T, 1 or P, E, n_sensors, C] -> neuron outputs
    [T, P, E, N, C] float32 and the final state."""
    xs = np.asarray(xs, dtype=np.float32)
    packed = pack(spec, genomes)
    P = packed.P
    T, _, E = xs.shape[:3]
    st = ENUNetState.zeros(spec, P, E, np.float32)
    ys = np.empty((T, P, E, spec.n_neurons, spec.channels), np.float32)
    for t in range(T):
        enu_net_steps(spec, packed, xs[t], st, 1, t, noise_std, noise_seed)
        ys[t] = st.y_n
    return ys, st


__all__ = ["Packed", "pack", "net_step", "work_size", "noise_table", "noise_scale", "enu_net_steps", "enu_net_run"]
