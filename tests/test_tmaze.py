"""T-maze of seed 002 (tasks/tmaze.py): rules checked by hand, shuffles, metric on scripted agents,
ENU-network episodes and a few OpenES generations end to end."""
import numpy as np
import pytest

from edge_evo import rng
from edge_evo.models.enu_net import ENUNetSpec
from edge_evo.strategies.openes import OpenES
from edge_evo.tasks import tmaze as tm

KEY = np.uint32(rng.py_key(0, 0, tm.PURPOSE_TMAZE))


def fresh(food_top=1):
    s = np.zeros(tm.NF, np.int64)
    tm.env_reset(s, food_top)
    return s


def walk(s, actions, t0=0, key=KEY):
    for i, a in enumerate(actions):
        tm.env_step(s, a, key, t0 + i)
    return s


def feats(s):
    f = np.zeros(3, np.float32)
    tm.env_features(s, f)
    return list(f)


TO_TOP = [tm.RIGHT] * 3 + [tm.UP] * 2        # start (3, 2) -> junction (3, 5) -> (1, 5)
TO_BOTTOM = [tm.RIGHT] * 3 + [tm.DOWN] * 2


def test_layout_walls_and_moves():
    assert tm.OPEN.sum() == 8 and tm.OPEN[3, 2:6].all() and tm.OPEN[1:6, 5].all()
    s = fresh()
    assert (s[tm.F_ROW], s[tm.F_COL], s[tm.F_HEAD]) == (3, 2, tm.RIGHT)
    assert feats(s) == [0, 0, 0]                                   # corridor ahead
    walk(s, [tm.UP])                                               # into the wall: undone
    assert (s[tm.F_ROW], s[tm.F_COL], s[tm.F_HEAD]) == (3, 2, tm.UP)
    assert feats(s)[0] == 1                                        # the wall is now ahead
    walk(s, [tm.NONE, tm.RIGHT, tm.RIGHT, tm.RIGHT])
    assert (s[tm.F_ROW], s[tm.F_COL]) == (3, 5) and feats(s) == [1, 0, 0]   # junction, wall ahead
    walk(s, [tm.RIGHT])
    assert s[tm.F_COL] == 5                                        # no way on to the right
    walk(s, [tm.UP])
    assert (s[tm.F_ROW], s[tm.F_COL]) == (2, 5) and feats(s) == [0, 1, 0]   # food (top) ahead: green
    s2 = walk(fresh(1), TO_BOTTOM[:-1])
    assert feats(s2) == [0, 0, 1]                                  # poison (bottom) ahead: red


def test_food_reward_resets_and_refills():
    s = walk(fresh(1), [tm.NONE] * 10)
    assert s[tm.F_ENERGY] == tm.ENERGY_Q - 10
    walk(s, TO_TOP, t0=10)
    assert s[tm.F_LASTR] == 1 and s[tm.F_FOODS] == 1 and s[tm.F_FITR] == 1
    assert (s[tm.F_ROW], s[tm.F_COL], s[tm.F_HEAD]) == (3, 2, tm.RIGHT)
    assert s[tm.F_ENERGY] == tm.ENERGY_Q
    walk(s, [tm.RIGHT], t0=15)
    assert s[tm.F_LASTR] == 0                                      # the reward shows for one step


def test_swap_after_every_five_foods_with_p_half():
    swapped = []
    for e in range(40):
        key = np.uint32(rng.py_key(3, 0, tm.PURPOSE_TMAZE + e))
        s = fresh(1)
        for i in range(4):
            walk(s, TO_TOP, t0=5 * i, key=key)
        assert s[tm.F_FOODTOP] == 1 and s[tm.F_DRAWS] == 0
        walk(s, TO_TOP, t0=20, key=key)
        assert s[tm.F_FOODS] == 5 and s[tm.F_SINCE] == 0 and s[tm.F_DRAWS] == 1
        expect = rng.py_u32(int(key), 8) >= 1 << 31               # the first swap draw of this copy
        assert s[tm.F_FOODTOP] == (0 if expect else 1)
        swapped.append(expect)
    assert 10 < sum(swapped) < 30


def test_poison_first_counts_plus_one_second_kills():
    s = walk(fresh(1), TO_BOTTOM)
    assert s[tm.F_LASTR] == -1 and s[tm.F_POISONS] == 1 and s[tm.F_FITR] == 1 and s[tm.F_TASTE] == 4
    assert s[tm.F_ALIVE] == 1 and (s[tm.F_ROW], s[tm.F_COL]) == (3, 2) and s[tm.F_ENERGY] == tm.ENERGY_Q
    walk(s, TO_TOP, t0=5)
    assert s[tm.F_NEXT] == 1                                       # next item after the taste: food
    walk(s, TO_BOTTOM, t0=10)
    assert s[tm.F_ALIVE] == 0 and s[tm.F_DEATH] == tm.DEATH_POISON and s[tm.F_FITR] == 1 + 1 - 1
    assert s[tm.F_NEXT] == 1 and s[tm.F_ALIVESTEPS] == 14
    before = s.copy()
    walk(s, TO_TOP, t0=15)                                         # the dead do not move
    np.testing.assert_array_equal(s, before)
    s = walk(fresh(1), TO_BOTTOM + TO_BOTTOM)
    assert s[tm.F_NEXT] == 2 and s[tm.F_DEATH] == tm.DEATH_POISON


def test_energy_death_and_fitness_formula():
    s = walk(fresh(), [tm.NONE] * 80)
    assert s[tm.F_ALIVE] == 0 and s[tm.F_DEATH] == tm.DEATH_ENERGY
    assert s[tm.F_ALIVESTEPS] == tm.ENERGY_Q - 1                   # 18 / 0.25 = 72 steps, dead on the 72nd
    assert tm.fitness(s, 100) == pytest.approx(0.025 * 71 / 100)
    s = walk(fresh(1), TO_BOTTOM + TO_TOP + [tm.NONE] * 10)       # poison (+1), food (+1), 20 steps alive
    assert tm.fitness(s, 100) == pytest.approx((2 + 0.025 * 20) / 100)


def test_sensors_and_choice():
    s = fresh(1)
    walk(s, [tm.UP])                                               # wall ahead
    x = np.zeros((4, 5), np.float32)
    f = np.zeros(3, np.float32)
    tm.sensors(s, f, np.array([2, 0, 1]), x)                      # sensor 1 shows the wall
    assert x[1, 0] == 1 and x[0, 0] == 0 and x[2, 0] == 0 and x[:, 1:].sum() == 0
    walk(s, [tm.RIGHT, tm.RIGHT, tm.RIGHT, tm.DOWN, tm.DOWN], t0=1)   # poison
    tm.sensors(s, f, np.array([0, 1, 2]), x)
    assert x[3, 2] == 1 and x[3, 1] == 0 and x[3, 0] == 0
    perm = np.array([2, 0, 1])
    assert tm.choose(np.array([0.1, 0.7, 0.7], np.float32), perm) == 0     # tie: the lower neuron
    assert tm.choose(np.zeros(3, np.float32), perm) == tm.NONE


def test_shuffles_are_permutations_deterministic_and_vary():
    a, b = tm.layout(1, 5, 32), tm.layout(1, 5, 32)
    np.testing.assert_array_equal(a.obs_perm, b.obs_perm)
    np.testing.assert_array_equal(a.act_perm, b.act_perm)
    for p in np.concatenate([a.obs_perm, a.act_perm]):
        assert sorted(p) == [0, 1, 2]
    assert len({tuple(p) for p in a.obs_perm}) == 6 and len({tuple(p) for p in a.act_perm}) == 6
    c = tm.layout(1, 6, 32)
    assert not np.array_equal(a.obs_perm, c.obs_perm) and a.noise_seed != c.noise_seed
    assert 5 < a.food_top.sum() < 27
    d = tm.layout(1, 5, 4, shuffle=False)
    assert (d.obs_perm == [0, 1, 2]).all() and (d.act_perm == [0, 1, 2]).all()


def test_metric_on_scripted_baselines():
    cfg = tm.TMazeConfig(steps=100, envs=16)
    res = {p: tm.summary(tm.scripted_episodes(p, cfg, 2, 0, agents=16), cfg.steps) for p in tm.POLICIES}
    assert res["same_arm"]["avoid_after_taste"] == 0.0 and res["same_arm"]["decisions"] > 100
    assert 0.35 < res["random"]["avoid_after_taste"] < 0.65
    assert res["one_taste"]["avoid_after_taste"] == 1.0 and res["one_taste"]["poison_deaths"] == 0
    assert res["one_taste"]["adapt_after_swap"] == 1.0 and res["one_taste"]["swap_decisions"] > 50
    assert res["one_taste"]["fitness"] > 2 * max(res["random"]["fitness"], res["same_arm"]["fitness"])
    with pytest.raises(ValueError, match="policy"):
        tm.scripted_episodes("oracle", cfg, 0, 0)


def test_network_episodes_deterministic_with_consistent_trace():
    spec = ENUNetSpec.tmaze(4, 4)
    G = np.random.default_rng(0).normal(0, 0.4, (3, spec.n_params)).astype(np.float32)
    cfg = tm.TMazeConfig(steps=40, envs=3)
    rec, tr = tm.run_episodes(spec, G, cfg, seed=1, generation=2, trace=True)
    np.testing.assert_array_equal(rec, tm.run_episodes(spec, G, cfg, seed=1, generation=2))
    assert rec.shape == (3, 3, tm.NF) and tr.shape == (3, 3, 40, 4)
    alive = tr[..., 0] != -9
    assert (alive.sum(-1) >= rec[..., tm.F_ALIVESTEPS]).all()
    assert ((tr[..., 3] == 1) & alive).sum(-1).tolist() == rec[..., tm.F_FOODS].tolist()
    assert ((tr[..., 3] == -1) & alive).sum(-1).tolist() == rec[..., tm.F_POISONS].tolist()
    assert np.isin(tr[..., 0][alive], [tm.NONE, tm.RIGHT, tm.UP, tm.DOWN]).all()
    moved = alive & (tr[..., 3] == 0)
    assert tm.OPEN[tr[..., 1][moved], tr[..., 2][moved]].all()
    with pytest.raises(ValueError, match="T-maze needs"):
        tm.run_episodes(ENUNetSpec.tmaze(2, 4), np.zeros((1, ENUNetSpec.tmaze(2, 4).n_params)), cfg, 0, 0)


def test_openes_generations_end_to_end():
    spec = ENUNetSpec.tmaze(3, 4)
    cfg = tm.TMazeConfig(steps=30, envs=2)
    es = OpenES(spec, "paper", mode="float32", population=8, sigma=0.02, lr=1.0)
    st = es.init(0)
    m0 = st.arrays["mean"].copy()
    for _ in range(3):
        pop = es.ask(st)
        fit = tm.fitness(tm.run_episodes(spec, pop.to_flat(), cfg, 0, st.generation), cfg.steps)
        assert fit.shape == (8, 2) and np.isfinite(fit).all()
        st = es.tell(st, pop, fit)
    assert st.generation == 3
    assert np.abs(st.arrays["mean"] - m0).max() > 1e-3
