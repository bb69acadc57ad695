"""Evolve (or load) an int8 digits classifier, export it to C and run it on an emulated Cortex-M4.

    python examples/firmware_m4/run_on_m4.py                  # quick OpenES run (~10-20 s), then M4
    python examples/firmware_m4/run_on_m4.py runs/quickstart-...   # a saved model or run folder
    python examples/firmware_m4/run_on_m4.py --random         # random weights (plumbing only)

Needs gcc-arm-none-eabi and qemu-system-arm (Debian: apt-get install gcc-arm-none-eabi
libnewlib-arm-none-eabi qemu-system-arm). The firmware (app.c) reads uint8 pixels, quantizes them
on the device, and its predictions must equal the numba kernels' for every held-out image.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _model(args):
    from edge_evo.models.mlp import MLPSpec
    if args.random:
        spec = MLPSpec((64, 32, 10))
        g = np.random.default_rng(0).integers(-127, 128, spec.n_params).astype(np.int8)
        return spec, g
    if args.model:
        return args.model
    from edge_evo.cli import QUICKSTART_TOML
    from edge_evo.config import loads_config
    from edge_evo.runs import run_experiment
    cfg = loads_config(QUICKSTART_TOML, [f"run.generations={args.generations}"], source="firmware_m4")
    res = run_experiment(cfg, args.out / "run", progress=False, overwrite=True)
    print(f"evolved: held-out accuracy {res.value:.4f} after {res.generation} generations (Python)")
    return res.model_path


def main(argv=None) -> int:
    from edge_evo.export import resolve_model
    from edge_evo.export.c_export import export_c
    from edge_evo.export import c_build
    from edge_evo.fixedpoint import quantize_input_u8
    from edge_evo.models.forward import forward
    from edge_evo.models.mlp import Population
    from edge_evo.targets import firmware_dir
    from edge_evo.tasks import load_digits

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", help="saved model or run folder (default: evolve one now)")
    p.add_argument("--random", action="store_true", help="random weights instead of evolving")
    p.add_argument("--generations", type=int, default=60)
    p.add_argument("--target", default="cortex-m4f")
    p.add_argument("--out", type=Path, default=HERE / "build")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    spec, genome = resolve_model(_model(args))
    if spec.dims[0] != 64 or spec.dims[-1] != 10:
        raise SystemExit(f"this example needs a 64-input, 10-class digits model, got {spec.dims}")
    export_c(spec, genome, args.out, name="digits_net", target=args.target)

    X, y = load_digits()
    test = np.arange(len(y)) % 5 == 4          # the digits task's held-out split
    Xt, yt = X[test], y[test]
    rows = ",\n".join("    {" + ", ".join(map(str, r)) + "}" for r in Xt)
    (args.out / "test_images.h").write_text(
        "#include <stdint.h>\n"
        f"#define N_TEST_IMAGES {len(yt)}u\n"
        f"static const uint8_t test_images[{len(yt)}][64] = {{\n{rows}\n}};\n"
        f"static const uint8_t test_labels[{len(yt)}] = {{{', '.join(map(str, yt))}}};\n")

    elf = c_build.build(args.target, [firmware_dir() / "edge_evo_rt.c", args.out / "digits_net.c", HERE / "app.c"],
                        args.out / "app.elf", include_dirs=[args.out])
    r = c_build.run(args.target, elf)
    if r.returncode != 0:
        raise SystemExit(f"firmware failed (exit {r.returncode}): {r.stderr[-500:]}")
    lines = {l.split()[0]: l.split()[1:] for l in r.transcript}
    pred_dev = np.array([int(v) for v in lines["pred"]])
    ref = forward(Population.from_flat(spec, genome[None]), quantize_input_u8(Xt), engine="numba")[0]
    pred_ref = ref.argmax(axis=1)
    same = np.array_equal(pred_dev, pred_ref)
    sizes = c_build.section_sizes(args.target, elf)
    print(f"{args.target}: {int(lines['correct'][0])}/{len(yt)} held-out digits correct "
          f"({(pred_dev == yt).mean():.4f}); predictions identical to numba: {same}")
    print(f"ELF sizes (size -A): .text {sizes.get('.text', 0)} B (incl. {spec.n_params} B weights, "
          f"{len(yt) * 64} B test images), .bss {sizes.get('.bss', 0)} B, peak stack {r.stack_bytes} B")
    print(f"model C files and report: {args.out}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
