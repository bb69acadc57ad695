"""Parse one stream record into ``(x_int8, label)``: CSV (``f1,...,fn[,label]``) or JSON lines
(``{"x": [...], "y": label}`` or ``[f1, ..., fn, label]``).

A record with ``n_in`` values is unlabelled (predict only); ``n_in + 1`` values carry a label.
Anything else (wrong field count, text, NaN/inf, pixel out of range, label out of range) raises
:class:`BadSample` with a one-line reason; the adapter counts and skips it, so a malformed line
never reaches the model.

Input scales (features -> int8 Q(x_frac), see fixedpoint.ops):
``u8``: integers 0..255 (pixels) -> ``quantize_input_u8``; ``float``: real values -> ``quantize``;
``int8``: integers already in [-127, 127].
"""
from __future__ import annotations

import json

import numpy as np

from ..fixedpoint import quantize, quantize_input_u8

INPUT_SCALES = ("u8", "float", "int8")


class BadSample(ValueError):
    """A stream record that cannot be used (the message names the problem)."""


class SampleParser:
    """Turns text records into int8 feature vectors and labels for one model."""

    def __init__(self, n_in: int, n_out: int, regression: bool, input_scale: str = "float", x_frac: int = 7):
        if input_scale not in INPUT_SCALES:
            raise ValueError(f"input scale must be one of {INPUT_SCALES}, got {input_scale!r}")
        self.n_in, self.n_out, self.regression = int(n_in), int(n_out), bool(regression)
        self.input_scale, self.x_frac = input_scale, int(x_frac)

    # ------------------------------------------------------------------ values
    def _values(self, rec: str) -> tuple[np.ndarray, object]:
        s = rec.strip()
        if s[:1] in ("{", "["):
            try:
                obj = json.loads(s)
            except ValueError as e:
                raise BadSample(f"invalid JSON ({e.msg})") from None
            if isinstance(obj, dict):
                if "x" not in obj:
                    raise BadSample('JSON object has no "x" field')
                x, y = obj["x"], obj.get("y", obj.get("label"))
                vals = list(x) if isinstance(x, list) else None
                if vals is None:
                    raise BadSample('"x" must be a list of numbers')
                if y is not None:
                    vals = vals + [y]
            elif isinstance(obj, list):
                vals = obj
            else:
                raise BadSample("JSON record must be an object or a list")
            try:
                a = np.array(vals, dtype=np.float64)
            except (TypeError, ValueError):
                raise BadSample("JSON record holds non-numeric values") from None
        else:
            try:
                a = np.array(s.split(","), dtype=np.float64)
            except ValueError:
                raise BadSample("non-numeric field in CSV record") from None
        if a.ndim != 1:
            raise BadSample("record must be a flat list of numbers")
        if a.size == self.n_in:
            return a, None
        if a.size == self.n_in + 1:
            return a[:-1], a[-1]
        raise BadSample(f"{a.size} fields; expected {self.n_in} features (+1 label)")

    def features(self, a) -> np.ndarray:
        a = np.asarray(a, dtype=np.float64).ravel()
        if a.size != self.n_in:
            raise BadSample(f"{a.size} features; the model takes {self.n_in}")
        if not np.all(np.isfinite(a)):
            raise BadSample("NaN or inf feature")
        if self.input_scale == "u8":
            if np.any((a < 0) | (a > 255) | (a != np.floor(a))):
                raise BadSample("u8 features must be integers 0..255 (use --input float for real values)")
            return quantize_input_u8(a.astype(np.uint8))
        if self.input_scale == "int8":
            if np.any((a < -127) | (a > 127) | (a != np.floor(a))):
                raise BadSample("int8 features must be integers in [-127, 127]")
            return a.astype(np.int8)
        return quantize(a, self.x_frac).astype(np.int8)

    def label(self, y):
        if y is None:
            return None
        y = float(y)
        if not np.isfinite(y):
            raise BadSample("NaN or inf label")
        if self.regression:
            return y
        if y != int(y) or not 0 <= y < self.n_out:
            raise BadSample(f"label {y:g} is not a class index 0..{self.n_out - 1}")
        return int(y)

    def parse(self, rec) -> tuple[np.ndarray, object]:
        """(x int8 [n_in], label or None); raises BadSample."""
        if isinstance(rec, bytes):
            try:
                rec = rec.decode("utf-8")
            except UnicodeDecodeError:
                raise BadSample("record is not UTF-8 text") from None
        a, y = self._values(rec)
        return self.features(a), self.label(y)

    def parse_pair(self, x, y=None) -> tuple[np.ndarray, object]:
        """Python API: features as numbers (scaled per ``input_scale``) or an int8 array."""
        xa = np.asarray(x)
        if xa.dtype == np.int8 and xa.shape == (self.n_in,):
            return xa, self.label(y)
        return self.features(xa), self.label(y)
