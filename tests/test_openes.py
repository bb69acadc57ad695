"""OpenES (seed 002, Algorithm 1): mirrored noise, regenerated perturbations, integer update
bit-exact with the NumPy reference, checkpoint round trip, convergence in both modes."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from edge_evo import rng
from edge_evo.models.forward import forward
from edge_evo.models.mlp import MLPSpec, Population
from edge_evo.strategies import State, get_strategy
from edge_evo.strategies.openes import MEAN_FRAC, OpenES, OpenESParams, ranks, shaping_weights
from edge_evo.strategies.reference import openes_ref as ref

SPEC = MLPSpec((6, 5, 3))


def make(mode="int8", **kw):
    base = dict(population=8, sigma=0.05, lr=1.0, momentum=0.9)
    base.update(kw)
    return OpenES(SPEC, OpenESParams(**base), mode=mode)


def fake_scores(pop, gen):
    """Deterministic per-sample scores [P, 4] depending on the genomes (and ties-free)."""
    flat = pop.to_flat().astype(np.float64)
    w = np.cos(np.arange(flat.shape[1]) * 0.37 + gen)
    f = -((flat * 0.05 - w * 0.3) ** 2).sum(axis=1)
    return np.repeat(f[:, None], 4, axis=1) + np.arange(4)[None] * 1e-3


def run(es, seed, gens, state=None):
    st = es.init(seed) if state is None else state
    for _ in range(gens):
        pop = es.ask(st)
        st = es.tell(st, pop, fake_scores(pop, st.generation))
    return st


def test_registry_and_presets():
    cls = get_strategy("openes")
    assert cls is OpenES and cls.score == "xent"
    assert {"paper", "mnist"} <= set(cls.presets)
    p = cls.presets["paper"]
    assert (p.shaping, p.momentum, p.sigma, p.population % 2) == ("rank5", 0.9, 0.01, 0)
    es = cls(SPEC, "paper", mode="float32", population=4)
    assert es.params.population == 4
    with pytest.raises(ValueError, match="even"):
        OpenESParams(population=7)
    with pytest.raises(ValueError, match="shaping"):
        OpenESParams(shaping="linear")
    with pytest.raises(ValueError, match="unknown openes parameter"):
        cls(SPEC, sigmaa=1.0)


def test_shaping_weights():
    for P in (2, 8, 500):
        w = shaping_weights(P, "rank5").astype(np.int64)
        assert w.sum() <= 1 << 16 and w.sum() > (1 << 16) - P
        assert np.all(np.diff(w) <= 0) and w[-1] == 0 and w[0] > 0
        c = shaping_weights(P, "centered").astype(np.int64)
        np.testing.assert_array_equal(c, -c[::-1])
        assert np.abs(c).sum() <= 1 << 16
    # paper: (1.0 .. 0.0)^5 normalised to sum 1, not centred
    P = 10
    u = (np.arange(P - 1, -1, -1) / (P - 1)) ** 5
    np.testing.assert_allclose(shaping_weights(P, "rank5") / 65536, u / u.sum(), atol=2 / 65536)
    np.testing.assert_array_equal(ranks([1.0, 3.0, 3.0, -1.0]), [2, 0, 1, 3])


def test_mirrored_pairs_float_exact():
    es = make("float32")
    st = es.init(3)
    pop = es.ask(st).to_flat()
    theta = st.arrays["mean"]
    scale = np.float32(es.params.sigma / rng.GAUSS_STD)
    for k in range(es.params.population // 2):
        eps = ref.noise_units(3, 0, k, SPEC.n_params).astype(np.float32) * scale
        np.testing.assert_array_equal(pop[2 * k], theta + eps)
        np.testing.assert_array_equal(pop[2 * k + 1], theta - eps)
        assert np.any(eps != 0)


def test_mirrored_pairs_int8_symmetric_and_reference():
    es = make("int8", sigma=0.06, init_scale=0.2)
    st = es.init(5)
    pop = es.ask(st).to_flat().astype(np.int32)
    c = es.best_genome(st).astype(np.int32)
    np.testing.assert_array_equal(c, ref.rshift_round(st.arrays["mean"], MEAN_FRAC))
    inside = (np.abs(pop) < 127).all(axis=0)
    np.testing.assert_array_equal((pop[0::2] + pop[1::2])[:, inside], 2 * np.broadcast_to(c, pop[0::2].shape)[:, inside])
    sm = np.concatenate([np.full(int(np.prod(s)), st.arrays["sigma_m"][i]) for i, (_, s) in enumerate(SPEC.tensors())])
    np.testing.assert_array_equal(pop, ref.int8_ask(st.arrays["mean"], sm, 5, 0, es.params.population))
    assert np.abs(pop[0] - c).max() >= 2


def test_noise_regenerated_equals_noise_used():
    """tell's gradient, recomputed from the genomes ask produced, equals the update (beta=0, lr=1)."""
    es = make("int8", momentum=0.0, sigma=0.06, init_scale=0.2)
    st = es.init(11)
    pop = es.ask(st)
    flat = pop.to_flat().astype(np.int64)
    c = es.best_genome(st).astype(np.int64)
    assert (np.abs(flat) < 127).all(), "test needs unsaturated genomes"
    sc = fake_scores(pop, 0)
    d = es.pair_weights(es.fitness(sc)).astype(np.int64)
    G = (d[:, None] * (flat[0::2] - c)).sum(axis=0)
    expect = st.arrays["mean"] + ref.rshift_round(G, 16 - MEAN_FRAC)
    np.testing.assert_array_equal(es.tell(st, pop, sc).arrays["mean"], expect)
    # float: the same with the genomes' perturbations
    es = make("float32", momentum=0.0)
    st = es.init(11)
    pop = es.ask(st)
    flat = pop.to_flat().astype(np.float64)
    sc = fake_scores(pop, 0)
    d = es.pair_weights(es.fitness(sc)) / 65536.0
    g = (d[:, None] * (flat[0::2] - st.arrays["mean"])).sum(axis=0)
    np.testing.assert_allclose(es.tell(st, pop, sc).arrays["mean"], st.arrays["mean"] + g, atol=1e-6)


@pytest.mark.parametrize("shaping", ["rank5", "centered"])
def test_int8_bit_exact_with_reference(shaping):
    es = make("int8", shaping=shaping, weight_decay=0.01, lr=0.7, sigma=0.04)
    st = es.init(2)
    mean, mom = st.arrays["mean"].copy(), st.arrays["momentum"].copy()
    sm = np.concatenate([np.full(int(np.prod(s)), st.arrays["sigma_m"][i]) for i, (_, s) in enumerate(SPEC.tensors())])
    w = shaping_weights(es.params.population, shaping)
    for g in range(4):
        pop = es.ask(st)
        np.testing.assert_array_equal(pop.to_flat(), ref.int8_ask(mean, sm, 2, g, es.params.population))
        sc = fake_scores(pop, g)
        st = es.tell(st, pop, sc)
        mean, mom = ref.int8_step(mean, mom, w, sc.mean(axis=1), sm, 2, g, round(0.9 * 65536), round(0.7 * 65536),
                                  round(0.01 * 65536))
        np.testing.assert_array_equal(st.arrays["mean"], mean)
        np.testing.assert_array_equal(st.arrays["momentum"], mom)
    assert np.any(mom != 0)


def test_float_matches_reference_algorithm():
    es = make("float32", weight_decay=0.01, lr=0.5)
    st = es.init(4)
    theta, m = st.arrays["mean"].astype(np.float64), np.zeros(SPEC.n_params)
    for g in range(4):
        pop = es.ask(st)
        np.testing.assert_allclose(pop.to_flat(), ref.float_ask(theta, 4, g, 8, 0.05), atol=1e-5)
        sc = fake_scores(pop, g)
        st = es.tell(st, pop, sc)
        theta, m = ref.float_step(theta, m, sc.mean(axis=1), 4, g, 0.05, 0.5, 0.9, 0.01)
        np.testing.assert_allclose(st.arrays["mean"], theta, atol=1e-4)


@pytest.mark.parametrize("mode", ["int8", "float32"])
def test_determinism_and_checkpoint_round_trip(mode, tmp_path):
    es = make(mode, sigma_decay=0.99, lr_decay=0.995)
    full = run(es, 7, 6)
    again = run(es, 7, 6)
    other = run(es, 8, 6)
    for k in full.arrays:
        np.testing.assert_array_equal(full.arrays[k], again.arrays[k])
    assert not np.array_equal(full.arrays["mean"], other.arrays["mean"])
    half = run(es, 7, 3)
    arrs, meta = half.to_arrays()
    np.savez(tmp_path / "ck.npz", **arrs)
    (tmp_path / "ck.json").write_text(json.dumps(meta))
    with np.load(tmp_path / "ck.npz", allow_pickle=False) as z:
        back = State.from_arrays(SPEC, dict(z), json.loads((tmp_path / "ck.json").read_text()))
    resumed = run(es, 7, 3, state=back)
    assert resumed.generation == full.generation == 6
    for k in full.arrays:
        np.testing.assert_array_equal(resumed.arrays[k], full.arrays[k])
    assert resumed.scalars == full.scalars


@pytest.mark.parametrize("mode", ["int8", "float32"])
def test_population_two(mode):
    es = make(mode, population=2)
    st = run(es, 1, 3)
    assert st.generation == 3 and es.ask(st).size == 2
    assert es.best_genome(st).shape == (SPEC.n_params,)


def test_bad_inputs():
    es = make("int8")
    st = es.init(0)
    pop = es.ask(st)
    with pytest.raises(ValueError, match="scores must be"):
        es.tell(st, pop, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        es.tell(st, pop, np.full((8, 2), np.nan))
    with pytest.raises(TypeError, match="other mode"):
        make("float32").ask(st)


def _xent(logits, y, frac):
    v = logits.astype(np.float64) * (2.0 ** -frac if logits.dtype == np.int32 else 1.0)
    m = v.max(axis=2, keepdims=True)
    lse = m[..., 0] + np.log(np.exp(v - m).sum(axis=2))
    return np.take_along_axis(v, np.broadcast_to(y[None, :, None], v.shape[:2] + (1,)), axis=2)[..., 0] - lse


@pytest.mark.parametrize("mode", ["int8", "float32"])
def test_converges_on_tiny_classification(mode):
    r = np.random.default_rng(0)
    Xf = r.uniform(0, 1, size=(400, 6))
    A = np.array([[1, 1, 0, -1, -1, 0], [0, -1, 1, 1, 0, -1], [-1, 0, -1, 0, 1, 1]], dtype=np.float64)
    y = (Xf @ A.T).argmax(1)    # three linearly separable classes
    X = np.floor(Xf * 127 + 0.5).astype(np.int8) if mode == "int8" else Xf.astype(np.float32)
    es = OpenES(SPEC, OpenESParams(population=32, sigma=0.05, lr=1.0, momentum=0.9), mode=mode)
    st = es.init(0)

    def acc(genome):
        lg = forward(Population.from_flat(SPEC, genome), X)[0]
        return (lg.argmax(1) == y).mean()

    a0 = acc(es.best_genome(st))
    for g in range(150):
        pop = es.ask(st)
        idx = np.arange(g * 64, g * 64 + 64) % 400
        st = es.tell(st, pop, _xent(forward(pop, X[idx]), y[idx], SPEC.logit_frac))
    a1 = acc(es.best_genome(st))
    assert a1 >= 0.9 and a1 > a0 + 0.5, (a0, a1)


def test_no_jit_identical_int8():
    code = (
        "import numpy as np, hashlib\n"
        "from edge_evo.models.mlp import MLPSpec\n"
        "from edge_evo.strategies.openes import OpenES, OpenESParams\n"
        "es = OpenES(MLPSpec((6, 5, 3)), OpenESParams(population=4, sigma=0.05, weight_decay=0.01), mode='int8')\n"
        "st = es.init(9)\n"
        "for g in range(2):\n"
        "    pop = es.ask(st)\n"
        "    f = pop.to_flat().astype(np.float64)\n"
        "    st = es.tell(st, pop, -(f ** 2).sum(1, keepdims=True))\n"
        "h = hashlib.sha256(pop.to_flat().tobytes() + st.arrays['mean'].tobytes() + st.arrays['momentum'].tobytes())\n"
        "print(h.hexdigest())\n")
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = []
    for jit_off in ("0", "1"):
        env["NUMBA_DISABLE_JIT"] = jit_off
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr[-2000:]
        out.append(res.stdout.strip())
    assert out[0] == out[1] and len(out[0]) == 64
