"""EMNS experiments (seed 000): the paper's claims measured on small tasks.

    python benchmarks/bench_emns.py all            # every experiment, small settings (~3 min on 2 cores)
    python benchmarks/bench_emns.py regression | classification | digits | continual | resistance | throughput
    options: --steps N --seeds K --mode int8|float32 --plot DIR --offspring L --dims 2,16,8,1
             --variants paper,select,population --batch B --seconds S

Prints one table per experiment (with the command line); ``--plot DIR`` writes PNGs when
matplotlib is present.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.dirname(__file__)))

from edge_evo.models.emns import EMNSPopulation, EMNSSpec, quantize_inputs  # noqa: E402
from edge_evo.strategies.emns import EMNS, fit  # noqa: E402


def _table(title, header, rows):
    print(f"\n## {title}\n`{' '.join(sys.argv)}`\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r) + " |")


def regression_data(n, seed, lo=-2.0, hi=2.0, fn=None):
    r = np.random.default_rng(seed)
    X = r.uniform(lo, hi, (n, 2))
    fn = fn or (lambda X: np.sin(X[:, 0]) + 0.5 * np.cos(X[:, 1]))
    return X, fn(X)


def mse(s, st, X, Y, best=False):
    p = s.predict(st, X, best=best)
    return float(((p - np.asarray(Y).reshape(p.shape)) ** 2).mean())


def exp_regression(a):
    from sklearn.neural_network import MLPRegressor
    rows = []
    dims = a.dims or (2, 8, 4, 1)
    for seed in range(a.seeds):
        Xtr, Ytr = regression_data(200, seed)
        Xte, Yte = regression_data(200, 100 + seed)
        spec = EMNSSpec(dims)
        for preset in a.variants:
            kw = {"offspring": a.offspring} if preset == "population" else {}
            s = EMNS(spec, preset, mode=a.mode, **kw)
            t = time.perf_counter()
            st = fit(s, Xtr, Ytr, a.steps, seed=seed)
            dt = time.perf_counter() - t
            name = f"EMNS {preset}" + (f" ({a.offspring} children)" if kw else "") + f" {a.mode}"
            rows.append((seed, name, "-".join(map(str, dims)), spec.n_params, mse(s, st, Xte, Yte, best=True),
                         dt / a.steps * 1e3, dt))
        # defaults stop early (tol 1e-4 over 10 epochs); the second row trains the same net to convergence
        for name, kw in (("sklearn MLPRegressor (8,4) adam, defaults", {}),
                         ("sklearn MLPRegressor (8,4) adam, converged", dict(max_iter=20000, tol=1e-7,
                                                                            n_iter_no_change=100))):
            m = MLPRegressor(hidden_layer_sizes=(8, 4), random_state=seed, **({"max_iter": 2000} | kw))
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m.fit(Xtr, Ytr)
            dt = time.perf_counter() - t
            rows.append((seed, name, "2-8-4-1", 65, float(((m.predict(Xte) - Yte) ** 2).mean()),
                         dt / m.n_iter_ * 1e3, dt))
    _table(f"Regression y = sin x1 + 0.5 cos x2 (200 train / 200 test, var(y) = {np.var(Yte):.3f}, "
           f"{a.steps} steps)", ["seed", "model", "dims", "params", "test MSE", "ms/step", "seconds"], rows)
    for name in dict.fromkeys(r[1] for r in rows):
        v = [r[4] for r in rows if r[1] == name]
        print(f"{name}: test MSE mean {np.mean(v):.4f}, max {np.max(v):.4f} over {len(v)} seeds")


def exp_classification(a):
    rows = []
    # one throw-away run compiles the Numba kernels (cache=True), so the timed runs measure evolution only
    fit(EMNS(EMNSSpec((2, 8, 4, 1)), "population", mode=a.mode), np.zeros((4, 2)), np.zeros(4), 2, seed=0)
    for seed in range(a.seeds):
        r = np.random.default_rng(seed)
        X = r.normal(size=(200, 2))
        y = (X[:, 0] + X[:, 1] > 0).astype(float)
        spec = EMNSSpec((2, 8, 4, 1))
        for preset in a.variants:
            s = EMNS(spec, preset, mode=a.mode)
            t = time.perf_counter()
            st = fit(s, X[:160], y[:160], 600, seed=seed)
            dt = time.perf_counter() - t
            acc = float(((s.predict(st, X[160:])[:, 0] > 0.5) == y[160:]).mean())
            rows.append((seed, preset, acc, dt, 68.0 / dt))
    _table("Binary classification x1 + x2 > 0, 2-8-4-1, 160 train / 40 test, 600 epochs "
           "(upstream: 82.5 % test, 68 s; target: >= 82.5 % in <= 68/50 = 1.36 s)",
           ["seed", "variant", "test acc", "seconds", "speed-up vs 68 s"], rows)
    for preset in dict.fromkeys(r[1] for r in rows):
        acc = [r[2] for r in rows if r[1] == preset]
        dt = [r[3] for r in rows if r[1] == preset]
        print(f"{preset}: acc mean {np.mean(acc):.3f} (min {np.min(acc):.3f}), seconds median {np.median(dt):.3f} "
              f"(max {np.max(dt):.3f})")


def exp_digits(a):
    from sklearn.datasets import load_digits
    d = load_digits()
    X = d.data / 16.0 * 2.0                          # [0, 2]: fits the Q4 input range
    Y = np.eye(10)[d.target]
    r = np.random.default_rng(0)
    idx = r.permutation(len(X))
    tr, te = idx[:1400], idx[1400:]
    rows = []
    for preset in ("select", "population"):
        s = EMNS(EMNSSpec((64, 16, 10)), preset, mode=a.mode)
        t = time.time()
        st = fit(s, X[tr], Y[tr], a.steps, seed=0, batch=256)
        dt = time.time() - t
        acc = float((s.predict(st, X[te], best=False).argmax(1) == d.target[te]).mean())
        rows.append((preset, s.spec.n_params, a.steps, acc, dt))
    _table("8x8 digits (sklearn), 64-16-10, one-hot MSE, minibatch 256, 397 test images",
           ["variant", "params", "steps", "test acc", "seconds"], rows)


def effect(x, y, n_boot=10000):
    """Paired comparison of per-seed values: mean difference x - y, Cohen's d (pooled sd), d_z (paired),
    a bootstrap 95 % CI of the mean difference (resampling seeds), the median difference, how many
    seeds have x < y, and the Wilcoxon signed-rank p-value."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    d = x - y
    sp = np.sqrt((x.var(ddof=1) + y.var(ddof=1)) / 2)
    from scipy.stats import wilcoxon
    boot = np.random.default_rng(0).choice(d, (n_boot, len(d))).mean(1)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    # forgetting is heavy-tailed (a few runs extrapolate wildly outside their task's range): report the
    # median difference, the win count and a rank test next to the mean-based figures
    return (float(d.mean()), float(d.mean() / sp) if sp > 0 else float("nan"),
            float(d.mean() / d.std(ddof=1)) if d.std(ddof=1) > 0 else float("nan"), float(lo), float(hi),
            float(np.median(d)), f"{int((d < 0).sum())}/{len(d)}", float(wilcoxon(d).pvalue))


def exp_continual(a):
    fa = lambda X: np.sin(X[:, 0]) + 0.5 * np.cos(X[:, 1])
    fb = lambda X: 0.5 * X[:, 0] * X[:, 1] - 0.5
    rows = []
    res = {}
    for cond in ("evolve", "frozen", "off"):
        for seed in range(a.seeds):
            XA, YA = regression_data(200, seed, -2, 0, fa)
            XB, YB = regression_data(200, 50 + seed, 0, 2, fb)
            XAt, YAt = regression_data(200, 100 + seed, -2, 0, fa)
            s = EMNS(EMNSSpec((2, 8, 4, 1)), "select", mode=a.mode, resistance=cond)
            st = fit(s, XA, YA, a.steps, seed=seed)
            a1 = mse(s, st, XAt, YAt, best=True)
            # deploy the best genome of task A, then track the best of task B from there
            st.arrays["values"] = st.arrays["best"].copy()
            st.arrays["nmask"], st.arrays["cmask"] = st.arrays["best_nmask"].copy(), st.arrays["best_cmask"].copy()
            st.scalars["best_perf"] = float("-inf")
            st = fit(s, XB, YB, a.steps, seed=seed, state=st)
            a2 = mse(s, st, XAt, YAt, best=True)
            b2 = mse(s, st, XB, YB, best=True)
            rows.append((cond, seed, a1, a2, a2 - a1, b2))
            res.setdefault(cond, {"forgetting": [], "B": []})
            res[cond]["forgetting"].append(a2 - a1)
            res[cond]["B"].append(b2)
    _table(f"Continual: task A (sin/cos on x1 < 0) then task B (0.5 x1 x2 - 0.5 on x1 > 0), {a.steps} steps each",
           ["resistance", "seed", "A MSE after A", "A MSE after B", "forgetting", "B MSE after B"], rows)
    print("\nmean forgetting: " + ", ".join(f"{k} {np.mean(v['forgetting']):.4f} +- {np.std(v['forgetting']):.4f}"
                                           for k, v in res.items()))
    if a.seeds >= 2:
        rows = []
        for other in ("off", "frozen"):
            for metric in ("forgetting", "B"):
                rows.append((f"evolve - {other}", metric, a.seeds) +
                            effect(res["evolve"][metric], res[other][metric]))
        _table("Effect of evolving resistance (paired by seed; negative = evolve forgets less / fits B better)",
               ["comparison", "metric", "seeds", "mean diff", "Cohen d (pooled)", "d_z (paired)",
                "95 % CI lo (bootstrap)", "95 % CI hi", "median diff", "evolve lower", "Wilcoxon p"], rows)


def importance(s, st, X, Y):
    """Loss increase when each active parameter is zeroed (one batched forward)."""
    a = st.arrays
    pm = np.flatnonzero(s.spec.param_mask(a["nmask"], a["cmask"]))
    V = np.repeat(a["values"][None], len(pm) + 1, axis=0)
    V[np.arange(1, len(pm) + 1), pm] = 0
    n = len(V)
    pop = EMNSPopulation(V, np.repeat(a["resist"][None], n, 0), np.repeat(a["nmask"][None], n, 0),
                         np.repeat(a["cmask"][None], n, 0), s.luts(V) if s.int else None)
    loss = -s.evaluate(pop, X, Y).mean(1)
    return pm, loss[1:] - loss[0]


def exp_resistance(a):
    from scipy.stats import spearmanr
    rows = []
    allr, alli = [], []
    for seed in range(a.seeds):
        X, Y = regression_data(200, seed)
        s = EMNS(EMNSSpec((2, 8, 4, 1)), "select", mode=a.mode)
        st = fit(s, X, Y, a.steps, seed=seed)
        pm, imp = importance(s, st, X, Y)
        r = st.arrays["resist"][pm].astype(np.float64) / (256.0 if s.int else 1.0)
        r0 = s.init(seed).arrays["resist"][pm].astype(np.float64) / (256.0 if s.int else 1.0)
        top = imp >= np.quantile(imp, 0.9)
        rho = spearmanr(r, imp).statistic
        rho_d = spearmanr(r - r0, imp).statistic
        rows.append((seed, float(np.mean(r)), float(np.mean(r[top])), float(np.mean(r[~top])),
                     float(np.mean((r[top] >= 0.7) & (r[top] <= 0.9))), float(np.mean((r[~top] >= 0.2) & (r[~top] <= 0.5))),
                     float(rho), float(rho_d), float(np.abs(r - r0).max())))
        allr.append(r)
        alli.append(imp)
    _table(f"Resistance vs importance (regression, select, {a.steps} steps; importance = loss increase when zeroed; "
           "top = 10 % most important)",
           ["seed", "mean r", "mean r top", "mean r rest", "top in [0.7,0.9]", "rest in [0.2,0.5]",
            "spearman(r, imp)", "spearman(r - r0, imp)", "max |r - r0|"], rows)
    if a.plot:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
            ax[0].hist(np.concatenate(allr), bins=40)
            ax[0].set_xlabel("resistance")
            ax[1].scatter(np.concatenate(alli), np.concatenate(allr), s=4)
            ax[1].set_xscale("symlog", linthresh=1e-4)
            ax[1].set_xlabel("importance (loss increase)")
            ax[1].set_ylabel("resistance")
            fig.tight_layout()
            fig.savefig(f"{a.plot}/emns_resistance.png", dpi=100)
        except ImportError:
            pass


def exp_throughput(a):
    """Generations per second of the integer kernels for a ~50k-parameter net (ask + evaluate + tell)."""
    dims = a.dims or (64, 128, 64, 10)
    r = np.random.default_rng(0)
    X = r.uniform(-2, 2, (a.batch, dims[0]))
    Y = np.eye(dims[-1])[r.integers(0, dims[-1], a.batch)]
    rows = []
    for preset in ("select", "population"):
        kw = {"offspring": a.offspring} if preset == "population" else {}
        s = EMNS(EMNSSpec(dims), preset, mode=a.mode, **kw)
        st = fit(s, X, Y, 2, seed=0)                 # compile / warm caches
        Xq = quantize_inputs(X) if s.int else X
        n, t0 = 0, time.perf_counter()
        while n < a.steps and time.perf_counter() - t0 < a.seconds:
            pop = s.ask(st)
            st = s.tell(st, pop, s.evaluate(pop, Xq, Y))
            n += 1
        dt = time.perf_counter() - t0
        P = 1 + s.n_children
        rows.append((preset, "-".join(map(str, dims)), s.spec.n_params, P, a.batch, n, dt, n / dt, n * P / dt))
    _table(f"Throughput, {a.mode}, batch {a.batch} (one generation = ask + evaluate + tell)",
           ["variant", "dims", "params", "genomes/gen", "batch", "generations", "seconds", "gen/s",
            "genomes/s"], rows)


EXPS = {"regression": exp_regression, "classification": exp_classification, "digits": exp_digits,
        "continual": exp_continual, "resistance": exp_resistance, "throughput": exp_throughput}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", choices=sorted(EXPS) + ["all"])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--mode", default="int8", choices=("int8", "float32"))
    ap.add_argument("--plot", default=None, help="directory for PNG plots")
    ap.add_argument("--offspring", type=int, default=8, help="children per step of the population variant")
    ap.add_argument("--dims", default=None, help="layer sizes, e.g. 2,16,8,1 (regression, throughput)")
    ap.add_argument("--variants", default="paper,select,population",
                    help="comma list of presets (regression, classification)")
    ap.add_argument("--batch", type=int, default=32, help="throughput: rows per evaluation")
    ap.add_argument("--seconds", type=float, default=20.0, help="throughput: time cap per variant")
    a = ap.parse_args(argv)
    a.dims = tuple(int(v) for v in a.dims.split(",")) if a.dims else None
    a.variants = tuple(v for v in a.variants.split(",") if v)
    bad = set(a.variants) - set(EMNS.presets)
    if bad:
        ap.error(f"unknown variants {sorted(bad)}; choose from {sorted(EMNS.presets)}")
    for name in (sorted(EXPS) if a.experiment == "all" else [a.experiment]):
        EXPS[name](a)


if __name__ == "__main__":
    main()
