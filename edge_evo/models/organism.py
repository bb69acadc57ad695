"""Organism networks: MLPs whose edges are self-replicating particle networks.

Seed 003, Illium et al. 2022, "Constructing Organism Networks from Collaborative Self-Replicators".

Particle network (PN, Definitions 2, 3, 6): a bias-free linear network ``R^5 -> R`` (default body
5 -> 2 -> 1). Its weights are ordered layer by layer, row-major ``W[out, in]``; weight ``i`` sits in
layer ``L(i)``, leads into cell ``C(i)`` and is edge ``E(i)`` of that cell. Weightwise application
of a particle ``N`` onto a particle ``M`` with weights ``v``::

    (N <|ww M)_i = N(v_i, L(i), C(i), E(i), 0)          # L, C, E divided by their column max

Self-application is ``N <|ww N``; ``N`` is an epsilon-fixpoint iff ``|(N <|ww N)_i - v_i| < eps``
for every ``i`` (Definition 3, eps = 1e-5). Fixpoint classes follow the seed's code: ``divergent``
(a non-finite weight), ``zero`` (every weight below eps: the trivial fixpoint), ``identity`` (a
non-trivial epsilon-fixpoint: a self-replicator) and ``other``.

Organism network (ON, Definition 7): every edge ``(l, c, e)`` of an MLP is a particle fed the
auxiliary input ``[0, 0, 0, 0, x]``; a cell sums its particles (no bias), hidden cells apply an
activation (the seed uses GELU; here any edge_evo LUT activation, ``relu`` by default, so the
extracted network is exportable as an int8 MLP)::

    O(0, c) = x_c;   O(l, c) = act( sum_e PN_{l,c,e}(0, 0, 0, 0, O(l-1, e)) )

A linear particle computes ``PN(a) = v . a`` with ``v = W_K ... W_1`` (a 5-vector), so
``PN(0,0,0,0,x) = v_4 x``: the edge's *extracted weight* is ``v_4 = PN(0,0,0,0,1)`` (the seed's
weight re-substitution). ``forward`` evaluates the particles literally; ``forward_weights`` runs the
equivalent MLP on the extracted weights (what training and export use); a test ties the two.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from numba import njit

from ..fixedpoint import LUT_FUNCTIONS

EPS_FIXPOINT = 1e-5
FIX_CLASSES = ("divergent", "zero", "identity", "other")
DIVERGENT, ZERO, IDENTITY, OTHER = range(4)
PARTICLE_IN = 5
AUX = 4          # index of the auxiliary input x in the particle's input vector


# ----------------------------------------------------------------------------- particle
@dataclass(frozen=True)
class ParticleSpec:
    """Bias-free linear particle ``5 -> hidden... -> 1``; weights flat, layer by layer, W[out, in]."""
    hidden: tuple[int, ...] = (2,)

    def __post_init__(self):
        h = tuple(int(x) for x in self.hidden)
        object.__setattr__(self, "hidden", h)
        if any(x < 1 for x in h):
            raise ValueError(f"particle hidden widths must be >= 1, got {h}")

    @property
    def dims(self) -> tuple[int, ...]:
        return (PARTICLE_IN, *self.hidden, 1)

    @property
    def shapes(self) -> list[tuple[int, int]]:
        d = self.dims
        return [(d[l + 1], d[l]) for l in range(len(d) - 1)]

    @property
    def n_params(self) -> int:
        return sum(o * i for o, i in self.shapes)

    def positions(self) -> np.ndarray:
        """[n_params, 3] (layer, cell, edge) of every weight, each column divided by its max."""
        rows = []
        for l, (o, i) in enumerate(self.shapes):
            for c in range(o):
                for e in range(i):
                    rows.append((l, c, e))
        pos = np.asarray(rows, dtype=np.float64)
        mx = pos.max(axis=0)
        return pos / np.where(mx > 0, mx, 1.0)

    def unflatten(self, params: np.ndarray) -> list[np.ndarray]:
        """[..., n_params] -> list of [..., out, in] views."""
        params = np.asarray(params)
        if params.shape[-1] != self.n_params:
            raise ValueError(f"particle parameters need a last axis of {self.n_params}, got shape {params.shape}")
        out, o0 = [], 0
        for o, i in self.shapes:
            out.append(params[..., o0:o0 + o * i].reshape(params.shape[:-1] + (o, i)))
            o0 += o * i
        return out

    def init(self, n: int, rng_seed: int = 0, scale: float = 1.0) -> np.ndarray:
        """[n, n_params] float64 particles, U(+-scale / sqrt(fan_in)) per layer (counter-based RNG)."""
        from ..rng import u32_stream
        u = u32_stream(rng_seed, 0, 0x0A11, n * self.n_params).astype(np.float64) / 2.0 ** 32
        u = u.reshape(n, self.n_params)
        lim = np.concatenate([np.full(o * i, scale / np.sqrt(i)) for o, i in self.shapes])
        return (2.0 * u - 1.0) * lim


def particle_apply(spec: ParticleSpec, params: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """Literal forward of particles: params [..., n], inputs [..., B, 5] -> outputs [..., B]."""
    h = np.asarray(inputs, dtype=np.float64)
    for W in spec.unflatten(params):
        h = h @ np.swapaxes(W, -1, -2)
    return h[..., 0]


def effective_vector(spec: ParticleSpec, params: np.ndarray) -> np.ndarray:
    """v = W_K ... W_1 of linear particles: [..., n] -> [..., 5], so PN(a) = v . a."""
    Ws = spec.unflatten(np.asarray(params, dtype=np.float64))
    v = Ws[0]
    for W in Ws[1:]:
        # broadcast multiply-sum: numpy's stacked matmul is slow on millions of 2x5 products
        v = np.sum(W[..., :, :, None] * v[..., None, :, :], axis=-2)
    return v[..., 0, :]


@njit(cache=True)
def _aux_column(params, dims, aux):
    """params [M, n] -> [M]: W_K ... W_1 e_aux (the output for input e_aux), layer by layer."""
    M = params.shape[0]
    out = np.empty(M)
    h = np.empty(64)
    g = np.empty(64)
    for m in range(M):
        o0 = 0
        for r in range(dims[1]):
            h[r] = params[m, r * dims[0] + aux]
        o0 = dims[1] * dims[0]
        for l in range(1, dims.shape[0] - 1):
            for r in range(dims[l + 1]):
                s = 0.0
                for c in range(dims[l]):
                    s += params[m, o0 + r * dims[l] + c] * h[c]
                g[r] = s
            for r in range(dims[l + 1]):
                h[r] = g[r]
            o0 += dims[l + 1] * dims[l]
        out[m] = h[0]
    return out


def aux_output(spec: ParticleSpec, params: np.ndarray, aux: int = 4) -> np.ndarray:
    """PN(e_aux) for particles [..., n] -> [...] (fast path of ``effective_vector(...)[..., aux]``)."""
    params = np.asarray(params, dtype=np.float64)
    if params.shape[-1] != spec.n_params:
        raise ValueError(f"particle parameters need a last axis of {spec.n_params}, got shape {params.shape}")
    if max(spec.dims) > 64:
        return effective_vector(spec, params)[..., aux]
    flat = np.ascontiguousarray(params.reshape(-1, spec.n_params))
    return _aux_column(flat, np.asarray(spec.dims, dtype=np.int64), aux).reshape(params.shape[:-1])


def weightwise_inputs(spec: ParticleSpec, target: np.ndarray) -> np.ndarray:
    """[..., n] weights of M -> [..., n, 5] inputs (v_i, L(i), C(i), E(i), 0) of N <|ww M."""
    target = np.asarray(target, dtype=np.float64)
    if target.shape[-1] != spec.n_params:
        raise ValueError(f"target particle needs {spec.n_params} weights, got shape {target.shape}")
    pos = np.broadcast_to(spec.positions(), target.shape + (3,))
    zero = np.zeros(target.shape + (1,))
    return np.concatenate([target[..., None], pos, zero], axis=-1)


def weightwise_apply(spec: ParticleSpec, net: np.ndarray, target: np.ndarray) -> np.ndarray:
    """N <|ww M (Definition 2): the new weight vector [..., n] computed by particles ``net`` from ``target``."""
    return particle_apply(spec, net, weightwise_inputs(spec, target))


def self_apply(spec: ParticleSpec, params: np.ndarray) -> np.ndarray:
    """N <|ww N for every particle of [..., n]."""
    return weightwise_apply(spec, params, params)


def self_replication_error(spec: ParticleSpec, params: np.ndarray, reduce: str = "max") -> np.ndarray:
    """Per particle: max (or mean squared, ``reduce='mse'``) |N <|ww N - N| over its weights.

    Uses ``v`` for speed (exact for linear particles; ``self_apply`` is the literal twin)."""
    params = np.asarray(params, dtype=np.float64)
    v = effective_vector(spec, params)
    pos = spec.positions()
    out = params * v[..., :1] + np.einsum("...k,nk->...n", v[..., 1:4], pos)
    d = out - params
    if reduce == "mse":
        return np.mean(d * d, axis=-1)
    if reduce != "max":
        raise ValueError(f"reduce must be 'max' or 'mse', got {reduce!r}")
    return np.max(np.abs(d), axis=-1)


def is_fixpoint(spec: ParticleSpec, params: np.ndarray, eps: float = EPS_FIXPOINT) -> np.ndarray:
    """Definition 3 per particle: every |(N <|ww N)_i - v_i| < eps (NaN/inf: False)."""
    err = self_replication_error(spec, params)
    return np.isfinite(err) & (err < eps)


def classify_fixpoints(spec: ParticleSpec, params: np.ndarray, eps: float = EPS_FIXPOINT) -> np.ndarray:
    """int8 class per particle: 0 divergent, 1 zero, 2 identity (self-replicator), 3 other (FIX_CLASSES)."""
    params = np.asarray(params, dtype=np.float64)
    with np.errstate(all="ignore"):
        finite = np.all(np.isfinite(params), axis=-1)
        zero = np.all(np.abs(params) < eps, axis=-1)
        fix = is_fixpoint(spec, params, eps)
        fix &= np.all(np.isfinite(self_apply(spec, np.where(np.isfinite(params), params, 0.0))), axis=-1)
    cls = np.full(params.shape[:-1], OTHER, dtype=np.int8)
    cls[fix] = IDENTITY
    cls[zero] = ZERO
    cls[~finite] = DIVERGENT
    return cls


def count_classes(cls: np.ndarray) -> dict[str, int]:
    return {name: int(np.count_nonzero(np.asarray(cls) == k)) for k, name in enumerate(FIX_CLASSES)}


# ----------------------------------------------------------------------------- organism
@dataclass(frozen=True)
class OrganismSpec:
    """An MLP ``dims`` (no biases) whose every edge is a particle; ``activation`` after hidden layers."""
    dims: tuple[int, ...]
    activation: str = "relu"
    particle: ParticleSpec = field(default_factory=ParticleSpec)

    def __post_init__(self):
        dims = tuple(int(d) for d in self.dims)
        object.__setattr__(self, "dims", dims)
        if len(dims) < 2 or min(dims) < 1:
            raise ValueError(f"organism dims must list >= 2 positive layer sizes, got {dims}")
        if self.activation not in LUT_FUNCTIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose one of {sorted(LUT_FUNCTIONS)}")

    @property
    def n_layers(self) -> int:
        return len(self.dims) - 1

    @property
    def layer_sizes(self) -> list[int]:
        """Number of edges (particles) per layer; edges are numbered layer by layer, W[out, in] row-major."""
        return [self.dims[l + 1] * self.dims[l] for l in range(self.n_layers)]

    @property
    def n_edges(self) -> int:
        return sum(self.layer_sizes)

    @property
    def n_params(self) -> int:
        return self.n_edges * self.particle.n_params

    def edge_layer(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_layers), self.layer_sizes)

    def init(self, seed: int = 0) -> np.ndarray:
        """[n_edges, n_particle_params] float64 particles."""
        return self.particle.init(self.n_edges, seed)

    def check(self, particles: np.ndarray) -> np.ndarray:
        particles = np.asarray(particles, dtype=np.float64)
        if particles.shape[-2:] != (self.n_edges, self.particle.n_params):
            raise ValueError(f"organism {self.dims} needs particles [..., {self.n_edges}, {self.particle.n_params}], "
                             f"got shape {particles.shape}")
        return particles


def extract_weights(spec: OrganismSpec, particles: np.ndarray) -> np.ndarray:
    """Weight re-substitution: each particle's PN(0,0,0,0,1), [..., n_edges]."""
    return aux_output(spec.particle, spec.check(particles), AUX)


def split_layers(spec: OrganismSpec, weights: np.ndarray) -> list[np.ndarray]:
    """[..., n_edges] -> list of [..., out, in] weight matrices."""
    out, o0 = [], 0
    for l in range(spec.n_layers):
        o, i = spec.dims[l + 1], spec.dims[l]
        out.append(weights[..., o0:o0 + o * i].reshape(weights.shape[:-1] + (o, i)))
        o0 += o * i
    return out


def forward_weights(spec: OrganismSpec, weights: np.ndarray, X: np.ndarray) -> np.ndarray:
    """The organism as an MLP on its extracted weights: weights [n_edges] or [P, n_edges],
    X [B, dims[0]] -> outputs [B, out] or [P, B, out] (float64 unless float32 given)."""
    weights = np.asarray(weights)
    X = np.asarray(X, dtype=weights.dtype if weights.dtype == np.float32 else np.float64)
    if X.ndim != 2 or X.shape[1] != spec.dims[0]:
        raise ValueError(f"X must be [batch, {spec.dims[0]}], got shape {X.shape}")
    act = LUT_FUNCTIONS[spec.activation]
    Ws = split_layers(spec, weights)
    if weights.ndim == 1:
        h = X
        for l, W in enumerate(Ws):
            h = h @ W.T
            if l < spec.n_layers - 1:
                h = act(h)
        return h
    P = weights.shape[0]
    o, i = spec.dims[1], spec.dims[0]
    # one GEMM for layer 1 of the whole population: X [B, in] @ [in, P*out]
    h = (X @ np.ascontiguousarray(Ws[0].reshape(P * o, i).T)).reshape(X.shape[0], P, o)   # [B, P, o]
    if spec.activation in _ACT_CODE and max(spec.dims[1:]) <= 64:
        tail = np.ascontiguousarray(weights[:, spec.layer_sizes[0]:], dtype=h.dtype)
        return _tail_forward(np.ascontiguousarray(h), tail, np.asarray(spec.dims[1:], dtype=np.int64),
                             _ACT_CODE[spec.activation])
    for W in Ws[1:]:
        h = act(h)
        h = np.einsum("bpi,poi->bpo", h, W, optimize=False)
    return np.ascontiguousarray(h.transpose(1, 0, 2))


_ACT_CODE = {"linear": 0, "relu": 1, "tanh": 2}


@njit(cache=True)
def _act(x, code):
    if code == 1:
        return x if x > 0 else 0.0 * x
    if code == 2:
        return np.tanh(x)
    return x


@njit(cache=True)
def _tail_forward(h1, w, dims, code):
    """Layers 2..L of a population: h1 [B, P, dims[0]] (layer-1 pre-activations), w [P, tail edges]."""
    B, P = h1.shape[0], h1.shape[1]
    out = np.empty((P, B, dims[-1]), dtype=h1.dtype)
    h = np.empty(64, dtype=h1.dtype)
    g = np.empty(64, dtype=h1.dtype)
    for p in range(P):
        for b in range(B):
            for c in range(dims[0]):
                h[c] = _act(h1[b, p, c], code)
            o0 = 0
            for l in range(dims.shape[0] - 1):
                for r in range(dims[l + 1]):
                    s = 0.0
                    for c in range(dims[l]):
                        s += w[p, o0 + r * dims[l] + c] * h[c]
                    g[r] = s
                o0 += dims[l + 1] * dims[l]
                last = l == dims.shape[0] - 2
                for r in range(dims[l + 1]):
                    h[r] = g[r] if last else _act(g[r], code)
            for r in range(dims[-1]):
                out[p, b, r] = h[r]
    return out


def edge_activity(spec: OrganismSpec, weights: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Firing rate of every edge's input: [n_edges] fraction of the rows of X in which the value the
    particle receives (input pixel, or hidden activation after ``act``) is non-zero, for the organism
    with extracted ``weights`` [n_edges]. A particle whose input is zero on a batch cannot change the
    organism's output on it (its output is v_4 x = 0), whatever its weights."""
    weights = np.asarray(weights, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    if weights.shape != (spec.n_edges,):
        raise ValueError(f"weights must be [{spec.n_edges}] (one genome), got shape {weights.shape}")
    if X.ndim != 2 or X.shape[1] != spec.dims[0]:
        raise ValueError(f"X must be [batch, {spec.dims[0]}], got shape {X.shape}")
    act = LUT_FUNCTIONS[spec.activation]
    out, h = [], X
    for l, W in enumerate(split_layers(spec, weights)):
        out.append(np.tile(np.mean(h != 0, axis=0), W.shape[0]))      # edge (l, c, e) reads input e
        h = act(h @ W.T)
    return np.concatenate(out)


def forward(spec: OrganismSpec, particles: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Literal organism forward (Definition 7): every particle evaluated on [0,0,0,0,x], cells sum.

    particles [n_edges, n]; X [B, dims[0]] -> [B, out]. Slow (B x n_edges particle calls); meant for
    tests and small organisms."""
    particles = spec.check(particles)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != spec.dims[0]:
        raise ValueError(f"X must be [batch, {spec.dims[0]}], got shape {X.shape}")
    act = LUT_FUNCTIONS[spec.activation]
    h, e0 = X, 0
    for l in range(spec.n_layers):
        o, i = spec.dims[l + 1], spec.dims[l]
        P = particles[e0:e0 + o * i].reshape(o, i, -1)
        inp = np.zeros((o, i, h.shape[0], PARTICLE_IN))
        inp[..., AUX] = h.T[None, :, :]
        y = particle_apply(spec.particle, P, inp)          # [o, i, B]
        h = y.sum(axis=1).T
        if l < spec.n_layers - 1:
            h = act(h)
        e0 += o * i
    return h


def to_mlp(spec: OrganismSpec, particles: np.ndarray, keep: np.ndarray | None = None):
    """The extracted weights as a float32 MLP ``(MLPSpec, genome)`` with zero biases; ``keep``
    (bool [n_edges]) zeroes the dropped edges (pruning)."""
    from .mlp import MLPSpec
    w = extract_weights(spec, particles)
    if keep is not None:
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != w.shape:
            raise ValueError(f"keep mask must be bool [{spec.n_edges}], got shape {keep.shape}")
        w = np.where(keep, w, 0.0)
    parts = []
    for l, W in enumerate(split_layers(spec, w)):
        parts += [W.ravel(), np.zeros(spec.dims[l + 1])]
    return MLPSpec(spec.dims, spec.activation), np.concatenate(parts).astype(np.float32)


# ----------------------------------------------------------------------------- specialists and pruning
def specialists(spec: OrganismSpec, particles: np.ndarray, eps: float = EPS_FIXPOINT) -> np.ndarray:
    """bool [n_edges]: True for self-replicators (PN_SR: non-trivial eps-fixpoints), False for the
    task particles (PN_F) -- the seed's two specialist groups (section V.B)."""
    return classify_fixpoints(spec.particle, spec.check(particles), eps) == IDENTITY


def l1_keep(weights: np.ndarray, n_drop: int) -> np.ndarray:
    """Global unstructured magnitude pruning: keep mask dropping the ``n_drop`` smallest |w|
    (ties: lower index dropped first)."""
    w = np.abs(np.asarray(weights, dtype=np.float64))
    if not 0 <= n_drop <= w.size:
        raise ValueError(f"n_drop must be in [0, {w.size}], got {n_drop}")
    keep = np.ones(w.size, dtype=bool)
    keep[np.argsort(w, kind="stable")[:n_drop]] = False
    return keep


def dropout_table(spec: OrganismSpec, particles: np.ndarray, score, eps: float = EPS_FIXPOINT) -> list[dict]:
    """Specialist dropout vs l1 pruning at equal sparsity (seed Fig. 8). ``score(weights) -> float``
    (e.g. test accuracy of the extracted MLP). Rows: full organism, drop PN_SR, l1 at |PN_SR|,
    drop PN_F, l1 at |PN_F|; each with its sparsity."""
    w = extract_weights(spec, particles)
    sr = specialists(spec, particles, eps)
    rows = [{"variant": "full organism", "dropped": 0, "score": score(w)}]
    for name, drop in (("drop PN_SR", sr), ("drop PN_F", ~sr)):
        k = int(drop.sum())
        rows.append({"variant": name, "dropped": k, "score": score(np.where(drop, 0.0, w))})
        rows.append({"variant": f"l1 pruning, same sparsity as {name}", "dropped": k,
                     "score": score(np.where(l1_keep(w, k), w, 0.0))})
    for r in rows:
        r["sparsity"] = r["dropped"] / spec.n_edges
    return rows


__all__ = ["edge_activity", "specialists", "l1_keep", "dropout_table", "aux_output", "EPS_FIXPOINT",
           "FIX_CLASSES", "DIVERGENT", "ZERO", "IDENTITY", "OTHER", "ParticleSpec", "OrganismSpec",
           "particle_apply", "effective_vector", "weightwise_inputs", "weightwise_apply", "self_apply",
           "self_replication_error", "is_fixpoint", "classify_fixpoints", "count_classes", "extract_weights",
           "split_layers", "forward_weights", "forward", "to_mlp"]
