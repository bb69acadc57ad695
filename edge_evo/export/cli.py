"""``edge-evo export`` command line (argument setup and handler for edge_evo/cli.py's registry)."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from . import EXPORTERS, EXPORT_HELP, export, resolve_model, model_hash
from .onnx_export import OPSET

# the options each exporter takes from the command line
_CLI_OPTIONS = {"onnx": ("input", "opset"), "c": ("target",)}
_SUFFIX = {"onnx": ".onnx", "c": ""}


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
    p.add_argument("--target", default="host", help="C only: device description from targets/ (edge-evo targets)")


def cli_export(args: argparse.Namespace) -> int:
    """Handler of ``edge-evo export``: writes the file and prints its path, size and hash."""
    from ..io import base_path
    spec, genome = resolve_model(args.model)
    out = args.out
    if out is None:
        src = Path(args.model)
        out = src / "model" if src.is_dir() else base_path(src)
        out = out.with_name(out.name + _SUFFIX.get(args.to, "." + args.to)) if args.to != "c" else out.parent / (out.name + "_c")
    options = {k: getattr(args, k) for k in _CLI_OPTIONS.get(args.to, ())}
    path = export((spec, genome), out, to=args.to, integer=args.integer, **options)
    kind = "float" if args.integer is False or (args.integer is None and genome.dtype != np.int8) else "integer"
    size = path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
    print(f"{path}  ({size} bytes, {args.to} {kind} {'graph' if args.to == 'onnx' else 'code'}, "
          f"{'-'.join(map(str, spec.dims))}, sha256 {model_hash(spec, genome)[:16]})")
    return 0


def add_export_subcommand(subparsers) -> argparse.ArgumentParser:
    """Register ``export`` on an ``argparse`` subparsers object (handler in ``_handler`` and ``func``)."""
    p = subparsers.add_parser("export", help=EXPORT_HELP, description=EXPORT_HELP)
    add_export_arguments(p)
    p.set_defaults(_handler=cli_export, func=cli_export)
    return p


