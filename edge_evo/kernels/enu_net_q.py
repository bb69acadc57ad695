"""Fixed-point ENU network: the equations of ``models/enu_net.py`` with every unit stepped by the
fixed-point cell of ``kernels/enu.py`` (int16 Q12 signals and state, int8 weights with power-of-two
scales, int8 LUT gates, int32 accumulators, round half up). One genome, E environment copies.

Integration step in integers: ``int_in[n, c] = floor((2 * sum_s y_s[n, s, c] + S) / (2 S))``, the
round-half-up mean of the S synapse outputs (Q12). Output noise is not part of the fixed-point
network (it is a simulation device to break the symmetry of shared genomes during training); run the
float reference with ``noise_std=0`` to compare.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..models.enu_net import ENUNetSpec
from .enu import enu_luts, enu_unit_step_q, quantize_enu, quantize_inputs


def quantize_enu_net(spec: ENUNetSpec, genome) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Float genome [n_params] -> (neuron int8 genome, neuron fracs, synapse int8 genome, synapse fracs)."""
    g = np.asarray(genome, np.float32).ravel()
    if g.size != spec.n_params:
        raise ValueError(f"ENU net genome has {g.size} parameters, {spec} needs {spec.n_params}")
    cut = spec.neuron.n_params
    gn, fn = quantize_enu(spec.neuron, g[:cut])
    gs, fs = quantize_enu(spec.synapse, g[cut:])
    return gn, fn, gs, fs


@njit(parallel=True, cache=True)
def _run(gn, fn, gs, fs, pre, Ns, C, H, xs, sig, tnh, ys):
    T, E = xs.shape[0], xs.shape[1]
    N, S = pre.shape
    na_s = 2 * C + C + H + 1
    na_n = C + C + H + 1
    for e in prange(E):
        y_n = np.zeros((N, C), np.int16)
        h_n = np.zeros((N, H), np.int16)
        y_s = np.zeros((N, S, C), np.int16)
        h_s = np.zeros((N, S, H), np.int16)
        y_prev = np.empty((N, C), np.int16)
        x_in = np.empty(2 * C, np.int16)
        integ = np.empty(C, np.int16)
        a_s = np.empty(na_s + H, np.int32)
        a_n = np.empty(na_n + H, np.int32)
        hn = np.empty(H, np.int32)
        for t in range(T):
            y_prev[:, :] = y_n                       # every unit reads the previous step's outputs
            for n in range(N):
                for s in range(S):
                    src = pre[n, s]
                    for c in range(C):
                        x_in[c] = xs[t, e, src, c] if src < Ns else y_prev[src - Ns, c]
                        x_in[C + c] = y_prev[n, c]
                    enu_unit_step_q(gs, fs, 2 * C, H, C, x_in, y_s[n, s], h_s[n, s], sig, tnh, a_s, hn)
            for n in range(N):
                for c in range(C):
                    acc = np.int64(0)
                    for s in range(S):
                        acc += np.int64(y_s[n, s, c])
                    integ[c] = np.int16((2 * acc + S) // (2 * S))
                enu_unit_step_q(gn, fn, C, H, C, integ, y_n[n], h_n[n], sig, tnh, a_n, hn)
            ys[t, e] = y_n


def enu_net_run_q(spec: ENUNetSpec, quantized, xs) -> np.ndarray:
    """Run T steps from zero state: ``quantized`` from ``quantize_enu_net``, xs [T, E, n_sensors, C]
    (float, quantised to Q12 here, or int16 Q12) -> neuron outputs [T, E, N, C] int16 Q12."""
    gn, fn, gs, fs = quantized
    x = np.asarray(xs)
    if x.ndim != 4 or x.shape[2:] != (spec.n_sensors, spec.channels):
        raise ValueError(f"xs must be [T, E, n_sensors={spec.n_sensors}, C={spec.channels}], got {x.shape}")
    if x.dtype != np.int16:
        x = quantize_inputs(x)
    T, E = x.shape[:2]
    ys = np.empty((T, E, spec.n_neurons, spec.channels), np.int16)
    sig, tnh = enu_luts()
    _run(gn, np.asarray(fn, np.int32), gs, np.asarray(fs, np.int32), np.asarray(spec.pre, np.int64),
         spec.n_sensors, spec.channels, spec.memory, np.ascontiguousarray(x), sig, tnh, ys)
    return ys


__all__ = ["quantize_enu_net", "enu_net_run_q"]
