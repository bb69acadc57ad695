"""EMNS on y = sin(x1) + 0.5 cos(x2) with the integer kernels (seed 000's regression demo).

    python examples/emns_regression.py [--variant select|population|paper] [--steps 2000] [--grow]

``--grow`` starts from a 2-4-2-1 network that may grow to 2-12-6-1 on stagnation and prunes
near-zero connections; growth/pruning events are printed as they happen.
"""
import argparse

import numpy as np

from edge_evo.models.emns import EMNSSpec
from edge_evo.strategies.emns import EMNS, fit

ap = argparse.ArgumentParser()
ap.add_argument("--variant", default="select", choices=("paper", "select", "population"))
ap.add_argument("--steps", type=int, default=2000)
ap.add_argument("--mode", default="int8", choices=("int8", "float32"))
ap.add_argument("--grow", action="store_true")
a = ap.parse_args()

r = np.random.default_rng(0)
X = r.uniform(-2, 2, (200, 2))
Y = np.sin(X[:, 0]) + 0.5 * np.cos(X[:, 1])
if a.grow:
    spec = EMNSSpec((2, 4, 2, 1), max_dims=(2, 12, 6, 1), max_connections=120)
    extra = dict(grow_patience=100, prune_eps=0.01, prune_steps=200, form_rate=0.05)
else:
    spec, extra = EMNSSpec((2, 8, 4, 1)), {}
s = EMNS(spec, a.variant, mode=a.mode, **extra)


def report(st):
    if st.scalars["events"]:
        print(f"step {st.generation}: {st.scalars['events']}")
    if st.generation % 250 == 0:
        print(f"step {st.generation}: mse {-st.scalars['perf']:.4f}  mu {s.mu(st):.4f}  "
              f"dims {spec.active_dims(st.arrays['nmask'])}")


st = fit(s, X, Y, a.steps, seed=0, callback=report)
print(f"final train MSE {-st.scalars['perf']:.4f} (var y {Y.var():.3f}); grown {st.scalars['n_grow']}, "
      f"formed {st.scalars['n_form']}, pruned {st.scalars['n_prune']}, refused {st.scalars['n_refused']}")
