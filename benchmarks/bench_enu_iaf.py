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

import time
from pathlib import Path

import numpy as np

import _enu_single
from edge_evo.kernels.enu import enu_cell_run_q, quantize_enu, quantize_inputs, A_FRAC
from edge_evo.models.enu import ENUSpec
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
    a = _enu_single.parser(__doc__, lr_decay=0.9995, minutes=15.0, out="runs/enu_iaf").parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    spec = ENUSpec(1, a.hidden, 1)
    task = IAFTask(spec, seed=a.seed, n_train=a.n_train, n_test=a.n_test, envs=a.envs, gain=a.gain)
    t_bank = time.perf_counter() - t0
    print(f"Brian2 reference bank: {a.n_train} train + {a.n_test} held-out sequences x {task.T} steps in "
          f"{t_bank:.1f} s ({task.s_test.sum(1).mean():.1f} spikes per held-out episode); output gain {a.gain}")
    es, st, how = _enu_single.start(spec, a)
    st, hist, t_train = _enu_single.train(
        es, st, task, a, lambda g: {f"test_{k}": v for k, v in task.evaluate(g).items()},
        lambda m: f"held-out within1 {m['test_within1']:.3f} extra {m['test_extra']:.3f} loss {m['test_loss']:.3f}")
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
          f"s/generation, P={a.population} x {a.envs} envs x 100 steps; {how}); seed: 3000 generations on a GPU")

    png = out / "enu_iaf.png"
    plot(task, g, y_q, png)
    _enu_single.save(out, a, g, png, {
        "start": how, "generations": st.generation, "train_seconds": t_train, "bank_seconds": t_bank,
        "held_out_float32": m_f, "held_out_fixed_point": m_q, "train_float32": m_tr, "history": hist})


if __name__ == "__main__":
    main()
