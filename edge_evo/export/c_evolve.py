"""On-device evolution in C (firmware_export/edge_evo_evolve.h): configuration export and the Python
reference transcripts the C runtime must reproduce bit for bit.

The C engine runs the int8 modes of GENREG (P. Miller 2024; edge_evo/strategies/genreg.py) and OpenES
(seed 002, Algorithm 1; edge_evo/strategies/openes.py). This module turns a strategy object into the C
initialisers of ``ee_genreg_cfg_t`` / ``ee_openes_cfg_t`` (every Q constant computed here, off-device),
writes the model/data constants a firmware needs, and runs the same generations with the Python
classes so a test or example can diff the transcripts ("genreg g best_trust fnv" / "openes g best fnv").
"""
from __future__ import annotations

import numpy as np

from .. import rng
from ..models.mlp import MLPSpec
from ..strategies._breeding import init_range_q
from ..strategies.openes import MEAN_FRAC, q16
from ..tasks.problem import gumbel_lut

GENREG_RECORD_BYTES = 8     # ee_child_t: uint16 parent_a, uint16 parent_b, int32 trust


def fnv1a(genome) -> int:
    """FNV-1a 32 of the int8 genome bytes (ee_fnv1a)."""
    h = 2166136261
    for b in np.asarray(genome, dtype=np.int8).view(np.uint8).tolist():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def genreg_ram_bytes(P: int, k: int, n: int, B: int) -> int:
    """EE_GENREG_MEM_BYTES: k stored survivors + work genome + P child records + per-survivor words."""
    return GENREG_RECORD_BYTES * P + 16 * k + ((k * n + n + k + B + 3) & ~3)


def openes_ram_bytes(P: int, n: int) -> int:
    """EE_OPENES_MEM_BYTES: int32 mean + momentum, work genome, fitnesses, pair weights."""
    return 8 * n + 4 * P + 4 * (P // 2) + ((n + 3) & ~3)


def c_array(ctype: str, name: str, values, per_line: int = 24, const: bool = True) -> str:
    vals = [str(int(v)) + ("u" if ctype.startswith("uint") else "") for v in np.asarray(values).ravel()]
    if ctype == "int32_t":
        vals = [v if int(v) != -2 ** 31 else "(-2147483647 - 1)" for v in vals]
    rows = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    q = "static const " if const else "static "
    return f"{q}{ctype} {name}[{len(vals)}] = {{\n    " + ",\n    ".join(rows) + "\n};\n"


def model_c(spec: MLPSpec, prefix: str = "ed") -> str:
    """dims, activation LUT, Gumbel table and an ee_mlp_t initialiser macro (params set by the engine)."""
    P = prefix.upper()
    return "".join([
        c_array("uint16_t", f"{prefix}_dims", spec.dims),
        c_array("int8_t", f"{prefix}_lut", spec.lut()),
        c_array("int32_t", f"{prefix}_gumbel", gumbel_lut(spec.logit_frac)),
        f"#define {P}_N_PARAMS {spec.n_params}u\n",
        f"#define {P}_N_IN {spec.dims[0]}u\n#define {P}_N_OUT {spec.dims[-1]}u\n",
        f"#define {P}_MAX_HIDDEN {max(spec.dims[1:-1], default=0)}u\n",
        f"#define {P}_MODEL {{{spec.n_layers}u, {prefix}_dims, NULL, {prefix}_lut, {spec.w_frac}u, "
        f"{spec.b_frac}u, {spec.x_frac}u, {spec.z_frac}u, {spec.h_frac}u}}\n"])


def genreg_cfg_c(strategy, seed: int, batch: int) -> str:
    """C initialiser of ee_genreg_cfg_t for an int8 GENREG strategy."""
    if strategy.mode != "int8":
        raise ValueError("the C engine runs int8 GENREG; build the strategy with mode='int8'")
    p, spec = strategy.params, strategy.spec
    thr = rng.bernoulli_threshold(p.child_mutation_rate)
    mw = rng.gauss_multiplier(p.mutation_scale * 2.0 ** spec.w_frac)
    mb = rng.gauss_multiplier(p.mutation_scale * 2.0 ** spec.b_frac)
    return (f"{{{int(seed)}u, {p.population}u, {p.n_survivors()}u, {int(batch)}u, {thr}u, {mw}, {mb}, "
            f"{p.q_decay()}, {p.q_reward()}, {p.q_penalty()}, {p.q_inherit()}, "
            f"{init_range_q(p.init_w, spec.w_frac)}, {init_range_q(p.init_b, spec.b_frac)}}}")


def _openes_init_a(strategy) -> list[int]:
    """A of each W tensor exactly as OpenES._init_mean computes it."""
    spec, p = strategy.spec, strategy.params
    out = []
    for l in range(spec.n_layers):
        fan_in = spec.dims[l]
        scale = p.init_scale if p.init_scale is not None else 1.0 / np.sqrt(fan_in)
        out.append(int(round(min(scale, 127 / 2 ** spec.w_frac) * 2.0 ** (spec.w_frac + MEAN_FRAC))))
    return out


def openes_cfg_c(strategy, seed: int) -> str:
    """C initialiser of ee_openes_cfg_t for an int8 OpenES strategy."""
    if strategy.mode != "int8":
        raise ValueError("the C engine runs int8 OpenES; build the strategy with mode='int8'")
    p, spec = strategy.params, strategy.spec
    if spec.n_layers > 8:
        raise ValueError(f"the C engine supports up to 8 layers, got {spec.n_layers}")
    sm = [int(v) for v in strategy._sigma_m(p.sigma)]
    sm_min = [int(v) for v in strategy._sigma_m(p.sigma_min)]
    shaping = {"rank5": 0, "centered": 1}[p.shaping]

    def arr(v):
        return "{" + ", ".join(map(str, v)) + "}"
    return (f"{{{int(seed)}u, {p.population}u, {shaping}u, {q16(p.momentum)}, {q16(p.lr)}, {q16(p.weight_decay)}, "
            f"{q16(p.sigma_decay)}, {q16(p.lr_decay)}, {q16(p.lr_min)}, {arr(sm)}, {arr(sm_min)}, "
            f"{arr(_openes_init_a(strategy))}}}")


# ---------------------------------------------------------------- Python reference runs
def genreg_reference(strategy, problem, seed: int, generations: int, on_generation=None) -> list[str]:
    """Lines 'genreg g best_trust fnv(best)' of the Python GENREG (Gumbel-sampled correctness)."""
    st = strategy.init(seed)
    lines = []
    for g in range(generations):
        pop = strategy.ask(st)
        sc = problem.scores(pop, st.generation, seed, prediction="sample", score="correct")
        st = strategy.tell(st, pop, sc)
        lines.append(f"genreg {g} {int(st.arrays['best_trust'])} {fnv1a(st.arrays['best'])}")
        if on_generation is not None:
            on_generation(g, st)
    return lines


def openes_reference(strategy, problem, seed: int, generations: int, on_generation=None) -> list[str]:
    """Lines 'openes g best_correct fnv(mean genome)' of the Python OpenES with argmax-correct fitness."""
    st = strategy.init(seed)
    lines = []
    for g in range(generations):
        pop = strategy.ask(st)
        sc = problem.scores(pop, st.generation, seed, prediction="argmax", score="correct")
        st = strategy.tell(st, pop, sc)
        lines.append(f"openes {g} {int(np.asarray(sc, dtype=np.int64).sum(axis=1).max())} {fnv1a(st.arrays['best'])}")
        if on_generation is not None:
            on_generation(g, st)
    return lines


__all__ = ["fnv1a", "genreg_ram_bytes", "openes_ram_bytes", "c_array", "model_c", "genreg_cfg_c", "openes_cfg_c",
           "genreg_reference", "openes_reference"]
