"""Fixed-point ENU network vs the float64 reference (docs/enu.md, "Fixed-point ENU network").

    python benchmarks/bench_enu_net_q.py

tmaze(4, 8), 4 copies, 100 steps of random 0/1 sensor input, no output noise: |dy| between the
fixed-point network and the float64 reference for the OpenES initial mean and for the committed
trained T-maze genome; for the latter also float32 vs float64 (its sensitivity to precision).
"""
import numpy as np

from edge_evo.kernels.enu import A_ONE
from edge_evo.kernels.enu_net_q import enu_net_run_q, quantize_enu_net
from edge_evo.models.enu_net import ENUNetSpec, enu_net_run
from edge_evo.strategies.openes import OpenES


def main():
    spec = ENUNetSpec.tmaze(channels=4, memory=8)
    xs = (np.random.default_rng(1).random((100, 4, 4, 4)) < 0.3).astype(np.float64)
    genomes = {"OpenES initial mean": OpenES(spec, "paper", mode="float32", population=2).init(0).arrays["mean"],
               "trained T-maze (enu_tmaze2_c4h8)":
                   np.load("benchmarks/results/enu_tmaze2_c4h8.npz", allow_pickle=False)["genome"].astype(np.float32)}
    print("| genome | compare | max abs dy | mean abs dy | mean abs dy at steps 5 / 10 / 50 / 99 |")
    print("|---|---|---|---|---|")
    for name, g in genomes.items():
        r64 = enu_net_run(spec, g[None], xs[:, None], dtype=np.float64)[0][:, 0]
        pairs = {"fixed point vs float64": enu_net_run_q(spec, quantize_enu_net(spec, g), xs) / A_ONE,
                 "float32 vs float64": enu_net_run(spec, g[None], xs[:, None], dtype=np.float32)[0][:, 0]}
        for cmp, y in pairs.items():
            d = np.abs(y - r64)
            steps = " / ".join(f"{d[t].mean():.2g}" for t in (5, 10, 50, 99))
            print(f"| {name} | {cmp} | {d.max():.3g} | {d.mean():.3g} | {steps} |")


if __name__ == "__main__":
    main()
