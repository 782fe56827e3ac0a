"""Exact lookup tables for elementwise functions, built under named runtime conventions.

An int8 table has 256 entries indexed by ``code + 128`` (input codes -128..127 in order): exactly
what the portable CAST -> ADD(+128) -> GATHER lowering indexes. Conventions:

``ideal``    float64 evaluation, rounding half away from zero.
``litert``   LiteRT's LUTPopulate: float32 dequantize, the op's own float32 formula, multiply by the
             float32 inverse output scale, std::round (half away), + zero point, clamp.
``xnnpack``  XNNPACK's table: float32 dequantize, its formula (sigmoid in double), the zero point added
             in float32, then round to nearest even.

int16 tables follow TFLite's 513-entry scheme (512 intervals with a midpoint bias correction, read back
by linear interpolation); they exist for ``ideal`` (float64) and ``litert`` (float32) only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from edgeact.activations import Activation
from edgeact.errors import UnsupportedConventionError
from edgeact.numerics.qparams import QParams, qparams_from_range
from edgeact.numerics.rounding import clamp, round_half_away_from_zero, round_half_to_even

INT16_TABLE_STEPS = 512
UNDEFINED = 1e30  # |f| at or above this stands for a non-finite value (see activations.function_activation)


class Convention(str, Enum):
    """Who builds the table, and therefore how it is rounded."""

    IDEAL = "ideal"
    LITERT = "litert"
    XNNPACK = "xnnpack"


INT16_CONVENTIONS = (Convention.IDEAL, Convention.LITERT)


@dataclass(frozen=True)
class Table:
    """A lookup table: ``values[i]`` is the output code for input code ``in_q.qmin + i``."""

    function: str
    convention: Convention
    in_q: QParams
    out_q: QParams
    values: np.ndarray  # int8: 256 output codes; int16: 513 interpolation knots, or all 65,536 codes (exact)

    @property
    def bits(self) -> int:
        return 16 if self.in_q.dtype == "int16" else 8

    @property
    def interpolated(self) -> bool:
        """TFLite's int16 scheme: 513 knots, read by interpolation (else one output code per input code)."""
        return self.values.size == INT16_TABLE_STEPS + 1

    def lookup(self, codes: np.ndarray) -> np.ndarray:
        """Output codes for input codes, as the runtime reads the table."""
        codes = np.asarray(codes, dtype=np.int64)
        if not self.interpolated:
            return self.values[codes - self.in_q.qmin]
        return int16_interpolate(self.values, codes)

    def samples(self) -> np.ndarray:
        """The table as 256 codes (int8) or 513 int16 values: the knots, or an exact table's code at each knot's
        position (every 128th input code, and the last)."""
        if self.bits == 8 or self.interpolated:
            return self.values
        return np.concatenate([self.values[::128], self.values[-1:]])

    def output_codes(self) -> np.ndarray:
        """The output code of every input code of the grid (256 or 65536 values)."""
        return self.lookup(self.in_q.codes)


def exact_table(act: Activation, in_q: QParams, out_q: QParams) -> Table:
    """The exact table: f at every input code in float64, rounded half away from zero onto the output grid (256 codes
    for int8, all 65,536 for int16: no interpolation error, as a GATHER reads it)."""
    if in_q.dtype != out_q.dtype:
        raise UnsupportedConventionError(f"tables map one integer type to itself, not {in_q.dtype} -> {out_q.dtype}")
    return Table(act.name, Convention.IDEAL, in_q, out_q, _int8_ideal(act, in_q, out_q).astype(np.int64))


def _int8_ideal(act: Activation, in_q: QParams, out_q: QParams) -> np.ndarray:
    x = in_q.scale * (in_q.codes - in_q.zero_point).astype(np.float64)
    scaled = act(x) / out_q.scale
    return clamp(round_half_away_from_zero(np.clip(scaled, -1e9, 1e9)) + out_q.zero_point, out_q.qmin, out_q.qmax)


def _int8_litert(act: Activation, in_q: QParams, out_q: QParams) -> np.ndarray:
    f32 = np.float32
    inverse_scale = f32(1.0) / f32(out_q.scale)
    x = f32(in_q.scale) * (in_q.codes - in_q.zero_point).astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        rescaled = round_half_away_from_zero(act.float32(x) * inverse_scale)
        shifted = rescaled + f32(out_q.zero_point)
    shifted = np.nan_to_num(shifted, nan=out_q.qmin, posinf=out_q.qmax, neginf=out_q.qmin)
    return clamp(np.clip(shifted, -2.0**31, 2.0**31 - 1), out_q.qmin, out_q.qmax)


def _int8_xnnpack(act: Activation, in_q: QParams, out_q: QParams) -> np.ndarray:
    f32 = np.float32
    inverse_scale = f32(1.0) / f32(out_q.scale)
    x = (in_q.codes.astype(np.float32) - f32(in_q.zero_point)) * f32(in_q.scale)
    with np.errstate(over="ignore", invalid="ignore"):
        shifted = np.asarray(act.xnnpack(x), dtype=f32) * inverse_scale + f32(out_q.zero_point)
    rounded = round_half_to_even(np.clip(np.nan_to_num(shifted, nan=0.0), -2.0**31, 2.0**31 - 1))
    return clamp(rounded, out_q.qmin, out_q.qmax)


def _int16_knots(act: Activation, in_q: QParams, out_q: QParams, real: type) -> np.ndarray:
    """TFLite's LUTPopulateInt16 in ``real`` precision (float32 for LiteRT, float64 for ideal)."""
    evaluate = act.float32 if real is np.float32 else act
    return lut_populate_int16(evaluate, in_q.scale, in_q.zero_point, out_q.scale, out_q.zero_point, real)


def lut_populate_int16(evaluate: Callable[[np.ndarray], np.ndarray], in_scale: float, in_zero_point: int,
                       out_scale: float, out_zero_point: int, real: type) -> np.ndarray:
    """TFLite's LUTPopulateInt16<real>: the 513 interpolation knots of ``evaluate`` from an int16 grid to an int16
    grid, each step's knot biased by half its midpoint error (``real``: np.float32 or np.float64, the C++
    FloatT)."""
    lo, hi = real(in_scale) * real(-32768 - in_zero_point), real(in_scale) * real(32767 - in_zero_point)
    out_lo = real(out_scale) * real(-32768 - out_zero_point)
    out_hi = real(out_scale) * real(32767 - out_zero_point)
    step = (hi - lo) / real(INT16_TABLE_STEPS)
    half_step = step / real(2)
    inv = real(65536) / (out_hi - out_lo)
    i = np.arange(INT16_TABLE_STEPS).astype(real)
    value = np.asarray(evaluate(lo + i * step), dtype=real)
    midpoint = np.asarray(evaluate(lo + i * step + half_step), dtype=real)
    following = np.asarray(evaluate(lo + (i + real(1)) * step), dtype=real)
    rnd = round_half_away_from_zero
    sample = rnd(value * inv)
    interpolated = rnd((following * inv + rnd(value * inv)) / real(2))
    bias = rnd((interpolated - rnd(midpoint * inv)) / real(2))
    last = rnd(np.asarray(evaluate(np.asarray([hi], dtype=real)), dtype=real) * inv)
    knots = np.concatenate([sample - bias, last])
    return np.clip(knots, -32768, 32767).astype(np.int64)


def int16_interpolate(knots: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """TFLite's int16 LUTLookup: base knot plus the slope times the low 7 bits, rounded (+64 >> 7)."""
    codes = np.asarray(codes, dtype=np.int64)
    index = 256 + (codes >> 7)
    offset = codes & 0x7F
    base = knots[index]
    slope = knots[index + 1] - base
    return np.clip(base + ((slope * offset + 64) >> 7), -32768, 32767)


_INT8_BUILDERS = {
    Convention.IDEAL: _int8_ideal,
    Convention.LITERT: _int8_litert,
    Convention.XNNPACK: _int8_xnnpack,
}


def lut_for(
    act: Activation, in_q: QParams, out_q: QParams, convention: Convention | str = Convention.IDEAL
) -> Table:
    """The table of ``act`` from grid ``in_q`` to grid ``out_q`` under ``convention``.

    int8 -> int8 gives 256 entries; int16 -> int16 gives TFLite's 513 interpolation knots.
    """
    convention = Convention(convention)
    if in_q.dtype != out_q.dtype or in_q.dtype not in ("int8", "int16"):
        raise UnsupportedConventionError(
            f"tables map int8 -> int8 or int16 -> int16, not {in_q.dtype} -> {out_q.dtype}"
        )
    if in_q.dtype == "int8":
        values = _INT8_BUILDERS[convention](act, in_q, out_q)
    else:
        if convention not in INT16_CONVENTIONS:
            raise UnsupportedConventionError(
                f"convention {convention.value!r} has no int16 table; int16 tables exist for "
                f"{', '.join(c.value for c in INT16_CONVENTIONS)}"
            )
        if in_q.zero_point or out_q.zero_point:
            raise UnsupportedConventionError(
                "int16 tables are symmetric (TFLite's 16x8 scheme): both zero points must be 0, got "
                f"{in_q.zero_point} and {out_q.zero_point}"
            )
        real = np.float32 if convention is Convention.LITERT else np.float64
        values = _int16_knots(act, in_q, out_q, real)
    return Table(act.name, convention, in_q, out_q, values.astype(np.int64))


def covering_output_grid(act: Activation, in_q: QParams, within: tuple[float, float] | None = None,
                         tensor: str | None = None) -> QParams:
    """The output grid that covers f over every value of the input grid (``--out-scale auto``), or only over the
    codes that hold ``within`` (the calibrated input range: a grid always reaches 0, a range need not, and a
    sigmoid fed only by [-12, -5] needs [0, 0.0067], not [0, 0.5]).

    Asymmetric for int8; symmetric for int16, whose tables require zero point 0.
    """
    codes = in_q.codes
    if within is not None:
        from edgeact.numerics.qparams import quantize

        first, last = (int(c) for c in quantize(np.asarray(within, dtype=np.float64), in_q))
        codes = codes[(codes >= first) & (codes <= last)]
    x = in_q.scale * (codes - in_q.zero_point).astype(np.float64)
    y = act(x)
    y = y[np.abs(y) < UNDEFINED]  # codes where f has no finite value (log(0)) saturate, they do not size the grid
    y = y if y.size else np.zeros(1)
    return qparams_from_range(
        float(y.min()), float(y.max()), in_q.dtype, symmetric=in_q.dtype == "int16",
        tensor=tensor or f"{act.name} output",
    )
