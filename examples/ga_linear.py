"""EMNN demo: a truncation GA evolves y = W x + b towards Y = 2X + 3 (30 generations).

    python examples/ga_linear.py [out_dir] [--mode int8|float32] [--seed N]

Prints W, b and the best fitness per generation and writes ga_linear.png (W, b, fitness over
generations) into out_dir (default runs/ga_linear).
"""
from __future__ import annotations

import argparse
import pathlib

import numpy as np

from edge_evo.fixedpoint import quantize
from edge_evo.models.forward import forward
from edge_evo.models.mlp import MLPSpec
from edge_evo.strategies import get_strategy


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", nargs="?", default="runs/ga_linear")
    ap.add_argument("--mode", choices=["int8", "float32"], default="int8")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--generations", type=int, default=30)
    args = ap.parse_args(argv)

    # Q5 weights and bias hold 2 and 3 exactly; x in [-1, 1] as Q6
    spec = MLPSpec((1, 1), w_frac=5, b_frac=5, x_frac=6)
    X = np.linspace(-1.0, 1.0, 32)[:, None]
    Y = 2.0 * X[:, 0] + 3.0
    Xin = quantize(X, spec.x_frac) if args.mode == "int8" else X.astype(np.float32)
    unit = 2.0 ** -spec.w_frac if args.mode == "int8" else 1.0

    ga = get_strategy("ga")(spec, "emnn", mode=args.mode)
    state = ga.init(args.seed)
    hist = []
    for g in range(args.generations):
        pop = ga.ask(state)
        pred = forward(pop, Xin)[:, :, 0]
        if args.mode == "int8":
            pred = pred / 2.0 ** spec.logit_frac
        state = ga.tell(state, pop, -(pred - Y) ** 2)
        w, b = state.arrays["best"].astype(np.float64) * unit
        fit = float(state.arrays["best_fitness"])
        hist.append((w, b, fit))
        print(f"gen {g + 1:3d}  W = {w:+.4f}  b = {b:+.4f}  fitness = {fit:.6f}")

    out = pathlib.Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("the plot needs matplotlib: pip install 'edge-evo[plot]'")
    h = np.array(hist)
    gens = np.arange(1, len(h) + 1)
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot(gens, h[:, 0], label="W")
    ax[0].plot(gens, h[:, 1], label="b")
    ax[0].axhline(2.0, ls=":", c="C0")
    ax[0].axhline(3.0, ls=":", c="C1")
    ax[0].set_xlabel("generation")
    ax[0].legend()
    ax[1].plot(gens, h[:, 2])
    ax[1].set_xlabel("generation")
    ax[1].set_ylabel("best fitness (-MSE)")
    fig.suptitle(f"GA on Y = 2X + 3 ({args.mode})")
    fig.tight_layout()
    fig.savefig(out / "ga_linear.png", dpi=100)
    print(f"plot: {out / 'ga_linear.png'}")


if __name__ == "__main__":
    main()
