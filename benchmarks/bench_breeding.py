"""GENREG breeding for one generation: selection + uniform crossover + masked mutation.

Reference workload: population 200 of 784-64-10 MLPs (50,890 parameters each, 10.2 M values),
GENREG's readme preset (20 % survivors, mutation p = 0.07, sigma 0.1 = 6.4 int8 LSB in Q6).
Times (median of ``--repeats``) the parent selection (``GENREG.select_parents``), the fused
``breed_population`` (crossover + mutation over all tensors) and the whole ``GENREG.tell``
(trust update + selection + breeding), for 1 and 2 Numba threads (``numba.set_num_threads``)::

    python benchmarks/bench_breeding.py [--popsize 200] [--hidden 64] [--repeats 15] [--mode int8]
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numba  # noqa: E402

from _timing import median_ms  # noqa: E402
from edge_evo.models.mlp import MLPSpec  # noqa: E402
from edge_evo.strategies._breeding import breed_population  # noqa: E402
from edge_evo.strategies.genreg import GENREG  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--popsize", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--mode", choices=("int8", "float32"), default="int8")
    ap.add_argument("--threads", default="1,2", help="comma-separated Numba thread counts")
    a = ap.parse_args(argv)

    spec = MLPSpec((784, a.hidden, 10))
    s = GENREG(spec, "readme", mode=a.mode, population=a.popsize)
    st = s.init(0)
    pop = st.population
    p = s.params
    r = np.random.default_rng(0)
    scores = (r.random((a.popsize, 200)) < 0.3).astype(np.int8)
    trust = s.evaluate_trust(st.arrays["trust"], scores == 1)
    pa, pb, _ = s.select_parents(trust, a.popsize, 0, 1)
    n_values = a.popsize * spec.n_params

    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    print(f"command: python {shlex.join(sys.argv)}")
    print(f"P={a.popsize} x {spec.n_params} params = {n_values / 1e6:.2f} M values, mode {a.mode}; "
          f"cpu_count={os.cpu_count()}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")

    rows = []
    for nt in (int(t) for t in a.threads.split(",")):
        if nt > numba.config.NUMBA_NUM_THREADS:
            print(f"skip {nt} threads: Numba has {numba.config.NUMBA_NUM_THREADS}")
            continue
        numba.set_num_threads(nt)
        sel = median_ms(lambda: s.select_parents(trust, a.popsize, 0, 1), a.repeats)
        brd = median_ms(lambda: breed_population(pop, pa, pb, 0, 1, p.child_mutation_rate, p.mutation_scale,
                                                 a.mode), a.repeats)
        tell = median_ms(lambda: s.tell(st, pop, scores), a.repeats)
        rows.append((nt, sel, brd, tell))

    print()
    print("| threads | select ms | breed ms (median / min) | ns per value | tell ms (median / min) |")
    print("|---|---|---|---|---|")
    for nt, sel, brd, tell in rows:
        print(f"| {nt} | {sel[0]:.2f} | {brd[0]:.2f} / {brd[1]:.2f} | {1e6 * brd[0] / n_values:.2f} "
              f"| {tell[0]:.2f} / {tell[1]:.2f} |")


if __name__ == "__main__":
    main()
