"""IAF mimic (seed 002, section 4, eq. 2): an ENU learns to behave as an integrate-and-fire neuron.

Reference neuron, one step per time step::

    h_t = h_{t-1} + x_t;   if h_t >= th:  spike_t = 1, h_t = 0   else spike_t = 0

with th = 0.5 and graded inputs x_t ~ U(0, x_max) (x_max = 0.25 here: a spike every ~4.5 steps,
about 22 per 100-step episode; with U(0, 1) the neuron fires almost every other step and there
is little to integrate). The traces come from Brian2's canonical integrate-and-fire neuron
(``dv/dt = x(t, i) / dt`` driven by a TimedArray, ``threshold='v >= th'``, ``reset='v = 0'``; one
neuron per input sequence, all sequences in one run) and from ``iaf_numpy``, its twin (tested
identical).

ENU read-out: spike at step t when its output y_t > 0.5. The output is the cell's
``clamp(gain * W_o [h, 1], 0, 1)`` (``IAFTask(gain=...)``, default 1). Upstream's gain 1000 makes
the output a hard step: measured, the ES then stays in the "always on" state. Gain 10 (the
benchmark's choice, docs/enu.md) gives a sharp threshold whose height term stays graded.

Loss per episode (lower is better; fitness = -loss), R = reference spike steps, S = ENU spikes::

    timing = (sum_{r in R} min(d(r, S), D)^2 + sum_{s in S} min(d(s, R), D)^2) / max(|R|, 1)
    height = mean_{r in R} (max_{|t - r| <= 1} y_t - 1)^2            (seed: spike height - 1)^2)
    quiet  = mean_{t: d(t, R) > 1} y_t^2                              (no output between spikes)

d(t, A) = distance in steps to the nearest element of A (D = 5 if A is empty or farther). The
symmetric timing term is the seed's spike-timing / inter-spike-interval term: it falls step by
step as each spike moves towards its reference, counts missed and extra spikes, and gives the
rank-based ES a usable ordering even when spikes are far off. ``quiet`` is our addition: without
it a constantly high output reaches every reference spike.

Metric (the target "spike-time error <= 1 step"): every reference spike's error is the distance
to the nearest ENU spike; ``within1`` is the fraction of reference spikes with error <= 1 (missed
= the rest), ``extra`` the fraction of ENU spikes farther than 1 step from every reference spike.
The target is met when within1 >= 0.95 and extra <= 0.05 on held-out inputs.
"""
from __future__ import annotations

import numpy as np

from .. import rng
from ..kernels.enu import enu_cell_run

TH = 0.5
X_MAX = 0.25
T_STEPS = 100
D_CAP = 5
PURPOSE_IAF = 0x8000_0101         # counter-RNG individual field of the input bank


def iaf_inputs(seed: int, n: int, T: int = T_STEPS, x_max: float = X_MAX, split: int = 0) -> np.ndarray:
    """[n, T] float32 inputs x ~ U(0, x_max) from the counter RNG (split 0 = train, 1 = held-out)."""
    if n < 1 or T < 1 or not x_max > 0:
        raise ValueError(f"need n >= 1, T >= 1, x_max > 0; got n={n}, T={T}, x_max={x_max}")
    u = rng.u32_stream(seed, split, PURPOSE_IAF, n * T)
    # 24 random bits: the float32 value is exact, so Brian2 (float64) and NumPy see the same number
    return ((u >> np.uint32(8)).astype(np.float64) * (x_max / 2.0 ** 24)).astype(np.float32).reshape(n, T)


def iaf_numpy(xs, th: float = TH):
    """Twin of ``iaf_brian2``: (spikes [n, T] bool, v [n, T] float64 after reset)."""
    x = np.asarray(xs, dtype=np.float64)
    n, T = x.shape
    v = np.zeros(n)
    spikes = np.zeros((n, T), bool)
    vs = np.zeros((n, T))
    dt = 1e-3
    for t in range(T):
        v = v + dt * (x[:, t] / dt)        # Brian2's Euler step of dv/dt = x / dt, same float64 ops
        s = v >= th
        spikes[:, t] = s
        v[s] = 0.0
        vs[:, t] = v
    return spikes, vs


def iaf_brian2(xs, th: float = TH, target: str = "numpy"):
    """Brian2 integrate-and-fire reference: one neuron per row of ``xs`` [n, T], one run.
    Returns (spikes [n, T] bool, v [n, T] float64 after the reset of each step)."""
    from ..backends.brian2_backend import import_brian2
    b2 = import_brian2()
    x = np.asarray(xs, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"xs must be [n_sequences, T], got shape {x.shape}")
    n, T = x.shape
    b2.prefs.codegen.target = target
    step = 1 * b2.ms
    x_in = b2.TimedArray(x.T.copy(), dt=step)              # x_in(t, i) = xs[i, t / step]
    G = b2.NeuronGroup(n, "dv/dt = x_in(t, i) / step : 1", threshold="v >= th", reset="v = 0",
                       method="euler", dt=step, namespace={"x_in": x_in, "step": step, "th": float(th)})
    sm = b2.SpikeMonitor(G)
    vm = b2.StateMonitor(G, "v", record=True, when="end", dt=step)
    net = b2.Network(G, sm, vm)
    net.run(T * step)
    spikes = np.zeros((n, T), bool)
    ti = np.round(np.asarray(sm.t / step)).astype(np.int64)
    spikes[np.asarray(sm.i), ti] = True
    return spikes, np.asarray(vm.v, dtype=np.float64)[:, :T]


# ---------------------------------------------------------------- loss and metric
def _dist_to_nearest(B: np.ndarray, cap: int) -> np.ndarray:
    """Distance in steps from each step to the nearest True of B [..., T], capped at ``cap``."""
    T = B.shape[-1]
    d = np.full(B.shape, cap, dtype=np.int32)
    run = np.full(B.shape[:-1], cap, dtype=np.int32)
    for t in range(T):                                   # forward: distance to the last spike
        run = np.where(B[..., t], 0, np.minimum(run + 1, cap))
        d[..., t] = run
    run = np.full(B.shape[:-1], cap, dtype=np.int32)
    for t in range(T - 1, -1, -1):                       # backward: distance to the next spike
        run = np.where(B[..., t], 0, np.minimum(run + 1, cap))
        d[..., t] = np.minimum(d[..., t], run)
    return d


def iaf_loss(y: np.ndarray, ref: np.ndarray, cap: int = D_CAP) -> np.ndarray:
    """Loss per episode (see module docstring): y [..., T] ENU outputs, ref [..., T] bool."""
    y = np.asarray(y, dtype=np.float32)
    R = np.asarray(ref, dtype=bool)
    S = y > 0.5
    dS = _dist_to_nearest(S, cap).astype(np.float32)
    dR = _dist_to_nearest(R, cap).astype(np.float32)
    nR = R.sum(-1)
    timing = ((R * dS ** 2).sum(-1) + (S * dR ** 2).sum(-1)) / np.maximum(nR, 1)
    ymax = y.copy()                                      # max over the steps t-1, t, t+1
    ymax[..., 1:] = np.maximum(ymax[..., 1:], y[..., :-1])
    ymax[..., :-1] = np.maximum(ymax[..., :-1], y[..., 1:])
    height = (R * (ymax - 1.0) ** 2).sum(-1) / np.maximum(nR, 1)
    far = dR > 1
    quiet = (far * y ** 2).sum(-1) / np.maximum(far.sum(-1), 1)
    return timing + height + quiet


def spike_metrics(y: np.ndarray, ref: np.ndarray) -> dict:
    """Spike-time figures over all episodes: y [..., T], ref [..., T] bool (see module docstring)."""
    R = np.asarray(ref, dtype=bool)
    S = np.asarray(y) > 0.5
    T = R.shape[-1]
    big = 2 * T
    dS = _dist_to_nearest(S, big)[R]                    # error of every reference spike
    dR = _dist_to_nearest(R, big)[S]
    n_ref, n_enu = int(R.sum()), int(S.sum())
    return {
        "n_ref": n_ref, "n_enu": n_enu,
        "within1": float((dS <= 1).mean()) if n_ref else float("nan"),
        "exact": float((dS == 0).mean()) if n_ref else float("nan"),
        "median_err": float(np.median(dS)) if n_ref else float("nan"),
        "max_err": int(dS.max()) if n_ref else 0,
        "missed": float((dS > 1).mean()) if n_ref else float("nan"),
        "extra": float((dR > 1).mean()) if n_enu else 0.0,
    }


# ---------------------------------------------------------------- a hand-set solution
def iaf_hand_genome(spec, s: float = 0.05, gain: float = 10.0, steep: float = 2000.0) -> np.ndarray:
    """A genome set by hand (not evolved) that makes memory unit 0 an integrate-and-fire neuron
    with ``h_0 = s v``; it shows what the cell can express and what an evolved ENU must find::

        z_0 = sigmoid(3 * 5) ~ 1                   h_0' ~ c_0 (the old state enters through r h_0)
        r_0 = sigmoid(3 (50 - 100 y_prev))        ~1, or ~0 the step after a spike (the reset)
        c_0 = tanh(s x + r_0 h_0) ~ r_0 h_0 + s x  (tanh is nearly linear for small s)
        y   = clamp(steep (h_0 - s th) + 1/2, 0, 1)        a spike when s v >= s th

    Weights reach |100| (reset) and ``steep / gain`` (output): 100-1000x the scale of the
    orthogonal initialisation, which is why the ES creeps towards them. The other memory units
    stay at 0. Measured on the 256 held-out sequences (``benchmarks/bench_enu_iaf.py``): within1
    0.991, extra 0.009 at s = 0.05 (what is left comes from outputs caught between 0 and 1 when v
    lands within ~0.005 of the threshold). The fixed-point cell cannot run it: the candidate's
    argument s x (< 0.016) is below the tanh LUT's input step 1/32 and rounds to 0, so the 8-bit
    LUT cell has no small-signal integrator of this kind."""
    if (spec.n_in, spec.n_out) != (1, 1):
        raise ValueError(f"the IAF genome needs an ENU with 1 input and 1 output, got {spec}")
    H, na = spec.n_hidden, spec.n_a
    X, Y, H0, ONE = 0, 1, 2, na - 1                     # columns of [x, y_prev, h, 1]
    wg = np.zeros((2 * H, na))
    wc = np.zeros((H, na))
    wo = np.zeros((1, H + 1))
    wg[0, ONE] = 5.0
    wg[H, ONE], wg[H, Y] = 51.0, -100.0                  # q - 1 = 50 - 100 y_prev
    wc[0, X], wc[0, H0] = s / 3.0, 1.0 / 3.0
    wo[0, 0], wo[0, H] = steep / gain, (0.5 - steep * s * TH) / gain
    return np.concatenate([wg.ravel(), wc.ravel(), wo.ravel()]).astype(np.float32)


# ---------------------------------------------------------------- task
class IAFTask:
    """Bank of Brian2 reference traces (train and held-out, built once, kept in memory) and the
    per-generation environment draw: E sequences from the train bank, the same for every offspring
    of a generation, chosen by the counter RNG from (seed, generation)."""
    n_in = 1
    n_out = 1

    def __init__(self, spec, seed: int = 0, n_train: int = 2048, n_test: int = 256, T: int = T_STEPS,
                 x_max: float = X_MAX, th: float = TH, envs: int = 32, gain: float = 1.0, target: str = "numpy"):
        if (spec.n_in, spec.n_out) != (self.n_in, self.n_out):
            raise ValueError(f"the IAF task needs an ENU with 1 input and 1 output, got {spec}")
        if envs < 1 or envs > n_train:
            raise ValueError(f"envs must be in [1, n_train={n_train}], got {envs}")
        self.spec = spec
        self.seed, self.T, self.envs = int(seed), int(T), int(envs)
        self.gain, self.th, self.x_max = float(gain), th, x_max
        self.x_train = iaf_inputs(seed, n_train, T, x_max, split=0)
        self.x_test = iaf_inputs(seed, n_test, T, x_max, split=1)
        self.s_train, self.v_train = iaf_brian2(self.x_train, th, target)
        self.s_test, self.v_test = iaf_brian2(self.x_test, th, target)

    def batch(self, generation: int) -> np.ndarray:
        """Indices of the E train sequences of this generation (distinct; counter RNG)."""
        u = rng.u32_stream(self.seed, generation, PURPOSE_IAF + 1, len(self.x_train))
        return np.argsort(u, kind="stable")[:self.envs]

    @staticmethod
    def as_xs(x: np.ndarray) -> np.ndarray:
        """[E, T] inputs -> the kernel's shared layout [T, 1, E, 1]."""
        return np.ascontiguousarray(x.T[:, None, :, None])

    def run(self, genomes, x: np.ndarray) -> np.ndarray:
        """ENU outputs [P, E, T] on inputs x [E, T] (float32 kernel)."""
        g = np.atleast_2d(np.asarray(genomes, np.float32))
        ys, _ = enu_cell_run(self.spec, g, self.as_xs(x), gain=self.gain)
        return np.transpose(ys[..., 0], (1, 2, 0))

    def scores(self, genomes, generation: int) -> np.ndarray:
        """Fitness [P, E] = -loss on this generation's environments."""
        idx = self.batch(generation)
        y = self.run(genomes, self.x_train[idx])
        return -iaf_loss(y, self.s_train[idx][None])

    def evaluate(self, genome, split: str = "test") -> dict:
        x, s = (self.x_test, self.s_test) if split == "test" else (self.x_train, self.s_train)
        y = self.run(genome, x)[0]
        out = spike_metrics(y, s)
        out["loss"] = float(iaf_loss(y, s).mean())
        return out


__all__ = ["TH", "X_MAX", "iaf_inputs", "iaf_numpy", "iaf_brian2", "iaf_loss", "spike_metrics", "iaf_hand_genome",
           "IAFTask"]
