"""The evaluation side of evolution: batches, per-sample scores and test accuracy.

A problem holds a dataset and answers three questions for a strategy:

* ``batch(generation, seed)``: which training samples this generation sees. GENREG's scheme
  (``samples_per_class=k``): the classes in a shuffled order, k images per class drawn with
  replacement, fresh every generation, the same batch for every genome. Otherwise
  ``batch_size`` uniform draws with replacement, or the whole training set in order.
  All draws come from the counter-based RNG, stream ``key(seed, generation, PURPOSE_BATCH)``:
  GENREG batches use index i (C-1 down to 1) for the Fisher-Yates swap at position i and index
  C + j for the j-th image draw; uniform batches use index n for sample n.
* ``scores(pop, generation, seed, prediction, score)``: per-sample scores ``[P, B]`` in batch
  order (higher is better), from ``edge_evo.models.forward.forward``.
* ``accuracy(pop)``: argmax test accuracy per genome.

Sampled predictions (GENREG trains on softmax samples) use the Gumbel-max trick,
argmax_c(logit_c + G_c), G ~ Gumbel(0, 1) (Gumbel 1954; Maddison et al. 2014), with
``u = u32(key(seed, generation, PURPOSE_PREDICT), (p * B + n) * C + c)``:

* int8 mode: ``G = gumbel_lut(logit_frac)[u >> 24]``, a 256-entry int32 table
  ``floor(-log(-log((k + 0.5) / 256)) * 2**logit_frac + 0.5)`` added to the int32 logits;
  ties go to the lowest class index. This is what a microcontroller computes.
* float mode: ``G = -log(-log((float(u >> 8) + 0.5) / 2**24))`` in float64.
"""
from __future__ import annotations

import logging
import math

import numpy as np
from numba import njit, prange

from .. import rng
from ..fixedpoint import quantize, quantize_input_u8
from ..models.forward import forward
from ..models.mlp import MLPSpec, Population
from ..strategies.base import PURPOSE_BATCH, PURPOSE_PREDICT
from .datasets import check_finite

log = logging.getLogger(__name__)

PREDICTIONS = ("argmax", "sample")
SCORES = ("correct", "xent", "neg_mse")
_CHUNK_BYTES = 1 << 26   # bound on the largest per-chunk activation array in scores/accuracy


# ------------------------------------------------------------------ Gumbel table
def gumbel_quantile(q):
    """Inverse CDF of the standard Gumbel distribution: -log(-log q)."""
    return -np.log(-np.log(q))


_GUMBEL_LUTS: dict[int, np.ndarray] = {}


def gumbel_lut(logit_frac: int) -> np.ndarray:
    """int32[256]: round-half-up(gumbel_quantile((k + 0.5) / 256) * 2**logit_frac)."""
    logit_frac = int(logit_frac)
    if not 0 <= logit_frac <= 24:
        raise ValueError(f"logit_frac must be in [0, 24], got {logit_frac}")
    if logit_frac not in _GUMBEL_LUTS:
        q = (np.arange(256, dtype=np.float64) + 0.5) / 256.0
        t = np.floor(gumbel_quantile(q) * 2.0 ** logit_frac + 0.5).astype(np.int32)
        t.setflags(write=False)
        _GUMBEL_LUTS[logit_frac] = t
    return _GUMBEL_LUTS[logit_frac]


# ------------------------------------------------------------------ kernels
@njit(cache=True)
def _genreg_batch(k, members, starts, counts, per_class, out):
    """Classes shuffled (Fisher-Yates: step i uses u32(k, i)), then per_class draws per class
    (draw j uses u32(k, C + j)), with replacement, class after class."""
    C = counts.shape[0]
    order = np.arange(C)
    for i in range(C - 1, 0, -1):
        j = rng.bounded(rng.u32(k, np.uint32(i)), i + 1)
        t = order[i]
        order[i] = order[j]
        order[j] = t
    pos = 0
    for ci in range(C):
        c = order[ci]
        for _ in range(per_class):
            h = rng.u32(k, np.uint32(C + pos))
            out[pos] = members[starts[c] + rng.bounded(h, counts[c])]
            pos += 1


@njit(cache=True)
def _uniform_batch(k, n_total, out):
    for n in range(out.shape[0]):
        out[n] = rng.bounded(rng.u32(k, np.uint32(n)), n_total)


@njit(cache=True, parallel=True)
def _sample_int8(logits, k, n0, B, lut, out):
    """out[p, n] = argmax_c(logits[p, n, c] + lut[u >> 24]), u = u32(k, (p*B + n0 + n)*C + c).
    |logit| < 2**25 for any int8 MLP of fan-in <= 1040, so the int32 sum cannot overflow."""
    P, Bc, C = logits.shape
    for p in prange(P):
        for n in range(Bc):
            base = (np.int64(p) * B + n0 + n) * C
            best = np.int64(0)
            arg = 0
            for c in range(C):
                h = rng.u32(k, np.uint32((base + c) & 0xFFFFFFFF))
                v = np.int64(logits[p, n, c]) + np.int64(lut[h >> np.uint32(24)])
                if c == 0 or v > best:
                    best = v
                    arg = c
            out[p, n] = arg


@njit(cache=True, parallel=True)
def _sample_float(logits, k, n0, B, out):
    """Float twin of _sample_int8: Gumbel noise from the top 24 bits of u, in float64."""
    P, Bc, C = logits.shape
    for p in prange(P):
        for n in range(Bc):
            base = (np.int64(p) * B + n0 + n) * C
            best = 0.0
            arg = 0
            for c in range(C):
                h = rng.u32(k, np.uint32((base + c) & 0xFFFFFFFF))
                q = (np.float64(h >> np.uint32(8)) + 0.5) / 16777216.0
                v = np.float64(logits[p, n, c]) - math.log(-math.log(q))
                if c == 0 or v > best:
                    best = v
                    arg = c
            out[p, n] = arg


# ------------------------------------------------------------------ helpers
def _pop_mode(pop: Population) -> str:
    if pop.dtype == np.int8:
        return "int8"
    if pop.dtype == np.float32:
        return "float32"
    raise TypeError(f"population dtype must be int8 or float32, got {pop.dtype}")


def _logit_values(logits: np.ndarray, spec: MLPSpec) -> np.ndarray:
    """Real values of logits in float64 (int32 logits are Q(logit_frac))."""
    if logits.dtype == np.int32:
        return logits.astype(np.float64) * 2.0 ** -spec.logit_frac
    return logits.astype(np.float64)


def _as_population(pop_or_genome, spec: MLPSpec | None) -> Population:
    if isinstance(pop_or_genome, Population):
        return pop_or_genome
    if spec is None:
        raise TypeError("a bare genome needs its spec: pass spec=MLPSpec(...) or a Population")
    return Population.from_flat(spec, np.asarray(pop_or_genome))


def _chunk_rows(pop: Population) -> int:
    width = max(pop.spec.dims[1:])
    return max(1, _CHUNK_BYTES // (pop.size * width * 4))


def _check_2d_data(X, name):
    X = np.asarray(X)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"{name} must be [samples, features], got shape {X.shape}; reshape images to rows")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty; give at least one sample")
    if X.dtype == np.uint8:
        return X
    if X.dtype.kind not in "fiu" or X.dtype.kind == "c":
        raise TypeError(f"{name} must be uint8 pixels or real numbers, got {X.dtype}")
    check_finite(X, name)
    return X.astype(np.float32) if X.dtype.kind in "iu" else X


# ------------------------------------------------------------------ problems
class Problem:
    """Common part of classification and regression problems (subclasses set n_out)."""
    n_out: int

    def __init__(self, X_train, X_test, batch_size):
        self.X = {"train": _check_2d_data(X_train, "X_train")}
        self.X["test"] = self.X["train"] if X_test is None else _check_2d_data(X_test, "X_test")
        if self.X["test"].shape[1] != self.X["train"].shape[1]:
            raise ValueError(f"X_test has {self.X['test'].shape[1]} features, X_train "
                             f"{self.X['train'].shape[1]}; they must match")
        if batch_size is not None and int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = None if batch_size is None else int(batch_size)
        self._inputs: dict = {}

    @property
    def n_in(self) -> int:
        return self.X["train"].shape[1]

    @property
    def n_train(self) -> int:
        return self.X["train"].shape[0]

    def spec_dims(self, hidden=()) -> tuple[int, ...]:
        """Layer sizes (n_in, *hidden, n_out) for an MLPSpec."""
        if isinstance(hidden, int):
            hidden = (hidden,)
        return (self.n_in, *(int(h) for h in hidden), self.n_out)

    def inputs(self, mode: str = "int8", split: str = "train", x_frac: int = 7) -> np.ndarray:
        """Model inputs of a split: int8 Q(x_frac) or float32 (uint8 pixels / 255). Cached."""
        if mode not in ("int8", "float32"):
            raise ValueError(f"mode must be 'int8' or 'float32', got {mode!r}")
        if split not in self.X:
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        ck = (mode, split, int(x_frac) if mode == "int8" else None)
        if ck not in self._inputs:
            X = self.X[split]
            if mode == "float32":
                out = X.astype(np.float32) / np.float32(255.0) if X.dtype == np.uint8 else X.astype(np.float32)
            elif X.dtype == np.uint8:
                out = quantize_input_u8(X) if x_frac == 7 else quantize(X / 255.0, x_frac)
            else:
                lim = 127.0 / 2.0 ** x_frac
                if np.abs(X).max() > lim:
                    log.warning("%s inputs exceed the int8 Q%d range +-%.4g and saturate; scale the data "
                                "or lower x_frac", split, x_frac, lim)
                out = quantize(X, x_frac)
            out = np.ascontiguousarray(out)
            out.setflags(write=False)
            self._inputs[ck] = out
        return self._inputs[ck]

    def _check_pop(self, pop: Population):
        d = pop.spec.dims
        if d[0] != self.n_in or d[-1] != self.n_out:
            raise ValueError(f"population dims {d} do not fit this problem: need input {self.n_in} and "
                             f"output {self.n_out}; build the spec with problem.spec_dims(hidden)")

    def batch(self, generation: int, seed: int) -> np.ndarray:
        """Training indices (int64) seen by every genome in ``generation``."""
        k = np.uint32(rng.py_key(seed, generation, PURPOSE_BATCH))
        if self.batch_size is not None:
            out = np.empty(self.batch_size, dtype=np.int64)
            _uniform_batch(k, np.int64(self.n_train), out)
            return out
        return np.arange(self.n_train, dtype=np.int64)

    def _logit_chunks(self, pop, X, engine):
        """Yield (start, logits) over row chunks of X so activations stay bounded in memory."""
        rows = _chunk_rows(pop)
        for s in range(0, X.shape[0], rows):
            yield s, forward(pop, X[s:s + rows], engine=engine)


class ClassificationProblem(Problem):
    """Labelled samples (uint8 pixels or floats) for classifiers with ``n_classes`` outputs.

    ``samples_per_class=k``: GENREG batches (k per class, classes shuffled); ``batch_size``:
    uniform batches with replacement; neither: the full training set every generation.
    """

    def __init__(self, X_train, y_train, X_test=None, y_test=None, n_classes: int | None = None,
                 samples_per_class: int | None = None, batch_size: int | None = None):
        super().__init__(X_train, X_test, batch_size)
        if samples_per_class is not None and batch_size is not None:
            raise ValueError("give samples_per_class (GENREG batches) or batch_size (uniform), not both")
        y_tr = self._labels(y_train, "y_train", self.X["train"].shape[0])
        if X_test is None:
            if y_test is not None:
                raise ValueError("y_test given without X_test; pass both or neither")
            y_te = y_tr
        else:
            if y_test is None:
                raise ValueError("X_test given without y_test; pass both or neither")
            y_te = self._labels(y_test, "y_test", self.X["test"].shape[0])
        if n_classes is None:
            n_classes = int(max(y_tr.max(), y_te.max())) + 1
        self.n_classes = int(n_classes)
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {self.n_classes}")
        for name, y in (("y_train", y_tr), ("y_test", y_te)):
            if int(y.max()) >= self.n_classes:
                raise ValueError(f"{name} has label {int(y.max())} but n_classes={self.n_classes}; "
                                 "raise n_classes or fix the labels")
        self.y = {"train": y_tr, "test": y_te}
        self.n_out = self.n_classes
        self.samples_per_class = None
        if samples_per_class is not None:
            k = int(samples_per_class)
            if k < 1:
                raise ValueError(f"samples_per_class must be >= 1, got {samples_per_class}")
            counts = np.bincount(y_tr, minlength=self.n_classes).astype(np.int64)
            if counts.min() == 0:
                empty = np.flatnonzero(counts == 0).tolist()
                raise ValueError(f"classes {empty} have no training samples; samples_per_class needs "
                                 "every class present (or use batch_size)")
            self.samples_per_class = k
            self._members = np.argsort(y_tr, kind="stable").astype(np.int64)
            self._counts = counts
            self._starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)

    @staticmethod
    def _labels(y, name, n):
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"{name} must be a 1-d array of class indices, got shape {y.shape}")
        if y.shape[0] != n:
            raise ValueError(f"{name} has {y.shape[0]} labels for {n} samples; they must match")
        if y.dtype.kind == "f":
            check_finite(y, name)
            if np.any(y != np.round(y)):
                raise ValueError(f"{name} holds non-integer labels; pass class indices 0..C-1")
        elif y.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integer class indices, got {y.dtype}")
        if y.size and y.min() < 0:
            raise ValueError(f"{name} has negative label {int(y.min())}; labels must be 0..C-1")
        return y.astype(np.int64)

    def batch(self, generation: int, seed: int) -> np.ndarray:
        if self.samples_per_class is None:
            return super().batch(generation, seed)
        k = np.uint32(rng.py_key(seed, generation, PURPOSE_BATCH))
        out = np.empty(self.n_classes * self.samples_per_class, dtype=np.int64)
        _genreg_batch(k, self._members, self._starts, self._counts, self.samples_per_class, out)
        return out

    def scores(self, pop: Population, generation: int, seed: int, prediction: str = "argmax",
               score: str = "correct", engine: str = "numba") -> np.ndarray:
        """Per-sample scores [P, B] of this generation's batch, in batch order.

        ``correct``: int8 1/0 of the (argmax or softmax-sampled) prediction; ``xent``: float64
        log softmax(logit values)[label] (minus the cross-entropy).
        """
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
        if score not in ("correct", "xent"):
            raise ValueError(f"classification score must be 'correct' or 'xent', got {score!r}")
        self._check_pop(pop)
        mode = _pop_mode(pop)
        idx = self.batch(generation, seed)
        X = self.inputs(mode, "train", pop.spec.x_frac)[idx]
        y = self.y["train"][idx]
        P, B = pop.size, idx.shape[0]
        out = np.empty((P, B), dtype=np.int8 if score == "correct" else np.float64)
        kp = np.uint32(rng.py_key(seed, generation, PURPOSE_PREDICT))
        for s, logits in self._logit_chunks(pop, X, engine):
            e = s + logits.shape[1]
            if score == "xent":
                v = _logit_values(logits, pop.spec)
                m = v.max(axis=2, keepdims=True)
                lse = m[..., 0] + np.log(np.exp(v - m).sum(axis=2))
                out[:, s:e] = np.take_along_axis(v, y[None, s:e, None], axis=2)[..., 0] - lse
                continue
            if prediction == "argmax":
                pred = logits.argmax(axis=2)
            else:
                pred = np.empty(logits.shape[:2], dtype=np.int64)
                if mode == "int8":
                    _sample_int8(logits, kp, np.int64(s), np.int64(B), gumbel_lut(pop.spec.logit_frac), pred)
                else:
                    _sample_float(logits, kp, np.int64(s), np.int64(B), pred)
            out[:, s:e] = pred == y[None, s:e]
        return out

    def predict(self, pop_or_genome, split: str = "test", engine: str = "numba", spec=None) -> np.ndarray:
        """Argmax class of every sample of a split, per genome: int64 [P, N]."""
        pop = _as_population(pop_or_genome, spec)
        self._check_pop(pop)
        X = self.inputs(_pop_mode(pop), split, pop.spec.x_frac)
        pred = np.empty((pop.size, X.shape[0]), dtype=np.int64)
        for s, logits in self._logit_chunks(pop, X, engine):
            pred[:, s:s + logits.shape[1]] = logits.argmax(axis=2)
        return pred

    def accuracy(self, pop_or_genome, split: str = "test", engine: str = "numba", spec=None) -> np.ndarray:
        """Argmax accuracy per genome on a split: float64 [P] (a bare genome needs ``spec``)."""
        return (self.predict(pop_or_genome, split, engine, spec) == self.y[split][None]).mean(axis=1)

    def confusion(self, genome, split: str = "test", engine: str = "numba", spec=None) -> np.ndarray:
        """Confusion matrix of ONE genome: int64 [C, C], rows = true class, columns = predicted."""
        pred = self.predict(genome, split, engine, spec)
        if pred.shape[0] != 1:
            raise ValueError(f"confusion takes one genome, got a population of {pred.shape[0]}; pick one")
        C = self.n_classes
        return np.bincount(self.y[split] * C + pred[0], minlength=C * C).reshape(C, C)

    def per_class_accuracy(self, genome, split: str = "test", engine: str = "numba", spec=None) -> np.ndarray:
        """Recall of each class for ONE genome: float64 [C] (NaN for a class absent from the split)."""
        cm = self.confusion(genome, split, engine, spec)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.diag(cm) / cm.sum(axis=1)


class RegressionProblem(Problem):
    """Real-valued targets y [N] or [N, O]; score 'neg_mse' = -sum_o (pred_o - y_o)^2 per sample."""

    def __init__(self, X, y, X_test=None, y_test=None, batch_size: int | None = None):
        super().__init__(X, X_test, batch_size)
        y_tr = self._targets(y, "y", self.X["train"].shape[0])
        if (X_test is None) != (y_test is None):
            raise ValueError("pass X_test and y_test together, or neither")
        y_te = y_tr if y_test is None else self._targets(y_test, "y_test", self.X["test"].shape[0])
        if y_te.shape[1] != y_tr.shape[1]:
            raise ValueError(f"y_test has {y_te.shape[1]} outputs, y {y_tr.shape[1]}; they must match")
        self.y = {"train": y_tr, "test": y_te}
        self.n_out = y_tr.shape[1]

    @staticmethod
    def _targets(y, name, n):
        y = np.asarray(y)
        if y.ndim == 1:
            y = y[:, None]
        if y.ndim != 2 or y.shape[0] != n:
            raise ValueError(f"{name} must be [{n}] or [{n}, outputs], got shape {y.shape}")
        if y.dtype.kind not in "fiu":
            raise TypeError(f"{name} must be real numbers, got {y.dtype}")
        check_finite(y, name)
        return y.astype(np.float64)

    def scores(self, pop: Population, generation: int, seed: int, prediction: str = "argmax",
               score: str = "neg_mse", engine: str = "numba") -> np.ndarray:
        """Per-sample -(squared error) [P, B] float64 of the batch (``prediction`` is ignored)."""
        if score != "neg_mse":
            raise ValueError(f"regression supports score='neg_mse' only, got {score!r}")
        self._check_pop(pop)
        idx = self.batch(generation, seed)
        X = self.inputs(_pop_mode(pop), "train", pop.spec.x_frac)[idx]
        y = self.y["train"][idx]
        out = np.empty((pop.size, idx.shape[0]), dtype=np.float64)
        for s, logits in self._logit_chunks(pop, X, engine):
            e = s + logits.shape[1]
            out[:, s:e] = -((_logit_values(logits, pop.spec) - y[None, s:e]) ** 2).sum(axis=2)
        return out

    def predict(self, pop_or_genome, split: str = "test", engine: str = "numba", spec=None) -> np.ndarray:
        """Predicted values float64 [P, N, O]."""
        pop = _as_population(pop_or_genome, spec)
        self._check_pop(pop)
        X = self.inputs(_pop_mode(pop), split, pop.spec.x_frac)
        return np.concatenate([_logit_values(lg, pop.spec) for _, lg in self._logit_chunks(pop, X, engine)],
                              axis=1)

    def mse(self, pop_or_genome, split: str = "test", engine: str = "numba", spec=None) -> np.ndarray:
        """Mean squared error per genome on a split: float64 [P]."""
        pred = self.predict(pop_or_genome, split, engine, spec)
        return ((pred - self.y[split][None]) ** 2).sum(axis=2).mean(axis=1)
