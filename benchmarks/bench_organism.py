"""Organism networks (seed 003) trained without gradients: float addition and 15x15 MNIST.

Addition: organism 2-3-1 (linear), every edge a 5-2-1 particle; goal (Definition 8) = every particle
an eps-fixpoint (1e-5) and mean |error| <= 1e-3 on 1,000 test pairs. MNIST: 28x28 resized to 15x15 by
area averaging, organism 225-10-10 (relu; ``--dims 225,5,5,5,10`` is the seed's shape), 5 task ES
steps : 1 self-replication step. Then the specialist analysis (drop the self-replicators vs l1
pruning at equal sparsity, test accuracy) and the int8 export of the pruned extracted MLP (C and
integer ONNX; the ONNX graph is run in onnxruntime against the kernels). Prints tables and the command.

Then the integer mode: self-replication of the particles after quantising them to int8 / int16
(float 1e-5 test, exact integer fixpoints, the integer SR repair) and the literal integer organism
forward (accuracy, agreement with its float twin).

    python benchmarks/bench_organism.py                     # both tasks, ~8 minutes
    python benchmarks/bench_organism.py --task mnist --seconds 420
    # specialist dropout (docs/organism.md): 'path' task coordinates + activity gate
    python benchmarks/bench_organism.py --task mnist --seconds 330 --task-params path --gate 0.02 \
        --lr-decay 0.9995 --sr-steps 5 --save organism.npz
    python benchmarks/bench_organism.py --task mnist --load organism.npz --task-params path --gate 0.02
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
    OrganismSpec, aux_output, classify_fixpoints, count_classes, dropout_table, edge_activity, extract_weights, forward,
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
    ap.add_argument("--task-params", choices=("aux", "all", "path"), default="aux",
                    help="MNIST task-step coordinates: aux column only, every weight, or the aux path")
    ap.add_argument("--gate", type=float, default=None,
                    help="MNIST task_gate: particles whose input fires in <= this fraction of the batch sit out")
    ap.add_argument("--sr-steps", type=int, default=1, help="MNIST: SR steps per round")
    ap.add_argument("--task-steps", type=int, default=5, help="MNIST: task steps per round")
    ap.add_argument("--lr", type=float, default=0.02, help="MNIST task lr (Adam)")
    ap.add_argument("--lr-decay", type=float, default=1.0, help="MNIST: lr factor per task step (floor 1e-5)")
    ap.add_argument("--save", default=None, help="MNIST: write the trained particles to this .npz")
    ap.add_argument("--load", default=None, help="MNIST: skip training, analyse the particles in this .npz")
    ap.add_argument("--no-int", action="store_true", help="skip the integer-mode section")
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
    if not a.no_int:
        int_mode_addition(spec, es.particles, Xt, yt)
    return done


def int_mode_addition(spec, particles, Xt, yt):
    """Integer mode of the addition organism: SR at int8/int16 and the integer forward's error."""
    from edge_evo.models.organism_int import calibrate_act_fracs, int_forward, int_sr_repair, quantize_particles
    print("\n-- integer mode: self-replication after quantising the particles")
    rows = int_sr_rows(spec, particles, np.ones(spec.n_edges, dtype=bool), "all")
    table(rows, list(rows[0]))
    frows = []
    for bits in (8, 16):
        q, f = quantize_particles(particles, bits)
        fr = calibrate_act_fracs(spec, particles, Xt, bits=16, x_frac=14)   # int16 inputs in Q14
        Xq = np.floor(Xt * 2.0 ** 14 + 0.5).astype(np.int64)
        for name, qq in (("as quantised", q), ("after int SR repair", int_sr_repair(spec.particle, q, f, bits,
                                                                                  steps=300, seed=1))):
            err = np.abs(int_forward(spec, qq, f, Xq, fr, bits=bits) * 2.0 ** -fr[-1] - yt)
            frows.append({"particles": f"int{bits} Q{f} {name}", "act formats": str(fr),
                          "test MAE": f"{err.mean():.1e}", "test max err": f"{err.max():.1e}"})
    print("-- integer organism forward on the 1,000 test pairs (int16 activations)")
    table(frows, list(frows[0]))


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
    p = OrganismESParams(population=a.population, sigma=0.05, lr=a.lr, lr_decay=a.lr_decay, sr_steps=a.sr_steps,
                         task_steps=a.task_steps, task_params=a.task_params, task_gate=a.gate)
    es = OrganismES(spec, p, seed=a.seed)
    rows = []

    def cb(es, info):
        c = count_classes(classify_fixpoints(spec.particle, es.particles))
        rows.append({"round": info["round"], "task steps": es.step, "batch xent": f"{info['loss_mean']:.3f}",
                     "test acc (2k)": f"{accuracy(spec, es.weights(), Fte[:2000], yte[:2000]):.3f}",
                     "PN_SR": c["identity"], "zero": c["zero"], "other": c["other"],
                     "live": f"{info.get('live_frac', 1.0):.2f}",
                     "time s": f"{info['time_s']:.0f}"})
    if a.load:
        with np.load(a.load, allow_pickle=False) as z:
            es.load_state_arrays({k: z[k] for k in z.files})
        print(f"loaded {a.load}: {es.step} task steps, {es.sr_step_count} SR steps (no training)")
    else:
        es.run(xent_loss(spec, Ftr, ytr, batch=256, seed=a.seed), seconds=a.seconds, callback=cb, every=100)
    if a.save:
        np.savez(a.save, **es.state_arrays())
    w = extract_weights(spec, es.particles)
    acc = accuracy(spec, w, Fte, yte)
    print(f"\n== MNIST 15x15: organism {spec.dims} ({spec.activation}), {spec.n_edges} particles "
          f"{spec.particle.dims}, {spec.n_params} parameters, OpenES P={p.population} "
          f"(task_params={p.task_params}, task_gate={p.task_gate}, lr={p.lr} x {p.lr_decay}/step), {p.task_steps} task : "
          f"{p.sr_steps} SR steps, {a.seconds:.0f} s")
    if rows:
        table(rows, list(rows[0]))
    print(f"test accuracy (10,000, float, extracted weights): {100 * acc:.2f} %")

    score = lambda ww: 100 * accuracy(spec, ww, Fte, yte)  # noqa: E731
    drows = dropout_table(spec, es.particles, score)
    # a third baseline: drop the particles whose input fires least often on the training set
    sr = specialists(spec, es.particles)
    rate = edge_activity(spec, w, Ftr)
    k = int(sr.sum())
    drop_rate = np.zeros(spec.n_edges, dtype=bool)
    drop_rate[np.argsort(rate, kind="stable")[:k]] = True
    drows.insert(3, {"variant": "input-activity pruning, same sparsity as drop PN_SR", "dropped": k,
                     "score": score(np.where(drop_rate, 0.0, w)), "sparsity": k / spec.n_edges})
    lay = spec.edge_layer()
    print(f"PN_SR per layer: {[int(sr[lay == l].sum()) for l in range(spec.n_layers)]} of {spec.layer_sizes}; "
          f"PN_SR input firing rate on the training set: median {np.median(rate[sr]) if k else float('nan'):.4f}, "
          f"max {rate[sr].max() if k else float('nan'):.4f} (PN_F median {np.median(rate[~sr]):.4f}); "
          f"PN_SR also among the {k} least-firing: {int((sr & drop_rate).sum())}")
    for r in drows:
        r["test acc %"] = f"{r['score']:.2f}"
        r["sparsity %"] = f"{100 * r['sparsity']:.1f}"
    print("\n-- specialist dropout vs l1 pruning (test accuracy)")
    table(drows, ["variant", "dropped", "sparsity %", "test acc %"])
    cost_sr = drows[0]["score"] - drows[1]["score"]
    cost_l1 = drows[0]["score"] - drows[2]["score"]
    print(f"dropping PN_SR costs {cost_sr:.2f} points, l1 at the same sparsity {cost_l1:.2f} points")

    if not a.no_int:
        int_mode_mnist(spec, es.particles, sr, Ftr, Pte, Fte, yte)

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


def int_sr_rows(spec, particles, sel, name):
    """Self-replication of the particles ``sel`` after quantisation to int8 / int16 weights."""
    from edge_evo.models.organism_int import (dequantize_particles, int_sr_error, int_sr_repair,
                                              quantize_particles)
    ps, rows = spec.particle, []
    P = particles[sel]
    for bits in (8, 16):
        q, f = quantize_particles(P, bits)
        fe = self_replication_error(ps, dequantize_particles(q, f))
        ie = int_sr_error(ps, q, f, bits)
        t0 = time.perf_counter()
        qr = int_sr_repair(ps, q, f, bits, steps=300, seed=1)
        t_rep = time.perf_counter() - t0
        ier = int_sr_error(ps, qr, f, bits)
        # the repair may move the weight the particle applies: PN(0, 0, 0, 0, 1) before / after
        dw = np.abs(aux_output(ps, dequantize_particles(qr, f)) - aux_output(ps, dequantize_particles(q, f)))
        rows.append({"particles": f"{name} ({len(P)})", "weights": f"int{bits} Q{f} (LSB {2.0 ** -f:.1e})",
                     "float SR err of dequantised: median / max": f"{np.median(fe):.1e} / {fe.max():.1e}",
                     "float 1e-5 fixpoints": int(np.sum(fe < 1e-5)),
                     "exact int fixpoints": int(np.sum(ie == 0)),
                     "int SR err LSB: max": int(ie.max()),
                     "after int SR repair (300 steps)": f"{int(np.sum(ier == 0))} exact, max {int(ier.max())} LSB, "
                                                        f"{t_rep:.1f} s",
                     "|d extracted w| max": f"{dw.max():.1e}"})
    return rows


def int_mode_mnist(spec, particles, sr, Ftr, Pte, Fte, yte):
    """Integer mode: self-replication at int8/int16 resolution, integer organism forward accuracy."""
    from edge_evo.fixedpoint.ops import quantize_input_u8
    from edge_evo.models.organism_int import (calibrate_act_fracs, int_forward, int_forward_float,
                                              quantize_particles)
    print("\n-- integer mode: self-replication after quantising the particles (PN_SR = float 1e-5 fixpoints)")
    rows = int_sr_rows(spec, particles, sr, "PN_SR") if sr.any() else []
    if rows:
        table(rows, list(rows[0]))
    print("\n-- integer mode: literal organism forward with integer particles (int16 activations, Q7 pixels)")
    Xq = quantize_input_u8(Pte).astype(np.int64)
    frows = []
    for bits in (8, 16):
        q, f = quantize_particles(particles, bits)
        fr = calibrate_act_fracs(spec, particles, Ftr[:2000], bits=16, x_frac=7)
        t0 = time.perf_counter()
        zi = int_forward(spec, q, f, Xq, fr, bits=bits)
        t_int = time.perf_counter() - t0
        zf = int_forward_float(spec, q, f, Xq / 128.0)
        zd = zi * 2.0 ** -fr[-1]
        frows.append({"particles": f"int{bits} Q{f}", "act formats": str(fr),
                      "test acc %": f"{100 * np.mean(zi.argmax(1) == yte):.2f}",
                      "float twin acc %": f"{100 * np.mean(zf.argmax(1) == yte):.2f}",
                      "max |int - float twin| / max|logit|": f"{np.abs(zd - zf).max() / np.abs(zf).max():.1e}",
                      "argmax agree %": f"{100 * np.mean(zi.argmax(1) == zf.argmax(1)):.2f}",
                      "time s": f"{t_int:.1f}"})
    acc_f = 100 * accuracy(spec, extract_weights(spec, particles), Fte, yte)
    table(frows, list(frows[0]))
    print(f"float organism (unquantised particles): {acc_f:.2f} %")


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
