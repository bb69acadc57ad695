"""Spiking (rate-coded IF) twin of GENREG's imported 784-64-10 genome: MNIST accuracy vs the int8 model.

Imports the gen-600 genome (int8, calibrated on MNIST train), converts it (edge_evo.models.snn), runs
the NumPy interpreter for several T, input codings and resets, re-runs one setting in Brian2 (spikes
must be identical) and round-trips it through a NIR file.

    python benchmarks/bench_spiking_mnist.py [--n 1000] [--steps 32 64 128] [--brian2-n 100] [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edge_evo.fixedpoint import quantize_input_u8
from edge_evo.importers import import_model
from edge_evo.models.forward import forward
from edge_evo.models.mlp import Population
from edge_evo.models.snn import convert_mlp, simulate, predict
from edge_evo.tasks import load_mnist, shared_data_dir

GENOME = "best_genome_mnist_gen00600_20251229_140150.pkl"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--n", type=int, default=1000, help="test images (first N of the 10k test set)")
    ap.add_argument("--steps", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--calib-size", type=int, default=10000)
    ap.add_argument("--brian2-n", type=int, default=100, help="images re-run in Brian2 (0: skip)")
    a = ap.parse_args(argv)
    data = Path(a.data) if a.data else shared_data_dir()
    if data is None or not (data / "genreg").is_dir():
        print("shared data folder with genreg/ not found; pass --data", file=sys.stderr)
        return 2
    Xtr, ytr = load_mnist("mnist", "train", path=data, download=False)
    Xte, yte = load_mnist("mnist", "test", path=data, download=False)
    spec, g, rep = import_model(data / "genreg" / GENOME, None, calib=(Xtr[:a.calib_size], ytr[:a.calib_size]))
    Xc = quantize_input_u8(Xtr[:a.calib_size])
    Xe, ye = quantize_input_u8(Xte[:a.n]), yte[:a.n]
    p_int8 = forward(Population.from_flat(spec, g), Xe, engine="numba")[0].argmax(1)
    print(f"command: python benchmarks/bench_spiking_mnist.py --n {a.n} --steps {' '.join(map(str, a.steps))} "
          f"--calib-size {a.calib_size} --brian2-n {a.brian2_n}")
    print(f"model: {GENOME} imported int8 {spec.dims}; first {a.n} MNIST test images\n")
    print(f"int8 model (kernels):                 {100 * np.mean(p_int8 == ye):6.2f} %")
    rows = []
    for coding in ("current", "spikes"):
        for reset in ("subtract", "zero"):
            net = convert_mlp(spec, g, Xc, input_coding=coding, reset=reset)
            if coding == "current" and reset == "subtract":
                # the rate-code limit: the same net with its hidden layer as an exact hard tanh
                c = net.info["hidden_c"][0]
                W1, b1 = net.layers[0].weight[:64], net.layers[0].bias[:64]
                h = np.clip((Xe.astype(float) @ W1.T + b1) / net.layers[1].v_threshold[0], -1, 1)
                A2 = net.layers[2]
                p_ht = (h @ A2.weight[:, :64].T + A2.bias).argmax(1)
                print(f"hard tanh clip(z/{c}) ANN (T -> inf):  {100 * np.mean(p_ht == ye):6.2f} %")
                ref_net = net
            for T in a.steps:
                t0 = time.perf_counter()
                cnt, v = simulate(net, Xe, T)
                dt = time.perf_counter() - t0
                pred = predict(cnt, v)
                rows.append((coding, reset, T, np.mean(pred == ye), np.mean(cnt.argmax(1) == ye),
                             np.mean(pred == p_int8), dt))
    print(f"\n{'coding':<8} {'reset':<9} {'T':>4} {'SNN %':>7} {'count-only %':>12} {'agree int8 %':>12} {'NumPy s':>8}")
    for coding, reset, T, acc, acc_c, agr, dt in rows:
        print(f"{coding:<8} {reset:<9} {T:>4} {100 * acc:>7.2f} {100 * acc_c:>12.2f} {100 * agr:>12.2f} {dt:>8.2f}")
    T = a.steps[len(a.steps) // 2]
    with tempfile.TemporaryDirectory() as tmp:
        from edge_evo.export.nir_export import to_nir, write_nir, read_nir, from_nir
        p = write_nir(to_nir(ref_net), Path(tmp) / "g600")
        back = from_nir(read_nir(p))
        same = all(np.array_equal(x, y) for x, y in zip(simulate(ref_net, Xe[:200], T, record=True)[2],
                                                        simulate(back, Xe[:200], T, record=True)[2]))
        print(f"\nNIR round trip ({p.stat().st_size} bytes): interpreter spikes identical on 200 images x {T} steps: {same}")
    if a.brian2_n:
        from edge_evo.backends import brian2_available
        if not brian2_available():
            print("Brian2: not importable, skipped")
        else:
            from edge_evo.backends.brian2_backend import simulate_brian2
            Xb = Xe[:a.brian2_n]
            t0 = time.perf_counter()
            c2, v2, r2 = simulate_brian2(ref_net, Xb, T, record=True)
            tb = time.perf_counter() - t0
            c1, v1, r1 = simulate(ref_net, Xb, T, record=True)
            same = all(np.array_equal(x, y) for x, y in zip(r1, r2))
            print(f"Brian2 (numpy target) {a.brian2_n} images x {T} steps: {tb:.1f} s; spikes identical to NumPy: {same}; "
                  f"accuracy {100 * np.mean(predict(c2, v2) == ye[:a.brian2_n]):.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
