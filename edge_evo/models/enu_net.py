"""Network of Evolvable Neural Units (seed 002, section 3 and Figure 4): every neuron and every
synapse is an ENU cell (``models/enu.py``); all neurons share one genome, all synapses another,
each unit keeps private state (memory ``h`` and fed-back output ``y``).

Units: ``n_sensors`` input neurons (their C-channel output is set by the task each step), then
``N = n_hidden + n_out`` ENU neurons, each with ``S`` incoming synapse ENUs; synapse ``s`` of
neuron ``n`` reads source ``pre[n][s]`` (an index into ``[sensors..., neurons...]``). One step,
for every offspring p and environment copy e (all reads are of the previous step's outputs)::

    src        = [x_t (sensors, set by the task) ; y_n(t-1) (neurons)]          [Ns + N, C]
    syn_in     = [src[pre[n, s]] ; y_n(t-1)[n]]            pre output + post feedback   [N, S, 2C]
    y_s, h_s   = synapse_ENU(syn_in, y_s, h_s)             cell: n_in 2C, memory H, out C
    int_in[n]  = (1 / S) * sum_s y_s[n, s]                 the integration step          [N, C]
    y_n, h_n   = neuron_ENU(int_in, y_n, h_n)              cell: n_in C, memory H, out C
    action     = channel 0 of the output neurons (the last ``n_out`` neurons)

Output noise (seed: N(0, 0.01) on the output gate, so units with shared genomes diverge) is an
explicit argument: ``output_noise`` draws it from the counter RNG (seed, step) for every env copy,
unit and channel, the same for all offspring (common random numbers).

Genome = [neuron ENU tensors | synapse ENU tensors], names ``Wn_g, Wn_c, Wn_o, Ws_g, Ws_c, Ws_o``.
This module is the NumPy reference (float32, or float64 for the Brian2 parity check); fast
population kernels must match it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import rng
from .enu import ENUSpec, enu_step

PURPOSE_NOISE = 0x8000_0010       # output-gate noise stream (rng.key(seed, step, PURPOSE_NOISE))


@dataclass(frozen=True)
class ENUNetSpec:
    n_sensors: int
    n_hidden: int
    n_out: int
    pre: tuple[tuple[int, ...], ...]      # per ENU neuron, its synapses' source indices
    channels: int = 16
    memory: int = 32
    kind: str = "enu_net"

    def __post_init__(self):
        object.__setattr__(self, "pre", tuple(tuple(int(i) for i in row) for row in self.pre))
        if min(self.n_sensors, self.n_out, self.channels, self.memory) < 1 or self.n_hidden < 0:
            raise ValueError(f"ENU net sizes must be >= 1 (n_hidden >= 0): {self}")
        if len(self.pre) != self.n_neurons:
            raise ValueError(f"pre has {len(self.pre)} rows, need one per ENU neuron ({self.n_neurons})")
        S = {len(r) for r in self.pre}
        if len(S) != 1 or 0 in S:
            raise ValueError("every ENU neuron needs the same number (>= 1) of synapses; "
                             f"got {sorted(len(r) for r in self.pre)}")
        n_src = self.n_sensors + self.n_neurons
        if any(not 0 <= i < n_src for r in self.pre for i in r):
            raise ValueError(f"pre indices must lie in [0, {n_src}) (sensors, then neurons)")

    @classmethod
    def tmaze(cls, channels: int = 16, memory: int = 32, seed: int = 0) -> "ENUNetSpec":
        """The seed's T-maze layout: 3 observation sensors + 1 reward sensor, 3 hidden + 3 output
        ENU neurons, 8 synapses each: 2 observation sensors, 2 hidden, 2 output, the reward sensor,
        itself. Which two of each group is drawn from the counter RNG with ``seed``."""
        obs, reward, hidden, out = [0, 1, 2], 3, [4, 5, 6], [7, 8, 9]
        k = rng.py_key(seed, 0, PURPOSE_NOISE + 1)
        draw = iter(range(1 << 30))

        def pick2(group):
            i = rng.py_bounded(rng.py_u32(k, next(draw)), len(group))
            j = rng.py_bounded(rng.py_u32(k, next(draw)), len(group) - 1)
            return [group[i], [g for g in group if g != group[i]][j]]

        pre = [pick2(obs) + pick2(hidden) + pick2(out) + [reward, 4 + n] for n in range(6)]
        return cls(4, 3, 3, tuple(map(tuple, pre)), channels, memory)

    @property
    def n_neurons(self) -> int:
        return self.n_hidden + self.n_out

    @property
    def n_synapses(self) -> int:
        return len(self.pre[0])

    @property
    def neuron(self) -> ENUSpec:
        return ENUSpec(self.channels, self.memory, self.channels)

    @property
    def synapse(self) -> ENUSpec:
        return ENUSpec(2 * self.channels, self.memory, self.channels)

    # ---- the spec protocol shared with MLPSpec (Population, OpenES)
    def tensors(self) -> list[tuple[str, tuple[int, int]]]:
        return ([(n.replace("W_", "Wn_"), s) for n, s in self.neuron.tensors()]
                + [(n.replace("W_", "Ws_"), s) for n, s in self.synapse.tensors()])

    def offsets(self) -> dict[str, int]:
        out, pos = {}, 0
        for name, (a, b) in self.tensors():
            out[name] = pos
            pos += a * b
        return out

    @property
    def n_params(self) -> int:
        return sum(a * b for _, (a, b) in self.tensors())

    def tensor_frac(self, name: str) -> int:
        return 7

    def fan_in(self, name: str) -> int:
        return dict(self.tensors())[name][1]

    @property
    def dims(self) -> tuple[int, ...]:
        return (self.n_sensors, self.n_hidden, self.n_out, self.channels, self.memory)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "n_sensors": self.n_sensors, "n_hidden": self.n_hidden, "n_out": self.n_out,
                "pre": [list(r) for r in self.pre], "channels": self.channels, "memory": self.memory}

    @classmethod
    def from_dict(cls, d: dict) -> "ENUNetSpec":
        d = dict(d)
        d.pop("kind", None)
        return cls(pre=tuple(map(tuple, d.pop("pre"))), **d)

    def split(self, genomes: np.ndarray) -> tuple[dict, dict]:
        """[P, n_params] -> (neuron params, synapse params) as ``enu_step`` dicts (views)."""
        g = np.atleast_2d(np.asarray(genomes))
        if g.shape[1] != self.n_params:
            raise ValueError(f"ENU net genome length {g.shape[1]} != {self.n_params} parameters of {self}")
        cut = self.neuron.n_params
        return self.neuron.unflatten(g[:, :cut]), self.synapse.unflatten(g[:, cut:])


@dataclass
class ENUNetState:
    """Private state of every unit: neurons [P, E, N, .], synapses [P, E, N, S, .]."""
    y_n: np.ndarray
    h_n: np.ndarray
    y_s: np.ndarray
    h_s: np.ndarray

    @classmethod
    def zeros(cls, spec: ENUNetSpec, P: int, E: int, dtype=np.float32) -> "ENUNetState":
        N, S, C, H = spec.n_neurons, spec.n_synapses, spec.channels, spec.memory
        return cls(np.zeros((P, E, N, C), dtype), np.zeros((P, E, N, H), dtype),
                   np.zeros((P, E, N, S, C), dtype), np.zeros((P, E, N, S, H), dtype))


def output_noise(spec: ENUNetSpec, seed: int, step: int, E: int, std: float, dtype=np.float32):
    """Output-gate noise of one step: (neurons [1, E, N, C], synapses [1, E, N, S, C]), N(0, std)
    from the counter RNG, shared by all offspring. std = 0 gives zeros."""
    N, S, C = spec.n_neurons, spec.n_synapses, spec.channels
    n = E * N * C * (1 + S)
    if std == 0:
        z = np.zeros(n)
    else:
        # Irwin-Hall gauss(h) ~ N(0, GAUSS_STD^2) in integer units, scaled in float64 to N(0, std^2);
        # rng.gauss_stream rounds to integers, which turned std = 0.01 into all zeros
        h = rng.u32_stream(seed, step, PURPOSE_NOISE, n).astype(np.int64)
        g = (h & 255) + ((h >> 8) & 255) + ((h >> 16) & 255) + (h >> 24) - rng.GAUSS_MAX
        z = g * (std / rng.GAUSS_STD)
    z = z.astype(dtype)
    return z[:E * N * C].reshape(1, E, N, C), z[E * N * C:].reshape(1, E, N, S, C)


def enu_net_step(spec: ENUNetSpec, params: tuple[dict, dict], x: np.ndarray, st: ENUNetState,
                 noise=(None, None)) -> ENUNetState:
    """One network step: x [P, E, n_sensors, C] sensor outputs -> the new state (neuron outputs in ``y_n``)."""
    pn, ps = params
    P, E, N, C = st.y_n.shape
    S, H = spec.n_synapses, spec.memory
    if x.shape != (P, E, spec.n_sensors, C):
        raise ValueError(f"sensor input {x.shape} != [P={P}, E={E}, n_sensors={spec.n_sensors}, C={C}]")
    src = np.concatenate([x.astype(st.y_n.dtype), st.y_n], axis=2)
    pre = np.asarray(spec.pre)
    syn_in = np.concatenate([src[:, :, pre], np.broadcast_to(st.y_n[:, :, :, None], (P, E, N, S, C))], axis=4)
    ns = noise[1].reshape(noise[1].shape[0], E * N * S, C) if noise[1] is not None else None
    y_s, h_s = enu_step(spec.synapse, ps, syn_in.reshape(P, E * N * S, 2 * C),
                        st.y_s.reshape(P, E * N * S, C), st.h_s.reshape(P, E * N * S, H), ns)
    y_s = y_s.reshape(P, E, N, S, C)
    integ = y_s.sum(axis=3) / st.y_n.dtype.type(S)
    nn = noise[0].reshape(noise[0].shape[0], E * N, C) if noise[0] is not None else None
    y_n, h_n = enu_step(spec.neuron, pn, integ.reshape(P, E * N, C), st.y_n.reshape(P, E * N, C),
                        st.h_n.reshape(P, E * N, H), nn)
    return ENUNetState(y_n.reshape(P, E, N, C), h_n.reshape(P, E, N, H), y_s, h_s.reshape(P, E, N, S, H))


def enu_net_run(spec: ENUNetSpec, genomes: np.ndarray, xs: np.ndarray, noise_std: float = 0.0,
                noise_seed: int = 0, dtype=np.float32):
    """Run T steps from zero state: xs [T, P, E, n_sensors, C] -> neuron outputs [T, P, E, N, C], final state."""
    xs = np.asarray(xs)
    T, P, E = xs.shape[:3]
    params = spec.split(np.asarray(genomes, dtype=dtype))
    st = ENUNetState.zeros(spec, P, E, dtype)
    ys = np.empty((T, P, E, spec.n_neurons, spec.channels), dtype)
    for t in range(T):
        st = enu_net_step(spec, params, xs[t], st, output_noise(spec, noise_seed, t, E, noise_std, dtype))
        ys[t] = st.y_n
    return ys, st


__all__ = ["ENUNetSpec", "ENUNetState", "enu_net_step", "enu_net_run", "output_noise", "PURPOSE_NOISE"]
