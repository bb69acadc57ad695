"""Generic tests driven by the strategy registry: every MLP strategy gets them for free."""
import numpy as np
import pytest

from edge_evo.models.mlp import MLPSpec
from edge_evo.models.forward import forward
from edge_evo.strategies import STRATEGIES, State, _load_all

_load_all()
SPEC = MLPSpec((6, 5, 3))
# the package's own MLP strategies (tests may register toy strategies of their own)
MLP_STRATEGIES = sorted(n for n, cls in STRATEGIES.items()
                        if cls.__module__.startswith("edge_evo.strategies.") and n != "emns")
MODES = ["int8", "float32"]
P = 4


def _scores(pop, X, y):
    logits = forward(pop, X if pop.dtype == np.int8 else X.astype(np.float32) / 128, engine="numba")
    return (logits.argmax(-1) == y[None]).astype(np.float64)


def _data():
    r = np.random.default_rng(0)
    X = r.integers(0, 128, (12, SPEC.dims[0])).astype(np.int8)
    return X, r.integers(0, SPEC.dims[-1], 12)


def _make(name, mode):
    return STRATEGIES[name](SPEC, mode=mode, population=P)


def _run(strategy, state, n):
    X, y = _data()
    for _ in range(n):
        pop = strategy.ask(state)
        state = strategy.tell(state, pop, _scores(pop, X, y))
    return state


def _snapshot(state):
    arrs, meta = state.to_arrays()
    return {k: v.tobytes() for k, v in arrs.items()}, meta


def test_registry_lists_the_core_strategies():
    assert {"genreg", "ga", "openes"} <= set(STRATEGIES)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", MLP_STRATEGIES)
def test_deterministic(name, mode):
    a = _run(_make(name, mode), _make(name, mode).init(5), 3)
    b = _run(_make(name, mode), _make(name, mode).init(5), 3)
    assert _snapshot(a) == _snapshot(b)
    assert a.generation == 3


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", MLP_STRATEGIES)
def test_state_round_trip_then_continue_is_exact(name, mode):
    s = _make(name, mode)
    mid = _run(s, s.init(1), 2)
    arrs, meta = mid.to_arrays()
    restored = State.from_arrays(SPEC, {k: v.copy() for k, v in arrs.items()}, meta)
    assert _snapshot(_run(s, restored, 2)) == _snapshot(_run(s, mid, 2))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", MLP_STRATEGIES)
def test_best_genome_is_deployable(name, mode):
    s = _make(name, mode)
    g = s.best_genome(_run(s, s.init(0), 2))
    assert g.shape == (SPEC.n_params,) and g.dtype == s.dtype


@pytest.mark.parametrize("name", MLP_STRATEGIES)
def test_init_from_a_genome(name):
    s = _make(name, "int8")
    g = np.random.default_rng(2).integers(-60, 61, SPEC.n_params).astype(np.int8)
    st = s.init_from(0, g)
    assert np.array_equal(s.best_genome(st), g)
    _run(s, st, 1)
    with pytest.raises(TypeError, match="dtype"):
        s.init_from(0, g.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        s.init_from(0, g[:-1])


@pytest.mark.parametrize("name", MLP_STRATEGIES)
def test_unknown_parameter_is_named(name):
    with pytest.raises(ValueError, match="no_such_param"):
        STRATEGIES[name](SPEC, no_such_param=1)
