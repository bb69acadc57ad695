"""Shared driver of the single-ENU benchmarks (``bench_enu_iaf.py``, ``bench_enu_stdp.py``): the
OpenES arguments, the start genome (upstream's orthogonal init, or ``--init`` an earlier run's
``model.npz`` to continue it), the train-and-check loop under a wall-time budget, and the run
folder (``model.npz`` + ``metrics.json``, no pickle)."""
from __future__ import annotations

import argparse
import io as _bytes_io
import json
import shutil
import time
from pathlib import Path

import numpy as np

from edge_evo.io import atomic_write_bytes, atomic_write_text
from edge_evo.strategies.openes import SHAPINGS, OpenES
from edge_evo.tasks.enu_train import evolve, orthogonal_genome


def parser(doc: str, *, lr_decay: float, minutes: float, out: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, default=16, help="ENU memory units (seed: 32)")
    ap.add_argument("--gain", type=float, default=1.0,
                    help="output gain before the clamp, clamp(gain * W_o [h, 1]) (upstream: 1000 for IAF, 1 for STDP)")
    ap.add_argument("--population", type=int, default=128, help="offspring (seed: 512)")
    ap.add_argument("--envs", type=int, default=16, help="environment copies per offspring (seed: 32)")
    ap.add_argument("--sigma", type=float, default=0.02)
    ap.add_argument("--lr", type=float, default=0.3)
    ap.add_argument("--sigma-decay", type=float, default=1.0, help="sigma *= this every generation")
    ap.add_argument("--sigma-min", type=float, default=0.01)
    ap.add_argument("--lr-decay", type=float, default=lr_decay)
    ap.add_argument("--lr-min", type=float, default=0.05)
    ap.add_argument("--shaping", choices=SHAPINGS, default="rank5", help="rank5 = the seed's rank^5")
    ap.add_argument("--generations", type=int, default=20000, help="upper bound; --minutes usually stops first")
    ap.add_argument("--minutes", type=float, default=minutes, help="training wall-time budget")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--n-train", type=int, default=2048)
    ap.add_argument("--n-test", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init-gain", type=float, default=1.0,
                    help="scale of the orthogonal init (upstream: 1; a solved IAF needs weights of ~100)")
    ap.add_argument("--init", default="", help="continue from an earlier run's model.npz (same --hidden)")
    ap.add_argument("--rescale-output", type=float, default=1.0,
                    help="multiply the --init genome's W_o by this (keeps its function when --gain changes: old/new)")
    ap.add_argument("--out", default=out)
    ap.add_argument("--docs-img", default="", help="also copy the run's plot here")
    return ap


def start(spec, a):
    """(es, state, description of the start genome)."""
    es = OpenES(spec, "paper", mode="float32", population=a.population, sigma=a.sigma, lr=a.lr,
                lr_decay=a.lr_decay, lr_min=a.lr_min, sigma_decay=a.sigma_decay, sigma_min=a.sigma_min,
                shaping=a.shaping)
    if a.init:
        with np.load(a.init, allow_pickle=False) as z:
            g = np.asarray(z["genome"], np.float32)
        if g.shape != (spec.n_params,):
            raise SystemExit(f"{a.init} holds {g.size} parameters, this ENU {spec.dims} has {spec.n_params}; "
                             "pass the --hidden of the run that wrote it")
        if a.rescale_output != 1.0:
            g[spec.offsets()["W_o"]:] *= np.float32(a.rescale_output)                # W_o is the last tensor
        how = f"continued from {a.init}" + (f", W_o x {a.rescale_output:g}" if a.rescale_output != 1.0 else "")
    else:
        g = orthogonal_genome(spec, a.seed, gain=a.init_gain)
        how = f"orthogonal init x {a.init_gain:g} (seed {a.seed})"
    print(f"ENU {spec.dims} ({spec.n_params} parameters), {how}; OpenES P={a.population} sigma={a.sigma} "
          f"(decay {a.sigma_decay}, min {a.sigma_min}) lr={a.lr} (decay {a.lr_decay}, min {a.lr_min}) "
          f"momentum 0.9 {a.shaping}, {a.envs} envs", flush=True)
    return es, es.init_from(a.seed, g), how


def train(es, st, task, a, check, line):
    """Evolve in chunks of ``--eval-every`` generations until ``--minutes`` or ``--generations``;
    after each chunk ``check(genome) -> dict`` on held-out data and ``line(dict) -> str`` printed.
    Returns (state, history, training seconds)."""
    hist = []
    t1 = time.perf_counter()
    while st.generation < a.generations and time.perf_counter() - t1 < a.minutes * 60.0:
        n = min(a.eval_every, a.generations - st.generation)
        st, h = evolve(es, st, task, n, log_every=n, progress=False)
        m = check(es.best_genome(st))
        h[-1].update(m)
        h[-1]["seconds"] = time.perf_counter() - t1
        hist.extend(h)
        print(f"gen {st.generation:>6d}  {h[-1]['seconds']:>6.0f} s  train fitness {h[-1]['mean_fitness']:9.5f}  "
              + line(m), flush=True)
    return st, hist, time.perf_counter() - t1


def save(out: Path, a, genome, png: Path, metrics: dict) -> None:
    """model.npz (genome, hidden), metrics.json (settings + figures), and the plot copied to --docs-img."""
    buf = _bytes_io.BytesIO()          # atomic: --init may read the model.npz this run replaces
    np.savez(buf, genome=genome, hidden=np.int64(a.hidden), gain=np.float64(a.gain))
    atomic_write_bytes(out / "model.npz", buf.getvalue())
    atomic_write_text(out / "metrics.json", json.dumps({"settings": vars(a), **metrics}, indent=1, default=float))
    if a.docs_img:
        Path(a.docs_img).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, a.docs_img)
    print(f"wrote {out / 'metrics.json'}, {out / 'model.npz'}, {png}" + (f", {a.docs_img}" if a.docs_img else ""))
