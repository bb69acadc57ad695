"""Truncation GA with elitism in plain float NumPy (reference twin of strategies/ga.py; EMNN 2025).

    fitness = mean score (e.g. -MSE);  top = k fittest;  elites copied;
    child = where(U < 0.5, a, b) + mask(p=rate) * N(0, sigma),  a, b uniform from top
"""
from __future__ import annotations

import numpy as np


def init(rng: np.random.Generator, n_params: int, size: int, init_range=1.0):
    return rng.uniform(-init_range, init_range, (size, n_params))


def next_generation(rng, pop, fitness, k=10, n_elite=2, rate=1.0, sigma=0.2):
    top = np.argsort(-np.asarray(fitness), kind="stable")[:k]
    children = np.empty_like(pop)
    children[:n_elite] = pop[top[:n_elite]]
    for i in range(n_elite, len(pop)):
        a, b = pop[rng.choice(top)], pop[rng.choice(top)]
        child = np.where(rng.random(a.shape) < 0.5, a, b)
        children[i] = child + (rng.random(a.shape) < rate) * rng.normal(0.0, sigma, a.shape)
    return children


def linear_fitness(pop, X, Y):
    """-MSE of y = W x + b for each genome [W, b] (EMNN's task)."""
    pred = pop[:, :1] * X[None, :] + pop[:, 1:2]
    return -((pred - Y[None, :]) ** 2).mean(1)
