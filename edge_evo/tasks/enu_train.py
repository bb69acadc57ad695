"""Training a single ENU with the core OpenES (seed 002, Algorithm 1) on a task that scores a
population: ``task.scores(genomes [P, n_params], generation) -> [P, E]`` (higher is better, E
environment copies shared by all offspring of a generation).

``orthogonal_genome`` is upstream's initialisation: every weight matrix orthogonal (QR of a
Gaussian matrix, sign-corrected), its bias column (the input that is always 1) zero. The Gaussian
numbers come from the counter RNG, so (seed) fixes the genome on every machine.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from .. import rng
from ..progress import Progress

log = logging.getLogger(__name__)

PURPOSE_ORTHO = 0x8000_0100


def orthogonal_genome(spec, seed: int, gain: float = 1.0) -> np.ndarray:
    """Flat float32 genome: orthogonal W_g, W_c, W_o (times ``gain``), zero bias columns."""
    parts = []
    for ti, (name, (rows, cols)) in enumerate(spec.tensors()):
        n = rows * (cols - 1)
        z = rng.gauss_stream(seed, ti, PURPOSE_ORTHO, n, sigma=1000.0).astype(np.float64).reshape(rows, cols - 1)
        big, small = max(z.shape), min(z.shape)
        q, r = np.linalg.qr(z if z.shape[0] >= z.shape[1] else z.T)
        q = q * np.sign(np.diag(r))[None, :]             # a unique Q (Haar-distributed)
        w = q if z.shape[0] >= z.shape[1] else q.T
        m = np.zeros((rows, cols))
        m[:, :cols - 1] = gain * w[:rows, :cols - 1]
        parts.append(m.ravel())
    return np.concatenate(parts).astype(np.float32)


def evolve(es, state, task, generations: int, log_every: int = 50, progress: bool = True,
           eval_fn=None, eval_every: int = 0):
    """Run ``generations`` ask / score / tell steps. Returns (state, history): history holds one
    dict per logged generation (generation, mean fitness, best fitness, seconds, eval figures)."""
    hist = []
    t0 = time.perf_counter()
    with Progress(generations, "evolve", enabled=progress) as pb:
        for i in range(generations):
            pop = es.ask(state)
            scores = task.scores(pop.to_flat(), state.generation)
            fit = scores.mean(axis=1)
            state = es.tell(state, pop, scores)
            row = None
            if log_every and (i % log_every == 0 or i == generations - 1):
                row = {"generation": state.generation, "mean_fitness": float(fit.mean()),
                       "best_fitness": float(fit.max()), "seconds": time.perf_counter() - t0}
            if eval_fn is not None and eval_every and ((i + 1) % eval_every == 0 or i == generations - 1):
                row = row or {"generation": state.generation, "seconds": time.perf_counter() - t0}
                row.update(eval_fn(es.best_genome(state)))
            if row is not None:
                hist.append(row)
                log.info("gen %d: %s", state.generation, row)
            pb.update(1, best=float(fit.max()))
    return state, hist


__all__ = ["orthogonal_genome", "evolve"]
