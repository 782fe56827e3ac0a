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

BINS = 2048


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
        if span > 0:
            return math.ceil(math.log2(span / (BINS - 2)))
        magnitude = abs(self.max)
        return (math.frexp(magnitude)[1] - 20) if magnitude > 0 else -126

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
        if other.exponent is None:
            return self.copy()
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
    def from_dict(cls, data: dict[str, Any]) -> TensorStats:
        stats = cls(count=int(data["count"]), nonfinite=int(data["nonfinite"]))
        if data["bin_width_log2"] is None:
            return stats
        stats.min, stats.max = float(data["min"]), float(data["max"])
        stats.exponent, stats.first = int(data["bin_width_log2"]), int(data["first_bin"])
        counts = np.asarray(data["counts"], dtype=np.int64)
        if len(counts) > BINS:
            raise ValueError(f"histogram has {len(counts)} bins, more than {BINS}")
        stats.counts[: len(counts)] = counts
        return stats
