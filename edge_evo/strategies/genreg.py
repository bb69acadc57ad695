"""GENREG: trust-based evolutionary selection (P. Miller, "GENREG: Evolutionary Neural Network
Training Through Trust-Based Selection", 2024; behaviour of the public A1CST/GENREG_MNIST_UBUNTU
training loop, see notes/seed-facts.md).

Per generation, every genome sees the same B samples in order; with softmax-SAMPLED predictions::

    for each sample b (batch order):  trust *= decay;  trust += reward if correct else penalty
    survivors = top int(survival * P) by trust (stable: ties -> lower index)
    parents   = 2 draws per child, with replacement, P(s) ~ 0.7 * (trust_s - min_survivor_trust + 1)
    child     = uniform crossover (p = 0.5 per element, all tensors) of the two parents,
                then Gaussian mutation: mask p = child_mutation_rate, noise N(0, mutation_scale)
    child trust = (trust_a + trust_b) * trust_inheritance
No elitism: the whole population is replaced.

Integer mode (bit-exact with the C runtime): trust is int32 Q8 (value * 256)::

    t -= rshift_round(t * D, 17)        D = round((1 - decay) * 2**17) = 131 -> decay 0.99900055
    t += R  or  t += N                  R = round(reward * 256) = 2560, N = round(penalty * 256) = -384
    weight = t - t_min_survivor + 256   (int64; the factor 0.7 cancels in the normalisation)
    child  = rshift_round((t_a + t_b) * I, 15)   (int64 product)   I = round(inheritance * 2**15) = 983
The decay 1 - 131/2**17 = 0.99900055 differs from 0.999 by 5.5e-7 per sample (0.01 % of trust
after 200 samples); the rounding of t * D adds at most 1/512 per sample. |t| stays below
max(|R|, |N|) / (1 - decay), so t * D < max(|R|, |N|) * 2**17 fits int32 for |reward| < 64.
Mutation noise is sigma * 2**frac integer units per tensor (W: w_frac, b: b_frac), saturated to
[-127, 127]. Float mode uses float64 trust and the exact formulas.

RNG: initial population from PURPOSE_INIT; parents of generation g from key(seed, g,
PURPOSE_SELECT) (draw 2i: parent a of child i, 2i + 1: parent b, indices into the survivor list
in trust order); crossover and mutation of child i from key(seed, g, i) (kernels/operators.py).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from ..kernels.operators import topk, weighted_select
from ..models.mlp import MLPSpec, Population
from . import register
from ._breeding import init_population, breed_population, seeded_population, check_scores, check_population
from .base import Strategy, State, PURPOSE_SELECT

log = logging.getLogger(__name__)

TRUST_FRAC = 8          # trust is Q8 in int8 mode
DECAY_SHIFT = 17
INHERIT_SHIFT = 15


@dataclass(frozen=True)
class GenregParams:
    """GENREG hyper-parameters (defaults: the public MNIST run)."""
    population: int = 200
    child_mutation_rate: float = 0.07
    mutation_scale: float = 0.1
    survival: float = 0.2
    trust_inheritance: float = 0.03
    correct_reward: float = 10.0
    wrong_penalty: float = -1.5
    trust_decay: float = 0.999
    init_w: float = 0.5
    init_b: float = 0.1
    samples_per_class: int = 20     # for the problem: images per class per generation

    def __post_init__(self):
        if self.population < 1:
            raise ValueError(f"population must be >= 1, got {self.population}")
        for name in ("child_mutation_rate", "survival", "trust_inheritance", "trust_decay"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if self.survival <= 0:
            raise ValueError("survival must be > 0 (at least one survivor)")
        if self.trust_inheritance > 0.5:
            raise ValueError("trust_inheritance must be <= 0.5 so trust stays bounded")
        if max(abs(self.correct_reward), abs(self.wrong_penalty)) >= 64:
            raise ValueError("|correct_reward| and |wrong_penalty| must be < 64 (int32 Q8 trust)")
        if self.mutation_scale < 0 or self.init_w < 0 or self.init_b < 0:
            raise ValueError("mutation_scale, init_w and init_b must be >= 0")
        if self.samples_per_class < 1:
            raise ValueError("samples_per_class must be >= 1")

    def n_survivors(self) -> int:
        return max(1, int(self.survival * self.population))

    # Q constants of the integer mode
    def q_decay(self) -> int:
        return int(round((1.0 - self.trust_decay) * 2 ** DECAY_SHIFT))

    def q_reward(self) -> int:
        return int(round(self.correct_reward * 2 ** TRUST_FRAC))

    def q_penalty(self) -> int:
        return int(round(self.wrong_penalty * 2 ** TRUST_FRAC))

    def q_inherit(self) -> int:
        return int(round(self.trust_inheritance * 2 ** INHERIT_SHIFT))


# ---------------------------------------------------------------- trust kernels
@njit(parallel=True, cache=True)
def trust_update_q8(trust0, correct, d, reward, penalty, out):
    """out[p] = trust after the samples of row p in order: t -= rshift_round(t*d, 17); t += reward|penalty."""
    P, B = correct.shape
    rnd = np.int32(1 << (DECAY_SHIFT - 1))
    for p in prange(P):
        t = np.int32(trust0[p])
        for b in range(B):
            t = np.int32(t - ((t * np.int32(d) + rnd) >> np.int32(DECAY_SHIFT)))
            t = np.int32(t + (np.int32(reward) if correct[p, b] else np.int32(penalty)))
        out[p] = t


@njit(parallel=True, cache=True)
def trust_update_float(trust0, correct, decay, reward, penalty, out):
    P, B = correct.shape
    for p in prange(P):
        t = trust0[p]
        for b in range(B):
            t = t * decay + (reward if correct[p, b] else penalty)
        out[p] = t


def child_trust_q8(ta, tb, q_inherit: int) -> np.ndarray:
    """rshift_round((t_a + t_b) * I, 15) with an int64 product."""
    s = (ta.astype(np.int64) + tb.astype(np.int64)) * q_inherit
    return ((s + (1 << (INHERIT_SHIFT - 1))) >> INHERIT_SHIFT).astype(np.int32)


@register
class GENREG(Strategy):
    name = "genreg"
    Params = GenregParams
    presets = {"readme": GenregParams(population=200, child_mutation_rate=0.07, mutation_scale=0.1,
                                      survival=0.2, trust_inheritance=0.03, correct_reward=10.0,
                                      wrong_penalty=-1.5, trust_decay=0.999, samples_per_class=20)}
    prediction = "sample"
    score = "correct"

    def __init__(self, spec: MLPSpec, params=None, mode: str = "int8", **overrides):
        super().__init__(spec, params, mode, **overrides)
        self.trust_dtype = np.int32 if mode == "int8" else np.float64

    # ------------------------------------------------------------ interface
    def init(self, seed: int) -> State:
        p = self.params
        pop = init_population(self.spec, p.population, seed, self.mode, p.init_w, p.init_b)
        arrays = {"trust": np.zeros(p.population, dtype=self.trust_dtype),
                  "best": pop.genome(0),
                  "best_trust": np.zeros((), dtype=self.trust_dtype)}
        return State(0, int(seed), pop, arrays)

    def _seed_state(self, state: State, genome: np.ndarray) -> State:
        p = self.params
        state.population = seeded_population(self.spec, genome, p.population, state.seed,
                                             p.child_mutation_rate, p.mutation_scale, self.mode)
        state.arrays["best"] = genome.copy()
        return state

    def ask(self, state: State) -> Population:
        return state.population

    def evaluate_trust(self, trust0: np.ndarray, correct: np.ndarray) -> np.ndarray:
        """Trust after one generation's samples (correct: bool [P, B] in batch order)."""
        p = self.params
        out = np.empty(correct.shape[0], dtype=self.trust_dtype)
        c = np.ascontiguousarray(correct, dtype=np.bool_)
        if self.mode == "int8":
            trust_update_q8(np.ascontiguousarray(trust0, dtype=np.int32), c, p.q_decay(), p.q_reward(),
                            p.q_penalty(), out)
        else:
            trust_update_float(np.ascontiguousarray(trust0, dtype=np.float64), c, float(p.trust_decay),
                               float(p.correct_reward), float(p.wrong_penalty), out)
        return out

    def select_parents(self, trust: np.ndarray, n_children: int, seed: int, generation: int):
        """(parent_a, parent_b, survivors): parent rows drawn by GENREG's shifted-trust weights."""
        survivors = topk(trust, self.params.n_survivors())
        ts = trust[survivors]
        if self.mode == "int8":
            w = ts.astype(np.int64) - int(ts[-1]) + (1 << TRUST_FRAC)
        else:
            w = 0.7 * (ts - ts[-1] + 1.0)
        draws = weighted_select(w, 2 * n_children, seed, generation, PURPOSE_SELECT)
        return survivors[draws[0::2]], survivors[draws[1::2]], survivors

    def tell(self, state: State, pop: Population, scores: np.ndarray) -> State:
        check_population(pop, self.spec, self.dtype, self.name)
        s = check_scores(scores, pop, self.name)
        if not np.all((s == 0) | (s == 1)):
            raise ValueError("GENREG needs per-sample correctness scores (score='correct': 1 right, 0 wrong)")
        trust0 = state.arrays["trust"]
        if trust0.shape != (pop.size,):
            raise ValueError(f"state trust has {trust0.shape[0]} entries for a population of {pop.size}")
        p, g, seed = self.params, state.generation, state.seed
        trust = self.evaluate_trust(trust0, s == 1)
        pa, pb, survivors = self.select_parents(trust, p.population, seed, g)
        if self.mode == "int8":
            child_trust = child_trust_q8(trust[pa], trust[pb], p.q_inherit())
        else:
            child_trust = (trust[pa] + trust[pb]) * p.trust_inheritance
        children = breed_population(pop, pa, pb, seed, g, p.child_mutation_rate, p.mutation_scale, self.mode)
        b = int(survivors[0])
        arrays = {"trust": child_trust.astype(self.trust_dtype),
                  "best": pop.genome(b),
                  "best_trust": np.asarray(trust[b], dtype=self.trust_dtype)}
        log.debug("genreg gen %d: best trust %s, mean %s", g, trust[b], trust.mean())
        return State(g + 1, seed, children, arrays, dict(state.scalars))

    @staticmethod
    def trust_value(t, mode: str = "int8") -> float:
        """Trust in reward units (int8 mode stores Q8)."""
        return float(t) / 2 ** TRUST_FRAC if mode == "int8" else float(t)
