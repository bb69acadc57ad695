"""Continuous on-device adaptation: predict every sample, learn from the labelled ones.

Prequential loop (test-then-train), per sample ``x`` with optional label ``y``::

    prediction = argmax(logits(deployed, x))            (regression: logit / 2^logit_frac)
    if y is given:
        outcome -> drift window (1/0 correct, or |error|);  (x, y) -> sample window (ring buffer)
        every `update_every` labels: candidates = learner.candidates(state, boost)
                                     scores[p, b] = integer score of candidate p on window sample b
                                     state = learner.update(state, candidates, scores)

Scores are integers so every platform ranks candidates identically: classification
``min(z_y - max_{k != y} z_k, cap)`` (a capped logit margin, Q(logit_frac)); regression
``-min(|z - round(y * 2^logit_frac)|, cap)``. Drift: once the outcome window is full, its mean
quality is compared with the best quality seen since the last drift; a drop larger than
``drift_drop`` (classification: accuracy points; regression: ``drift_drop * max(1, |best|)`` in
mean absolute error) raises the exploration ``boost``, resets the learner's momentum, keeps only
the ``drift_keep`` newest window samples, and is logged as an event.

Reproducibility: all randomness is ``edge_evo.rng`` keyed by (seed, update, candidate, index);
the same stream and seed give the same :meth:`OnlineAdapter.state_hash` on every machine.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import io as eio
from ..kernels.dense import dense_hidden_int8, dense_output_int8
from ..models.forward import forward
from ..models.mlp import MLPSpec, Population
from ..strategies.base import State
from .learners import LEARNERS, ONE_Q16, TRAINABLE, _init_genome, boost_decay, make_learner
from .parse import INPUT_SCALES, BadSample, SampleParser
from .window import OutcomeWindow, SampleWindow

log = logging.getLogger(__name__)

TASK_KINDS = ("auto", "classification", "regression")
ADAPT_MODES = ("always", "after_drift")
LATENCY_RING = 4096
DEFAULT_SIGMA = {"openes": 0.03, "elitist": 0.1}


@dataclass(frozen=True)
class AdaptConfig:
    """Online adaptation settings (all stored in every checkpoint)."""
    learner: str = "openes"          # "openes" (mirrored ES around the deployed mean) or "elitist" (1 + lambda)
    population: int = 4              # openes: even P (2..8 typical); elitist: lambda children
    sigma: float | None = None       # exploration std in weight units (None: 0.03 openes, 0.1 elitist)
    lr: float = 0.5                  # openes step size (dimensionless, see strategies/openes.py)
    momentum: float = 0.5
    rate: float = 0.05               # elitist: per-element mutation probability
    trainable: str = "all"           # "all" tensors, or "last": only the output layer adapts (label remaps)
    adapt: str = "always"            # "always", or "after_drift": keep the deployed model frozen until the
                                     # first drift event (a small-window learner slowly erodes a trained model)
    window: int = 16                 # labelled samples fitness is measured on (16: <= 1 ms per update, 784-32-10)
    update_every: int = 1            # labels between updates
    min_labels: int = 8              # labels before the first update
    margin_cap: float = 4.0          # score cap in logit units
    drift_window: int = 200          # prequential outcomes the drift detector averages
    drift_drop: float = 0.2
    drift_boost: float = 4.0         # exploration multiplier right after a drift
    drift_decay: float = 0.995       # per update, back towards 1
    drift_keep: int = 8              # window samples kept after a drift
    task: str = "auto"               # auto: regression when the model has one output
    input_scale: str = "float"       # u8 | float | int8 (see online/parse.py)
    engine: str = "numba"            # int8 engines are bit-identical; numba is the small-batch one
    seed: int = 0

    def __post_init__(self):
        if self.learner not in LEARNERS:
            raise ValueError(f"learner must be one of {LEARNERS}, got {self.learner!r}")
        if self.adapt not in ADAPT_MODES:
            raise ValueError(f"adapt must be one of {ADAPT_MODES}, got {self.adapt!r}")
        if self.trainable not in TRAINABLE:
            raise ValueError(f"trainable must be one of {TRAINABLE}, got {self.trainable!r}")
        if self.task not in TASK_KINDS:
            raise ValueError(f"task must be one of {TASK_KINDS}, got {self.task!r}")
        if self.input_scale not in INPUT_SCALES:
            raise ValueError(f"input_scale must be one of {INPUT_SCALES}, got {self.input_scale!r}")
        for name in ("window", "update_every", "drift_window", "population"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.learner == "openes" and self.population % 2:
            raise ValueError(f"openes needs an even population (mirrored pairs), got {self.population}")
        if self.drift_boost < 1 or not 0 < self.drift_decay <= 1:
            raise ValueError("drift_boost must be >= 1 and drift_decay in (0, 1]")
        if not 0 <= self.seed < 2 ** 32:
            raise ValueError(f"seed must be an unsigned 32-bit integer, got {self.seed}")

    def learner_kwargs(self) -> dict:
        sigma = DEFAULT_SIGMA[self.learner] if self.sigma is None else float(self.sigma)
        if self.learner == "openes":
            return dict(population=self.population, sigma=sigma, lr=self.lr, momentum=self.momentum,
                        trainable=self.trainable)
        return dict(population=self.population, sigma=sigma, rate=self.rate, trainable=self.trainable)


def _q16(x: float) -> int:
    return int(round(float(x) * ONE_Q16))


def _canon(obj) -> str:
    return json.dumps(eio._jsonable(obj), sort_keys=True, separators=(",", ":"))


class OnlineAdapter:
    """Predict-then-learn adapter around one deployed int8 MLP genome."""

    def __init__(self, spec: MLPSpec, genome: np.ndarray | None = None, config: AdaptConfig | None = None,
                 model_meta: dict | None = None):
        self.config = cfg = config or AdaptConfig()
        self.spec = spec
        self.regression = cfg.task == "regression" or (cfg.task == "auto" and spec.dims[-1] == 1)
        if genome is None:
            genome = _init_genome(spec, cfg.seed)
        genome = np.asarray(genome)
        if genome.dtype != np.int8:
            raise TypeError(f"online adaptation runs int8 models; got a {genome.dtype} genome: quantize it first "
                            "(edge-evo import ... or edge_evo.importers.quantize)")
        if genome.shape != (spec.n_params,):
            raise ValueError(f"genome has {genome.size} values, spec {spec.dims} needs {spec.n_params}")
        self.model_meta = dict(model_meta or {})
        self.learner = make_learner(cfg.learner, spec, **cfg.learner_kwargs())
        self.state: State = self.learner.init_state(genome, cfg.seed)
        self.parser = SampleParser(spec.dims[0], spec.dims[-1], self.regression, cfg.input_scale, spec.x_frac)
        self.window = SampleWindow(cfg.window, spec.dims[0])
        # trainable='last': the hidden layers never change, so each window sample's last hidden
        # vector is computed once (at prediction) and candidates only run the output layer
        self.frozen_hidden = cfg.trainable == "last" and spec.n_layers >= 2
        if self.frozen_hidden:
            self.hwindow = np.zeros((cfg.window, spec.dims[-2]), dtype=np.int8)
            self._lut = spec.lut()
            self._shifts = [(spec.bias_shift(l), spec.out_shift(l)) for l in range(spec.n_layers)]
        self.outcomes = OutcomeWindow(cfg.drift_window)
        self.cap = int(round(cfg.margin_cap * 2 ** spec.logit_frac))
        self.boost_q = ONE_Q16
        self.reference: float | None = None      # best windowed quality since the last drift
        self.counters = {k: 0 for k in ("seen", "labelled", "bad", "updates", "accepted", "drifts", "correct")}
        self.abs_err_sum = 0.0
        self.latency_ns = np.zeros(LATENCY_RING, dtype=np.int64)
        self.n_latency = 0
        self.events: collections.deque = collections.deque(maxlen=100)
        self.new_events: list[dict] = []
        self._bad_logged = 0
        self._refresh()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_model(cls, model, config: AdaptConfig | None = None) -> "OnlineAdapter":
        """``model``: a saved model path / run folder (edge_evo.io.load_model), an ``io.Model``, an
        ``MLPSpec`` or a dims string like ``"784-32-10"`` (fresh genome from the seed)."""
        if isinstance(model, MLPSpec):
            return cls(model, None, config)
        if isinstance(model, eio.Model):
            return cls(model.spec, model.genome, config, model.meta)
        if isinstance(model, str) and model and all(p.isdigit() for p in model.split("-")) and "-" in model:
            return cls(MLPSpec(tuple(int(d) for d in model.split("-"))), None, config)
        m = eio.load_model(model)
        return cls(m.spec, m.genome, config, {k: m.meta.get(k) for k in ("task", "strategy") if k in m.meta})

    # ------------------------------------------------------------------ core loop
    def _refresh(self) -> None:
        self.deployed = self.learner.deployed(self.state)
        self._pop1 = Population.from_flat(self.spec, self.deployed[None, :])

    def predict_logits(self, x: np.ndarray) -> np.ndarray:
        if self.frozen_hidden:
            self._h = self._hidden(x.reshape(1, -1))[0]
            return self._output(self._pop1, self._h[None])[0, 0]
        return forward(self._pop1, x.reshape(1, -1), engine=self.config.engine)[0, 0]

    def _hidden(self, X: np.ndarray) -> np.ndarray:
        """Last hidden layer [B, H] of the deployed genome (the same kernels as ``forward``)."""
        h = np.ascontiguousarray(X)[None]
        for l in range(self.spec.n_layers - 1):
            W, b = self._pop1.layer(l)
            out = np.empty((1, h.shape[1], W.shape[1]), dtype=np.int8)
            dense_hidden_int8(W, b, h, self._shifts[l][0], self._shifts[l][1], self._lut, out)
            h = out
        return h[0]

    def _output(self, pop: Population, H: np.ndarray) -> np.ndarray:
        """Output-layer logits [P, B, n_out] of every candidate on hidden vectors ``H`` [B, H]."""
        W, b = pop.layer(self.spec.n_layers - 1)
        out = np.empty((W.shape[0], H.shape[0], W.shape[1]), dtype=np.int32)
        dense_output_int8(W, b, np.ascontiguousarray(H)[None], self._shifts[-1][0], out)
        return out

    def _prediction(self, z: np.ndarray):
        if self.regression:
            return float(z[0]) / 2 ** self.spec.logit_frac
        return int(np.argmax(z))

    def _target(self, y) -> int:
        if self.regression:
            return int(min(max(math.floor(y * 2 ** self.spec.logit_frac + 0.5), -2 ** 31), 2 ** 31 - 1))
        return int(y)

    def step(self, x: np.ndarray, y=None):
        """Predict ``x`` (int8 [n_in]) with the deployed genome, then learn from label ``y`` if given."""
        t0 = time.perf_counter_ns()
        z = self.predict_logits(x)
        pred = self._prediction(z)
        self.counters["seen"] += 1
        if y is not None:
            self._learn(x, y, pred)
        self.latency_ns[self.n_latency % LATENCY_RING] = time.perf_counter_ns() - t0
        self.n_latency += 1
        return pred

    def _learn(self, x, y, pred) -> None:
        cfg = self.config
        c = self.counters
        c["labelled"] += 1
        if self.regression:
            err = abs(pred - float(y))
            self.abs_err_sum += err
            self.outcomes.push(err)
        else:
            ok = int(pred == y)
            c["correct"] += ok
            self.outcomes.push(ok)
        if self.frozen_hidden:
            self.hwindow[self.window.head] = self._h
        self.window.push(x, self._target(y))
        self._check_drift()
        if cfg.adapt == "after_drift" and not c["drifts"]:
            return
        if self.window.count >= min(cfg.min_labels, cfg.window) and c["labelled"] % cfg.update_every == 0:
            self.update()

    def scores(self, logits: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Integer per-sample scores [P, B] (higher is better)."""
        z = logits.astype(np.int64)
        if self.regression:
            return -np.minimum(np.abs(z[:, :, 0] - y[None, :]), self.cap)
        b = np.arange(len(y))
        zy = z[:, b, y]
        other = z.copy()
        other[:, b, y] = np.iinfo(np.int64).min
        return np.minimum(zy - other.max(axis=2), self.cap)

    def update(self) -> bool:
        """One learner update on the current window; returns whether the deployed genome changed."""
        X, y = self.window.contents()
        pop = self.learner.candidates(self.state, self.boost_q)
        if self.frozen_hidden:
            logits = self._output(pop, self.hwindow[self.window.order()])
        else:
            logits = forward(pop, X, engine=self.config.engine)
        self.state, changed = self.learner.update(self.state, pop, self.scores(logits, y))
        self.counters["updates"] += 1
        self.counters["accepted"] += int(changed)
        self.boost_q = boost_decay(self.boost_q, _q16(self.config.drift_decay))
        if changed:
            self._refresh()
        return changed

    # ------------------------------------------------------------------ drift
    def quality(self) -> float:
        """Windowed prequential quality: accuracy, or minus the mean absolute error."""
        m = self.outcomes.mean()
        return -m if self.regression else m

    def _check_drift(self) -> None:
        if not self.outcomes.full:
            return
        q = self.quality()
        if self.reference is None or q > self.reference:
            self.reference = q
            return
        drop = self.config.drift_drop * (max(1.0, abs(self.reference)) if self.regression else 1.0)
        if q < self.reference - drop:
            ev = {"event": "drift", "sample": self.counters["seen"], "quality": q, "reference": self.reference,
                  "boost": self.config.drift_boost}
            log.warning("drift at sample %d: windowed %s %.3f < best %.3f - %.3f; exploration x%g",
                        ev["sample"], "-MAE" if self.regression else "accuracy", q, self.reference, drop,
                        self.config.drift_boost)
            self.counters["drifts"] += 1
            self.boost_q = _q16(self.config.drift_boost)
            self.learner.on_drift(self.state)
            self.window.keep_newest(self.config.drift_keep)
            self.outcomes.clear()
            self.reference = None
            self._event(ev)

    def _event(self, ev: dict) -> None:
        self.events.append(ev)
        self.new_events.append(ev)
        del self.new_events[:-100]

    # ------------------------------------------------------------------ records
    def feed(self, record):
        """Parse one text record (CSV / JSON line) and :meth:`step` it; a bad record is counted, logged
        and skipped (returns None)."""
        if not record.strip():
            return None                           # blank lines (keep-alives) are not samples
        try:
            x, y = self.parser.parse(record)
        except BadSample as e:
            self.bad_record(str(e))
            return None
        return self.step(x, y)

    def feed_pair(self, x, y=None):
        try:
            xq, yq = self.parser.parse_pair(x, y)
        except BadSample as e:
            self.bad_record(str(e))
            return None
        return self.step(xq, yq)

    def bad_record(self, reason: str) -> None:
        self.counters["bad"] += 1
        n = self.counters["bad"]
        # bounded logging: the first 10, then every 1000th
        if n <= 10 or n % 1000 == 0:
            log.warning("skipped malformed record #%d (after sample %d): %s", n, self.counters["seen"], reason)

    def run(self, iterable, on_prediction=None) -> dict:
        """Python iterator API: items are text records, ``(x, y)`` pairs or bare feature vectors."""
        for item in iterable:
            if isinstance(item, (str, bytes)):
                pred = self.feed(item)
            elif isinstance(item, tuple) and len(item) == 2:
                pred = self.feed_pair(*item)
            else:
                pred = self.feed_pair(item)
            if on_prediction is not None and pred is not None:
                on_prediction(self.counters["seen"] - 1, pred)
        return self.summary()

    # ------------------------------------------------------------------ reporting
    def latency_stats(self) -> dict:
        n = min(self.n_latency, LATENCY_RING)
        if n == 0:
            return {"median_us": None, "p99_us": None}
        lat = self.latency_ns[:n] / 1000.0
        return {"median_us": float(np.median(lat)), "p99_us": float(np.percentile(lat, 99))}

    def summary(self) -> dict:
        c = dict(self.counters)
        out = {**c, "quality": self.quality() if self.outcomes.count else None, "boost": self.boost_q / ONE_Q16,
               **self.latency_stats(), "state_sha256": self.state_hash()}
        if not self.regression and c["labelled"]:
            out["accuracy_prequential"] = c["correct"] / c["labelled"]
        return out

    # ------------------------------------------------------------------ persistence
    def _state_parts(self) -> tuple[dict, dict]:
        arrays = {"genome": self.deployed}
        arrays.update({f"learner/{k}": v for k, v in self.state.arrays.items()})
        arrays.update(self.window.to_arrays("window"))
        arrays.update(self.outcomes.to_arrays("outcomes"))
        meta = {"spec": self.spec.to_dict(), "config": dataclasses.asdict(self.config),
                "generation": self.state.generation, "seed": self.state.seed, "scalars": self.state.scalars,
                "counters": self.counters, "abs_err_sum": self.abs_err_sum, "boost_q": self.boost_q,
                "reference": self.reference}
        return arrays, meta

    def state_hash(self) -> str:
        """SHA-256 of the adaptation state (arrays + counters), independent of file timestamps."""
        arrays, meta = self._state_parts()
        h = hashlib.sha256()
        for k in sorted(arrays):
            a = np.ascontiguousarray(arrays[k])
            h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
            h.update(a.tobytes())
        h.update(_canon(meta).encode())
        return h.hexdigest()

    def save(self, path, extra: dict | None = None) -> Path:
        """Atomic checkpoint (edge_evo.io); ``extra`` (e.g. the source position) goes into the meta."""
        arrays, meta = self._state_parts()
        full = {"online": meta, "state_sha256": self.state_hash(), "model_meta": self.model_meta,
                "summary": {**self.latency_stats(), "events": list(self.events)[-10:]}}
        if extra:
            full["extra"] = extra
        return eio.save_checkpoint(path, arrays, full)

    @classmethod
    def load(cls, path) -> tuple["OnlineAdapter", dict]:
        """(adapter, extra meta) from a checkpoint written by :meth:`save`."""
        arrays, meta = eio.load_checkpoint(path)
        if "online" not in meta:
            raise eio.CheckpointError(f"{path} is not an online-adaptation checkpoint (no 'online' section)")
        m = meta["online"]
        cfg = AdaptConfig(**m["config"])
        spec = MLPSpec.from_dict(m["spec"])
        self = cls(spec, arrays["genome"], cfg, meta.get("model_meta"))
        st = {k.split("/", 1)[1]: np.array(v) for k, v in arrays.items() if k.startswith("learner/")}
        self.state = State(int(m["generation"]), int(m["seed"]), None, st, dict(m["scalars"]))
        self.window.load_arrays(arrays, "window")
        if self.frozen_hidden:
            self.hwindow[...] = self._hidden(self.window.X)
        self.outcomes.load_arrays(arrays, "outcomes")
        self.counters.update({k: int(v) for k, v in m["counters"].items()})
        self.abs_err_sum = float(m["abs_err_sum"])
        self.boost_q = int(m["boost_q"])
        self.reference = None if m["reference"] is None else float(m["reference"])
        self._refresh()
        if self.state_hash() != meta.get("state_sha256"):
            raise eio.CheckpointError(f"{path}: restored state does not match its recorded state_sha256; "
                                      "the checkpoint was written by an incompatible version")
        return self, meta.get("extra", {})
