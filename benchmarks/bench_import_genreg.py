"""Import GENREG's two published genomes, quantize them to int8 and score them on the 10k MNIST test set.

Float accuracy: float32 kernel (x = pixels / 255). int8 accuracy: the int8 kernels and the exported
integer ONNX graph (uint8 pixels in), which must give identical labels. Calibration: MNIST train.

    python benchmarks/bench_import_genreg.py [--calib-size 60000] [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edge_evo.export import export
from edge_evo.fixedpoint import quantize_input_u8
from edge_evo.importers import import_model
from edge_evo.models.forward import forward
from edge_evo.models.mlp import Population
from edge_evo.tasks import load_mnist, shared_data_dir

GENOMES = ("best_genome_mnist_gen00600_20251229_140150.pkl", "best_genome_mnist_gen00565_20251229_141001.pkl")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="data folder (default ../shared/data)")
    ap.add_argument("--calib-size", type=int, default=60000)
    a = ap.parse_args(argv)
    data = Path(a.data) if a.data else shared_data_dir()
    if data is None or not (data / "genreg").is_dir():
        print("shared data folder with genreg/ not found; pass --data", file=sys.stderr)
        return 2
    import onnxruntime as ort
    Xtr, ytr = load_mnist("mnist", "train", path=data, download=False)
    Xte, yte = load_mnist("mnist", "test", path=data, download=False)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fname in GENOMES:
            t0 = time.perf_counter()
            spec, genome, rep = import_model(data / "genreg" / fname, Path(tmp) / "m",
                                             calib=(Xtr[:a.calib_size], ytr[:a.calib_size], Xte, yte), overwrite=True)
            t_imp = time.perf_counter() - t0
            pq = forward(Population.from_flat(spec, genome), quantize_input_u8(Xte), engine="numba")[0].argmax(1)
            path = export(Path(tmp) / "m", Path(tmp) / "m.onnx", input="uint8")
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            po = sess.run(["label"], {"pixels": np.ascontiguousarray(Xte)})[0]
            f = rep["formats"]
            rows.append((fname, spec, rep, pq, po, t_imp, f))
    print(f"command: python benchmarks/bench_import_genreg.py --calib-size {a.calib_size}")
    print(f"MNIST test set: {len(yte)} images; calibration: first {min(a.calib_size, len(ytr))} train images\n")
    print(f"{'genome':<52} {'dims':<10} {'float %':>8} {'int8 kern %':>12} {'int8 ONNX %':>12} {'agree %':>8} "
          f"{'ONNX==kern':>10} {'formats (w,b,z,h)':>18} {'import s':>9}")
    for fname, spec, rep, pq, po, t_imp, f in rows:
        print(f"{fname:<52} {'-'.join(map(str, spec.dims)):<10} {100 * rep['float_accuracy']:>8.2f} "
              f"{100 * np.mean(pq == yte):>12.2f} {100 * np.mean(po == yte):>12.2f} {100 * rep['agreement']:>8.2f} "
              f"{str(bool(np.array_equal(pq, po))):>10} {str((f['w_frac'], f['b_frac'], f['z_frac'], f['h_frac'])):>18} "
              f"{t_imp:>9.1f}")
    print("\nper digit (float / int8 kernels), %:")
    print(f"{'genome':<12}" + "".join(f"{d:>14}" for d in range(10)))
    for fname, spec, rep, pq, po, t_imp, f in rows:
        pc = rep["per_class"]
        print(f"{'gen' + fname.split('_gen0')[1][:4]:<12}" + "".join(
            f"{100 * pc[d]['float']:>7.1f}/{100 * pc[d]['int8']:<6.1f}" for d in range(10)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
