"""Mutation noise for one generation: P x n parameters (default 200 x 50,890 = 10.2 M).

Times (median over repeats) the counter-based ``edge_evo.rng.fill_gauss_scaled`` (int32 noise),
the fused masked mutation ``edge_evo.kernels.operators.mutate_masked_int8`` (when present) with
p = 1 and p = 0.1, and numpy's ``standard_normal`` float32 for reference. Target: <= 5 ms. Usage::

    python benchmarks/bench_noise.py [--P 200] [--n 50890] [--repeats 15]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from _timing import median_ms  # noqa: E402
from edge_evo import rng  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--P", type=int, default=200)
    ap.add_argument("--n", type=int, default=50890)
    ap.add_argument("--repeats", type=int, default=15)
    a = ap.parse_args(argv)
    N = a.P * a.n
    print(f"command: python {' '.join(sys.argv)}")
    print(f"{a.P} x {a.n} = {N / 1e6:.2f} M values; numba threads={os.environ.get('NUMBA_NUM_THREADS', 'default')}, "
          f"cpu_count={os.cpu_count()}")
    rows = []
    out = np.empty(N, np.int32)
    k = np.uint32(rng.py_key(1, 2, 3))
    m = np.int32(rng.gauss_multiplier(8.0))
    rows.append(("rng.fill_gauss_scaled (int32)", median_ms(lambda: rng.fill_gauss_scaled(k, np.uint32(0), m, out),
                                                            a.repeats)))
    try:
        from edge_evo.kernels import operators
        fused = getattr(operators, "mutate_masked_int8", None)
    except ImportError:
        fused = None
    if fused is not None:
        theta = np.random.default_rng(0).integers(-127, 128, (a.P, a.n)).astype(np.int8)
        for p in (1.0, 0.1):
            t = rng.bernoulli_threshold(p)
            rows.append((f"operators.mutate_masked_int8 p={p}",
                         median_ms(lambda: fused(theta, 1, 2, 0, t, int(m), 7), a.repeats)))
    else:
        rows.append(("operators.mutate_masked_int8", None))
    g = np.random.default_rng(0)
    buf = np.empty(N, np.float32)
    rows.append(("numpy standard_normal f32", median_ms(lambda: g.standard_normal(dtype=np.float32, out=buf),
                                                        max(3, a.repeats // 3))))
    print(f"{'kernel':<36}{'median ms':>10}{'min ms':>9}{'Mvalues/s':>11}")
    for name, r in rows:
        if r is None:
            print(f"{name:<36}{'absent':>10}")
        else:
            print(f"{name:<36}{r[0]:>10.2f}{r[1]:>9.2f}{N / r[0] / 1e3:>11.0f}")


if __name__ == "__main__":
    main()
