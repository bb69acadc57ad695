"""Neuromodulated STDP mimic (seed 002): train one ENU with the core OpenES (float32) to output
x * w where w follows Brian2's pair STDP when the neuromodulator is present, then read the ENU's
learned window (its dw as a function of t_post - t_pre, from its output after both spikes).

Target: Pearson correlation >= 0.95 between the learned window (neuromodulator on) and the
reference A sign(dt) exp(-|dt| / tau); the gate shows as a near-zero learned |dw| with the
neuromodulator off. Definitions: ``edge_evo/tasks/stdp.py``. Seed: 10000 generations, ~50 min on
a Titan V class GPU.

    nice -n 10 python benchmarks/bench_enu_stdp.py --minutes 18 --out runs/enu_stdp --docs-img docs/img/enu_stdp.png

Outputs under ``--out``: metrics.json (settings, history, final figures), model.npz (genome),
enu_stdp.png (learned vs reference window, and one held-out episode).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import _enu_single
from edge_evo.models.enu import ENUSpec
from edge_evo.tasks.stdp import STDPTask, stdp_episodes, stdp_inputs, stdp_window

TARGET_CORR = 0.95


def plot(task, genome, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    dts, on, off = task.window(genome)
    fine = np.linspace(-30, 30, 601)
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    ax[0].plot(fine[fine < 0], stdp_window(fine[fine < 0]), "k-", lw=1, label="reference (Brian2 pair STDP)")
    ax[0].plot(fine[fine > 0], stdp_window(fine[fine > 0]), "k-", lw=1)
    ax[0].plot(dts, on, "o", color="tab:red", ms=4, label="ENU, neuromodulator on")
    ax[0].plot(dts, off, "x", color="tab:blue", ms=4, label="ENU, neuromodulator off")
    ax[0].axhline(0, color="0.7", lw=0.6)
    ax[0].set_xlabel("t_post - t_pre (steps)")
    ax[0].set_ylabel("dw")
    ax[0].legend(fontsize=8)
    ax[0].set_title("learned window")
    te = task.test
    k = int(np.argmax((te["mod"] == 1) & (np.abs(te["t_post"] - te["t_pre"]) <= 5)))
    y = task.run(genome, te["inputs"][k:k + 1])[0, 0]
    t = np.arange(task.T)
    ax[1].plot(t, te["y"][k], "k-", lw=1, label="reference x * w (Brian2)")
    ax[1].plot(t, y, color="tab:red", lw=1, label="ENU output")
    ax[1].plot(t, te["w"][k], color="0.5", ls="--", lw=1, label="reference w")
    ax[1].axvline(te["t_pre"][k], color="tab:green", ls=":", label="pre spike")
    ax[1].axvline(te["t_post"][k], color="tab:purple", ls=":", label="post spike")
    ax[1].set_xlabel("step")
    ax[1].legend(fontsize=7, loc="upper right")
    ax[1].set_title("held-out episode (neuromodulator on)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def potentiated_readout(task, genome, n=64):
    """After the largest potentiation (pre at 20, post at 21, m = 1: w = 0.5 + 0.452), the weight
    read from the ENU's output (sum y x / sum x x over steps 22-61) on steps with large inputs
    (x > 0.7) and with small ones (x < 0.3): equal for an ENU that multiplies, lower at large x for
    one whose output saturates."""
    x = stdp_episodes(task.seed, n, task.T, split=3)[0]
    y = task.run(genome, stdp_inputs(x, np.full(n, 20), np.full(n, 21), np.ones(n, np.int64)))[0]
    xs, ys = x[:, 22:62].astype(np.float64), y[:, 22:62].astype(np.float64)
    hi, lo = xs > 0.7, xs < 0.3
    w = lambda m: float((ys[m] * xs[m]).sum() / (xs[m] ** 2).sum())
    return {"w_ref": float(0.5 + stdp_window(1)), "w_large_x": w(hi), "w_small_x": w(lo)}


def main(argv=None):
    a = _enu_single.parser(__doc__, lr_decay=0.9997, minutes=18.0, out="runs/enu_stdp").parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    spec = ENUSpec(4, a.hidden, 1)
    task = STDPTask(spec, seed=a.seed, n_train=a.n_train, n_test=a.n_test, envs=a.envs, gain=a.gain)
    t_bank = time.perf_counter() - t0
    print(f"Brian2 pair-STDP bank: {a.n_train} train + {a.n_test} held-out episodes x {task.T} steps in "
          f"{t_bank:.1f} s ({task.train['mod'].mean():.2f} with neuromodulator)")
    es, st, how = _enu_single.start(spec, a)
    base = float(((task.test["y"] - 0.5 * task.test["inputs"][..., 0]) ** 2).mean())
    print(f"held-out MSE of the no-plasticity baseline y = 0.5 x: {base:.5f}")
    st, hist, t_train = _enu_single.train(
        es, st, task, a, task.window_metrics,
        lambda m: f"held-out MSE {m['test_mse']:.5f}  window corr {m['corr']:.3f}  |dw| on {m['rms_dw_on']:.3f} "
                  f"off {m['rms_dw_off']:.3f}")
    g = es.best_genome(st)
    m = task.window_metrics(g)
    print()
    print(f"learned window vs reference (dt in [-30, 30] \\ {{0}}, 8 held-out x sequences per dt)")
    print(f"  correlation (neuromodulator on) {m['corr']:.3f}   target >= {TARGET_CORR}: "
          f"{'MET' if m['corr'] >= TARGET_CORR else 'MISSED'}")
    print(f"  per side: potentiation (dt > 0) correlation {m['corr_potentiation']:.3f}, dw(+1) {m['dw_on_plus1']:+.3f} "
          f"(reference {stdp_window(1):+.3f}); depression (dt < 0) {m['corr_depression']:.3f}, dw(-1) "
          f"{m['dw_on_minus1']:+.3f} (reference {stdp_window(-1):+.3f})")
    m.update(potentiated_readout(task, g))
    print(f"  after dt = +1 the weight read from the output is {m['w_large_x']:.3f} where x > 0.7 and "
          f"{m['w_small_x']:.3f} where x < 0.3 (reference {m['w_ref']:.3f})")
    print(f"  RMS dw: reference {m['rms_ref']:.3f}, ENU on {m['rms_dw_on']:.3f}, ENU off {m['rms_dw_off']:.3f} "
          f"(gate: off / on = {m['rms_dw_off'] / max(m['rms_dw_on'], 1e-12):.2f}); RMSE on vs reference {m['rmse_on']:.3f}")
    print(f"  held-out MSE {m['test_mse']:.5f} (no-plasticity baseline {base:.5f})")
    print(f"wall: training {t_train:.0f} s for {st.generation} generations ({t_train / max(st.generation, 1):.3f} "
          f"s/generation, P={a.population} x {a.envs} envs x 100 steps; {how}); seed: 10000 generations, "
          "~50 min on a GPU")

    png = out / "enu_stdp.png"
    plot(task, g, png)
    _enu_single.save(out, a, g, png, {
        "start": how, "generations": st.generation, "train_seconds": t_train, "bank_seconds": t_bank,
        "baseline_mse": base, "final": m, "history": hist})


if __name__ == "__main__":
    main()
