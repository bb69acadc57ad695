"""Rate-coded spiking twin of an int8 MLP: Affine + integrate-and-fire (IF) layers.

Conversion follows the data-based normalisation of Diehl et al. 2015 ("Fast-classifying,
high-accuracy spiking deep networks through weight and threshold balancing") and Rueckauer
et al. 2017 (reset by subtraction). One time step of every IF layer (NIR ``IF`` node, forward
Euler with step ``dt``)::

    v[t] = v[t-1] + dt * r * I[t]                      I[t] = W s_in[t] + b   (Affine, no delay)
    s[t] = v[t] > v_threshold                          (strict, as NIR and Norse)
    v[t] = v[t] - s[t] * v_threshold                   reset="subtract" (default)
    v[t] = v_reset where s[t]                          reset="zero" (the NIR IF equation)

With constant input the spike rate of a subtract-reset neuron is clip(I / v_threshold, 0, 1).

tanh hidden units: an IF neuron only fires for positive input, so each hidden unit becomes a
pair of neurons fed +z and -z (Affine rows [W; -W]) and the next layer weighs their spikes with
[W2, -W2]. The pair's rate difference is clip(z / c, -1, 1): a hard tanh. ``c`` (the hidden
threshold in units of z) is the threshold normalisation: the value in ``C_GRID`` whose hard tanh
is closest (least squares) to tanh on the calibration pre-activations. The output threshold is
the 99.9th percentile of the largest positive output current on the calibration set, so the
winning class rarely saturates at one spike per step.

All weights, biases and thresholds are integers in accumulator units of the int8 model
(W1_int * x_int, Q(w_frac + x_frac)); with ``dt * r == 1`` every membrane value is an exact
integer in float64, so any simulator (this NumPy interpreter, Brian2, a NIR reader) that sums
the same numbers in any order gives identical spikes.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .mlp import MLPSpec

log = logging.getLogger(__name__)

RESETS = ("subtract", "zero")
INPUT_CODINGS = ("current", "spikes")
C_GRID = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0)
DT = 1e-3          # seconds per step; r = 1 / DT makes dt * r == 1.0 exactly
OUT_SHIFT = 6      # output weights x 2**6 so the rescaled bias keeps 6 more bits when rounded
INPUT_THRESHOLD = 128.0  # encoder threshold: spike rate = x_int / 128 = the Q7 pixel value


@dataclass(frozen=True, eq=False)
class AffineLayer:
    """I = weight @ s + bias (weight [out, in], bias [out]; NIR ``Affine``)."""
    weight: np.ndarray
    bias: np.ndarray

    def __post_init__(self):
        w = np.asarray(self.weight, dtype=np.float64)
        b = np.asarray(self.bias, dtype=np.float64)
        if w.ndim != 2 or b.shape != (w.shape[0],):
            raise ValueError(f"Affine needs weight [out, in] and bias [out], got {w.shape} and {b.shape}")
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise ValueError("Affine weight/bias contain NaN or inf")
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "bias", b)


@dataclass(frozen=True, eq=False)
class IFLayer:
    """dv/dt = r I; spike when v > v_threshold; reset by subtraction or to v_reset (NIR ``IF``)."""
    r: np.ndarray
    v_threshold: np.ndarray
    v_reset: np.ndarray | None = None

    def __post_init__(self):
        r = np.asarray(self.r, dtype=np.float64)
        th = np.asarray(self.v_threshold, dtype=np.float64)
        vr = np.zeros_like(th) if self.v_reset is None else np.asarray(self.v_reset, dtype=np.float64)
        if r.ndim != 1 or r.shape != th.shape or vr.shape != th.shape:
            raise ValueError(f"IF needs 1-D r, v_threshold, v_reset of one shape; got {r.shape}, {th.shape}, {vr.shape}")
        if not (th > 0).all():
            raise ValueError("IF v_threshold must be > 0 for a rate code")
        object.__setattr__(self, "r", r)
        object.__setattr__(self, "v_threshold", th)
        object.__setattr__(self, "v_reset", vr)

    @property
    def size(self) -> int:
        return self.r.shape[0]


@dataclass(frozen=True, eq=False)
class SpikingNet:
    """A feed-forward chain Input -> (AffineLayer | IFLayer)* -> Output, run for T steps of ``dt``.

    The input (int8 Q7 pixels as integers 0..127, or any float features) is a constant current
    every step. ``info`` records how it was converted (hidden ``c``, thresholds, coding, ...).
    """
    layers: tuple
    n_in: int
    dt: float = DT
    reset: str = "subtract"
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.reset not in RESETS:
            raise ValueError(f"reset must be one of {RESETS}, got {self.reset!r}")
        layers = tuple(self.layers)
        object.__setattr__(self, "layers", layers)
        if not layers or not isinstance(layers[-1], IFLayer):
            raise ValueError("a SpikingNet must end with an IFLayer (the spiking output)")
        n = self.n_in
        for k, L in enumerate(layers):
            if isinstance(L, AffineLayer):
                if L.weight.shape[1] != n:
                    raise ValueError(f"layer {k}: Affine expects {L.weight.shape[1]} inputs, the previous layer gives {n}")
                n = L.weight.shape[0]
            elif isinstance(L, IFLayer):
                if L.size != n:
                    raise ValueError(f"layer {k}: IF has {L.size} neurons, the previous layer gives {n}")
            else:
                raise TypeError(f"layer {k}: {type(L).__name__} is not an AffineLayer or IFLayer")

    @property
    def n_out(self) -> int:
        return self.layers[-1].size

    @property
    def if_layers(self) -> list[IFLayer]:
        return [L for L in self.layers if isinstance(L, IFLayer)]


# ----------------------------------------------------------------------------- conversion
def _float_layers(spec: MLPSpec, genome: np.ndarray):
    """Integer tensors of an int8 genome (or float ones scaled to the same units)."""
    off = spec.offsets()
    out = []
    for l in range(spec.n_layers):
        o, i = spec.dims[l + 1], spec.dims[l]
        W = genome[off[f"W{l + 1}"]:off[f"W{l + 1}"] + o * i].reshape(o, i).astype(np.float64)
        b = genome[off[f"b{l + 1}"]:off[f"b{l + 1}"] + o].astype(np.float64)
        out.append((W, b))
    return out


def _hardtanh_c(z: np.ndarray) -> float:
    """Hidden threshold (units of z): the c in C_GRID whose clip(z/c, -1, 1) best fits tanh(z)."""
    t = np.tanh(z)
    errs = [float(np.mean((np.clip(z / c, -1.0, 1.0) - t) ** 2)) for c in C_GRID]
    return float(C_GRID[int(np.argmin(errs))])


def convert_mlp(spec: MLPSpec, genome, calib_X, input_coding: str = "current", reset: str = "subtract",
                c: float | None = None, out_percentile: float = 99.9, dt: float = DT) -> SpikingNet:
    """int8 MLP ``(spec, genome)`` -> rate-coded IF ``SpikingNet`` (see the module docstring).

    ``calib_X``: int8 inputs (Q(x_frac), e.g. ``quantize_input_u8(pixels)``) [N, n_in] used for the
    threshold normalisation. ``input_coding``: 'current' (the pixel drives layer 1 as a constant
    current) or 'spikes' (an IF encoder layer turns each pixel into a spike train of rate x_Q7).
    ``c``: hidden threshold in units of z (None: fitted on ``calib_X``).
    Supported: int8 genomes with hidden activation tanh, relu or linear (identity).
    """
    if not isinstance(spec, MLPSpec):
        raise TypeError(f"convert_mlp needs an MLPSpec, got {type(spec).__name__}; ENU and EMNS models have no "
                        "IF equivalent (export them to ONNX or C instead)")
    if input_coding not in INPUT_CODINGS:
        raise ValueError(f"input_coding must be one of {INPUT_CODINGS}, got {input_coding!r}")
    if reset not in RESETS:
        raise ValueError(f"reset must be one of {RESETS}, got {reset!r}")
    if spec.activation not in ("tanh", "relu", "linear", "identity"):
        raise ValueError(f"hidden activation {spec.activation!r} has no rate-coded IF equivalent; "
                         "convert tanh/relu/linear MLPs only, or export to ONNX/C")
    genome = np.asarray(genome).ravel()
    if genome.dtype != np.int8:
        raise TypeError(f"convert_mlp needs an int8 genome (got {genome.dtype}); quantize it first "
                        "(edge_evo.importers.quantize_model)")
    if genome.shape[0] != spec.n_params:
        raise ValueError(f"genome length {genome.shape[0]} != {spec.n_params} parameters of {spec.dims}")
    calib_X = np.asarray(calib_X)
    if calib_X.ndim != 2 or calib_X.shape[1] != spec.dims[0] or calib_X.dtype != np.int8 or len(calib_X) == 0:
        raise ValueError(f"calib_X must be non-empty int8 [N, {spec.dims[0]}] (Q{spec.x_frac}); got "
                         f"{calib_X.dtype} {calib_X.shape}: use edge_evo.fixedpoint.quantize_input_u8")
    r = 1.0 / dt
    if dt * r != 1.0:
        raise ValueError(f"dt={dt} gives dt * (1/dt) != 1 in float64; pick dt = 2**-k or 10**-k")
    layers_int = _float_layers(spec, genome)
    a = calib_X.astype(np.float64)      # calibration activations entering layer l (as the SNN sees them)
    layers: list = []
    if input_coding == "spikes":
        layers.append(IFLayer(np.full(spec.dims[0], r), np.full(spec.dims[0], INPUT_THRESHOLD)))
    info = {"kind": "snn_mlp", "source_dims": list(spec.dims), "activation": spec.activation,
            "input_coding": input_coding, "reset": reset, "dt": dt, "hidden_c": []}
    unit = 1.0        # value of h that one unit of the previous rate stands for (relu: c; tanh pairs: 1)
    split = False     # previous hidden layer emitted [+ population, - population]
    for l, (W, b) in enumerate(layers_int):
        last = l == spec.n_layers - 1
        if l == 0:
            # accumulator units of the int8 model: W1_int * x_int, Q(w_frac + x_frac)
            acc_frac = spec.w_frac + spec.x_frac
            bias_units = b * 2.0 ** (acc_frac - spec.b_frac)
            Wm = W * (INPUT_THRESHOLD if input_coding == "spikes" else 1.0)
        else:
            # spikes stand for h in [-1, 1]: W_int * 2**OUT_SHIFT keeps the rescaled bias precise
            acc_frac = spec.w_frac + OUT_SHIFT
            W = W * 2.0 ** OUT_SHIFT
            bias_units = b * 2.0 ** (acc_frac - spec.b_frac) / unit
            Wm = np.concatenate([W, -W], axis=1) if split else W
        acc = a @ W.T + bias_units
        if last:
            th = float(np.percentile(np.maximum(acc.max(axis=1), 0.0), out_percentile))
            th = max(float(np.round(th)), 1.0)
            layers += [AffineLayer(Wm, bias_units), IFLayer(np.full(W.shape[0], r), np.full(W.shape[0], th))]
            info["out_threshold"] = th
            break
        z = acc / 2.0 ** acc_frac
        if spec.activation == "tanh":
            # pair (+z, -z): rate difference clip(z / c, -1, 1) ~ tanh(z)
            cc = float(c) if c is not None else _hardtanh_c(z)
            n = 2 * W.shape[0]
            layers += [AffineLayer(np.concatenate([Wm, -Wm], 0), np.concatenate([bias_units, -bias_units])),
                       IFLayer(np.full(n, r), np.full(n, cc * 2.0 ** acc_frac))]
            a, unit, split = np.clip(z / cc, -1.0, 1.0), 1.0, True
        else:
            if spec.activation in ("linear", "identity"):
                raise ValueError("a linear hidden layer takes negative values an IF layer cannot rate-code; "
                                 "fold it into the next layer or use tanh/relu")
            # relu: rate clip(z / c, 0, 1) stands for c * rate, c = high percentile of z (Diehl 2015)
            zp = np.maximum(z, 0.0)
            cc = float(c) if c is not None else max(float(np.percentile(zp, out_percentile)), 2.0 ** -acc_frac)
            layers += [AffineLayer(Wm, bias_units), IFLayer(np.full(W.shape[0], r), np.full(W.shape[0], cc * 2.0 ** acc_frac))]
            a, unit, split = np.clip(z / cc, 0.0, 1.0), cc, False
        info["hidden_c"].append(cc)
    # exact integers everywhere: round the rescaled biases / thresholds once, here
    fixed = []
    for L in layers:
        if isinstance(L, AffineLayer):
            fixed.append(AffineLayer(L.weight, np.round(L.bias)))
        else:
            fixed.append(IFLayer(L.r, np.round(L.v_threshold), L.v_reset))
    net = SpikingNet(tuple(fixed), spec.dims[0], dt=dt, reset=reset, info=info)
    log.info("converted %s MLP to %d-layer IF net (coding %s, reset %s, hidden c %s, output threshold %g)",
             "-".join(map(str, spec.dims)), len(net.if_layers), input_coding, reset, info["hidden_c"],
             info["out_threshold"])
    return net


# ----------------------------------------------------------------------------- reference simulator
def simulate(net: SpikingNet, X, T: int, record: bool = False):
    """Run ``net`` for ``T`` steps on constant inputs ``X`` [B, n_in] (int8 Q7 or float).

    Returns ``(counts, v)`` of the output layer ([B, n_out] int32 spike counts, float64 membrane),
    plus, with ``record``, a list (one per IF layer) of bool spike arrays [T, B, n].
    """
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != net.n_in:
        raise ValueError(f"X must be [batch, {net.n_in}], got {X.shape}")
    if int(T) < 1:
        raise ValueError(f"T must be >= 1 steps, got {T}")
    x = X.astype(np.float64)
    B = x.shape[0]
    ifs = net.if_layers
    v = [np.zeros((B, L.size)) for L in ifs]
    counts = np.zeros((B, net.n_out), dtype=np.int32)
    rec = [np.zeros((int(T), B, L.size), dtype=bool) for L in ifs] if record else None
    # a leading Affine sees a constant input: one product for all steps
    k0, cur0 = 0, x
    if isinstance(net.layers[0], AffineLayer):
        cur0 = x @ net.layers[0].weight.T + net.layers[0].bias
        k0 = 1
    gains = [L.r * net.dt for L in ifs]
    for t in range(int(T)):
        cur, j = cur0, 0
        for L in net.layers[k0:]:
            if isinstance(L, AffineLayer):
                cur = cur @ L.weight.T + L.bias
                continue
            vj = v[j]
            vj += gains[j] * cur
            s = vj > L.v_threshold
            if net.reset == "subtract":
                vj -= s * L.v_threshold
            else:
                np.copyto(vj, np.broadcast_to(L.v_reset, vj.shape), where=s)
            if record:
                rec[j][t] = s
            cur = s.astype(np.float64)
            j += 1
        counts += s
    return (counts, v[-1], rec) if record else (counts, v[-1])


def predict(counts: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Class = most output spikes; ties broken by the larger membrane potential."""
    key = counts.astype(np.float64) * 1e12 + v      # |v| << 1e12 for any sane threshold
    return key.argmax(axis=1)


__all__ = ["AffineLayer", "IFLayer", "SpikingNet", "convert_mlp", "simulate", "predict", "RESETS", "INPUT_CODINGS"]
