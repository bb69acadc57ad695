"""The numerics contract: one rounding rule (half up), symmetric saturation, LUTs."""
import numpy as np
import pytest

from edge_evo.fixedpoint import (rshift_round, requantize, quantize, dequantize, quantize_input_u8,
                                 saturate_int8, make_lut, lut_apply, LUT_FUNCTIONS)


def test_rshift_round_ties_half_up():
    # x / 2 with ties: 2.5 -> 3, -2.5 -> -2 (towards +inf), 1.5 -> 2, -1.5 -> -1
    assert list(rshift_round(np.array([5, -5, 3, -3, 1, -1]), 1)) == [3, -2, 2, -1, 1, 0]
    assert list(rshift_round(np.array([7, -7, 6, -6]), 2)) == [2, -2, 2, -1]   # 1.75, -1.75, 1.5, -1.5


@pytest.mark.parametrize("s", [1, 3, 8, 13, 20])
def test_rshift_round_matches_float_half_up(s):
    rs = np.random.default_rng(s)
    acc = rs.integers(-(2 ** 30), 2 ** 30, 10000)
    assert np.array_equal(rshift_round(acc, s), np.floor(acc / 2.0 ** s + 0.5).astype(np.int64))


def test_requantize_saturates_symmetric():
    q = requantize(np.array([10 ** 6, -(10 ** 6), 127 << 4, -(128 << 4)]), 4)
    assert q.dtype == np.int8 and list(q) == [127, -127, 127, -127]
    assert saturate_int8(-128) == -127


def test_shift_range_checked():
    with pytest.raises(ValueError, match="shift"):
        rshift_round(1, 31)


def test_quantize_roundtrip_and_nan():
    x = np.linspace(-1.9, 1.9, 101)
    q = quantize(x, 6)
    assert np.max(np.abs(dequantize(q, 6) - x)) <= 0.5 / 64 + 1e-9
    assert quantize(0.5 / 64, 6) == 1 and quantize(-0.5 / 64, 6) == 0   # half up
    with pytest.raises(ValueError, match="NaN"):
        quantize([0.0, np.nan], 6)


def test_input_quantization_exact():
    p = np.arange(256, dtype=np.uint8)
    q = quantize_input_u8(p)
    assert q.min() == 0 and q.max() == 127 and q.dtype == np.int8
    assert np.array_equal(q, np.floor(p.astype(np.int64) * 127 / 255 + 0.5).astype(np.int8))
    with pytest.raises(TypeError):
        quantize_input_u8(p.astype(np.float32))


@pytest.mark.parametrize("name", sorted(LUT_FUNCTIONS))
def test_luts_match_functions(name):
    lut = make_lut(name, 5, 7)
    assert lut.shape == (256,) and lut.dtype == np.int8
    x = np.arange(-127, 128)
    ref = np.clip(LUT_FUNCTIONS[name](x / 32.0) * 128, -127, 127)
    assert np.max(np.abs(lut_apply(lut, x) - ref)) <= 0.5 + 1e-9


def test_tanh_lut_monotone_and_odd():
    lut = make_lut("tanh", 5, 7)
    v = lut_apply(lut, np.arange(-127, 128)).astype(int)
    assert np.all(np.diff(v) >= 0)
    assert np.array_equal(v[::-1], -v)        # odd symmetry holds for the symmetric range


def test_unknown_lut():
    with pytest.raises(ValueError, match="choose one of"):
        make_lut("gelu", 5, 7)
