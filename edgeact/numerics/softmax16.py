"""TFLite's int16 SOFTMAX (reference_ops::SoftmaxInt16, which LiteRT's default and reference kernels and TFLite Micro
all run): exp of the scaled row differences from a 513-knot table over [-10, 0], a Q16.15 sum, its reciprocal from a
513-knot table of 1/(1 + x), and one rounding shift per output. Output grid (1/32768, 0).

The two tables are built by LUTPopulateInt16 in double on LiteRT and in float32 on TFLite Micro (``real``); their
functions are the C library's (exp, expf), as the runtimes call them.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from edgeact.numerics.libm import expf, float64_function
from edgeact.numerics.requantize import multiply_by_quantized_multiplier, quantize_multiplier
from edgeact.numerics.tables import int16_interpolate, lut_populate_int16

OUTPUT_SCALE = 1.0 / 32768.0  # the only output grid the kernels take (zero point 0)
_RANGE = 65535  # int16 max - min
_exp = float64_function("exp", np.exp)


@lru_cache(maxsize=2)
def softmax_int16_tables(real: type) -> tuple[np.ndarray, np.ndarray]:
    """(exp table over [-10, 0], 1/(1 + x) table over [0, 1]), both onto [-1, 1], as the runtime builds them."""
    if real is np.float64:
        exp, reciprocal = _exp, lambda x: 1.0 / (1.0 + np.asarray(x, dtype=np.float64))
    else:
        exp = expf
        reciprocal = lambda x: np.float32(1.0) / (np.float32(1.0) + np.asarray(x, dtype=np.float32))  # noqa: E731
    out_scale = real(2.0) / real(_RANGE)
    exp_table = lut_populate_int16(exp, real(10.0) / real(_RANGE), 32767, out_scale, 0, real)
    reciprocal_table = lut_populate_int16(reciprocal, real(1.0) / real(_RANGE), -32768, out_scale, 0, real)
    return exp_table, reciprocal_table


def softmax_int16(codes: np.ndarray, input_scale: float, beta: float, real: type) -> np.ndarray:
    """int16 output codes of SOFTMAX over the last axis of int16 ``codes`` (input zero point 0)."""
    exp_table, reciprocal_table = softmax_int16_tables(real)
    if real is np.float64:  # LiteRT: the float32 product scale * beta, then double
        scaled = float(np.float32(input_scale) * np.float32(beta))
    else:  # TFLite Micro: double * double (the same for beta = 1)
        scaled = float(np.float32(input_scale)) * float(np.float32(beta))
    multiplier, shift = quantize_multiplier(scaled / (10.0 / 65535.0))
    x = np.asarray(codes, dtype=np.int64)
    diff = x - x.max(axis=-1, keepdims=True)
    scaled_diff = multiply_by_quantized_multiplier(diff, multiplier, shift)
    exps = int16_interpolate(exp_table, np.clip(scaled_diff + 32767, -32768, 32767))
    total = exps.sum(axis=-1, keepdims=True)  # int32: at most depth * 32767
    bits = np.vectorize(lambda v: int(v).bit_length(), otypes=[np.int64])(total)
    headroom_plus_one = 32 - bits  # CountLeadingZeros of the uint32 sum
    shifted = ((total << (headroom_plus_one - 1)) + (1 << 13)) >> 14
    reciprocal = int16_interpolate(reciprocal_table, np.clip(shifted - ((1 << 15) + (1 << 16)), -32768, 32767))
    right_shift = 31 - headroom_plus_one
    result = (exps * reciprocal + (np.int64(1) << (right_shift - 1))) >> right_shift
    return np.clip(result, 0, 32767).astype(np.int16)
