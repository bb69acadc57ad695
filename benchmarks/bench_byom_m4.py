"""Bring your own model on the emulated Cortex-M4 (issue 9): the GENREG gen-600 genome imported, quantized,
exported to C, classifying the MNIST test set on QEMU mps2-an386 (images streamed through semihosting), then
adapted on the device (OpenES on the read-out layer, started from the imported genome).

    python benchmarks/bench_byom_m4.py [--n 10000] [--gens 300] [--data ../shared/data]

Prints float / int8-kernel / integer-ONNX / device accuracy, whether labels and prediction hashes are equal,
QEMU wall time, and the held-out accuracy before/after adaptation (bit-exact with the Python OpenES run).
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_example():
    spec = importlib.util.spec_from_file_location("byom_m4_run", REPO / "examples" / "byom_m4" / "run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv=None) -> int:
    ex = load_example()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--gens", type=int, default=ex.ADAPT["gens"])
    ap.add_argument("--train", type=int, default=ex.ADAPT["train"])
    ap.add_argument("--data", default=None)
    a = ap.parse_args(argv)
    data = ex.data_dir(a.data)
    if data is None:
        print("shared data folder (mnist/, genreg/) not found; pass --data", file=sys.stderr)
        return 2
    why = ex.tools_missing()
    if why:
        print(f"cannot run on the emulated M4: {why}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench_byom_") as tmp:
        out = Path(tmp)
        t0 = time.perf_counter()
        spec, genome, rep, model = ex.import_g600(out, data)
        t_imp = time.perf_counter() - t0
        c = ex.classify(out, spec, genome, model, data, a.n)
        ad = ex.adapt(out, spec, genome, data, gens=a.gens, train=a.train)
    o = ad["options"]
    n = a.n
    print(f"command: python benchmarks/bench_byom_m4.py --n {n} --gens {a.gens} --train {a.train}")
    print(f"model: {ex.GENOME} -> int8 {'-'.join(map(str, spec.dims))} {spec.activation}, formats "
          f"(w, b, z, h) = ({spec.w_frac}, {spec.b_frac}, {spec.z_frac}, {spec.h_frac}); import + calibration "
          f"{t_imp:.1f} s; target cortex-m4f on qemu-system-arm -M mps2-an386\n")
    rows = [("float accuracy (float32 kernel, 10k test)", f"{100 * rep['float_accuracy']:.2f} %"),
            ("int8 kernels accuracy (numba, 10k test)", f"{100 * rep['int8_accuracy']:.2f} %"),
            (f"int8 kernels on the device's {n} images", f"{100 * c['numba_correct'] / n:.2f} %"),
            (f"integer ONNX (onnxruntime, {n} images)", f"{100 * c['onnx_correct'] / n:.2f} %"),
            (f"M4 device ({n} images via semihosting)", f"{100 * c['device_correct'] / n:.2f} %"),
            ("device == kernels == ONNX (labels, per-digit, hash)", "yes" if c["equal"] else "NO"),
            ("prediction hash (FNV-1a of labels)", f"{c['hash']:#010x}"),
            ("QEMU wall time, classification", f"{c['qemu_wall_s']:.1f} s"),
            (f"held-out before adaptation (test {o['hold_from']}..{o['hold_from'] + o['hold'] - 1})",
             f"{ad['heldout_before']}/{o['hold']} = {100 * ad['heldout_before'] / o['hold']:.2f} %"),
            (f"held-out after {o['gens']} gens OpenES (read-out, {o['train']} train imgs)",
             f"{ad['heldout_after']}/{o['hold']} = {100 * ad['heldout_after'] / o['hold']:.2f} %"),
            ("adaptation transcript == Python OpenES run", "yes" if ad["equal"] else "NO"),
            ("QEMU wall time, adaptation (incl. 2 held-out passes)", f"{ad['qemu_wall_s']:.1f} s"),
            ("adaptation firmware static RAM (features + OpenES state)",
             f"{ad['memory']['ram_static_bytes']} B (+ {ad['memory']['stack_reserve_bytes']} B stack; "
             f"OpenES {ad['openes_state_bytes']} B)")]
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{w}}  {v}")
    return 0 if c["equal"] and ad["equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
