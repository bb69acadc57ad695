"""Import a float MLP from ONNX (e.g. written by PyTorch or skl2onnx) as an edge_evo ``MLPSpec`` + genome.

Accepted graph: one float input, a chain ``[Identity | Flatten | Reshape]* (Linear Act)* Linear
[Softmax | LogSoftmax]`` where Linear is ``Gemm`` (transA = 0, transB 0 or 1, alpha = beta = 1) or
``MatMul`` + ``Add`` (bias optional), and Act is one of Relu / Tanh / Sigmoid, the same for every
hidden layer (``MLPSpec`` has one activation): ``h_l = act(W_l h_{l-1} + b_l)``. A trailing softmax
does not change the argmax and is dropped (recorded in ``info``). Weights must be initializers or
Constant nodes. Anything else is refused with the operator named.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from ..models.mlp import MLPSpec

log = logging.getLogger(__name__)

ACTIVATIONS = {"Relu": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid"}
PASSTHROUGH = ("Identity", "Flatten", "Reshape")
OUTPUT_DROPPED = ("Softmax", "LogSoftmax")


def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise ImportError("ONNX import needs the 'onnx' package: pip install onnx") from None
    return onnx, numpy_helper


def _attrs(node, helper) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def load_onnx_mlp(path):
    """ONNX file -> ``(MLPSpec, float32 genome, info)``. The float model's input is the graph input."""
    onnx, numpy_helper = _onnx()
    p = Path(path)
    name = p.name
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ValueError(f"cannot read {p}: {e.strerror or e}") from None
    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf raises DecodeError and friends
        raise ValueError(f"{name}: not a readable ONNX file ({type(e).__name__}); the file is corrupt") from None
    spec, genome, info = mlp_from_onnx_model(model, name)
    info["source_sha256"] = hashlib.sha256(data).hexdigest()
    return spec, genome, info


def mlp_from_onnx_model(model, name: str = "<onnx>"):
    """An ``onnx.ModelProto`` -> ``(MLPSpec, float32 genome, info)`` (see module docstring)."""
    onnx, numpy_helper = _onnx()
    g = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    nodes = []
    for n in g.node:
        if n.op_type == "Constant":
            a = _attrs(n, onnx.helper)
            if "value" not in a:
                raise ValueError(f"{name}: Constant node {n.name!r} without a tensor 'value' is not supported")
            consts[n.output[0]] = numpy_helper.to_array(a["value"])
        else:
            nodes.append(n)
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1:
        raise ValueError(f"{name}: the graph has {len(inputs)} data inputs {[i.name for i in inputs]}; "
                         "an MLP has exactly one")
    if len(g.output) < 1:
        raise ValueError(f"{name}: the graph has no output")
    cur = inputs[0].name
    in_type = inputs[0].type.tensor_type
    if in_type.elem_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16):
        raise ValueError(f"{name}: input {cur!r} is {onnx.TensorProto.DataType.Name(in_type.elem_type)}; "
                         "only float MLPs are imported (integer graphs: load the edge_evo model instead)")
    in_dims = [d.dim_value if d.HasField("dim_value") else None for d in in_type.shape.dim]

    def const(nm, node):
        if nm not in consts:
            raise ValueError(f"{name}: {node.op_type} {node.name!r} input {nm!r} is not a constant; "
                             "weights must be initializers")
        a = np.asarray(consts[nm])
        if not np.issubdtype(a.dtype, np.floating):
            raise ValueError(f"{name}: {node.op_type} {node.name!r} weight {nm!r} has dtype {a.dtype}; "
                             "only float weights are imported")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name}: weight {nm!r} holds {int(np.count_nonzero(~np.isfinite(a)))} NaN/inf "
                             "value(s); fix the model before importing")
        return a.astype(np.float64)

    by_input: dict[str, list] = {}
    for n in nodes:
        for i in n.input:
            by_input.setdefault(i, []).append(n)

    layers, acts, dropped, skipped = [], [], [], []
    pending_act = False
    while True:
        users = by_input.get(cur, [])
        if not users:
            break
        if len(users) > 1:
            raise ValueError(f"{name}: tensor {cur!r} feeds {len(users)} nodes "
                             f"({', '.join(u.op_type for u in users)}); only a plain chain is an MLP")
        n = users[0]
        op = n.op_type
        a = _attrs(n, onnx.helper)
        if op in PASSTHROUGH:
            if layers:
                raise ValueError(f"{name}: {op} {n.name!r} after the first layer is not supported")
            skipped.append(op)
        elif op == "Gemm":
            if pending_act is False and layers:
                raise ValueError(f"{name}: two linear layers without an activation between them at {n.name!r}")
            if a.get("transA", 0):
                raise ValueError(f"{name}: Gemm {n.name!r} with transA=1 is not supported")
            if float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0:
                raise ValueError(f"{name}: Gemm {n.name!r} has alpha/beta != 1; fold them into the weights first")
            B = const(n.input[1], n)
            if B.ndim != 2:
                raise ValueError(f"{name}: Gemm {n.name!r} weight has shape {B.shape}, expected 2-D")
            W = B if a.get("transB", 0) else B.T
            b = const(n.input[2], n) if len(n.input) > 2 and n.input[2] else np.zeros(W.shape[0])
            layers.append((W, _bias(b, W.shape[0], n, name)))
            pending_act = False
        elif op == "MatMul":
            if pending_act is False and layers:
                raise ValueError(f"{name}: two linear layers without an activation between them at {n.name!r}")
            if n.input[0] != cur:
                raise ValueError(f"{name}: MatMul {n.name!r} must take the activations as its first input")
            B = const(n.input[1], n)
            if B.ndim != 2:
                raise ValueError(f"{name}: MatMul {n.name!r} weight has shape {B.shape}, expected 2-D")
            W = B.T
            b = np.zeros(W.shape[0])
            nxt = by_input.get(n.output[0], [])
            if len(nxt) == 1 and nxt[0].op_type == "Add":
                add = nxt[0]
                other = [i for i in add.input if i != n.output[0]]
                if len(other) != 1:
                    raise ValueError(f"{name}: Add {add.name!r} must add one bias constant")
                b = _bias(const(other[0], add), W.shape[0], add, name)
                n = add
            layers.append((W, b))
            pending_act = False
        elif op in ACTIVATIONS:
            if not layers or pending_act:
                raise ValueError(f"{name}: activation {op} {n.name!r} must follow a linear layer")
            acts.append(ACTIVATIONS[op])
            pending_act = True
        elif op in OUTPUT_DROPPED:
            if not layers or pending_act:
                raise ValueError(f"{name}: {op} is only accepted right after the last linear layer")
            dropped.append(op)
        else:
            raise ValueError(f"{name}: unsupported operator {op} (node {n.name!r}); supported: Gemm, MatMul+Add, "
                             f"{', '.join(ACTIVATIONS)}, {', '.join(PASSTHROUGH)} at the input, trailing "
                             f"{'/'.join(OUTPUT_DROPPED)}")
        cur = n.output[0]
        if dropped and by_input.get(cur):
            raise ValueError(f"{name}: {dropped[-1]} must be the last node")
    if not layers:
        raise ValueError(f"{name}: no Gemm/MatMul layer found from input {inputs[0].name!r}")
    if pending_act:
        raise ValueError(f"{name}: the graph ends with an activation; an MLP ends with a linear layer "
                         "(logits); remove the final activation")
    if cur not in [o.name for o in g.output]:
        raise ValueError(f"{name}: the chain ends at {cur!r}, which is not a graph output")
    if len(set(acts)) > 1:
        raise ValueError(f"{name}: hidden layers mix activations {acts}; edge_evo MLPs use one activation for "
                         "all hidden layers")
    dims = [layers[0][0].shape[1]]
    for l, (W, b) in enumerate(layers):
        if W.shape[1] != dims[-1]:
            raise ValueError(f"{name}: layer {l + 1} expects {W.shape[1]} inputs but layer {l} gives {dims[-1]}")
        dims.append(W.shape[0])
    static = [d for d in in_dims[1:] if d]
    if static and int(np.prod(static)) != dims[0] and len(static) == len(in_dims) - 1:
        raise ValueError(f"{name}: input shape {in_dims} has {int(np.prod(static))} features but the first "
                         f"layer takes {dims[0]}")
    activation = acts[0] if acts else "tanh"
    spec = MLPSpec(tuple(dims), activation=activation)
    genome = np.concatenate([t.ravel() for W, b in layers for t in (W, b)]).astype(np.float32)
    if not np.all(np.isfinite(genome)):
        raise ValueError(f"{name}: weights overflow float32; cannot import")
    info = {"format": "onnx", "source": name, "input": "graph input", "input_name": inputs[0].name,
            "dropped_output_ops": dropped, "skipped_input_ops": skipped,
            "producer": f"{model.producer_name} {model.producer_version}".strip()}
    log.info("ONNX MLP %s: %s %s", name, activation, dims)
    return spec, genome, info


def _bias(b: np.ndarray, n_out: int, node, name: str) -> np.ndarray:
    b = np.asarray(b)
    if b.size == 1 and n_out != 1:
        return np.full(n_out, float(b.ravel()[0]))
    if b.size != n_out or (b.ndim == 2 and b.shape[0] != 1) or b.ndim > 2:
        raise ValueError(f"{name}: bias of {node.op_type} {node.name!r} has shape {b.shape}, expected ({n_out},)")
    return b.ravel()


__all__ = ["load_onnx_mlp", "mlp_from_onnx_model", "ACTIVATIONS"]
