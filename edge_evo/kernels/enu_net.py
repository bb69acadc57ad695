"""Population kernel of the ENU network (seed 002, section 3): float32 Numba twin of
``models/enu_net.py`` (whose docstring is the equation) for P offspring x E environment copies.

Layout. One parallel task per offspring; inside it all E copies run in lockstep and every cell
type is evaluated for all its units at once, units along the fast axis::

    A_s [3C + H + 1, U_s]   rows [pre output | post feedback | y_s | h_s | 1],  U_s = E N S synapses,
                            unit u = (e N + n) S + s
    A_n [2C + H + 1, U_n]   rows [integration | y_n | h_n | 1],               U_n = E N neurons

so each gate is ``G[k, :] += W[k, i] * A[i, :]`` over rows of E*48 units: long loops that LLVM
vectorises without reassociating any sum (``fastmath=False``; every output is still summed over
its inputs in order, bias first), weights exactly 0 skipped (no bit changes). The unit state lives
in these rows between steps; ``enu_net_steps`` copies ``ENUNetState`` in and out (the T-maze keeps
it inside the kernel). Sensor input ``x`` is ``[1 or P, E, n_sensors, C]``: with a leading 1 all
offspring read the same rows (never copied P times).

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
from .enu import cell_buffers, enu_cells_step


@dataclass(frozen=True)
class Packed:
    """Per-offspring weights in the genome's layout (float32, C-contiguous) and the wiring."""
    wg_n: np.ndarray   # [P, 2H, n_a]   neuron cell
    wc_n: np.ndarray   # [P, H, n_a]
    wo_n: np.ndarray   # [P, C, H + 1]
    wg_s: np.ndarray   # [P, 2H, n_a]   synapse cell
    wc_s: np.ndarray   # [P, H, n_a]
    wo_s: np.ndarray   # [P, C, H + 1]
    pre: np.ndarray    # [N, S] int64 source index of every synapse

    @property
    def P(self) -> int:
        return self.wg_n.shape[0]


def pack(spec: ENUNetSpec, genomes: np.ndarray) -> Packed:
    """[P, n_params] genomes (any float dtype) -> float32 weight tensors of every offspring."""
    g = np.atleast_2d(np.asarray(genomes, dtype=np.float32))
    pn, ps = spec.split(g)

    def c(w):
        return np.ascontiguousarray(w, dtype=np.float32)
    return Packed(c(pn["W_g"]), c(pn["W_c"]), c(pn["W_o"]), c(ps["W_g"]), c(ps["W_c"]), c(ps["W_o"]),
                  np.ascontiguousarray(np.asarray(spec.pre, dtype=np.int64)))


@njit(cache=True)
def work_buffers(C, H, U_s, U_n):
    """(G, CB, RH, fbits, bits) for the synapse cells and (G, CB, RH) for the neuron cells (they
    share the synapses' exp scratch: U_n <= U_s)."""
    G, CB, RH, fbits, bits = cell_buffers(H, U_s)
    Gn, CBn, RHn, _, _ = cell_buffers(H, U_n)
    return G, CB, RH, fbits, bits, Gn, CBn, RHn


@njit(cache=True, fastmath=False)
def net_step(wg_n, wc_n, wo_n, wg_s, wc_s, wo_s, xT, syn_src, syn_post, S, As, An, noise_n, noise_s, work):
    """One network step of one offspring, all E copies: xT [C, E n_sensors] sensor outputs
    (column e n_sensors + i); syn_src[u] = neuron column (>= 0) or -1 - sensor column of synapse
    u's source; syn_post[u] = its neuron's column. As, An (layout above) are updated in place.
    Synapses read the previous step's neuron outputs, so they all run before any neuron."""
    C = wo_n.shape[0]
    U_s = As.shape[1]
    U_n = An.shape[1]
    G, CB, RH, fb, bi, Gn, CBn, RHn = work
    for u in range(U_s):
        col = syn_src[u]
        post = syn_post[u]
        if col >= 0:
            for c in range(C):
                As[c, u] = An[C + c, col]
        else:
            for c in range(C):
                As[c, u] = xT[c, -1 - col]
        for c in range(C):
            As[C + c, u] = An[C + c, post]          # post-synaptic feedback
    enu_cells_step(wg_s, wc_s, wo_s, As, 2 * C, noise_s, G, CB, RH, fb, bi)
    inv = np.float32(S)
    for c in range(C):                               # integration: mean over each neuron's synapses
        for v in range(U_n):
            acc = np.float32(0.0)
            for s in range(S):
                acc += As[2 * C + c, v * S + s]
            An[c, v] = acc / inv
    enu_cells_step(wg_n, wc_n, wo_n, An, C, noise_n, Gn, CBn, RHn, fb, bi)


def wiring(spec: ENUNetSpec, E: int) -> tuple[np.ndarray, np.ndarray]:
    """(syn_src, syn_post) of ``net_step`` for E copies."""
    N, S, Ns = spec.n_neurons, spec.n_synapses, spec.n_sensors
    pre = np.asarray(spec.pre, dtype=np.int64)
    e = np.arange(E)[:, None, None]
    src = np.broadcast_to(pre[None], (E, N, S))
    col = np.where(src >= Ns, e * N + (src - Ns), -1 - (e * Ns + src))
    post = np.broadcast_to(e * N + np.arange(N)[None, :, None], (E, N, S))
    return np.ascontiguousarray(col.reshape(-1)), np.ascontiguousarray(post.reshape(-1))


def split_noise(spec: ENUNetSpec, table: np.ndarray, E: int) -> tuple[np.ndarray, np.ndarray]:
    """``noise_table`` rows -> (neurons [T, C, E N], synapses [T, C, E N S]) in the kernel's layout."""
    T = table.shape[0]
    C, U_n = spec.channels, E * spec.n_neurons
    nn = table[:, :U_n * C].reshape(T, U_n, C).transpose(0, 2, 1)
    ns = table[:, U_n * C:].reshape(T, U_n * spec.n_synapses, C).transpose(0, 2, 1)
    return np.ascontiguousarray(nn), np.ascontiguousarray(ns)


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
def _steps(wg_n, wc_n, wo_n, wg_s, wc_s, wo_s, xT, syn_src, syn_post, S, As, An, noise_n, noise_s, n_out, N, acc):
    """noise_n.shape[0] network steps with fixed sensor input; acc [P, E, n_out] += channel 0 of
    the output neurons."""
    P = As.shape[0]
    C = wo_n.shape[1]
    H = wc_n.shape[1]
    E = An.shape[2] // N
    xstride = 0 if xT.shape[0] == 1 else 1       # shared sensor rows: every offspring reads row 0
    for p in prange(P):
        xp = p * xstride
        work = work_buffers(C, H, As.shape[2], An.shape[2])
        for t in range(noise_n.shape[0]):
            net_step(wg_n[p], wc_n[p], wo_n[p], wg_s[p], wc_s[p], wo_s[p], xT[xp], syn_src, syn_post, S,
                     As[p], An[p], noise_n[t], noise_s[t], work)
            for e in range(E):
                for k in range(n_out):
                    acc[p, e, k] += An[p, C, e * N + N - n_out + k]


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
    S, H, Ns = spec.n_synapses, spec.memory, spec.n_sensors
    if P != packed.P:
        raise ValueError(f"state has {P} offspring but the packed weights {packed.P}; pack the same population")
    for name in ("y_n", "h_n", "y_s", "h_s"):
        a = getattr(st, name)
        if a.dtype != np.float32:
            raise TypeError(f"kernel state {name} must be float32 (ENUNetState.zeros(..., np.float32)), got {a.dtype}")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4 or x.shape[0] not in (1, P) or x.shape[1:] != (E, Ns, C):
        raise ValueError(f"sensor input {x.shape} != [1 or P={P}, E={E}, n_sensors={Ns}, C={C}]")
    U_n, U_s = E * N, E * N * S
    xT = np.ascontiguousarray(x.reshape(x.shape[0], E * Ns, C).transpose(0, 2, 1))
    As = np.empty((P, 3 * C + H + 1, U_s), np.float32)
    As[:, 2 * C:3 * C] = st.y_s.reshape(P, U_s, C).transpose(0, 2, 1)
    As[:, 3 * C:3 * C + H] = st.h_s.reshape(P, U_s, H).transpose(0, 2, 1)
    As[:, -1] = 1.0
    An = np.empty((P, 2 * C + H + 1, U_n), np.float32)
    An[:, C:2 * C] = st.y_n.reshape(P, U_n, C).transpose(0, 2, 1)
    An[:, 2 * C:2 * C + H] = st.h_n.reshape(P, U_n, H).transpose(0, 2, 1)
    An[:, -1] = 1.0
    nn, ns = split_noise(spec, noise_table(spec, noise_seed, step0, n_steps, E, noise_std), E)
    src, post = wiring(spec, E)
    acc = np.zeros((P, E, spec.n_out), np.float32)
    _steps(packed.wg_n, packed.wc_n, packed.wo_n, packed.wg_s, packed.wc_s, packed.wo_s, xT, src, post, S,
           As, An, nn, ns, spec.n_out, N, acc)
    st.y_s[...] = As[:, 2 * C:3 * C].transpose(0, 2, 1).reshape(st.y_s.shape)
    st.h_s[...] = As[:, 3 * C:3 * C + H].transpose(0, 2, 1).reshape(st.h_s.shape)
    st.y_n[...] = An[:, C:2 * C].transpose(0, 2, 1).reshape(st.y_n.shape)
    st.h_n[...] = An[:, 2 * C:2 * C + H].transpose(0, 2, 1).reshape(st.h_n.shape)
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


__all__ = ["Packed", "pack", "net_step", "work_buffers", "wiring", "split_noise", "noise_table",
           "noise_scale", "enu_net_steps", "enu_net_run"]
