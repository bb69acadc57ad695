"""GENREG in plain float NumPy (reference twin of strategies/genreg.py; Miller 2024).

    trust_i <- for each sample b:  trust_i = 0.999 * trust_i + (10 if correct else -1.5)
    survivors = top int(0.2 P) by trust
    parents   ~ 0.7 * (trust - min_survivor + 1), two draws with replacement per child
    child     = where(U < 0.5, parent_a, parent_b);  child += mask(p=0.07) * N(0, 0.1)
    child trust = 0.03 * (trust_a + trust_b)
"""
from __future__ import annotations

import numpy as np


def init(rng: np.random.Generator, dims, size: int, init_w=0.5, init_b=0.1):
    """A population as a list of dicts {'W1', 'b1', ...} (W[out, in])."""
    pop = []
    for _ in range(size):
        g = {}
        for l in range(len(dims) - 1):
            g[f"W{l + 1}"] = rng.uniform(-init_w, init_w, (dims[l + 1], dims[l]))
            g[f"b{l + 1}"] = rng.uniform(-init_b, init_b, dims[l + 1])
        pop.append(g)
    return pop


def forward(g, X):
    n = len(g) // 2
    h = X
    for l in range(1, n + 1):
        z = h @ g[f"W{l}"].T + g[f"b{l}"]
        h = np.tanh(z) if l < n else z
    return h


def sampled_correct(rng, g, X, y):
    """Softmax-sampled predictions, 1 where they hit the label (GENREG's training signal)."""
    z = forward(g, X)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    pred = (rng.random((len(p), 1)) > p.cumsum(1)).sum(1)     # inverse CDF, one draw per sample
    return pred == y


def trust_after(trust, correct, decay=0.999, reward=10.0, penalty=-1.5):
    for c in correct:                      # samples in batch order
        trust = trust * decay + (reward if c else penalty)
    return trust


def next_generation(rng, pop, trust, survival=0.2, rate=0.07, scale=0.1, inheritance=0.03):
    order = np.argsort(-np.asarray(trust), kind="stable")
    survivors = order[:max(1, int(survival * len(pop)))]
    w = 0.7 * (trust[survivors] - trust[survivors[-1]] + 1.0)
    children, child_trust = [], []
    for _ in range(len(pop)):
        a, b = rng.choice(survivors, size=2, p=w / w.sum())
        child = {}
        for name in pop[a]:
            pick = rng.random(pop[a][name].shape) < 0.5
            v = np.where(pick, pop[a][name], pop[b][name])
            mask = rng.random(v.shape) < rate
            child[name] = v + mask * rng.normal(0.0, scale, v.shape)
        children.append(child)
        child_trust.append((trust[a] + trust[b]) * inheritance)
    return children, np.array(child_trust)
