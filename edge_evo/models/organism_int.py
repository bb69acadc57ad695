"""Integer mode of organism networks (seed 003): particles with int8 / int16 weights.

What holds in integers (measured in docs/organism.md):

* **Forward pass.** Every particle keeps its own integer weights ``q`` (Q``w_frac``: value =
  q * 2^-w_frac) and is evaluated literally on ``(0, 0, 0, 0, x)``: each particle layer is an integer
  product summed in int64 and brought back to the activation format with the contract's one
  rounding rule (``rshift_round``, round half up); a cell sums its particles' outputs, hidden cells
  apply ReLU (``max(0, .)``) and are rescaled (power-of-two shift) and saturated to ``act_bits``.
  Particle-internal values carry ``w_frac`` guard bits and cells are rounded once (int64
  accumulators: int16 weights overflow int32), the way the int8 MLP kernels round once per neuron.
  ``int_forward`` is that pass; ``int_forward_float`` is its float twin on the dequantised
  particles, so a test can bound the rounding error.
* **Self-replication.** The epsilon test of Definition 3 (eps = 1e-5) is below the resolution of
  int8 (LSB 2^-6 .. 2^-7) and of int16 weights in Q13..Q15 (LSB >= 3e-5), so a quantised
  self-replicator is not a float 1e-5 fixpoint any more (``self_replication_error`` of the
  dequantised particle is ~ one LSB). In integers the matching notion is the *exact integer
  fixpoint*: the integer self-application (positions L, C, E in the weight format, the same
  rounding after every particle layer) returns ``q`` bit for bit. ``int_sr_error`` counts the
  deviation in LSB; ``int_sr_repair`` is the self-replication step in integers: a per-particle
  (1+lambda) search with +-1 LSB mutations of one or two weights (counter RNG), accepting
  non-worsening moves, which drives
  quantised self-replicators to exact integer fixpoints.
"""
from __future__ import annotations

import numpy as np

from ..fixedpoint import rshift_round
from .organism import AUX, OrganismSpec, ParticleSpec, PARTICLE_IN

PURPOSE_INT_SR = 0x0B0E_0004


def int_range(bits: int) -> int:
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    return (1 << (bits - 1)) - 1          # symmetric: [-127, 127] or [-32767, 32767]


def choose_frac(x: np.ndarray, bits: int, max_frac: int = 30) -> int:
    """Largest frac such that max|x| * 2^frac still fits the symmetric ``bits`` range."""
    m = float(np.max(np.abs(x))) if np.size(x) else 0.0
    if not np.isfinite(m):
        raise ValueError("cannot quantise NaN or inf values: clean the particles first")
    if m == 0.0:
        return max_frac
    return int(min(max_frac, np.floor(np.log2(int_range(bits) / m))))


def quantize_particles(P: np.ndarray, bits: int = 8, frac: int | None = None) -> tuple[np.ndarray, int]:
    """float particles [..., n] -> (int64 array of int8/int16 values, w_frac): floor(x 2^f + 0.5),
    saturated to the symmetric range (the contract's ``quantize`` rule, for 8 or 16 bits).
    ``frac`` None: one shared format, the finest that holds the largest weight, at most
    ``bits - 2`` (Q6 / Q14) so that the position 1.0 of the self-application input fits."""
    P = np.asarray(P, dtype=np.float64)
    if frac is None:
        frac = min(choose_frac(P, bits), bits - 2)
    if not np.all(np.isfinite(P)):
        raise ValueError("cannot quantise NaN or inf particle weights: clean the particles first")
    r = int_range(bits)
    return np.clip(np.floor(P * 2.0 ** frac + 0.5), -r, r).astype(np.int64), int(frac)


def dequantize_particles(q: np.ndarray, frac: int) -> np.ndarray:
    return np.asarray(q, dtype=np.float64) * 2.0 ** -frac


# ----------------------------------------------------------------------------- self-replication
def _int_chain(Ws: list[np.ndarray], x: np.ndarray, frac: int) -> tuple[np.ndarray, int]:
    """Integer particle layers on inputs x [..., B, k] (format Q``a``; k = 5, or 1 when only the
    auxiliary column is given): returns the last layer's exact int64 sums and their extra fraction
    bits over Q``a``. The first product keeps all bits (Q(a + frac)); a middle layer rounds back to
    Q(a + frac) so the carried guard bits stay fixed; the caller rounds once at the end."""
    t = np.einsum("...bi,...oi->...bo", x, Ws[0])
    for W in Ws[1:-1]:
        t = rshift_round(np.einsum("...bi,...oi->...bo", t, W), frac)
    if len(Ws) == 1:
        return t[..., 0], frac
    return np.einsum("...bi,...oi->...bo", t, Ws[-1])[..., 0], 2 * frac


def int_self_apply(ps: ParticleSpec, q: np.ndarray, frac: int, bits: int = 8) -> np.ndarray:
    """Integer N <|ww N: weight i sees (q_i, L, C, E, 0), positions in the weight format Q``frac``."""
    q = np.asarray(q, dtype=np.int64)
    r = int_range(bits)
    pos = np.clip(np.floor(ps.positions() * 2.0 ** frac + 0.5), -r, r).astype(np.int64)
    inp = np.zeros(q.shape + (PARTICLE_IN,), dtype=np.int64)
    inp[..., 0] = q
    inp[..., 1:4] = pos
    acc, extra = _int_chain(ps.unflatten(q), inp, frac)
    return np.clip(rshift_round(acc, extra), -r, r)         # one rounding back to the weight format


def int_sr_error(ps: ParticleSpec, q: np.ndarray, frac: int, bits: int = 8) -> np.ndarray:
    """Per particle: max |integer self-application - q| in LSB (0 = exact integer fixpoint)."""
    return np.max(np.abs(int_self_apply(ps, q, frac, bits) - np.asarray(q, dtype=np.int64)), axis=-1)


def int_sr_repair(ps: ParticleSpec, q: np.ndarray, frac: int, bits: int = 8, steps: int = 200, lam: int = 8,
                  seed: int = 0) -> np.ndarray:
    """Self-replication step in integers: every particle runs a (1+lambda) search on its integer
    SR error (sum of |deviation| in LSB); a child changes one (even children) or two (odd) random
    weights by +-1 LSB; the best
    child replaces the parent when it is not worse (so plateaus are crossed). Exact fixpoints
    (error 0) are kept. Deterministic (counter RNG from seed, step, child)."""
    from .. import rng
    r = int_range(bits)
    q = np.array(q, dtype=np.int64)
    n = ps.n_params
    flat = q.reshape(-1, n)
    M = flat.shape[0]
    fit = np.sum(np.abs(int_self_apply(ps, flat, frac, bits) - flat), axis=-1)
    for t in range(steps):
        act = np.flatnonzero(fit > 0)          # exact fixpoints are done
        if act.size == 0:
            break
        u = rng.u32_stream((seed ^ PURPOSE_INT_SR) & 0xFFFFFFFF, t, 0, lam * M).reshape(lam, M)[:, act]
        j1 = (u % np.uint32(n)).astype(np.int64)
        j2 = ((u >> np.uint32(8)) % np.uint32(n)).astype(np.int64)
        d1 = np.where((u >> np.uint32(16)) & np.uint32(1), 1, -1).astype(np.int64)
        d2 = np.where((u >> np.uint32(17)) & np.uint32(1), 1, -1).astype(np.int64)
        d2[0::2] = 0                           # even children change one weight, odd ones two
        kids = np.repeat(flat[act][None], lam, axis=0)
        k_ix, r_ix = np.arange(lam)[:, None], np.arange(act.size)[None, :]
        kids[k_ix, r_ix, j1] += d1
        kids[k_ix, r_ix, j2] += d2
        np.clip(kids, -r, r, out=kids)
        kf = np.sum(np.abs(int_self_apply(ps, kids, frac, bits) - kids), axis=-1)    # [lam, active]
        b = np.argmin(kf, axis=0)
        best = kf[b, np.arange(act.size)]
        take = best <= fit[act]
        flat[act[take]] = kids[b[take], np.flatnonzero(take)]
        fit[act[take]] = best[take]
    return flat.reshape(q.shape)


# ----------------------------------------------------------------------------- organism forward
def calibrate_act_fracs(spec: OrganismSpec, particles: np.ndarray, X: np.ndarray, bits: int = 16,
                        x_frac: int = 7) -> list[int]:
    """Activation formats: [x_frac] + one frac per later layer, the finest that holds the largest
    |cell sum| of the float organism on the calibration inputs X (float, same scale as x)."""
    from .organism import extract_weights, split_layers, LUT_FUNCTIONS
    w = extract_weights(spec, particles)
    act = LUT_FUNCTIONS[spec.activation]
    fracs, h = [int(x_frac)], np.asarray(X, dtype=np.float64)
    for l, W in enumerate(split_layers(spec, w)):
        z = h @ W.T
        fracs.append(choose_frac(z, bits))
        h = act(z) if l < spec.n_layers - 1 else z
    return fracs


def int_forward(spec: OrganismSpec, q: np.ndarray, w_frac: int, Xq: np.ndarray, act_fracs: list[int],
                bits: int = 8, act_bits: int = 16, chunk: int = 512) -> np.ndarray:
    """Literal integer organism forward. q [n_edges, n] integer particles (Q``w_frac``, ``bits``),
    Xq [B, dims[0]] integer inputs in Q``act_fracs[0]``; returns int64 [B, out] logits in
    Q``act_fracs[-1]``. Each particle runs on (0, 0, 0, 0, x) with ``w_frac`` guard bits; cells sum
    in int64; hidden cells: ReLU, one rounding shift to the next layer's format, saturation to
    ``act_bits``. ReLU or linear only (the LUT activations are int8-only)."""
    if spec.activation not in ("relu", "linear"):
        raise ValueError(f"int_forward supports relu or linear organisms, got {spec.activation!r}")
    q = np.asarray(q, dtype=np.int64)
    if q.shape != (spec.n_edges, spec.particle.n_params):
        raise ValueError(f"q must be [{spec.n_edges}, {spec.particle.n_params}], got shape {q.shape}")
    if len(act_fracs) != spec.n_layers + 1:
        raise ValueError(f"act_fracs needs {spec.n_layers + 1} formats (input + one per layer), got {len(act_fracs)}")
    Xq = np.asarray(Xq, dtype=np.int64)
    if Xq.ndim != 2 or Xq.shape[1] != spec.dims[0]:
        raise ValueError(f"Xq must be [batch, {spec.dims[0]}], got shape {Xq.shape}")
    ra = int_range(act_bits)
    out = []
    for s0 in range(0, len(Xq), chunk):
        h, e0 = Xq[s0:s0 + chunk], 0
        for l in range(spec.n_layers):
            o, i = spec.dims[l + 1], spec.dims[l]
            Ws = spec.particle.unflatten(q[e0:e0 + o * i].reshape(o, i, -1))
            # a particle sees (0, 0, 0, 0, x): its first layer reduces to the auxiliary column
            Ws = [Ws[0][..., AUX:AUX + 1]] + Ws[1:]
            acc, extra = _int_chain(Ws, h[:, None, :, None, None], w_frac)   # [b, o, i, 1], Q(a_l + extra)
            z = acc[..., 0].sum(axis=2)                                          # cell sums, int64
            if l < spec.n_layers - 1 and spec.activation == "relu":
                z = np.maximum(z, 0)
            sh = act_fracs[l] + extra - act_fracs[l + 1]                         # one rounding per cell
            z = rshift_round(z, sh) if sh >= 0 else z << -sh
            if l < spec.n_layers - 1:
                z = np.clip(z, -ra, ra)
            h = z
            e0 += o * i
        out.append(h)
    return np.concatenate(out)


def int_forward_float(spec: OrganismSpec, q: np.ndarray, w_frac: int, X: np.ndarray) -> np.ndarray:
    """Float twin: the organism with the dequantised particles, exact float arithmetic."""
    from .organism import extract_weights, forward_weights
    return forward_weights(spec, extract_weights(spec, dequantize_particles(q, w_frac)), X)


__all__ = ["int_range", "choose_frac", "quantize_particles", "dequantize_particles", "int_self_apply",
           "int_sr_error", "int_sr_repair", "calibrate_act_fracs", "int_forward", "int_forward_float"]
