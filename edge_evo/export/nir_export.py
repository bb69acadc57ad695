"""NIR export of rate-coded spiking twins of int8 MLPs (Pedersen et al. 2024, "Neuromorphic
intermediate representation", Nat. Commun. 15:8122).

The MLP is converted by ``edge_evo.models.snn.convert_mlp`` into the chain
``Input -> [IF encoder] -> Affine -> IF -> Affine -> IF -> Output`` and written with ``nir.write``.
NIR neurons are continuous-time ODEs; the discretisation lives in the graph metadata:
``dt`` (forward Euler step, seconds; every IF has r = 1/dt so one step adds the input current),
``reset`` ('subtract': v -= v_threshold on a spike, as Sinabs' MembraneSubtract; 'zero': the NIR
IF equation v = v_reset), ``input`` (what the Input node carries) and ``readout``.

``compat=True`` writes a file that nir <= 1.0.5 readers (sinabs, rockpool pin it) can load: no
``v_reset`` datasets (those readers assume 0, which the converted networks use).

What NIR cannot express: ENU cells (sigmoid/tanh gates, multiplicative gating) and EMNS neurons
(evolved activation mixtures) have no NIR primitive; exporting them raises ``NIRUnsupportedError``
pointing to the ONNX and C exporters.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ..models.snn import AffineLayer, IFLayer, SpikingNet, convert_mlp, DT

log = logging.getLogger(__name__)

NIR_PIP = "pip install 'nir>=1.0.6' h5py"


class NIRUnsupportedError(ValueError):
    """The model has operations NIR has no primitive for."""


def _nir():
    try:
        import nir
    except ImportError as e:
        raise ImportError(f"NIR export needs the 'nir' package: {NIR_PIP} (or pip install 'edge_evo[spiking]')") from e
    return nir


def check_nir_expressible(model) -> None:
    """Raise ``NIRUnsupportedError`` for models with no NIR equivalent (ENU gates, EMNS mixtures)."""
    spec = model[0] if isinstance(model, tuple) and model else getattr(model, "spec", model)
    kind = type(spec).__name__
    if kind.startswith("ENU") or getattr(spec, "kind", None) == "enu":
        raise NIRUnsupportedError(
            "ENU cells cannot be exported to NIR: NIR has no sigmoid/tanh or multiplicative gate primitive "
            "(only Affine/Linear/Scale/Threshold/I/LI/IF/LIF/CubaLIF); export ENUs with to='onnx' (float32 "
            "graph; the C runtime has no ENU cell yet, its fixed-point reference is kernels.enu.enu_cell_run_q), "
            "or convert an MLP to a rate-coded IF net for NIR")
    if kind.startswith("EMNS") or "emns" in type(model).__module__:
        raise NIRUnsupportedError(
            "EMNS networks cannot be exported to NIR: their evolved activation mixtures have no NIR "
            "primitive; export them with to='onnx' or to='c'")


# ----------------------------------------------------------------------------- graph <-> SpikingNet
def to_nir(net: SpikingNet):
    """``SpikingNet`` -> ``nir.NIRGraph`` (chain of Affine and IF nodes, discretisation in metadata)."""
    nir = _nir()
    nodes = {"input": nir.Input(input_type={"input": np.array([net.n_in])})}
    order = ["input"]
    ia = ii = 0
    for L in net.layers:
        if isinstance(L, AffineLayer):
            name = f"affine{ia}"
            ia += 1
            nodes[name] = nir.Affine(weight=L.weight, bias=L.bias)
        else:
            name = f"if{ii}"
            ii += 1
            nodes[name] = nir.IF(r=L.r, v_threshold=L.v_threshold, v_reset=L.v_reset)
        order.append(name)
    nodes["output"] = nir.Output(output_type={"output": np.array([net.n_out])})
    order.append("output")
    edges = list(zip(order[:-1], order[1:]))
    coding = net.info.get("input_coding", "current")
    meta = {"dt": float(net.dt), "reset": net.reset,
            "input": f"constant current every step ({coding} coding): int8 Q7 pixels as integers 0..127",
            "readout": "argmax of output spike counts, ties by membrane potential",
            "producer": "edge_evo", "edge_evo_info": json.dumps(net.info, sort_keys=True)}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def _chain(graph) -> list[str]:
    nxt = {}
    for a, b in graph.edges:
        if a in nxt:
            raise ValueError(f"NIR graph node {a!r} has several successors; only feed-forward chains are supported")
        nxt[a] = b
    starts = [k for k, n in graph.nodes.items() if type(n).__name__ == "Input"]
    if len(starts) != 1:
        raise ValueError(f"NIR graph must have exactly one Input node, found {len(starts)}")
    order, k = [], starts[0]
    while k in nxt:
        k = nxt[k]
        order.append(k)
        if len(order) > len(graph.nodes):
            raise ValueError("NIR graph has a cycle; only feed-forward chains are supported")
    return order


def from_nir(graph, dt: float | None = None, reset: str | None = None) -> SpikingNet:
    """``nir.NIRGraph`` (a chain of Affine/Linear/IF nodes) -> ``SpikingNet`` for ``simulate``."""
    meta = dict(getattr(graph, "metadata", {}) or {})
    dt = float(dt if dt is not None else meta.get("dt", DT))
    reset = reset if reset is not None else meta.get("reset", "zero")
    if isinstance(reset, bytes):
        reset = reset.decode()
    inp = next(n for n in graph.nodes.values() if type(n).__name__ == "Input")
    n_in = int(np.prod(np.asarray(inp.input_type["input"])))
    layers = []
    for name in _chain(graph):
        n = graph.nodes[name]
        t = type(n).__name__
        if t == "Affine":
            layers.append(AffineLayer(np.asarray(n.weight), np.asarray(n.bias)))
        elif t == "Linear":
            w = np.asarray(n.weight)
            layers.append(AffineLayer(w, np.zeros(w.shape[0])))
        elif t == "IF":
            layers.append(IFLayer(np.asarray(n.r).ravel(), np.asarray(n.v_threshold).ravel(),
                                  None if n.v_reset is None else np.asarray(n.v_reset).ravel()))
        elif t == "Output":
            break
        else:
            raise NIRUnsupportedError(f"NIR node {name!r} of type {t} is not supported by the edge_evo interpreter "
                                      "(Affine, Linear, IF only)")
    info = {}
    if "edge_evo_info" in meta:
        raw = meta["edge_evo_info"]
        info = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    return SpikingNet(tuple(layers), n_in, dt=dt, reset=reset, info=info)


# ----------------------------------------------------------------------------- files
def write_nir(graph, path, compat: bool = False) -> Path:
    """Write ``graph`` to ``path`` (``.nir`` added when missing). ``compat``: readable by nir <= 1.0.5."""
    nir = _nir()
    path = Path(path)
    if path.suffix != ".nir":
        path = path.with_name(path.name + ".nir")
    tmp = path.with_name(path.name + ".tmp")
    if not compat:
        nir.write(tmp, graph)
    else:
        _write_compat(tmp, graph)
    tmp.replace(path)
    log.info("NIR graph written: %s (%d nodes, %d bytes%s)", path, len(graph.nodes), path.stat().st_size,
             ", nir<=1.0.5 compatible" if compat else "")
    return path


def _write_compat(path: Path, graph) -> None:
    """nir.write minus ``v_reset`` (old IF/LIF constructors reject it; they reset to 0)."""
    import h5py
    d = graph.to_dict()
    for name, nd in d["nodes"].items():
        if "v_reset" in nd:
            if np.any(np.asarray(nd["v_reset"]) != 0):
                raise ValueError(f"node {name!r} has a non-zero v_reset, which nir <= 1.0.5 cannot store; "
                                 "write with compat=False")
            del nd["v_reset"]

    def rec(group, node):
        for k, v in node.items():
            if k == "metadata":
                if v:
                    rec(group.create_group(k), v)
            elif isinstance(v, str):
                group.create_dataset(k, data=v, dtype=h5py.string_dtype())
            elif isinstance(v, np.ndarray):
                group.create_dataset(k, data=v, dtype=v.dtype, compression="gzip")
            elif isinstance(v, dict):
                rec(group.create_group(str(k)), v)
            else:
                group.create_dataset(k, data=v)

    with h5py.File(path, "w") as f:
        f.create_dataset("version", data="1.0.5", dtype=h5py.string_dtype())
        rec(f.create_group("node"), d)


def read_nir(path):
    """``nir.read(path)`` with a clear error for a missing file."""
    nir = _nir()
    if not Path(path).is_file():
        raise ValueError(f"{path}: no such NIR file")
    return nir.read(str(path))


def _calib_inputs(spec, calib):
    from ..fixedpoint import quantize_input_u8
    if calib is None or (isinstance(calib, str) and calib == "auto"):
        if spec.dims[0] != 784:
            raise ValueError("NIR export needs calibration inputs for the thresholds: pass calib=<int8 array "
                             "[N, n_in]> or calib='mnist'/'fashion'")
        calib = "mnist"
    if isinstance(calib, str):
        from ..tasks import load_mnist, shared_data_dir
        X, _ = load_mnist(calib, "train", path=shared_data_dir())
        return quantize_input_u8(X[:10000])
    X = np.asarray(calib)
    return quantize_input_u8(X) if X.dtype == np.uint8 else X


def export_nir(spec, genome, path, integer: bool | None = None, calib="auto", input_coding: str = "current",
               reset: str = "subtract", compat: bool = False) -> Path:
    """Convert an int8 MLP to a rate-coded IF net (``convert_mlp``) and write it as NIR.

    ``calib``: int8 inputs (Q(x_frac)), uint8 pixels, or 'mnist'/'fashion' (first 10k train images;
    'auto' = MNIST for 784 inputs). ``compat``: a file nir <= 1.0.5 can read.
    """
    check_nir_expressible((spec, genome))
    if integer is False:
        raise ValueError("NIR export converts the int8 model; a float graph (integer=False) is not available: "
                         "quantize the model first (edge_evo.importers.quantize_model)")
    net = convert_mlp(spec, genome, _calib_inputs(spec, calib), input_coding=input_coding, reset=reset)
    return write_nir(to_nir(net), path, compat=compat)


__all__ = ["NIRUnsupportedError", "check_nir_expressible", "to_nir", "from_nir", "write_nir", "read_nir",
           "export_nir"]
