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


def part_mnist(args, out):
    import numba
    numba.set_num_threads(1)
    X, y = load_mnist("mnist", "train", path=str(DATA), download=False)
    Xq = quantize_input_u8(X)
    spec = MLPSpec((784, 32, 10))
    cfg = AdaptConfig(population=args.population, window=args.window, seed=0)
    n0, n1 = args.pretrain, args.pretrain + args.drift_after
    n2 = n1 + args.after
    pre = OnlineAdapter(spec, None, cfg)
    t = time.perf_counter()
    run_stream(pre, Xq[:n0], y[:n0])
    print(f"pretrain {n0} samples online: {time.perf_counter() - t:.1f} s, last-1000 acc "
          f"{np.mean(pre.outcomes.v[:pre.outcomes.count]):.3f}")
    base = pre.deployed.copy()
    perm = np.roll(np.arange(10), 1)                    # label permutation at the drift
    ys = y[n0:n2].copy()
    ys[n1 - n0:] = perm[ys[n1 - n0:]]
    Xs = Xq[n0:n2]
    res = {}
    for name in ("adaptive", "frozen", "scratch"):
        a = OnlineAdapter(spec, None if name == "scratch" else base, cfg)
        c = run_stream(a, Xs, ys, learn=(name != "frozen"))
        res[name] = c
        lat = a.latency_stats()
        print(f"{name:9s} acc before drift {c[:n1 - n0].mean():.3f}  after {c[n1 - n0:].mean():.3f}  "
              f"median latency {lat['median_us']:.0f} us  p99 {lat['p99_us']:.0f} us  drifts {a.counters['drifts']}")
    size = args.chunk
    pre_level = chunks_acc(res["adaptive"][:n1 - n0], size)[-3:].mean()
    post = chunks_acc(res["adaptive"][n1 - n0:], size)
    rec = next((i for i, v in enumerate(post) if v >= 0.9 * pre_level), None)
    print(f"pre-drift accuracy {pre_level:.3f}; samples to recover 90 % of it: "
          f"{'not within the run' if rec is None else (rec + 1) * size}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(8, 4))
        for name, c in res.items():
            a = chunks_acc(c, size)
            ax.plot((np.arange(len(a)) + 1) * size, a, label=name)
        ax.axvline(n1 - n0, color="k", ls="--", lw=0.8)
        ax.set_xlabel("sample"), ax.set_ylabel(f"accuracy per {size} samples"), ax.legend()
        ax.set_title("MNIST 784-32-10 int8, labels permuted at the dashed line")
        fig.savefig(out / "mnist_drift.png", dpi=100, bbox_inches="tight")
        print(f"plot: {out / 'mnist_drift.png'}")
    except ImportError:
        print("matplotlib missing: no plot")


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
    spec = MLPSpec((784, 32, 10))
    a = OnlineAdapter(spec, None, AdaptConfig(seed=0))
    X, y = load_mnist("mnist", "train", path=str(DATA), download=False)
    Xq = quantize_input_u8(X)
    mem = []
    t = time.perf_counter()
    for i in range(args.soak):
        a.step(Xq[i % len(Xq)], int(y[i % len(y)]))
        if i % max(1, args.soak // 20) == 0:
            mem.append((i, rss_bytes()))
    dt = time.perf_counter() - t
    print(f"soak {args.soak} samples in {dt:.1f} s ({dt / args.soak * 1e6:.0f} us/sample mean)")
    print("sample      rss_MB")
    for i, m in mem:
        print(f"{i:>8d}  {m / 2 ** 20:8.1f}")
    growth = (mem[-1][1] - mem[1][1]) / 2 ** 20 if len(mem) > 2 else 0.0
    print(f"rss growth after warm-up: {growth:.2f} MB")


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
    ap.add_argument("--pretrain", type=int, default=5000)
    ap.add_argument("--drift-after", type=int, default=3000)
    ap.add_argument("--after", type=int, default=5000)
    ap.add_argument("--chunk", type=int, default=250)
    ap.add_argument("--population", type=int, default=4)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--reg-samples", type=int, default=1500)
    ap.add_argument("--soak", type=int, default=100_000)
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
