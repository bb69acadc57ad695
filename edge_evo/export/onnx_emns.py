"""ONNX export of one EMNS network (Karahan 2025, sections 3.1-3.2; equations in ``edge_evo/models/emns.py``).

Both graphs keep the allocated maximum layout and bake the masks into constants: an inactive
synapse is multiplied by 0 before every sum (so it adds nothing, not even ``exp(-0^2)``), an
inactive neuron outputs 0 (integer graph: an all-zero mixture table; float graph: times 0).

Integer graph, per layer (every value an exact int32 / int64, bit-exact with
``edge_evo.kernels.emns.forward_int8`` in onnxruntime)::

    gw      = rshift_round(g * w, 11)                                     constant int32 [no, ni]
    s       = Clip(Div(gw * y + 8 + 2^25, 16) + bias - 2^21, +-20480)      = clip(rsr(gw y, 4) + bias)
    S_lin   = ReduceSum(m * s);   S_quad = ReduceSum(m * Div(s * s + 1024, 2048))
    idx     = Clip(Div(s + 128 + 2^15, 256), 1, 255)                      = sat8(rsr(s, 8)) + 128
    S_tab   = ReduceSum(m * Cast(Gather(AGG, idx)))                        sqrt, sin, gauss tables
    z       = Clip(ReduceSum(Div(a_k S_k + 2^(f_k-1) + 2^62, 2^f_k) - 2^(62-f_k)), +-10240)   int64
    y       = Gather(MIX_flat, Div(z + 64 + 2^14, 128) + 256 o)            int8 Q4

``Div`` truncates toward zero; every numerator above is made non-negative by an offset that is a
multiple of the divisor, where truncation equals the floor of the kernels' ``>>``
(``|gw y| <= 204800 * 128 < 2^25``, ``|a_k S_k| < 2^42``). ``AGG`` is the [256, 3] int8 basis
table (``models.emns.basis_tables``), ``MIX_flat`` the neurons' mixture tables
(``kernels.emns.build_luts``) one after the other.

Float graph: the float equations of ``forward_float`` as float32 ONNX ops (``Sqrt(Abs)``, ``Sin``,
``Exp(-s^2)``, ``Tanh``, ``Sigmoid``, ``Relu``, swish = ``z Sigmoid(z)``), int16 Q11 genomes
dequantized (``v / 2048``).
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from .onnx_export import OPSET, _Graph, _onnx

log = logging.getLogger(__name__)

_OFF_S = 1 << 21          # 16 * 2^21 = 2^25 > |gw * y| (204800 * 128)
_OFF_Z = 1 << 62          # > |a_k S_k| (20480 * 4096 * 20480 < 2^41) and a multiple of every 2^f_k


def _canon_json(d: dict) -> str:
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


def arrays_hash(spec_dict: dict, *arrays) -> str:
    """sha256 of the arrays' bytes (their dtype, little-endian, in order) followed by the spec JSON."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
    h.update(_canon_json(spec_dict).encode("utf-8"))
    return h.hexdigest()


def finish_model(g: _Graph, name: str, inputs, outputs, opset: int, doc: str, meta: dict,
                 metadata: dict | None):
    """ModelProto with the MLP exporter's producer fields and metadata_props; checked (full_check)."""
    onnx, helper, _, _ = _onnx()
    if not isinstance(opset, int) or not 16 <= opset <= 21:
        raise ValueError(f"opset {opset!r} is not supported; choose an int in 16..21 (default {OPSET})")
    graph = helper.make_graph(g.nodes, name, inputs, outputs, initializer=g.inits)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="edge_evo",
                              ir_version=helper.find_min_ir_version_for(opsets))
    import edge_evo
    model.producer_version = edge_evo.__version__
    model.doc_string = doc
    meta = {"edge_evo_version": edge_evo.__version__, "numerics_contract": edge_evo.NUMERICS_CONTRACT,
            **meta, "opset": str(opset)}
    for k, v in (metadata or {}).items():
        if k in meta:
            raise ValueError(f"metadata key {k!r} is reserved by the exporter; rename it")
        meta[str(k)] = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model, full_check=True)
    return model


def write_model(model, path) -> Path:
    from ..io import atomic_write_bytes
    path = Path(path)
    if path.suffix != ".onnx":
        path = path.with_name(path.name + ".onnx")
    atomic_write_bytes(path, model.SerializeToString())
    log.info("ONNX graph %s written: %s (%d bytes)", model.graph.name, path, path.stat().st_size)
    return path


# ----------------------------------------------------------------------------- inputs
def _check(spec, values, nmask, cmask):
    from ..models.emns import EMNSSpec
    if not isinstance(spec, EMNSSpec):
        raise TypeError(f"spec must be an EMNSSpec (edge_evo.models.emns), got {type(spec).__name__}")
    v = np.asarray(values)
    if v.ndim == 2 and v.shape[0] == 1:
        v = v[0]
    if v.ndim != 1 or v.size != spec.n_params:
        raise ValueError(f"EMNS values must be one genome of {spec.n_params} parameters for max_dims "
                         f"{spec.max_dims}, got shape {np.shape(values)}; "
                         "export one genome (e.g. state.arrays['best'])")
    if v.dtype not in (np.int16, np.float32, np.float64):
        raise TypeError(f"EMNS values dtype must be int16 (Q11) or float32/float64, got {v.dtype}")
    n0, c0 = spec.initial_masks()
    masks = []
    for m, ref, what in ((nmask, n0, "nmask"), (cmask, c0, "cmask")):
        m = ref if m is None else np.asarray(m)
        if m.ndim == 2 and m.shape[0] == 1:
            m = m[0]
        if m.shape != ref.shape:
            raise ValueError(f"{what} must have shape {ref.shape} for max_dims {spec.max_dims}, got {m.shape}")
        masks.append((m != 0).astype(np.uint8))
    return np.ascontiguousarray(v), masks[0], masks[1]


def resolve_emns(model):
    """(spec, values, nmask, cmask) from ``(spec, values)``, ``(spec, values, nmask, cmask)`` or
    ``(spec, EMNSPopulation of one genome)``; None when ``model`` is not an EMNS model."""
    from ..models.emns import EMNSPopulation, EMNSSpec
    if not (isinstance(model, tuple) and model and isinstance(model[0], EMNSSpec)):
        return None
    spec = model[0]
    if len(model) == 2 and isinstance(model[1], EMNSPopulation):
        pop = model[1]
        if pop.size != 1:
            raise ValueError(f"an EMNSPopulation of {pop.size} genomes was given; export one "
                             "(strategy.parent(state))")
        return spec, pop.values[0], pop.nmask[0], pop.cmask[0]
    if len(model) == 2:
        return spec, model[1], None, None
    if len(model) == 4:
        return tuple(model)
    raise TypeError("an EMNS model is (EMNSSpec, values), (EMNSSpec, values, nmask, cmask) or "
                    "(EMNSSpec, EMNSPopulation of one genome)")


def _layer_params(row, v):
    ni, no, oa, oc, ow, ob, og, coff, noff = (int(x) for x in row)
    return (ni, no, v[oa:oa + 5 * no].reshape(no, 5), v[oc:oc + 5 * no].reshape(no, 5),
            v[ow:ow + ni * no].reshape(no, ni), v[ob:ob + ni * no].reshape(no, ni),
            v[og:og + ni * no].reshape(no, ni), coff, noff)


# ----------------------------------------------------------------------------- integer graph
def _integer_layers(g: _Graph, spec, v, nmask, cmask, x, TensorProto):
    from ..kernels.emns import build_luts
    from ..models.emns import ACT_FRACS, AGG_FRACS, VAL_FRAC, VAL_MAX, Y_FRAC, Z_MAX, basis_tables
    agg_t, act_t = basis_tables()
    lay = spec.layout()
    luts = np.zeros((1, spec.n_neurons, 256), dtype=np.int8)
    act_shift = np.array([VAL_FRAC + f - Y_FRAC for f in ACT_FRACS], dtype=np.int64)
    build_luts(v[None].astype(np.int16), lay, act_t, act_shift, luts)
    luts = luts[0]
    luts[nmask == 0] = 0                                 # an inactive neuron outputs 0
    g.const("agg_tables", np.ascontiguousarray(agg_t.T))            # [256, 3] int8
    fr = np.array(AGG_FRACS, dtype=np.int64)
    half_k = g.const("agg_half", np.where(fr > 0, 1 << (fr - 1), 0).astype(np.int64) + _OFF_Z)
    div_k = g.const("agg_div", (np.int64(1) << fr).astype(np.int64))
    off_k = g.const("agg_off", (np.int64(_OFF_Z) >> fr).astype(np.int64))
    y = g.op("Cast", [x], "y0", to=TensorProto.INT32)
    ax2 = g.const("axis2", np.array([2], dtype=np.int64))
    ax1 = g.const("axis1", np.array([1], dtype=np.int64))
    last = spec.n_layers - 1
    for l, row in enumerate(lay):
        ni, no, A, _, W, Bi, G, coff, noff = _layer_params(row, v.astype(np.int64))
        p = f"L{l + 1}_"
        m = cmask[coff:coff + ni * no].reshape(no, ni).astype(np.int32)
        gw = (G * W + (1 << (VAL_FRAC - 1))) >> VAL_FRAC
        yu = g.op("Unsqueeze", [y, ax1], p + "y_in")                               # [B, 1, ni]
        prod = g.op("Mul", [yu, g.const(p + "gw", gw.astype(np.int32))], p + "gw_y")
        t = g.op("Add", [prod, g.const(p + "s_half", np.int32((1 << (Y_FRAC - 1)) + 16 * _OFF_S))], p + "s_nonneg")
        t = g.op("Div", [t, g.const(p + "s_div", np.int32(1 << Y_FRAC))], p + "s_floor")
        t = g.op("Add", [t, g.const(p + "bias", (Bi - _OFF_S).astype(np.int32))], p + "s_bias")
        s = g.op("Clip", [t, g.const(p + "s_lo", np.int32(-VAL_MAX)), g.const(p + "s_hi", np.int32(VAL_MAX))],
                 p + "s")                                                           # [B, no, ni] Q11
        mc = g.const(p + "cmask", m)
        sq = g.op("Mul", [s, s], p + "s_sq")
        sq = g.op("Add", [sq, g.const(p + "q_half", np.int32(1 << (VAL_FRAC - 1)))], p + "s_sq_half")
        sq = g.op("Div", [sq, g.const(p + "q_div", np.int32(1 << VAL_FRAC))], p + "s_quad")   # s^2 >= 0
        idx = g.op("Add", [s, g.const(p + "i_half", np.int32((1 << 7) + (128 << 8)))], p + "idx_nonneg")
        idx = g.op("Div", [idx, g.const(p + "i_div", np.int32(1 << 8))], p + "idx_floor")
        idx = g.op("Clip", [idx, g.const(p + "i_lo", np.int32(1)), g.const(p + "i_hi", np.int32(255))], p + "idx")
        tab = g.op("Cast", [g.op("Gather", ["agg_tables", idx], p + "tab8", axis=0)], p + "tab",
                   to=TensorProto.INT32)                                            # [B, no, ni, 3]
        s_lin = g.op("ReduceSum", [g.op("Mul", [s, mc], p + "s_m"), ax2], p + "S_lin", keepdims=1)
        s_quad = g.op("ReduceSum", [g.op("Mul", [sq, mc], p + "sq_m"), ax2], p + "S_quad", keepdims=1)
        mc4 = g.const(p + "cmask4", m[:, :, None])
        s_tab = g.op("ReduceSum", [g.op("Mul", [tab, mc4], p + "tab_m"), ax2], p + "S_tab", keepdims=0)
        S = g.op("Concat", [s_lin, s_quad, s_tab], p + "S32", axis=2)               # [B, no, 5] int32
        S = g.op("Cast", [S], p + "S", to=TensorProto.INT64)
        az = g.op("Mul", [S, g.const(p + "agg", A.astype(np.int64))], p + "aS")     # int64 like the kernel
        az = g.op("Div", [g.op("Add", [az, half_k], p + "aS_nonneg"), div_k], p + "aS_floor")
        az = g.op("Sub", [az, off_k], p + "aS_rsr")
        z = g.op("ReduceSum", [az, ax2], p + "z_sum", keepdims=0)                   # [B, no] int64 Q11
        z = g.op("Clip", [z, g.const(p + "z_lo", np.int64(-Z_MAX)), g.const(p + "z_hi", np.int64(Z_MAX))], p + "z")
        zq = g.op("Add", [z, g.const(p + "zq_half", np.int64((1 << 6) + (128 << 7)))], p + "zq_nonneg")
        zq = g.op("Div", [zq, g.const(p + "zq_div", np.int64(1 << (VAL_FRAC - Y_FRAC)))], p + "zq_plus_128")
        zq = g.op("Add", [zq, g.const(p + "mix_row", (256 * np.arange(no)).astype(np.int64))], p + "mix_idx")
        mix = g.const(p + "mix_tables", np.ascontiguousarray(luts[noff:noff + no].ravel()))
        out = g.op("Gather", [mix, zq], "y" if l == last else p + "y8", axis=0)     # int8 Q4
        if l == last:
            return out
        y = g.op("Cast", [out], p + "y", to=TensorProto.INT32)
    raise AssertionError("unreachable")


# ----------------------------------------------------------------------------- float graph
def _float_layers(g: _Graph, spec, v, nmask, cmask, x):
    ax2 = g.const("axis2", np.array([2], dtype=np.int64))
    axl = g.const("axis_last", np.array([-1], dtype=np.int64))
    ax1 = g.const("axis1", np.array([1], dtype=np.int64))
    f32 = np.float32
    last = spec.n_layers - 1
    y = x
    for l, row in enumerate(spec.layout()):
        ni, no, A, Bc, W, Bi, G, coff, noff = _layer_params(row, v)
        p = f"L{l + 1}_"
        m = cmask[coff:coff + ni * no].reshape(no, ni).astype(f32)
        yu = g.op("Unsqueeze", [y, ax1], p + "y_in")
        t = g.op("Mul", [yu, g.const(p + "gw", (G * W).astype(f32))], p + "gw_y")
        t = g.op("Add", [t, g.const(p + "bias", Bi.astype(f32))], p + "s_raw")
        s = g.op("Clip", [t, g.const(p + "s_lo", f32(-10)), g.const(p + "s_hi", f32(10))], p + "s")
        sq = g.op("Mul", [s, s], p + "s_sq")
        feats = [s, sq, g.op("Sqrt", [g.op("Abs", [s], p + "s_abs")], p + "s_sqrt"),
                 g.op("Sin", [s], p + "s_sin"), g.op("Exp", [g.op("Neg", [sq], p + "s_negsq")], p + "s_gauss")]
        feats = [g.op("Unsqueeze", [f, axl], f"{p}feat{k}") for k, f in enumerate(feats)]
        F = g.op("Concat", feats, p + "feats", axis=-1)                            # [B, no, ni, 5]
        F = g.op("Mul", [F, g.const(p + "cmask", m[:, :, None])], p + "feats_m")
        S = g.op("ReduceSum", [F, ax2], p + "S", keepdims=0)                       # [B, no, 5]
        z = g.op("ReduceSum", [g.op("Mul", [S, g.const(p + "agg", A.astype(f32))], p + "aS"), axl],
                 p + "z_sum", keepdims=0)
        z = g.op("Clip", [z, g.const(p + "z_lo", f32(-5)), g.const(p + "z_hi", f32(5))], p + "z")
        sg = g.op("Sigmoid", [z], p + "sig")
        hs = [g.op("Tanh", [z], p + "tanh"), sg, g.op("Relu", [z], p + "relu"),
              g.op("Mul", [z, sg], p + "swish"), z]
        hs = [g.op("Unsqueeze", [h, axl], f"{p}h{k}") for k, h in enumerate(hs)]
        Hh = g.op("Concat", hs, p + "hs", axis=-1)                                 # [B, no, 5]
        o = g.op("ReduceSum", [g.op("Mul", [Hh, g.const(p + "act", Bc.astype(f32))], p + "bH"), axl],
                 p + "o_sum", keepdims=0)
        o = g.op("Clip", [o, g.const(p + "o_lo", f32(-5)), g.const(p + "o_hi", f32(5))], p + "o")
        y = g.op("Mul", [o, g.const(p + "nmask", nmask[noff:noff + no].astype(f32))], "y" if l == last else p + "y")
    return y


# ----------------------------------------------------------------------------- model
def build_emns_onnx(spec, values, nmask=None, cmask=None, integer: bool | None = None, input: str = "auto",
                    opset: int = OPSET, metadata: dict | None = None):
    """The ONNX ``ModelProto`` of one EMNS genome (nothing written).

    ``values``: int16 Q11 (integer mode) or float genome [spec.n_params] (maximum layout);
    ``nmask`` / ``cmask``: the active masks (None = ``spec.initial_masks()``). ``integer``: True =
    integer graph (int16 values needed), False = float graph, None = follow the values dtype. Input
    ``x`` [batch, n_in]: int8 Q4 (``models.emns.quantize_inputs``) for the integer graph, float32 for
    the float one; output ``y`` [batch, n_out]: int8 Q4 (``forward_int8``) or float32 (``forward_float``).
    """
    _, helper, numpy_helper, TensorProto = _onnx()
    v, nm, cm = _check(spec, values, nmask, cmask)
    if integer is None:
        integer = v.dtype == np.int16
    if integer and v.dtype != np.int16:
        raise ValueError("integer=True needs int16 Q11 values; convert them with edge_evo.models.emns.to_int "
                         "or export the float graph (integer=False)")
    want = "int8" if integer else "float32"
    if input not in ("auto", want):
        raise ValueError(f"input {input!r} is not supported for the EMNS {'integer' if integer else 'float'} graph; "
                         f"choose 'auto' or {want!r}")
    g = _Graph(helper, numpy_helper)
    n_in, n_out = spec.dims[0], spec.dims[-1]
    if integer:
        x_info = helper.make_tensor_value_info("x", TensorProto.INT8, ["batch", n_in])
        _integer_layers(g, spec, v, nm, cm, "x", TensorProto)
        y_info = helper.make_tensor_value_info("y", TensorProto.INT8, ["batch", n_out])
    else:
        vf = v.astype(np.float64) / 2048.0 if v.dtype == np.int16 else v.astype(np.float64)
        x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_in])
        _float_layers(g, spec, vf, nm, cm, "x")
        y_info = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n_out])
    kind = "integer" if integer else "float"
    meta = {"model": "emns", "formats": _canon_json(spec.to_dict()), "graph": kind,
            "model_hash": arrays_hash(spec.to_dict(), v, nm, cm), "genome_dtype": v.dtype.name,
            "input": want, "active_dims": json.dumps(list(spec.active_dims(nm)))}
    if integer:
        meta["y_frac"] = "4"
    doc = (f"edge_evo EMNS {'-'.join(map(str, spec.active_dims(nm)))} (max {'-'.join(map(str, spec.max_dims))}), "
           f"{kind} graph" + (", x and y int8 Q4" if integer else ""))
    return finish_model(g, f"edge_evo_emns_{kind}", [x_info], [y_info], opset, doc, meta, metadata)


def export_emns_onnx(spec, values, path, nmask=None, cmask=None, integer: bool | None = None, input: str = "auto",
                     opset: int = OPSET, metadata: dict | None = None) -> Path:
    """Write ``build_emns_onnx(...)`` to ``path`` (``.onnx`` added when missing); returns the path."""
    return write_model(build_emns_onnx(spec, values, nmask, cmask, integer=integer, input=input, opset=opset,
                                       metadata=metadata), path)


__all__ = ["build_emns_onnx", "export_emns_onnx", "resolve_emns", "arrays_hash"]
