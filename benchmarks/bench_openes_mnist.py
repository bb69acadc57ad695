"""OpenES on MNIST, 784-64-10 MLP, int8 (device genomes) or float32 (research mode).

Every generation all P = 2K mirrored offspring see the same random minibatch of training images
(uniform, with replacement); the fitness is the mean per-sample minus cross-entropy. Every
``--eval-every`` generations the deployable genome (the mean, rounded to int8 in int8 mode) is
scored on the 10,000 test images. Prints a table and the exact command line.

    python benchmarks/bench_openes_mnist.py --minutes 15
    python benchmarks/bench_openes_mnist.py --mode float32 --minutes 15
    python benchmarks/bench_openes_mnist.py --evosax --generations 200   # optional side-by-side
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from edge_evo.models.mlp import MLPSpec, Population  # noqa: E402
from edge_evo.strategies import get_strategy  # noqa: E402
from edge_evo.tasks.datasets import load_mnist  # noqa: E402
from edge_evo.tasks.problem import ClassificationProblem  # noqa: E402

DATA = os.environ.get("EDGE_EVO_DATA", os.path.join(os.path.dirname(ROOT), "shared", "data"))


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("int8", "float32"), default="int8")
    ap.add_argument("--preset", default="mnist")
    ap.add_argument("--popsize", type=int, default=None, help="population (even); default from the preset")
    ap.add_argument("--sigma", type=float, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--momentum", type=float, default=None)
    ap.add_argument("--shaping", choices=("rank5", "centered"), default=None)
    ap.add_argument("--weight-decay", type=float, default=None)
    ap.add_argument("--sigma-decay", type=float, default=None)
    ap.add_argument("--sigma-min", type=float, default=None)
    ap.add_argument("--lr-decay", type=float, default=None)
    ap.add_argument("--lr-min", type=float, default=None)
    ap.add_argument("--init-scale", type=float, default=None)
    ap.add_argument("--batch", type=int, default=500, help="training images per generation (shared by all)")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--w-frac", type=int, default=7, help="int8 weight fraction bits (Q format)")
    ap.add_argument("--b-frac", type=int, default=None, help="int8 bias fraction bits (default = w-frac)")
    ap.add_argument("--generations", type=int, default=10**9)
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--engine", default="auto", help="int8 engine (all bit-identical; auto = fastest here)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--evosax", action="store_true", help="also run evosax Open_ES (float, JAX) if installed")
    return ap.parse_args(argv)


def overrides(a):
    names = {"popsize": "population", "sigma": "sigma", "lr": "lr", "momentum": "momentum", "shaping": "shaping",
             "weight_decay": "weight_decay", "sigma_decay": "sigma_decay", "sigma_min": "sigma_min",
             "lr_decay": "lr_decay", "lr_min": "lr_min", "init_scale": "init_scale"}
    return {p: getattr(a, k) for k, p in names.items() if getattr(a, k) is not None}


def run_openes(a, prob):
    b_frac = a.w_frac if a.b_frac is None else a.b_frac
    spec = MLPSpec((784, a.hidden, 10), w_frac=a.w_frac, b_frac=b_frac)
    es = get_strategy("openes")(spec, a.preset, mode=a.mode, **overrides(a))
    print(f"# OpenES {a.mode}: {es.params}")
    st = es.init(a.seed)
    rows, t0, g = [], time.perf_counter(), 0
    deadline = t0 + 60 * a.minutes

    def evaluate():
        acc = float(prob.accuracy(Population.from_flat(spec, es.best_genome(st)), "test", a.engine)[0])
        rows.append((st.generation, st.generation * es.params.population, time.perf_counter() - t0, acc))
        print(f"{rows[-1][0]:>10d} {rows[-1][1]:>12d} {rows[-1][2]:>9.1f} {100 * acc:>9.2f}", flush=True)

    print(f"{'generation':>10} {'evaluations':>12} {'wall_s':>9} {'test_%':>9}")
    evaluate()
    while st.generation < a.generations and time.perf_counter() < deadline:
        pop = es.ask(st)
        sc = prob.scores(pop, st.generation, a.seed, score="xent", engine=a.engine)
        st = es.tell(st, pop, sc)
        if st.generation % a.eval_every == 0:
            evaluate()
    if rows[-1][0] != st.generation:
        evaluate()
    best = max(rows, key=lambda r: r[3])
    print(f"# final test accuracy {100 * rows[-1][3]:.2f} % after {rows[-1][0]} generations "
          f"({rows[-1][2]:.0f} s, {rows[-1][2] / max(1, rows[-1][0]) * 1e3:.0f} ms/gen); "
          f"best checkpoint {100 * best[3]:.2f} % at generation {best[0]}")
    return rows


def run_evosax(a, prob):
    try:
        import jax
        import jax.numpy as jnp
        from evosax.algorithms import Open_ES
    except ImportError as e:
        print(f"# evosax side-by-side skipped ({e}); install with: pip install evosax")
        return
    # float MLP of the same shape, flat parameter vector
    n_in, H, n_out = 784, a.hidden, 10
    X = prob.inputs("float32", "train").astype(np.float32)
    y = prob.y["train"]
    Xt = jnp.asarray(prob.inputs("float32", "test"))
    yt = jnp.asarray(prob.y["test"])

    def unflat(p):
        i = 0
        W1 = p[i:i + H * n_in].reshape(H, n_in); i += H * n_in
        b1 = p[i:i + H]; i += H
        W2 = p[i:i + n_out * H].reshape(n_out, H); i += n_out * H
        return W1, b1, W2, p[i:i + n_out]

    def logits(p, x):
        W1, b1, W2, b2 = unflat(p)
        return jnp.tanh(x @ W1.T + b1) @ W2.T + b2

    def loss(p, x, t):
        lg = logits(p, x)
        return -jnp.mean(jax.nn.log_softmax(lg)[jnp.arange(t.shape[0]), t])

    n = H * n_in + H + n_out * H + n_out
    P = a.popsize or 200
    es = Open_ES(population=P, solution=jnp.zeros(n))
    params = es.default_params
    key = jax.random.key(a.seed)
    state = es.init(key, jnp.zeros(n), params)   # evosax minimises: fitness = loss
    pop_loss = jax.jit(jax.vmap(loss, in_axes=(0, None, None)))
    acc = jax.jit(lambda p: jnp.mean(jnp.argmax(logits(p, Xt), 1) == yt))
    ask, tell = jax.jit(es.ask), jax.jit(es.tell)
    t0 = time.perf_counter()
    r = np.random.default_rng(a.seed)
    print(f"# evosax Open_ES float32, population {P}")
    for g in range(1, a.generations + 1):
        key, k1, k2 = jax.random.split(key, 3)
        xs, st_ = ask(k1, state, params)
        idx = r.integers(0, X.shape[0], a.batch)
        f = pop_loss(xs, jnp.asarray(X[idx]), jnp.asarray(y[idx]))
        state, _ = tell(k2, xs, f, state, params)
        if g % a.eval_every == 0 or time.perf_counter() - t0 > 60 * a.minutes:
            print(f"{g:>10d} {g * P:>12d} {time.perf_counter() - t0:>9.1f} "
                  f"{100 * float(acc(es.get_mean(state))):>9.2f}", flush=True)
        if time.perf_counter() - t0 > 60 * a.minutes:
            break


def main(argv=None):
    a = parse(argv)
    print("# command: python " + " ".join(shlex.quote(x) for x in [os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]))
    print(f"# OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '')} load={os.getloadavg()[0]:.2f} "
          f"cores={os.cpu_count()}")
    Xtr, ytr = load_mnist("mnist", "train", path=DATA, download=False)
    Xte, yte = load_mnist("mnist", "test", path=DATA, download=False)
    prob = ClassificationProblem(Xtr, ytr, Xte, yte, n_classes=10, batch_size=a.batch)
    run_openes(a, prob)
    if a.evosax:
        try:
            run_evosax(a, prob)
        except Exception as e:  # the evosax API changed between releases; the comparison is optional
            print(f"# evosax side-by-side failed ({type(e).__name__}: {e}); written for evosax 0.2/0.3")
    print(f"# load at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
