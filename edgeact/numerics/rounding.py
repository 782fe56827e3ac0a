"""Named rounding modes: the only place in edgeact that turns a real number into an integer.

Every function works elementwise on numpy arrays and keeps the input's float dtype until the final
cast, so float32 pipelines (LiteRT, XNNPACK) round exactly as their C code does.
"""

from __future__ import annotations

from enum import Enum

import numpy as np


class Rounding(str, Enum):
    """How a real value is rounded to an integer."""

    HALF_AWAY_FROM_ZERO = "half_away_from_zero"  # C's round()/std::round, TfLiteRound
    HALF_TO_EVEN = "half_to_even"  # IEEE default, C's rint()/lrintf() in the default FP mode
    HALF_UP = "half_up"  # floor(x + 1/2), the single-rounding shift of TFLite/CMSIS-NN


def round_half_away_from_zero(x: np.ndarray) -> np.ndarray:
    """Round to nearest, ties away from zero, in the dtype of ``x`` (exact: no ``x + 0.5`` trick)."""
    x = np.asarray(x)
    whole = np.trunc(x)
    frac = x - whole  # exact for every binary float
    return whole + np.where(np.abs(frac) >= 0.5, np.sign(x), 0).astype(x.dtype)


def round_half_to_even(x: np.ndarray) -> np.ndarray:
    """Round to nearest, ties to even (IEEE 754 roundTiesToEven)."""
    return np.rint(np.asarray(x))


def round_half_up(x: np.ndarray) -> np.ndarray:
    """Round to nearest, ties toward +infinity."""
    x = np.asarray(x)
    down = np.floor(x)
    return down + ((x - down) >= 0.5).astype(x.dtype)


_ROUNDERS = {
    Rounding.HALF_AWAY_FROM_ZERO: round_half_away_from_zero,
    Rounding.HALF_TO_EVEN: round_half_to_even,
    Rounding.HALF_UP: round_half_up,
}


def round_to_int(x: np.ndarray, mode: Rounding) -> np.ndarray:
    """Round with the named ``mode`` and return int64 (values must fit; callers clamp after)."""
    return _ROUNDERS[Rounding(mode)](x).astype(np.int64)


def clamp(q: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Saturate codes to ``[lo, hi]`` (int64); a float input saturates +-inf to the ends and takes NaN as 0."""
    q = np.asarray(q)
    if np.issubdtype(q.dtype, np.floating):
        q = np.nan_to_num(np.clip(q, lo, hi), nan=0.0)
    return np.clip(q.astype(np.int64), lo, hi)
