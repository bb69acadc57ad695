"""Brian2 backend for ENU networks (edge_evo/backends/brian2_enu.py): parity with the float64 NumPy
reference, compile time (first run on a cold cache), warm run time against the NumPy reference,
and the spike raster ``docs/img/enu_raster.png``.

    nice -n 10 python benchmarks/bench_brian2_enu.py                     # sizes 4x8 and 8x16, cold cache
    nice -n 10 python benchmarks/bench_brian2_enu.py --sizes 4x8 --warm-cache --repeats 3
    nice -n 10 python benchmarks/bench_brian2_enu.py --sizes "" --genome benchmarks/results/enu_tmaze_c4h8.npz

Parity genomes are OpenES offspring (init U(+-1/sqrt(fan_in)) + sigma 0.1), the kind of genome the
backend validates in practice; a random N(0, 0.5) genome is also run to show that such nets are
chaotic (the reference itself moves when one input changes by 1 ulp). Times are wall-clock medians.
The raster uses a trained genome when ``--genome`` is given or one is found under ``runs/`` (an
npz beside a JSON whose ``spec`` is an ``enu_net``; ``best_genome`` if it has one), else a random
genome; the figure title says which (the random one is N(0, 0.5): an untrained OpenES-init genome never
crosses the threshold, which makes an empty raster).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_evo.models.enu_net import ENUNetSpec, enu_net_run, output_noise  # noqa: E402
from edge_evo.strategies.openes import OpenES  # noqa: E402


def openes_genome(spec, seed):
    es = OpenES(spec, "paper", mode="float32", population=2, sigma=0.1, lr=0.05)
    return es.ask(es.init(seed)).to_flat()[0].astype(np.float64)


def tmaze_like_inputs(spec, T, E, seed=0):
    """Sensor outputs shaped like a T-maze episode stream: one of the 3 observation sensors is on
    (all channels 1) for 4-step stretches, the reward sensor pulses every 12 steps with +-1 sign
    coded as channel 0 = 1 (reward) or 0.5 (no reward); other values 0."""
    r = np.random.default_rng(seed)
    xs = np.zeros((T, E, spec.n_sensors, spec.channels))
    for e in range(E):
        for t0 in range(0, T, 4):
            xs[t0:t0 + 4, e, r.integers(0, min(3, spec.n_sensors))] = 1.0
        for t in range(11, T, 12):
            xs[t, e, spec.n_sensors - 1, 0] = 1.0 if r.random() < 0.5 else 0.5
    return xs


def find_trained(root: Path):
    """(genome npz, spec) of the newest ENU-network genome under root/runs: a JSON file whose
    ``spec`` is an ``enu_net`` next to its npz (``model.json``/``model.npz``, or a checkpoint pair
    like ``genome.json``/``genome.npz`` naming its npz), or None."""
    best = None
    for j in sorted((root / "runs").glob("**/*.json")):
        try:
            meta = json.loads(j.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(meta, dict) or not isinstance(meta.get("spec"), dict):
            continue
        npz = j.parent / meta["npz"] if isinstance(meta.get("npz"), str) else j.with_suffix(".npz")
        if meta["spec"].get("kind") == "enu_net" and npz.exists():
            if best is None or j.stat().st_mtime > best[0].stat().st_mtime:
                best = (j, npz, meta)
    return None if best is None else (best[1], ENUNetSpec.from_dict(best[2]["spec"]))


def load_genome(path: Path, default_spec):
    """(genome, spec, array name): ``best_genome`` when the npz has one, else ``genome``."""
    with np.load(path, allow_pickle=False) as z:
        key = "best_genome" if "best_genome" in z else "genome"
        if key not in z:
            raise SystemExit(f"{path}: no 'genome' array (save it with np.savez(path, genome=g))")
        g = z[key].astype(np.float64).ravel()
    spec = default_spec
    j = path.with_suffix(".json")
    if j.exists():
        meta = json.loads(j.read_text())
        if isinstance(meta.get("spec"), dict) and meta["spec"].get("kind") == "enu_net":
            spec = ENUNetSpec.from_dict(meta["spec"])
    if g.size != spec.n_params:
        raise SystemExit(f"{path}: genome has {g.size} values, {spec} needs {spec.n_params} "
                         "(pass --raster-size CxH or a .json beside it with the spec)")
    return g, spec, key


def max_diff(res, ys, st):
    return max(np.abs(res.ys - ys[:, 0]).max(), np.abs(res.state.h_n - st.h_n).max(),
               np.abs(res.state.y_s - st.y_s).max(), np.abs(res.state.h_s - st.h_s).max())


def median_s(fn, repeats):
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def bench_size(C, H, args):
    from edge_evo.backends.brian2_enu import ENUNetBrian2
    spec = ENUNetSpec.tmaze(channels=C, memory=H)
    T, E, std = args.T, args.E, args.noise
    xs = np.random.default_rng(1).uniform(0, 1, (T, E, spec.n_sensors, C))
    g = openes_genome(spec, 7)
    ys, st = enu_net_run(spec, g[None], xs[:, None], std, 11, dtype=np.float64)
    t0 = time.perf_counter()
    net = ENUNetBrian2(spec, E=E, T=T, target=args.target)
    res = net.run(g, xs, std, 11)
    first = time.perf_counter() - t0
    d = max_diff(res, ys, st)
    warm = median_s(lambda: net.run(g, xs, std, 11), args.repeats)
    run_only = float(np.median([net.run(g, xs, std, 11).run_s for _ in range(args.repeats)]))
    ref64 = median_s(lambda: enu_net_run(spec, g[None], xs[:, None], std, 11, dtype=np.float64), args.repeats)
    ref32 = median_s(lambda: enu_net_run(spec, g[None], xs[:, None], std, 11, dtype=np.float32), args.repeats)
    noise = median_s(lambda: [output_noise(spec, 11, t, E, std, np.float64) for t in range(T)], args.repeats)
    g2 = openes_genome(spec, 8)                   # a new genome: in-place weight write, no recompile
    ys2, st2 = enu_net_run(spec, g2[None], xs[:, None], std, 12, dtype=np.float64)
    d2 = max_diff(net.run(g2, xs, std, 12), ys2, st2)
    gc = np.random.default_rng(3).normal(0, 0.5, spec.n_params)          # chaotic random genome
    ysc, stc = enu_net_run(spec, gc[None], xs[:, None], std, 11, dtype=np.float64)
    dc = max_diff(net.run(gc, xs, std, 11), ysc, stc)
    ysu, _ = enu_net_run(spec, gc[None], np.nextafter(xs, 2)[:, None], std, 11, dtype=np.float64)
    self_c = np.abs(ysu - ysc).max()
    print(f"\n## tmaze(channels={C}, memory={H}): {spec.n_params} params, {spec.n_neurons} neurons x "
          f"{spec.n_synapses} synapse ENUs, E={E} copies, T={T} steps, noise std {std}, target {res.target}")
    print(f"parity max|Brian2 - enu_net_run(float64)| (y_n every step, final h_n, y_s, h_s): "
          f"{d:.2e} (OpenES genome), {d2:.2e} (second genome, same network, no recompile)")
    print(f"chaotic N(0, 0.5) genome: Brian2 vs reference {dc:.2e}; the reference vs itself with x moved "
          f"by 1 ulp: {self_c:.2e}")
    print(f"first build + run (code generation{' + compile' if args.cold else ''}): {first:.1f} s")
    print(f"warm run (restore + inputs + noise + run + read back), median of {args.repeats}: {warm * 1e3:.0f} ms; "
          f"Network.run only: {run_only * 1e3:.0f} ms")
    print(f"NumPy reference enu_net_run: float64 {ref64 * 1e3:.0f} ms, float32 {ref32 * 1e3:.0f} ms "
          f"(of which output_noise for {T} steps: {noise * 1e3:.0f} ms)")
    return {"C": C, "H": H, "parity": d, "parity2": d2, "chaotic": dc, "self": self_c, "first_s": first,
            "warm_ms": warm * 1e3, "run_ms": run_only * 1e3, "ref64_ms": ref64 * 1e3, "ref32_ms": ref32 * 1e3}


def raster(args):
    from edge_evo.backends.brian2_enu import simulate_enu_net_brian2
    C, H = map(int, args.raster_size.split("x"))
    spec = ENUNetSpec.tmaze(channels=C, memory=H)
    T = 100
    xs = tmaze_like_inputs(spec, T, 1)
    found = (Path(args.genome), None) if args.genome else find_trained(ROOT)
    if found is not None:
        path = Path(found[0]).resolve()
        g, spec, key = load_genome(path, found[1] or spec)
        xs = tmaze_like_inputs(spec, T, 1)
        what = f"trained genome {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} ['{key}']"
    else:
        # an untrained OpenES-init genome keeps every output near 0 (no crossings), and so do many
        # random ones (all neurons share one genome): take the first seed whose every neuron spikes
        # at least 5 times in the NumPy reference, unless --seed says which
        seeds = [args.seed] if args.seed is not None else range(100)
        for seed in seeds:
            g = np.random.default_rng(seed).normal(0, args.random_std, spec.n_params)
            ys, _ = enu_net_run(spec, g[None], xs[:, None], args.noise, 0, dtype=np.float64)
            y = ys[:, 0, 0, :, 0]
            prev = np.vstack([np.zeros((1, y.shape[1])), y[:-1]])
            if ((y > args.threshold) & (prev <= args.threshold)).sum(axis=0).min() >= 5:
                break
        what = f"random genome N(0, {args.random_std}) seed {seed}, untrained"
    res = simulate_enu_net_brian2(spec, g, xs, noise_std=args.noise, noise_seed=0, target=args.target,
                                  spike_threshold=args.threshold)
    title = (f"ENU net tmaze(C={spec.channels}, H={spec.memory}) in Brian2, {what}\n"
             f"spike = output channel 0 crossing {args.threshold} upwards; "
             f"T-maze-like sensor input, noise {args.noise}")
    out = Path(args.raster_dir)
    p = res.write_raster(out, title=title, name="enu_raster.png")
    print(f"\nraster: {p} ({len(res.spike_steps)} spikes in {T} steps, {what})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="4x8,8x16", help="channels x memory, comma separated ('' = raster only)")
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--E", type=int, default=2)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--target", default="cython", choices=["cython", "numpy"])
    ap.add_argument("--warm-cache", dest="cold", action="store_false",
                    help="use the normal Cython cache (default: a fresh temp cache, so the first run compiles)")
    ap.add_argument("--genome", help="npz with a 'genome' array (+ sibling .json with an enu_net spec)")
    ap.add_argument("--raster-size", default="4x8")
    ap.add_argument("--raster-dir", default=str(ROOT / "docs" / "img"))
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--no-raster", action="store_true")
    ap.add_argument("--random-std", type=float, default=0.5, help="raster genome N(0, std) when none is trained")
    ap.add_argument("--seed", type=int, default=None, help="raster random genome seed (default: search)")
    args = ap.parse_args()
    if args.cold:
        os.environ["EDGE_EVO_BRIAN2_CACHE"] = tempfile.mkdtemp(prefix="edge_evo_b2cold_")
    from edge_evo.backends.brian2_enu import cython_cache_dir
    import brian2
    print(f"brian2 {brian2.__version__}, numpy {np.__version__}, target {args.target}, "
          f"cache {cython_cache_dir()} ({'cold' if args.cold else 'warm'}), {os.cpu_count()} cores")
    rows = [bench_size(*map(int, s.split("x")), args) for s in args.sizes.split(",") if s]
    if rows:
        print("\n| size C x H | params | parity | first run (s) | warm run (ms) | Network.run (ms) | NumPy f64 (ms) |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            spec = ENUNetSpec.tmaze(channels=r["C"], memory=r["H"])
            print(f"| {r['C']} x {r['H']} | {spec.n_params} | {r['parity']:.1e} | {r['first_s']:.0f} | "
                  f"{r['warm_ms']:.0f} | {r['run_ms']:.0f} | {r['ref64_ms']:.0f} |")
    if not args.no_raster:
        raster(args)


if __name__ == "__main__":
    main()
