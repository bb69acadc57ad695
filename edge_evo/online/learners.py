"""Steady-state learners for continuous adaptation: one small population per update, built around
the deployed genome, scored on the sliding window.

* ``openes``: OpenES (seed 002, Algorithm 1; ``strategies/openes.py``) with a small mirrored
  population (P = 2..8) around the deployed mean. Every update is one OpenES generation, so all
  integer arithmetic and RNG streams are the strategy's own: the deployed genome is
  ``rshift_round(mean, 8)``.
* ``elitist``: a (1 + lambda) scheme in the spirit of GENREG's mutation (Miller 2024): lambda
  children of the deployed parent, each element mutated with probability ``rate`` by
  ``gauss_scaled(u32(key(seed, update, 0x4000_0000 | i), j), m)`` where the mask draw is
  ``u32(key(seed, update, i), j) < bernoulli_threshold(rate)``; the best child replaces the parent
  only if its window fitness is strictly higher (ties keep the parent).

``trainable='last'`` restricts both learners to the output layer (W_L, b_L): the other tensors
stay at the deployed values in every candidate, the RNG indices of the trained tensors are
unchanged (flat index = offset + local index). A label permutation is exactly a change of the
output layer, and 650 parameters (784-64-10) are far easier to search than 50,890.

Drift handling multiplies the exploration (sigma / mutation scale) by an integer Q16 ``boost``
that decays geometrically back to 1 (``boost <- max(1, rshift_round(boost * decay_q, 16))``).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .. import rng
from ..models.mlp import MLPSpec, Population
from ..strategies.base import State
from ..strategies.openes import (MEAN_FRAC, OpenES, OpenESParams, ask_int8, pair_keys, q16, ranks,
                                shaping_weights, update_int8)

LEARNERS = ("openes", "elitist")
TRAINABLE = ("all", "last")
ONE_Q16 = 1 << 16
M_MAX = (1 << 22) - 1         # gauss_scaled multipliers stay below 2^22 (int32-safe product)
NOISE_STREAM = 0x4000_0000     # individual-field flag of the elitist noise streams (mask streams: plain i)


def _init_genome(spec: MLPSpec, seed: int) -> np.ndarray:
    """A fresh deployed genome: OpenES's integer init (U(+-1/sqrt(fan_in)) weights, zero biases)."""
    es = OpenES(spec, OpenESParams(population=2))
    mean = es._init_mean(seed)
    return np.clip((mean.astype(np.int64) + (1 << (MEAN_FRAC - 1))) >> MEAN_FRAC, -127, 127).astype(np.int8)


def boost_decay(boost_q: int, decay_q: int) -> int:
    return max(ONE_Q16, (int(boost_q) * int(decay_q) + (1 << 15)) >> 16)


def trained_names(spec: MLPSpec, trainable: str) -> set[str]:
    if trainable not in TRAINABLE:
        raise ValueError(f"trainable must be one of {TRAINABLE}, got {trainable!r}")
    names = [n for n, _ in spec.tensors()]
    return set(names if trainable == "all" else names[-2:])


class OpenESLearner:
    """OpenES generations with the strategy's own kernels; the per-update Python work (tensor
    slices, shaping table, Q16 constants) is hoisted out of the loop. ``update`` equals
    ``OpenES.tell`` bit for bit (tests/test_online.py checks it)."""
    name = "openes"

    def __init__(self, spec: MLPSpec, population: int = 4, sigma: float = 0.03, lr: float = 0.5,
                 momentum: float = 0.5, trainable: str = "all"):
        self.spec = spec
        self.trained = trained_names(spec, trainable)
        self.es = OpenES(spec, OpenESParams(population=int(population), sigma=float(sigma), lr=float(lr),
                                            momentum=float(momentum), shaping="centered"))
        p = self.es.params
        self.population = p.population
        self.base_sigma_m = self.es._sigma_m(p.sigma)
        self.slices = self.es._tensor_slices()
        self.w = shaping_weights(p.population, p.shaping).astype(np.int64)
        self.beta_q, self.wd_q = np.int32(q16(p.momentum)), np.int32(q16(p.weight_decay))
        self.lr_q = q16(p.lr)

    def init_state(self, genome: np.ndarray, seed: int) -> State:
        n = self.spec.n_params
        arrays = {"mean": genome.astype(np.int32) << MEAN_FRAC, "momentum": np.zeros(n, dtype=np.int32),
                  "sigma_m": self.base_sigma_m.copy(), "best": genome.astype(np.int8).copy()}
        return State(0, int(seed), None, arrays, {"lr_q": self.lr_q})

    def deployed(self, state: State) -> np.ndarray:
        return state.arrays["best"]

    def candidates(self, state: State, boost_q: int) -> Population:
        sm = (self.base_sigma_m * int(boost_q) + (1 << 15)) >> 16
        state.arrays["sigma_m"] = np.minimum(sm, M_MAX).astype(np.int64)
        keys = pair_keys(state.seed, state.generation, self.population // 2)
        pop = Population.empty(self.spec, self.population, np.int8)
        mean = state.arrays["mean"]
        for ti, (name, off, size) in enumerate(self.slices):
            if name not in self.trained:
                pop.tensors[name][:] = state.arrays["best"][off:off + size]
                continue
            ask_int8(mean[off:off + size], keys, np.int32(state.arrays["sigma_m"][ti]), np.uint32(off),
                     pop.tensors[name])
        return pop

    def update(self, state: State, pop: Population, scores: np.ndarray) -> tuple[State, bool]:
        # sigma_decay = lr_decay = 1 and sigma_min = lr_min = 0 here, so sigma_m and lr_q stay as they are
        fit = np.asarray(scores, dtype=np.float64).mean(axis=1)
        wr = self.w[ranks(fit)]
        d = (wr[0::2] - wr[1::2]).astype(np.int32)
        keys = pair_keys(state.seed, state.generation, self.population // 2)
        mean = state.arrays["mean"].copy()
        mom = state.arrays["momentum"].copy()
        sm = state.arrays["sigma_m"]
        lr_q = np.int32(state.scalars["lr_q"])
        for ti, (name, off, size) in enumerate(self.slices):
            if name not in self.trained:
                continue
            update_int8(mean[off:off + size], mom[off:off + size], keys, d, np.int32(sm[ti]), np.uint32(off),
                        self.beta_q, lr_q, self.wd_q)
        arrays = dict(state.arrays, mean=mean, momentum=mom)
        arrays["best"] = np.clip((mean.astype(np.int64) + (1 << (MEAN_FRAC - 1))) >> MEAN_FRAC,
                                 -127, 127).astype(np.int8)
        changed = not np.array_equal(arrays["best"], state.arrays["best"])
        return State(state.generation + 1, state.seed, None, arrays, dict(state.scalars)), changed

    def on_drift(self, state: State) -> None:
        state.arrays["momentum"][:] = 0          # old direction points at the old concept


@njit(cache=True)
def _mutate(parent, mkey, nkey, thresh, m, offset, out):
    for j in range(parent.shape[0]):
        h = rng.u32(mkey, np.uint32(offset + j))
        v = np.int32(parent[j])
        if h < thresh:
            v = v + rng.gauss_scaled(rng.u32(nkey, np.uint32(offset + j)), m)
        out[j] = min(max(v, np.int32(-127)), np.int32(127))


class ElitistLearner:
    name = "elitist"

    def __init__(self, spec: MLPSpec, population: int = 4, sigma: float = 0.1, rate: float = 0.05,
                 trainable: str = "all"):
        if population < 1:
            raise ValueError(f"elitist needs >= 1 child per update, got population {population}")
        self.spec = spec
        self.trained = trained_names(spec, trainable)
        self.population = int(population) + 1          # row 0 = the parent, rows 1.. = children
        self.thresh = np.uint32(rng.bernoulli_threshold(float(rate)))
        self.sigma = float(sigma)
        self.slices = [(n, spec.offsets()[n], int(np.prod(s))) for n, s in spec.tensors()]

    def init_state(self, genome: np.ndarray, seed: int) -> State:
        return State(0, int(seed), None, {"best": genome.astype(np.int8).copy()}, {})

    def deployed(self, state: State) -> np.ndarray:
        return state.arrays["best"]

    def candidates(self, state: State, boost_q: int) -> Population:
        parent = state.arrays["best"]
        pop = Population.empty(self.spec, self.population, np.int8)
        for name, off, size in self.slices:
            pop.tensors[name][:] = parent[off:off + size]
            if name not in self.trained:
                continue
            m = rng.gauss_multiplier(self.sigma * 2.0 ** self.spec.tensor_frac(name))
            m = np.int32(min((m * int(boost_q) + (1 << 15)) >> 16, M_MAX))
            for i in range(1, self.population):
                mk = np.uint32(rng.py_key(state.seed, state.generation, i))
                nk = np.uint32(rng.py_key(state.seed, state.generation, NOISE_STREAM | i))
                _mutate(parent[off:off + size], mk, nk, self.thresh, m, np.uint32(off), pop.tensors[name][i])
        return pop

    def update(self, state: State, pop: Population, scores: np.ndarray) -> tuple[State, bool]:
        fit = np.asarray(scores, dtype=np.int64).sum(axis=1)
        best = 1 + int(np.argmax(fit[1:]))           # lowest index on ties
        arrays = dict(state.arrays)
        accepted = bool(fit[best] > fit[0])
        if accepted:
            arrays["best"] = pop.genome(best)
        return State(state.generation + 1, state.seed, None, arrays, dict(state.scalars)), accepted

    def on_drift(self, state: State) -> None:
        pass


def make_learner(name: str, spec: MLPSpec, **kw):
    if name == "openes":
        return OpenESLearner(spec, **kw)
    if name == "elitist":
        return ElitistLearner(spec, **kw)
    raise ValueError(f"unknown learner {name!r}; choose one of {LEARNERS}")
