"""Brian2 backend for networks of Evolvable Neural Units (``edge_evo.models.enu_net``; Bertens & Lee
2019, arXiv:1912.07589) and single ENU cells (``edge_evo.models.enu``): the NumPy reference as a
Brian2 network, for validation, monitors and rasters (not for the evolution loop: a warm
``Network.run`` costs far more than the batched NumPy/Numba kernels).

Mapping (one Brian2 time step ``dt`` = one network step), E environment copies side by side::

    units      NeuronGroup, E*n_sensors sensors first, then E*N ENU neurons (subgroups)
               variables y0..y{C-1} (output, fed back), h0..h{H-1} (memory), isum0..isum{C-1}
    syn        Synapses units -> neurons, one per (copy, neuron, synapse slot); variables
               sy0.., sh0.. (the synapse ENU's own output and memory)
    start      sensors:  y_c = x_in(t, i*C + c)                       (TimedArray, order -2)
    start      syn:      synapse ENU on [y_pre, y_post] with noise_s (TimedArray, order 0)
    groups -1  isum_c = sum over incoming synapses of sy_c             ((summed), forced before the neurons)
    groups 0   neurons:  neuron ENU on isum / S with noise_n           (TimedArray)
    thresholds spike when y0 crosses ``spike_threshold`` upwards (no reset, see below)

Every ENU update is generated ``run_regularly`` code that first computes all gates, candidates
and new outputs as temporaries from the old state, then writes ``h`` and ``y``: so every gate
sees the previous step's values, as in ``enu_step``. The synapses read ``y_post`` before the
neurons overwrite it (slot ``start`` < ``groups``), which is the reference's "all reads are of
the previous step's outputs".

Weights: all of them are read from ONE flat float64 array (the genome) through a user
``Function`` ``enu_w(k)`` whose Cython implementation indexes that array. The generated code
then holds only integer offsets, so it is the same for every genome (compiled once, cached on
disk) and a new genome is an in-place array write (``ENUNetBrian2.run``). Writing the weights as
literal constants instead makes the C compiler take tens of minutes at memory 16
(notes/brian2-nir.md). The time-varying inputs (sensor values, output noise from
``models.enu_net.output_noise``) enter through ``TimedArray`` whose row count is padded to a
multiple of 128 steps, so runs of different length reuse the compiled code.

Spike (for monitors and rasters): an ENU output is continuous in [0, 1]; we call an upward crossing
of ``spike_threshold`` (default 0.5) by output channel 0 a spike, i.e. ``y0 > theta`` at this step
and ``y0 <= theta`` at the previous step (Brian2 ``threshold=`` with no reset). A unit that stays
above threshold spikes once, when it crosses.

Code generation: ``target="cython"`` (compiled once per network shape: E and the padded T are
compiled in; cache directory ``cython_cache_dir()``; a cold build took 145 s at channels 4 /
memory 8 and 164 s at 8 / 16 on a busy 2-core machine, docs/enu.md), or ``"numpy"`` (no
compiler). When no working C++ compiler is found the Cython target falls back to numpy with a
warning in the log.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..models.enu import ENUSpec
from ..models.enu_net import ENUNetSpec, ENUNetState, output_noise
from .brian2_backend import import_brian2

log = logging.getLogger(__name__)

T_PAD = 128            # TimedArray rows are padded to a multiple of this (their size is compiled in)
CACHE_ENV = "EDGE_EVO_BRIAN2_CACHE"


def cython_cache_dir() -> Path:
    """Where Brian2's compiled Cython modules go: ``$EDGE_EVO_BRIAN2_CACHE``, else
    ``$XDG_CACHE_HOME`` (or ``~/.cache``) ``/edge_evo/brian2_cython``, else a temp directory."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    d = base / "edge_evo" / "brian2_cython"
    try:
        d.mkdir(parents=True, exist_ok=True)
        if os.access(d, os.W_OK):
            return d
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / "edge_evo_brian2_cython"


_CYTHON_OK: bool | None = None


def resolve_target(target: str) -> str:
    """'cython' when asked and a compiler works (checked once per process), else 'numpy' (logged)."""
    global _CYTHON_OK
    if target not in ("cython", "numpy"):
        raise ValueError(f"target must be 'cython' or 'numpy', got {target!r}")
    if target == "numpy":
        return target
    b2 = import_brian2()
    d = cython_cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    b2.prefs.codegen.runtime.cython.cache_dir = str(d)
    if _CYTHON_OK is None:
        try:
            from brian2.codegen.runtime.cython_rt import CythonCodeObject
            _CYTHON_OK = bool(CythonCodeObject.is_available())
        except Exception as e:  # noqa: BLE001 - any failure here means "no usable compiler"
            log.debug("cython availability check failed: %s", e)
            _CYTHON_OK = False
        if not _CYTHON_OK:
            log.warning("Brian2 cython target unavailable (no working C++ compiler or Cython): "
                        "falling back to the numpy target (slower, same results); install g++ and cython")
    return "cython" if _CYTHON_OK else "numpy"


# ---------------------------------------------------------------- code generation

def _dot(w_row: int, terms: list[str]) -> str:
    """``W[row] . [terms, 1]`` with W read from the flat genome: enu_w(w_row + j) * terms[j] + bias."""
    parts = [f"enu_w({w_row + j})*{t}" for j, t in enumerate(terms)]
    parts.append(f"enu_w({w_row + len(terms)})")
    return " + ".join(parts)


def enu_cell_code(spec: ENUSpec, offset: int, x: list[str], y: list[str], h: list[str],
                  noise: list[str] | None, tmp: str) -> str:
    """Brian2 abstract code of one ``enu_step`` for a unit whose input expressions are ``x``, output
    variables ``y``, memory variables ``h``; weights at ``offset`` in the flat genome (W_g, W_c,
    W_o row-major). Temporaries (prefix ``tmp``) come first, so all gates read the old state."""
    H, n_a = spec.n_hidden, spec.n_a
    if (len(x), len(y), len(h)) != (spec.n_in, spec.n_out, H):
        raise ValueError(f"ENU code: {len(x)} inputs, {len(y)} outputs, {len(h)} memory names for {spec}")
    og, oc, oo = offset, offset + 2 * H * n_a, offset + 3 * H * n_a
    a = list(x) + list(y) + list(h)
    L = []
    for k in range(H):                                   # z = sigmoid(3 u)
        L.append(f"{tmp}z{k} = 1.0/(1.0 + exp(-(3.0*({_dot(og + k * n_a, a)}))))")
    for k in range(H):                                   # r = sigmoid(3 (q - 1))
        L.append(f"{tmp}r{k} = 1.0/(1.0 + exp(-(3.0*(({_dot(og + (H + k) * n_a, a)}) - 1.0))))")
    ac = list(x) + list(y) + [f"({tmp}r{j}*{h[j]})" for j in range(H)]
    for k in range(H):                                   # c = tanh(3 W_c [x, y, r*h, 1]); h' = (1-z) h + z c
        L.append(f"{tmp}c{k} = tanh(3.0*({_dot(oc + k * n_a, ac)}))")
        L.append(f"{tmp}h{k} = (1.0 - {tmp}z{k})*{h[k]} + {tmp}z{k}*{tmp}c{k}")
    hn = [f"{tmp}h{k}" for k in range(H)]
    for c in range(spec.n_out):                          # y = clamp(W_o [h', 1] + noise, 0, 1)
        o = _dot(oo + c * (H + 1), hn)
        if noise is not None:
            o = f"({o}) + {noise[c]}"
        L.append(f"{tmp}y{c} = clip({o}, 0.0, 1.0)")
    L += [f"{h[k]} = {tmp}h{k}" for k in range(H)]       # write the state only after every read
    L += [f"{y[c]} = {tmp}y{c}" for c in range(spec.n_out)]
    return "\n".join(L)


def _weight_function(b2, W: np.ndarray):
    """The user Function ``enu_w(k) = W[k]``: numpy reads the array, Cython indexes it through the
    function's namespace (the same array object, so in-place writes need no recompile)."""
    f = b2.Function(lambda k: W[np.asarray(k, dtype=np.int64)], arg_units=[1], return_unit=1,
                    arg_types=["integer"], return_type="float", stateless=True)
    f.implementations.add_implementation(
        "cython",
        "cdef double enu_w(int k):\n    global _namespaceenu_w_values\n    return _namespaceenu_w_values[k]\n",
        namespace={"enu_w_values": W}, name="enu_w")
    return f


def _threshold_group(b2, n: int, model: str, name: str, clock):
    """NeuronGroup whose spike is an upward crossing of ``theta`` by y0, with no reset (no reset
    code object to compile; Brian2's "threshold without reset" warning is intended here)."""
    lg = logging.getLogger("brian2.groups.neurongroup")
    level = lg.level
    lg.setLevel(logging.ERROR)
    try:
        return b2.NeuronGroup(n, model, clock=clock, name=name, threshold="y0 > theta and ylast0 <= theta")
    finally:
        lg.setLevel(level)


@contextmanager
def _no_loop_invariants(b2):
    """Brian2's loop-invariant pass would hoist every ``enu_w(k)`` into its own scalar through
    sympy: 7x slower code generation at channels 8 / memory 16 (37 s vs 5.5 s, numpy target) and
    slower code; an array read per term in the loop costs nothing. Restored afterwards."""
    old = b2.prefs.codegen.loop_invariant_optimisations
    b2.prefs.codegen.loop_invariant_optimisations = False
    try:
        yield
    finally:
        b2.prefs.codegen.loop_invariant_optimisations = old


def _rows(T: int) -> int:
    """TimedArray rows for T steps: T rounded up to a multiple of T_PAD (the row count is compiled in)."""
    return max(T_PAD, -(-int(T) // T_PAD) * T_PAD)


# ---------------------------------------------------------------- results

@dataclass
class ENUBrian2Result:
    """What a Brian2 ENU run returns.

    ``ys`` [T, E, N, C]: neuron outputs after every step (as ``enu_net_run``'s, with P = 1 dropped);
    ``state``: final ``ENUNetState`` with P = 1 (for a single cell: ``h`` [E, H] in ``state.h_n``);
    ``spike_steps``, ``spike_units``: one entry per spike (step index; unit index into
    ``unit_labels``); ``traces``: {variable: [T, n_recorded]} for ``record_units`` (global unit
    indices in ``recorded_units``); ``y0`` [T, n_units]: output channel 0 of every unit per step
    (sensors: their input); timings in seconds (``build_s`` includes code generation and, on a
    cold cache, compilation)."""
    ys: np.ndarray
    state: ENUNetState | None
    spike_steps: np.ndarray
    spike_units: np.ndarray
    unit_labels: list[str]
    traces: dict[str, np.ndarray] = field(default_factory=dict)
    recorded_units: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    target: str = "numpy"
    build_s: float = 0.0
    run_s: float = 0.0
    spike_threshold: float = 0.5
    y0: np.ndarray | None = None

    def write_raster(self, run_dir, title: str | None = None, name: str = "raster.png"):
        """Write the spike raster (and the channel-0 outputs under it) to ``run_dir/name``; returns
        the path, or None when matplotlib is missing."""
        from ..plots import plot_raster
        T = self.ys.shape[0]
        return plot_raster(self.spike_steps, self.spike_units, Path(run_dir) / name, len(self.unit_labels), T,
                           self.unit_labels, title, self.y0)


# ---------------------------------------------------------------- the network

class ENUNetBrian2:
    """An ``ENUNetSpec`` network with ``E`` environment copies as one Brian2 network; build once,
    ``run`` many genomes / inputs (same E, T <= the padded length) without regenerating code.

    ``record_units``: global unit indices (see ``unit_labels``) whose y and h are traced;
    ``record_outputs``: record every neuron's output each step (``ys`` of the result)."""

    def __init__(self, spec: ENUNetSpec, E: int = 1, T: int = 100, target: str = "cython",
                 spike_threshold: float = 0.5, record_units=None, record_outputs: bool = True):
        if not isinstance(spec, ENUNetSpec):
            raise TypeError(f"spec must be an ENUNetSpec, got {type(spec).__name__} "
                            "(single cells: simulate_enu_brian2)")
        if int(E) < 1 or int(T) < 1:
            raise ValueError(f"E and T must be >= 1, got E={E} T={T}")
        b2 = import_brian2()
        from brian2.groups.subgroup import Subgroup
        self.b2, self.spec, self.E = b2, spec, int(E)
        self.target = resolve_target(target)
        self.spike_threshold = float(spike_threshold)
        Ns, N, S, C, H = spec.n_sensors, spec.n_neurons, spec.n_synapses, spec.channels, spec.memory
        E = self.E
        self.T_rows = _rows(T)
        self.n_units = E * (Ns + N)
        self.unit_labels = ([f"e{e} sensor {k}" for e in range(E) for k in range(Ns)]
                            + [f"e{e} {'out' if n >= spec.n_hidden else 'hidden'} {n}"
                               for e in range(E) for n in range(N)])
        t0 = time.perf_counter()
        b2.prefs.codegen.target = self.target
        # one clock with a fixed name: per-group clocks get per-process counter names, which
        # change the generated code and so defeat the compile cache
        clock = b2.Clock(dt=b2.ms, name="enu_clock")
        self.W = np.zeros(spec.n_params, np.float64)
        self.x_values = np.zeros((self.T_rows, E * Ns * C))
        self.nn_values = np.zeros((self.T_rows, E * N * C))
        self.ns_values = np.zeros((self.T_rows, E * N * S * C))
        self._ta = {"x_in": b2.TimedArray(self.x_values, dt=b2.ms, name="enu_x_in"),
                    "noise_n": b2.TimedArray(self.nn_values, dt=b2.ms, name="enu_noise_n"),
                    "noise_s": b2.TimedArray(self.ns_values, dt=b2.ms, name="enu_noise_s")}
        self.namespace = dict(self._ta, enu_w=_weight_function(b2, self.W), theta=self.spike_threshold)

        yv = [f"y{c}" for c in range(C)]
        hv = [f"h{k}" for k in range(H)]
        model = "\n".join([f"{v} : 1" for v in yv + hv + [f"isum{c}" for c in range(C)]]
                          + ["ylast0 : 1", "nid : integer (constant)"])
        G = _threshold_group(b2, self.n_units, model, "enu_units", clock)
        # fixed names: a generated name (a per-process counter) would change the code and its cache key
        sensors = Subgroup(G, 0, E * Ns, name="enu_sensor_units")
        neurons = Subgroup(G, E * Ns, E * (Ns + N), name="enu_neuron_units")
        neurons.nid = np.arange(E * N)
        upd_x = sensors.run_regularly(
            "ylast0 = y0\n" + "\n".join(f"y{c} = x_in(t, i*{C} + {c})" for c in range(C)),
            when="start", order=-2, name="enu_sensors")
        cut = spec.neuron.n_params
        code_n = enu_cell_code(spec.neuron, 0, [f"(isum{c}/{S}.0)" for c in range(C)], yv, hv,
                               [f"noise_n(t, nid*{C} + {c})" for c in range(C)], "tn")
        upd_n = neurons.run_regularly("ylast0 = y0\n" + code_n, when="groups", order=0, name="enu_neurons")

        sy = [f"sy{c}" for c in range(C)]
        sh = [f"sh{k}" for k in range(H)]
        syn_model = "\n".join([f"{v} : 1" for v in sy + sh] + ["sid : integer (constant)"]
                              + [f"isum{c}_post = sy{c} : 1 (summed)" for c in range(C)])
        Syn = b2.Synapses(G, neurons, syn_model, clock=clock, name="enu_syn")
        pre = np.asarray(spec.pre)                                  # [N, S] into [sensors, neurons]
        src = np.where(pre < Ns, pre, 0)
        ii, jj = [], []
        for e in range(E):
            glob = np.where(pre < Ns, e * Ns + src, E * Ns + e * N + (pre - Ns))
            ii.append(glob.ravel())
            jj.append(np.repeat(e * N + np.arange(N), S))
        Syn.connect(i=np.concatenate(ii), j=np.concatenate(jj))
        for upd in Syn.summed_updaters.values():   # Brian2 puts them at the subgroup's order: force before
            upd.when, upd.order = "groups", -1      # the neuron update (groups, 0)
        Syn.sid = np.arange(E * N * S)                               # synapse k = (e, n, s) row-major
        code_s = enu_cell_code(spec.synapse, cut, [f"y{c}_pre" for c in range(C)] + [f"y{c}_post" for c in range(C)],
                               sy, sh, [f"noise_s(t, sid*{C} + {c})" for c in range(C)], "ts")
        upd_s = Syn.run_regularly(code_s, when="start", order=0, name="enu_syn_update")

        objs = [G, Syn, upd_x, upd_n, upd_s]
        self.G, self.neurons, self.Syn = G, neurons, Syn
        self.spikes = b2.SpikeMonitor(G, record=True, name="enu_spikes")
        objs.append(self.spikes)
        self.out_mon = None
        if record_outputs:
            self.out_mon = b2.StateMonitor(neurons, yv, record=True, when="end", name="enu_outputs")
            objs.append(self.out_mon)
        self.recorded_units = np.asarray([] if record_units is None else record_units, np.int64)
        if self.recorded_units.size and (self.recorded_units.min() < 0 or self.recorded_units.max() >= self.n_units):
            raise ValueError(f"record_units must lie in [0, {self.n_units}) (see unit_labels)")
        self.trace_mon = None
        if self.recorded_units.size:
            self.trace_mon = b2.StateMonitor(G, yv + hv, record=self.recorded_units, when="end", name="enu_traces")
            objs.append(self.trace_mon)
        self.net = b2.Network(*objs)
        self.net.store("zero", filename=None)
        self.build_s = time.perf_counter() - t0
        self._compiled = False

    def run(self, genome, xs, noise_std: float = 0.0, noise_seed: int = 0) -> ENUBrian2Result:
        """Simulate ``genome`` [n_params] on ``xs`` [T, E, n_sensors, C] from zero state. The first
        call generates and compiles the code (``build_s`` of the result); later calls reuse it."""
        spec, E = self.spec, self.E
        Ns, C = spec.n_sensors, spec.channels
        g = np.asarray(genome, dtype=np.float64)
        if g.ndim == 2 and g.shape[0] == 1:
            g = g[0]
        if g.shape != (spec.n_params,):
            raise ValueError(f"genome must be [{spec.n_params}] for {spec}, got {np.shape(genome)}")
        xs = np.asarray(xs, dtype=np.float64)
        if xs.ndim == 5 and xs.shape[1] == 1:
            xs = xs[:, 0]
        if xs.ndim != 4 or xs.shape[1:] != (E, Ns, C):
            raise ValueError(f"xs must be [T, E={E}, n_sensors={Ns}, C={C}], got {xs.shape}")
        T = xs.shape[0]
        if not 1 <= T <= self.T_rows:
            raise ValueError(f"T={T} steps, this network was built for at most {self.T_rows}: build with T={T}")
        if not np.isfinite(g).all() or not np.isfinite(xs).all():
            raise ValueError("genome and xs must be finite")
        b2 = self.b2
        b2.prefs.codegen.target = self.target
        self.net.restore("zero")
        self.W[:] = g                                   # in place: the compiled code reads this array
        self.x_values[:] = 0.0
        self.x_values[:T] = xs.reshape(T, -1)
        self.nn_values[:] = 0.0
        self.ns_values[:] = 0.0
        if noise_std:
            for t in range(T):
                nn, ns = output_noise(spec, noise_seed, t, E, float(noise_std), np.float64)
                self.nn_values[t] = nn.ravel()
                self.ns_values[t] = ns.ravel()
        self._sync_timed_arrays()
        t0 = time.perf_counter()
        with _no_loop_invariants(b2):
            self.net.run(T * b2.ms, namespace=self.namespace)
        run_s = time.perf_counter() - t0
        build_s = self.build_s
        if not self._compiled:                           # the first run generates and compiles
            build_s, run_s, self._compiled = build_s + run_s, 0.0, True
        res = self._result(T, build_s, run_s)
        if self.out_mon is not None:
            res.y0 = np.concatenate([xs[..., 0].reshape(T, -1), res.ys[..., 0].reshape(T, -1)], axis=1)
        return res

    def _sync_timed_arrays(self):
        # TimedArray keeps `values` (numpy target) and a flat float64 view of it (cython): both are
        # the arrays we allocated when they are C-contiguous float64, which they are by construction
        for ta, v in zip(self._ta.values(), (self.x_values, self.nn_values, self.ns_values)):
            if not np.shares_memory(ta.values, v):
                raise RuntimeError("TimedArray copied its values: in-place input updates would be lost")

    def _result(self, T, build_s, run_s) -> ENUBrian2Result:
        spec, E = self.spec, self.E
        N, S, C, H = spec.n_neurons, spec.n_synapses, spec.channels, spec.memory
        b2 = self.b2
        ys = np.zeros((T, E, N, C))
        if self.out_mon is not None:
            ys = np.stack([np.asarray(getattr(self.out_mon, f"y{c}")) for c in range(C)], axis=-1)  # [E*N, T, C]
            ys = ys.transpose(1, 0, 2).reshape(T, E, N, C)
        nrn = self.neurons
        y_n = np.stack([np.asarray(getattr(nrn, f"y{c}")[:]) for c in range(C)], -1).reshape(1, E, N, C)
        h_n = np.stack([np.asarray(getattr(nrn, f"h{k}")[:]) for k in range(H)], -1).reshape(1, E, N, H)
        y_s = np.stack([np.asarray(getattr(self.Syn, f"sy{c}")[:]) for c in range(C)], -1).reshape(1, E, N, S, C)
        h_s = np.stack([np.asarray(getattr(self.Syn, f"sh{k}")[:]) for k in range(H)], -1).reshape(1, E, N, S, H)
        steps = np.round(np.asarray(self.spikes.t / b2.ms)).astype(np.int64)
        traces = {}
        if self.trace_mon is not None:
            for v in [f"y{c}" for c in range(C)] + [f"h{k}" for k in range(H)]:
                traces[v] = np.asarray(getattr(self.trace_mon, v)).T.copy()          # [T, n_recorded]
        return ENUBrian2Result(ys, ENUNetState(y_n, h_n, y_s, h_s), steps, np.asarray(self.spikes.i, np.int64),
                               list(self.unit_labels), traces, self.recorded_units.copy(), self.target,
                               build_s, run_s, self.spike_threshold)


def simulate_enu_net_brian2(spec: ENUNetSpec, genome, xs, noise_std: float = 0.0, noise_seed: int = 0,
                            target: str = "cython", spike_threshold: float = 0.5,
                            record_units=None) -> ENUBrian2Result:
    """Build an ``ENUNetBrian2`` for ``xs`` [T, E, n_sensors, C] and run ``genome`` once (see the
    module docstring). Same equations as ``enu_net_run(spec, genome[None], xs[:, None], noise_std,
    noise_seed, dtype=np.float64)``; to run several genomes, build ``ENUNetBrian2`` once."""
    xs = np.asarray(xs)
    if xs.ndim != 4:
        raise ValueError(f"xs must be [T, E, n_sensors, C], got {xs.shape}")
    net = ENUNetBrian2(spec, E=xs.shape[1], T=xs.shape[0], target=target, spike_threshold=spike_threshold,
                       record_units=record_units)
    return net.run(genome, xs, noise_std, noise_seed)


def simulate_enu_brian2(spec: ENUSpec, genome, xs, target: str = "cython", spike_threshold: float = 0.5,
                        record_units=None) -> ENUBrian2Result:
    """One ENU cell (``models.enu``) per environment copy, E copies side by side: ``xs`` [T, E, n_in]
    -> result with ``ys`` [T, E, 1, n_out] and ``state.h_n`` [1, E, 1, H] (``y_s``/``h_s`` empty).
    Same equations as ``enu_step`` in float64 from zero state (no output noise). ``record_units``
    are copy indices whose y and h are traced; spikes as for networks (y0 crossing upwards)."""
    if not isinstance(spec, ENUSpec):
        raise TypeError(f"spec must be an ENUSpec, got {type(spec).__name__} (networks: simulate_enu_net_brian2)")
    b2 = import_brian2()
    g = np.asarray(genome, dtype=np.float64)
    if g.ndim == 2 and g.shape[0] == 1:
        g = g[0]
    if g.shape != (spec.n_params,):
        raise ValueError(f"genome must be [{spec.n_params}] for {spec}, got {np.shape(genome)}")
    xs = np.asarray(xs, dtype=np.float64)
    if xs.ndim != 3 or xs.shape[2] != spec.n_in or xs.shape[0] < 1:
        raise ValueError(f"xs must be [T, E, n_in={spec.n_in}], got {xs.shape}")
    if not np.isfinite(g).all() or not np.isfinite(xs).all():
        raise ValueError("genome and xs must be finite")
    T, E, n_in = xs.shape
    H, C = spec.n_hidden, spec.n_out
    target = resolve_target(target)
    t0 = time.perf_counter()
    b2.prefs.codegen.target = target
    W = g.copy()
    xv = np.zeros((_rows(T), E * n_in))
    xv[:T] = xs.reshape(T, -1)
    ns = {"enu_w": _weight_function(b2, W), "theta": float(spike_threshold),
          "cell_x_in": b2.TimedArray(xv, dt=b2.ms, name="enu_cell_x_in")}
    yv, hv = [f"y{c}" for c in range(C)], [f"h{k}" for k in range(H)]
    G = _threshold_group(b2, E, "\n".join(f"{v} : 1" for v in yv + hv + ["ylast0"]), "enu_cell_units",
                         b2.Clock(dt=b2.ms, name="enu_cell_clock"))
    code = enu_cell_code(spec, 0, [f"cell_x_in(t, i*{n_in} + {c})" for c in range(n_in)], yv, hv, None, "tc")
    upd = G.run_regularly("ylast0 = y0\n" + code, when="groups", order=0, name="enu_cell_update")
    spikes = b2.SpikeMonitor(G, record=True, name="enu_cell_spikes")
    out = b2.StateMonitor(G, yv, record=True, when="end", name="enu_cell_outputs")
    objs = [G, upd, spikes, out]
    rec = np.asarray([] if record_units is None else record_units, np.int64)
    if rec.size and (rec.min() < 0 or rec.max() >= E):
        raise ValueError(f"record_units must lie in [0, E={E})")
    tr = None
    if rec.size:
        tr = b2.StateMonitor(G, yv + hv, record=rec, when="end", name="enu_cell_traces")
        objs.append(tr)
    with _no_loop_invariants(b2):
        b2.Network(*objs).run(T * b2.ms, namespace=ns)
    build_s = time.perf_counter() - t0
    ys = np.stack([np.asarray(getattr(out, v)) for v in yv], -1).transpose(1, 0, 2)[:, :, None, :]   # [T, E, 1, C]
    h = np.stack([np.asarray(getattr(G, v)[:]) for v in hv], -1).reshape(1, E, 1, H)
    st = ENUNetState(ys[-1][None].copy(), h, np.zeros((1, E, 1, 0, C)), np.zeros((1, E, 1, 0, H)))
    traces = {v: np.asarray(getattr(tr, v)).T.copy() for v in yv + hv} if tr is not None else {}
    return ENUBrian2Result(ys, st, np.round(np.asarray(spikes.t / b2.ms)).astype(np.int64),
                           np.asarray(spikes.i, np.int64), [f"e{e} cell" for e in range(E)], traces, rec,
                           target, build_s, 0.0, float(spike_threshold), ys[:, :, 0, 0].copy())


__all__ = ["simulate_enu_brian2", "ENUNetBrian2", "ENUBrian2Result", "simulate_enu_net_brian2", "enu_cell_code",
           "cython_cache_dir", "resolve_target", "T_PAD"]
