"""Range choice: from a tensor's streaming stats to the real range its int8 grid covers.

METHODS is the registry (`--method`); ``auto`` picks, for a tensor that feeds an activation, the input range
that minimises the error *after* the activation (table included) and min/max for every other tensor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgeact.activations import Activation
from edgeact.calibration.observers import TensorStats
from edgeact.numerics.qparams import QParams, dequantize, qparams_from_range, quantize
from edgeact.numerics.tables import covering_output_grid, lut_for

PERCENTILE = 99.99
CLIP_STEPS = 32  # candidate clip points per side for mse / activation-aware search


@dataclass(frozen=True)
class ChosenRange:
    lo: float
    hi: float
    method: str
    why: str


def minmax(stats: TensorStats) -> ChosenRange:
    if stats.min == stats.max == 0.0:
        return ChosenRange(0.0, 1.0, "minmax", "every observed value is 0; any grid holds it")
    return ChosenRange(stats.min, stats.max, "minmax", "observed min and max")


def percentile(stats: TensorStats, level: float = PERCENTILE) -> ChosenRange:
    """Percentiles on each side that extends away from 0 (a side on the near side of 0 is not clipped)."""
    lo = stats.min if stats.min >= 0 else stats.quantile(1 - level / 100)
    hi = stats.max if stats.max <= 0 else stats.quantile(level / 100)
    return ChosenRange(lo, hi, "percentile", f"{level}th percentiles")


def _candidates(stats: TensorStats) -> tuple[np.ndarray, np.ndarray]:
    """Clip points from 1/8 of the way out to the ends of the grid's span [min(min, 0), max(max, 0)] (every grid
    holds 0, so a range that excludes 0 is clipped only on its far side; the near end stays at 0), and 0 itself:
    a side where the function after the grid is constant (log(clip(x, eps)) for x <= 0) is best cut at 0."""
    fractions = np.concatenate([[0.0], np.linspace(1 / 8, 1.0, CLIP_STEPS)])
    lows = stats.min * fractions if stats.min < 0 else np.array([0.0])
    highs = stats.max * fractions if stats.max > 0 else np.array([0.0])
    return lows, highs


def _grid_error(points: np.ndarray, weights: np.ndarray, grid: QParams) -> float:
    restored = dequantize(quantize(points, grid), grid)
    return float(np.sum(weights * (points - restored) ** 2))


def _best_clip(stats: TensorStats, error: Callable[[float, float], float],
               extra: tuple[float, ...] = ()) -> tuple[float, float]:
    """Coordinate descent over the clip candidates (and ``extra`` clip points inside the span): the best high end
    for the current low end, then the best low end for that high end, until neither moves (a few dozen
    evaluations instead of every pair)."""
    lows, highs = _candidates(stats)
    lows = np.unique(np.concatenate([[x for x in extra if stats.min < x < 0], lows]))[::-1]
    highs = np.unique(np.concatenate([[x for x in extra if 0 < x < stats.max], highs]))
    lo, hi = float(lows[-1]), float(highs[-1])  # start from min/max
    for _ in range(4):
        new_hi = min(highs, key=lambda h: error(lo, float(h)))
        new_lo = min(lows, key=lambda low: error(float(low), float(new_hi)))
        if (float(new_lo), float(new_hi)) == (lo, hi):
            break
        lo, hi = float(new_lo), float(new_hi)
    return lo, hi


def mse(stats: TensorStats, dtype: str = "int8") -> ChosenRange:
    points, weights = stats.centres(), stats.counts.astype(np.float64)
    lo, hi = _best_clip(stats, lambda lo, hi: _grid_error(points, weights, qparams_from_range(lo, hi, dtype)))
    return ChosenRange(lo, hi, "mse", "clip range minimising mean squared quantization error")


def entropy(stats: TensorStats, target_bins: int = 128) -> ChosenRange:
    """TensorRT-style KL threshold on |x| (symmetric threshold, cut to the observed side(s))."""
    centres, counts = stats.centres(), stats.counts.astype(np.float64)
    magnitude = np.abs(centres)
    order = np.argsort(magnitude, kind="stable")
    peak = float(magnitude.max()) or 1.0
    edges = np.linspace(0.0, peak, 2049)
    folded = np.histogram(magnitude[order], bins=edges, weights=counts[order])[0]
    best_kl, best_t = np.inf, peak
    near = 0.0 if stats.min <= 0.0 <= stats.max else min(abs(stats.min), abs(stats.max))
    lowest = near + (peak - near) / 8  # a range that excludes 0 is clipped on its far side only, never below its data
    for stop in np.unique(np.linspace(target_bins, len(folded), 96).astype(int)):
        if edges[stop] < lowest:
            continue
        clipped = folded[:stop]
        reference = clipped.copy()
        reference[-1] += folded[stop:].sum()  # P: what clipping at this threshold keeps, the tail on its edge
        chunks = np.array_split(np.arange(stop), target_bins)
        expanded = np.zeros(stop)
        for chunk in chunks:  # Q: the unclipped mass spread over target_bins levels (not the tail: that is the cost)
            nonzero = clipped[chunk] > 0
            if nonzero.any():
                expanded[chunk[nonzero]] = clipped[chunk].sum() / nonzero.sum()
        p, q = reference / reference.sum(), expanded / max(expanded.sum(), 1e-300)
        mask = p > 0
        kl = float(np.sum(p[mask] * np.log(p[mask] / np.maximum(q[mask], 1e-300))))
        if kl < best_kl:
            best_kl, best_t = kl, float(edges[stop])
    lo, hi = max(min(stats.min, 0.0), -best_t), min(max(stats.max, 0.0), best_t)
    return ChosenRange(lo, hi, "entropy", "KL-divergence threshold")


def activation_error(
    act: Activation, points: np.ndarray, weights: np.ndarray, in_q: QParams, exact: np.ndarray | None = None,
    within: tuple[float, float] | None = None,
) -> tuple[float, QParams]:
    """Weighted squared error of f(x) vs its int8 table path, and the output grid used (covering f ``within``)."""
    out_q = covering_output_grid(act, in_q, within)
    table = lut_for(act, in_q, out_q)
    estimate = dequantize(table.lookup(quantize(points, in_q)), out_q)
    exact = act(points) if exact is None else exact
    return float(np.sum(weights * (exact - estimate) ** 2)), out_q


def activation_aware(stats: TensorStats, act: Activation, dtype: str = "int8") -> ChosenRange:
    """The input range whose table minimises the error after ``act`` over the observed distribution (the grid's
    only reader is ``act``)."""
    return joint_aware([("", stats, act)], dtype)


Reader = tuple[str, TensorStats, "Activation | None"]  # a value on the grid, its stats, the activation that reads it


def _saturation_clips(readers: list[Reader]) -> tuple[float, ...]:
    """Where each reading activation settles within an int16 step of its limits, and twice that: clip points for a
    group whose observed span is far wider than any saturating function needs (an outlier channel), which the
    fractions of the span never reach. An int16 table spreads its 513 knots over the clip range."""
    points = []
    for _, _, act in readers:
        limits = act.limits(act.params) if act is not None else (None, None)
        if act is None or None in limits:
            continue
        for bound in act.saturation_bounds((limits[1] - limits[0]) / 65536):
            points += [bound, 2 * bound] if bound is not None else []
    return tuple(points)


def joint_aware(readers: list[Reader], dtype: str = "int8") -> ChosenRange:
    """One grid for values that share it (a Split's parts, a Reshape and its source): the clip range minimising
    the summed relative error of every reader — after its activation for values that feed one (clipping where f
    saturates costs nothing), as plain quantization error for the others (box logits must keep their peaks).
    One activation reader alone is :func:`activation_aware`; readers without an activation alone minimise what
    :func:`mse` does."""
    union = readers[0][1]
    for _, stats, _ in readers[1:]:
        union = union.merge(stats)
    prepared = []
    for _, stats, act in readers:
        points, weights = stats.centres(), stats.counts.astype(np.float64)
        reference = act(points) if act is not None else points
        signal = float(np.sum(weights * reference**2)) or 1.0
        prepared.append((points, weights, act, reference, signal))

    def error(lo: float, hi: float) -> float:
        grid = qparams_from_range(lo, hi, dtype, symmetric=dtype == "int16")  # int16 grids: TFLite's 16x8 scheme
        total = 0.0
        for points, weights, act, reference, signal in prepared:
            if act is None:
                total += _grid_error(points, weights, grid) / signal
            else:
                total += activation_error(act, points, weights, grid, reference, (lo, hi))[0] / signal
        return total

    lo, hi = _best_clip(union, error, _saturation_clips(readers) if dtype == "int16" else ())
    functions = sorted({act.name for _, _, act in readers if act is not None})
    plain = sorted(name for name, _, act in readers if act is None)
    why = "minimises the error after " + ", ".join(functions) + (
        f" and the quantization error of {', '.join(map(repr, plain))}" if plain else "")
    return ChosenRange(float(lo), float(hi), "auto", f"{why} (clipped {union.fraction_outside(lo, hi):.2%} of inputs)")


METHODS: dict[str, Callable[[TensorStats], ChosenRange]] = {
    "minmax": minmax,
    "percentile": percentile,
    "entropy": entropy,
    "mse": mse,
    "auto": mse,  # grids that activations read use joint_aware instead
}
