"""ONNX export of int8 / float32 MLPs: an integer graph bit-exact with the kernels, or a float graph.

Integer graph (numerics contract ``edge_evo-int8-pow2-v1``, docs/numerics.md), per layer l::

    acc = MatMulInteger(h, W_l^T) + (b_l << bias_shift)                  int32
    t   = Clip(acc + 2^(s-1), -128 * 2^s, 128 * 2^s) + 128 * 2^s         int32, in [0, 256 * 2^s]
    idx = Clip(Div(t, 2^s), 1, 255)            = sat8(rshift_round(acc, s)) + 128
    h   = Gather(LUT, idx)                                                int8
    logits = acc of the last layer;  label = ArgMax(logits)  (first maximum)

Why this form. ONNX ``BitShift`` exists for unsigned types only and ``QuantizeLinear`` rounds half
to even, while the contract's ``(acc + 2^(s-1)) >> s`` floors (round half up). Clipping first
cannot change the saturated result (anything beyond +-128 saturates to +-127 anyway) and makes the
numerator non-negative, where ``Div``'s truncation toward zero equals the floor. Every value is an
exact int32, so onnxruntime reproduces ``edge_evo.models.forward.forward(..., engine="numba")`` bit
for bit. The uint8-pixel variant applies the contract's ``(127 p + 127) // 255`` with the same
non-negative ``Div``.

Float graph: ``Gemm`` (+ the activation as ONNX float ops) for float32 genomes, or the dequantized
equivalent of an int8 genome (``W 2^-w_frac``, ``b 2^-b_frac``, the float activation instead of its
LUT), matching the float32 research mode within float tolerance.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

OPSET = 18
INTEGER_INPUTS = ("int8", "uint8")
FLOAT_INPUTS = ("float32", "uint8")
# 256 * 2^s must stay an int32 after the non-negative offset of the requantization
MAX_SHIFT = 22


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper, TensorProto
    except ImportError:  # optional dependency
        raise ImportError("ONNX export needs the 'onnx' package: pip install onnx "
                          "(and onnxruntime to run the graph)") from None
    return onnx, helper, numpy_helper, TensorProto


def spec_json(spec) -> str:
    """Canonical JSON of the spec (sorted keys, no spaces): the ``formats`` metadata and hash input."""
    return json.dumps(spec.to_dict(), sort_keys=True, separators=(",", ":"))


def model_hash(spec, genome: np.ndarray) -> str:
    """sha256 of the genome bytes (canonical order, its dtype, little-endian) followed by the spec JSON."""
    g = np.ascontiguousarray(genome)
    g = g.astype(g.dtype.newbyteorder("<"), copy=False)
    return hashlib.sha256(g.tobytes() + spec_json(spec).encode("utf-8")).hexdigest()


def _layers(spec, genome):
    off = spec.offsets()
    out = []
    for l in range(spec.n_layers):
        o, i = spec.dims[l + 1], spec.dims[l]
        W = genome[off[f"W{l + 1}"]:off[f"W{l + 1}"] + o * i].reshape(o, i)
        b = genome[off[f"b{l + 1}"]:off[f"b{l + 1}"] + o]
        out.append((W, b))
    return out


class _Graph:
    """Tiny node/initializer accumulator with unique names."""

    def __init__(self, helper, numpy_helper):
        self.h, self.nh = helper, numpy_helper
        self.nodes, self.inits, self._n = [], [], 0

    def const(self, name, value):
        self.inits.append(self.nh.from_array(np.asarray(value), name))
        return name

    def op(self, op_type, inputs, name, **attrs):
        self._n += 1
        self.nodes.append(self.h.make_node(op_type, inputs, [name], name=f"{op_type}_{self._n}", **attrs))
        return name


# ----------------------------------------------------------------------------- integer graph
def _integer_layers(g: _Graph, spec, genome, x):
    """Append the integer MLP to ``g``; ``x`` is the int8 (or [0, 127] uint8) input. Returns the logits name."""
    lut = spec.lut().astype(np.int8)
    last = spec.n_layers - 1
    h = x
    for l, (W, b) in enumerate(_layers(spec, genome)):
        bs = spec.bias_shift(l)
        wt = g.const(f"W{l + 1}_T", np.ascontiguousarray(W.T).astype(np.int8))
        mm = g.op("MatMulInteger", [h, wt], f"mm{l + 1}")
        bias = b.astype(np.int64) << bs
        if l == last:
            return g.op("Add", [mm, g.const(f"b{l + 1}_acc", bias.astype(np.int32))], "logits")
        s = spec.out_shift(l)
        if s > MAX_SHIFT:
            raise ValueError(f"layer {l + 1} requantization shift {s} > {MAX_SHIFT} is not supported by the ONNX "
                             "exporter; choose formats with w_frac + in_frac - z_frac <= 22")
        half = (1 << (s - 1)) if s > 0 else 0
        # bias and the rounding half in one constant: the same int32 sum as the kernel's
        # (b << bs) + products + half, whatever the order (int32 addition is associative).
        acc = g.op("Add", [mm, g.const(f"b{l + 1}_acc_half", (bias + half).astype(np.int32))], f"acc{l + 1}")
        lim = 128 << s
        t = g.op("Clip", [acc, g.const(f"lo{l + 1}", np.int32(-lim)), g.const(f"hi{l + 1}", np.int32(lim))],
                 f"clip{l + 1}")
        t = g.op("Add", [t, g.const(f"off{l + 1}", np.int32(lim))], f"nonneg{l + 1}")
        q = g.op("Div", [t, g.const(f"div{l + 1}", np.int32(1 << s))], f"floor{l + 1}")
        idx = g.op("Clip", [q, g.const(f"idx_lo{l + 1}", np.int32(1)), g.const(f"idx_hi{l + 1}", np.int32(255))],
                   f"z{l + 1}_plus_128")
        if l == 0:
            g.const("lut", lut)
        h = g.op("Gather", ["lut", idx], f"h{l + 1}", axis=0)
    raise AssertionError("unreachable")


def _pixels_to_q7(g: _Graph, TensorProto, pixels):
    """uint8 p -> (127 p + 127) // 255 in [0, 127]: non-negative numerator, so Div's truncation is the floor.

    Element-wise int32 ops rather than a 256-entry Gather table: onnxruntime's Gather copies one
    element per index and was ~4x slower at batch 1000. The result stays uint8 (same values):
    onnxruntime's u8 x s8 MatMulInteger is several times faster than s8 x s8 on x86, and inputs
    <= 127 keep its 16-bit pair sums (2 * 127 * 127 = 32258) exact.
    """
    p = g.op("Cast", [pixels], "pixels_i32", to=TensorProto.INT32)
    p = g.op("Mul", [p, g.const("c127", np.int32(127))], "pixels_x127")
    p = g.op("Add", [p, g.const("c127b", np.int32(127))], "pixels_x127_plus127")
    p = g.op("Div", [p, g.const("c255", np.int32(255))], "x_q7_i32")
    return g.op("Cast", [p], "x", to=TensorProto.UINT8)


# ----------------------------------------------------------------------------- float graph
def _activation(g: _Graph, name: str, z: str, out: str) -> str:
    """The float activation as ONNX ops (same functions as edge_evo.fixedpoint.LUT_FUNCTIONS)."""
    if name == "tanh":
        return g.op("Tanh", [z], out)
    if name == "sigmoid":
        return g.op("Sigmoid", [z], out)
    if name == "relu":
        return g.op("Relu", [z], out)
    if name == "linear":
        return g.op("Identity", [z], out)
    if name == "swish":
        return g.op("Mul", [z, g.op("Sigmoid", [z], out + "_sig")], out)
    if name == "square":
        return g.op("Mul", [z, z], out)
    if name == "sqrt_abs":
        return g.op("Sqrt", [g.op("Abs", [z], out + "_abs")], out)
    if name == "sin":
        return g.op("Sin", [z], out)
    if name == "gauss":
        sq = g.op("Mul", [z, z], out + "_sq")
        return g.op("Exp", [g.op("Neg", [sq], out + "_neg")], out)
    raise ValueError(f"activation {name!r} has no ONNX float form; supported: tanh, sigmoid, relu, linear, swish, "
                     "square, sqrt_abs, sin, gauss")


def _float_layers(g: _Graph, spec, genome, x):
    dequant = genome.dtype == np.int8
    last = spec.n_layers - 1
    h = x
    for l, (W, b) in enumerate(_layers(spec, genome)):
        if dequant:
            W = W.astype(np.float32) * np.float32(2.0 ** -spec.w_frac)
            b = b.astype(np.float32) * np.float32(2.0 ** -spec.b_frac)
        w = g.const(f"W{l + 1}", np.ascontiguousarray(W, dtype=np.float32))
        bb = g.const(f"b{l + 1}", np.ascontiguousarray(b, dtype=np.float32))
        z = g.op("Gemm", [h, w, bb], "logits" if l == last else f"z{l + 1}", transB=1)
        if l == last:
            return z
        h = _activation(g, spec.activation, z, f"h{l + 1}")
    raise AssertionError("unreachable")


# ----------------------------------------------------------------------------- model
def build_onnx(spec, genome: np.ndarray, integer: bool | None = None, input: str = "auto",
               opset: int = OPSET, metadata: dict | None = None):
    """The ONNX ``ModelProto`` of one MLP genome (nothing written).

    ``integer``: True = the bit-exact integer graph (int8 genome needed), False = float graph, None =
    integer for int8 genomes, float for float32 ones. ``input``: ``"auto"`` (int8 Q(x_frac) for the
    integer graph, float32 for the float one), ``"uint8"`` (pixels 0..255, converted in the graph:
    ``(127 p + 127) // 255`` for the integer graph, ``p / 255`` for the float graph), or the explicit
    ``"int8"`` / ``"float32"``. Inputs are named ``x`` (or ``pixels``); outputs ``logits``
    [batch, n_out] (int32 Q(logit_frac) or float32) and ``label`` [batch] (int64, ties -> lowest
    index). The batch axis is dynamic.
    """
    onnx, helper, numpy_helper, TensorProto = _onnx()
    genome = np.asarray(genome)
    if genome.dtype not in (np.int8, np.float32):
        raise TypeError(f"genome dtype must be int8 or float32, got {genome.dtype}")
    genome = np.ascontiguousarray(genome.ravel())
    if genome.size != spec.n_params:
        raise ValueError(f"genome has {genome.size} values, spec {spec.dims} needs {spec.n_params}")
    if integer is None:
        integer = genome.dtype == np.int8
    if integer and genome.dtype != np.int8:
        raise ValueError("integer=True needs an int8 genome; quantize it first (edge_evo.fixedpoint.quantize with "
                         "the spec's w_frac/b_frac) or export the float graph (integer=False)")
    if not isinstance(opset, int) or not 13 <= opset <= 21:
        raise ValueError(f"opset {opset!r} is not supported; choose an int in 13..21 (default {OPSET})")
    kinds = INTEGER_INPUTS if integer else FLOAT_INPUTS
    if input == "auto":
        input = kinds[0]
    if input not in kinds:
        raise ValueError(f"input {input!r} is not supported for the {'integer' if integer else 'float'} graph; "
                         f"choose one of {('auto',) + kinds}")
    if integer and input == "uint8" and spec.x_frac != 7:
        raise ValueError(f"uint8 pixel input needs x_frac=7 (the contract's (127 p + 127) // 255), spec has "
                         f"x_frac={spec.x_frac}; export with input='int8' and quantize on the host")
    if integer and int(np.min(genome, initial=0)) < -127:
        raise ValueError("int8 genome holds -128, outside the contract's symmetric [-127, 127]; clip it first")

    g = _Graph(helper, numpy_helper)
    batch = "batch"
    n_in, n_out = spec.dims[0], spec.dims[-1]
    if input == "uint8":
        x_info = helper.make_tensor_value_info("pixels", TensorProto.UINT8, [batch, n_in])
        if integer:
            x = _pixels_to_q7(g, TensorProto, "pixels")
        else:
            xf = g.op("Cast", ["pixels"], "pixels_f32", to=TensorProto.FLOAT)
            x = g.op("Div", [xf, g.const("c255f", np.float32(255.0))], "x")
    else:
        x = "x"
        x_info = helper.make_tensor_value_info("x", TensorProto.INT8 if integer else TensorProto.FLOAT,
                                               [batch, n_in])
    logits = (_integer_layers if integer else _float_layers)(g, spec, genome, x)
    g.op("ArgMax", [logits], "label", axis=1, keepdims=0, select_last_index=0)
    outputs = [helper.make_tensor_value_info("logits", TensorProto.INT32 if integer else TensorProto.FLOAT,
                                             [batch, n_out]),
               helper.make_tensor_value_info("label", TensorProto.INT64, [batch])]
    kind = "integer" if integer else "float"
    graph = helper.make_graph(g.nodes, f"edge_evo_mlp_{kind}", [x_info], outputs, initializer=g.inits)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="edge_evo",
                              ir_version=helper.find_min_ir_version_for(opsets))
    import edge_evo
    model.producer_version = edge_evo.__version__
    model.doc_string = (f"edge_evo MLP {'-'.join(map(str, spec.dims))} {spec.activation}, {kind} graph"
                        + (f", logits in Q{spec.logit_frac}" if integer else ""))
    meta = {"edge_evo_version": edge_evo.__version__, "numerics_contract": edge_evo.NUMERICS_CONTRACT,
            "formats": spec_json(spec), "model_hash": model_hash(spec, genome), "graph": kind,
            "genome_dtype": genome.dtype.name, "input": input, "opset": str(opset)}
    if integer:
        meta["logit_frac"] = str(spec.logit_frac)
    for k, v in (metadata or {}).items():
        if k in meta:
            raise ValueError(f"metadata key {k!r} is reserved by the exporter; rename it")
        meta[str(k)] = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model, full_check=True)
    return model


def export_onnx(spec, genome, path, integer: bool | None = None, input: str = "auto", opset: int = OPSET,
                metadata: dict | None = None) -> Path:
    """Write ``build_onnx(...)`` to ``path`` (``.onnx`` added when missing); returns the path."""
    from ..io import atomic_write_bytes
    model = build_onnx(spec, genome, integer=integer, input=input, opset=opset, metadata=metadata)
    path = Path(path)
    if path.suffix != ".onnx":
        path = path.with_name(path.name + ".onnx")
    atomic_write_bytes(path, model.SerializeToString())
    log.info("ONNX %s graph written: %s (%d bytes)", "integer" if model.graph.name.endswith("integer") else "float",
             path, path.stat().st_size)
    return path
