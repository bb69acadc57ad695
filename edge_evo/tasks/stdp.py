"""Neuromodulated STDP mimic (seed 002, section 4, eq. 3): an ENU learns a synapse's pair-STDP rule.

Four input channels per step: graded potential x_t ~ U(0, 1), pre-synaptic spike (1 at step t_i),
neuromodulator m (1 for the whole episode with probability 1/2, else 0), back-propagating post
spike (1 at step t_b). The target output is ``y_t = x_t * w_t`` with ``w`` starting at W0 and
changed once both spikes have arrived::

    dw = m * A * sign(dt) * exp(-|dt| / tau),   dt = t_b - t_i (post minus pre), A = 0.5, tau = 10 steps

applied at the step of the later spike (so y at that step already uses the new w). The reference
w comes from Brian2's pair STDP (``Synapses`` with event-driven traces apre, apost; on_pre:
``apre += A; w += m * apost``, on_post: ``apost -= A; w += m * apre``), one synapse per episode,
all episodes in one run; ``stdp_numpy`` is its closed-form twin (tested equal). Episodes: T = 100
steps, the first spike at a step in [5, 40), |dt| in [1, 30] with a random sign, so at least 30
steps follow the later spike.

Fitness = -MSE(ENU output, reference output) over the episode. Metric: the learned window. For
each dt in [-30, 30] \\ {0} the ENU runs (m = 1, and m = 0) on ``n_probe`` held-out x sequences
with the first spike at step 20; its weight before and after the spikes is read from its output
by least squares (w = sum(y x) / sum(x x) over steps 5..19 and over the 20 steps after the later
spike), dw_ENU(dt) = w_after - w_before. Target: Pearson correlation >= 0.95 between dw_ENU and
the reference window with m = 1; with m = 0 the ENU's |dw| should stay near 0 (the gate).
"""
from __future__ import annotations

import numpy as np

from .. import rng
from ..kernels.enu import enu_cell_run

A_STDP = 0.5
TAU = 10.0
W0 = 0.5
T_STEPS = 100
DT_MAX = 30
PURPOSE_STDP = 0x8000_0201


def stdp_window(dt, A: float = A_STDP, tau: float = TAU) -> np.ndarray:
    """Reference window dw(dt) = A sign(dt) exp(-|dt| / tau) (dt in steps, post minus pre)."""
    d = np.asarray(dt, dtype=np.float64)
    return A * np.sign(d) * np.exp(-np.abs(d) / tau)


def stdp_episodes(seed: int, n: int, T: int = T_STEPS, split: int = 0, p_mod: float = 0.5):
    """n random episodes from the counter RNG: (x [n, T] float32, t_pre [n], t_post [n], mod [n]) ints."""
    if T < 40 + DT_MAX + 21:      # latest second spike at 39 + 30, then 20 steps to read the weight
        raise ValueError(f"STDP episodes need T >= {40 + DT_MAX + 21} steps, got {T}")
    if n < 1:
        raise ValueError(f"need n >= 1 episodes, got {n}")
    u = rng.u32_stream(seed, split, PURPOSE_STDP, n * T)
    x = ((u >> np.uint32(8)).astype(np.float64) * 2.0 ** -24).astype(np.float32).reshape(n, T)
    v = rng.u32_stream(seed, split, PURPOSE_STDP + 1, 4 * n).reshape(n, 4).astype(np.uint64)
    first = 5 + ((v[:, 0] * 35) >> 32).astype(np.int64)             # [5, 40)
    gap = 1 + ((v[:, 1] * DT_MAX) >> 32).astype(np.int64)           # [1, 30]
    post_first = (v[:, 2] >> 31).astype(bool)
    mod = (v[:, 3] < np.uint64(rng.bernoulli_threshold(p_mod))).astype(np.int64)
    t_pre = np.where(post_first, first + gap, first)
    t_post = np.where(post_first, first, first + gap)
    return x, t_pre, t_post, mod


def stdp_inputs(x, t_pre, t_post, mod) -> np.ndarray:
    """The four channels [n, T, 4]: x, pre spike, neuromodulator, post spike."""
    n, T = x.shape
    out = np.zeros((n, T, 4), np.float32)
    out[..., 0] = x
    out[np.arange(n), t_pre, 1] = 1.0
    out[..., 2] = np.asarray(mod, np.float32)[:, None]
    out[np.arange(n), t_post, 3] = 1.0
    return out


def stdp_numpy(t_pre, t_post, mod, T: int = T_STEPS, A: float = A_STDP, tau: float = TAU, w0: float = W0):
    """Twin of ``stdp_brian2``: w [n, T] float64 after each step's events."""
    t_pre, t_post, mod = (np.asarray(a, np.int64) for a in (t_pre, t_post, mod))
    dt_ms = 1e-3
    lag = np.abs(t_post - t_pre) * dt_ms                 # seconds, as Brian2 computes the trace decay
    dw = mod * np.sign(t_post - t_pre) * A * np.exp(-lag / (tau * dt_ms))
    later = np.maximum(t_pre, t_post)
    steps = np.arange(T)[None, :]
    return np.where(steps >= later[:, None], w0 + dw[:, None], w0)


def stdp_brian2(t_pre, t_post, mod, T: int = T_STEPS, A: float = A_STDP, tau: float = TAU, w0: float = W0,
                target: str = "numpy") -> np.ndarray:
    """Brian2 pair STDP, one synapse per episode (pre neuron i -> post neuron i), one run.
    Returns w [n, T] float64 recorded at the end of every step (after that step's spikes)."""
    from ..backends.brian2_backend import import_brian2
    b2 = import_brian2()
    t_pre, t_post, mod = (np.asarray(a, np.int64) for a in (t_pre, t_post, mod))
    n = len(t_pre)
    if (t_pre == t_post).any():
        raise ValueError("pre and post spikes at the same step have no STDP sign: draw distinct times")
    b2.prefs.codegen.target = target
    step = 1 * b2.ms
    idx = np.arange(n)
    pre = b2.SpikeGeneratorGroup(n, idx, t_pre * step, dt=step)
    post = b2.SpikeGeneratorGroup(n, idx, t_post * step, dt=step)
    S = b2.Synapses(pre, post, """w : 1
                                  m : 1 (constant)
                                  dapre/dt = -apre / taupre : 1 (event-driven)
                                  dapost/dt = -apost / taupost : 1 (event-driven)""",
                    on_pre="apre += Apre\nw += m * apost",
                    on_post="apost += Apost\nw += m * apre",
                    dt=step, namespace={"taupre": tau * step, "taupost": tau * step, "Apre": A, "Apost": -A})
    S.connect(j="i")
    S.w = w0
    S.m = mod.astype(np.float64)
    mon = b2.StateMonitor(S, "w", record=True, when="end", dt=step)
    net = b2.Network(pre, post, S, mon)
    net.run(T * step)
    order = np.argsort(np.asarray(S.i))                  # synapse k connects i = k; keep episode order
    return np.asarray(mon.w, dtype=np.float64)[order, :T]


class STDPTask:
    """Banks of Brian2 reference episodes (train and held-out, built once, in memory) and the
    per-generation draw of E train episodes shared by all offspring (counter RNG)."""
    n_in = 4
    n_out = 1

    def __init__(self, spec, seed: int = 0, n_train: int = 2048, n_test: int = 256, envs: int = 32,
                 T: int = T_STEPS, target: str = "numpy", gain: float = 1.0):
        if (spec.n_in, spec.n_out) != (self.n_in, self.n_out):
            raise ValueError(f"the STDP task needs an ENU with 4 inputs and 1 output, got {spec}")
        if not (np.isfinite(gain) and gain > 0):
            raise ValueError(f"gain must be finite and > 0, got {gain}")
        self.gain = float(gain)          # output clamp(gain * W_o [h, 1]); 1 = the seed's cell
        if envs < 1 or envs > n_train:
            raise ValueError(f"envs must be in [1, n_train={n_train}], got {envs}")
        self.spec, self.seed, self.envs, self.T = spec, int(seed), int(envs), int(T)
        self.train = self._bank(seed, n_train, 0, target)
        self.test = self._bank(seed, n_test, 1, target)

    def _bank(self, seed, n, split, target):
        x, tp, tb, m = stdp_episodes(seed, n, self.T, split)
        w = stdp_brian2(tp, tb, m, self.T, target=target)
        return {"inputs": stdp_inputs(x, tp, tb, m), "y": (x * w).astype(np.float32), "w": w,
                "t_pre": tp, "t_post": tb, "mod": m}

    def batch(self, generation: int) -> np.ndarray:
        u = rng.u32_stream(self.seed, generation, PURPOSE_STDP + 2, len(self.train["y"]))
        return np.argsort(u, kind="stable")[:self.envs]

    def run(self, genomes, inputs: np.ndarray) -> np.ndarray:
        """ENU outputs [P, E, T] for inputs [E, T, 4] shared by all genomes."""
        g = np.atleast_2d(np.asarray(genomes, np.float32))
        xs = np.ascontiguousarray(np.transpose(inputs, (1, 0, 2))[:, None])     # [T, 1, E, 4]
        ys, _ = enu_cell_run(self.spec, g, xs, gain=self.gain)
        return np.transpose(ys[..., 0], (1, 2, 0))

    def scores(self, genomes, generation: int) -> np.ndarray:
        """Fitness [P, E] = -MSE over each episode."""
        idx = self.batch(generation)
        y = self.run(genomes, self.train["inputs"][idx])
        return -((y - self.train["y"][idx][None]) ** 2).mean(-1)

    def test_mse(self, genome) -> float:
        y = self.run(genome, self.test["inputs"])[0]
        return float(((y - self.test["y"]) ** 2).mean())

    def window(self, genome, n_probe: int = 8, first: int = 20, after: int = 20):
        """The ENU's learned window: (dts, dw_on [len(dts)], dw_off) read from its output (module docstring)."""
        dts = np.array([d for d in range(-DT_MAX, DT_MAX + 1) if d != 0])
        x = stdp_episodes(self.seed, n_probe, self.T, split=2)[0]
        out = {}
        for m in (1, 0):
            eps = []
            for d in dts:
                tp = np.full(n_probe, first if d > 0 else first - d)
                tb = tp + d
                eps.append(stdp_inputs(x, tp, tb, np.full(n_probe, m)))
            inp = np.concatenate(eps)                                       # [len(dts) * n_probe, T, 4]
            y = self.run(genome, inp)[0].reshape(len(dts), n_probe, self.T).astype(np.float64)
            xx = x.astype(np.float64)[None]
            later = first + np.abs(dts)
            before = slice(5, first)
            wb = (y[..., before] * xx[..., before]).sum((1, 2)) / (xx[..., before] ** 2).sum((1, 2))
            wa = np.empty(len(dts))
            for k, L in enumerate(later):
                s = slice(L + 1, L + 1 + after)
                wa[k] = (y[k][:, s] * xx[0][:, s]).sum() / (xx[0][:, s] ** 2).sum()
            out[m] = wa - wb
        return dts, out[1], out[0]

    def window_metrics(self, genome, n_probe: int = 8) -> dict:
        dts, on, off = self.window(genome, n_probe)
        ref = stdp_window(dts)
        def corr_of(a, b):
            return float(np.corrcoef(a, b)[0, 1]) if np.std(a) > 0 else 0.0
        pot = dts > 0                                     # pre before post: potentiation
        return {"corr": corr_of(on, ref),
                "corr_potentiation": corr_of(on[pot], ref[pot]), "corr_depression": corr_of(on[~pot], ref[~pot]),
                "dw_on_plus1": float(on[dts == 1][0]), "dw_on_minus1": float(on[dts == -1][0]),
                "rms_dw_on": float(np.sqrt(np.mean(on ** 2))),
                "rms_dw_off": float(np.sqrt(np.mean(off ** 2))), "rms_ref": float(np.sqrt(np.mean(ref ** 2))),
                "rmse_on": float(np.sqrt(np.mean((on - ref) ** 2))), "test_mse": self.test_mse(genome)}


__all__ = ["A_STDP", "TAU", "W0", "stdp_window", "stdp_episodes", "stdp_inputs", "stdp_numpy", "stdp_brian2",
           "STDPTask"]
