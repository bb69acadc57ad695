"""Population forward pass, reference workload: P genomes x the same B images, int8 784-64-10.

Prints ms per generation (median over repeats) for every int8 engine, whether the logits are
bit-identical to ``numba``, and the share of the int8 / float32 peaks of performance.md
(2 vCPU Zen 5: 1,044 GMAC/s int8 VNNI, 261 GMAC/s float32, both cores). Usage::

    python benchmarks/bench_kernel.py [--P 200] [--B 200] [--repeats 15] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from _timing import median_ms  # noqa: E402
from edge_evo.fixedpoint.lut import LUT_FUNCTIONS  # noqa: E402
from edge_evo.kernels import engines  # noqa: E402
from edge_evo.models.mlp import MLPSpec, Population  # noqa: E402

PEAK_INT8 = 522.0   # GMAC/s per core, AVX512-VNNI (performance.md)
PEAK_F32 = 130.0    # GMAC/s per core


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--P", type=int, default=200)
    ap.add_argument("--B", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2, help="threads for ort/native (numba: NUMBA_NUM_THREADS)")
    a = ap.parse_args(argv)
    spec = MLPSpec((784, a.hidden, 10))
    rng = np.random.default_rng(0)
    pop = Population.from_flat(spec, rng.integers(-127, 128, (a.P, spec.n_params)).astype(np.int8))
    X = rng.integers(0, 128, (a.B, 784)).astype(np.int8)  # MNIST pixels in Q7: [0, 127]
    layers = [pop.layer(l) for l in range(spec.n_layers)]
    shifts = [(spec.bias_shift(l), spec.out_shift(l)) for l in range(spec.n_layers)]
    lut = spec.lut()
    gmac = a.P * a.B * sum(spec.dims[l] * spec.dims[l + 1] for l in range(spec.n_layers)) / 1e9
    cores = min(a.threads, os.cpu_count() or 1)
    ref = engines.forward_int8_numba(layers, X, shifts, lut)

    print(f"command: python {' '.join(sys.argv)}")
    print(f"workload: P={a.P} x B={a.B}, 784-{a.hidden}-10 int8 = {gmac:.3f} GMAC/generation; "
          f"threads={a.threads} (numba: {os.environ.get('NUMBA_NUM_THREADS', 'default')}), "
          f"cpu_count={os.cpu_count()}, OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '-')}")
    try:
        from edge_evo.kernels import native
        extra = f"native paths here: {native.paths_available()}"
    except Exception as e:  # noqa: BLE001
        extra = f"native unavailable: {e}"
    print(extra)
    print(f"auto -> {engines.resolve_engine('auto', a.P, a.B)}")
    print(f"{'engine':<14}{'median ms':>10}{'min ms':>9}{'GMAC/s':>9}{'% int8 peak':>13}{'bit-exact':>11}")
    for name, fn in engines.INT8_ENGINES.items():
        if not engines.engine_available(name):
            print(f"{name:<14}{'unavailable':>10}")
            continue
        kw = {"threads": a.threads} if name in ("ort", "native") else {}
        run = lambda: fn(layers, X, shifts, lut, **kw)  # noqa: E731
        exact = bool(np.array_equal(run(), ref))
        med, mn = median_ms(run, a.repeats)
        print(f"{name:<14}{med:>10.2f}{mn:>9.2f}{gmac / med * 1e3:>9.1f}"
              f"{100 * gmac / med * 1e3 / (PEAK_INT8 * cores):>12.1f}%{str(exact):>11}")
    fl = [(W.astype(np.float32) / 64, b.astype(np.float32) / 64) for W, b in layers]
    Xf = X.astype(np.float32) / 128
    med, mn = median_ms(lambda: engines.forward_float32(fl, Xf, LUT_FUNCTIONS[spec.activation]), a.repeats)
    print(f"{'float32':<14}{med:>10.2f}{mn:>9.2f}{gmac / med * 1e3:>9.1f}"
          f"{100 * gmac / med * 1e3 / (PEAK_F32 * cores):>12.1f}% (of f32 peak)")
    print("peaks are the 2-vCPU Zen 5 figures of performance.md; a CPU without AVX512-VNNI cannot reach them")


if __name__ == "__main__":
    main()
