"""Integer operations of the numerics contract.

Every rounding in edge_evo is one of these, defined once:

* ``rshift_round(acc, s)`` = ``(acc + (1 << (s - 1))) >> s`` for s >= 1, ``acc`` for s = 0.
  ``>>`` is an arithmetic (flooring) shift, so ties round **half up** (towards +inf):
  2.5 -> 3, -2.5 -> -2. C twin: ``(int32_t)((acc + (1 << (s-1))) >> s)`` with gcc's arithmetic
  shift of negative values (documented implementation-defined behaviour of gcc/clang).
* ``saturate_int8(v)`` clips to the symmetric range [-127, 127]; -128 is never produced, so
  negation is always safe and the LUT entry at index 0 (x = -128) is never read by a kernel.
* ``quantize(x, frac)`` (float -> int8, used off-device only: init, import) is
  ``floor(x * 2**frac + 0.5)`` saturated: also half up, so it agrees with ``rshift_round``.

These functions are plain Python/NumPy on int64 arrays; the Numba kernels inline the same
expressions with explicit int32 casts.
"""
from __future__ import annotations

import numpy as np

INT8_MAX = 127
INT8_MIN = -127
QMAX = 127  # symmetric int8 range [-QMAX, QMAX]


def saturate_int8(v):
    """Clip to [-127, 127] and return int8 (array or scalar)."""
    return np.clip(np.asarray(v, dtype=np.int64), INT8_MIN, INT8_MAX).astype(np.int8)


def rshift_round(acc, shift: int):
    """Round-half-up arithmetic right shift (the one requantization rule)."""
    if shift < 0 or shift > 30:
        raise ValueError(f"shift must be in [0, 30], got {shift}: pick formats whose frac bits differ by <= 30")
    a = np.asarray(acc, dtype=np.int64)
    if shift == 0:
        return a
    return (a + (1 << (shift - 1))) >> shift


def requantize(acc, shift: int):
    """int32 accumulator -> int8: round-half-up shift, then saturate."""
    return saturate_int8(rshift_round(acc, shift))


def quantize(x, frac: int):
    """float -> int8 in Q(frac): floor(x * 2**frac + 0.5), saturated. NaN is refused."""
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("cannot quantize NaN or inf values: clean the weights/data first")
    return saturate_int8(np.floor(x * (2.0 ** frac) + 0.5))


def dequantize(q, frac: int):
    return np.asarray(q, dtype=np.float32) * np.float32(2.0 ** -frac)


def quantize_input_u8(pixels):
    """uint8 intensities [0, 255] -> int8 [0, 127] (Q7, value ~ pixel/255):
    q = (127 * p + 127) // 255 (exact integer, round half up). The input range stays
    non-negative and <= 127 so int8 x int8 products summed over <= 1040 terms are exact in
    float32 and never saturate the 16-bit pair sums of x86 u8s8 instructions."""
    p = np.asarray(pixels)
    if p.dtype != np.uint8:
        raise TypeError(f"quantize_input_u8 expects uint8 pixels, got {p.dtype}")
    return ((p.astype(np.int32) * 127 + 127) // 255).astype(np.int8)
