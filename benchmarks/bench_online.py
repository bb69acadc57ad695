"""Online adaptation benchmarks (issue 6): MNIST label-permutation drift (adaptive vs frozen vs
restart from scratch; accuracy-over-time PNG, samples to recover), regression drift
Y = 2X + 3 -> Y = -X + 1, soak (memory over time), kill -9 survival, per-sample latency.

    python benchmarks/bench_online.py --part all --out bench_out/online
    python benchmarks/bench_online.py --part soak --soak 1000000      # the 1e6 soak
    python benchmarks/bench_online.py --part kill --kills 100
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_evo.fixedpoint import quantize_input_u8  # noqa: E402
from edge_evo.models.mlp import MLPSpec  # noqa: E402
from edge_evo.online import AdaptConfig, OnlineAdapter  # noqa: E402
from edge_evo.online.runner import rss_bytes  # noqa: E402
from edge_evo.tasks import load_mnist  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "mnist"


def chunks_acc(correct, size):
    n = len(correct) // size
    return np.asarray(correct[:n * size], dtype=float).reshape(n, size).mean(axis=1)


def run_stream(adapter, X, y, learn=True):
    correct = []
    for x, t in zip(X, y):
        p = adapter.step(x, int(t) if learn else None)
        correct.append(p == t)
    return np.array(correct)


GENREG_PKL = ROOT.parent / "shared" / "data" / "genreg" / "best_genome_mnist_gen00600_20251229_140150.pkl"


def trained_model(args, out):
    """The deployed model: --model, else the GENREG author's 784-64-10 genome imported to int8
    (81.14 % on MNIST test), cached in the --out folder."""
    from edge_evo import io as eio
    path = Path(args.model) if args.model else out / "genreg_int8"
    if not args.model and not path.with_suffix(".npz").exists():
        from edge_evo.importers import import_model
        import_model(str(GENREG_PKL), str(path), calib="mnist")
    return eio.load_model(path)


def recovery(c, start, size, target):
    """(samples after the switch until a chunk reaches ``target``, or None; best chunk accuracy)."""
    post = chunks_acc(c[start:], size)
    rec = next((i for i, v in enumerate(post) if v >= target), None)
    return (None if rec is None else (rec + 1) * size), (float(post.max()) if len(post) else float("nan"))


def part_mnist(args, out):
    import json

    import numba
    numba.set_num_threads(1)
    model = trained_model(args, out)
    spec, base = model.spec, model.genome
    Xt, yt = load_mnist("mnist", "test", path=str(DATA), download=False)
    Xt = quantize_input_u8(Xt)
    n0, n1 = args.drift_after, args.after
    if n0 + n1 > len(Xt):
        raise SystemExit(f"--drift-after + --after must be <= {len(Xt)} (MNIST test samples)")
    Xf, yf = load_mnist("fashion-mnist", "test", path=str(DATA.parent / "fashion-mnist"), download=False)
    perm = np.roll(np.arange(10), 1)
    scenarios = {
        "permute": (np.concatenate([Xt[:n0], Xt[n0:n0 + n1]]), np.concatenate([yt[:n0], perm[yt[n0:n0 + n1]]])),
        "fashion": (np.concatenate([Xt[:n0], quantize_input_u8(Xf[:n1])]), np.concatenate([yt[:n0], yf[:n1]])),
    }
    modes = {"frozen": None,
             "adaptive": dict(trainable="all", lr=args.adaptive_lr),
             "last-drift": dict(trainable="last", window=args.last_window, sigma=args.last_sigma,
                                adapt="after_drift"),
             "last-always": dict(trainable="last", window=args.last_window, sigma=args.last_sigma,
                                 lr=args.last_always_lr),
             "scratch": dict(trainable="all")}
    size = args.chunk
    results, table = {}, []
    print(f"model {spec.dims} int8, {args.learner} P={args.population} window={args.window} "
          f"(adaptive: lr {args.adaptive_lr})"
          f"\n  last-drift: output layer only, window {args.last_window}, sigma {args.last_sigma}, "
          f"adapt='after_drift'; last-always: the same with adapt='always', lr {args.last_always_lr}\n  "
          f"{n0} MNIST test samples, then {n1} drifted ones; accuracy in chunks of {size}")
    hdr = (f"{'scenario':8s} {'mode':12s} {'pre acc':>7s} {'post acc':>8s} {'last 1k':>7s} {'best chunk':>10s} "
           f"{'recover90':>9s} {'1st drift':>9s} {'med us':>6s} {'p99 us':>6s} {'s':>5s}")
    for sc, (X, y) in scenarios.items():
        results[sc] = {}
        for mode, kw in modes.items():
            cfg = AdaptConfig(**{**dict(learner=args.learner, population=args.population, window=args.window,
                                        seed=0), **(kw or {})})
            if mode == "scratch":
                a = OnlineAdapter(spec, None, cfg)
                Xs, ys = X[n0:], y[n0:]
            else:
                a = OnlineAdapter(spec, base, cfg)
                Xs, ys = X, y
            t = time.perf_counter()
            c = run_stream(a, Xs, ys, learn=kw is not None)
            dt = time.perf_counter() - t
            if mode == "scratch":
                c = np.concatenate([np.full(n0, np.nan), c])
            results[sc][mode] = c
            lat = a.latency_stats()
            drifts = [ev["sample"] - (0 if mode == "scratch" else n0) for ev in a.events if ev.get("event") == "drift"]
            first = next((d for d in drifts if d > 0), None)
            table.append(dict(scenario=sc, mode=mode, pre=float(np.nanmean(c[:n0])) if mode != "scratch" else None,
                              post=float(c[n0:].mean()), last1k=float(c[-1000:].mean()), latency=lat, seconds=dt,
                              first_drift_after=first, pre_drift_drifts=sum(d <= 0 for d in drifts)))
    pre_level = next(r["pre"] for r in table if r["mode"] == "frozen")
    target = 0.9 * pre_level
    print(f"recover90 = samples after the switch until a {size}-sample chunk reaches 90 % of the frozen "
          f"model's pre-drift accuracy ({pre_level:.3f} -> {target:.3f}); '-' = never in the run\n")
    print(hdr)
    for r in table:
        rec, best = recovery(results[r["scenario"]][r["mode"]], n0, size, target)
        r.update(recover90=rec, best_chunk=best)
        f = lambda v, w, fmt: (format(v, fmt) if v is not None else "-").rjust(w)  # noqa: E731
        print(f"{r['scenario']:8s} {r['mode']:12s} {f(r['pre'], 7, '.3f')} {r['post']:8.3f} {r['last1k']:7.3f} "
              f"{best:10.3f} {f(rec, 9, 'd')} {f(r['first_drift_after'], 9, 'd')} "
              f"{f(r['latency']['median_us'], 6, '.0f')} {f(r['latency']['p99_us'], 6, '.0f')} {r['seconds']:5.0f}")
    (out / "mnist_drift.json").write_text(json.dumps(dict(pre_level=pre_level, chunk=size, rows=table), indent=1))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, len(scenarios), figsize=(13, 4), sharey=True)
        for ax, sc in zip(axes, scenarios):
            for mode, c in results[sc].items():
                acc = np.array([np.nan if np.isnan(v).any() else v.mean()
                                for v in np.array_split(c[:len(c) // size * size], len(c) // size)])
                ax.plot((np.arange(len(acc)) + 1) * size, acc, label=mode)
            ax.axvline(n0, color="k", ls="--", lw=0.8)
            ax.axhline(target, color="grey", ls=":", lw=0.8)
            ax.set_xlabel("sample"), ax.set_title(f"{sc} at the dashed line")
        axes[0].set_ylabel(f"accuracy per {size} samples")
        axes[0].legend()
        fig.suptitle(f"MNIST {'-'.join(map(str, spec.dims))} int8 online adaptation ({args.learner}, "
                     f"P={args.population}, window {args.window})")
        fig.savefig(out / "mnist_drift.png", dpi=100, bbox_inches="tight")
        print(f"plot: {out / 'mnist_drift.png'}")
    except ImportError:
        print("matplotlib missing: no plot")
    if args.latency_samples:
        print(f"\nper-sample latency, 784-32-10, {args.latency_samples} labelled MNIST samples (predict + update):")
        for tr, w, sg in (("all", args.window, None), ("last", args.window, args.last_sigma),
                          ("last", args.last_window, args.last_sigma)):
            a = OnlineAdapter(MLPSpec((784, 32, 10)), None, AdaptConfig(population=args.population, window=w,
                                                                       trainable=tr, sigma=sg))
            t = time.perf_counter()
            run_stream(a, Xt[:args.latency_samples], yt[:args.latency_samples])
            mean = (time.perf_counter() - t) / args.latency_samples * 1e6
            lat = a.latency_stats()
            print(f"  trainable={tr:4s} window={w:4d}: median {lat['median_us']:.0f} us, p99 {lat['p99_us']:.0f} us, "
                  f"mean {mean:.0f} us")


def part_regression(args, out):
    r = np.random.default_rng(0)                       # benchmark data only
    n = args.reg_samples
    x = r.uniform(-1, 1, 2 * n)
    y = np.where(np.arange(2 * n) < n, 2 * x + 3, -x + 1)
    spec = MLPSpec((1, 4, 1), w_frac=4, b_frac=4)
    a = OnlineAdapter(spec, None, AdaptConfig(sigma=0.1, drift_window=50))
    err = []
    for v, t in zip(x, y):
        err.append(abs(a.step(a.parser.features([v]), t) - t))
    err = np.array(err)
    e = chunks_acc(err, 100)
    print("regression |error| per 100 samples:", " ".join(f"{v:.2f}" for v in e))
    print(f"drifts detected: {[ev['sample'] for ev in a.events]}")


def part_soak(args, out):
    """Stream MNIST train (cycled) through a 784-32-10 adapter; RSS + rate sampled as it goes
    (also to soak_rss.csv, flushed, so a run cut short still leaves its series)."""
    import numba
    numba.set_num_threads(1)
    spec = MLPSpec((784, 32, 10))
    a = OnlineAdapter(spec, None, AdaptConfig(seed=0))
    X, y = load_mnist("mnist", "train", path=str(DATA), download=False)
    Xq = quantize_input_u8(X)
    every = max(1, args.soak // 40)
    csv = open(out / "soak_rss.csv", "w")
    csv.write("sample,elapsed_s,rss_mb,window_acc,median_us,p99_us\n")
    print("   sample  elapsed_s   rss_MB  win_acc  median_us  p99_us", flush=True)
    mem = []
    t = time.perf_counter()
    n = 0
    for i in range(args.soak):
        if args.soak_seconds and time.perf_counter() - t > args.soak_seconds:
            break
        a.step(Xq[i % len(Xq)], int(y[i % len(y)]))
        n = i + 1
        if i % every == 0 or n == args.soak:
            r = rss_bytes() / 2 ** 20
            lat = a.latency_stats()
            row = (n, time.perf_counter() - t, r, a.quality(), lat["median_us"], lat["p99_us"])
            mem.append(row)
            csv.write("%d,%.1f,%.2f,%.4f,%.0f,%.0f\n" % row)
            csv.flush()
            print("%9d  %9.1f  %7.1f  %7.3f  %9.0f  %6.0f" % row, flush=True)
    csv.close()
    dt = time.perf_counter() - t
    print(f"soak {n} samples in {dt:.1f} s ({dt / n * 1e6:.0f} us/sample mean, {n / dt:.0f} samples/s); "
          f"prequential accuracy {a.counters['correct'] / max(1, a.counters['labelled']):.3f}")
    warm = [m for m in mem if m[0] >= min(10_000, n // 4)]
    if len(warm) > 1:
        print(f"rss after warm-up: {warm[0][2]:.1f} MB at sample {warm[0][0]} -> {warm[-1][2]:.1f} MB at "
              f"sample {warm[-1][0]} (growth {warm[-1][2] - warm[0][2]:+.2f} MB)")


def part_kill(args, out):
    from edge_evo import io as eio
    r = np.random.default_rng(1)
    X = r.uniform(-0.9, 0.9, size=(args.kill_samples, 8)).round(3)
    y = np.argmax(X @ r.normal(size=(3, 8)).T, axis=1)
    src = out / "kill_stream.csv"
    with open(src, "w") as f:
        for x, t in zip(X, y):
            f.write(",".join(f"{v:g}" for v in x) + f",{t}\n")
    run = out / "kill_run"
    if run.exists():
        import shutil
        shutil.rmtree(run)
    cmd = [sys.executable, "-m", "edge_evo", "-q", "adapt", "8-8-3", "--source", str(src), "--out", str(run),
           "--predictions", "none", "--checkpoint-every", "50"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    js = run / "checkpoint.json"
    corrupt, loads = 0, 0
    for i in range(args.kills):
        before = js.stat().st_mtime_ns if js.exists() else 0
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and p.poll() is None and (not js.exists() or js.stat().st_mtime_ns == before):
            time.sleep(0.005)
        time.sleep((i % 17) * 0.003)
        p.send_signal(signal.SIGKILL)
        p.wait()
        try:
            OnlineAdapter.load(run / "checkpoint")
            loads += 1
        except (eio.CheckpointError, FileNotFoundError, ValueError) as e:
            corrupt += 1
            print(f"kill {i}: {e}")
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    a, _ = OnlineAdapter.load(run / "checkpoint")
    ref = OnlineAdapter(MLPSpec((8, 8, 3)), None, AdaptConfig())
    ref.run(open(src).read().splitlines())
    print(f"kill -9 x{args.kills}: {loads} checkpoints loaded, {corrupt} corrupt; final hash "
          f"{'MATCHES' if a.state_hash() == ref.state_hash() else 'DIFFERS from'} the uninterrupted run")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", default="all", choices=("all", "mnist", "regression", "soak", "kill"))
    ap.add_argument("--out", default="bench_out/online")
    ap.add_argument("--model", help="deployed int8 model (default: the GENREG 784-64-10 genome, imported)")
    ap.add_argument("--learner", default="openes", choices=("openes", "elitist"))
    ap.add_argument("--drift-after", type=int, default=3000, help="MNIST samples before the switch")
    ap.add_argument("--after", type=int, default=6000, help="drifted samples after the switch")
    ap.add_argument("--latency-samples", type=int, default=2000)
    ap.add_argument("--last-window", type=int, default=128, help="window of the adaptive-last mode")
    ap.add_argument("--last-sigma", type=float, default=0.1, help="sigma of the adaptive-last modes")
    ap.add_argument("--adaptive-lr", type=float, default=0.5, help="lr of the adaptive (all tensors) mode")
    ap.add_argument("--last-always-lr", type=float, default=0.1, help="lr of the last-always mode")
    ap.add_argument("--chunk", type=int, default=250)
    ap.add_argument("--population", type=int, default=4)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--reg-samples", type=int, default=1500)
    ap.add_argument("--soak", type=int, default=100_000)
    ap.add_argument("--soak-seconds", type=float, default=0.0, help="stop the soak after this long (0: no cap)")
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--kill-samples", type=int, default=20000)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("command:", " ".join([Path(sys.executable).name] + sys.argv))
    for part, fn in (("mnist", part_mnist), ("regression", part_regression), ("soak", part_soak), ("kill", part_kill)):
        if args.part in ("all", part):
            print(f"\n== {part}")
            fn(args, out)


if __name__ == "__main__":
    main()
