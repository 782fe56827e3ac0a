"""How good a table is, next to how good int8 can be (the error floor of DESIGN.md).

For y = f(x) with input scale s_in and output scale s_out, an exact table errs by at most s_out/2 per
code; end to end |e| <= s_out/2 + max|f'| * s_in/2, plus clamp error where f leaves the output range;
for inputs spread uniformly over the grid the RMS floor is sqrt((s_out^2 + E[f'^2] s_in^2) / 12).
An int16 table is read by linear interpolation between 513 knots spaced h = 65535 s_in / 512 apart, so
its per-code bound adds the knot rounding, the knots' drift against the 128-code boundaries (up to one
input step) and the largest distance between f and its chord on a knot interval (~ max|f''| h^2 / 8).
Tables built in float32 (the litert and xnnpack conventions) may round a near-tie the other way: their
bounds add a few float32 ulps of f(x) and of x times max|f'|.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from edgeact.activations import Activation
from edgeact.numerics.qparams import dequantize, quantize
from edgeact.numerics.tables import Convention, Table

DENSE_SAMPLES_PER_CODE = 16
FLOAT32_ULPS = 4 * 2.0**-24  # float32 conventions: a few roundings of f(x), x and y / s_out


@dataclass(frozen=True)
class TableError:
    """Measured error of a table next to its floor (all in output units)."""

    per_code_max_error: float  # max over input codes of |deq(table[q]) - f(deq(q))|
    per_code_rms_error: float
    per_code_bound: float  # s_out/2 + clamp error at the codes
    max_abs_error: float  # end to end: x -> quantize -> table -> dequantize, vs f(x), x dense in range
    rms_error: float
    bound: float  # s_out/2 + max|f'| s_in/2 + clamp error
    rms_floor: float  # sqrt((s_out^2 + E[f'^2] s_in^2)/12)
    clamp_error: float  # how far f leaves the output grid's range over the input range
    interpolation_bound: float  # int16 only: knot rounding + drift + max|f''| h^2/8; 0 for int8
    evaluation_bound: float  # float32 conventions: a few ulps of f and of x times max|f'|; 0 for ideal
    max_slope: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _outside(values: np.ndarray, lo: float, hi: float) -> float:
    return float(np.max(np.maximum(values - hi, lo - values), initial=0.0))


def _interpolation_bound(act: Activation, max_slope: float, table: Table) -> float:
    """Worst error an int16 interpolated table adds on top of output rounding.

    Knot and bias rounding (one output step), the knots' drift against the 128-code boundaries
    (max|f'| times one input step) and the largest distance between f and its chord on any knot interval.
    """
    lo, hi = table.in_q.real_range
    intervals = len(table.values) - 1
    t = np.linspace(0.0, 1.0, DENSE_SAMPLES_PER_CODE + 1)
    starts = lo + (hi - lo) * np.arange(intervals)[:, None] / intervals
    width = (hi - lo) / intervals
    f_inside = act(starts + width * t)
    chord = f_inside[:, :1] + (f_inside[:, -1:] - f_inside[:, :1]) * t
    chord_error = float(np.max(np.abs(f_inside - chord)))
    return table.out_q.scale + max_slope * table.in_q.scale + chord_error


def table_error(act: Activation, table: Table, within: tuple[float, float] | None = None) -> TableError:
    """Measure ``table`` against the float64 reference and compute its floor, over the whole input grid or only
    ``within`` the input range the activation reads (a grid shared with wider values reaches further)."""
    in_q, out_q = table.in_q, table.out_q
    out_lo, out_hi = out_q.real_range
    codes = in_q.codes
    lo, hi = in_q.real_range
    if within is not None:
        first, last = (int(c) for c in quantize(np.asarray(within, dtype=np.float64), in_q))
        codes = codes[(codes >= first) & (codes <= last)]
        lo, hi = max(lo, within[0]), min(hi, within[1])
    x_codes = dequantize(codes, in_q)
    f_codes = act(x_codes)
    code_err = np.abs(dequantize(table.lookup(codes), out_q) - f_codes)

    x = np.linspace(lo, hi, (codes.size - 1) * DENSE_SAMPLES_PER_CODE + 1)
    f_x = act(x)
    dense_err = np.abs(dequantize(table.lookup(quantize(x, in_q)), out_q) - f_x)
    slopes = np.abs(act.slope(x))
    clamp_error = _outside(f_x, out_lo, out_hi)
    max_slope = float(slopes.max())
    interpolation = _interpolation_bound(act, max_slope, table) if table.interpolated else 0.0
    evaluation = 0.0
    if table.convention is not Convention.IDEAL:  # f, x and the scaling are rounded to float32
        evaluation = FLOAT32_ULPS * float(np.max(np.abs(f_x)) + max_slope * max(abs(lo), abs(hi)))
    extra = interpolation + evaluation
    return TableError(
        per_code_max_error=float(code_err.max()),
        per_code_rms_error=float(np.sqrt(np.mean(code_err**2))),
        per_code_bound=out_q.scale / 2 + extra + _outside(f_codes, out_lo, out_hi),
        max_abs_error=float(dense_err.max()),
        rms_error=float(np.sqrt(np.mean(dense_err**2))),
        bound=out_q.scale / 2 + extra + max_slope * in_q.scale / 2 + clamp_error,
        rms_floor=math.sqrt((out_q.scale**2 + float(np.mean(slopes**2)) * in_q.scale**2) / 12.0),
        clamp_error=clamp_error,
        interpolation_bound=interpolation,
        evaluation_bound=evaluation,
        max_slope=max_slope,
    )
