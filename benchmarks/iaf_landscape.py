"""Why the IAF mimic needs so many generations: a hand-set genome against evolved ones
(docs/enu.md, "IAF: why it takes so many generations").

1. ``iaf_hand_genome`` (set by hand, not evolved) on the held-out Brian2 sequences, float32 and fixed
   point: what the cell can express.
2. For each evolved ``model.npz`` given: its held-out figures, its largest weights, and for a
   one-memory-unit ENU where its output threshold sits in h (``y = clamp(gain (w h + b))`` crosses
   0.5 at ``h = (0.5 / gain - b) / w``; tanh saturates at +-1).
3. The loss along the straight line from the first evolved genome to the hand-set genome of the same
   size (a barrier shows as a loss above both ends).

    python benchmarks/iaf_landscape.py runs/iaf_p4/model.npz runs/enu_iaf_g/model.npz
"""
from __future__ import annotations

import argparse

import numpy as np

from bench_enu_iaf import fixed_point_metrics
from edge_evo.models.enu import ENUSpec
from edge_evo.tasks.iaf import IAFTask, iaf_hand_genome


def row(name, m):
    return f"{name:<44} within1 {m['within1']:.3f}  exact {m['exact']:.3f}  extra {m['extra']:.3f}  loss {m['loss']:.3f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help="model.npz files written by bench_enu_iaf.py")
    ap.add_argument("--gain", type=float, default=10.0, help="output gain the models were trained with")
    ap.add_argument("--n-test", type=int, default=256)
    a = ap.parse_args(argv)

    tasks = {}

    def task_for(H):
        if H not in tasks:
            tasks[H] = IAFTask(ENUSpec(1, H, 1), n_train=8, n_test=a.n_test, envs=4, gain=a.gain)
        return tasks[H]

    t1 = task_for(1)
    for s in (0.05, 0.1, 0.2, 0.4):
        g = iaf_hand_genome(t1.spec, s=s, gain=a.gain)
        print(row(f"hand-set, s = {s} (float32)", t1.evaluate(g)))
    m_q, _ = fixed_point_metrics(t1, iaf_hand_genome(t1.spec, s=0.05, gain=a.gain))
    print(row("hand-set, s = 0.05 (fixed point)", m_q))

    first = None
    for path in a.models:
        with np.load(path, allow_pickle=False) as z:
            g = np.asarray(z["genome"], np.float32)
        H = next((h for h in range(1, 257) if ENUSpec(1, h, 1).n_params == g.size), None)
        if H is None:
            raise SystemExit(f"{path}: {g.size} parameters is no single-input ENU size")
        task = task_for(H)
        print(row(f"{path} (H {H})", task.evaluate(g)))
        t = task.spec.unflatten(g[None])
        print("    largest |w|: " + ", ".join(f"{k} {np.abs(v).max():.2f}" for k, v in t.items()))
        if H == 1:
            w, b = float(t["W_o"][0, 0, 0]), float(t["W_o"][0, 0, 1])
            print(f"    output threshold at h = {(0.5 / a.gain - b) / w:+.3f} (y = clamp({a.gain:g} ({w:+.3f} h {b:+.3f})))")
        first = first or (task, g)
    if first:
        task, g = first
        hand = iaf_hand_genome(task.spec, s=0.05, gain=a.gain)
        pts = []
        for al in np.linspace(0.0, 1.0, 11):
            pts.append(f"{al:.1f}: {task.evaluate((1 - al) * g + al * hand)['loss']:.2f}")
        print("loss along (1 - a) evolved + a hand-set:  " + "  ".join(pts))


if __name__ == "__main__":
    main()
