"""Truncation genetic algorithm with elitism (EMNN: Abhinandan, "EMNN: PyTorch-based
Evolutionary Mini Neural Network", 2025; the classic GA of Holland 1975).

Per generation, with fitness f_i = mean_b score[i, b] (higher is better; score 'neg_mse' for
regression)::

    top  = the k = max(1, round(elite_fraction * P)) fittest genomes (stable: ties -> lower index)
    children 0 .. e-1  = copies of the e fittest (elitism, e = n_elite)
    children e .. P-1  = mutate(uniform_crossover(top[u_a], top[u_b])),  u uniform in [0, k)
    mutation: per element with probability mutation_rate, + N(0, mutation_sigma)

In int8 mode sigma is mutation_sigma * 2**frac integer units per tensor and values saturate to
[-127, 127]. RNG: parents of generation g from key(seed, g, PURPOSE_SELECT) (draw 2i, 2i + 1
for child i); crossover and mutation of child i from key(seed, g, i) (kernels/operators.py).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..kernels.operators import topk, uniform_select
from ..models.mlp import MLPSpec, Population
from . import register
from ._breeding import init_population, breed_population, seeded_population, check_scores, check_population
from .base import Strategy, State, PURPOSE_SELECT

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GAParams:
    """Truncation GA hyper-parameters (defaults: the EMNN regression demo)."""
    population: int = 50
    elite_fraction: float = 0.2     # share of the population that may parent children (top-k)
    n_elite: int = 2                # copied unchanged into the next generation
    mutation_rate: float = 1.0
    mutation_sigma: float = 0.2
    init_w: float = 1.0
    init_b: float = 1.0

    def __post_init__(self):
        if self.population < 1:
            raise ValueError(f"population must be >= 1, got {self.population}")
        if not 0.0 < self.elite_fraction <= 1.0:
            raise ValueError(f"elite_fraction must be in (0, 1], got {self.elite_fraction}")
        if not 0 <= self.n_elite <= self.population:
            raise ValueError(f"n_elite must be in [0, population], got {self.n_elite}")
        if not 0.0 <= self.mutation_rate <= 1.0:
            raise ValueError(f"mutation_rate must be in [0, 1], got {self.mutation_rate}")
        if self.mutation_sigma < 0 or self.init_w < 0 or self.init_b < 0:
            raise ValueError("mutation_sigma, init_w and init_b must be >= 0")

    def top_k(self) -> int:
        return min(self.population, max(1, int(round(self.elite_fraction * self.population))))


@register
class GA(Strategy):
    name = "ga"
    Params = GAParams
    presets = {"emnn": GAParams(),
               "classify": GAParams(population=200, elite_fraction=0.2, n_elite=2, mutation_rate=0.07,
                                    mutation_sigma=0.1, init_w=0.5, init_b=0.1)}
    prediction = "argmax"
    score = "neg_mse"

    def init(self, seed: int) -> State:
        p = self.params
        pop = init_population(self.spec, p.population, seed, self.mode, p.init_w, p.init_b)
        arrays = {"fitness": np.full(p.population, -np.inf),
                  "best": pop.genome(0),
                  "best_fitness": np.asarray(-np.inf)}
        return State(0, int(seed), pop, arrays)

    def _seed_state(self, state: State, genome: np.ndarray) -> State:
        p = self.params
        state.population = seeded_population(self.spec, genome, p.population, state.seed,
                                             p.mutation_rate, p.mutation_sigma, self.mode)
        state.arrays["best"] = genome.copy()
        return state

    def ask(self, state: State) -> Population:
        return state.population

    def tell(self, state: State, pop: Population, scores: np.ndarray) -> State:
        check_population(pop, self.spec, self.dtype, self.name)
        fitness = check_scores(scores, pop, self.name).astype(np.float64).mean(axis=1)
        p, g, seed = self.params, state.generation, state.seed
        P = pop.size
        top = topk(fitness, min(p.top_k(), P))
        n_elite = min(p.n_elite, P, len(top))
        draws = uniform_select(len(top), 2 * P, seed, g, PURPOSE_SELECT)
        pa, pb = top[draws[0::2]], top[draws[1::2]]
        children = breed_population(pop, pa, pb, seed, g, p.mutation_rate, p.mutation_sigma, self.mode)
        for name, t in children.tensors.items():
            t[:n_elite] = pop.tensors[name][top[:n_elite]]
        b = int(top[0])
        arrays = {"fitness": fitness, "best": pop.genome(b), "best_fitness": np.asarray(fitness[b])}
        log.debug("ga gen %d: best fitness %.6g", g, fitness[b])
        return State(g + 1, seed, children, arrays, dict(state.scalars))
