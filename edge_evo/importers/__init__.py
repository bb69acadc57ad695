"""Bring your own model: import a float MLP (GENREG genome pickle, ONNX) and quantize it to int8.

``import_model(path, out, calib="mnist")`` reads the file (nothing in it is executed), quantizes it
post-training to the int8 contract (``quantize.quantize_model``) and saves an ordinary edge_evo model
(``edge_evo.io.save_model``) that evaluates, exports (ONNX, C) and seeds a population like any
evolved one. The CLI hook is ``add_import_arguments`` / ``cli_import`` (``edge-evo import FILE``).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .genreg_pickle import load_genreg_pickle, SafeUnpickler, PickleRefused
from .onnx_import import load_onnx_mlp
from .quantize import quantize_model, evaluate_pair, format_report

log = logging.getLogger(__name__)

IMPORT_HELP = "import a float MLP (GENREG .pkl genome, ONNX) as an int8 edge_evo model"

LOADERS = {"genreg": load_genreg_pickle, "onnx": load_onnx_mlp}
_SUFFIXES = {".pkl": "genreg", ".pickle": "genreg", ".onnx": "onnx"}
CALIB_SETS = ("mnist", "fashion")


def load_float_model(path, format: str = "auto"):
    """File -> ``(MLPSpec, float32 genome, info)`` with the loader chosen by ``format`` or the suffix."""
    p = Path(path)
    if format == "auto":
        format = _SUFFIXES.get(p.suffix.lower())
        if format is None:
            raise ValueError(f"{p.name}: cannot tell the format from the suffix {p.suffix!r}; "
                             f"use .pkl (GENREG) / .onnx or pass format= one of {sorted(LOADERS)}")
    if format not in LOADERS:
        raise ValueError(f"unknown import format {format!r}; choose one of {sorted(LOADERS)}")
    if not p.is_file():
        raise ValueError(f"{p}: no such file")
    return LOADERS[format](p)


def calibration_data(calib, data_dir=None, calib_size: int = 60000):
    """``calib`` -> ``(calib_X, calib_y, eval_X, eval_y)``: a dataset name (train split calibrates,
    test split is the report), a tuple ``(X, y)`` / ``(X, y, X_eval, y_eval)``, or None."""
    if calib is None:
        return None, None, None, None
    if isinstance(calib, str):
        if calib not in CALIB_SETS:
            raise ValueError(f"unknown calibration set {calib!r}; choose one of {list(CALIB_SETS)} or pass arrays")
        from ..tasks import load_mnist, shared_data_dir
        path = data_dir if data_dir is not None else shared_data_dir()
        Xc, yc = load_mnist(calib, "train", path=path)
        Xe, ye = load_mnist(calib, "test", path=path)
        return Xc[:calib_size], yc[:calib_size], Xe, ye
    if isinstance(calib, tuple) and len(calib) in (2, 4):
        return tuple(calib) if len(calib) == 4 else (calib[0], calib[1], None, None)
    raise TypeError("calib must be a dataset name, (X, y) or (X, y, X_eval, y_eval)")


def import_model(path, out=None, calib=None, format: str = "auto", mode: str = "int8", input: str = "auto",
                 data_dir=None, calib_size: int = 60000, overwrite: bool = False, engine: str = "auto",
                 **quant_options):
    """Import ``path`` and (if ``out``) save it as an edge_evo model; returns ``(spec, genome, report)``.

    ``mode='int8'`` quantizes (``quantize_model``, calibrated on ``calib``); ``'float32'`` keeps the
    float genome. The file is validated and the model quantized before anything is written, so a
    bad input leaves ``out`` untouched.
    """
    from ..io import save_model
    if mode not in ("int8", "float32"):
        raise ValueError(f"mode must be 'int8' or 'float32', got {mode!r}")
    spec_f, genome_f, info = load_float_model(path, format)
    cX, cy, eX, ey = calibration_data(calib, data_dir, calib_size)
    if input == "auto" and info.get("input") == "pixels/255":
        input = "uint8"
    if mode == "int8":
        spec, genome, report = quantize_model(spec_f, genome_f, cX, cy, eX, ey, input=input, engine=engine,
                                              **quant_options)
    else:
        spec, genome = spec_f, genome_f
        report = {"formats": None}
        if eX is not None:
            in_mode = "uint8" if input in ("uint8", "auto") and np.asarray(eX).dtype == np.uint8 else "float"
            from .quantize import _labels, float_inputs
            from ..models.mlp import Population
            pred = _labels(Population.from_flat(spec, genome), float_inputs(eX, in_mode), engine)
            report.update(eval_n=int(len(eX)), float_accuracy=None if ey is None else float(np.mean(pred == ey)))
    report["source"] = info
    if out is not None:
        meta = {"imported_from": info, "quantization": {k: v for k, v in report.items()
                                                         if k not in ("candidates", "source")}}
        save_model(out, spec, genome, mode, extra_meta=meta, overwrite=overwrite)
        report["saved"] = str(out)
    return spec, genome, report


# ----------------------------------------------------------------------------- CLI
__all__ = ["import_model", "load_float_model", "calibration_data", "load_genreg_pickle", "load_onnx_mlp",
           "quantize_model", "evaluate_pair", "format_report", "SafeUnpickler", "PickleRefused",
           "IMPORT_HELP", "LOADERS"]
