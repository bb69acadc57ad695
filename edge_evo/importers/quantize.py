"""Post-training quantization of a float MLP to the int8 contract (docs/numerics.md).

Integer model (edge_evo.models.mlp): int8 weights Q(w_frac), biases Q(b_frac), input Q(x_frac),
pre-activations saturated to Q(z_frac), the activation as a 256-entry LUT to Q(h_frac); one
format per model, power-of-two scales (Jacob et al. 2018, "Quantization and Training of Neural
Networks for Efficient Integer-Arithmetic-Only Inference", restricted to power-of-two scales).

Two exact re-parametrisations are used before rounding:

* uint8 pixels enter the int8 model as Q7 ``round(127 p / 255)`` so ``x_int / 128 = (127/128) p/255``;
  the factor 128/127 is folded into W1, so the integer layer 1 sees the float model's pre-activation.
* argmax(W_L h + b_L) is unchanged by any positive factor on (W_L, b_L); for positively homogeneous
  activations (relu, linear) every layer admits one (relu(c z) = c relu(z)). Those layers are scaled
  to fill the int8 range instead of wasting bits under the single model-wide w_frac.

The formats (w_frac, b_frac, z_frac, h_frac) are chosen by a small grid search that maximises
calibration accuracy (labels given) or agreement with the float model's labels, with a saturation
analysis of weights, biases and pre-activations for every candidate.
"""
from __future__ import annotations

import logging
import math

import numpy as np

from ..fixedpoint import quantize, quantize_input_u8
from ..models.forward import forward
from ..models.mlp import MLPSpec, Population

log = logging.getLogger(__name__)

QMAX = 127
HOMOGENEOUS = ("relu", "linear")
PIXEL_FOLD = 128.0 / 127.0


# ----------------------------------------------------------------------------- inputs
def _resolve_input(input: str, X) -> str:
    if input not in ("auto", "uint8", "float"):
        raise ValueError(f"input must be 'auto', 'uint8' (pixels, float model sees p/255) or 'float', got {input!r}")
    if input == "auto":
        return "uint8" if X is not None and np.asarray(X).dtype == np.uint8 else "float"
    return input


def _check_X(X, n_in: int, mode: str, name: str):
    if X is None:
        return None
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != n_in:
        raise ValueError(f"{name} must be [n, {n_in}], got shape {X.shape}")
    if mode == "uint8" and X.dtype != np.uint8:
        raise TypeError(f"{name}: input='uint8' needs uint8 pixels, got {X.dtype}")
    if mode == "float" and not np.all(np.isfinite(X)):
        raise ValueError(f"{name} holds NaN/inf values: clean the data first")
    return X


def float_inputs(X, mode: str) -> np.ndarray:
    return X.astype(np.float32) / np.float32(255.0) if mode == "uint8" else X.astype(np.float32)


def int_inputs(X, mode: str, x_frac: int = 7) -> np.ndarray:
    return quantize_input_u8(X) if mode == "uint8" else quantize(X, x_frac)


def _labels(pop, X, engine, chunk=8192) -> np.ndarray:
    return np.concatenate([forward(pop, X[i:i + chunk], engine)[0].argmax(1) for i in range(0, len(X), chunk)])


# ----------------------------------------------------------------------------- helpers
def _layers(spec: MLPSpec, genome: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    off, out = spec.offsets(), []
    for l in range(spec.n_layers):
        o, i = spec.dims[l + 1], spec.dims[l]
        W = genome[off[f"W{l + 1}"]:off[f"W{l + 1}"] + o * i].astype(np.float64).reshape(o, i)
        b = genome[off[f"b{l + 1}"]:off[f"b{l + 1}"] + o].astype(np.float64)
        out.append((W, b))
    return out


def _frac_fit(max_abs: float, lo: int = 0, hi: int = 14) -> int:
    """Largest frac with max_abs * 2**frac <= 127 (values fit without clipping)."""
    if max_abs <= 0:
        return hi
    return int(np.clip(math.floor(math.log2(QMAX / max_abs)), lo, hi))


def _preacts(layers, Xf: np.ndarray, act) -> list[np.ndarray]:
    """Float pre-activations of the hidden layers (for saturation analysis)."""
    h, zs = Xf.astype(np.float64), []
    for W, b in layers[:-1]:
        z = h @ W.T + b
        zs.append(z)
        h = act(z)
    return zs


def _scaled_layers(layers, activation: str, w_frac: int, b_frac: int, zs_cal=None, z_frac: int = 5):
    """Apply the exact re-parametrisations; returns (layers', per-layer factors s_l)."""
    n = len(layers)
    out, scales, S = [], [], 1.0
    w_lim, b_lim = QMAX / 2.0 ** w_frac, QMAX / 2.0 ** b_frac
    for l, (W, b) in enumerate(layers):
        free = l == n - 1 or activation in HOMOGENEOUS
        s = 1.0
        if free:
            mw = float(np.abs(W).max())
            mb = float(np.abs(b).max()) * S
            cands = [w_lim / mw if mw > 0 else np.inf, b_lim / mb if mb > 0 else np.inf]
            if l < n - 1 and zs_cal is not None:
                # keep the (already scaled) pre-activations inside the Q(z_frac) range
                mz = float(np.quantile(np.abs(zs_cal[l]), 0.9999)) * S
                if mz > 0:
                    cands.append((QMAX / 2.0 ** z_frac) / mz)
            s = float(min(cands))
            if not np.isfinite(s) or s <= 0:
                s = 1.0
        S *= s
        out.append((W * s, b * S))
        scales.append(s)
    return out, scales


def _quantize_layers(layers, w_frac, b_frac):
    parts, sat = [], []
    for l, (W, b) in enumerate(layers):
        qW, qb = quantize(W, w_frac), quantize(b, b_frac)
        sat.append({"layer": l + 1,
                    "W_clipped": float(np.mean(np.abs(np.floor(W * 2.0 ** w_frac + 0.5)) > QMAX)),
                    "b_clipped": float(np.mean(np.abs(np.floor(b * 2.0 ** b_frac + 0.5)) > QMAX)),
                    "W_zero": float(np.mean(qW == 0))})
        parts += [qW.ravel(), qb.ravel()]
    return np.concatenate(parts).astype(np.int8), sat


def _z_saturation(zs, scales, z_frac, h_frac, act):
    """Share of pre-activations beyond Q(z_frac); 'harmful' where clipping changes the LUT output
    (for tanh/sigmoid most saturation is harmless: the function is flat out there)."""
    out, S = [], 1.0
    lim = QMAX / 2.0 ** z_frac
    for l, z in enumerate(zs):
        S *= scales[l]
        zs_ = z * S
        sat = np.abs(zs_) > lim
        harm = sat & (quantize(act(np.clip(zs_, -lim, lim)), h_frac) != quantize(act(zs_), h_frac))
        out.append({"layer": l + 1, "z_saturated": float(np.mean(sat)), "z_saturated_harmful": float(np.mean(harm)),
                    "z_max": float(np.abs(zs_).max())})
    return out


def _candidates(spec: MLPSpec, layers, activation, x_frac, w_fracs, z_fracs, b_fracs):
    n = len(layers)
    fixed = [l for l in range(n) if not (l == n - 1 or activation in HOMOGENEOUS)]
    w_fit = _frac_fit(max(float(np.abs(layers[l][0]).max()) for l in fixed)) if fixed else 6
    b_fit = _frac_fit(max(float(np.abs(layers[l][1]).max()) for l in fixed)) if fixed else 6
    if w_fracs is None:
        w_fracs = [w_fit, w_fit + 1, w_fit + 2] if fixed else [6]
    if z_fracs is None:
        z_fracs = [3, 4, 5, 6] if activation not in HOMOGENEOUS else [3, 4, 5]
    out = []
    for w in w_fracs:
        for z in z_fracs:
            h = z if activation in HOMOGENEOUS else 7
            bl = b_fracs if b_fracs is not None else sorted({b_fit, b_fit + 1})
            for b in bl:
                b = min(b, w + min(x_frac, h))
                if z > w + min(x_frac, h) or b < 0 or z < 0:
                    continue
                try:
                    cand = MLPSpec(spec.dims, spec.activation, w_frac=w, b_frac=b, x_frac=x_frac, z_frac=z, h_frac=h)
                except ValueError:
                    continue
                if cand not in out:
                    out.append(cand)
    if not out:
        raise ValueError("no valid int8 format candidate; pass w_fracs/z_fracs explicitly")
    return out


def _accuracy(pred, y):
    return None if y is None else float(np.mean(pred == y))


# ----------------------------------------------------------------------------- entry point
def quantize_model(spec_float: MLPSpec, genome_float, calib_X=None, calib_y=None, eval_X=None, eval_y=None,
                   input: str = "auto", w_fracs=None, z_fracs=None, b_fracs=None, engine: str = "auto"):
    """Float MLP -> ``(MLPSpec int8, int8 genome, report)`` under the int8 contract.

    ``calib_X``: calibration inputs (uint8 pixels for ``input='uint8'``, else float features of the
    float model's scale); ``calib_y`` optional labels (else agreement with the float labels is
    maximised). Without ``calib_X`` the formats follow the weight ranges alone (no search).
    ``eval_X``/``eval_y``: data for the float vs int8 accuracy report. The report holds the chosen
    formats, the per-layer factors (``layer_scales``; the int8 logits are the float logits times
    their product, argmax unchanged), every candidate's calibration score and the saturation analysis.
    """
    if not isinstance(spec_float, MLPSpec):
        raise TypeError(f"spec_float must be an MLPSpec, got {type(spec_float).__name__}")
    g = np.asarray(genome_float).ravel()
    if g.size != spec_float.n_params:
        raise ValueError(f"genome has {g.size} values, spec {spec_float.dims} needs {spec_float.n_params}")
    if not np.issubdtype(g.dtype, np.floating):
        raise TypeError(f"quantize_model needs a float genome, got {g.dtype}")
    if not np.all(np.isfinite(g)):
        raise ValueError(f"genome holds {int(np.count_nonzero(~np.isfinite(g)))} NaN/inf weight(s); cannot quantize")
    mode = _resolve_input(input, calib_X if calib_X is not None else eval_X)
    n_in = spec_float.dims[0]
    calib_X = _check_X(calib_X, n_in, mode, "calib_X")
    eval_X = _check_X(eval_X, n_in, mode, "eval_X")
    for y, X, nm in ((calib_y, calib_X, "calib_y"), (eval_y, eval_X, "eval_y")):
        if y is not None and (X is None or len(y) != len(X)):
            raise ValueError(f"{nm} needs its inputs and one label per row")
    act = spec_float.activation
    from ..fixedpoint.lut import LUT_FUNCTIONS
    act_fn = LUT_FUNCTIONS[act]
    # pixels are Q7 by contract; float features get the finest format holding 99.99 % of them
    x_frac = 7
    if mode == "float" and calib_X is not None:
        x_frac = _frac_fit(float(np.quantile(np.abs(calib_X), 0.9999)), 0, 7)
    layers = _layers(spec_float, g.astype(np.float32))
    fold = PIXEL_FOLD if mode == "uint8" else 1.0
    layers_q = [(layers[0][0] * fold, layers[0][1])] + layers[1:]

    pop_f = Population.from_flat(spec_float, g.astype(np.float32))
    cal_f = float_inputs(calib_X, mode) if calib_X is not None else None
    zs_cal = _preacts(layers, cal_f, act_fn) if cal_f is not None else None
    ref_cal = _labels(pop_f, cal_f, engine) if cal_f is not None else None
    cal_i = int_inputs(calib_X, mode, x_frac) if calib_X is not None else None

    cands = _candidates(spec_float, layers_q, act, x_frac, w_fracs, z_fracs, b_fracs)
    if calib_X is None:
        # no data: the first candidate fits every fixed-scale weight without clipping
        pick = next((c for c in cands if c.z_frac == (5 if act not in HOMOGENEOUS else 4)), cands[0])
        cands = [pick]
    table, best, zcache = [], None, {}
    for c in cands:
        ls, scales = _scaled_layers(layers_q, act, c.w_frac, c.b_frac, zs_cal, c.z_frac)
        q, sat = _quantize_layers(ls, c.w_frac, c.b_frac)
        row = {"w_frac": c.w_frac, "b_frac": c.b_frac, "z_frac": c.z_frac, "h_frac": c.h_frac,
               "weights": sat}
        if cal_i is not None:
            pred = _labels(Population.from_flat(c, q), cal_i, engine)
            row["calib_agreement"] = float(np.mean(pred == ref_cal))
            row["calib_accuracy"] = _accuracy(pred, calib_y)
            zkey = (c.z_frac, c.h_frac, tuple(scales[:-1]))
            if zkey not in zcache:  # hidden pre-activations do not depend on the last layer's factor
                zcache[zkey] = _z_saturation(zs_cal, scales, c.z_frac, c.h_frac, act_fn)
            row["preacts"] = zcache[zkey]
            key = (row["calib_accuracy"] if calib_y is not None else 0.0, row["calib_agreement"])
        else:
            key = (0.0, 0.0)
        table.append(row)
        log.debug("candidate %s -> %s", row, key)
        if best is None or key > best[0]:
            best = (key, c, q, scales, row)
    _, spec_q, genome_q, scales, row = best

    report = {"input": mode, "pixel_fold": fold, "formats": {k: row[k] for k in ("w_frac", "b_frac", "z_frac", "h_frac")},
              "x_frac": x_frac, "activation_lut": act, "layer_scales": scales,
              "logit_scale": float(np.prod(scales)), "saturation": {"weights": row["weights"],
                                                                     "preacts": row.get("preacts")},
              "candidates": table, "calib_n": 0 if calib_X is None else int(len(calib_X)),
              "calib_accuracy": row.get("calib_accuracy"), "calib_agreement": row.get("calib_agreement")}
    if eval_X is not None:
        ev = evaluate_pair(spec_float, g.astype(np.float32), spec_q, genome_q, eval_X, eval_y, mode, engine)
        report.update(ev)
    log.info("quantized %s: formats %s, int8 accuracy %s", spec_float.dims, report["formats"],
             report.get("int8_accuracy"))
    return spec_q, genome_q, report


def evaluate_pair(spec_f, genome_f, spec_q, genome_q, X, y, mode: str = "uint8", engine: str = "auto") -> dict:
    """Float vs int8 labels on ``X``: accuracies, agreement and per-class accuracies."""
    pf = _labels(Population.from_flat(spec_f, genome_f), float_inputs(X, mode), engine)
    pq = _labels(Population.from_flat(spec_q, genome_q), int_inputs(X, mode, spec_q.x_frac), engine)
    out = {"eval_n": int(len(X)), "agreement": float(np.mean(pf == pq)),
           "float_accuracy": _accuracy(pf, y), "int8_accuracy": _accuracy(pq, y)}
    if y is not None:
        y = np.asarray(y)
        classes = np.unique(y)
        out["per_class"] = {int(k): {"float": float(np.mean(pf[y == k] == k)), "int8": float(np.mean(pq[y == k] == k)),
                                     "n": int(np.sum(y == k))} for k in classes}
    return out


def format_report(report: dict) -> str:
    """Human-readable float vs int8 summary (for the CLI and benchmarks)."""
    f = report["formats"]
    lines = [f"int8 formats: w_frac={f['w_frac']} b_frac={f['b_frac']} x_frac={report['x_frac']} "
             f"z_frac={f['z_frac']} h_frac={f['h_frac']} (LUT {report['activation_lut']}), input {report['input']}"
             + (", W1 x 128/127" if report["input"] == "uint8" else "")
             + f", logit scale {report['logit_scale']:.4g}"]
    for w in report["saturation"]["weights"]:
        lines.append(f"  layer {w['layer']}: W clipped {100 * w['W_clipped']:.3f} %, b clipped "
                     f"{100 * w['b_clipped']:.3f} %, W zero {100 * w['W_zero']:.1f} %")
    for z in report["saturation"]["preacts"] or []:
        lines.append(f"  layer {z['layer']}: pre-activation saturated {100 * z['z_saturated']:.2f} % "
                     f"(changes the LUT output: {100 * z['z_saturated_harmful']:.3f} %; max |z| {z['z_max']:.2f})")
    if report.get("calib_n"):
        a = report.get("calib_accuracy")
        lines.append(f"calibration ({report['calib_n']} samples, {len(report['candidates'])} candidates): "
                     + (f"int8 accuracy {100 * a:.2f} %, " if a is not None else "")
                     + f"agreement with float {100 * report['calib_agreement']:.2f} %")
    if "eval_n" in report:
        fa, qa = report.get("float_accuracy"), report.get("int8_accuracy")
        if fa is not None:
            lines.append(f"eval ({report['eval_n']} samples): float {100 * fa:.2f} %  int8 {100 * qa:.2f} %  "
                         f"(labels agree {100 * report['agreement']:.2f} %)")
        else:
            lines.append(f"eval ({report['eval_n']} samples): labels agree {100 * report['agreement']:.2f} %")
    return "\n".join(lines)


__all__ = ["quantize_model", "evaluate_pair", "format_report", "float_inputs", "int_inputs"]
