"""Organism networks (seed 003) trained without gradients: float addition and 15x15 MNIST.

Addition: organism 2-3-1 (linear), every edge a 5-2-1 particle; goal (Definition 8) = every particle
an eps-fixpoint (1e-5) and mean |error| <= 1e-3 on 1,000 test pairs. MNIST: 28x28 resized to 15x15 by
area averaging, organism 225-10-10 (relu; ``--dims 225,5,5,5,10`` is the seed's shape), 5 task ES
steps : 1 self-replication step. Then the specialist analysis (drop the self-replicators vs l1
pruning at equal sparsity, test accuracy) and the int8 export of the pruned extracted MLP (C and
integer ONNX; the ONNX graph is run in onnxruntime against the kernels). Prints tables and the command.

    python benchmarks/bench_organism.py                     # both tasks, ~8 minutes
    python benchmarks/bench_organism.py --task mnist --seconds 420
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from edge_evo.models.organism import (  # noqa: E402
    OrganismSpec, classify_fixpoints, count_classes, dropout_table, extract_weights, forward,
    forward_weights, self_replication_error, specialists, to_mlp)
from edge_evo.strategies.organism_es import (  # noqa: E402
    OrganismES, OrganismESParams, accuracy, addition_data, mse_loss, resize_area, xent_loss)

DATA = os.environ.get("EDGE_EVO_DATA", os.path.join(os.path.dirname(ROOT), "shared", "data"))


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=("addition", "mnist", "all"), default="all")
    ap.add_argument("--seconds", type=float, default=360, help="MNIST training budget")
    ap.add_argument("--add-rounds", type=int, default=6000, help="addition: max rounds")
    ap.add_argument("--dims", default="225,10,10")
    ap.add_argument("--population", type=int, default=64)
    ap.add_argument("--task-params", choices=("aux", "all"), default="aux")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="folder for the exported C / ONNX files (default: temp)")
    return ap.parse_args(argv)


def table(rows, cols):
    w = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    print("  ".join(c.ljust(x) for c, x in zip(cols, w)))
    for r in rows:
        print("  ".join(str(r[c]).ljust(x) for c, x in zip(cols, w)))


def run_addition(a):
    spec = OrganismSpec((2, 3, 1), activation="linear")
    X, y = addition_data(256, a.seed)
    Xt, yt = addition_data(1000, a.seed + 1)
    p = OrganismESParams(population=32, sigma=0.05, sigma_decay=0.998, sigma_min=1e-5, lr=0.02, lr_decay=0.998,
                         lr_min=1e-6, sr_steps=25, task_steps=1, task_params=a.task_params)
    es = OrganismES(spec, p, seed=a.seed)
    loss = mse_loss(spec, X, y)
    t0, rows, done = time.perf_counter(), [], False
    while es.step < a.add_rounds and not done:
        es.run(loss, rounds=250, every=250)
        w = es.weights()
        err = np.abs(forward_weights(spec, w, Xt) - yt)
        cls = count_classes(classify_fixpoints(spec.particle, es.particles))
        sr = float(self_replication_error(spec.particle, es.particles).max())
        done = cls["identity"] == spec.n_edges and err.mean() <= 1e-3
        rows.append({"round": es.step, "test MAE": f"{err.mean():.2e}", "test max err": f"{err.max():.2e}",
                     "max SR err": f"{sr:.1e}", "fixpoints": f"{cls['identity']}/{spec.n_edges}",
                     "zero/other/div": f"{cls['zero']}/{cls['other']}/{cls['divergent']}",
                     "time s": f"{time.perf_counter() - t0:.0f}"})
    print(f"\n== float addition: organism {spec.dims}, particles {spec.particle.dims}, "
          f"{spec.n_params} parameters, OpenES P={p.population} (task_params={p.task_params}) + "
          f"{p.sr_steps} SR steps per task step")
    table(rows, list(rows[0]))
    lit = forward(spec, es.particles, Xt)
    print(f"literal organism forward vs extracted MLP: max |diff| {np.abs(lit - forward_weights(spec, es.weights(), Xt)).max():.1e}")
    print(f"goal (all eps-fixpoints at 1e-5 and MAE <= 1e-3): {'REACHED' if done else 'NOT reached'}")
    return done


def run_mnist(a):
    from edge_evo.export import export
    from edge_evo.importers.quantize import quantize_model
    from edge_evo.models.forward import forward as mlp_forward
    from edge_evo.models.mlp import Population
    from edge_evo.fixedpoint.ops import quantize_input_u8
    from edge_evo.tasks import load_mnist
    Xtr, ytr = load_mnist("mnist", "train", path=DATA)
    Xte, yte = load_mnist("mnist", "test", path=DATA)
    # 15x15 pixels kept as uint8 so the trained organism and the exported int8 model see the same input
    Ptr = np.rint(resize_area(Xtr)).astype(np.uint8)
    Pte = np.rint(resize_area(Xte)).astype(np.uint8)
    Ftr, Fte = Ptr.astype(np.float32) / 255, Pte.astype(np.float32) / 255
    dims = tuple(int(d) for d in a.dims.split(","))
    spec = OrganismSpec(dims, activation="relu")
    p = OrganismESParams(population=a.population, sigma=0.05, lr=0.02, sr_steps=1, task_steps=5,
                         task_params=a.task_params)
    es = OrganismES(spec, p, seed=a.seed)
    rows = []

    def cb(es, info):
        c = count_classes(classify_fixpoints(spec.particle, es.particles))
        rows.append({"round": info["round"], "task steps": es.step, "batch xent": f"{info['loss_mean']:.3f}",
                     "test acc (2k)": f"{accuracy(spec, es.weights(), Fte[:2000], yte[:2000]):.3f}",
                     "PN_SR": c["identity"], "zero": c["zero"], "other": c["other"],
                     "time s": f"{info['time_s']:.0f}"})
    es.run(xent_loss(spec, Ftr, ytr, batch=256, seed=a.seed), seconds=a.seconds, callback=cb, every=100)
    w = extract_weights(spec, es.particles)
    acc = accuracy(spec, w, Fte, yte)
    print(f"\n== MNIST 15x15: organism {spec.dims} ({spec.activation}), {spec.n_edges} particles "
          f"{spec.particle.dims}, {spec.n_params} parameters, OpenES P={p.population} "
          f"(task_params={p.task_params}), {p.task_steps} task : {p.sr_steps} SR steps, {a.seconds:.0f} s")
    table(rows, list(rows[0]))
    print(f"test accuracy (10,000, float, extracted weights): {100 * acc:.2f} %")

    score = lambda ww: 100 * accuracy(spec, ww, Fte, yte)  # noqa: E731
    drows = dropout_table(spec, es.particles, score)
    for r in drows:
        r["test acc %"] = f"{r['score']:.2f}"
        r["sparsity %"] = f"{100 * r['sparsity']:.1f}"
    print("\n-- specialist dropout vs l1 pruning (test accuracy)")
    table(drows, ["variant", "dropped", "sparsity %", "test acc %"])
    cost_sr = drows[0]["score"] - drows[1]["score"]
    cost_l1 = drows[0]["score"] - drows[2]["score"]
    print(f"dropping PN_SR costs {cost_sr:.2f} points, l1 at the same sparsity {cost_l1:.2f} points")

    # int8 export of the pruned extracted MLP
    keep = ~specialists(spec, es.particles)
    fspec, fgenome = to_mlp(spec, es.particles, keep)
    qspec, qgenome, rep = quantize_model(fspec, fgenome, calib_X=Ptr[:2000], calib_y=ytr[:2000],
                                         eval_X=Pte, eval_y=yte, input="uint8")
    out = a.out or tempfile.mkdtemp(prefix="organism_")
    onnx_path = export((qspec, qgenome), os.path.join(out, "organism_pruned"), to="onnx", integer=True, input="uint8")
    h = export((qspec, qgenome), os.path.join(out, "c"), to="c", measure=False, name="organism")
    import onnxruntime as ort
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    logits = sess.run(None, {sess.get_inputs()[0].name: Pte})[0]
    ref = mlp_forward(Population.from_flat(qspec, qgenome), quantize_input_u8(Pte), engine="numba")[0]
    nz = int(np.count_nonzero(qgenome))
    print(f"\n-- int8 export of the pruned organism ({int((~keep).sum())} PN_SR edges dropped; "
          f"{nz}/{qgenome.size} non-zero int8 parameters)")
    print(f"float (pruned) {100 * rep['float_accuracy']:.2f} %, int8 kernels {100 * rep['int8_accuracy']:.2f} %, "
          f"onnxruntime integer graph == kernels: {bool(np.array_equal(logits, ref))} "
          f"(acc {100 * float(np.mean(logits.argmax(1) == yte)):.2f} %)")
    print(f"files: {onnx_path}, {h}")
    return acc, cost_sr, cost_l1


def main(argv=None):
    a = parse(argv)
    t0 = time.perf_counter()
    if a.task in ("addition", "all"):
        run_addition(a)
    if a.task in ("mnist", "all"):
        run_mnist(a)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    print("command: python " + " ".join(shlex.quote(x) for x in [os.path.relpath(__file__, ROOT)] + sys.argv[1:]))


if __name__ == "__main__":
    main()
