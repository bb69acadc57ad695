"""ONNX export of one ENU cell (Bertens & Lee 2019, arXiv:1912.07589, section 3; ``edge_evo/models/enu.py``).

Two float32 graphs of one genome, batch axis dynamic:

* ``graph="step"``: inputs ``x`` [batch, n_in], ``h`` [batch, H], ``y_prev`` [batch, n_out];
  outputs ``y`` [batch, n_out], ``h_out`` [batch, H] = ``enu_step`` (state in, state out, for
  streaming on a device host).
* ``graph="sequence"``: input ``xs`` [T, batch, n_in] (time-major like ``enu_run``), outputs
  ``ys`` [T, batch, n_out] and ``h_final`` [batch, H]: a ``Scan`` over time of the same cell from the
  zero state (``enu_run``); T is dynamic too.

The gate input ``a = [x, y_prev, h, 1]`` is never concatenated: each weight matrix is split into its
column blocks, ``W a = x Wx^T + y_prev Wy^T + h Wh^T + w_1`` (``MatMul`` + a bias ``Add``), so the
graph needs no batch-sized ones tensor. Only the float summation order differs from the NumPy
``einsum``: the outputs agree within float32 rounding (tolerance in docs/export-onnx.md).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from .onnx_export import OPSET, _Graph, _onnx
from .onnx_emns import arrays_hash, finish_model, write_model

GRAPHS = ("step", "sequence")


def resolve_enu(model):
    """(spec, genome) of an ``(ENUSpec, genome)`` tuple; None when ``model`` is not an ENU model."""
    from ..models.enu import ENUSpec
    if isinstance(model, tuple) and len(model) == 2 and isinstance(model[0], ENUSpec):
        return model
    return None


def _cell(g: _Graph, spec, prm: dict, x: str, y_prev: str, h: str, y_out: str, h_out: str):
    """Append one ENU step (names of x, y_prev, h) to ``g``; writes ``y_out`` and ``h_out``."""
    ni, no, H = spec.n_in, spec.n_out, spec.n_hidden
    f32 = np.float32

    def affine(W, name, xin, yin, hin):
        """W [rows, n_a] applied to [xin, yin, hin, 1] by column blocks."""
        parts = [g.op("MatMul", [v, g.const(f"{name}_{tag}", np.ascontiguousarray(Wb.T, dtype=f32))], f"{name}_{tag}x")
                 for v, Wb, tag in ((xin, W[:, :ni], "x"), (yin, W[:, ni:ni + no], "y"),
                                    (hin, W[:, ni + no:ni + no + H], "h"))]
        t = g.op("Add", [parts[0], parts[1]], f"{name}_xy")
        t = g.op("Add", [t, parts[2]], f"{name}_xyh")
        return g.op("Add", [t, g.const(f"{name}_1", np.ascontiguousarray(W[:, -1], dtype=f32))], name)

    three, one = g.const("three", f32(3.0)), g.const("one", f32(1.0))
    Wg = prm["W_g"]
    u = affine(Wg[:H], "u", x, y_prev, h)
    q = affine(Wg[H:], "q", x, y_prev, h)
    z = g.op("Sigmoid", [g.op("Mul", [three, u], "u3")], "z")
    r = g.op("Sigmoid", [g.op("Mul", [three, g.op("Sub", [q, one], "q_minus_1")], "q3")], "r")
    rh = g.op("Mul", [r, h], "r_h")
    c = g.op("Tanh", [g.op("Mul", [three, affine(prm["W_c"], "cpre", x, y_prev, rh)], "cpre3")], "c")
    keep = g.op("Mul", [g.op("Sub", [one, z], "one_minus_z"), h], "keep")
    g.op("Add", [keep, g.op("Mul", [z, c], "z_c")], h_out)
    Wo = prm["W_o"]
    o = g.op("MatMul", [h_out, g.const("W_o_h", np.ascontiguousarray(Wo[:, :H].T, dtype=f32))], "o_h")
    o = g.op("Add", [o, g.const("W_o_1", np.ascontiguousarray(Wo[:, H], dtype=f32))], "o")
    return g.op("Clip", [o, g.const("zero", f32(0.0)), one], y_out)


def build_enu_onnx(spec, genome, graph: str = "step", opset: int = OPSET, metadata: dict | None = None):
    """The ONNX ``ModelProto`` of one ENU genome (float32 [spec.n_params], order W_g, W_c, W_o).

    ``graph``: ``"step"`` (one step, state in and out) or ``"sequence"`` (Scan over ``xs`` [T, batch,
    n_in] from the zero state); see the module docstring for names and shapes."""
    from ..models.enu import ENUSpec
    _, helper, numpy_helper, TensorProto = _onnx()
    if not isinstance(spec, ENUSpec):
        raise TypeError(f"spec must be an ENUSpec (edge_evo.models.enu), got {type(spec).__name__}")
    if graph not in GRAPHS:
        raise ValueError(f"ENU graph {graph!r} is not supported; choose one of {GRAPHS}")
    gen = np.asarray(genome)
    if gen.dtype.kind != "f":
        raise TypeError(f"ENU genomes are float (float32 research mode), got {gen.dtype}; there is no integer ENU")
    gen = np.ascontiguousarray(gen.reshape(-1).astype(np.float32))
    if gen.size != spec.n_params:
        raise ValueError(f"ENU genome has {gen.size} values, {spec} needs {spec.n_params}")
    prm = {k: v[0] for k, v in spec.unflatten(gen[None]).items()}
    ni, no, H = spec.n_in, spec.n_out, spec.n_hidden
    F = TensorProto.FLOAT
    vi = helper.make_tensor_value_info
    g = _Graph(helper, numpy_helper)
    if graph == "step":
        _cell(g, spec, prm, "x", "y_prev", "h", "y", "h_out")
        inputs = [vi("x", F, ["batch", ni]), vi("h", F, ["batch", H]), vi("y_prev", F, ["batch", no])]
        outputs = [vi("y", F, ["batch", no]), vi("h_out", F, ["batch", H])]
    else:
        body = _Graph(helper, numpy_helper)
        _cell(body, spec, prm, "x_t", "y_in", "h_in", "y_out", "h_next")
        body.op("Identity", ["y_out"], "y_t")
        bg = helper.make_graph(body.nodes, "enu_cell", [vi("h_in", F, ["batch", H]), vi("y_in", F, ["batch", no]),
                                                        vi("x_t", F, ["batch", ni])],
                               [vi("h_next", F, ["batch", H]), vi("y_out", F, ["batch", no]),
                                vi("y_t", F, ["batch", no])], initializer=body.inits)
        # zero initial state of the runtime batch size: ConstantOfShape([batch, H]) from Shape(xs)
        bsz = g.op("Slice", [g.op("Shape", ["xs"], "xs_shape"), g.const("i1", np.array([1], np.int64)),
                             g.const("i2", np.array([2], np.int64))], "batch_size")
        zero = numpy_helper.from_array(np.zeros(1, np.float32), "zero")
        h0 = g.op("ConstantOfShape", [g.op("Concat", [bsz, g.const("H", np.array([H], np.int64))], "h0_shape",
                                           axis=0)], "h0", value=zero)
        y0 = g.op("ConstantOfShape", [g.op("Concat", [bsz, g.const("n_out", np.array([no], np.int64))], "y0_shape",
                                           axis=0)], "y0", value=zero)
        g.nodes.append(helper.make_node("Scan", [h0, y0, "xs"], ["h_final", "y_final", "ys"], name="Scan_time",
                                        body=bg, num_scan_inputs=1))
        inputs = [vi("xs", F, ["T", "batch", ni])]
        outputs = [vi("ys", F, ["T", "batch", no]), vi("h_final", F, ["batch", H])]
    sd = dataclasses.asdict(spec)
    sd["model"] = "enu"
    meta = {"model": "enu", "formats": json.dumps(sd, sort_keys=True, separators=(",", ":")), "graph": graph,
            "model_hash": arrays_hash(sd, gen), "genome_dtype": "float32", "input": "float32"}
    doc = f"edge_evo ENU n_in={ni} H={H} n_out={no}, float32 {graph} graph"
    return finish_model(g, f"edge_evo_enu_{graph}", inputs, outputs, opset, doc, meta, metadata)


def export_enu_onnx(spec, genome, path, graph: str = "step", opset: int = OPSET,
                    metadata: dict | None = None) -> Path:
    """Write ``build_enu_onnx(...)`` to ``path`` (``.onnx`` added when missing); returns the path."""
    return write_model(build_enu_onnx(spec, genome, graph=graph, opset=opset, metadata=metadata), path)


__all__ = ["build_enu_onnx", "export_enu_onnx", "resolve_enu", "GRAPHS"]
