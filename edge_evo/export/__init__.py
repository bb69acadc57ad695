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
from .nir_export import export_nir, check_nir_expressible
from .onnx_emns import build_emns_onnx, export_emns_onnx, resolve_emns
from .onnx_enu import build_enu_onnx, export_enu_onnx, resolve_enu

log = logging.getLogger(__name__)

EXPORTERS = {"onnx": export_onnx, "c": export_c, "nir": export_nir}

EXPORT_HELP = "export a saved model to ONNX (integer or float graph) or C (header + runtime), bit-exact with the kernels"


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
                    "(EMNS and ENU models: (EMNSSpec, values[, nmask, cmask]) / (ENUSpec, genome), to='onnx' only)")


def export(model, path, to: str = "onnx", integer: bool | None = None, **options) -> Path:
    """Export ``model`` to ``path`` in format ``to`` (one of ``EXPORTERS``); returns the written path.

    ``integer``: True = integer graph bit-exact with the int8 kernels, False = float graph, None =
    follow the genome dtype. ``options`` go to the exporter (ONNX: ``input``, ``opset``, ``metadata``).
    """
    if to == "onnx":
        special = _export_emns_enu(model, path, integer, options)
        if special is not None:
            return special
    try:
        fn = EXPORTERS[to]
    except KeyError:
        raise ValueError(f"unknown export target {to!r}; supported: {sorted(EXPORTERS)}") from None
    allowed = [p for p in inspect.signature(fn).parameters if p not in ("spec", "genome", "path", "integer")]
    bad = sorted(set(options) - set(allowed))
    if bad:
        raise ValueError(f"option(s) {bad} not supported by the {to!r} exporter; supported: {allowed}")
    if to == "nir":
        check_nir_expressible(model)
    spec, genome = resolve_model(model)
    return fn(spec, genome, path, integer=integer, **options)


def _export_emns_enu(model, path, integer, options):
    """ONNX export of an EMNS or ENU model (None when ``model`` is neither)."""
    emns, enu = resolve_emns(model), resolve_enu(model)
    if emns is None and enu is None:
        return None
    fn = export_emns_onnx if emns is not None else export_enu_onnx
    allowed = [p for p in inspect.signature(fn).parameters
               if p not in ("spec", "values", "genome", "path", "nmask", "cmask", "integer")]
    bad = sorted(set(options) - set(allowed))
    if bad:
        raise ValueError(f"option(s) {bad} not supported by the {'EMNS' if enu is None else 'ENU'} ONNX exporter; "
                         f"supported: {allowed}")
    if emns is not None:
        spec, values, nmask, cmask = emns
        return export_emns_onnx(spec, values, path, nmask=nmask, cmask=cmask, integer=integer, **options)
    if integer:
        raise ValueError("ENU cells are float32 only (no integer ENU exists); export with integer=None or False")
    return export_enu_onnx(enu[0], enu[1], path, **options)


__all__ = ["EXPORTERS", "export", "resolve_model", "build_onnx", "export_onnx", "model_hash", "spec_json",
           "EXPORT_HELP", "build_emns_onnx", "export_emns_onnx", "build_enu_onnx", "export_enu_onnx"]
