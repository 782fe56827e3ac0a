"""Affine quantization parameters: choosing them from a float range, quantize and dequantize."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgeact.errors import QuantizationRangeError, UsageError
from edgeact.numerics.rounding import Rounding, clamp, round_to_int

INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "int8": (-128, 127),
    "uint8": (0, 255),
    "int16": (-32768, 32767),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
}


def integer_range(dtype: str) -> tuple[int, int]:
    """(qmin, qmax) of an integer dtype name."""
    try:
        return INTEGER_RANGES[dtype]
    except KeyError:
        raise UsageError(f"unknown integer dtype {dtype!r}; known: {', '.join(INTEGER_RANGES)}") from None


@dataclass(frozen=True)
class QParams:
    """Per-tensor affine grid: real = scale * (q - zero_point), q in [qmin, qmax] of ``dtype``.

    The scale is held as the float32 value every runtime stores (TFLite and ONNX both keep float32
    scales), so tables computed here use exactly the scale a model file carries.
    """

    scale: float
    zero_point: int
    dtype: str = "int8"

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", float(np.float32(self.scale)))
        object.__setattr__(self, "zero_point", int(self.zero_point))
        qmin, qmax = integer_range(self.dtype)
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise UsageError(f"scale must be finite and > 0, got {self.scale!r}")
        if not qmin <= self.zero_point <= qmax:
            raise UsageError(
                f"zero point {self.zero_point} is outside [{qmin}, {qmax}] of {self.dtype}"
            )

    @property
    def qmin(self) -> int:
        return integer_range(self.dtype)[0]

    @property
    def qmax(self) -> int:
        return integer_range(self.dtype)[1]

    @property
    def codes(self) -> np.ndarray:
        """Every code of the grid, ascending (int64)."""
        return np.arange(self.qmin, self.qmax + 1, dtype=np.int64)

    @property
    def real_range(self) -> tuple[float, float]:
        """The float interval the grid covers, [scale*(qmin-zp), scale*(qmax-zp)]."""
        return (self.scale * (self.qmin - self.zero_point), self.scale * (self.qmax - self.zero_point))


@dataclass(frozen=True)
class PerChannelQParams:
    """Symmetric per-channel grid (weights): zero point 0, one scale per slice along ``axis``."""

    scales: tuple[float, ...]
    axis: int
    dtype: str = "int8"

    def __post_init__(self) -> None:
        object.__setattr__(self, "scales", tuple(float(np.float32(s)) for s in self.scales))

    @property
    def zero_points(self) -> tuple[int, ...]:
        return (0,) * len(self.scales)


MIN_RANGE_WIDTH = 2.0**-40  # narrower ranges (constant or tiny tensors) are widened to this: scales stay normal


def _checked_range(lo: float, hi: float, tensor: str) -> tuple[float, float]:
    """``[lo, hi]`` widened to contain 0 and to at least MIN_RANGE_WIDTH (away from 0)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise QuantizationRangeError(f"tensor {tensor!r}: range [{lo}, {hi}] is not finite")
    if lo > hi:
        raise QuantizationRangeError(f"tensor {tensor!r}: range minimum {lo} exceeds maximum {hi}")
    lo, hi = min(lo, 0.0), max(hi, 0.0)  # the grid always represents 0 exactly
    if hi - lo < MIN_RANGE_WIDTH:
        if hi >= -lo:
            hi = lo + MIN_RANGE_WIDTH
        else:
            lo = hi - MIN_RANGE_WIDTH
    return lo, hi


def qparams_from_range(
    lo: float,
    hi: float,
    dtype: str = "int8",
    *,
    symmetric: bool = False,
    tensor: str = "<tensor>",
) -> QParams:
    """Grid covering ``[lo, hi]`` (widened to contain 0).

    Asymmetric: scale = (hi - lo) / (qmax - qmin), zero point rounded half away from zero.
    Symmetric: zero point 0 (128 for uint8) and scale = max(|lo|, |hi|) / qmax over the narrow range
    [-qmax, qmax], as weights use. A range narrower than MIN_RANGE_WIDTH (a constant or tiny tensor) is
    widened; a non-finite or inverted range raises :class:`QuantizationRangeError` naming ``tensor``.
    """
    lo, hi = _checked_range(float(lo), float(hi), tensor)
    qmin, qmax = integer_range(dtype)
    if symmetric:
        half_levels = (qmax - qmin) // 2  # 127 for int8/uint8, 32767 for int16
        zero_point = 0 if qmin < 0 else (qmax + 1) // 2
        return QParams(max(-lo, hi) / half_levels, zero_point, dtype)
    scale = (hi - lo) / (qmax - qmin)
    zero_point = int(clamp(round_to_int(np.float64(qmin - lo / scale), Rounding.HALF_AWAY_FROM_ZERO), qmin, qmax))
    return QParams(scale, zero_point, dtype)


UNSIGNED_OFFSET = 128  # int8 code q is uint8 code q + 128 on the same grid


def as_codes(grid: QParams, codes: str) -> QParams:
    """``grid`` with its codes held as ``codes`` (``int8`` | ``uint8``): an int8 grid as uint8 is the same grid with
    zero point + 128, every real value on the same code + 128 (clamping and rounding unchanged). Other grids (int16)
    keep their type."""
    if codes == grid.dtype or grid.dtype != "int8":
        return grid
    if codes != "uint8":
        raise UsageError(f"activation codes must be int8 or uint8, got {codes!r}")
    return QParams(grid.scale, grid.zero_point + UNSIGNED_OFFSET, "uint8")


def quantize(
    x: np.ndarray, qp: QParams, rounding: Rounding = Rounding.HALF_AWAY_FROM_ZERO
) -> np.ndarray:
    """Real values to codes of ``qp`` (float64 arithmetic, named rounding, saturating). int64."""
    scaled = np.asarray(x, dtype=np.float64) / qp.scale
    scaled = np.clip(scaled, qp.qmin - qp.zero_point - 1, qp.qmax - qp.zero_point + 1)  # no overflow
    return clamp(round_to_int(scaled, rounding) + qp.zero_point, qp.qmin, qp.qmax)


def dequantize(q: np.ndarray, qp: QParams) -> np.ndarray:
    """Codes of ``qp`` to real values (float64)."""
    return qp.scale * (np.asarray(q, dtype=np.float64) - qp.zero_point)


def dequantize_codes(codes: np.ndarray, grid: QParams | PerChannelQParams) -> np.ndarray:
    """Codes of a per-tensor or per-channel grid to real values, in float32 as ONNX's DequantizeLinear computes
    them: (code - zero point) * float32 scale."""
    codes = np.asarray(codes)
    if isinstance(grid, PerChannelQParams):
        shape = [1] * codes.ndim
        shape[grid.axis] = len(grid.scales)
        scales = np.asarray(grid.scales, dtype=np.float32).reshape(shape)
        return (codes.astype(np.float32) * scales).astype(np.float32)
    centred = (codes.astype(np.int64) - grid.zero_point).astype(np.float32)
    return (centred * np.float32(grid.scale)).astype(np.float32)


def per_channel_symmetric(weights: np.ndarray, axis: int, dtype: str = "int8") -> PerChannelQParams:
    """Symmetric per-channel grid for weights, one scale per slice of ``axis``."""
    moved = np.moveaxis(np.asarray(weights, dtype=np.float64), axis, 0).reshape(weights.shape[axis], -1)
    qmax = integer_range(dtype)[1]
    peaks = np.abs(moved).max(axis=1)
    peaks = np.where(peaks > 0, peaks, 1.0)  # an all-zero channel keeps scale 1/qmax
    return PerChannelQParams(tuple(float(p / qmax) for p in peaks), axis, dtype)


def quantize_per_channel(
    x: np.ndarray, qp: PerChannelQParams, rounding: Rounding = Rounding.HALF_TO_EVEN
) -> np.ndarray:
    """Values to codes with one scale per slice of ``qp.axis`` (zero point 0, saturating). int64."""
    x = np.asarray(x, dtype=np.float64)
    shape = [1] * x.ndim
    shape[qp.axis] = len(qp.scales)
    scales = np.asarray(qp.scales, dtype=np.float32).astype(np.float64).reshape(shape)
    qmin, qmax = integer_range(qp.dtype)
    return clamp(round_to_int(np.clip(x / scales, qmin - 1, qmax + 1), rounding), qmin, qmax)


def bias_grid(input_scale: float, weight: PerChannelQParams | QParams) -> PerChannelQParams:
    """int32 bias grid: scale s_in * s_w per output channel, zero point 0."""
    scales = weight.scales if isinstance(weight, PerChannelQParams) else (weight.scale,)
    return PerChannelQParams(tuple(float(input_scale) * float(s) for s in scales), 0, "int32")
