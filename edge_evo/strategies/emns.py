"""EMNS: resistance-governed universal mutation (seed 000, Karahan 2025, sections 2 and 6).

Every active parameter theta_i has its own resistance r_i in [0, r_max]; each step (eq. 2.1, 2.2)::

    theta_i += N(0, 1) * mu * (1 - r_i)                 clipped to [-10, 10]
    r_i     += N(0, 1) * mu * res_rate * (1 - r_i)      clipped to [0, r_max]   (paper: res_rate 1)

and the global rate follows the performance change dP (eq. 2.3): mu *= f_better if dP > dp_eps,
f_worse if dP < -dp_eps, else f_flat; clipped to [mu_min, mu_max].

Variants (``EMNSParams.variant``):

* ``paper``: the literal rule of the paper (alpha 0.995, beta 1.05, gamma 0.999, mu0 0.5, dP
  compared with 0, res_rate 1). One genome, mutated every step, **no selection**: performance
  only steers mu, so the parameters random-walk. It does not learn by itself (the public code's
  first commit, and our measurements, agree); kept to document the claim.
* ``select``: the later public code (theomgdev/EMNS): ``ask`` returns [parent, child]; the child
  replaces the parent when it is not worse; a worse child is kept with p = keep_worse (0.3),
  reverted with p = 0.7. Factors 0.98 / 1.01 / 0.999, mu0 0.01, mu in [0.001, 0.1], res_rate 0.02.
* ``population``: [parent, child_1..child_lambda], each child an independent resistance-modulated
  mutation; the best child replaces the parent if strictly better.

Integer mode: values int16 Q11, resistances uint8 Q0.8 (r = r_q / 256), mu int Q24, factors Q16::

    mu_q  <- clip(rshift_round(mu_q * f_q, 16), mu_min_q, mu_max_q)
    value and resistance steps: ``kernels/emns.py::mutate_int`` (gauss of the counter RNG scaled by
    integer multipliers, sub-LSB remainder stochastically rounded with a second RNG word, so the
    expected step equals the float rule even when it is far below one LSB, as the r step is).

RNG streams: child k of generation g mutates with key(seed, g, k) (the paper variant's single
genome uses k = 0); accept/reject: key(seed, g, PURPOSE_SELECT); growth key(seed, g, PURPOSE_GROW);
connection formation key(seed, g, PURPOSE_FORM), index = connection.

Growth and pruning (section 6, not implemented upstream):

* neuron addition: after ``grow_patience`` steps without a new best, the next child gets one extra
  hidden neuron (fresh parameters, resistance ``grow_r`` = 0.1, agg/act linear/tanh = 1) connected
  from every active neuron of the previous layer and **to every active neuron of the next layer**
  (extending its fan-in). Selection then keeps or rejects it like any mutation. Past ``max_dims``
  or ``max_connections`` the proposal is refused (event ``grow_refused``); ``add_neuron`` raises.
* connection formation: with ``activity`` (inputs and neuron outputs of the parent on the batch)
  ``tell`` estimates the binned mutual information between the two ends of every inactive
  connection between active neurons and forms it with p = form_rate * MI / log(bins).
* pruning: a connection whose |w| stays below ``prune_eps`` for ``prune_steps`` consecutive
  steps is switched off (never a neuron's last input).
Events of the step are in ``state.scalars['events']`` (";"-separated), counts in ``n_grow``,
``n_form``, ``n_prune``, ``n_refused``.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np

from .. import rng
from ..kernels import emns as K
from ..models.emns import (EMNSPopulation, EMNSSpec, VAL_FRAC, VAL_MAX, Y_FRAC, ACT_FRACS, basis_tables,
                           forward_float, initial_genome, quantize_inputs, to_int)
from . import register
from .base import PURPOSE_INIT, PURPOSE_SELECT, State, Strategy

log = logging.getLogger(__name__)

PURPOSE_GROW = 0x8000_0010
PURPOSE_FORM = 0x8000_0011
MU_FRAC = 24
VARIANTS = ("paper", "select", "population")
RESISTANCE = ("evolve", "frozen", "off")


@dataclass(frozen=True)
class EMNSParams:
    variant: str = "select"
    offspring: int = 1            # children per step (population variant; select uses 1)
    mu0: float = 0.01
    mu_min: float = 0.001
    mu_max: float = 0.1
    f_better: float = 0.98
    f_worse: float = 1.01
    f_flat: float = 0.999
    dp_eps: float = 1e-3
    res_rate: float = 0.02
    r_max: float = 0.95
    keep_worse: float = 0.3
    resistance: str = "evolve"    # ablations: "frozen" (initial r, never mutated), "off" (r = 0)
    weight_std: float = 0.05
    grow_patience: int = 0        # 0 = no neuron addition
    grow_r: float = 0.1
    form_rate: float = 0.0        # 0 = no connection formation
    mi_bins: int = 4
    prune_eps: float = 0.0        # 0 = no pruning
    prune_steps: int = 50

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.resistance not in RESISTANCE:
            raise ValueError(f"resistance must be one of {RESISTANCE}, got {self.resistance!r}")
        if self.offspring < 1:
            raise ValueError(f"offspring must be >= 1, got {self.offspring}")
        if not 0 < self.mu_min <= self.mu0 <= self.mu_max <= 2.0:
            raise ValueError("need 0 < mu_min <= mu0 <= mu_max <= 2 (int8 multipliers overflow past 2), got "
                             f"{self.mu_min}, {self.mu0}, {self.mu_max}")
        if not 0.0 <= self.r_max <= 0.99:
            raise ValueError(f"r_max must be in [0, 0.99] (uint8 Q0.8), got {self.r_max}")
        for n in ("keep_worse", "form_rate", "grow_r"):
            if not 0.0 <= getattr(self, n) <= 1.0:
                raise ValueError(f"{n} must be in [0, 1], got {getattr(self, n)}")
        for n in ("f_better", "f_worse", "f_flat"):
            if not 0.5 <= getattr(self, n) <= 2.0:
                raise ValueError(f"{n} must be in [0.5, 2], got {getattr(self, n)}")
        if not 0 <= self.res_rate <= 1:
            raise ValueError(f"res_rate must be in [0, 1], got {self.res_rate}")
        if self.mi_bins < 2:
            raise ValueError(f"mi_bins must be >= 2, got {self.mi_bins}")
        if self.grow_patience < 0 or self.prune_steps < 1 or self.prune_eps < 0:
            raise ValueError("grow_patience >= 0, prune_steps >= 1 and prune_eps >= 0 required")


def _q16(x):
    return int(round(float(x) * 65536))


def _mu_q(x):
    return int(round(float(x) * (1 << MU_FRAC)))


def binned_mi(a: np.ndarray, b: np.ndarray, bins: int) -> float:
    """Mutual information (nats) of two activity vectors, equal-width bins over each one's range."""
    def codes(v):
        v = np.asarray(v, dtype=np.float64)
        lo, hi = v.min(), v.max()
        if hi <= lo:
            return np.zeros(len(v), dtype=np.int64)
        return np.minimum(((v - lo) / (hi - lo) * bins).astype(np.int64), bins - 1)
    ca, cb = codes(a), codes(b)
    joint = np.bincount(ca * bins + cb, minlength=bins * bins).reshape(bins, bins) / len(ca)
    pa, pb = joint.sum(1), joint.sum(0)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / (pa[:, None] * pb[None, :])[nz])).sum())


@register
class EMNS(Strategy):
    """EMNS strategy; ``spec`` is an ``EMNSSpec``. See the module docstring."""
    name = "emns"
    Params = EMNSParams
    presets = {
        "paper": EMNSParams(variant="paper", mu0=0.5, mu_min=1e-4, mu_max=2.0, f_better=0.995, f_worse=1.05,
                            f_flat=0.999, dp_eps=0.0, res_rate=1.0),
        "select": EMNSParams(variant="select"),
        "population": EMNSParams(variant="population", offspring=8),
    }
    prediction = "argmax"
    score = "neg_mse"

    def __init__(self, spec, params=None, mode: str = "int8", **overrides):
        if not isinstance(spec, EMNSSpec):
            raise TypeError(f"EMNS needs an EMNSSpec (edge_evo.models.emns), got {type(spec).__name__}")
        super().__init__(spec, params, mode, **overrides)
        self.layout = spec.layout()
        self.agg_t, self.act_t = basis_tables()
        self.act_shift = np.array([VAL_FRAC + f - Y_FRAC for f in ACT_FRACS], dtype=np.int64)
        self.int = mode == "int8"

    # ------------------------------------------------------------------ helpers
    @property
    def n_children(self) -> int:
        p = self.params
        return 0 if p.variant == "paper" else (1 if p.variant == "select" else p.offspring)

    def _r_max_q(self):
        return int(np.floor(self.params.r_max * 256))

    def _res_rate(self):
        return 0.0 if self.params.resistance != "evolve" else self.params.res_rate

    def luts(self, values: np.ndarray, nmask=None) -> np.ndarray:
        V = np.atleast_2d(values)
        out = np.zeros((V.shape[0], self.spec.n_neurons, 256), dtype=np.int8)
        K.build_luts(V, self.layout, self.act_t, self.act_shift, out)
        return out

    def int_constants(self) -> tuple[int, int, int]:
        """(val_k, res_k, r_max_q) of ``mutate_int``: m_v = mu (1 - r) 2^27 / 147.8 (Q11 value, 16
        spare bits) and m_r = mu res_rate (1 - r) 2^32 / 147.8 (Q8 resistance, 24 spare bits)."""
        val_k = int(round(2.0 ** (32 + VAL_FRAC + 16 - MU_FRAC - 8) / rng.GAUSS_STD))
        res_k = int(round(2.0 ** 32 * self._res_rate() / rng.GAUSS_STD))
        return val_k, res_k, self._r_max_q()

    def _mutate(self, vals, res, nmask, cmask, keys, state):
        pm = self.spec.param_mask(nmask, cmask).astype(np.uint8)
        if self.int:
            val_k, res_k, r_max_q = self.int_constants()
            K.mutate_int(vals, res, pm, keys, np.int64(state.scalars["mu_q"]), np.int64(val_k), np.int64(res_k),
                         np.int64(r_max_q))
        else:
            K.mutate_float(vals, res, pm, keys, np.float32(state.scalars["mu"]), np.float32(self._res_rate()),
                           np.float32(self.params.r_max))

    # ------------------------------------------------------------------ init
    def init(self, seed: int) -> State:
        spec, p = self.spec, self.params
        n = spec.n_params
        k = np.uint32(rng.py_key(seed, 0, PURPOSE_INIT))
        h = np.empty(2 * n, dtype=np.uint32)
        rng.fill_u32(k, np.uint32(0), h)
        g = np.array([rng.py_gauss(int(x)) for x in h[:n]], dtype=np.float64) / rng.GAUSS_STD
        u = h[n:].astype(np.float64) / 2.0 ** 32
        v, r = initial_genome(spec, p.weight_std, u, g)
        if p.resistance == "off":
            r[:] = 0.0
        nmask, cmask = spec.initial_masks()
        if self.int:
            vq, rq = to_int(v, r)
            rq = np.minimum(rq, self._r_max_q()).astype(np.uint8)
            arrays = {"values": vq, "resist": rq}
            scalars = {"mu_q": _mu_q(p.mu0)}
        else:
            arrays = {"values": v.astype(np.float32), "resist": np.minimum(r, p.r_max).astype(np.float32)}
            scalars = {"mu": float(p.mu0)}
        arrays.update(nmask=nmask, cmask=cmask, zero_count=np.zeros(spec.n_conn, dtype=np.uint16))
        arrays.update(best=arrays["values"].copy(), best_nmask=nmask.copy(), best_cmask=cmask.copy())
        scalars.update(perf=float("nan"), best_perf=float("-inf"), stagnation=0, n_grow=0, n_form=0,
                       n_prune=0, n_refused=0, events="", accepted=0, grow_pending=0)
        return State(0, int(seed), None, arrays, scalars)

    def mu(self, state: State) -> float:
        return state.scalars["mu_q"] / (1 << MU_FRAC) if self.int else float(state.scalars["mu"])

    # ------------------------------------------------------------------ growth
    def _grow(self, vals, res, nmask, cmask, key: int, layer: int | None = None):
        """Add one hidden neuron in place (one genome). Returns (event, error message or None)."""
        spec, p = self.spec, self.params
        lay = self.layout
        if spec.n_layers < 2:
            return "grow_refused", "the network has no hidden layer to grow"
        room = []
        for l in range(spec.n_layers - 1):
            no, noff = int(lay[l, 1]), int(lay[l, 8])
            room.append(no - int(nmask[noff:noff + no].sum()))
        if layer is None:
            layer = int(np.argmax(room))
        elif not 0 <= layer < spec.n_layers - 1:
            return "grow_refused", f"layer must be a hidden layer index in [0, {spec.n_layers - 2}], got {layer}"
        if room[layer] <= 0:
            return "grow_refused", (f"hidden layer {layer} is at max_dims={spec.max_dims[layer + 1]}; "
                                    "raise max_dims to grow further")
        l = layer
        ni, no, oa, oc, ow, ob, og, coff, noff = (int(x) for x in lay[l])
        o = int(np.flatnonzero(nmask[noff:noff + no] == 0)[0])
        prev_active = np.ones(ni, dtype=bool) if l == 0 else nmask[int(lay[l - 1, 8]):int(lay[l - 1, 8]) + ni] > 0
        nl = lay[l + 1]
        ni2, no2, _, _, ow2, ob2, og2, coff2, noff2 = (int(x) for x in nl)
        next_active = nmask[noff2:noff2 + no2] > 0
        new_conn = int(prev_active.sum() + next_active.sum())
        if spec.max_connections is not None and int(cmask.sum()) + new_conn > spec.max_connections:
            return "grow_refused", (f"adding a neuron needs {new_conn} connections, over max_connections="
                                    f"{spec.max_connections}")
        h = np.empty(ni + no2, dtype=np.uint32)
        rng.fill_u32(np.uint32(key), np.uint32(0), h)
        gw = np.array([rng.py_gauss(int(x)) for x in h], dtype=np.float64) / rng.GAUSS_STD * p.weight_std
        fv = lambda x: np.int16(np.clip(np.floor(x * (1 << VAL_FRAC) + 0.5), -VAL_MAX, VAL_MAX)) if self.int else np.float32(x)
        rv = (np.uint8(min(int(np.floor(p.grow_r * 256 + 0.5)), self._r_max_q())) if self.int else np.float32(p.grow_r))
        if p.resistance == "off":
            rv = res.dtype.type(0)
        sl = slice(oa + 5 * o, oa + 5 * o + 5), slice(oc + 5 * o, oc + 5 * o + 5)
        for s_ in sl:
            vals[s_] = fv(0.0)
            vals[s_.start] = fv(1.0)
            res[s_] = rv
        for i in np.flatnonzero(prev_active):
            j = o * ni + i
            vals[ow + j], vals[ob + j], vals[og + j] = fv(gw[i]), fv(0.0), fv(1.0)
            res[ow + j] = res[ob + j] = res[og + j] = rv
            cmask[coff + j] = 1
        for t in np.flatnonzero(next_active):
            j = t * ni2 + o
            vals[ow2 + j], vals[ob2 + j], vals[og2 + j] = fv(gw[ni + t]), fv(0.0), fv(1.0)
            res[ow2 + j] = res[ob2 + j] = res[og2 + j] = rv
            cmask[coff2 + j] = 1
        nmask[noff + o] = 1
        return f"grow:L{l + 1}:n{o}", None

    def add_neuron(self, state: State, layer: int | None = None) -> State:
        """Add one hidden neuron to the parent now (outside evolution); ValueError past the limits."""
        a = {k: v.copy() for k, v in state.arrays.items()}
        ev, err = self._grow(a["values"], a["resist"], a["nmask"], a["cmask"],
                             rng.py_key(state.seed, state.generation, PURPOSE_GROW), layer)
        if err:
            raise ValueError(err)
        sc = dict(state.scalars, events=ev, n_grow=int(state.scalars["n_grow"]) + 1)
        return State(state.generation, state.seed, None, a, sc)

    # ------------------------------------------------------------------ ask
    def _check(self, state: State):
        v = state.arrays.get("values")
        if v is None or v.shape != (self.spec.n_params,):
            raise ValueError(f"state has no values of {self.spec.n_params} parameters; build it with init() "
                             "for the same EMNSSpec")
        want = np.int16 if self.int else np.float32
        if v.dtype != want:
            raise TypeError(f"state values are {v.dtype}, {self.mode} EMNS needs {np.dtype(want)}: "
                            "the checkpoint was written in the other mode")

    def ask(self, state: State) -> EMNSPopulation:
        self._check(state)
        P = 1 + self.n_children
        a = state.arrays
        vals = np.repeat(a["values"][None], P, axis=0)
        res = np.repeat(a["resist"][None], P, axis=0)
        nm = np.repeat(a["nmask"][None], P, axis=0)
        cm = np.repeat(a["cmask"][None], P, axis=0)
        if P > 1:
            if int(state.scalars.get("grow_pending", 0)):
                self._grow(vals[1], res[1], nm[1], cm[1], rng.py_key(state.seed, state.generation, PURPOSE_GROW))
            keys = rng.keys(state.seed, state.generation, range(1, P))
            v1, r1 = vals[1:].copy(), res[1:].copy()
            self._mutate(v1, r1, nm[1:], cm[1:], keys, state)
            vals[1:], res[1:] = v1, r1
        luts = self.luts(vals) if self.int else None
        return EMNSPopulation(vals, res, nm, cm, luts)

    # ------------------------------------------------------------------ evaluation
    def forward(self, pop: EMNSPopulation, X, return_activity: bool = False):
        """Float outputs [P, B, n_out] (int8 mode: the Q4 outputs / 16); optionally the activity
        [P, B, n_in + n_neurons] (inputs, then every neuron's y)."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.spec.dims[0]:
            raise ValueError(f"X must be [batch, {self.spec.dims[0]}], got shape {X.shape}")
        if self.int:
            Xq = X if X.dtype == np.int8 else quantize_inputs(X)
            P, B = pop.size, X.shape[0]
            y_all = np.zeros((P, B, self.spec.n_neurons), dtype=np.int8)
            out = K.forward_int8(pop.values, pop.nmask, pop.cmask, pop.luts, Xq, self.layout, self.agg_t,
                                 self.spec.dims[-1], y_all)
            out = out.astype(np.float64) / (1 << Y_FRAC)
            if return_activity:
                xin = np.broadcast_to(Xq.astype(np.float64) / (1 << Y_FRAC), (P,) + Xq.shape)
                return out, np.concatenate([xin, y_all.astype(np.float64) / (1 << Y_FRAC)], axis=-1)
            return out
        res = forward_float(self.spec, pop.values, pop.nmask, pop.cmask, X, return_activity)
        if return_activity:
            out, act = res
            xin = np.broadcast_to(X.astype(np.float64), (pop.size,) + X.shape)
            return out, np.concatenate([xin, act], axis=-1)
        return res

    def evaluate(self, pop: EMNSPopulation, X, Y, return_activity: bool = False):
        """Per-sample scores [P, B] = -mean squared error over the outputs (higher is better)."""
        Y = np.asarray(Y, dtype=np.float64)
        if Y.ndim == 1:
            Y = Y[:, None]
        r = self.forward(pop, X, return_activity)
        out = r[0] if return_activity else r
        s = -((out - Y[None]) ** 2).mean(axis=-1)
        return (s, r[1]) if return_activity else s

    def parent(self, state: State, best: bool = False) -> EMNSPopulation:
        a = state.arrays
        v, nm, cm = (a["best"], a["best_nmask"], a["best_cmask"]) if best else (a["values"], a["nmask"], a["cmask"])
        return EMNSPopulation(v[None], a["resist"][None], nm[None], cm[None], self.luts(v) if self.int else None)

    def predict(self, state: State, X, best: bool = False) -> np.ndarray:
        return self.forward(self.parent(state, best), X)[0]

    # ------------------------------------------------------------------ tell
    def _adapt_mu(self, sc: dict, dP: float):
        p = self.params
        f = p.f_better if dP > p.dp_eps else (p.f_worse if dP < -p.dp_eps else p.f_flat)
        if self.int:
            mq = (int(sc["mu_q"]) * _q16(f) + (1 << 15)) >> 16
            sc["mu_q"] = int(min(max(mq, _mu_q(p.mu_min)), _mu_q(p.mu_max)))
        else:
            sc["mu"] = float(min(max(sc["mu"] * f, p.mu_min), p.mu_max))

    def tell(self, state: State, pop: EMNSPopulation, scores, activity=None) -> State:
        self._check(state)
        p, spec = self.params, self.spec
        P = 1 + self.n_children
        s = np.asarray(scores, dtype=np.float64)
        if s.ndim == 1:
            s = s[:, None]
        if s.ndim != 2 or s.shape[0] != P or pop.size != P:
            raise ValueError(f"scores must be [{P}, batch] for the {P} genomes of ask(), got {s.shape}")
        if not np.all(np.isfinite(s)):
            raise ValueError("scores contain NaN or inf: fix the score function")
        perf = s.mean(axis=1)
        a = {k: v.copy() for k, v in state.arrays.items()}
        sc = dict(state.scalars)
        events = []
        gen = state.generation
        grew = bool(int(sc.get("grow_pending", 0)))
        if p.variant == "paper":
            prev = sc["perf"]
            dP = 0.0 if not np.isfinite(prev) else perf[0] - prev
            self._adapt_mu(sc, dP)
            cur = perf[0]
            scored = (a["values"].copy(), a["nmask"].copy(), a["cmask"].copy())   # the genome perf[0] belongs to
            V, R = a["values"][None].copy(), a["resist"][None].copy()
            self._mutate(V, R, a["nmask"][None], a["cmask"][None], rng.keys(state.seed, gen, [0]), State(gen, state.seed, None, a, sc))
            a["values"], a["resist"] = V[0], R[0]
            if grew:
                ev, _ = self._grow(a["values"], a["resist"], a["nmask"], a["cmask"], rng.py_key(state.seed, gen, PURPOSE_GROW))
                events.append(ev)
            accepted = 1
            sc["perf"] = float(cur)
        else:
            i = 1 + int(np.argmax(perf[1:]))
            dP = perf[i] - perf[0]
            self._adapt_mu(sc, dP)
            if p.variant == "select":
                accepted = dP >= 0 or rng.py_u32(rng.py_key(state.seed, gen, PURPOSE_SELECT), 0) < \
                    rng.bernoulli_threshold(p.keep_worse)
            else:
                accepted = dP > 0
            scored = None
            if accepted:
                a["values"], a["resist"] = pop.values[i].copy(), pop.resist[i].copy()
                a["nmask"], a["cmask"] = pop.nmask[i].copy(), pop.cmask[i].copy()
                cur = perf[i]
            else:
                cur = perf[0]
            if grew:
                events.append(("grow" if accepted and i == 1 else "grow_rejected"))
            sc["perf"] = float(cur)
        if grew:
            if events and events[-1].startswith("grow") and events[-1] != "grow_rejected" and events[-1] != "grow_refused":
                sc["n_grow"] = int(sc["n_grow"]) + 1
            sc["grow_pending"] = 0
        # best-ever and stagnation
        if cur > sc["best_perf"] + 1e-12:
            sc["best_perf"] = float(cur)
            sc["stagnation"] = 0
            if scored is None:
                scored = (a["values"].copy(), a["nmask"].copy(), a["cmask"].copy())
            a["best"], a["best_nmask"], a["best_cmask"] = scored
        else:
            sc["stagnation"] = int(sc["stagnation"]) + 1
        if p.grow_patience and int(sc["stagnation"]) >= p.grow_patience and not grew:
            # check the limits now, so a full network reports a refusal instead of proposing forever
            probe = [x.copy() for x in (a["values"], a["resist"], a["nmask"], a["cmask"])]
            ev, err = self._grow(*probe, 0)
            if err:
                events.append("grow_refused")
                sc["n_refused"] = int(sc["n_refused"]) + 1
                log.info("EMNS growth refused: %s", err)
            else:
                sc["grow_pending"] = 1
            sc["stagnation"] = 0
        if p.prune_eps > 0:
            events += self._prune(a)
        if p.form_rate > 0 and activity is not None:
            events += self._form(a, np.asarray(activity), state.seed, gen)
        sc["n_prune"] = int(sc["n_prune"]) + sum(e.startswith("prune") for e in events)
        sc["n_form"] = int(sc["n_form"]) + sum(e.startswith("form") for e in events)
        sc["events"] = ";".join(events)
        sc["accepted"] = int(bool(accepted))
        sc["best_fitness"] = float(perf.max())
        return State(gen + 1, state.seed, None, a, sc)

    def _prune(self, a) -> list[str]:
        spec, p = self.spec, self.params
        eps = p.prune_eps * (1 << VAL_FRAC) if self.int else p.prune_eps
        events = []
        for l, row in enumerate(self.layout):
            ni, no, _, _, ow, _, _, coff, noff = (int(x) for x in row)
            w = np.abs(a["values"][ow:ow + ni * no].astype(np.float64))
            cm = a["cmask"][coff:coff + ni * no]
            zc = a["zero_count"][coff:coff + ni * no]
            small = (w < eps) & (cm > 0)
            zc[:] = np.where(small, np.minimum(zc.astype(np.int64) + 1, 65535), 0).astype(np.uint16)
            for j in np.flatnonzero(zc >= p.prune_steps):
                o = j // ni
                if cm[o * ni:(o + 1) * ni].sum() <= 1:
                    continue                       # a neuron keeps at least one input
                cm[j] = 0
                zc[j] = 0
                events.append(f"prune:L{l + 1}:{o}<-{j % ni}")
        return events

    def _form(self, a, activity, seed, gen) -> list[str]:
        """activity [B, n_in + n_neurons] of the parent (or [1, B, ...])."""
        spec, p = self.spec, self.params
        act = activity[0] if activity.ndim == 3 else activity
        n_in = spec.dims[0]
        if act.ndim != 2 or act.shape[1] != n_in + spec.n_neurons:
            raise ValueError(f"activity must be [batch, {n_in + spec.n_neurons}] (inputs then neurons), "
                             f"got {act.shape}; use forward(..., return_activity=True)")
        key = rng.py_key(seed, gen, PURPOSE_FORM)
        norm = np.log(p.mi_bins)
        events = []
        for l, row in enumerate(self.layout):
            ni, no, _, _, ow, ob, og, coff, noff = (int(x) for x in row)
            pre_cols = np.arange(ni) if l == 0 else n_in + int(self.layout[l - 1, 8]) + np.arange(ni)
            pre_ok = np.ones(ni, bool) if l == 0 else a["nmask"][int(self.layout[l - 1, 8]):int(self.layout[l - 1, 8]) + ni] > 0
            for o in np.flatnonzero(a["nmask"][noff:noff + no] > 0):
                for i in np.flatnonzero(pre_ok):
                    j = o * ni + i
                    if a["cmask"][coff + j]:
                        continue
                    if spec.max_connections is not None and int(a["cmask"].sum()) >= spec.max_connections:
                        return events + ["form_refused"]
                    mi = binned_mi(act[:, pre_cols[i]], act[:, n_in + noff + o], p.mi_bins) / norm
                    if rng.py_u32(key, coff + j) < rng.bernoulli_threshold(min(1.0, p.form_rate * mi)):
                        a["cmask"][coff + j] = 1
                        a["zero_count"][coff + j] = 0
                        zero = np.int16(0) if self.int else np.float32(0)
                        a["values"][ow + j], a["values"][ob + j] = zero, zero
                        a["values"][og + j] = np.int16(1 << VAL_FRAC) if self.int else np.float32(1)
                        rv = int(np.floor(p.grow_r * 256 + 0.5)) if self.int else p.grow_r
                        for o_ in (ow, ob, og):
                            a["resist"][o_ + j] = 0 if p.resistance == "off" else rv
                        events.append(f"form:L{l + 1}:{o}<-{i}")
        return events

    # ------------------------------------------------------------------ misc
    def best_genome(self, state: State) -> np.ndarray:
        return state.arrays["best"]

    def config(self) -> dict:
        return {"strategy": self.name, "mode": self.mode, "model": self.spec.to_dict(),
                "params": dataclasses.asdict(self.params)}


def fit(strategy: EMNS, X, Y, steps: int, seed: int = 0, state: State | None = None, batch: int | None = None,
        callback=None) -> State:
    """Plain training loop: full batch (or a counter-RNG minibatch of ``batch`` rows) per step."""
    st = strategy.init(seed) if state is None else state
    X = np.asarray(X)
    Y = np.asarray(Y, dtype=np.float64)
    Xe = quantize_inputs(X) if strategy.int and X.dtype != np.int8 else X
    want_act = strategy.params.form_rate > 0
    for _ in range(steps):
        if batch is not None and batch < len(X):
            h = rng.u32_stream(st.seed, st.generation, 0x8000_0002, batch)
            idx = ((h.astype(np.uint64) * np.uint64(len(X))) >> np.uint64(32)).astype(np.int64)
            xb, yb = Xe[idx], Y[idx]
        else:
            xb, yb = Xe, Y
        pop = strategy.ask(st)
        if want_act:
            s, act = strategy.evaluate(pop, xb, yb, return_activity=True)
            st = strategy.tell(st, pop, s, activity=act[0])
        else:
            st = strategy.tell(st, pop, strategy.evaluate(pop, xb, yb))
        if callback is not None:
            callback(st)
    return st


__all__ = ["EMNS", "EMNSParams", "fit", "binned_mi", "PURPOSE_GROW", "PURPOSE_FORM"]
