"""C exporter: an int8 MLP as a C99 header + source for the edge_evo runtime (firmware_export/).

``export_c`` writes ``<name>.h`` (dims, formats, buffer sizes, model hash), ``<name>.c`` (the flat
genome and the activation LUT as const arrays, so they stay in flash, plus a static scratch buffer)
and ``<name>_report.json`` (flash/RAM split into weights, LUT, scratch and stack). The runtime
implements the numerics contract (docs/numerics.md) bit for bit, so ``check_on_host`` /
``check_on_target`` compile the emitted code with a generated main, run a batch and require the
logits to equal ``edge_evo.models.forward.forward(..., engine="numba")`` exactly (the emlearn idea:
the converted model runs itself and is compared with the reference).
"""
from __future__ import annotations

import json
import logging
import re
import shutil
import string
import tempfile
from pathlib import Path

import numpy as np

from .. import NUMERICS_CONTRACT, __version__
from ..targets import firmware_dir, get_target
from . import c_build
from .onnx_export import model_hash

log = logging.getLogger(__name__)

RUNTIME_FILES = ("edge_evo_rt.h", "edge_evo_rt.c")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")
# Frames of the inference call chain when no compiler can measure them (-fstack-usage): generous
# for a 32-bit core (the golden run on Cortex-M4/M0 peaked well below this).
STACK_FALLBACK = 256


def _check_inputs(spec, genome, name):
    if not _IDENT.match(name) or name.lower().startswith("ee_"):
        raise ValueError(f"name {name!r} is not usable as a C identifier prefix; use letters, digits and "
                         "'_' (not starting with a digit or 'ee_')")
    genome = np.asarray(genome)
    if genome.dtype != np.int8:
        raise TypeError(f"the C runtime runs int8 models; this genome is {genome.dtype}: quantize it first "
                        "(edge_evo.fixedpoint.quantize with the spec's w_frac/b_frac)")
    if genome.ndim != 1 or genome.size != spec.n_params:
        raise ValueError(f"genome must be 1-D with {spec.n_params} int8 values for {spec.dims}, "
                         f"got shape {genome.shape}")
    if (genome == -128).any():
        raise ValueError("genome contains -128, outside the contract's symmetric range [-127, 127]: "
                         "clip it (edge_evo.fixedpoint.saturate_int8)")
    if max(spec.dims) > 0xFFFF:
        raise ValueError(f"layer sizes must fit uint16 for the C runtime, got {spec.dims}")
    return genome


def _rows(values, per_line=20, indent="    "):
    vals = [str(int(v)) for v in np.asarray(values).ravel()]
    return ",\n".join(indent + ", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line))


def _fill(template: str, **kw) -> str:
    text = (firmware_dir() / "templates" / template).read_text()
    return string.Template(text).substitute(**kw)


def _fields(spec, genome, name):
    hidden = spec.dims[1:-1]
    max_hidden = max(hidden) if hidden else 0
    return dict(
        name=name, NAME=name.upper(), version=__version__, contract=NUMERICS_CONTRACT,
        hash=model_hash(spec, genome), dims_text="-".join(map(str, spec.dims)), activation=spec.activation,
        n_layers=spec.n_layers, N_IN=spec.dims[0], N_OUT=spec.dims[-1], n_params=spec.n_params,
        max_hidden=max_hidden, scratch_bytes=2 * max_hidden, x_frac=spec.x_frac, w_frac=spec.w_frac,
        b_frac=spec.b_frac, z_frac=spec.z_frac, h_frac=spec.h_frac, logit_frac=spec.logit_frac,
        params_bytes=spec.n_params, lut_bytes=256, dims_list=", ".join(map(str, spec.dims)))


def _stack_estimate(target, c_file: Path, out_dir: Path) -> tuple[int, str]:
    """Sum of the inference chain's frames from gcc -fstack-usage for the target, or a fallback."""
    try:
        t = c_build.require(target)
    except c_build.ToolchainMissing as e:
        return STACK_FALLBACK, f"fallback ({e})"
    import subprocess
    fw = firmware_dir()
    work = Path(tempfile.mkdtemp(prefix="ee_su_"))
    try:
        frames = {}
        for src in (fw / "edge_evo_rt.c", c_file):
            obj = work / (src.stem + ".o")
            flags = ["-Os"] if t.bare_metal else ["-O2"]
            r = subprocess.run([t.toolchain.cc, "-std=c99", *t.toolchain.cflags, *flags, "-fstack-usage",
                                f"-I{fw}", f"-I{out_dir}", "-c", str(src), "-o", str(obj)],
                               capture_output=True, text=True)
            if r.returncode != 0:
                return STACK_FALLBACK, "fallback (stack-usage build failed)"
            for line in obj.with_suffix(".su").read_text().splitlines():
                parts = line.split("\t")
                frames[parts[0].rsplit(":", 1)[-1]] = int(parts[1])
        chain = [k for k in frames if k.endswith("_predict") or k in ("ee_mlp_forward", "dense_acc", "ee_argmax")]
        return sum(frames[k] for k in chain), f"gcc -fstack-usage ({t.toolchain.cc}): " + ", ".join(
            f"{k} {frames[k]}" for k in chain)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def export_c(spec, genome, path, integer: bool | None = None, name: str = "model", target: str = "host",
             copy_runtime: bool = True, measure: bool = True) -> Path:
    """Write ``<name>.h``, ``<name>.c`` and ``<name>_report.json`` into the folder ``path``.

    ``path`` ending in ``.h``/``.c`` means its folder, with the file stem as ``name``. ``target``
    names a ``targets/*.toml`` device: the report says whether the model fits it and, when its
    toolchain is installed, measures code size (``size -A``) and stack frames. ``copy_runtime``
    copies edge_evo_rt.h/.c beside the model so the folder builds on its own. Returns the header path.
    """
    if integer is False:
        raise ValueError("the C exporter writes the integer model only; use --int (or integer=None)")
    path = Path(path)
    if path.suffix in (".h", ".c"):
        path, name = path.parent, (path.stem if name == "model" else name)
    genome = _check_inputs(spec, genome, name)
    t = get_target(target)
    _check_fits(spec, t)
    path.mkdir(parents=True, exist_ok=True)
    kw = _fields(spec, genome, name)
    kw["params_body"] = _rows(genome)
    kw["lut_body"] = _rows(spec.lut(), per_line=16)
    h_file, c_file = path / f"{name}.h", path / f"{name}.c"
    h_file.write_text(_fill("model.h.in", **kw))
    c_file.write_text(_fill("model.c.in", **kw))
    if copy_runtime:
        for f in RUNTIME_FILES:
            shutil.copyfile(firmware_dir() / f, path / f)
    report = build_report(spec, genome, name, t, c_file if measure else None)
    (path / f"{name}_report.json").write_text(json.dumps(report, indent=1) + "\n")
    log.info("exported %s (%s) to %s: flash %d B, RAM %d B", name, kw["dims_text"], path,
             report["flash"]["total_bytes"], report["ram"]["total_bytes"])
    return h_file


def _check_fits(spec, t) -> None:
    """Refuse, before writing anything, a model whose constants or scratch exceed the device."""
    const = spec.n_params + 256
    hidden = spec.dims[1:-1]
    ram = 2 * (max(hidden) if hidden else 0) + 4 * spec.dims[-1]
    if t.flash_bytes is not None and const > t.flash_bytes:
        raise ValueError(f"model too large for target {t.name!r}: {const} B of weights and LUT > "
                         f"{t.flash_bytes} B of flash; use a smaller model or another target")
    if t.ram_bytes is not None and ram > t.ram_bytes:
        raise ValueError(f"model too large for target {t.name!r}: {ram} B of buffers > {t.ram_bytes} B "
                         "of RAM; use narrower hidden layers or another target")


def build_report(spec, genome, name, target, c_file: Path | None) -> dict:
    """Flash/RAM budget: weights, LUT, scratch, logits and stack; measured code size when possible."""
    kw = _fields(spec, genome, name)
    weights = sum(int(np.prod(s)) for n, s in spec.tensors() if n.startswith("W"))
    biases = spec.n_params - weights
    flash = {"weights_bytes": weights, "biases_bytes": biases, "lut_bytes": 256,
             "dims_bytes": 2 * (spec.n_layers + 1), "code_bytes": None, "code_measured_with": None}
    logits_bytes = 4 * spec.dims[-1]
    stack, stack_how = STACK_FALLBACK, "fallback (not measured)"
    if c_file is not None:
        stack, stack_how = _stack_estimate(target, c_file, c_file.parent)
        code = _code_size(target, c_file)
        if code is not None:
            flash["code_bytes"], flash["code_measured_with"] = code
    ram = {"scratch_bytes": kw["scratch_bytes"] + 1, "logits_bytes": logits_bytes,
           "stack_estimate_bytes": stack, "stack_estimate_from": stack_how}
    flash["total_bytes"] = sum(v for k, v in flash.items() if k.endswith("_bytes") and v)
    ram["total_bytes"] = ram["scratch_bytes"] + logits_bytes + stack
    fits = {"flash": target.flash_bytes is None or flash["total_bytes"] <= target.flash_bytes,
            "ram": target.ram_bytes is None or ram["total_bytes"] <= target.ram_bytes}
    return {"name": name, "model_hash": kw["hash"], "contract": NUMERICS_CONTRACT, "edge_evo": __version__,
            "spec": spec.to_dict(), "n_params": spec.n_params, "target": target.to_dict(),
            "flash": flash, "ram": ram, "fits": fits,
            "note": "flash = const weights/LUT (+ runtime code when measured); RAM = static scratch + "
                    "caller's logits + stack; the caller's int8 input buffer is not counted"}


def _code_size(target, c_file: Path):
    """Code bytes of runtime + model inference on ``target`` (an ELF with a minimal main), or None."""
    if not target.bare_metal:  # a hosted executable's size is mostly its C library
        return None
    try:
        t = c_build.require(target)
    except c_build.ToolchainMissing:
        return None
    name = c_file.stem
    work = Path(tempfile.mkdtemp(prefix="ee_size_"))
    try:
        main = work / "size_main.c"
        main.write_text(f'#include "{name}.h"\nstatic int8_t x[{name.upper()}_N_INPUTS];\n'
                        f'static int32_t y[{name.upper()}_N_OUTPUTS];\n'
                        f'int main(void) {{ return {name}_predict(x, y); }}\n')
        elf = c_build.build(t, [firmware_dir() / "edge_evo_rt.c", c_file, main], work / "size.elf",
                            include_dirs=[c_file.parent], emulated=False)
        sizes = c_build.section_sizes(t, elf)
        text = sizes.get(".text", 0) + sizes.get(".rodata", 0)
        n_const = _count_const(c_file)
        return max(text - n_const, 0), (f"{t.toolchain.size} -A: .text + .rodata - model constants "
                                        "(runtime, startup, vector table, mem*)")
    except (RuntimeError, c_build.ToolchainMissing, OSError) as e:
        log.warning("could not measure code size for %s: %s", t.name, e)
        return None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _count_const(c_file: Path) -> int:
    text = c_file.read_text()
    m = re.findall(r"const (u?int(8|16))_t \w+\[[^\]]*\] = \{([^}]*)\}", text)
    return sum((1 if bits == "8" else 2) * (body.count(",") + 1) for _, bits, body in m)


# ----------------------------------------------------------------------------- checks
def default_inputs(n_in: int, n: int = 16, seed: int = 0) -> np.ndarray:
    """Deterministic int8 inputs in [0, 127] (pixel range) from the counter RNG."""
    from ..rng import u32_stream
    return (u32_stream(seed, 0, 0x8000_0000 | 0xC, n * n_in) % 128).astype(np.int8).reshape(n, n_in)


def check_on_target(model, X=None, target: str = "host", n_inputs: int = 16, out_dir=None,
                    name: str = "model", sanitize: bool = False) -> dict:
    """Export ``model``, build it with a generated main for ``target``, run it (natively or emulated)
    and compare every logit with ``forward(..., engine="numba")``. Raises AssertionError on any
    difference; returns a summary (inputs, argmax agreement, hash, sizes, stack)."""
    from . import resolve_model
    from ..models.mlp import Population
    from ..models.forward import forward
    spec, genome = resolve_model(model)
    X = default_inputs(spec.dims[0], n_inputs) if X is None else np.asarray(X)
    if X.ndim != 2 or X.shape[1] != spec.dims[0] or X.dtype != np.int8 or len(X) == 0:
        raise ValueError(f"X must be a non-empty int8 array [batch, {spec.dims[0]}] in Q{spec.x_frac}, "
                         f"got {X.dtype} {X.shape}")
    own = out_dir is None
    out = Path(tempfile.mkdtemp(prefix="ee_check_")) if own else Path(out_dir)
    try:
        h = export_c(spec, genome, out, name=name, target=target, measure=False)
        kw = _fields(spec, genome, name)
        kw["n_inputs"] = len(X)
        kw["inputs_body"] = ",\n".join("    {" + ", ".join(str(int(v)) for v in row) + "}" for row in X)
        main = out / f"{name}_check_main.c"
        main.write_text(_fill("check_main.c.in", **kw))
        exe = c_build.build(target, [out / "edge_evo_rt.c", out / f"{name}.c", main],
                            out / f"{name}_check{'.elf' if get_target(target).bare_metal else ''}",
                            include_dirs=[out], sanitize=sanitize)
        r = c_build.run(target, exe)
        if r.returncode != 0:
            raise RuntimeError(f"check program failed on {target} (exit {r.returncode}): {r.stderr[-1000:]}")
        lines = r.transcript
        want = forward(Population.from_flat(spec, genome[None]), X, engine="numba")[0]
        assert lines[0] == f"hash {kw['hash']}", f"model hash differs: {lines[0]!r} vs {kw['hash']}"
        got = np.array([[int(v) for v in l.split()[1:-2]] for l in lines[1:-1]], dtype=np.int64)
        am = np.array([int(l.split()[-1]) for l in lines[1:-1]])
        assert lines[-1] == "end" and got.shape == want.shape, f"truncated transcript ({len(lines)} lines)"
        bad = np.argwhere(got != want)
        assert len(bad) == 0, (f"C logits differ from the numba kernels on {target} at {len(bad)} places, "
                               f"first (input, output) {tuple(bad[0])}: C {got[tuple(bad[0])]} vs "
                               f"numba {want[tuple(bad[0])]}")
        assert np.array_equal(am, np.argmax(want, axis=1)), "argmax differs"
        res = {"target": target, "n_inputs": int(len(X)), "exact": True, "hash": kw["hash"], "header": str(h)}
        if get_target(target).bare_metal:
            res["stack_bytes"] = r.stack_bytes
            res["sizes"] = c_build.section_sizes(target, exe)
        return res
    finally:
        if own:
            shutil.rmtree(out, ignore_errors=True)


def check_on_host(model, X=None, n_inputs: int = 16, out_dir=None, name: str = "model",
                  sanitize: bool = False) -> dict:
    """``check_on_target`` on the host compiler (the first rung of the verification ladder)."""
    return check_on_target(model, X, "host", n_inputs, out_dir, name, sanitize)


__all__ = ["export_c", "check_on_host", "check_on_target", "build_report", "default_inputs"]
