"""Does a model (and its on-device evolution) fit a device? Memory budget against ``targets/*.toml``.

Inference (firmware_export/edge_evo_rt.h, as ``edge_evo.export.c_export`` lays it out): the genome
(weights and biases) and the int8[256] LUT are const, so they live in flash with the runtime code; RAM
holds the ping-pong scratch (2 x widest hidden layer), the int32 logits, the caller's int8 input and
the stack.

On-device evolution (firmware_export/edge_evo_evolve.h) keeps every genome it works on in RAM:
    GENREG  k*n + n + 8P + 17k + B   (EE_GENREG_MEM_BYTES: k survivors, the work genome, P child
                                      records, per-survivor words, B correctness flags)
    OpenES  9n + 6P                  (EE_OPENES_MEM_BYTES: int32 mean and momentum, work genome,
                                      P fitnesses, P/2 pair weights)
plus the inference buffers above (the work genome is evaluated in place), the engine's state struct and
its stack. When a budget is exceeded the report names the largest survivors / population / batch /
hidden width that would fit, found by search over the same formulas.
"""
from __future__ import annotations

import logging
import re

from .export.c_evolve import genreg_ram_bytes, openes_ram_bytes
from .models.mlp import MLPSpec
from .targets import Target, get_target

log = logging.getLogger(__name__)

EVOLVERS = ("genreg", "openes")
# Code bytes when nothing is measured: linked Cortex-M4 firmwares (benchmarks/bench_c_evolve.py and
# bench_c_sizes.py, -Os): runtime + startup ~1.4 KB; GENREG engine 1.9 KB (integer-only since the
# initial population is drawn with integers), OpenES 2.6 KB; rounded up for other instruction sets.
CODE_BYTES = {None: 2048, "genreg": 4096, "openes": 4096}
# Stack: inference peaks near 100 B on Cortex-M (-fstack-usage), the golden program under 2 KB.
STACK_BYTES = {None: 512, "genreg": 1024, "openes": 1024}
STATE_BYTES = {"genreg": 64, "openes": 160}   # ee_genreg_t / ee_openes_t (+ cfg copy), rounded up
DEFAULTS = {"genreg": {"population": 200, "survivors": 2, "batch": 200},
            "openes": {"population": 64}}
_OPTIONS = {None: {"stack_bytes", "code_bytes"},
            "genreg": {"population", "survivors", "batch", "stack_bytes", "code_bytes"},
            "openes": {"population", "stack_bytes", "code_bytes"}}
_DIMS = re.compile(r"^\d+(-\d+)+$")


def _spec(model) -> MLPSpec:
    """MLPSpec of a spec, a dims string '784-64-10', a (spec, genome) pair, a Model or a saved model path."""
    if isinstance(model, MLPSpec):
        return model
    if isinstance(model, str) and _DIMS.match(model):
        return MLPSpec(tuple(int(d) for d in model.split("-")))
    if isinstance(model, (tuple, list)) and model and all(isinstance(d, int) for d in model):
        return MLPSpec(tuple(model))
    from .export import resolve_model
    return resolve_model(model)[0]


def _check_opts(evolve, opts) -> dict:
    if evolve is not None and evolve not in EVOLVERS:
        raise ValueError(f"unknown evolution engine {evolve!r}; choose one of {', '.join(EVOLVERS)} (or none "
                         "for inference only)")
    bad = sorted(set(opts) - _OPTIONS[evolve])
    if bad:
        raise TypeError(f"option(s) {', '.join(bad)} do not apply to "
                        f"{evolve or 'inference only'}; allowed: {', '.join(sorted(_OPTIONS[evolve]))}")
    o = dict(DEFAULTS.get(evolve, {}))
    o.update({k: v for k, v in opts.items() if v is not None})
    for k, v in o.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if k.endswith("_bytes") else 1):
            raise ValueError(f"{k} must be a {'non-negative' if k.endswith('_bytes') else 'positive'} "
                             f"integer, got {v!r}")
    if evolve == "genreg" and o["survivors"] > o["population"]:
        raise ValueError(f"survivors ({o['survivors']}) must not exceed population ({o['population']})")
    if evolve == "genreg" and (o["population"] > 0xFFFF or o["batch"] > 0xFFFF):
        raise ValueError("population and batch must fit uint16 for the C engine (<= 65535)")
    if evolve == "openes" and o["population"] % 2:
        raise ValueError(f"OpenES needs an even population (mirrored pairs), got {o['population']}")
    return o


def _budget(spec: MLPSpec, evolve, o) -> tuple[dict, dict]:
    """(flash parts, RAM parts) in bytes."""
    n = spec.n_params
    hidden = spec.dims[1:-1]
    scratch = 2 * (max(hidden) if hidden else 0)
    code = o.get("code_bytes", CODE_BYTES[evolve])
    ram = {"scratch_bytes": scratch, "logits_bytes": 4 * spec.dims[-1], "input_bytes": spec.dims[0],
           "stack_bytes": o.get("stack_bytes", STACK_BYTES[evolve])}
    flash = {"code_bytes": code, "lut_bytes": 256, "dims_bytes": 2 * (spec.n_layers + 1)}
    if evolve is None:
        flash["params_bytes"] = n
    elif evolve == "genreg":
        P, k, B = o["population"], o["survivors"], o["batch"]
        ram["evolution_bytes"] = genreg_ram_bytes(P, k, n, B)
        ram["state_bytes"] = STATE_BYTES["genreg"]
        flash["gumbel_bytes"] = 4 * 256       # int32 Gumbel table of GENREG's sampled prediction
    else:
        ram["evolution_bytes"] = openes_ram_bytes(o["population"], n)
        ram["state_bytes"] = STATE_BYTES["openes"]
    return flash, ram


def _largest(ok, lo: int, hi: int) -> int | None:
    """Largest v in [lo, hi] with ok(v) (ok monotone decreasing), or None."""
    if not ok(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid - 1)
    return lo


def _fits(t: Target, spec, evolve, o) -> bool:
    flash, ram = _budget(spec, evolve, o)
    return ((t.flash_bytes is None or sum(flash.values()) <= t.flash_bytes)
            and (t.ram_bytes is None or sum(ram.values()) <= t.ram_bytes))


def _suggestions(t: Target, spec: MLPSpec, evolve, o) -> list[str]:
    out = []
    if evolve == "genreg":
        v = _largest(lambda k: _fits(t, spec, evolve, {**o, "survivors": k}), 1, o["survivors"])
        if v is not None:
            out.append(f"survivors to <= {v}")
    if evolve is not None:
        step = 2 if evolve == "openes" else 1
        v = _largest(lambda p: _fits(t, spec, evolve, {**o, "population": p * step}), 1,
                     o["population"] // step)
        if v is not None and v * step >= (o.get("survivors", 1)):
            out.append(f"population to <= {v * step}")
    if evolve == "genreg":
        v = _largest(lambda b: _fits(t, spec, evolve, {**o, "batch": b}), 1, o["batch"])
        if v is not None:
            out.append(f"batch to <= {v}")
    hidden = spec.dims[1:-1]
    if hidden:
        def with_hidden(h):
            return MLPSpec((spec.dims[0], *[min(d, h) for d in hidden], spec.dims[-1]), spec.activation,
                           spec.w_frac, spec.b_frac, spec.x_frac, spec.z_frac, spec.h_frac)
        v = _largest(lambda h: _fits(t, with_hidden(h), evolve, o), 1, max(hidden))
        if v is not None:
            out.append(f"hidden units to <= {v}")
    return out


def fit_report(model, target, evolve: str | None = None, **opts) -> dict:
    """Memory budget of ``model`` on ``target`` (a ``targets/*.toml`` name or Target).

    ``model``: MLPSpec, dims string ``"784-64-10"``, (spec, genome), a Model or a saved model path.
    ``evolve``: None (inference only), ``"genreg"`` or ``"openes"``. Options: ``population``,
    ``survivors`` and ``batch`` (GENREG), ``population`` (OpenES), ``stack_bytes``, ``code_bytes``.
    Returns a dict with the flash/RAM parts, totals, the target's budget, ``fits`` and, when it does
    not fit, ``suggestions`` (largest values that fit) and a one-line ``message``.
    """
    t = get_target(target)
    spec = _spec(model)
    o = _check_opts(evolve, opts)
    flash, ram = _budget(spec, evolve, o)
    f_tot, r_tot = sum(flash.values()), sum(ram.values())
    fits_flash = t.flash_bytes is None or f_tot <= t.flash_bytes
    fits_ram = t.ram_bytes is None or r_tot <= t.ram_bytes
    fits = fits_flash and fits_ram
    what = f"{'-'.join(map(str, spec.dims))} ({spec.n_params} parameters)"
    how = "inference" if evolve is None else f"{evolve} evolution (" + ", ".join(
        f"{k}={v}" for k, v in o.items() if not k.endswith("_bytes")) + ")"
    cap = lambda v: "unlimited" if v is None else f"{v} B"  # noqa: E731
    if fits:
        message = (f"{what} {how} fits {t.name}: flash {f_tot} B of {cap(t.flash_bytes)}, "
                   f"RAM {r_tot} B of {cap(t.ram_bytes)}")
        suggestions = []
    else:
        over = []
        if not fits_flash:
            over.append(f"flash {f_tot} B > {t.flash_bytes} B")
        if not fits_ram:
            over.append(f"RAM {r_tot} B > {t.ram_bytes} B")
        suggestions = _suggestions(t, spec, evolve, o)
        fix = ("reduce " + " or ".join(suggestions)) if suggestions else "use a larger target"
        message = f"{what} {how} does not fit {t.name}: {', '.join(over)}; {fix}"
    log.debug("fit: %s", message)
    return {"target": t.name, "model": {"dims": list(spec.dims), "n_params": spec.n_params},
            "evolve": evolve, "options": o, "flash": flash, "ram": ram,
            "flash_bytes": f_tot, "ram_bytes": r_tot,
            "budget": {"flash_bytes": t.flash_bytes, "ram_bytes": t.ram_bytes},
            "fits_flash": fits_flash, "fits_ram": fits_ram, "fits": fits,
            "suggestions": suggestions, "message": message}


# ----------------------------------------------------------------------------- CLI (edge_evo/cli.py)


def targets_table() -> list[str]:
    """Lines of ``edge-evo targets``: memory, word size, FPU/DSP, toolchain (installed?) and emulator."""
    from .targets import list_targets

    def kb(v):
        return "-" if v is None else (f"{v // 1024} KB" if v < 1 << 20 else f"{v / (1 << 20):g} MB")
    rows = [("name", "kind", "RAM", "flash", "word", "FPU", "DSP", "toolchain", "emulator")]
    for name in list_targets():
        t = get_target(name)
        tc = t.toolchain.cc + ("" if t.toolchain.available() else " (missing)")
        em = "-" if t.emulator is None else t.emulator.machine + ("" if t.emulator.available() else " (missing)")
        rows.append((t.name, t.kind, kb(t.ram_bytes), kb(t.flash_bytes), f"{t.word_bits}-bit", t.fpu,
                     "yes" if t.dsp else "no", tc, em))
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip() for r in rows]
    return lines + [f"{get_target(n).name}: {get_target(n).description}" for n in list_targets()]


__all__ = ["fit_report", "EVOLVERS", "targets_table"]
