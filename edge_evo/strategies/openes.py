"""OpenES with mirrored sampling, rank fitness shaping and momentum.

Seed 002, "Network of Evolvable Neural Units", Algorithm 1 (the ES used to train ENUs)::

    for k in 1..P/2:  eps_k ~ N(0, sigma^2 I);  evaluate f(theta + eps_k), f(theta - eps_k)
    w  = shaping(ranks of the P fitnesses)           # paper: (rank/N, 1.0..0.0)^5, sum 1, not centred
    g  = sum_i w_i eps_i = sum_k (w_k+ - w_k-) eps_k  # mirrored pairs: the difference form
    g -= weight_decay * theta                        # optional L2 pull (OpenAI-ES)
    m  = beta * m + g                                # paper: beta = 0.9
    theta += lr * m                                  # paper: lr = 1

``eps`` is the actual perturbation (standard deviation ``sigma``), so ``lr`` is dimensionless and
the paper's preset is ``lr = 1``. Perturbations are never stored: pair ``k`` of generation ``g``
draws ``eps_k[j]`` from ``u32(key(seed, g, k), j)`` (``j`` = flat genome index); ``tell``
regenerates exactly the numbers ``ask`` used.

Float32 mode: ``theta`` float32; ``eps = sigma * gauss(h) / 147.8006`` (Irwin-Hall, ~N(0, 1));
the shaping weights are the integer table below divided by 2^16 (the float reference uses exact
floats; the difference is < 2^-16 per weight).

Int8 mode (every step integer, so a C twin matches bit for bit). Per tensor with ``frac`` =
``w_frac`` (weights) or ``b_frac`` (biases); ``F = MEAN_FRAC = 8`` extra fraction bits::

    mean   int32, Q(frac + F)   (sub-LSB precision: steps far below one int8 LSB accumulate)
    mom    int32, Q(frac + F)
    sm     = gauss_multiplier(sigma * 2**frac)        # sigma in LSB, computed once off-device
    e_k[j] = gauss_scaled(u32(key(seed, g, k), j), sm) # int32, LSB
    c[j]   = rshift_round(mean[j], F)                  # the deployed int8 genome ('best')
    genome 2k   = sat8(c + e_k),  genome 2k+1 = sat8(c - e_k)
    w_r    = shaping table, int32 Q16 (rank5: floor((P-1-r)^5 * 2^16 / sum_i i^5) with int64 math;
             centred: sign * floor(|P-1-2r| * 2^16 / sum_i |P-1-2i|)); both have sum |w| <= 2^16
    d_k    = w[rank(2k)] - w[rank(2k+1)]              # int32, Q16
    G[j]   = sum_k d_k * e_k[j]                        # int32 (|G| <= 2^16 * max|e| < 2^31), Q16 LSB
    g[j]   = rshift_round(G[j], 16 - F)                # -> Q(frac + F)
    g[j]  -= mulshift(wd_q, mean[j])                   # mulshift(a, b) = rshift_round(int64(a) * b, 16), int64
    mom[j] = clamp(mulshift(beta_q, mom[j]) + g[j], +-2^30)         # int64 sum, stored int32
    mean[j]= clamp(mean[j] + mulshift(lr_q, mom[j]), +-(127 << F))  # int64 sum, stored int32

with ``beta_q, lr_q, wd_q = round(x * 2^16)``. Ranks sort the fitnesses (batch means) from best
(rank 0) to worst, ties by lower genome index first (a stable sort); only that order enters the
update, so any device computing the same order reproduces the same bits. Decays are integer
recurrences too: ``sm <- max(sm_min, rshift_round(sm * sigma_decay_q, 16))`` and the same for
``lr_q``. Every int64 product above fits a 64-bit C ``int64_t`` (SMULL on Cortex-M).

The float NumPy twin (``reference/openes_ref.py``) restates both modes in a few lines.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from .. import rng
from ..models.mlp import MLPSpec, Population
from . import register
from .base import PURPOSE_INIT, State, Strategy

log = logging.getLogger(__name__)

MEAN_FRAC = 8          # extra fraction bits of the int8-mode mean / momentum
WEIGHT_FRAC = 16       # shaping weights, beta, lr, weight decay and decays are Q16
MOM_MAX = 1 << 30      # momentum clamp: keeps every later int32 sum far from overflow
BLOCK = 512            # parameters per parallel block in the gradient kernels
SHAPINGS = ("rank5", "centered")


@dataclass(frozen=True)
class OpenESParams:
    """Hyper-parameters. ``sigma`` / ``sigma_min`` are in parameter units (float value of a weight);
    int8 mode converts them to LSB per tensor. ``init_scale`` = None: U(+-1/sqrt(fan_in)) weights."""
    population: int = 512
    sigma: float = 0.01
    lr: float = 1.0
    momentum: float = 0.9
    shaping: str = "rank5"
    weight_decay: float = 0.0
    sigma_decay: float = 1.0
    sigma_min: float = 0.0
    lr_decay: float = 1.0
    lr_min: float = 0.0
    init_scale: float | None = None

    def __post_init__(self):
        if self.population < 2 or self.population % 2:
            raise ValueError(f"population must be even and >= 2 (mirrored pairs), got {self.population}")
        if self.shaping not in SHAPINGS:
            raise ValueError(f"shaping must be one of {SHAPINGS}, got {self.shaping!r}")
        for name in ("sigma", "lr", "sigma_min", "lr_min", "weight_decay"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {v}")
        for name in ("momentum", "sigma_decay", "lr_decay"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if self.init_scale is not None and not (np.isfinite(self.init_scale) and self.init_scale >= 0):
            raise ValueError(f"init_scale must be None or finite >= 0, got {self.init_scale}")


# ---------------------------------------------------------------- fitness shaping
def shaping_weights(P: int, shaping: str) -> np.ndarray:
    """Integer Q16 weight of each rank (rank 0 = best), int32 [P]; sum |w| <= 2^16."""
    r = np.arange(P, dtype=np.int64)
    if shaping == "rank5":
        u = (P - 1 - r) ** 5                       # (P-1)^5 < 2^63 for P <= 6000
        if P > 6000:
            raise ValueError(f"rank5 shaping supports population <= 6000, got {P}")
        return ((u << WEIGHT_FRAC) // int(u.sum())).astype(np.int32)
    if shaping == "centered":
        c = P - 1 - 2 * r                          # antisymmetric: w[r] = -w[P-1-r] exactly
        return (np.sign(c) * ((np.abs(c) << WEIGHT_FRAC) // int(np.abs(c).sum()))).astype(np.int32)
    raise ValueError(f"shaping must be one of {SHAPINGS}, got {shaping!r}")


def ranks(fitness: np.ndarray) -> np.ndarray:
    """rank[i] of genome i: 0 = best; ties broken by lower index first (stable)."""
    order = np.argsort(-np.asarray(fitness, dtype=np.float64), kind="stable")
    out = np.empty(len(order), dtype=np.int64)
    out[order] = np.arange(len(order))
    return out


def q16(x: float) -> int:
    return int(round(float(x) * (1 << WEIGHT_FRAC)))


def pair_keys(seed: int, generation: int, n_pairs: int) -> np.ndarray:
    """Stream key of each mirrored pair (individual field = pair index k)."""
    return rng.keys(seed, generation, range(n_pairs))


# ---------------------------------------------------------------- Numba kernels (int8 mode)
@njit(parallel=True, cache=True)
def ask_int8(mean, keys, sm, offset, out):
    """out[2k, j] = sat8(c[j] + e_k[j]), out[2k+1, j] = sat8(c[j] - e_k[j]); c = rshift_round(mean, F)."""
    n = mean.shape[0]
    K = keys.shape[0]
    c = np.empty(n, dtype=np.int32)
    half = np.int32(1 << (MEAN_FRAC - 1))
    for j in range(n):
        c[j] = (np.int32(mean[j]) + half) >> np.int32(MEAN_FRAC)
    for k in prange(K):
        kk = keys[k]
        for j in range(n):
            e = rng.gauss_scaled(rng.u32(kk, np.uint32(offset + j)), sm)
            a = c[j] + e
            b = c[j] - e
            out[2 * k, j] = min(max(a, np.int32(-127)), np.int32(127))
            out[2 * k + 1, j] = min(max(b, np.int32(-127)), np.int32(127))


@njit(inline="always", cache=True)
def _mulshift(a, b):
    # rshift_round(int64(a) * b, 16): exact in C with int64_t
    return (np.int64(a) * np.int64(b) + np.int64(1 << (WEIGHT_FRAC - 1))) >> np.int64(WEIGHT_FRAC)


@njit(parallel=True, cache=True)
def update_int8(mean, mom, keys, d, sm, offset, beta_q, lr_q, wd_q):
    """Regenerate every e_k, accumulate G = sum_k d_k e_k and apply the momentum update in place."""
    n = mean.shape[0]
    K = keys.shape[0]
    nb = (n + BLOCK - 1) // BLOCK
    gshift = WEIGHT_FRAC - MEAN_FRAC
    ghalf = np.int32(1 << (gshift - 1))
    mmax = np.int32(127 << MEAN_FRAC)
    for b in prange(nb):
        j0 = b * BLOCK
        j1 = min(n, j0 + BLOCK)
        acc = np.zeros(BLOCK, dtype=np.int32)
        for k in range(K):
            kk = keys[k]
            dk = np.int32(d[k])
            if dk == 0:
                continue
            for j in range(j0, j1):
                acc[j - j0] += dk * rng.gauss_scaled(rng.u32(kk, np.uint32(offset + j)), sm)
        for j in range(j0, j1):
            g = np.int64((acc[j - j0] + ghalf) >> np.int32(gshift)) - _mulshift(wd_q, mean[j])
            m = min(max(_mulshift(beta_q, mom[j]) + g, np.int64(-MOM_MAX)), np.int64(MOM_MAX))
            mom[j] = np.int32(m)
            v = np.int64(mean[j]) + _mulshift(lr_q, m)
            mean[j] = np.int32(min(max(v, np.int64(-mmax)), np.int64(mmax)))


# ---------------------------------------------------------------- Numba kernels (float32 mode)
@njit(parallel=True, cache=True)
def ask_float(theta, keys, scale, offset, out):
    """out[2k] = theta + eps_k, out[2k+1] = theta - eps_k; eps = scale * gauss(h), scale = sigma / 147.8."""
    n = theta.shape[0]
    K = keys.shape[0]
    for k in prange(K):
        kk = keys[k]
        for j in range(n):
            e = np.float32(rng.gauss(rng.u32(kk, np.uint32(offset + j)))) * scale
            out[2 * k, j] = theta[j] + e
            out[2 * k + 1, j] = theta[j] - e


@njit(parallel=True, cache=True)
def update_float(theta, mom, keys, d, scale, offset, beta, lr, wd):
    n = theta.shape[0]
    K = keys.shape[0]
    nb = (n + BLOCK - 1) // BLOCK
    for b in prange(nb):
        j0 = b * BLOCK
        j1 = min(n, j0 + BLOCK)
        acc = np.zeros(BLOCK, dtype=np.float32)
        for k in range(K):
            kk = keys[k]
            dk = np.float32(d[k])
            for j in range(j0, j1):
                acc[j - j0] += dk * np.float32(rng.gauss(rng.u32(kk, np.uint32(offset + j))))
        for j in range(j0, j1):
            g = acc[j - j0] * scale - wd * theta[j]
            m = beta * mom[j] + g
            mom[j] = m
            theta[j] = theta[j] + lr * m


# ---------------------------------------------------------------- strategy
@register
class OpenES(Strategy):
    """OpenES (mirrored, rank-shaped, momentum); see the module docstring for the exact integer update."""
    name = "openes"
    Params = OpenESParams
    presets = {
        "paper": OpenESParams(population=512, sigma=0.01, lr=1.0, momentum=0.9, shaping="rank5"),
        # tuned on MNIST 784-64-10 int8, w_frac=7, 500-image batches: 95.29 % test in 15 min on a quiet
        # 2-core machine (93.97 % under load)
        # (benchmarks/bench_openes_mnist.py)
        "mnist": OpenESParams(population=200, sigma=0.03, lr=0.25, momentum=0.9, shaping="rank5",
                              lr_decay=0.9993, lr_min=0.04),
    }
    prediction = "argmax"
    score = "xent"

    # -------------------------------------------------------------- helpers
    def _tensor_slices(self):
        off = self.spec.offsets()
        return [(n, off[n], int(np.prod(s))) for n, s in self.spec.tensors()]

    def _frac(self, name):
        return self.spec.tensor_frac(name)

    def _sigma_m(self, sigma: float) -> np.ndarray:
        return np.array([rng.gauss_multiplier(sigma * 2.0 ** self._frac(n)) for n, _, _ in self._tensor_slices()],
                        dtype=np.int64)

    def _init_mean(self, seed: int) -> np.ndarray:
        """Integer init in Q(frac + F), U(+-scale) weights, zero biases; float mode divides it out."""
        k = np.uint32(rng.py_key(seed, 0, PURPOSE_INIT))
        mean = np.zeros(self.spec.n_params, dtype=np.int32)
        for li, (name, off, size) in enumerate(self._tensor_slices()):
            if not name.startswith("W"):
                continue
            fan_in = self.spec.fan_in(name)
            scale = self.params.init_scale if self.params.init_scale is not None else 1.0 / np.sqrt(fan_in)
            A = int(round(min(scale, 127 / 2 ** self._frac(name)) * 2.0 ** (self._frac(name) + MEAN_FRAC)))
            h = np.empty(size, dtype=np.uint32)
            rng.fill_u32(k, np.uint32(off), h)
            mean[off:off + size] = ((h.astype(np.uint64) * np.uint64(2 * A + 1)) >> np.uint64(32)).astype(np.int64) - A
        return mean

    def _frac_scale(self) -> np.ndarray:
        return np.concatenate([np.full(size, 2.0 ** -(self._frac(n) + MEAN_FRAC), dtype=np.float64)
                               for n, _, size in self._tensor_slices()])

    # -------------------------------------------------------------- interface
    def init(self, seed: int) -> State:
        p = self.params
        mean_q = self._init_mean(seed)
        n = self.spec.n_params
        if self.mode == "int8":
            arrays = {"mean": mean_q, "momentum": np.zeros(n, dtype=np.int32)}
            scalars = {"lr_q": q16(p.lr)}
            arrays["sigma_m"] = self._sigma_m(p.sigma)
        else:
            arrays = {"mean": (mean_q * self._frac_scale()).astype(np.float32),
                      "momentum": np.zeros(n, dtype=np.float32)}
            scalars = {"lr": float(p.lr), "sigma": float(p.sigma)}
        st = State(0, int(seed), None, arrays, scalars)
        st.arrays["best"] = self._best(st)
        return st

    def _seed_state(self, state: State, genome: np.ndarray) -> State:
        if self.mode == "int8":   # the mean keeps MEAN_FRAC extra fraction bits
            state.arrays["mean"] = genome.astype(np.int32) << MEAN_FRAC
        else:
            state.arrays["mean"] = genome.astype(np.float32).copy()
        state.arrays["best"] = self._best(state)
        return state

    def _best(self, state: State) -> np.ndarray:
        mean = state.arrays["mean"]
        if self.mode == "int8":
            return np.clip((mean.astype(np.int64) + (1 << (MEAN_FRAC - 1))) >> MEAN_FRAC, -127, 127).astype(np.int8)
        return mean.copy()

    def _check_state(self, state: State):
        mean = state.arrays.get("mean")
        if mean is None or mean.shape != (self.spec.n_params,):
            raise ValueError(f"state has no mean of {self.spec.n_params} parameters; build it with init() "
                             "or load a checkpoint of the same model")
        want = np.int32 if self.mode == "int8" else np.float32
        if mean.dtype != want:
            raise TypeError(f"state mean is {mean.dtype}, {self.mode} OpenES needs {np.dtype(want)}: "
                            "the checkpoint was written in the other mode")

    def ask(self, state: State) -> Population:
        self._check_state(state)
        P = self.params.population
        K = P // 2
        keys = pair_keys(state.seed, state.generation, K)
        pop = Population.empty(self.spec, P, self.dtype)
        mean = state.arrays["mean"]
        for ti, (name, off, size) in enumerate(self._tensor_slices()):
            if self.mode == "int8":
                ask_int8(mean[off:off + size], keys, np.int32(state.arrays["sigma_m"][ti]), np.uint32(off),
                         pop.tensors[name])
            else:
                scale = np.float32(state.scalars["sigma"] / rng.GAUSS_STD)
                ask_float(mean[off:off + size], keys, scale, np.uint32(off), pop.tensors[name])
        return pop

    def fitness(self, scores) -> np.ndarray:
        s = np.asarray(scores, dtype=np.float64)
        if s.ndim == 1:
            s = s[:, None]
        if s.ndim != 2 or s.shape[0] != self.params.population:
            raise ValueError(f"scores must be [population={self.params.population}, batch], got shape {s.shape}")
        if not np.all(np.isfinite(s)):
            raise ValueError("scores contain NaN or inf: fix the score function (e.g. clip log-probabilities)")
        return s.mean(axis=1)

    def pair_weights(self, fitness: np.ndarray) -> np.ndarray:
        """d_k = w[rank(2k)] - w[rank(2k+1)] (int32 Q16)."""
        w = shaping_weights(self.params.population, self.params.shaping).astype(np.int64)
        wr = w[ranks(fitness)]
        return (wr[0::2] - wr[1::2]).astype(np.int32)

    def tell(self, state: State, pop: Population, scores) -> State:
        self._check_state(state)
        if pop is not None and pop.size != self.params.population:
            raise ValueError(f"population has {pop.size} genomes, expected {self.params.population}")
        p = self.params
        fit = self.fitness(scores)
        d = self.pair_weights(fit)
        keys = pair_keys(state.seed, state.generation, p.population // 2)
        mean = state.arrays["mean"].copy()
        mom = state.arrays["momentum"].copy()
        arrays = dict(state.arrays)
        scalars = dict(state.scalars)
        if self.mode == "int8":
            sm = state.arrays["sigma_m"]
            lr_q = int(state.scalars["lr_q"])
            for ti, (name, off, size) in enumerate(self._tensor_slices()):
                update_int8(mean[off:off + size], mom[off:off + size], keys, d, np.int32(sm[ti]), np.uint32(off),
                            np.int32(q16(p.momentum)), np.int32(lr_q), np.int32(q16(p.weight_decay)))
            dq = q16(p.sigma_decay)
            sm_min = self._sigma_m(p.sigma_min)
            arrays["sigma_m"] = np.maximum(sm_min, (sm.astype(np.int64) * dq + (1 << 15)) >> 16).astype(np.int64)
            scalars["lr_q"] = max(q16(p.lr_min), (lr_q * q16(p.lr_decay) + (1 << 15)) >> 16)
        else:
            sigma, lr = float(state.scalars["sigma"]), float(state.scalars["lr"])
            df = (d.astype(np.float64) / (1 << WEIGHT_FRAC)).astype(np.float32)
            scale = np.float32(sigma / rng.GAUSS_STD)
            for name, off, size in self._tensor_slices():
                update_float(mean[off:off + size], mom[off:off + size], keys, df, scale, np.uint32(off),
                             np.float32(p.momentum), np.float32(lr), np.float32(p.weight_decay))
            scalars["sigma"] = max(p.sigma_min, sigma * p.sigma_decay)
            scalars["lr"] = max(p.lr_min, lr * p.lr_decay)
        arrays["mean"] = mean
        arrays["momentum"] = mom
        nxt = State(state.generation + 1, state.seed, None, arrays, scalars)
        nxt.arrays["best"] = self._best(nxt)
        nxt.scalars["best_fitness"] = float(fit.max())
        return nxt

    def sigma_lsb(self, state: State) -> np.ndarray:
        """Current sigma of each tensor in LSB (int8 mode) for logging."""
        return np.asarray(state.arrays["sigma_m"], dtype=np.float64) * rng.GAUSS_STD / 65536.0


__all__ = ["OpenES", "OpenESParams", "shaping_weights", "ranks", "MEAN_FRAC"]
