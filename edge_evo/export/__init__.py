"""Exporters: one entry point ``export(model, path, to=...)`` over a registry (DESIGN.md section 3).

A model is ``(spec: MLPSpec, genome: flat int8|float32 array)`` in the canonical genome order, an
``edge_evo.io.Model``, a one-genome ``Population``, or the path of a model saved by
``edge_evo.io.save_model`` (a run folder is accepted). ``EXPORTERS`` maps a target name to a function
``fn(spec, genome, path, integer=..., **options) -> Path``; the CLI (``edge-evo export``) and the
parametrised tests read it, so a new target ("c", "nir") only registers itself here.
"""
from __future__ import annotations

import argparse
import inspect
import logging
from pathlib import Path

import numpy as np

from .onnx_export import build_onnx, export_onnx, model_hash, spec_json, OPSET
from .c_export import export_c

log = logging.getLogger(__name__)

EXPORTERS = {"onnx": export_onnx, "c": export_c}

EXPORT_HELP = "export a saved model to ONNX (integer graph bit-exact with the kernels, or float)"


def resolve_model(model):
    """-> (spec, flat genome). Accepts (spec, genome), io.Model, a 1-genome Population or a model path."""
    from ..models.mlp import MLPSpec, Population
    from ..io import Model, load_model
    if isinstance(model, (str, Path)):
        model = load_model(model)
    if isinstance(model, Model):
        return model.spec, np.ascontiguousarray(np.asarray(model.genome).ravel())
    if isinstance(model, Population):
        if model.size != 1:
            raise ValueError(f"a Population of {model.size} genomes was given; export one: "
                             "(pop.spec, pop.genome(i))")
        return model.spec, model.genome(0)
    if isinstance(model, tuple) and len(model) == 2 and isinstance(model[0], MLPSpec):
        return model[0], np.ascontiguousarray(np.asarray(model[1]).ravel())
    raise TypeError(f"cannot export a {type(model).__name__}; supported models: (MLPSpec, genome) tuple, "
                    "edge_evo.io.Model, a one-genome Population, or the path of a saved model "
                    "(EMNS and ENU models are not exportable yet)")


def export(model, path, to: str = "onnx", integer: bool | None = None, **options) -> Path:
    """Export ``model`` to ``path`` in format ``to`` (one of ``EXPORTERS``); returns the written path.

    ``integer``: True = integer graph bit-exact with the int8 kernels, False = float graph, None =
    follow the genome dtype. ``options`` go to the exporter (ONNX: ``input``, ``opset``, ``metadata``).
    """
    try:
        fn = EXPORTERS[to]
    except KeyError:
        raise ValueError(f"unknown export target {to!r}; supported: {sorted(EXPORTERS)}") from None
    allowed = [p for p in inspect.signature(fn).parameters if p not in ("spec", "genome", "path", "integer")]
    bad = sorted(set(options) - set(allowed))
    if bad:
        raise ValueError(f"option(s) {bad} not supported by the {to!r} exporter; supported: {allowed}")
    spec, genome = resolve_model(model)
    return fn(spec, genome, path, integer=integer, **options)


# ----------------------------------------------------------------------------- CLI
def add_export_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``edge-evo export`` (for edge_evo/cli.py's ``subcommand`` registry)."""
    p.add_argument("model", help="saved model (MODEL.json/.npz pair, or a run folder)")
    p.add_argument("--to", default="onnx", choices=sorted(EXPORTERS), help="target format (default: onnx)")
    p.add_argument("-o", "--out", help="output file (default: MODEL path with the target's suffix)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--int", dest="integer", action="store_true", default=None,
                      help="integer graph, bit-exact with the int8 kernels (default for int8 models)")
    mode.add_argument("--float", dest="integer", action="store_false",
                      help="float graph (dequantized for int8 models)")
    p.add_argument("--input", default="auto", choices=("auto", "int8", "uint8", "float32"),
                   help="graph input: auto (int8 Q(x_frac) / float32), uint8 pixels converted in the graph")
    p.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default {OPSET})")


def cli_export(args: argparse.Namespace) -> int:
    """Handler of ``edge-evo export``: writes the file and prints its path, size and hash."""
    from ..io import base_path
    spec, genome = resolve_model(args.model)
    out = args.out
    if out is None:
        src = Path(args.model)
        out = src / "model" if src.is_dir() else base_path(src)
        out = out.with_name(out.name + "." + args.to)
    path = export((spec, genome), out, to=args.to, integer=args.integer, input=args.input, opset=args.opset)
    kind = "float" if args.integer is False or (args.integer is None and genome.dtype != np.int8) else "integer"
    print(f"{path}  ({path.stat().st_size} bytes, {args.to} {kind} graph, "
          f"{'-'.join(map(str, spec.dims))}, sha256 {model_hash(spec, genome)[:16]})")
    return 0


def add_export_subcommand(subparsers) -> argparse.ArgumentParser:
    """Register ``export`` on an ``argparse`` subparsers object (handler in ``_handler`` and ``func``)."""
    p = subparsers.add_parser("export", help=EXPORT_HELP, description=EXPORT_HELP)
    add_export_arguments(p)
    p.set_defaults(_handler=cli_export, func=cli_export)
    return p


__all__ = ["EXPORTERS", "export", "resolve_model", "build_onnx", "export_onnx", "model_hash", "spec_json",
           "add_export_arguments", "add_export_subcommand", "cli_export", "EXPORT_HELP"]
