"""Tasks registry: name -> factory(**options) -> Problem. It drives the CLI and generic tests."""
from __future__ import annotations

import inspect
from typing import Callable

import numpy as np

from .datasets import load_digits, load_mnist, make_linear, render_alphabet
from .problem import ClassificationProblem, Problem, RegressionProblem

TASKS: dict[str, Callable[..., Problem]] = {}


def register_task(name: str):
    def deco(fn):
        TASKS[name] = fn
        return fn
    return deco


def get_task(name: str, **options) -> Problem:
    """Build the problem ``name`` with keyword ``options`` (see each factory's docstring)."""
    try:
        factory = TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASKS)}") from None
    params = inspect.signature(factory).parameters
    bad = sorted(set(options) - set(params))
    if bad:
        raise ValueError(f"unknown option(s) {bad} for task {name!r}; valid: {sorted(params)}")
    return factory(**options)


def _subset(n, limit, name):
    if limit is None:
        return n
    limit = int(limit)
    if not 1 <= limit <= n:
        raise ValueError(f"{name} must be in 1..{n}, got {limit}")
    return limit


def _idx_task(kind, path, download, base_url, samples_per_class, batch_size, n_train, n_test):
    Xtr, ytr = load_mnist(kind, "train", path=path, download=download, base_url=base_url)
    Xte, yte = load_mnist(kind, "test", path=path, download=download, base_url=base_url)
    a, b = _subset(len(ytr), n_train, "n_train"), _subset(len(yte), n_test, "n_test")
    return ClassificationProblem(Xtr[:a], ytr[:a], Xte[:b], yte[:b], n_classes=10,
                                 samples_per_class=samples_per_class, batch_size=batch_size)


@register_task("mnist")
def mnist_task(path=None, download=True, base_url=None, samples_per_class=None, batch_size=None,
               n_train=None, n_test=None) -> ClassificationProblem:
    """MNIST 784 -> 10; GENREG's setting is ``samples_per_class=20``. ``n_train``/``n_test`` keep
    the first images only (quick runs)."""
    return _idx_task("mnist", path, download, base_url, samples_per_class, batch_size, n_train, n_test)


@register_task("fashion-mnist")
def fashion_mnist_task(path=None, download=True, base_url=None, samples_per_class=None, batch_size=None,
                       n_train=None, n_test=None) -> ClassificationProblem:
    """Fashion-MNIST 784 -> 10 (options as for 'mnist')."""
    return _idx_task("fashion-mnist", path, download, base_url, samples_per_class, batch_size, n_train, n_test)


@register_task("digits")
def digits_task(samples_per_class=None, batch_size=None, test_every=5) -> ClassificationProblem:
    """scikit-learn 8x8 digits 64 -> 10, offline; every ``test_every``-th image is held out."""
    X, y = load_digits()
    te = np.arange(len(y)) % int(test_every) == int(test_every) - 1
    return ClassificationProblem(X[~te], y[~te], X[te], y[te], n_classes=10,
                                 samples_per_class=samples_per_class, batch_size=batch_size)


@register_task("linear")
def linear_task(n=64, n_test=256, seed=0, batch_size=None) -> RegressionProblem:
    """EMNN's Y = 2X + 3, X in [-1, 1] (1 -> 1). Note: int8 weights in Q6 stop at 1.98, so an int8
    spec needs w_frac, b_frac <= 5 to represent W = 2, b = 3."""
    X, y = make_linear(n, seed)
    Xt, yt = make_linear(n_test, seed + 1)
    return RegressionProblem(X, y, Xt, yt, batch_size=batch_size)


@register_task("alphabet")
def alphabet_task(size=100, variations=0, fonts=None, seed=0, samples_per_class=None,
                  batch_size=None) -> ClassificationProblem:
    """GENREG's letters A-Z, size x size -> 26. Train: clean letters plus ``variations`` jittered
    copies; test: the clean letters. 100 x 100 as in GENREG (10,000-128-26); smaller sizes train
    faster."""
    X, y = render_alphabet(size=size, fonts=fonts, variations=variations, seed=seed)
    clean = np.zeros(len(y), dtype=bool)
    per_font = 26 * (1 + int(variations))
    for f in range(len(y) // per_font):
        clean[f * per_font:f * per_font + 26] = True
    return ClassificationProblem(X, y, X[clean], y[clean], n_classes=26,
                                 samples_per_class=samples_per_class, batch_size=batch_size)
