"""``edge-evo import`` command line (argument setup and handler for edge_evo/cli.py's registry)."""
from __future__ import annotations

import argparse
from pathlib import Path

from . import CALIB_SETS, LOADERS, import_model, format_report  

def add_import_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``edge-evo import`` (for edge_evo/cli.py's subcommand registry)."""
    p.add_argument("file", help="model to import: GENREG genome .pkl (read without executing it) or float .onnx")
    p.add_argument("-o", "--out", help="model path to write (default: FILE without suffix + '_int8')")
    p.add_argument("--format", default="auto", choices=("auto",) + tuple(sorted(LOADERS)),
                   help="input format (default: from the suffix)")
    p.add_argument("--calib", default="mnist", choices=CALIB_SETS + ("none",),
                   help="calibration set: its train split picks the int8 formats, its test split is reported "
                        "(default mnist; none = formats from the weight ranges)")
    p.add_argument("--calib-size", type=int, default=60000, help="calibration samples (default 60000)")
    p.add_argument("--data", help="folder with the dataset files (default: $EDGE_EVO_DATA / ../shared/data)")
    p.add_argument("--float", dest="mode", action="store_const", const="float32", default="int8",
                   help="save the float model, no quantization")
    p.add_argument("--overwrite", action="store_true", help="replace a different model at --out")


def cli_import(args: argparse.Namespace) -> int:
    """Handler of ``edge-evo import``: writes the model and prints the float vs int8 report."""
    src = Path(args.file)
    out = args.out or str(src.with_suffix("").with_name(src.stem + ("_int8" if args.mode == "int8" else "_float")))
    calib = None if args.calib == "none" else args.calib
    spec, genome, report = import_model(src, out, calib=calib, format=args.format, mode=args.mode,
                                        data_dir=args.data, calib_size=args.calib_size, overwrite=args.overwrite)
    info = report["source"]
    print(f"imported {info['source']} ({info['format']}): {spec.activation} {'-'.join(map(str, spec.dims))}, "
          f"{spec.n_params} parameters")
    if args.mode == "int8":
        print(format_report(report))
    elif report.get("float_accuracy") is not None:
        print(f"eval ({report['eval_n']} samples): float {100 * report['float_accuracy']:.2f} %")
    print(f"model written: {out}.json / {out}.npz   next: edge-evo export {out}.json")
    return 0
