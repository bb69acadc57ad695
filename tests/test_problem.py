"""Problems: deterministic batches (GENREG scheme), Gumbel-max sampling, scores, accuracy."""
from __future__ import annotations

import math

import numpy as np
import pytest

from edge_evo import rng
from edge_evo.fixedpoint import quantize_input_u8
from edge_evo.models.forward import forward
from edge_evo.models.mlp import MLPSpec, Population
from edge_evo.strategies.base import PURPOSE_BATCH
from edge_evo.tasks import ClassificationProblem, RegressionProblem, get_task, gumbel_lut, shared_data_dir
from edge_evo.tasks import problem as problem_mod


def _random_pop(spec, P, seed=0, dtype=np.int8, lim=40):
    rs = np.random.default_rng(seed)
    if dtype == np.int8:
        flat = rs.integers(-lim, lim + 1, size=(P, spec.n_params)).astype(np.int8)
    else:
        flat = rs.normal(0, 0.3, size=(P, spec.n_params)).astype(np.float32)
    return Population.from_flat(spec, flat)


@pytest.fixture(scope="module")
def digits():
    return get_task("digits", samples_per_class=5)


# ------------------------------------------------------------------ batches
def _py_genreg_batch(y, n_classes, k, seed, gen):
    """Readable restatement of the batch spec with the pure-Python RNG."""
    key = rng.py_key(seed, gen, PURPOSE_BATCH)
    order = list(range(n_classes))
    for i in range(n_classes - 1, 0, -1):
        j = rng.py_bounded(rng.py_u32(key, i), i + 1)
        order[i], order[j] = order[j], order[i]
    members = [np.flatnonzero(y == c) for c in range(n_classes)]
    out = []
    for c in order:
        for _ in range(k):
            h = rng.py_u32(key, n_classes + len(out))
            out.append(int(members[c][rng.py_bounded(h, len(members[c]))]))
    return np.array(out)


def test_genreg_batch_structure_and_spec(digits):
    y = digits.y["train"]
    orders = set()
    for gen in range(6):
        b = digits.batch(gen, seed=11)
        assert b.dtype == np.int64 and b.shape == (50,)
        np.testing.assert_array_equal(b, digits.batch(gen, seed=11))           # deterministic
        np.testing.assert_array_equal(b, _py_genreg_batch(y, 10, 5, 11, gen))  # matches the spec
        lab = y[b]
        np.testing.assert_array_equal(np.bincount(lab, minlength=10), [5] * 10)  # exactly k per class
        blocks = lab.reshape(10, 5)
        assert (blocks == blocks[:, :1]).all()                                  # class after class
        orders.add(tuple(blocks[:, 0]))
    assert len(orders) == 6                                                     # fresh order each generation
    assert not np.array_equal(digits.batch(0, 11), digits.batch(0, 12))


def test_genreg_batch_with_replacement_covers_class():
    y = np.repeat(np.arange(3), [2, 3, 1])
    p = ClassificationProblem(np.zeros((6, 4), np.uint8), y, samples_per_class=40)
    b = np.concatenate([p.batch(g, 0) for g in range(5)])
    for c in range(3):
        assert set(b[y[b] == c]) == set(np.flatnonzero(y == c))   # every member drawn, repeats allowed


def test_uniform_and_full_batches():
    X = np.zeros((1000, 3), np.uint8)
    y = np.arange(1000) % 4
    u = ClassificationProblem(X, y, batch_size=5000)
    b = u.batch(3, 7)
    assert b.shape == (5000,) and b.min() >= 0 and b.max() < 1000
    key = rng.py_key(7, 3, PURPOSE_BATCH)
    assert [int(v) for v in b[:5]] == [rng.py_bounded(rng.py_u32(key, n), 1000) for n in range(5)]
    hist = np.bincount(b // 100, minlength=10)
    assert hist.min() > 400 and hist.max() < 600
    np.testing.assert_array_equal(ClassificationProblem(X, y).batch(5, 1), np.arange(1000))


# ------------------------------------------------------------------ Gumbel sampling
def test_gumbel_lut_formula():
    for frac in (0, 7, 13):
        t = gumbel_lut(frac)
        assert t.dtype == np.int32 and t.shape == (256,) and (np.diff(t) >= 0).all()
        for k in (0, 17, 128, 255):
            q = (k + 0.5) / 256
            assert t[k] == math.floor(-math.log(-math.log(q)) * 2 ** frac + 0.5)
    with pytest.raises(ValueError):
        gumbel_lut(40)


@pytest.mark.parametrize("mode", ["int8", "float32"])
def test_gumbel_frequencies_match_softmax(mode):
    """Zero inputs, one layer: logits = biases; class frequencies of sampled predictions ~ softmax."""
    C, M = 4, 15000
    y = np.repeat(np.arange(C), M)                 # P(correct | y = c) = P(sample = c)
    prob = ClassificationProblem(np.zeros((C * M, 2), np.uint8), y, n_classes=C)
    spec = MLPSpec((2, C))
    b_int = np.array([0, 64, 127, -64], np.int8)   # Q6: values 0, 1, 1.984, -1
    vals = b_int / 64.0
    if mode == "int8":
        flat = np.concatenate([np.zeros(2 * C, np.int8), b_int])[None]
    else:
        flat = np.concatenate([np.zeros(2 * C), vals]).astype(np.float32)[None]
    pop = Population.from_flat(spec, flat)
    correct = prob.scores(pop, generation=2, seed=5, prediction="sample")
    assert correct.shape == (1, C * M) and correct.dtype == np.int8
    freq = correct[0].reshape(C, M).mean(axis=1)
    p = np.exp(vals) / np.exp(vals).sum()
    z = (freq - p) / np.sqrt(p * (1 - p) / M)
    assert np.abs(z).max() < 5, (freq, p)
    chi2 = (((freq - p) * M) ** 2 / (p * M)).sum()   # loose: df = 3, p(chi2 > 30) ~ 1e-6
    assert chi2 < 30
    argmax = prob.scores(pop, 2, 5, prediction="argmax")[0].reshape(C, M).mean(axis=1)
    np.testing.assert_array_equal(argmax, [0, 0, 1, 0])


def test_sampled_predictions_follow_counter_spec():
    """int8 sampling equals argmax(logit + lut[u >> 24]) with u = u32(key, (p*B + n)*C + c)."""
    prob = get_task("digits", batch_size=30)
    spec = MLPSpec(prob.spec_dims(8))
    pop = _random_pop(spec, 3, seed=4)
    gen, seed = 9, 21
    correct = prob.scores(pop, gen, seed, prediction="sample")
    idx = prob.batch(gen, seed)
    logits = forward(pop, prob.inputs("int8")[idx]).astype(np.int64)
    lut = gumbel_lut(spec.logit_frac)
    key = rng.py_key(seed, gen, problem_mod.PURPOSE_PREDICT)
    P, B, C = logits.shape
    for p in range(P):
        for n in range(0, B, 7):
            noisy = [logits[p, n, c] + lut[rng.py_u32(key, (p * B + n) * C + c) >> 24] for c in range(C)]
            assert correct[p, n] == int(int(np.argmax(noisy)) == prob.y["train"][idx[n]])
    again = prob.scores(pop, gen, seed, prediction="sample")
    np.testing.assert_array_equal(correct, again)
    assert not np.array_equal(correct, prob.scores(pop, gen, seed + 1, prediction="sample"))


# ------------------------------------------------------------------ scores
@pytest.mark.parametrize("mode", ["int8", "float32"])
def test_scores_shapes_dtypes_and_values(digits, mode):
    spec = MLPSpec(digits.spec_dims(16))
    pop = _random_pop(spec, 7, dtype=np.int8 if mode == "int8" else np.float32)
    B = 50
    c = digits.scores(pop, 0, 1)
    assert c.shape == (7, B) and c.dtype == np.int8 and set(np.unique(c)) <= {0, 1}
    s = digits.scores(pop, 0, 1, prediction="sample")
    assert s.shape == (7, B) and s.dtype == np.int8
    x = digits.scores(pop, 0, 1, score="xent")
    assert x.shape == (7, B) and x.dtype == np.float64 and (x <= 0).all()
    idx = digits.batch(0, 1)
    lg = forward(pop, digits.inputs(mode)[idx])
    v = lg.astype(np.float64) * (2.0 ** -spec.logit_frac if mode == "int8" else 1.0)
    y = digits.y["train"][idx]
    np.testing.assert_array_equal(c, (v.argmax(axis=2) == y).astype(np.int8))
    logsm = v - np.log(np.exp(v).sum(axis=2, keepdims=True))
    np.testing.assert_allclose(x, logsm[:, np.arange(B), y], rtol=1e-12, atol=1e-12)


def test_scores_population_of_one(digits):
    spec = MLPSpec(digits.spec_dims(16))
    pop = _random_pop(spec, 1)
    for pred in ("argmax", "sample"):
        assert digits.scores(pop, 3, 3, prediction=pred).shape == (1, 50)
    assert digits.accuracy(pop).shape == (1,)


@pytest.mark.parametrize("hidden", [(16,), (12, 8)])
def test_engines_bit_identical(digits, hidden):
    spec = MLPSpec(digits.spec_dims(hidden))
    pop = _random_pop(spec, 9, seed=2)
    for pred, score in (("argmax", "correct"), ("sample", "correct"), ("argmax", "xent")):
        a = digits.scores(pop, 4, 8, prediction=pred, score=score, engine="numba")
        b = digits.scores(pop, 4, 8, prediction=pred, score=score, engine="blas")
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    np.testing.assert_array_equal(digits.accuracy(pop, engine="numba"), digits.accuracy(pop, engine="blas"))


def test_chunking_does_not_change_scores(digits, monkeypatch):
    prob = get_task("digits")                      # full training set every generation
    spec = MLPSpec(prob.spec_dims(16))
    pop = _random_pop(spec, 5, seed=3)
    whole = [prob.scores(pop, 1, 2, prediction=p) for p in ("argmax", "sample")]
    acc = prob.accuracy(pop)
    monkeypatch.setattr(problem_mod, "_CHUNK_BYTES", 5 * 16 * 4 * 100)   # 100-row chunks
    assert problem_mod._chunk_rows(pop) == 100
    for p, w in zip(("argmax", "sample"), whole):
        np.testing.assert_array_equal(prob.scores(pop, 1, 2, prediction=p), w)
    np.testing.assert_array_equal(prob.accuracy(pop), acc)


def test_accuracy_confusion_per_class(digits):
    spec = MLPSpec(digits.spec_dims(16))
    pop = _random_pop(spec, 4, seed=6)
    acc = digits.accuracy(pop)
    assert acc.shape == (4,) and acc.dtype == np.float64
    g = pop.genome(2)
    cm = digits.confusion(g, spec=spec)
    n_test = len(digits.y["test"])
    assert cm.shape == (10, 10) and cm.sum() == n_test
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(digits.y["test"], minlength=10))
    assert np.trace(cm) / n_test == pytest.approx(acc[2])
    np.testing.assert_allclose(digits.per_class_accuracy(g, spec=spec), np.diag(cm) / cm.sum(axis=1))
    assert digits.accuracy(g, spec=spec)[0] == acc[2]
    assert digits.accuracy(pop, split="train").shape == (4,)
    with pytest.raises(TypeError, match="needs its spec"):
        digits.accuracy(g)
    with pytest.raises(ValueError, match="one genome"):
        digits.confusion(pop)


def test_inputs_conversion_and_cache(digits):
    q = digits.inputs("int8")
    np.testing.assert_array_equal(q, quantize_input_u8(digits.X["train"]))
    assert q is digits.inputs("int8") and not q.flags.writeable
    f = digits.inputs("float32", "test")
    assert f.dtype == np.float32 and f.max() == 1.0
    np.testing.assert_array_equal(f, digits.X["test"] / np.float32(255))
    q6 = digits.inputs("int8", x_frac=6)
    assert q6.max() == 64
    with pytest.raises(ValueError, match="mode"):
        digits.inputs("int4")


@pytest.mark.skipif(shared_data_dir() is None or not (shared_data_dir() / "mnist").is_dir(),
                    reason="../shared/data/mnist not present")
def test_mnist_genreg_setting_engines_agree():
    prob = get_task("mnist", path=shared_data_dir(), samples_per_class=20, n_test=1000)
    spec = MLPSpec(prob.spec_dims(64))
    pop = _random_pop(spec, 20, seed=1, lim=20)
    b = prob.batch(0, 0)
    assert b.shape == (200,)
    np.testing.assert_array_equal(np.bincount(prob.y["train"][b], minlength=10), [20] * 10)
    a = prob.scores(pop, 0, 0, prediction="sample", engine="numba")
    c = prob.scores(pop, 0, 0, prediction="sample", engine="blas")
    assert a.tobytes() == c.tobytes() and a.shape == (20, 200)
    acc = prob.accuracy(pop, engine="blas")
    assert ((acc > 0.0) & (acc < 0.5)).all()           # random genomes: near chance


# ------------------------------------------------------------------ regression
def test_regression_linear_exact_genome():
    prob = get_task("linear", n=32)
    # float: W = 2, b = 3 is the exact solution
    pf = Population.from_flat(MLPSpec((1, 1)), np.array([[2.0, 3.0]], np.float32))
    s = prob.scores(pf, 0, 0)
    assert s.shape == (1, 32) and s.dtype == np.float64 and np.abs(s).max() < 1e-10
    # int8 with w_frac = b_frac = 5: W = 64, b = 96 -> error only from quantizing x to Q7
    spec = MLPSpec((1, 1), w_frac=5, b_frac=5)
    pi = Population.from_flat(spec, np.array([[64, 96], [0, 0]], np.int8))
    s = prob.scores(pi, 0, 0, engine="blas")
    assert s.shape == (2, 32) and -s[0].max() < 1e-3 and (s[1] < -0.5).all()
    mse = prob.mse(pi)
    assert mse[0] < (1 / 128) ** 2 + 1e-12 and mse[1] > 1.0
    with pytest.raises(ValueError, match="neg_mse"):
        prob.scores(pi, 0, 0, score="correct")


def test_regression_batches_and_output_dims():
    X = np.linspace(-1, 1, 20, dtype=np.float32)
    y = np.stack([X, -X], axis=1)
    prob = RegressionProblem(X, y, batch_size=8)
    assert prob.n_in == 1 and prob.n_out == 2 and prob.spec_dims(4) == (1, 4, 2)
    pop = _random_pop(MLPSpec(prob.spec_dims(4)), 3)
    assert prob.scores(pop, 0, 0).shape == (3, 8)
    with pytest.raises(ValueError, match="do not fit"):
        prob.scores(_random_pop(MLPSpec((1, 4, 1)), 3), 0, 0)


# ------------------------------------------------------------------ validation
def test_input_validation():
    X = np.zeros((4, 3), np.float32)
    y = np.array([0, 1, 2, 1])
    bad = X.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN/inf"):
        ClassificationProblem(bad, y)
    with pytest.raises(ValueError, match="NaN/inf"):
        RegressionProblem(X, np.array([0, np.inf, 0, 0]))
    with pytest.raises(ValueError, match="NaN/inf"):
        ClassificationProblem(X, y, X_test=np.full((1, 3), np.inf, np.float32), y_test=[0])
    with pytest.raises(ValueError, match="4 samples"):
        ClassificationProblem(X, y[:3])
    with pytest.raises(ValueError, match="label 2 but n_classes=2"):
        ClassificationProblem(X, y, n_classes=2)
    with pytest.raises(ValueError, match="negative label"):
        ClassificationProblem(X, -y)
    with pytest.raises(ValueError, match="not both"):
        ClassificationProblem(X, y, samples_per_class=2, batch_size=3)
    with pytest.raises(ValueError, match=r"classes \[3\] have no training samples"):
        ClassificationProblem(X, y, n_classes=4, samples_per_class=2)
    with pytest.raises(ValueError, match="features"):
        ClassificationProblem(X, y, X_test=np.zeros((2, 5)), y_test=[0, 1])
    with pytest.raises(ValueError, match="batch_size"):
        ClassificationProblem(X, y, batch_size=0)
    p = ClassificationProblem(X, y)
    pop = _random_pop(MLPSpec((3, 3)), 2)
    with pytest.raises(ValueError, match="prediction"):
        p.scores(pop, 0, 0, prediction="top1")
    with pytest.raises(ValueError, match="'correct' or 'xent'"):
        p.scores(pop, 0, 0, score="neg_mse")
    with pytest.raises(ValueError, match="do not fit"):
        p.scores(_random_pop(MLPSpec((3, 5)), 2), 0, 0)
