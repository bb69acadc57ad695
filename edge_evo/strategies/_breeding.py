"""Population-level helpers shared by the genetic strategies (GENREG, GA): uniform initialisation
and crossover + mutation applied tensor by tensor with each tensor's flat-genome offset, so the
RNG index of every element is its flat genome index (kernels/operators.py)."""
from __future__ import annotations

import numpy as np

from ..fixedpoint import quantize
from ..kernels.operators import breed, uniform_init, uniform_init_int8
from ..models.mlp import MLPSpec, Population
from ..rng import bernoulli_threshold, gauss_multiplier
from .base import PURPOSE_INIT


def init_range_q(r: float, frac: int) -> int:
    """Init range r in Q(frac) integer units: round-half-up(r * 2**frac), saturated to 127
    (the r_q of operators.uniform_init_int8 and of the C config's init_wq / init_bq)."""
    if not np.isfinite(r) or r < 0:
        raise ValueError(f"init range must be a finite number >= 0, got {r}")
    return int(quantize(r, frac))


def init_population(spec: MLPSpec, size: int, seed: int, mode: str, w_range: float, b_range: float) -> Population:
    """W ~ U(-w_range, w_range), b ~ U(-b_range, b_range). int8 mode draws integers uniform on
    [-r_q, r_q] with r_q = init_range_q(range, tensor frac) (integer only, as the C engine)."""
    if size < 1:
        raise ValueError(f"population must be >= 1, got {size}")
    off = spec.offsets()
    tensors = {}
    for name, shape in spec.tensors():
        r = w_range if name.startswith("W") else b_range
        n = int(np.prod(shape))
        if mode == "int8":
            tensors[name] = uniform_init_int8(size, n, seed, off[name], init_range_q(r, spec.tensor_frac(name)),
                                              PURPOSE_INIT)
        else:
            tensors[name] = uniform_init(size, n, seed, off[name], -r, r, PURPOSE_INIT).astype(np.float32)
    return Population(spec, tensors)


def seeded_population(spec: MLPSpec, genome: np.ndarray, size: int, seed: int, rate: float, sigma: float,
                      mode: str) -> Population:
    """Individual 0 = ``genome``; the others are its mutants (the strategy's own mutation), drawn
    from a seed derived from ``seed`` so their streams never coincide with a generation's."""
    from ..rng import py_key
    base = Population.from_flat(spec, genome[None, :])
    zeros = np.zeros(size, dtype=np.int64)
    pop = breed_population(base, zeros, zeros, py_key(seed, 0, PURPOSE_INIT), 0, rate, sigma, mode)
    for name in pop.tensors:
        pop.tensors[name][0] = base.tensors[name][0]
    return pop


def breed_population(pop: Population, parent_a, parent_b, seed: int, generation: int,
                     rate: float, sigma: float, mode: str) -> Population:
    """Children i = mutate(uniform_crossover(pop[a_i], pop[b_i])); sigma in real units
    (int8: sigma * 2**frac integer units, per tensor)."""
    spec = pop.spec
    off = spec.offsets()
    thr = bernoulli_threshold(rate)
    n_children = len(parent_a)
    out = {}
    for name, _ in spec.tensors():
        src = pop.tensors[name]
        dst = np.empty((n_children, src.shape[1]), dtype=src.dtype)
        s = gauss_multiplier(sigma * 2.0 ** spec.tensor_frac(name)) if mode == "int8" else sigma
        breed(parent_a, parent_b, src, seed, generation, off[name], thr, s, dst)
        out[name] = dst
    return Population(spec, out)


def check_scores(scores, pop: Population, name: str) -> np.ndarray:
    s = np.asarray(scores)
    if s.ndim == 1:
        s = s[:, None]
    if s.ndim != 2 or s.shape[0] != pop.size or s.shape[1] < 1:
        raise ValueError(f"{name}.tell needs scores of shape [P={pop.size}, B], got {np.shape(scores)}")
    if np.issubdtype(s.dtype, np.floating) and not np.all(np.isfinite(s)):
        raise ValueError(f"{name}.tell got NaN/inf scores: check the task's score function")
    return s


def check_population(pop: Population, spec: MLPSpec, dtype, name: str):
    if pop.spec != spec:
        raise ValueError(f"{name}: population spec {pop.spec.dims} does not match the strategy's {spec.dims}")
    if pop.dtype != dtype:
        raise TypeError(f"{name}: population dtype {pop.dtype} does not match mode dtype {np.dtype(dtype)}")
