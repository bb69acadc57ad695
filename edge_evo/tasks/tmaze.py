"""T-maze of seed 002 (Bertens & Lee 2019, section 4 "Evolving Reinforcement Learning in a network of
ENUs"), vectorised over P offspring x E environment copies in Numba.

Grid 7 x 7, coordinates ``(row, col)``, row 0 at the top (so "up" decreases the row)::

    row 1            . F/P          arm: column 5, rows 1-5
    row 2            .              corridor: row 3, columns 2-5
    row 3   S  .  .  J              S = start (3, 2), J = junction (3, 5)
    row 4            .              food and poison sit at the arm ends (1, 5) and (5, 5)
    row 5            . P/F

Rules (one *environment* step = ``net_steps`` = 4 network steps; the seed's 400-step episode is
counted in network steps, so the default episode is 100 environment steps)::

    action   right / up / down (col + 1, row - 1, row + 1), or nothing when no output neuron is
             active (all channel-0 sums over the 4 network steps are 0); a move into a wall is undone
    food     reward +1, energy refilled to 18, agent back to the start; after every 5th food, food
             and poison swap places with p = 0.5
    poison   reward -1 (what the reward sensor shows), energy refilled, back to the start; the first
             poison of an episode counts +1 in the fitness (tasting is how the agent learns), the
             second counts -1 and kills the agent
    energy   starts at 18, -0.25 per environment step without reward; 0 kills the agent
    fitness  (sum of fitness rewards + 0.025 * environment steps alive) / steps

Observations (our reading of "one that detects the wall of the maze, one that detects green and
one that detects red"): the agent has a heading, the direction of its last attempted move (right
after every reset). ``wall`` = the cell ahead is a wall (this includes a bump: an undone move leaves
the wall ahead), ``green`` = food in the cell ahead, ``red`` = poison in the cell ahead. The three
go into channel 0 of the three observation sensor neurons; the reward sensor (sensor 3) carries
``+reward`` on channel 1 and ``-reward`` on channel 2 during the 4 network steps after eating.
Which observation goes to which sensor neuron and which output neuron drives which action are
permutations drawn per environment copy and episode (seed: "input and output neurons get randomly
shuffled each generation"). The action is the output neuron with the largest channel-0 output
summed over the 4 network steps (ties: the lower neuron).

Randomness, all from the counter RNG ``edge_evo.rng``, keyed by ``(seed, generation, env copy)``
and therefore common to all offspring of a generation: stream ``u32(key(seed, generation,
PURPOSE_TMAZE + e), i)`` gives the observation shuffle (i = 0, 1), the action shuffle (2, 3), the
initial food side (4) and the k-th swap draw (8 + k); the network's output noise uses
``key(seed, generation, PURPOSE_TMAZE_NOISE)`` as its noise seed.

Metric "avoids the poison after one taste" (``summary``): in an episode where the agent eats the
poison for the first time and later eats anything again, the *decision* is that next item: food =
avoided, poison = not avoided (the second poison also kills). ``avoid_after_taste`` = avoided /
decisions. A random walker scores ~50 %, an agent that always takes the same arm 0 %, an agent that
remembers the tasted arm 100 % (``scripted_episodes``). Reported alongside: foods and poisons per
episode, deaths (poison / energy), and ``adapt_after_swap``: after a swap that moved the food, the
fraction of next items that were food (only swaps after the first taste: before it, the agent
cannot know which colour is the poison).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from .. import rng
from ..kernels.enu_net import net_step, work_buffers, noise_table, pack, split_noise, wiring
from ..models.enu_net import ENUNetSpec

PURPOSE_TMAZE = 0x8000_0100          # + env copy: layout, shuffles and swap draws of one episode
PURPOSE_TMAZE_NOISE = 0x8000_00F0    # noise seed of the network's output-gate noise
PURPOSE_POLICY = 0x8000_00F1         # scripted random agent

RIGHT, UP, DOWN, NONE = 0, 1, 2, -1
DR = np.array([0, -1, 1], np.int64)
DC = np.array([1, 0, 0], np.int64)
START = (3, 2)
TOP, BOTTOM = (1, 5), (5, 5)
ENERGY_Q = 72                        # energy 18 in units of the 0.25 step cost
SWAP_EVERY = 5
ALIVE_BONUS = 0.025

OPEN = np.zeros((7, 7), np.bool_)
OPEN[3, 2:6] = True
OPEN[1:6, 5] = True

# fields of the int64 per-agent record (state during the episode, statistics after it)
(F_ROW, F_COL, F_HEAD, F_ENERGY, F_ALIVE, F_FOODS, F_POISONS, F_SINCE, F_FOODTOP, F_SWAPS, F_LASTR,
 F_FITR, F_ALIVESTEPS, F_TASTE, F_NEXT, F_DEATH, F_DRAWS, F_SWAPDEC, F_SWAPGOOD, F_PENDING, F_FAT,
 F_MEM) = range(22)
NF = 22
FIELDS = ("row", "col", "head", "energy_q", "alive", "foods", "poisons", "since_swap", "food_top", "swaps",
          "last_reward", "fitness_reward", "alive_steps", "taste_step", "next_after_taste", "death",
          "swap_draws", "swap_decisions", "swap_good", "swap_pending", "foods_after_taste", "policy_mem")
DEATH_POISON, DEATH_ENERGY = 1, 2


@dataclass(frozen=True)
class TMazeConfig:
    """Episode settings: ``steps`` environment steps of ``net_steps`` network steps each, ``envs``
    environment copies per offspring, output-gate noise ``noise_std`` (seed: 0.01)."""
    steps: int = 100
    net_steps: int = 4
    envs: int = 8
    noise_std: float = 0.01

    def __post_init__(self):
        if min(self.steps, self.net_steps, self.envs) < 1:
            raise ValueError(f"T-maze steps, net_steps and envs must be >= 1: {self}")
        if not (np.isfinite(self.noise_std) and self.noise_std >= 0):
            raise ValueError(f"noise_std must be finite and >= 0, got {self.noise_std}")


# ----------------------------------------------------------------------------- episode layout
def _permutation(k: int, first: int) -> list[int]:
    """Fisher-Yates shuffle of [0, 1, 2] from two counter-RNG draws."""
    p = [0, 1, 2]
    for j, n in enumerate((3, 2)):
        i = rng.py_bounded(rng.py_u32(k, first + j), n)
        p[n - 1], p[i] = p[i], p[n - 1]
    return p


@dataclass(frozen=True)
class Layout:
    """Per env copy: sensor neuron i sees observation ``obs_perm[e, i]`` (0 wall, 1 green, 2 red),
    output neuron j drives action ``act_perm[e, j]``; food starts at the top arm end where
    ``food_top[e]``; ``keys[e]`` seeds the swap draws."""
    obs_perm: np.ndarray
    act_perm: np.ndarray
    food_top: np.ndarray
    keys: np.ndarray
    noise_seed: int


def layout(seed: int, generation: int, envs: int, shuffle: bool = True) -> Layout:
    keys = np.array([rng.py_key(seed, generation, PURPOSE_TMAZE + e) for e in range(envs)], np.uint32)
    ident = [0, 1, 2]
    obs = np.array([_permutation(int(k), 0) if shuffle else ident for k in keys], np.int64).reshape(envs, 3)
    act = np.array([_permutation(int(k), 2) if shuffle else ident for k in keys], np.int64).reshape(envs, 3)
    top = np.array([rng.py_bounded(rng.py_u32(int(k), 4), 2) for k in keys], np.int64)
    return Layout(obs, act, top, keys, rng.py_key(seed, generation, PURPOSE_TMAZE_NOISE))


# ----------------------------------------------------------------------------- the environment
@njit(cache=True)
def _open(r, c):
    return 0 <= r < 7 and 0 <= c < 7 and OPEN[r, c]


@njit(cache=True)
def env_reset(s, food_top):
    s[:] = 0
    s[F_ROW] = START[0]
    s[F_COL] = START[1]
    s[F_HEAD] = RIGHT
    s[F_ENERGY] = ENERGY_Q
    s[F_ALIVE] = 1
    s[F_FOODTOP] = food_top
    s[F_TASTE] = -1


@njit(cache=True)
def env_features(s, feat):
    """feat[0..2] = wall, green (food), red (poison) in the cell ahead (direction of the heading)."""
    r = s[F_ROW] + DR[s[F_HEAD]]
    c = s[F_COL] + DC[s[F_HEAD]]
    fr = TOP[0] if s[F_FOODTOP] else BOTTOM[0]
    pr = BOTTOM[0] if s[F_FOODTOP] else TOP[0]
    feat[0] = 0.0 if _open(r, c) else 1.0
    feat[1] = 1.0 if (r == fr and c == TOP[1]) else 0.0
    feat[2] = 1.0 if (r == pr and c == TOP[1]) else 0.0


@njit(cache=True)
def env_step(s, action, key, t):
    """Apply one action (RIGHT / UP / DOWN, or NONE = -1) at environment step t; updates s in place."""
    if s[F_ALIVE] == 0:
        return
    if action >= 0:
        s[F_HEAD] = action
        r = s[F_ROW] + DR[action]
        c = s[F_COL] + DC[action]
        if _open(r, c):                      # a move into a wall is undone
            s[F_ROW] = r
            s[F_COL] = c
    fr = TOP[0] if s[F_FOODTOP] else BOTTOM[0]
    at_arm_end = s[F_COL] == TOP[1] and (s[F_ROW] == TOP[0] or s[F_ROW] == BOTTOM[0])
    reward = 0
    if at_arm_end and s[F_ROW] == fr:                                   # food
        reward = 1
        s[F_FITR] += 1
        s[F_FOODS] += 1
        s[F_SINCE] += 1
        if s[F_TASTE] >= 0:
            s[F_FAT] += 1
            if s[F_NEXT] == 0:
                s[F_NEXT] = 1
        if s[F_PENDING]:
            s[F_SWAPDEC] += 1
            s[F_SWAPGOOD] += 1
            s[F_PENDING] = 0
        if s[F_SINCE] == SWAP_EVERY:
            s[F_SINCE] = 0
            h = rng.u32(key, np.uint32(8 + s[F_DRAWS]))
            s[F_DRAWS] += 1
            if h >= np.uint32(1 << 31):                               # p = 0.5
                s[F_FOODTOP] = 1 - s[F_FOODTOP]
                s[F_SWAPS] += 1
                s[F_PENDING] = 1 if s[F_TASTE] >= 0 else 0          # scored once red is known
    elif at_arm_end:                                                    # poison
        reward = -1
        s[F_POISONS] += 1
        if s[F_PENDING]:
            s[F_SWAPDEC] += 1
            s[F_PENDING] = 0
        if s[F_POISONS] == 1:
            s[F_FITR] += 1                   # the first taste counts +1
            s[F_TASTE] = t
        else:
            s[F_FITR] -= 1
            if s[F_NEXT] == 0:
                s[F_NEXT] = 2
            s[F_ALIVE] = 0
            s[F_DEATH] = DEATH_POISON
    if reward != 0:
        s[F_ENERGY] = ENERGY_Q
        s[F_ROW] = START[0]
        s[F_COL] = START[1]
        s[F_HEAD] = RIGHT
    else:
        s[F_ENERGY] -= 1
        if s[F_ENERGY] <= 0:
            s[F_ALIVE] = 0
            s[F_DEATH] = DEATH_ENERGY
    s[F_LASTR] = reward
    if s[F_ALIVE]:
        s[F_ALIVESTEPS] += 1


@njit(cache=True)
def sensors(s, feat, obs_perm_e, x):
    """Sensor neuron outputs x [4, C] of one agent: observation obs_perm_e[i] into channel 0 of
    sensor i, the last reward into channels 1 (+) and 2 (-) of sensor 3."""
    env_features(s, feat)
    x[:] = np.float32(0.0)
    for i in range(3):
        x[i, 0] = feat[obs_perm_e[i]]
    if s[F_LASTR] > 0:
        x[3, 1] = np.float32(1.0)
    elif s[F_LASTR] < 0:
        x[3, 2] = np.float32(1.0)


@njit(cache=True)
def choose(acc, act_perm_e):
    """The output neuron with the largest summed activity (ties: lower), mapped to its action; NONE if all are 0."""
    best = -1
    bv = np.float32(0.0)
    for j in range(acc.shape[0]):
        if acc[j] > bv:
            bv = acc[j]
            best = j
    return NONE if best < 0 else act_perm_e[best]


@njit(parallel=True, cache=True, fastmath=False)
def _episodes(wg_n, wc_n, wo_n, wg_s, wc_s, wo_s, syn_src, syn_post, S, N, H, n_out, obs_perm, act_perm,
              food_top, keys, noise_n, noise_s, T, K, out, trace):
    """One offspring per parallel task, its E episodes in lockstep (the kernel batches the copies)."""
    P = wg_n.shape[0]
    E = obs_perm.shape[0]
    C = wo_n.shape[1]
    Ns = 4
    U_s, U_n = E * N * S, E * N
    for p in prange(P):
        As = np.zeros((3 * C + H + 1, U_s), np.float32)
        As[3 * C + H] = np.float32(1.0)
        An = np.zeros((2 * C + H + 1, U_n), np.float32)
        An[2 * C + H] = np.float32(1.0)
        work = work_buffers(C, H, U_s, U_n)
        xT = np.zeros((C, E * Ns), np.float32)
        x = np.zeros((Ns, C), np.float32)
        feat = np.zeros(3, np.float32)
        acc = np.zeros((E, n_out), np.float32)
        for e in range(E):
            env_reset(out[p, e], food_top[e])
        for t in range(T):
            alive = 0
            for e in range(E):
                alive += out[p, e, F_ALIVE]
            if alive == 0:
                break                        # nobody moves any more: nothing left to compute
            for e in range(E):
                sensors(out[p, e], feat, obs_perm[e], x)
                for i in range(Ns):
                    for c in range(C):
                        xT[c, e * Ns + i] = x[i, c]
            acc[:] = np.float32(0.0)
            for k in range(K):
                net_step(wg_n[p], wc_n[p], wo_n[p], wg_s[p], wc_s[p], wo_s[p], xT, syn_src, syn_post, S,
                         As, An, noise_n[t * K + k], noise_s[t * K + k], work)
                for e in range(E):
                    for j in range(n_out):
                        acc[e, j] += An[C, e * N + N - n_out + j]
            for e in range(E):
                s = out[p, e]
                if s[F_ALIVE] == 0:
                    continue                 # a dead agent no longer moves
                a = choose(acc[e], act_perm[e])
                env_step(s, a, keys[e], t)
                if trace.shape[0] > 0:
                    trace[p, e, t, 0] = a
                    trace[p, e, t, 1] = s[F_ROW]
                    trace[p, e, t, 2] = s[F_COL]
                    trace[p, e, t, 3] = s[F_LASTR]


def run_episodes(spec: ENUNetSpec, genomes: np.ndarray, cfg: TMazeConfig, seed: int, generation: int,
                 shuffle: bool = True, trace: bool = False):
    """One episode per (offspring, env copy) -> records [P, E, NF] int64 (see FIELDS), and with
    ``trace`` the per-step (action, row, col, reward) [P, E, steps, 4] (-9 after death)."""
    if spec.n_sensors != 4 or spec.n_out != 3 or spec.channels < 3:
        raise ValueError(f"the T-maze needs 4 sensors, 3 output neurons and >= 3 channels "
                         f"(ENUNetSpec.tmaze(channels, memory)), got {spec}")
    pk = pack(spec, genomes)
    lay = layout(seed, generation, cfg.envs, shuffle)
    out = np.zeros((pk.P, cfg.envs, NF), np.int64)
    tr = np.full((pk.P, cfg.envs, cfg.steps, 4) if trace else (0, 1, 1, 4), -9, np.int64)
    table = noise_table(spec, lay.noise_seed, 0, cfg.steps * cfg.net_steps, cfg.envs, cfg.noise_std)
    nn, ns = split_noise(spec, table, cfg.envs)
    src, post = wiring(spec, cfg.envs)
    _episodes(pk.wg_n, pk.wc_n, pk.wo_n, pk.wg_s, pk.wc_s, pk.wo_s, src, post, spec.n_synapses, spec.n_neurons,
              spec.memory, spec.n_out, lay.obs_perm, lay.act_perm, lay.food_top, lay.keys, nn, ns,
              cfg.steps, cfg.net_steps, out, tr)
    return (out, tr) if trace else out


def fitness(records: np.ndarray, steps: int) -> np.ndarray:
    """Seed fitness of every episode: (fitness rewards + 0.025 * steps alive) / steps, [...] float64."""
    r = np.asarray(records)
    return (r[..., F_FITR] + ALIVE_BONUS * r[..., F_ALIVESTEPS]) / float(steps)


# ----------------------------------------------------------------------------- scripted baselines
POLICIES = ("random", "same_arm", "one_taste")


@njit(cache=True)
def _scripted_action(s, policy, pkey, t, feat):
    if policy == 0:                                    # uniform over right / up / down
        return np.int64(rng.bounded(rng.u32(pkey, np.uint32(t)), 3))
    r, c = s[F_ROW], s[F_COL]
    if c < TOP[1]:
        return RIGHT
    if policy == 1:                                    # always the top arm
        return UP
    # one_taste: F_MEM bit 0 = the arm it heads for (0 top, 1 bottom), bit 1 = it has tasted the
    # poison, so it knows what red means and turns back from an arm end that shows red
    target = s[F_MEM] & 1
    if r != START[0] and s[F_MEM] >> 1:
        env_features(s, feat)
        if feat[2] > 0:
            target = 1 - target
            s[F_MEM] = target | 2
    return UP if target == 0 else DOWN


@njit(parallel=True, cache=True)
def _scripted(policy, food_top, keys, pkeys, T, out):
    P, E = out.shape[0], out.shape[1]
    for pe in prange(P * E):
        p = pe // E
        e = pe - p * E
        s = out[p, e]
        feat = np.zeros(3, np.float32)
        env_reset(s, food_top[e])
        for t in range(T):
            if s[F_ALIVE] == 0:
                break
            a = _scripted_action(s, policy, pkeys[p, e], t, feat)
            env_step(s, a, keys[e], t)
            if policy == 2 and s[F_LASTR] < 0:          # tasted the poison: take the other arm from now on
                s[F_MEM] = (1 - (s[F_MEM] & 1)) | 2


def scripted_episodes(policy: str, cfg: TMazeConfig, seed: int, generation: int, agents: int = 1) -> np.ndarray:
    """Records [agents, E, NF] of a scripted agent on the same episodes a network would see:
    ``random`` (uniform actions), ``same_arm`` (always the top arm), ``one_taste`` (heads for one arm,
    switches after tasting its poison or seeing red ahead)."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    lay = layout(seed, generation, cfg.envs)
    pkeys = np.array([[rng.py_key(seed, generation, PURPOSE_POLICY + a * cfg.envs + e) for e in range(cfg.envs)]
                      for a in range(agents)], np.uint32)
    out = np.zeros((agents, cfg.envs, NF), np.int64)
    _scripted(POLICIES.index(policy), lay.food_top, lay.keys, pkeys, cfg.steps, out)
    return out


# ----------------------------------------------------------------------------- metrics
def summary(records: np.ndarray, steps: int) -> dict:
    """Metrics over all episodes in ``records`` [..., NF] (see the module docstring)."""
    r = np.asarray(records).reshape(-1, NF)
    tasted = r[:, F_TASTE] >= 0
    decided = tasted & (r[:, F_NEXT] > 0)
    avoided = decided & (r[:, F_NEXT] == 1)
    n_dec = int(decided.sum())
    swap_dec = int(r[:, F_SWAPDEC].sum())
    return {
        "episodes": int(len(r)),
        "fitness": float(fitness(r, steps).mean()),
        "foods_per_episode": float(r[:, F_FOODS].mean()),
        "poisons_per_episode": float(r[:, F_POISONS].mean()),
        "tasted_episodes": int(tasted.sum()),
        "decisions": n_dec,
        "avoid_after_taste": float(avoided.sum() / n_dec) if n_dec else float("nan"),
        "poison_deaths": int((r[:, F_DEATH] == DEATH_POISON).sum()),
        "energy_deaths": int((r[:, F_DEATH] == DEATH_ENERGY).sum()),
        "swap_decisions": swap_dec,
        "adapt_after_swap": float(r[:, F_SWAPGOOD].sum() / swap_dec) if swap_dec else float("nan"),
        "alive_steps": float(r[:, F_ALIVESTEPS].mean()),
    }


__all__ = ["TMazeConfig", "Layout", "layout", "env_reset", "env_step", "env_features", "sensors", "choose",
           "run_episodes", "fitness", "scripted_episodes", "summary", "FIELDS", "NF", "OPEN", "POLICIES",
           "RIGHT", "UP", "DOWN", "NONE", "ENERGY_Q", "PURPOSE_TMAZE", "PURPOSE_TMAZE_NOISE"]
