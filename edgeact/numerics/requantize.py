"""Requantization of int32 accumulators by a real multiplier, one function per named rounding mode.

``exact``          round half away from zero of acc * m, computed without float error (Dekker product).
``tflite_double``  TFLite/TFLM/CMSIS-NN default: SaturatingRoundingDoublingHighMul then
                   RoundingDivideByPOT on the Q31 multiplier (two roundings, off by up to 1 LSB).
``single``         TFLite's single-rounding build: (acc * M + 2^(s-1)) >> s on the Q31 multiplier.
``float32_rne``    XNNPACK: float32(acc) * float32(m), rounded to nearest even.
"""

from __future__ import annotations

import math
from enum import Enum

import numpy as np

from edgeact.errors import UsageError
from edgeact.numerics.rounding import round_half_away_from_zero, round_half_to_even

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


class RequantRounding(str, Enum):
    """Named requantization rounding modes (see module docstring)."""

    EXACT = "exact"
    TFLITE_DOUBLE = "tflite_double"
    SINGLE = "single"
    FLOAT32_RNE = "float32_rne"


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: m = M * 2^(shift - 31) with M a Q31 integer in [2^30, 2^31)."""
    if not (math.isfinite(real_multiplier) and real_multiplier >= 0):
        raise UsageError(f"requantization multiplier must be finite and >= 0, got {real_multiplier!r}")
    if real_multiplier == 0.0:
        return 0, 0
    fraction, shift = math.frexp(real_multiplier)
    q_fixed = int(round_half_away_from_zero(np.float64(fraction * (1 << 31))))
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        raise UsageError(f"requantization multiplier {real_multiplier!r} is too large (>= 2^30)")
    return q_fixed, shift


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: int) -> np.ndarray:
    """gemmlowp's SaturatingRoundingDoublingHighMul on int32 values (vectorised in int64)."""
    a = np.asarray(a, dtype=np.int64)
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    ab = a * np.int64(b)  # |a*b| < 2^62: fits int64
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    total = ab + nudge
    high = np.where(total >= 0, total >> 31, -((-total) >> 31))  # C++ '/' truncates toward zero
    return np.where(overflow, INT32_MAX, high)


def rounding_doubling_high_mul(a: np.ndarray, b: int) -> np.ndarray:
    """NEON's vqrdmulh on int32 lanes: (2ab + 2^31) >> 32, rounding half up once, saturated (int64 arithmetic)."""
    a = np.asarray(a, dtype=np.int64)
    return np.clip((a * np.int64(b) + (1 << 30)) >> 31, INT32_MIN, INT32_MAX)


def rounding_divide_by_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp's RoundingDivideByPOT: x / 2^exponent rounded half away from zero."""
    x = np.asarray(x, dtype=np.int64)
    if exponent == 0:
        return x
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def _two_product(a: np.ndarray, b: float) -> tuple[np.ndarray, np.ndarray]:
    """Dekker/Veltkamp: a * b == p + e exactly, with p the rounded float64 product."""
    split = 134217729.0  # 2^27 + 1

    def halves(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = split * v
        hi = c - (c - v)
        return hi, v - hi

    p = a * b
    a_hi, a_lo = halves(a)
    b_hi, b_lo = halves(np.float64(b))
    e = ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    return p, e


def _requantize_exact(acc: np.ndarray, multiplier: float) -> np.ndarray:
    p, e = _two_product(acc.astype(np.float64), float(multiplier))
    nearest = round_half_away_from_zero(p)
    frac = p - np.trunc(p)
    # p is within half an ulp of the true product: correct the two ways its rounding can mislead.
    away = np.sign(p)
    tie_side = np.abs(frac) - 0.5  # exact (Sterbenz) where it matters
    signed_e = e * away
    below_half = (tie_side >= 0) & (tie_side < -signed_e)  # p says >= .5, truth says < .5
    above_half = (tie_side < 0) & (tie_side >= -signed_e) & (np.abs(frac) > 0.25)
    return (nearest - away * below_half + away * above_half).astype(np.int64)


def multiply_by_quantized_multiplier(
    x: np.ndarray, q_multiplier: int, shift: int, mode: RequantRounding | str = RequantRounding.TFLITE_DOUBLE
) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier: x * q_multiplier * 2^(shift - 31), double or single rounding."""
    x = np.asarray(x, dtype=np.int64)
    if RequantRounding(mode) is RequantRounding.SINGLE:
        total_shift = 31 - shift
        return (x * np.int64(q_multiplier) + (np.int64(1) << (total_shift - 1))) >> total_shift  # < 2^63: exact
    left, right = max(shift, 0), max(-shift, 0)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x * (1 << left), q_multiplier), right)


def multiply_by_quantized_multiplier_int64(x: np.ndarray, q_multiplier: int, shift: int) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier for int64 accumulators (the 16x8 convolutions): the Q31 multiplier
    rounded to 15 bits ((M + 2^15) >> 16, at most 0x7FFF), one round-half-up shift by 15 - shift, the result
    wrapped to int32 as the kernel's cast does."""
    x = np.asarray(x, dtype=np.int64)
    reduced = (q_multiplier + (1 << 15)) >> 16 if q_multiplier < 0x7FFF0000 else 0x7FFF
    total_shift = 15 - shift
    result = (x * np.int64(reduced) + (np.int64(1) << (total_shift - 1))) >> total_shift
    return ((result - INT32_MIN) & 0xFFFFFFFF) + INT32_MIN


def requantize_float64(acc: np.ndarray, multiplier: float) -> np.ndarray:
    """``round(double(acc) * multiplier)``, half away from zero: TFLite's 16x8 FULLY_CONNECTED, which requantizes
    in double from the float32 scales (int64, unclamped)."""
    return round_half_away_from_zero(np.asarray(acc, dtype=np.int64).astype(np.float64) * float(multiplier)).astype(
        np.int64)


def requantize_int64(acc: np.ndarray, multiplier: float) -> np.ndarray:
    """int64 accumulators scaled by ``multiplier`` the way TFLite's 16x8 convolutions do (int64, unclamped)."""
    return multiply_by_quantized_multiplier_int64(acc, *quantize_multiplier(multiplier))


def _requantize_tflite_double(acc: np.ndarray, multiplier: float) -> np.ndarray:
    return multiply_by_quantized_multiplier(acc, *quantize_multiplier(multiplier), RequantRounding.TFLITE_DOUBLE)


def _requantize_single(acc: np.ndarray, multiplier: float) -> np.ndarray:
    return multiply_by_quantized_multiplier(acc, *quantize_multiplier(multiplier), RequantRounding.SINGLE)


def _requantize_float32_rne(acc: np.ndarray, multiplier: float) -> np.ndarray:
    scaled = acc.astype(np.float32) * np.float32(multiplier)
    return round_half_to_even(scaled).astype(np.int64)


_REQUANTIZERS = {
    RequantRounding.EXACT: _requantize_exact,
    RequantRounding.TFLITE_DOUBLE: _requantize_tflite_double,
    RequantRounding.SINGLE: _requantize_single,
    RequantRounding.FLOAT32_RNE: _requantize_float32_rne,
}


def requantize(acc: np.ndarray, multiplier: float, mode: RequantRounding | str) -> np.ndarray:
    """Scale int32 accumulators by ``multiplier`` with the named rounding ``mode`` (int64, unclamped)."""
    acc = np.asarray(acc, dtype=np.int64)
    if acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
        raise UsageError("requantize: accumulators must be int32 values")
    return _REQUANTIZERS[RequantRounding(mode)](acc, multiplier)


def requantize_to_grid(
    acc: np.ndarray, multiplier: float, zero_point: int, qmin: int, qmax: int, mode: RequantRounding | str
) -> np.ndarray:
    """Requantize, add the output zero point and saturate to ``[qmin, qmax]``."""
    return np.clip(requantize(acc, multiplier, mode) + zero_point, qmin, qmax)
