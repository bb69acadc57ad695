"""Gradient-free training of organism networks (seed 003) on the joint objective.

Seed 003 trains every particle to self-replicate and the organism on its task by SGD, alternating
``sr_steps`` self-replication steps with ``task_steps`` task steps (addition: 25 self-train steps
per task batch; MNIST: task prioritised). Here both halves are evolution strategies:

* task step: OpenES (Salimans et al. 2017) over the flat vector of all particle parameters,
  mirrored pairs, centred-rank shaping, Adam (or momentum) on the estimate::

      eps_k ~ N(0, I) (counter-based: gauss(u32(key(seed ^ TASK, g, k), j)) / 147.8);  f = -loss
      grad  = sum_k (u(f(theta + s eps_k)) - u(f(theta - s eps_k))) eps_k / (2 K s)
      theta = adam(theta, grad)

* self-replication step: every particle runs its own (1 + lambda)-ES on its self-replication MSE
  (Definition 3), all particles vectorised, with a per-particle step size (success rule:
  ``s *= up`` on improvement, ``s *= down`` otherwise). Local, as the seed's per-particle self-train.

Every random number is f(seed, purpose, step, pair, index) (``edge_evo.rng``); no np.random.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, asdict

import numpy as np
from numba import njit

from .. import rng
from ..models.organism import OrganismSpec, ParticleSpec, self_replication_error, aux_output, AUX

log = logging.getLogger(__name__)

PURPOSE_TASK = 0x0B0E_0001
PURPOSE_SR = 0x0B0E_0002
PURPOSE_DATA = 0x0B0E_0003


# serial: the draws per step are small, and thread start-up dominated on the shared 2-core box
@njit(cache=True)
def _batch_index(seed, step, n, out):
    """out[i] = bounded(u32(key(seed, step, 1), i), n): a minibatch drawn with replacement."""
    kk = rng.key(np.uint32(seed), np.uint32(step), np.uint32(1))
    for i in range(out.shape[0]):
        out[i] = rng.bounded(rng.u32(kk, np.uint32(i)), n)


@njit(cache=True)
def _fill_noise(seed, generation, out):
    """out[k, j] = gauss(u32(key(seed, generation, k), j)) / GAUSS_STD (~N(0, 1), Irwin-Hall 4)."""
    K, n = out.shape
    inv = 1.0 / rng.GAUSS_STD
    for k in range(K):
        kk = rng.key(np.uint32(seed), np.uint32(generation), np.uint32(k))
        for j in range(n):
            out[k, j] = rng.gauss(rng.u32(kk, np.uint32(j))) * inv


def noise(seed: int, generation: int, K: int, n: int) -> np.ndarray:
    out = np.empty((K, n), dtype=np.float64)
    _fill_noise(np.uint32(seed & 0xFFFFFFFF), np.uint32(generation & 0xFFFFFFFF), out)
    return out


def centered_ranks(f: np.ndarray) -> np.ndarray:
    """Ranks mapped to [-0.5, 0.5], best (highest f) = 0.5; ties by index (stable)."""
    order = np.argsort(f, kind="stable")
    r = np.empty(len(f))
    r[order] = np.arange(len(f))
    return r / max(len(f) - 1, 1) - 0.5


@dataclass(frozen=True)
class OrganismESParams:
    """``population`` even (mirrored pairs). ``sigma``/``lr`` decay geometrically per task step down
    to ``*_min``. ``task_params``: 'all' perturbs every particle weight in task steps, 'aux' only the
    first layer's auxiliary-input column (the weight the particle applies; self-replication of an
    identity particle is untouched by it), 'path' the weights the auxiliary output ``v_4`` depends
    on (first layer's auxiliary column and every later layer: the support of the seed's SGD task
    gradient; moving them breaks self-replication). ``task_gate`` (None = off): a particle takes
    part in a task step only if its input is non-zero in more than this fraction of the step's
    minibatch (``task_loss.activity``); silent particles are neither perturbed nor updated (lazy
    Adam), as their task gradient is zero or near it. ``sr_*``: the per-particle (1+lambda)-ES."""
    population: int = 64
    sigma: float = 0.02
    sigma_decay: float = 1.0
    sigma_min: float = 1e-4
    lr: float = 0.01
    lr_decay: float = 1.0
    lr_min: float = 1e-5
    optimizer: str = "adam"
    momentum: float = 0.9
    beta2: float = 0.999
    weight_decay: float = 0.0
    task_params: str = "all"
    task_gate: float | None = None
    sr_steps: int = 25
    task_steps: int = 1
    sr_lambda: int = 8
    sr_sigma: float = 1e-2
    sr_sigma_min: float = 1e-12
    sr_up: float = 1.5
    sr_down: float = 0.85

    def __post_init__(self):
        if self.population < 2 or self.population % 2:
            raise ValueError(f"population must be even and >= 2 (mirrored pairs), got {self.population}")
        if self.optimizer not in ("adam", "momentum"):
            raise ValueError(f"optimizer must be 'adam' or 'momentum', got {self.optimizer!r}")
        if self.task_params not in ("all", "aux", "path"):
            raise ValueError(f"task_params must be 'all', 'aux' or 'path', got {self.task_params!r}")
        if self.task_gate is not None and not 0.0 <= self.task_gate < 1.0:
            raise ValueError(f"task_gate must be None or a firing-rate threshold in [0, 1), got {self.task_gate}")
        if self.sr_lambda < 2 or self.sr_lambda % 2:
            raise ValueError(f"sr_lambda must be even and >= 2, got {self.sr_lambda}")
        if self.sr_steps < 0 or self.task_steps < 1:
            raise ValueError("need sr_steps >= 0 and task_steps >= 1")


def _sr_fitness(ps: ParticleSpec, P: np.ndarray) -> np.ndarray:
    """Self-replication MSE relative to the particle's mean squared weight: the absolute MSE alone
    pulls every particle into the trivial zero fixpoint (the seed's 'zero' class), killing the task."""
    err = self_replication_error(ps, P, reduce="mse") / (np.mean(P * P, axis=-1) + 1e-12)
    return np.where(np.isfinite(err), err, np.inf)


class OrganismES:
    """Alternating ES trainer. ``task_loss(weights[P, n_edges], step) -> loss[P]`` (lower is better)
    sees the extracted weights of the whole population (the organism is linear in its particles'
    auxiliary path, so this equals the literal organism forward)."""

    def __init__(self, spec: OrganismSpec, params: OrganismESParams = OrganismESParams(), seed: int = 0,
                 particles: np.ndarray | None = None):
        self.spec, self.p, self.seed = spec, params, int(seed)
        self.theta = (spec.init(seed) if particles is None else spec.check(particles).copy()).ravel()
        n = self.theta.size
        self.m = np.zeros(n)
        self.v = np.zeros(n)
        self.sr_sigma = np.full(spec.n_edges, params.sr_sigma)
        self.step = 0          # task steps done
        self.sr_step_count = 0
        self.mask = self._mask()

    # ------------------------------------------------------------------ views
    @property
    def particles(self) -> np.ndarray:
        return self.theta.reshape(self.spec.n_edges, self.spec.particle.n_params)

    def weights(self) -> np.ndarray:
        return aux_output(self.spec.particle, self.particles, AUX)

    def _mask(self):
        if self.p.task_params == "all":
            return None
        ps = self.spec.particle
        m = np.zeros(ps.n_params, dtype=bool)
        o, i = ps.shapes[0]
        m[AUX:o * i:i] = True          # W1[:, AUX]
        if self.p.task_params == "path":
            m[o * i:] = True           # W2 ... W_K: v_4 = W_K ... W_2 W1[:, AUX]
        return np.tile(m, self.spec.n_edges)

    # ------------------------------------------------------------------ task (global) step
    def task_step(self, task_loss) -> dict:
        p, spec = self.p, self.spec
        K = p.population // 2
        sigma = max(p.sigma * p.sigma_decay ** self.step, p.sigma_min)
        lr = max(p.lr * p.lr_decay ** self.step, p.lr_min)
        idx = np.flatnonzero(self.mask) if self.mask is not None else None
        n = self.theta.size if idx is None else idx.size
        eps = noise(self.seed ^ PURPOSE_TASK, self.step, K, n)
        live = None                    # coordinates that take part in this step (task_gate)
        if p.task_gate is not None:
            activity = getattr(task_loss, "activity", None)
            if activity is None:
                raise ValueError("task_gate needs a task_loss with an .activity(weights, step) method "
                                 "(xent_loss provides one); or set task_gate=None")
            on = np.asarray(activity(self.weights(), self.step)) > p.task_gate
            live = np.repeat(on, spec.particle.n_params)
            if idx is not None:
                live = live[idx]
            eps = eps * live
        pop = np.repeat(self.theta[None, :], 2 * K, axis=0)
        if idx is None:
            pop[0::2] += sigma * eps
            pop[1::2] -= sigma * eps
        else:
            pop[0::2, idx] += sigma * eps
            pop[1::2, idx] -= sigma * eps
        w = aux_output(spec.particle, pop.reshape(2 * K, spec.n_edges, -1), AUX)
        loss = np.asarray(task_loss(w, self.step), dtype=np.float64)
        if loss.shape != (2 * K,):
            raise ValueError(f"task_loss must return one loss per genome ({2 * K}), got shape {loss.shape}")
        loss = np.where(np.isfinite(loss), loss, np.inf)
        u = centered_ranks(-loss)
        g = (u[0::2] - u[1::2]) @ eps / (2 * K * sigma)
        if idx is not None:
            full = np.zeros_like(self.theta)
            full[idx] = g
            g = full
        g -= p.weight_decay * self.theta
        t = self.step + 1
        m, v, theta = self.m, self.v, self.theta
        if live is not None:           # lazy update: silent particles keep weights and optimiser state
            sel = np.flatnonzero(live) if idx is None else idx[live]
            m, v, theta, g = m[sel], v[sel], theta[sel], g[sel]
        if p.optimizer == "adam":
            m = p.momentum * m + (1 - p.momentum) * g
            v = p.beta2 * v + (1 - p.beta2) * g * g
            mh = m / (1 - p.momentum ** t)
            vh = v / (1 - p.beta2 ** t)
            theta = theta + lr * mh / (np.sqrt(vh) + 1e-8)
        else:
            m = p.momentum * m + g
            theta = theta + lr * m
        if live is None:
            self.m, self.v, self.theta = m, v, theta
        else:
            self.m[sel], self.v[sel], self.theta[sel] = m, v, theta
        self.step += 1
        info = {"loss_mean": float(np.mean(loss[np.isfinite(loss)])) if np.isfinite(loss).any() else float("inf"),
                "loss_best": float(loss.min()), "sigma": sigma, "lr": lr}
        if live is not None:
            info["live_frac"] = float(np.mean(live))
        return info

    # ------------------------------------------------------------------ self-replication (local) step
    def sr_step(self) -> np.ndarray:
        """One (1+lambda)-ES step of every particle on its own self-replication MSE; returns the errors."""
        p, ps, E = self.p, self.spec.particle, self.spec.n_edges
        n = ps.n_params
        X = self.particles.copy()
        K = p.sr_lambda // 2
        eps = noise(self.seed ^ PURPOSE_SR, self.sr_step_count, K, E * n).reshape(K, E, n)
        step = self.sr_sigma[None, :, None] * eps
        cand = np.concatenate([X[None] + step, X[None] - step])            # [lambda, E, n]
        err = _sr_fitness(ps, cand)
        best = np.argmin(err, axis=0)
        e_best = err[best, np.arange(E)]
        e_par = _sr_fitness(ps, X)
        better = e_best < e_par
        X[better] = cand[best[better], np.flatnonzero(better)]
        self.sr_sigma = np.clip(np.where(better, self.sr_sigma * p.sr_up, self.sr_sigma * p.sr_down),
                                p.sr_sigma_min, p.sr_sigma)
        self.theta = X.ravel()
        self.sr_step_count += 1
        return np.where(better, e_best, e_par)

    # ------------------------------------------------------------------ schedule
    def round(self, task_loss) -> dict:
        """One round of the alternating schedule: ``task_steps`` task steps, then ``sr_steps`` SR steps."""
        for _ in range(self.p.task_steps):
            info = self.task_step(task_loss)
        for _ in range(self.p.sr_steps):
            self.sr_step()
        info["sr_max_err"] = float(np.max(self_replication_error(self.spec.particle, self.particles)))
        return info

    def run(self, task_loss, rounds: int | None = None, seconds: float | None = None, callback=None,
            every: int = 50) -> list[dict]:
        """Run rounds until ``rounds`` or ``seconds``; ``callback(self, info)`` every ``every`` rounds."""
        if rounds is None and seconds is None:
            raise ValueError("give rounds or seconds")
        t0, hist, r = time.perf_counter(), [], 0
        while (rounds is None or r < rounds) and (seconds is None or time.perf_counter() - t0 < seconds):
            info = self.round(task_loss)
            r += 1
            if r % every == 0 or (rounds is not None and r == rounds):
                info.update(round=r, time_s=time.perf_counter() - t0)
                hist.append(info)
                if callback is not None:
                    callback(self, info)
                log.info("round %d: %s", r, info)
        return hist

    # ------------------------------------------------------------------ state
    def state_arrays(self) -> dict[str, np.ndarray]:
        """Everything a bit-exact resume needs (npz-able, no pickle)."""
        return {"theta": self.theta, "m": self.m, "v": self.v, "sr_sigma": self.sr_sigma,
                "counters": np.array([self.step, self.sr_step_count, self.seed], dtype=np.int64)}

    def load_state_arrays(self, a: dict) -> None:
        for k in ("theta", "m", "v"):
            if a[k].shape != self.theta.shape:
                raise ValueError(f"state {k} has shape {a[k].shape}, this organism needs {self.theta.shape}")
        self.theta, self.m, self.v = (np.array(a[k], dtype=np.float64) for k in ("theta", "m", "v"))
        self.sr_sigma = np.array(a["sr_sigma"], dtype=np.float64)
        self.step, self.sr_step_count, self.seed = (int(x) for x in a["counters"])

    def params_dict(self) -> dict:
        return asdict(self.p)





# ---------------------------------------------------------------------------- tasks
def addition_data(n: int, seed: int = 0, lo: float = -1.0, hi: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Float addition (seed 003, experiment 1): X [n, 2] uniform in [lo, hi), y = x0 + x1 ([n, 1])."""
    u = rng.u32_stream(seed ^ PURPOSE_DATA, 0, 0, 2 * n).astype(np.float64) / 2.0 ** 32
    X = lo + (hi - lo) * u.reshape(n, 2)
    return X, X.sum(axis=1, keepdims=True)


def resize_area(images: np.ndarray, side: int = 15, src: int | None = None) -> np.ndarray:
    """Area-averaging resize of square images [N, src*src] -> float32 [N, side*side] (same value range).

    Output pixel (r, c) averages the source pixels weighted by their overlap with its cell of
    width src/side (the seed uses 15x15 MNIST)."""
    images = np.asarray(images)
    if src is None:
        src = int(round(np.sqrt(images.shape[1])))
    if images.ndim != 2 or src * src != images.shape[1]:
        raise ValueError(f"images must be [N, side*side] square, got shape {images.shape}")
    edges = np.arange(side + 1) * (src / side)
    A = np.zeros((side, src))
    for r in range(side):
        for j in range(src):
            A[r, j] = max(0.0, min(edges[r + 1], j + 1) - max(edges[r], j))
    A /= A.sum(axis=1, keepdims=True)
    img = images.reshape(-1, src, src).astype(np.float32)
    A = A.astype(np.float32)
    out = np.einsum("rj,njk,ck->nrc", A, img, A, optimize=True)
    return out.reshape(len(images), side * side)


def mse_loss(spec: OrganismSpec, X: np.ndarray, y: np.ndarray):
    """task_loss for regression: mean squared error of the organism on (X, y)."""
    from ..models.organism import forward_weights

    def loss(w, step):
        return np.mean((forward_weights(spec, w, X) - y[None]) ** 2, axis=(1, 2))
    return loss


def xent_loss(spec: OrganismSpec, X: np.ndarray, y: np.ndarray, batch: int = 256, seed: int = 0):
    """task_loss for classification: mean cross-entropy on a minibatch drawn per step (counter RNG).
    X float32 features, y int labels."""
    from ..models.organism import forward_weights
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)

    def batch_index(step):
        idx = np.empty(batch, dtype=np.int64)
        _batch_index(np.uint32((seed ^ PURPOSE_DATA) & 0xFFFFFFFF), np.uint32(step), len(X), idx)
        return idx

    def loss(w, step):
        idx = batch_index(step)
        z = forward_weights(spec, w.astype(np.float32), X[idx])       # [P, B, C]
        z = z - z.max(axis=-1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=-1))
        return np.mean(lse - z[:, np.arange(batch), y[idx]], axis=1)

    def activity(w, step):
        """Per-edge firing rate of the particle inputs on this step's minibatch (for task_gate)."""
        from ..models.organism import edge_activity
        return edge_activity(spec, w, X[batch_index(step)])
    loss.activity = activity
    return loss


def accuracy(spec: OrganismSpec, weights: np.ndarray, X: np.ndarray, y: np.ndarray, chunk: int = 4096) -> float:
    from ..models.organism import forward_weights
    w = np.asarray(weights, dtype=np.float32)
    pred = np.concatenate([forward_weights(spec, w, np.asarray(X[i:i + chunk], dtype=np.float32)).argmax(-1)
                           for i in range(0, len(X), chunk)])
    return float(np.mean(pred == np.asarray(y)))

__all__ = ["OrganismES", "OrganismESParams", "noise", "centered_ranks", "PURPOSE_TASK", "PURPOSE_SR",
           "addition_data", "resize_area", "mse_loss", "xent_loss", "accuracy"]
