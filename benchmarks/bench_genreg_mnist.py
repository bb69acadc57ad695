"""GENREG reference run on MNIST: 784-64-10, population 200, 600 generations, 20 images per digit.

The published GENREG configuration (P. Miller 2024; notes/seed-facts.md, GENREG section): every
generation all genomes see the same 200 training images (10 digits in shuffled order, 20 random
images each, with replacement); predictions are softmax-SAMPLED for trust; survivors = top 20 %
by trust; children by uniform crossover + masked Gaussian mutation (p 0.07, sigma 0.1); no
elitism. Every ``--eval-every`` generations (and at the end) the best-trust genome of the last
evaluated generation is scored with argmax on the full 10,000-image MNIST test set.

Prints: test accuracy over generations, median ms per generation for evaluation (problem.scores)
and breeding (strategy.tell: trust, selection, crossover, mutation), total wall time, a final
table and the exact command. ``--out DIR`` writes metrics.json (+ accuracy.png with matplotlib)::

    python benchmarks/bench_genreg_mnist.py                      # int8, seed 0, 600 generations
    python benchmarks/bench_genreg_mnist.py --mode float32 --seed 1 --out /tmp/genreg_f32
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from edge_evo.kernels.engines import resolve_engine  # noqa: E402
from edge_evo.models.mlp import MLPSpec  # noqa: E402
from edge_evo.strategies.genreg import GENREG  # noqa: E402
from edge_evo.tasks import get_task, shared_data_dir  # noqa: E402

UPSTREAM = {"published gen-600 genome": 81.20, "unpublished gen-500 genome (headline)": 81.47,
            "NumPy restatement, 600 gens": 75.3}


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generations", type=int, default=600)
    ap.add_argument("--popsize", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--samples-per-class", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mode", choices=("int8", "float32"), default="int8")
    ap.add_argument("--engine", default="auto", help="forward engine (auto, numba, blas, native, ort)")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--data", default=None, help="folder with the MNIST .gz files (default: shared data dir)")
    ap.add_argument("--out", default=None, help="folder for metrics.json and accuracy.png")
    ap.add_argument("--threads", type=int, default=None, help="Numba threads (default: all)")
    a = ap.parse_args(argv)
    if a.generations < 1 or a.popsize < 1 or a.eval_every < 1:
        ap.error("--generations, --popsize and --eval-every must be >= 1")
    return a


def data_path(a):
    if a.data:
        return a.data
    d = shared_data_dir()
    if d is None:
        sys.exit("no MNIST data: pass --data DIR (folder with the MNIST .gz files) or set EDGE_EVO_DATA")
    return str(d)


def _threads():
    import numba
    return numba.get_num_threads()


def main(argv=None):
    a = parse(argv)
    if a.threads is not None:
        import numba
        numba.set_num_threads(a.threads)
    t_start = time.perf_counter()
    prob = get_task("mnist", path=data_path(a), download=False, samples_per_class=a.samples_per_class)
    spec = MLPSpec(prob.spec_dims(a.hidden))
    s = GENREG(spec, "readme", mode=a.mode, population=a.popsize, samples_per_class=a.samples_per_class)
    B = prob.n_classes * a.samples_per_class
    engine = resolve_engine(a.engine, a.popsize, B) if a.mode == "int8" else a.engine
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    print(f"command: python {shlex.join(sys.argv)}")
    print(f"GENREG MNIST {spec.dims} P={a.popsize} mode={a.mode} B={B} ({a.samples_per_class}/class) "
          f"engine {a.engine} -> {engine}; numba threads {_threads()}, cpu_count={os.cpu_count()}, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")

    st = s.init(a.seed)
    t_eval, t_breed, curve = [], [], []

    def test_acc(state):
        return 100.0 * float(prob.accuracy(s.best_genome(state), spec=spec, engine=engine)[0])

    t_loop = time.perf_counter()
    for g in range(a.generations):
        t0 = time.perf_counter()
        pop = s.ask(st)
        sc = prob.scores(pop, st.generation, st.seed, prediction=s.prediction, score=s.score, engine=engine)
        t1 = time.perf_counter()
        st = s.tell(st, pop, sc)
        t2 = time.perf_counter()
        t_eval.append(t1 - t0)
        t_breed.append(t2 - t1)
        if st.generation % a.eval_every == 0 or st.generation == a.generations:
            te = time.perf_counter()
            acc = test_acc(st)
            t_loop += time.perf_counter() - te          # test scoring is not training time
            curve.append({"generation": st.generation, "test_acc": acc,
                          "best_trust": GENREG.trust_value(st.arrays["best_trust"], a.mode),
                          "train_batch_acc": 100.0 * float(sc.mean()),
                          "elapsed_s": time.perf_counter() - t_start})
            print(f"gen {st.generation:5d}  test {acc:6.2f} %  best trust {curve[-1]['best_trust']:8.2f}  "
                  f"batch acc (sampled, mean over pop) {curve[-1]['train_batch_acc']:5.1f} %  "
                  f"eval {1e3 * np.median(t_eval):.1f} ms  breed {1e3 * np.median(t_breed):.1f} ms  "
                  f"[{time.perf_counter() - t_start:.1f} s]", flush=True)
    train_s = time.perf_counter() - t_loop
    total_s = time.perf_counter() - t_start
    final = curve[-1]["test_acc"]
    ev, br = 1e3 * float(np.median(t_eval)), 1e3 * float(np.median(t_breed))
    # first generation includes JIT compilation: report it apart
    metrics = {"command": f"python {shlex.join(sys.argv)}", "dims": list(spec.dims), "popsize": a.popsize,
               "generations": a.generations, "samples_per_class": a.samples_per_class, "seed": a.seed,
               "mode": a.mode, "engine": engine, "numba_threads": _threads(), "final_test_acc": final, "curve": curve,
               "eval_ms_median": ev, "breed_ms_median": br, "first_generation_s": t_eval[0] + t_breed[0],
               "train_loop_s": train_s, "total_s": total_s, "load_average_start": list(load),
               "upstream": UPSTREAM}

    print()
    print("| metric | value |")
    print("|---|---|")
    print(f"| config | {spec.dims} P={a.popsize}, {a.generations} gens, {B} images/gen, {a.mode}, seed {a.seed} |")
    print(f"| engine | {a.engine} -> {engine} |")
    print(f"| test accuracy (best-trust genome, argmax, 10k) | {final:.2f} % |")
    print(f"| eval ms / gen (median) | {ev:.1f} |")
    print(f"| breed ms / gen (median, whole tell) | {br:.1f} |")
    print(f"| first generation incl. JIT | {metrics['first_generation_s']:.2f} s |")
    print(f"| training loop wall | {train_s:.1f} s |")
    print(f"| total wall (data, JIT, tests) | {total_s:.1f} s |")
    for k, v in UPSTREAM.items():
        print(f"| upstream: {k} | {v:.2f} % |")
    print(f"\ncommand: python {shlex.join(sys.argv)}")

    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "metrics.json"), "w") as f:
            json.dump(metrics, f, indent=1)
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            plt = None
        if plt is not None:
            fig, ax = plt.subplots(figsize=(6, 4))
            ax.plot([c["generation"] for c in curve], [c["test_acc"] for c in curve], "o-", label="this run")
            ax.axhline(81.20, color="gray", ls="--", label="upstream gen-600 genome 81.20 %")
            ax.set_xlabel("generation")
            ax.set_ylabel("MNIST test accuracy (%)")
            ax.set_title(f"GENREG {a.mode} P={a.popsize} seed {a.seed}")
            ax.legend()
            fig.tight_layout()
            fig.savefig(os.path.join(a.out, "accuracy.png"), dpi=100)
            plt.close(fig)
        print(f"wrote {a.out}/metrics.json")
    return metrics


if __name__ == "__main__":
    main()
