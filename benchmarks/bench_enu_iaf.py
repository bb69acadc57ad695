"""IAF mimic (seed 002): train one ENU with the core OpenES (float32) to spike like Brian2's
integrate-and-fire neuron, then report the spike-time figures on held-out inputs, in float32 and
in the fixed-point cell (int16 state, int8 LUT gates).

Target: spike-time error <= 1 step on held-out inputs, measured as ``within1`` (fraction of
reference spikes with an ENU spike within 1 step) >= 0.95 and ``extra`` (ENU spikes farther than
1 step from every reference spike) <= 0.05; median / max error and missed spikes are printed too.
Definitions: ``edge_evo/tasks/iaf.py``.

    nice -n 10 python benchmarks/bench_enu_iaf.py --minutes 15 --out runs/enu_iaf --docs-img docs/img/enu_iaf.png

Outputs under ``--out``: metrics.json (settings, history, final figures), model.npz (genome),
enu_iaf.png (ENU output vs the Brian2 reference on a held-out input).
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from edge_evo.kernels.enu import enu_cell_run_q, quantize_enu, quantize_inputs, A_FRAC
from edge_evo.models.enu import ENUSpec
from edge_evo.strategies.openes import OpenES
from edge_evo.tasks.enu_train import evolve, orthogonal_genome
from edge_evo.tasks.iaf import IAFTask, iaf_loss, spike_metrics

TARGET_WITHIN1 = 0.95
TARGET_EXTRA = 0.05


def fixed_point_metrics(task, genome):
    q, fr = quantize_enu(task.spec, genome, gain=task.gain)
    ys, _ = enu_cell_run_q(task.spec, q[None], fr[None], quantize_inputs(task.as_xs(task.x_test)))
    y = (ys[:, 0, :, 0].T / 2.0 ** A_FRAC).astype(np.float32)
    out = spike_metrics(y, task.s_test)
    out["loss"] = float(iaf_loss(y, task.s_test).mean())
    return out, y


def plot(task, genome, y_q, path, k=0):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    y = task.run(genome, task.x_test[k:k + 1])[0, 0]
    t = np.arange(task.T)
    fig, ax = plt.subplots(3, 1, figsize=(9, 6), sharex=True)
    ax[0].bar(t, task.x_test[k], color="0.5")
    ax[0].set_ylabel("input x")
    ax[1].plot(t, task.v_test[k], color="tab:blue", label="Brian2 v (after reset)")
    ax[1].axhline(task.th, color="k", ls=":", lw=0.8)
    ax[1].set_ylabel("membrane")
    ax[1].legend(loc="upper right", fontsize=8)
    ax[2].stem(t, task.s_test[k].astype(float), linefmt="k-", markerfmt="ko", basefmt=" ", label="Brian2 IAF spikes")
    ax[2].plot(t, y, color="tab:red", lw=1.5, label="ENU output (float32)")
    ax[2].plot(t, y_q[k], color="tab:green", lw=1, ls="--", label="ENU output (fixed point)")
    ax[2].axhline(0.5, color="0.6", ls=":", lw=0.8)
    ax[2].set_ylabel("output")
    ax[2].set_xlabel("step")
    ax[2].legend(loc="upper right", fontsize=8)
    fig.suptitle("ENU mimicking an integrate-and-fire neuron (held-out input)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def row(name, m):
    return (f"{name:<22} {m['within1']:>8.3f} {m['exact']:>6.3f} {m['median_err']:>6.1f} {m['max_err']:>5d} "
            f"{m['missed']:>7.3f} {m['extra']:>6.3f} {m['loss']:>7.3f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, default=16, help="ENU memory units (seed: 32)")
    ap.add_argument("--population", type=int, default=128, help="offspring (seed: 512)")
    ap.add_argument("--envs", type=int, default=16, help="environment copies per offspring (seed: 32)")
    ap.add_argument("--sigma", type=float, default=0.02)
    ap.add_argument("--lr", type=float, default=0.3)
    ap.add_argument("--sigma-decay", type=float, default=1.0, help="sigma *= this every generation")
    ap.add_argument("--sigma-min", type=float, default=0.01)
    ap.add_argument("--lr-decay", type=float, default=0.9995)
    ap.add_argument("--lr-min", type=float, default=0.05)
    ap.add_argument("--gain", type=float, default=1.0, help="output gain before the clamp (upstream: 1000)")
    ap.add_argument("--generations", type=int, default=20000, help="upper bound; --minutes usually stops first")
    ap.add_argument("--minutes", type=float, default=15.0, help="training wall-time budget")
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--n-train", type=int, default=2048)
    ap.add_argument("--n-test", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/enu_iaf")
    ap.add_argument("--docs-img", default="", help="also copy the plot here (docs/img/enu_iaf.png)")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    spec = ENUSpec(1, a.hidden, 1)
    task = IAFTask(spec, seed=a.seed, n_train=a.n_train, n_test=a.n_test, envs=a.envs, gain=a.gain)
    t_bank = time.perf_counter() - t0
    print(f"Brian2 reference bank: {a.n_train} train + {a.n_test} held-out sequences x {task.T} steps in "
          f"{t_bank:.1f} s ({task.s_test.sum(1).mean():.1f} spikes per held-out episode)")
    es = OpenES(spec, "paper", mode="float32", population=a.population, sigma=a.sigma, lr=a.lr,
                lr_decay=a.lr_decay, lr_min=a.lr_min, sigma_decay=a.sigma_decay, sigma_min=a.sigma_min)
    st = es.init_from(a.seed, orthogonal_genome(spec, a.seed))
    print(f"ENU {spec.dims} ({spec.n_params} parameters), OpenES P={a.population} sigma={a.sigma} "
          f"(decay {a.sigma_decay}, min {a.sigma_min}) lr={a.lr} (decay {a.lr_decay}, min {a.lr_min}) momentum 0.9 rank5, {a.envs} envs x {task.T} steps, output gain {a.gain}")

    hist = []
    t1 = time.perf_counter()
    budget = a.minutes * 60.0
    while st.generation < a.generations and time.perf_counter() - t1 < budget:
        n = min(a.eval_every, a.generations - st.generation)
        st, h = evolve(es, st, task, n, log_every=n, progress=False)
        m = task.evaluate(es.best_genome(st))
        h[-1].update({f"test_{k}": v for k, v in m.items()})
        h[-1]["seconds"] = time.perf_counter() - t1
        hist.extend(h)
        print(f"gen {st.generation:>6d}  {h[-1]['seconds']:>6.0f} s  train fitness {h[-1]['mean_fitness']:8.3f}  "
              f"held-out within1 {m['within1']:.3f} extra {m['extra']:.3f} loss {m['loss']:.3f}", flush=True)
    t_train = time.perf_counter() - t1
    g = es.best_genome(st)

    m_f = task.evaluate(g)
    m_q, y_q = fixed_point_metrics(task, g)
    m_tr = task.evaluate(g, split="train")
    print()
    print(f"{'held-out (' + str(a.n_test) + ' x 100)':<22} {'within1':>8} {'exact':>6} {'median':>6} {'max':>5} "
          f"{'missed':>7} {'extra':>6} {'loss':>7}")
    print(row("ENU float32 (train)", m_tr))
    print(row("ENU float32", m_f))
    print(row("ENU fixed point", m_q))
    ok = lambda m: m["within1"] >= TARGET_WITHIN1 and m["extra"] <= TARGET_EXTRA
    print(f"target within1 >= {TARGET_WITHIN1}, extra <= {TARGET_EXTRA}: float32 {'MET' if ok(m_f) else 'MISSED'}, "
          f"fixed point {'MET' if ok(m_q) else 'MISSED'}")
    print(f"wall: training {t_train:.0f} s for {st.generation} generations ({t_train / max(st.generation, 1):.3f} "
          f"s/generation, P={a.population} x {a.envs} envs x 100 steps); seed: 3000 generations on a GPU")

    np.savez(out / "model.npz", genome=g, hidden=np.int64(a.hidden))
    (out / "metrics.json").write_text(json.dumps({
        "settings": vars(a), "generations": st.generation, "train_seconds": t_train, "bank_seconds": t_bank,
        "held_out_float32": m_f, "held_out_fixed_point": m_q, "train_float32": m_tr, "history": hist},
        indent=1, default=float))
    png = out / "enu_iaf.png"
    plot(task, g, y_q, png)
    if a.docs_img:
        Path(a.docs_img).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, a.docs_img)
    print(f"wrote {out / 'metrics.json'}, {out / 'model.npz'}, {png}" + (f", {a.docs_img}" if a.docs_img else ""))


if __name__ == "__main__":
    main()
