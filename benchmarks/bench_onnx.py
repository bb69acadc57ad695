"""ONNX export: latency per sample in onnxruntime vs the project's kernels, and exported file sizes.

Model: MLP 784-64-10 (tanh), an int8 genome (integer graph, bit-exact with the kernels: checked
here too) and a float32 genome (float graph). Inputs: MNIST test images (random pixels if the data
is missing). Latency = median over repeats of one call / batch size, in microseconds per sample.
The kernels evaluate one genome here (P = 1): their parallelism is over genomes, so this is the
single-model inference case; onnxruntime runs with ``--threads`` intra-op threads.

    python benchmarks/bench_onnx.py
    python benchmarks/bench_onnx.py --numba-threads 1 --threads 1
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from edge_evo.export import export  # noqa: E402
from edge_evo.fixedpoint.ops import quantize_input_u8  # noqa: E402
from edge_evo.models.forward import forward  # noqa: E402
from edge_evo.models.mlp import MLPSpec, Population  # noqa: E402

DATA = os.environ.get("EDGE_EVO_DATA", os.path.join(os.path.dirname(ROOT), "shared", "data"))


def timeit(fn, min_time: float) -> float:
    """Median seconds of one call (warm-up call first; repeats until min_time has elapsed, >= 5 runs)."""
    fn()
    times, start = [], time.perf_counter()
    while len(times) < 5 or time.perf_counter() - start < min_time:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def pixels(n: int) -> np.ndarray:
    try:
        from edge_evo.tasks import load_mnist
        X, _ = load_mnist("mnist", "test", path=DATA, download=False)
        return np.ascontiguousarray(X[:n])
    except (FileNotFoundError, ValueError, OSError):
        return np.random.default_rng(0).integers(0, 256, (n, 784)).astype(np.uint8)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1)")
    ap.add_argument("--min-time", type=float, default=0.5, help="seconds of timing per cell (default 0.5)")
    ap.add_argument("--numba-threads", type=int, default=None,
                    help="numba threads (default: numba's); with P = 1 only one does work, and spare ones "
                         "can cost milliseconds per call on a loaded machine")
    ap.add_argument("--batches", default="1,1000", help="comma-separated batch sizes (default 1,1000)")
    args = ap.parse_args(argv)
    import onnxruntime as ort
    if args.numba_threads:
        import numba
        numba.set_num_threads(args.numba_threads)

    batches = [int(b) for b in args.batches.split(",")]
    spec = MLPSpec((784, 64, 10))
    rng = np.random.default_rng(0)
    g8 = rng.integers(-8, 9, spec.n_params).astype(np.int8)
    g32 = (rng.standard_normal(spec.n_params) * 0.05).astype(np.float32)
    P = pixels(max(batches))
    Xq = quantize_input_u8(P)
    Xf = P.astype(np.float32) / np.float32(255.0)

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    rows, sizes = [], []
    with tempfile.TemporaryDirectory() as d:
        variants = [("int8 integer graph, int8 input", g8, dict(integer=True), "x", Xq),
                    ("int8 integer graph, uint8 pixels", g8, dict(integer=True, input="uint8"), "pixels", P),
                    ("int8 dequantized float graph", g8, dict(integer=False), "x", Xf),
                    ("float32 float graph", g32, dict(integer=False), "x", Xf)]
        for name, g, kw, inp, X in variants:
            path = export((spec, g), os.path.join(d, f"m{len(sizes)}.onnx"), **kw)
            sizes.append((name, os.path.getsize(path)))
            sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            pop = Population.from_flat(spec, g)
            for b in batches:
                xb = np.ascontiguousarray(X[:b])
                t_ort = timeit(lambda: sess.run(None, {inp: xb}), args.min_time)
                cells = {}
                if kw["integer"]:
                    xq = np.ascontiguousarray(Xq[:b])
                    ref = forward(pop, xq, engine="numba")[0]
                    if not np.array_equal(sess.run(["logits"], {inp: xb})[0], ref):
                        raise SystemExit(f"{name}: onnxruntime logits differ from the numba kernel")
                    # the kernel cell includes the host-side pixel quantization when the graph does it
                    pre = (lambda: quantize_input_u8(xb)) if inp == "pixels" else (lambda: xq)
                    for eng in ("numba", "blas"):
                        cells[eng] = timeit(lambda: forward(pop, pre(), engine=eng), args.min_time)
                else:
                    fpop = pop if g.dtype == np.float32 else Population.from_flat(
                        spec, np.concatenate([g[o:o + int(np.prod(s))].astype(np.float32)
                                              * np.float32(2.0 ** -spec.tensor_frac(n))
                                              for (n, s), o in zip(spec.tensors(), spec.offsets().values())]))
                    cells["float32 numpy"] = timeit(lambda: forward(fpop, xb), args.min_time)
                rows.append((name, b, t_ort, cells))

    print("$ " + " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))
    print(f"MLP 784-64-10 tanh; onnxruntime {ort.__version__} ({args.threads} intra-op thread(s)); "
          f"kernels P=1, {__import__('numba').get_num_threads()} numba thread(s); microseconds per sample "
          f"(median); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    hdr = f"{'model / graph':34s} {'batch':>6s} {'onnxruntime':>12s} {'numba':>10s} {'blas':>10s} {'float32 numpy':>14s}"
    print(hdr)
    print("-" * len(hdr))
    for name, b, t, cells in rows:
        def us(k):
            return f"{cells[k] / b * 1e6:.2f}" if k in cells else "-"
        print(f"{name:34s} {b:6d} {t / b * 1e6:12.2f} {us('numba'):>10s} {us('blas'):>10s} {us('float32 numpy'):>14s}")
    print("\nexported file sizes")
    for name, s in sizes:
        print(f"  {name:34s} {s:8d} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
