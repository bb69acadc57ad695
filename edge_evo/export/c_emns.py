"""EMNS in C (firmware_export/edge_evo_emns.h; seed 000, Karahan 2025): constants for the C runtime and the
Python reference transcripts it must reproduce bit for bit.

The C engine runs integer inference of the masked maximum layout and the ``select`` variant of
``edge_evo.strategies.emns.EMNS`` in int8 mode. Its score is an integer loss, the squared error in Q8
summed over the batch and the outputs: ``L = sum (y_q - t_q)^2``. With Q4 targets and a power-of-two
number of outputs, Python's float score is exactly ``perf = -L / D`` with ``D = 256 * B * n_out`` (every
term and partial sum is exact in float64, the only rounding is the final division, which is monotonic),
so the acceptance ``dP >= 0`` is ``L_child <= L_parent`` and the mu rule's ``dP > dp_eps`` is
``L_parent - L_child > floor(dp_eps * D)`` (``dp_threshold``, exact rational arithmetic). The reference run
below feeds the real ``EMNS.tell`` the float scores of ``EMNS.evaluate`` and records the integer losses.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .. import rng
from ..models.emns import EMNSSpec, Y_FRAC, basis_tables
from ..strategies.emns import EMNS, _mu_q, _q16
from .c_evolve import c_array, fnv1a

LAYOUT_COLS = 9


def emns_hash(values, resist=None) -> int:
    """FNV-1a 32 of int16 values (low byte first) then uint8 resistances if given (ee_emns_hash)."""
    v = np.asarray(values, dtype=np.int16).astype("<i2").view(np.int8)
    if resist is None:
        return fnv1a(v)
    return fnv1a(np.concatenate([v, np.asarray(resist, dtype=np.uint8).view(np.int8)]))


def emns_ram_bytes(n_params: int, n_neurons: int) -> int:
    """EE_EMNS_MEM_BYTES: parent and child slots (values, resistances, mixture tables) + best values."""
    return 8 * n_params + 512 * n_neurons + 4


def _check_select(strategy: EMNS):
    if not isinstance(strategy, EMNS):
        raise TypeError(f"need an EMNS strategy, got {type(strategy).__name__}")
    p = strategy.params
    if strategy.mode != "int8":
        raise ValueError("the C engine runs int8 EMNS; build the strategy with mode='int8'")
    if p.variant != "select":
        raise ValueError(f"the C engine runs the 'select' variant only, got {p.variant!r}")
    if p.grow_patience or p.prune_eps > 0 or p.form_rate > 0:
        raise ValueError("the C engine has constant masks: set grow_patience=0, prune_eps=0 and form_rate=0")


def batch_size(n_samples: int, batch: int | None) -> int:
    """Samples per step as ``fit`` uses them (a batch >= n_samples is the full set)."""
    return n_samples if batch is None or batch >= n_samples else int(batch)


def dp_threshold(dp_eps: float, B: int, n_out: int) -> int:
    """Integer T with dP > dp_eps <=> L_parent - L_child > T, for perf = -L / (256 B n_out).

    Raises ValueError when n_out is not a power of two (the per-sample mean over outputs would round) or
    when dp_eps * D lies within 1e-9 of an integer (the float comparison at the boundary is then decided by
    the last bit of a float64 subtraction, which the integer rule does not model: change the batch size)."""
    if n_out & (n_out - 1):
        raise ValueError(f"n_out={n_out}: the integer loss equals Python's float score only for a power-of-two "
                         "number of outputs")
    if dp_eps == 0:
        return 0
    x = Fraction(dp_eps) * (256 * B * n_out)
    frac = x - math.floor(x)
    if min(frac, 1 - frac) < Fraction(1, 10 ** 9):
        raise ValueError(f"dp_eps * 256 * B * n_out = {float(x)} is (nearly) an integer: the float test dP > dp_eps "
                         "is ambiguous at that loss difference; use another batch size")
    return math.floor(x)


def model_c(spec: EMNSSpec, nmask, cmask, prefix: str = "em") -> str:
    """Layout, basis tables, masks and an ee_emns_model_t initialiser macro ``{PREFIX}_MODEL``."""
    P = prefix.upper()
    agg, act = basis_tables()
    lay = spec.layout()
    width = max(spec.max_dims)
    return "".join([
        c_array("uint32_t", f"{prefix}_layout", lay),
        c_array("int8_t", f"{prefix}_agg_t", agg),
        c_array("int8_t", f"{prefix}_act_t", act),
        c_array("uint8_t", f"{prefix}_nmask", np.asarray(nmask, dtype=np.uint8)),
        c_array("uint8_t", f"{prefix}_cmask", np.asarray(cmask, dtype=np.uint8)),
        f"#define {P}_N_PARAMS {spec.n_params}u\n#define {P}_N_NEURONS {spec.n_neurons}u\n",
        f"#define {P}_N_IN {spec.dims[0]}u\n#define {P}_N_OUT {spec.dims[-1]}u\n#define {P}_MAX_WIDTH {width}u\n",
        f"#define {P}_MODEL {{{spec.n_layers}u, {prefix}_layout, {spec.n_params}u, {spec.n_neurons}u, "
        f"{spec.n_conn}u, {width}u, {prefix}_agg_t, {prefix}_act_t, {prefix}_nmask, {prefix}_cmask}}\n"])


def cfg_c(strategy: EMNS, seed: int, B: int) -> str:
    """C initialiser of ee_emns_cfg_t for an int8 ``select`` EMNS scored on B samples per step."""
    _check_select(strategy)
    p = strategy.params
    val_k, res_k, r_max_q = strategy.int_constants()
    thr = dp_threshold(p.dp_eps, B, strategy.spec.dims[-1])
    return (f"{{{int(seed)}u, {_mu_q(p.mu0)}, {_mu_q(p.mu_min)}, {_mu_q(p.mu_max)}, {_q16(p.f_better)}, "
            f"{_q16(p.f_worse)}, {_q16(p.f_flat)}, {thr}, {rng.bernoulli_threshold(p.keep_worse)}u, "
            f"{val_k}, {res_k}, {r_max_q}}}")


def genome_c(state, prefix: str = "em") -> str:
    """The initial genome (int16 values, uint8 resistances) of a state as C arrays."""
    return (c_array("int16_t", f"{prefix}_values0", state.arrays["values"])
            + c_array("uint8_t", f"{prefix}_resist0", state.arrays["resist"]))


def int_loss(strategy: EMNS, pop, Xq, Tq) -> np.ndarray:
    """Integer loss per genome: sum of (y_q - t_q)^2 over samples and outputs (ee_emns_sse)."""
    out = np.rint(strategy.forward(pop, Xq) * (1 << Y_FRAC)).astype(np.int64)      # exact: Q4 / 16
    d = out - np.asarray(Tq, dtype=np.int64)[None]
    return (d * d).sum(axis=(1, 2))


def select_reference(strategy: EMNS, Xq, Tq, seed: int, steps: int, batch: int | None = None,
                     on_step=None) -> list[str]:
    """Lines 'emns g L_parent L_child accepted mu_q hash(parent)' of the real EMNS select run (float scores
    from EMNS.evaluate, minibatches drawn as ``fit`` draws them), then 'best L hash(best values, no resistances)'."""
    _check_select(strategy)
    Xq = np.asarray(Xq, dtype=np.int8)
    Tq = np.asarray(Tq, dtype=np.int8)
    if Tq.ndim == 1:
        Tq = Tq[:, None]
    N = len(Xq)
    st = strategy.init(seed)
    lines = []
    best_l = None
    for g in range(steps):
        if batch is not None and batch < N:
            h = rng.u32_stream(st.seed, st.generation, 0x8000_0002, batch)
            idx = ((h.astype(np.uint64) * np.uint64(N)) >> np.uint64(32)).astype(np.int64)
            xb, tb = Xq[idx], Tq[idx]
        else:
            xb, tb = Xq, Tq
        pop = strategy.ask(st)
        L = int_loss(strategy, pop, xb, tb)
        scores = strategy.evaluate(pop, xb, tb.astype(np.float64) / (1 << Y_FRAC))
        st = strategy.tell(st, pop, scores)
        acc = int(st.scalars["accepted"])
        cur = int(L[1] if acc else L[0])
        if best_l is None or cur < best_l:
            best_l = cur
        lines.append(f"emns {g} {int(L[0])} {int(L[1])} {acc} {int(st.scalars['mu_q'])} "
                     f"{emns_hash(st.arrays['values'], st.arrays['resist'])}")
        if on_step is not None:
            on_step(g, st, scores, L)
    lines.append(f"best {best_l} {emns_hash(st.arrays['best'])}")
    return lines


__all__ = ["emns_hash", "emns_ram_bytes", "batch_size", "dp_threshold", "model_c", "cfg_c", "genome_c", "int_loss",
           "select_reference"]
