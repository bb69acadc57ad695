"""Fixed-point numerics contract (docs/numerics.md): int8 values, int32 accumulators,
power-of-two requantization with round-half-up, saturation, 256-entry int8 LUTs."""
from .ops import (INT8_MAX, INT8_MIN, QMAX, saturate_int8, rshift_round, requantize,
                  quantize, dequantize, quantize_input_u8)
from .lut import LUT_FUNCTIONS, make_lut, lut_apply

__all__ = ["INT8_MAX", "INT8_MIN", "QMAX", "saturate_int8", "rshift_round", "requantize",
           "quantize", "dequantize", "quantize_input_u8", "LUT_FUNCTIONS", "make_lut", "lut_apply"]
