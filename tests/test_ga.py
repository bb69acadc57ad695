"""GA strategy (EMNN): registry, determinism, resume exactness, P = 1, Y = 2X + 3 in both modes,
and the float NumPy reference twin."""
import numpy as np
import pytest

from edge_evo.fixedpoint import quantize
from edge_evo.models.forward import forward
from edge_evo.models.mlp import MLPSpec
from edge_evo.strategies import get_strategy, STRATEGIES, State
from edge_evo.strategies.ga import GA, GAParams
from edge_evo.strategies.reference import ga_ref

SPEC = MLPSpec((1, 1), w_frac=5, b_frac=5, x_frac=6)   # 2 and 3 representable; X in [-1, 1] fits Q6
X = np.linspace(-1.0, 1.0, 32)[:, None]
Y = 2.0 * X[:, 0] + 3.0


def linear_scores(pop):
    """neg_mse per sample [P, B] for y = W x + b."""
    if pop.dtype == np.int8:
        pred = forward(pop, quantize(X, SPEC.x_frac))[:, :, 0] / 2.0 ** SPEC.logit_frac
    else:
        pred = forward(pop, X.astype(np.float32))[:, :, 0]
    return -(pred - Y) ** 2


def wb(strategy, state):
    g = state.arrays["best"].astype(np.float64)
    return g / 2.0 ** SPEC.w_frac if strategy.mode == "int8" else g


def run(strategy, state, generations, history=None):
    for _ in range(generations):
        pop = strategy.ask(state)
        state = strategy.tell(state, pop, linear_scores(pop))
        if history is not None:
            history.append(float(state.arrays["best_fitness"]))
    return state


def test_registered():
    assert get_strategy("ga") is GA and STRATEGIES["ga"] is GA
    assert GA.score == "neg_mse"


@pytest.mark.parametrize("mode", ["float32", "int8"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_solves_y_equals_2x_plus_3_within_30_generations(mode, seed):
    ga = GA(SPEC, "emnn", mode=mode)
    hist = []
    st = run(ga, ga.init(seed), 30, hist)
    w, b = wb(ga, st)
    assert abs(w - 2.0) < 0.1 and abs(b - 3.0) < 0.1, (w, b)
    assert float(st.arrays["best_fitness"]) > -0.01
    # elitism on a fixed data set: the best fitness never gets worse
    assert all(f2 >= f1 for f1, f2 in zip(hist, hist[1:]))


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_deterministic_and_resume_exact(mode):
    ga = GA(SPEC, "emnn", mode=mode)
    a = run(ga, ga.init(7), 6)
    b = run(ga, ga.init(7), 6)
    for name in a.population.tensors:
        assert np.array_equal(a.population.tensors[name], b.population.tensors[name])
    # checkpoint at generation 3, restore, continue: identical to an uninterrupted run
    mid = run(ga, ga.init(7), 3)
    arrs, meta = mid.to_arrays()
    resumed = run(ga, State.from_arrays(SPEC, {k: v.copy() for k, v in arrs.items()}, meta), 3)
    assert resumed.generation == a.generation == 6
    for name in a.population.tensors:
        assert np.array_equal(resumed.population.tensors[name], a.population.tensors[name])
    assert np.array_equal(resumed.arrays["best"], a.arrays["best"])
    c = run(ga, ga.init(8), 6)
    assert not np.array_equal(c.population.to_flat(), a.population.to_flat())


def test_population_of_one():
    ga = GA(SPEC, mode="int8", population=1, n_elite=0)
    st = run(ga, ga.init(0), 3)
    assert st.population.size == 1 and st.generation == 3


def test_bad_input_messages():
    with pytest.raises(ValueError, match="elite_fraction"):
        GAParams(elite_fraction=0.0)
    with pytest.raises(ValueError, match="unknown ga parameter"):
        GA(SPEC, bogus=1)
    ga = GA(SPEC, mode="float32")
    st = ga.init(0)
    with pytest.raises(ValueError, match="shape"):
        ga.tell(st, st.population, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        ga.tell(st, st.population, np.full((ga.params.population, 2), np.nan))


def test_reference_twin_behaves_alike():
    rng = np.random.default_rng(0)
    p = GAParams()
    pop = ga_ref.init(rng, 2, p.population, p.init_w)
    Xr = X[:, 0]
    for _ in range(30):
        fit = ga_ref.linear_fitness(pop, Xr, Y)
        pop = ga_ref.next_generation(rng, pop, fit, p.top_k(), p.n_elite, p.mutation_rate, p.mutation_sigma)
    best_ref = pop[np.argmax(ga_ref.linear_fitness(pop, Xr, Y))]
    ga = GA(SPEC, p, mode="float32")
    best_fast = wb(ga, run(ga, ga.init(0), 30))
    assert np.allclose(best_ref, [2.0, 3.0], atol=0.1) and np.allclose(best_fast, [2.0, 3.0], atol=0.1)


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_with_linear_task(mode):
    """Integration with edge_evo.tasks: the registered 'linear' task scores neg_mse."""
    tasks = pytest.importorskip("edge_evo.tasks")
    prob = tasks.get_task("linear")
    ga = GA(SPEC, "emnn", mode=mode)
    st = ga.init(0)
    for _ in range(30):
        pop = ga.ask(st)
        st = ga.tell(st, pop, prob.scores(pop, st.generation, st.seed, score=ga.score))
    w, b = wb(ga, st)
    assert abs(w - 2.0) < 0.1 and abs(b - 3.0) < 0.1, (w, b)
