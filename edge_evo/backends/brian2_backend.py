"""Brian2 backend: the rate-coded IF networks of ``edge_evo.models.snn`` as Brian2 NeuronGroups/Synapses
(Stimberg, Brette, Goodman 2019, eLife 8:e47314). ENU networks and cells: ``brian2_enu``.

One IF layer = one ``NeuronGroup`` (variables v, I_ext, v_th, v_rst, gain) with
``threshold='v > v_th'`` and reset ``v -= v_th`` or ``v = v_rst``; one Affine between two IF
layers = ``Synapses`` with ``on_pre='v_post += gain_post * w'``. An Affine that follows the
constant input is a constant current ``I_ext`` (plus bias) added every step by ``run_regularly``.

NIR's Affine has no delay, but Brian2's default schedule runs all thresholds before all synapses,
which would delay each layer by one step. So every object of layer k runs in the ``thresholds``
slot with ``order``: synapses from layer k-1 (3k-1), the current update of layer k (3k), its
threshold (3k+1); the resets keep their own later slot. Spikes are then identical to the NumPy
interpreter (``edge_evo.models.snn.simulate``): all membrane values are exact integers in
float64, so the order in which Brian2 adds synaptic inputs cannot change a single spike.

A batch of B inputs is B independent copies of the network in one Brian2 network (block-diagonal
synapses), so one ``run`` simulates the batch. The default code generation target is 'numpy'
(no compiler, starts in about a second); 'cython' is faster for long runs after a one-time compile.
"""
from __future__ import annotations

import logging

import numpy as np

from ..models.snn import AffineLayer, SpikingNet

log = logging.getLogger(__name__)

BRIAN2_PIP = "pip install brian2 'numpy<2.4' (or pip install 'edge_evo[spiking]')"


def import_brian2():
    """``brian2`` module, or ImportError naming the install command."""
    try:
        import brian2
    except ImportError as e:
        raise ImportError(f"the Brian2 backend needs brian2: {BRIAN2_PIP}") from e
    except AttributeError as e:  # numpy >= 2.4 removed ndarray.ptp, which brian2 2.9 still uses
        raise ImportError(f"brian2 failed to import with this numpy ({e}); pin numpy<2.4") from e
    return brian2


def simulate_brian2(net: SpikingNet, X, T: int, target: str = "numpy", record: bool = False):
    """Run ``net`` in Brian2 for ``T`` steps on constant inputs ``X`` [B, n_in].

    Same return values as ``edge_evo.models.snn.simulate``: ``(counts, v)`` of the output layer,
    plus per-IF-layer bool spike arrays [T, B, n] when ``record``.
    """
    b2 = import_brian2()
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != net.n_in:
        raise ValueError(f"X must be [batch, {net.n_in}], got {X.shape}")
    if int(T) < 1:
        raise ValueError(f"T must be >= 1 steps, got {T}")
    if target not in ("numpy", "cython"):
        raise ValueError(f"target must be 'numpy' or 'cython', got {target!r}")
    B, T = X.shape[0], int(T)
    b2.prefs.codegen.target = target
    dt = net.dt * b2.second
    layers = list(net.layers)
    cur = X
    if isinstance(layers[0], AffineLayer):       # constant input through a constant Affine
        cur = X @ layers[0].weight.T + layers[0].bias
        layers = layers[1:]
    model = """v : 1
I_ext : 1 (constant)
v_th : 1 (constant)
v_rst : 1 (constant)
gain : 1 (constant)"""
    reset = "v -= v_th" if net.reset == "subtract" else "v = v_rst"
    objs, groups, mons = [], [], []
    pending = None                               # Affine waiting for its post-synaptic IF layer
    k = 0
    for L in layers:
        if isinstance(L, AffineLayer):
            pending = L
            continue
        n = L.size
        G = b2.NeuronGroup(B * n, model, threshold="v > v_th", reset=reset, dt=dt, name=f"if{k}")
        G.v_th = np.tile(L.v_threshold, B)
        G.v_rst = np.tile(L.v_reset, B)
        G.gain = np.tile(L.r * net.dt, B)
        if k == 0:
            G.I_ext = cur.ravel()                # [B, n] row-major == copy-major neuron index
        else:
            G.I_ext = np.tile(pending.bias, B)
            pre, npre = groups[-1], groups[-1].N // B
            S = b2.Synapses(pre, G, "w : 1 (constant)", on_pre="v_post += gain_post * w", dt=dt, name=f"affine{k}")
            jj, ii = np.nonzero(pending.weight)   # weight[post, pre]
            w = pending.weight[jj, ii]
            off = np.repeat(np.arange(B), len(ii))
            S.connect(i=np.tile(ii, B) + off * npre, j=np.tile(jj, B) + off * n)
            S.w = np.tile(w, B)
            S.pre.when, S.pre.order = "thresholds", 3 * k - 1
            objs.append(S)
        upd = G.run_regularly("v += gain * I_ext", when="thresholds", order=3 * k, name=f"if{k}_input")
        G.thresholder["spike"].when, G.thresholder["spike"].order = "thresholds", 3 * k + 1
        objs += [G, upd]
        groups.append(G)
        if record or L is layers[-1]:
            m = b2.SpikeMonitor(G, name=f"spikes{k}")
            mons.append(m)
            objs.append(m)
        pending = None
        k += 1
    netw = b2.Network(*objs)
    netw.run(T * dt, namespace={})
    last = groups[-1]
    n_out = last.N // B
    m = mons[-1]
    counts = np.bincount(np.asarray(m.i), minlength=last.N).reshape(B, n_out).astype(np.int32)
    v = np.asarray(last.v[:]).reshape(B, n_out)
    if not record:
        return counts, v
    rec = []
    for G, m in zip(groups, mons):
        a = np.zeros((T, G.N), dtype=bool)
        steps = np.round(np.asarray(m.t / dt)).astype(np.int64)
        a[steps, np.asarray(m.i)] = True
        rec.append(a.reshape(T, B, G.N // B))
    return counts, v, rec


__all__ = ["import_brian2", "simulate_brian2", "BRIAN2_PIP"]
