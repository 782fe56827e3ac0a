"""gemmlowp's fixed-point arithmetic (fixedpoint/fixedpoint.h), vectorised in numpy, and the softmax parameters
TFLite derives from it (quantization_util.cc): what TFLite's int8 reference SOFTMAX computes with.

A ``FixedPoint<int32_t, IntegerBits>`` value is held as its raw int32 in an int64 array; its real value is
``raw / 2^(31 - IntegerBits)``. Products are :func:`saturating_rounding_doubling_high_mul` of the raws (reused from
:mod:`edgeact.numerics.requantize`), sums plain int32 additions.
"""

from __future__ import annotations

import math

import numpy as np

from edgeact.errors import QuantizationRangeError
from edgeact.numerics.requantize import INT32_MAX, INT32_MIN, saturating_rounding_doubling_high_mul

# Q0.31 constants of gemmlowp's exp_on_negative_values (exp(-2^k), k = -2..4) and its Taylor step around -1/8
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535), (3, 720401),
               (4, 242))
_EXP_MINUS_ONE_EIGHTH, _ONE_THIRD = 1895147668, 715827883
_48_OVER_17, _MINUS_32_OVER_17 = 1515870810, -1010580540  # Q2.29: Newton-Raphson's first guess of 1/x


def _mul(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """FixedPoint ``a * b``: SaturatingRoundingDoublingHighMul of the raws (element-wise)."""
    return saturating_rounding_doubling_high_mul(a, b)  # type: ignore[arg-type]  # numpy broadcasts an array b


def wrap_int32(x: np.ndarray) -> np.ndarray:
    """Two's-complement int32 wrap-around of int64 values (what a C++ int32 addition does on overflow)."""
    return ((np.asarray(x, dtype=np.int64) - INT32_MIN) & 0xFFFFFFFF) + INT32_MIN


def rounding_divide_by_pots(x: np.ndarray, exponents: np.ndarray | int) -> np.ndarray:
    """gemmlowp's RoundingDivideByPOT with one exponent (0..31) per element: x / 2^e, ties away from zero."""
    x = np.asarray(x, dtype=np.int64)
    exponents = np.asarray(exponents, dtype=np.int64)
    mask = (np.int64(1) << exponents) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponents) + ((x & mask) > threshold)


def saturating_rounding_multiply_by_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp's SaturatingRoundingMultiplyByPOT<exponent>: a saturating left shift, or a rounding right one."""
    x = np.asarray(x, dtype=np.int64)
    if exponent <= 0:
        return rounding_divide_by_pots(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def rescale(x: np.ndarray, src_integer_bits: int, dst_integer_bits: int) -> np.ndarray:
    """gemmlowp's Rescale<dst>: the raw of a FixedPoint<src_integer_bits> value as FixedPoint<dst_integer_bits>."""
    return saturating_rounding_multiply_by_pot(x, src_integer_bits - dst_integer_bits)


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    """exp(a) for Q0.31 raws a in [-1/4, 0): gemmlowp's fourth-order Taylor expansion around -1/8 (Q0.31 out)."""
    x = np.asarray(a, dtype=np.int64) + (1 << 28)  # a + 1/8
    x2 = _mul(x, x)
    x3 = _mul(x2, x)
    x4 = _mul(x2, x2)
    x4_over_4 = rounding_divide_by_pots(x4, 2)
    poly = rounding_divide_by_pots(_mul(x4_over_4 + x3, _ONE_THIRD) + x2, 1)  # x^4/24 + x^3/6 + x^2/2
    return _EXP_MINUS_ONE_EIGHTH + _mul(x + poly, _EXP_MINUS_ONE_EIGHTH)


def exp_on_negative_values(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """gemmlowp's exp_on_negative_values: exp(a) for FixedPoint<int32, integer_bits> raws a <= 0, as Q0.31 raws."""
    a = np.asarray(a, dtype=np.int64)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0))
    remainder = a_mod_quarter_minus_one_quarter - a
    for exponent, multiplier in _EXP_BARREL:  # multiply by exp(-2^k) for each bit k of the remainder
        if integer_bits > exponent:
            bit = (remainder & (1 << (fractional_bits + exponent))) != 0
            result = np.where(bit, _mul(result, multiplier), result)
    if integer_bits > 5:
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)  # below -32: 0
    return np.where(a == 0, INT32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """gemmlowp's 1 / (1 + a) for Q0.31 raws a in [0, 1): three Newton-Raphson steps in Q2.29 (Q0.31 out)."""
    a = np.asarray(a, dtype=np.int64)
    half_denominator = (a + INT32_MAX + 1) // 2  # RoundingHalfSum(a, One): the sum is >= 0 here
    x = _48_OVER_17 + _mul(half_denominator, _MINUS_32_OVER_17)
    one = 1 << 29
    for _ in range(3):
        one_minus_half_denominator_times_x = one - _mul(half_denominator, x)
        x = x + rescale(_mul(x, one_minus_half_denominator_times_x), 4, 2)
    return rescale(x, 1, 0)  # ExactMulByPot<-1> (Q2.29 -> Q1.30, same raw), then Rescale<0>


def count_leading_zeros_uint32(x: np.ndarray) -> np.ndarray:
    """Leading zero bits of int32 values read as uint32 (32 for 0, 0 for negative values)."""
    x = np.asarray(x, dtype=np.int64)
    _, bit_length = np.frexp(np.maximum(x, 0).astype(np.float64))  # exact: x < 2^31
    return np.where(x < 0, 0, 32 - bit_length.astype(np.int64))


def get_reciprocal(x: np.ndarray, x_integer_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLite's GetReciprocal on positive FixedPoint<int32, x_integer_bits> raws: (Q0.31 raw of 1 / (x scaled into
    [1, 2)), num_bits_over_unit), i.e. 1/x = raw * 2^-31 * 2^-num_bits_over_unit."""
    x = np.asarray(x, dtype=np.int64)
    headroom_plus_one = count_leading_zeros_uint32(x)
    shifted_sum_minus_one = ((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), x_integer_bits - headroom_plus_one


def preprocess_softmax_scaling(beta: float, input_scale: float, input_integer_bits: int) -> tuple[int, int]:
    """TFLite's PreprocessSoftmaxScaling (double-rounding build): the Q31 multiplier and left shift that take an
    int8 input difference to a FixedPoint<int32, input_integer_bits> raw."""
    real = min(float(beta) * float(input_scale) * (1 << (31 - input_integer_bits)), float(2**31 - 1))
    fraction, shift = math.frexp(real)  # QuantizeMultiplier, without edgeact's shift <= 30 limit (shift 31 is valid)
    q_fixed = math.floor(fraction * (1 << 31) + 0.5)  # TfLiteRound of a positive value: exact in double
    if q_fixed == 1 << 31:
        q_fixed, shift = q_fixed // 2, shift + 1
    if shift < -31:  # flushed to zero
        return 0, 0
    if shift < 0:  # QuantizeMultiplierGreaterThanOne's TFLITE_CHECK: the runtime aborts
        raise QuantizationRangeError(f"softmax input scale {input_scale!r} * beta {beta!r} is below 2^-27: TFLite's "
                                     "int8 SOFTMAX refuses it (QuantizeMultiplierGreaterThanOne)")
    return q_fixed, shift


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    """TFLite's CalculateInputRadius: the largest input difference whose rescaled value still fits in int32."""
    return (((1 << input_integer_bits) - 1) << (total_signed_bits - input_integer_bits)) >> input_left_shift
