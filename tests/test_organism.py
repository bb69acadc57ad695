"""Organism networks (seed 003): particles, fixpoint classes, organism forward, ES training,
specialist pruning and int8 export (ONNX integer graph vs the kernels)."""
import numpy as np
import pytest

from edge_evo.models.organism import (
    DIVERGENT, IDENTITY, OTHER, ZERO, OrganismSpec, ParticleSpec, classify_fixpoints, dropout_table,
    effective_vector, extract_weights, forward, forward_weights, is_fixpoint, l1_keep, particle_apply,
    self_apply, self_replication_error, specialists, to_mlp, weightwise_apply, weightwise_inputs)
from edge_evo.strategies.organism_es import (
    OrganismES, OrganismESParams, addition_data, mse_loss, resize_area)

PS = ParticleSpec((2,))


def identity_particle(a=0.3, b=-0.7, c=0.5):
    """W1 = [[1,0,0,0,a],[0,0,0,0,b]], W2 = [1, c]: v = (1, 0, 0, 0, a + c b), a self-replicator."""
    return np.array([1, 0, 0, 0, a, 0, 0, 0, 0, b, 1, c], dtype=np.float64)


def test_positions_normalised_and_weightwise_inputs():
    pos = PS.positions()
    assert pos.shape == (12, 3) and pos.max(axis=0).tolist() == [1, 1, 1]
    # weight 9 = W1[1, 4]: layer 0, cell 1, edge 4 (of max 4); weight 11 = W2[0, 1]
    np.testing.assert_allclose(pos[9], [0, 1, 1])
    np.testing.assert_allclose(pos[11], [1, 0, 0.25])
    w = np.arange(12.0)
    inp = weightwise_inputs(PS, w)
    np.testing.assert_array_equal(inp[:, 0], w)
    np.testing.assert_array_equal(inp[:, 4], 0)


def test_weightwise_application_is_the_particle_on_each_weight():
    rng = np.random.default_rng(0)
    N, M = rng.normal(size=12), rng.normal(size=12)
    W1, W2 = N[:10].reshape(2, 5), N[10:].reshape(1, 2)
    pos = PS.positions()
    ref = [(W2 @ (W1 @ np.array([M[i], *pos[i], 0.0])))[0] for i in range(12)]
    np.testing.assert_allclose(weightwise_apply(PS, N, M), ref, rtol=1e-12)
    np.testing.assert_allclose(self_apply(PS, N), weightwise_apply(PS, N, N))
    # the fast error path equals the literal self-application
    np.testing.assert_allclose(self_replication_error(PS, N), np.abs(self_apply(PS, N) - N).max(), rtol=1e-12)


def test_fixpoint_classes():
    ident = identity_particle()
    np.testing.assert_allclose(self_apply(PS, ident), ident, atol=1e-15)
    near = ident.copy()
    near[1] = 2e-6                      # v1 = 2e-6 * 1: each output moves by <= 2e-6
    far = ident.copy()
    far[1] = 1e-3
    zero = np.full(12, 1e-7)
    nan = ident.copy()
    nan[3] = np.nan
    rnd = np.random.default_rng(1).normal(size=12)
    P = np.stack([ident, near, far, zero, nan, rnd])
    assert classify_fixpoints(PS, P).tolist() == [IDENTITY, IDENTITY, OTHER, ZERO, DIVERGENT, OTHER]
    assert is_fixpoint(PS, P).tolist() == [True, True, False, True, False, False]
    assert classify_fixpoints(PS, near[None], eps=1e-6).tolist() == [OTHER]


def test_deeper_particle_effective_vector_matches_literal_forward():
    ps = ParticleSpec((3, 2))
    P = ps.init(4, rng_seed=2)
    a = np.random.default_rng(2).normal(size=(4, 7, 5))
    np.testing.assert_allclose(particle_apply(ps, P, a), np.einsum("pbk,pk->pb", a, effective_vector(ps, P)),
                               rtol=1e-12)


def test_organism_forward_literal_equals_extracted_mlp():
    spec = OrganismSpec((6, 4, 3, 2), activation="relu")
    P = spec.init(3)
    X = np.random.default_rng(3).normal(size=(5, 6))
    w = extract_weights(spec, P)
    # the extracted weight is the particle's answer to (0, 0, 0, 0, 1)
    e = np.zeros((spec.n_edges, 1, 5))
    e[..., 4] = 1
    np.testing.assert_allclose(w, particle_apply(spec.particle, P, e)[:, 0], rtol=1e-12)
    np.testing.assert_allclose(forward(spec, P, X), forward_weights(spec, w, X), rtol=1e-10, atol=1e-12)
    pop = np.stack([w, -w, 2 * w])
    out = forward_weights(spec, pop, X)
    for k in range(3):
        np.testing.assert_allclose(out[k], forward_weights(spec, pop[k], X), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="needs particles"):
        forward(spec, P[:-1], X)


def test_es_addition_learns_task_and_self_replication():
    spec = OrganismSpec((2, 3, 1), activation="linear")
    X, y = addition_data(128, 0)
    loss = mse_loss(spec, X, y)
    p = OrganismESParams(population=32, sigma=0.05, sigma_decay=0.995, lr=0.02, lr_decay=0.995, sr_steps=10,
                         task_params="aux")
    es = OrganismES(spec, p, seed=0)
    sr0 = self_replication_error(spec.particle, es.particles).max()
    l0 = float(loss(es.weights()[None], 0)[0])
    es.run(loss, rounds=400, every=400)
    l1 = float(loss(es.weights()[None], 0)[0])
    assert l1 < 1e-2 * l0
    assert self_replication_error(spec.particle, es.particles).max() < 1e-2 * sr0
    # bit-exact resume from the state arrays
    a = {k: v.copy() for k, v in es.state_arrays().items()}
    es.run(loss, rounds=5, every=5)
    es2 = OrganismES(spec, p, seed=0)
    es2.load_state_arrays(a)
    es2.run(loss, rounds=5, every=5)
    np.testing.assert_array_equal(es.theta, es2.theta)


def test_resize_area():
    img = np.kron(np.arange(9.0).reshape(3, 3), np.ones((10, 10))).reshape(1, 900)
    out = resize_area(img, side=15)
    assert out.shape == (1, 225)
    np.testing.assert_allclose(out.reshape(15, 15), np.kron(np.arange(9.0).reshape(3, 3), np.ones((5, 5))), atol=1e-5)
    # 28 -> 15 keeps a constant image constant and the mean of any image
    r = np.random.default_rng(0).integers(0, 256, (2, 784))
    np.testing.assert_allclose(resize_area(np.full((1, 784), 77.0)), 77.0, rtol=1e-6)
    np.testing.assert_allclose(resize_area(r).mean(1), r.mean(1), rtol=1e-5)


def test_specialists_and_l1():
    spec = OrganismSpec((3, 2), activation="linear")
    P = np.stack([identity_particle(a=0.1 * k) for k in range(spec.n_edges)])
    P[0, 1] = 0.5                              # breaks self-replication of edge 0 only
    assert specialists(spec, P).tolist() == [False] + [True] * 5
    assert l1_keep(np.array([0.3, -0.1, 0.0, 2.0]), 2).tolist() == [True, False, False, True]
    rows = dropout_table(spec, P, lambda w: float(np.abs(w).sum()))
    assert rows[1]["variant"] == "drop PN_SR" and rows[1]["dropped"] == 5


def test_pruned_export_int8_onnx_matches_kernels(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from edge_evo.export import export
    from edge_evo.fixedpoint.ops import quantize_input_u8
    from edge_evo.importers.quantize import quantize_model
    from edge_evo.models.forward import forward as mlp_forward
    from edge_evo.models.mlp import Population
    spec = OrganismSpec((16, 8, 4), activation="relu")
    P = spec.init(5)
    w = extract_weights(spec, P)
    keep = l1_keep(w, spec.n_edges // 3)
    fspec, fgenome = to_mlp(spec, P, keep)
    rng = np.random.default_rng(5)
    pix = rng.integers(0, 256, (64, 16)).astype(np.uint8)
    qspec, qgenome, rep = quantize_model(fspec, fgenome, calib_X=pix, input="uint8")
    # pruned positions stay exactly zero in the int8 weights, biases are zero
    off = qspec.offsets()
    Wq = np.concatenate([qgenome[off["W1"]:off["W1"] + 128], qgenome[off["W2"]:off["W2"] + 32]])
    assert np.all(Wq[~keep] == 0)
    assert np.all(qgenome[off["b1"]:off["b1"] + 8] == 0) and np.all(qgenome[off["b2"]:off["b2"] + 4] == 0)
    path = export((qspec, qgenome), tmp_path / "organism", to="onnx", integer=True, input="uint8")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = sess.run(None, {sess.get_inputs()[0].name: pix})[0]
    ref = mlp_forward(Population.from_flat(qspec, qgenome), quantize_input_u8(pix), engine="numba")[0]
    np.testing.assert_array_equal(logits, ref)
    h = export((qspec, qgenome), tmp_path / "c", to="c", measure=False)
    assert h.exists() and h.with_suffix(".c").exists()


# ----------------------------------------------------------------------------- activity gate, 'path'
def test_edge_activity_counts_nonzero_inputs_per_edge():
    from edge_evo.models.organism import edge_activity
    spec = OrganismSpec((3, 2, 2), activation="relu")
    X = np.array([[0.0, 1.0, 0.5], [0.0, 0.0, 2.0]])
    w = np.zeros(spec.n_edges)
    w[:6] = [1, 0, 0, -1, 0, 0]            # hidden 0 = relu(x0) = 0, hidden 1 = relu(-x0) = 0
    a = edge_activity(spec, w, X)
    np.testing.assert_allclose(a[:6], [0, 0.5, 1, 0, 0.5, 1])   # edge (c, e) reads input e
    np.testing.assert_allclose(a[6:], 0)                         # both hidden units silent
    with pytest.raises(ValueError, match="one genome"):
        edge_activity(spec, np.zeros((2, spec.n_edges)), X)


def test_task_gate_freezes_silent_particles_and_path_mask():
    from edge_evo.strategies.organism_es import xent_loss
    spec = OrganismSpec((4, 3), activation="linear")
    rng = np.random.default_rng(0)
    X = rng.random((64, 4)).astype(np.float32)
    X[:, 0] = 0                                 # input 0 never fires: its 3 particles have no task signal
    y = rng.integers(0, 3, 64)
    loss = xent_loss(spec, X, y, batch=32, seed=0)
    p = OrganismESParams(population=8, sigma=0.05, lr=0.05, sr_steps=0, task_params="path", task_gate=0.0)
    es = OrganismES(spec, p, seed=1)
    P0 = es.particles.copy()
    for _ in range(5):
        info = es.task_step(loss)
    moved = np.any(es.particles != P0, axis=1)
    silent = np.arange(spec.n_edges) % 4 == 0
    assert not moved[silent].any() and moved[~silent].all()
    assert info["live_frac"] == pytest.approx(9 / 12)             # fraction of particles that took part
    # 'path' moves the aux column of W1 and W2, never W1[:, :4]
    d = es.particles != P0
    assert not d[:, [0, 1, 2, 3, 5, 6, 7, 8]].any() and d[~silent][:, [4, 9, 10, 11]].all()
    with pytest.raises(ValueError, match="activity"):
        OrganismES(spec, p, seed=1).task_step(lambda w, s: np.zeros(len(w)))
    with pytest.raises(ValueError, match="task_gate"):
        OrganismESParams(task_gate=1.5)


# ----------------------------------------------------------------------------- integer mode
def test_int_self_replication_exact_and_repair():
    from edge_evo.models.organism_int import (dequantize_particles, int_self_apply, int_sr_error,
                                              int_sr_repair, quantize_particles)
    ident = identity_particle()
    for bits, frac in ((8, 6), (16, 14)):
        q, f = quantize_particles(ident, bits)
        assert f == frac and int_sr_error(PS, q, f, bits) == 0     # weights 0 / 1: exact integer fixpoint
        np.testing.assert_array_equal(int_self_apply(PS, q, f, bits), q)
    # a float 1e-5 fixpoint with structure weights off 0 / 1 loses the float fixpoint property at
    # int8, and the integer SR search brings it back to an exact integer fixpoint
    rng = np.random.default_rng(3)
    P = []
    for _ in range(20):
        w2 = np.array([rng.uniform(0.9, 1.5), rng.uniform(-0.5, 0.5)])
        W1 = rng.uniform(-0.5, 0.5, (2, 5))
        W1[0, :4] = (np.array([1.0, 0, 0, 0]) - w2[1] * W1[1, :4]) / w2[0]   # v[:4] = (1, 0, 0, 0)
        P.append(np.concatenate([W1.ravel(), w2]))
    P = np.array(P)
    assert np.all(self_replication_error(PS, P) < 1e-12)
    q, f = quantize_particles(P, 8)
    assert np.median(self_replication_error(PS, dequantize_particles(q, f))) > 1e-3
    e0 = int_sr_error(PS, q, f, 8)
    qr = int_sr_repair(PS, q, f, 8, steps=300, seed=0)
    e1 = int_sr_error(PS, qr, f, 8)
    assert e0.max() > 0 and np.all(e1 <= e0) and np.mean(e1 == 0) >= 0.9
    np.testing.assert_array_equal(qr, int_sr_repair(PS, q, f, 8, steps=300, seed=0))   # deterministic


def test_int_forward_matches_float_twin():
    from edge_evo.models.organism_int import (calibrate_act_fracs, int_forward, int_forward_float,
                                              quantize_particles)
    spec = OrganismSpec((16, 8, 4), activation="relu")
    P = spec.init(1)
    rng = np.random.default_rng(4)
    Xq = rng.integers(0, 128, (300, 16))
    X = Xq / 128.0
    fr = calibrate_act_fracs(spec, P, X, bits=16, x_frac=7)
    for bits in (8, 16):
        q, f = quantize_particles(P, bits)
        zi = int_forward(spec, q, f, Xq, fr, bits=bits, chunk=128)
        assert zi.dtype == np.int64
        zf = int_forward_float(spec, q, f, X)
        # stated tolerance: 1e-3 of the logit range (measured ~1e-4), argmax agreement >= 98 %
        assert np.abs(zi * 2.0 ** -fr[-1] - zf).max() <= 1e-3 * np.abs(zf).max()
        assert np.mean(zi.argmax(1) == zf.argmax(1)) >= 0.98
    # the particles' own literal float forward (the organism of Definition 7) is the float twin's reference
    np.testing.assert_allclose(forward(spec, P, X), int_forward_float(spec, *quantize_particles(P, 16), X),
                               atol=2e-3 * np.abs(forward(spec, P, X)).max())
    with pytest.raises(ValueError, match="act_fracs"):
        int_forward(spec, q, f, Xq, fr[:-1])
