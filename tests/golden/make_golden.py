"""Regenerate the golden vectors of the numerics contract (tests/golden/core_v1.npz).

Run ONLY when the contract version changes on purpose:  python tests/golden/make_golden.py
Every backend (Numba kernels, C runtime, integer ONNX graph) is checked against this file.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

from edge_evo import rng, NUMERICS_CONTRACT  # noqa: E402
from edge_evo.fixedpoint import rshift_round, requantize, make_lut, LUT_FUNCTIONS  # noqa: E402
from edge_evo.models.mlp import MLPSpec, Population  # noqa: E402
from edge_evo.models.forward import forward  # noqa: E402

KEY_TRIPLES = [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (42, 7, 199), (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF),
               (12345, 600, 0x80000001)]


def build() -> dict[str, np.ndarray]:
    g: dict[str, np.ndarray] = {}
    g["rng/key_triples"] = np.array(KEY_TRIPLES, dtype=np.uint32)
    g["rng/keys"] = np.array([rng.py_key(*t) for t in KEY_TRIPLES], dtype=np.uint32)
    idx = np.concatenate([np.arange(64), [1000, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1]]).astype(np.uint64)
    g["rng/index"] = idx.astype(np.uint32)
    g["rng/u32"] = np.array([[rng.py_u32(int(k), int(i)) for i in idx] for k in g["rng/keys"]], dtype=np.uint32)
    g["rng/gauss"] = np.array([[rng.py_gauss(int(h)) for h in row] for row in g["rng/u32"]], dtype=np.int32)
    mults = [0, 1, 2838, 65536, (1 << 22) - 1]
    g["rng/gauss_mult"] = np.array(mults, dtype=np.int32)
    g["rng/gauss_scaled"] = np.array([[rng.py_gauss_scaled(int(h), m) for h in g["rng/u32"][4]] for m in mults], dtype=np.int32)
    ns = [1, 2, 10, 255, 1000, 2 ** 31]
    g["rng/bounded_n"] = np.array(ns, dtype=np.uint32)
    g["rng/bounded"] = np.array([[rng.py_bounded(int(h), n) for h in g["rng/u32"][4]] for n in ns], dtype=np.uint32)

    acc = np.array([0, 1, -1, 2, -2, 3, -3, 127, 128, 129, -128, -129, 255, 256, -256, 383, 384, -384, -385,
                    2 ** 20 + 2 ** 7, -(2 ** 20) - 2 ** 7, 2 ** 31 - 1 - 256, -(2 ** 31) + 256, 40000, -40000], dtype=np.int64)
    g["fx/acc"] = acc
    for s in (0, 1, 2, 8, 13):
        g[f"fx/rshift_round_{s}"] = rshift_round(acc, s).astype(np.int64)
        g[f"fx/requantize_{s}"] = requantize(acc, s)
    for name in LUT_FUNCTIONS:
        g[f"lut/{name}_q5_q7"] = make_lut(name, 5, 7)

    # MLP forward: two specs, genomes and inputs from the counter RNG (uniform int8)
    for tag, dims, P, B in (("small", (16, 8, 4), 3, 5), ("mnist", (784, 64, 10), 2, 4), ("deep", (12, 6, 5, 3), 2, 3)):
        spec = MLPSpec(dims)
        n = spec.n_params
        genomes = np.stack([(rng.u32_stream(2024, 0, i, n) % 255).astype(np.int64) - 127 for i in range(P)]).astype(np.int8)
        X = (rng.u32_stream(2024, 1, 0, B * dims[0]) % 128).astype(np.int8).reshape(B, dims[0])
        pop = Population.from_flat(spec, genomes)
        g[f"mlp/{tag}/dims"] = np.array(dims, dtype=np.int32)
        g[f"mlp/{tag}/genomes"] = genomes
        g[f"mlp/{tag}/X"] = X
        g[f"mlp/{tag}/logits"] = forward(pop, X, engine="numba")
    return g


def main():
    g = build()
    path = os.path.join(HERE, "core_v1.npz")
    np.savez_compressed(path, **g)
    with open(os.path.join(HERE, "core_v1.json"), "w") as f:
        json.dump({"contract": NUMERICS_CONTRACT, "arrays": sorted(g), "doc": "docs/numerics.md"}, f, indent=1)
    print(f"wrote {path} ({len(g)} arrays)")


if __name__ == "__main__":
    main()
