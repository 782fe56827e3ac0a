"""Streaming tensor statistics in fixed memory, exactly mergeable across shards.

A :class:`TensorStats` keeps count, min, max, the number of non-finite values and a histogram of at most
``BINS`` bins whose width is a power of two and whose edges sit on multiples of that width. Widening the range
merges pairs of bins; two histograms merge by coarsening the finer one. Both are exact integer operations, so
stats merged from shards equal the stats of the whole set (as long as neither needed coarser bins).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeact.errors import CalibrationDataError

BINS = 2048
MIN_EXPONENT, MAX_EXPONENT = -1074, 1023  # bin widths float64 can hold (2**-1074 is its smallest step)
MAX_COUNT = 2**62  # counts stay exact in int64 sums
MAX_FIRST_BIN = 2**53


@dataclass
class TensorStats:
    count: int = 0
    nonfinite: int = 0
    min: float = math.inf
    max: float = -math.inf
    exponent: int | None = None  # bin width = 2**exponent
    first: int = 0  # bin i covers [(first + i) * w, (first + i + 1) * w)
    counts: np.ndarray = field(default_factory=lambda: np.zeros(BINS, dtype=np.int64))

    @property
    def width(self) -> float:
        return math.ldexp(1.0, self.exponent if self.exponent is not None else 0)

    def _span(self, exponent: int) -> tuple[int, int]:
        w = math.ldexp(1.0, exponent)
        return math.floor(self.min / w), math.floor(self.max / w)

    def _rebin(self, exponent: int) -> None:
        """Re-anchor (and coarsen to ``exponent``) so that [min, max] fits; counts move exactly."""
        old_index = self.first + np.arange(BINS, dtype=np.int64)
        old_counts = self.counts
        while self._span(exponent)[1] - self._span(exponent)[0] + 1 > BINS:
            exponent += 1
        shift = exponent - (self.exponent if self.exponent is not None else exponent)
        first = self._span(exponent)[0]
        counts = np.zeros(BINS, dtype=np.int64)
        used = old_counts > 0
        np.add.at(counts, (old_index[used] >> shift) - first, old_counts[used])
        self.exponent, self.first, self.counts = exponent, first, counts

    def _initial_exponent(self) -> int:
        span = self.max - self.min
        if span > 0:  # halved when the span overflows; MIN_EXPONENT when it underflows (subnormal data)
            ratio = span / (BINS - 2) if math.isfinite(span) else (self.max / 2 - self.min / 2) / (BINS / 2 - 1)
            return max(MIN_EXPONENT, math.ceil(math.log2(ratio))) if ratio > 0 else MIN_EXPONENT
        magnitude = abs(self.max)
        return max(MIN_EXPONENT, math.frexp(magnitude)[1] - 20) if magnitude > 0 else -126

    def observe(self, values: np.ndarray) -> None:
        """Add a batch of values (any shape); non-finite values are counted, not binned."""
        flat = np.asarray(values, dtype=np.float64).ravel()
        finite = flat[np.isfinite(flat)]
        self.count += flat.size
        self.nonfinite += flat.size - finite.size
        if finite.size == 0:
            return
        self.min, self.max = min(self.min, float(finite.min())), max(self.max, float(finite.max()))
        lo, hi = self._span(self.exponent) if self.exponent is not None else (0, BINS)
        if self.exponent is None or lo < self.first or hi >= self.first + BINS:
            self._rebin(self.exponent if self.exponent is not None else self._initial_exponent())
        index = np.floor(finite / self.width).astype(np.int64) - self.first
        self.counts += np.bincount(index, minlength=BINS)

    def merge(self, other: TensorStats) -> TensorStats:
        """The stats of both sets together (neither input is changed)."""
        if other.exponent is None:  # only non-finite values (or none)
            merged = self.copy()
            merged.count += other.count
            merged.nonfinite += other.nonfinite
            return merged
        if self.exponent is None:
            merged = other.copy()
            merged.count += self.count
            merged.nonfinite += self.nonfinite
            return merged
        merged, extra = self.copy(), other.copy()
        merged.min, merged.max = min(self.min, other.min), max(self.max, other.max)
        exponent = max(self.exponent, other.exponent)
        merged._rebin(exponent)
        extra.min, extra.max = merged.min, merged.max
        extra._rebin(merged.exponent)  # same span -> same anchor
        merged.counts += extra.counts
        merged.count += other.count
        merged.nonfinite += other.nonfinite
        return merged

    def copy(self) -> TensorStats:
        return TensorStats(
            self.count, self.nonfinite, self.min, self.max, self.exponent, self.first, self.counts.copy()
        )

    @property
    def finite_count(self) -> int:
        return int(self.counts.sum())

    def centres(self) -> np.ndarray:
        """Bin centres clipped to [min, max] (the histogram's sample points)."""
        edges = (self.first + np.arange(BINS, dtype=np.float64) + 0.5) * self.width
        return np.clip(edges, self.min, self.max)

    def quantile(self, level: float) -> float:
        """The value below which ``level`` of the finite mass lies (linear inside a bin)."""
        cumulative = np.cumsum(self.counts)
        target = level * cumulative[-1]
        index = int(np.searchsorted(cumulative, target, side="left"))
        index = min(index, BINS - 1)
        below = cumulative[index - 1] if index else 0
        inside = self.counts[index]
        fraction = (target - below) / inside if inside else 0.0
        value = (self.first + index + fraction) * self.width
        return float(np.clip(value, self.min, self.max))

    def fraction_outside(self, lo: float | None, hi: float | None) -> float:
        """Share of finite values below ``lo`` or above ``hi`` (by bin centre)."""
        total = self.finite_count
        if not total:
            return 0.0
        centres = self.centres()
        outside = np.zeros(BINS, dtype=bool)
        if lo is not None:
            outside |= centres < lo
        if hi is not None:
            outside |= centres > hi
        return float(self.counts[outside].sum() / total)

    def as_dict(self) -> dict[str, Any]:
        nonzero = np.flatnonzero(self.counts)
        start = int(nonzero[0]) if len(nonzero) else 0
        stop = int(nonzero[-1]) + 1 if len(nonzero) else 0
        return {
            "count": self.count,
            "nonfinite": self.nonfinite,
            "min": self.min if self.exponent is not None else None,
            "max": self.max if self.exponent is not None else None,
            "bin_width_log2": self.exponent,
            "first_bin": self.first + start,
            "counts": self.counts[start:stop].tolist(),
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "tensor statistics") -> TensorStats:
        """Stats saved by :meth:`as_dict`, every field checked; a CalibrationDataError names ``where`` and the field."""
        if not isinstance(data, dict):
            raise CalibrationDataError(f"{where}: expected an object of statistics, got {_show(data)}")
        count = json_int(data, "count", where, 0, MAX_COUNT)
        stats = cls(count=count, nonfinite=json_int(data, "nonfinite", where, 0, count))
        if json_field(data, "bin_width_log2", where) is None:
            _check_no_finite_values(data, stats, where)
            return stats
        stats.exponent = json_int(data, "bin_width_log2", where, MIN_EXPONENT, MAX_EXPONENT)
        stats.min, stats.max = json_finite(data, "min", where), json_finite(data, "max", where)
        if stats.min > stats.max:
            raise CalibrationDataError(f"{where}: field 'min' ({stats.min}) is above field 'max' ({stats.max})")
        stats.first = json_int(data, "first_bin", where, -MAX_FIRST_BIN, MAX_FIRST_BIN)
        counts = _histogram(data, stats, where)
        _check_span(stats, len(counts), where)
        stats.counts[: len(counts)] = counts
        return stats


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def json_field(data: dict[str, Any], key: str, where: str) -> Any:
    """``data[key]``, or a CalibrationDataError naming ``where`` and the missing field."""
    if key not in data:
        raise CalibrationDataError(f"{where}: missing field {key!r}")
    return data[key]


def json_int(data: dict[str, Any], key: str, where: str, lo: int, hi: int) -> int:
    """An integer field within [lo, hi]."""
    value = json_field(data, key, where)
    if isinstance(value, bool) or not isinstance(value, int):
        raise CalibrationDataError(f"{where}: field {key!r} must be an integer, got {_show(value)}")
    if not lo <= value <= hi:
        bound = f"at least {lo}" if value < lo else f"at most {hi}"
        raise CalibrationDataError(f"{where}: field {key!r} is {_show(value)}; it must be {bound}")
    return value


def json_finite(data: dict[str, Any], key: str, where: str) -> float:
    """A finite number field."""
    value = json_field(data, key, where)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CalibrationDataError(f"{where}: field {key!r} must be a finite number, got {_show(value)}")
    return float(value)


def _check_no_finite_values(data: dict[str, Any], stats: TensorStats, where: str) -> None:
    """A tensor without a histogram (``bin_width_log2`` null) saw only non-finite values."""
    for key in ("min", "max"):
        if json_field(data, key, where) is not None:
            raise CalibrationDataError(f"{where}: field {key!r} must be null when 'bin_width_log2' is null")
    if json_field(data, "counts", where) != []:
        raise CalibrationDataError(f"{where}: field 'counts' must be [] when 'bin_width_log2' is null")
    if stats.nonfinite != stats.count:
        raise CalibrationDataError(f"{where}: field 'bin_width_log2' is null (no finite values) but 'count' "
                                   f"{stats.count} exceeds 'nonfinite' {stats.nonfinite}")


def _histogram(data: dict[str, Any], stats: TensorStats, where: str) -> list[int]:
    """The ``counts`` field: 1 to BINS non-negative integers summing to the finite values."""
    counts = json_field(data, "counts", where)
    if not isinstance(counts, list) or not 1 <= len(counts) <= BINS:
        raise CalibrationDataError(f"{where}: field 'counts' must be a list of 1 to {BINS} bin counts, got "
                                   f"{f'{len(counts)} bins' if isinstance(counts, list) else _show(counts)}")
    for value in counts:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
            raise CalibrationDataError(f"{where}: field 'counts' holds {_show(value)}, not a bin count")
    finite = stats.count - stats.nonfinite
    if sum(counts) != finite:
        raise CalibrationDataError(f"{where}: field 'counts' sums to {sum(counts)}, but 'count' - 'nonfinite' "
                                   f"is {finite} finite values")
    return counts


def _check_span(stats: TensorStats, bins: int, where: str) -> None:
    """``min`` and ``max`` fall inside the histogram's bins."""
    width = stats.width
    lo, hi = stats.min / width, stats.max / width
    if not (math.isfinite(lo) and math.isfinite(hi) and stats.first <= math.floor(lo)
            and math.floor(hi) < stats.first + bins):
        raise CalibrationDataError(
            f"{where}: fields 'min' and 'max' ([{stats.min}, {stats.max}]) fall outside the histogram "
            f"('first_bin' {stats.first}, {bins} bins of width 2**{stats.exponent})")
