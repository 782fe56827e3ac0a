"""Streaming observers: exact merging, fixed memory, range methods; activation-aware input ranges."""

from __future__ import annotations

import tracemalloc

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeact.activations import activation
from edgeact.calibration.observers import BINS, TensorStats
from edgeact.calibration.ranges import METHODS, activation_aware, activation_error, minmax
from edgeact.numerics import qparams_from_range


def _stats(*batches: np.ndarray) -> TensorStats:
    stats = TensorStats()
    for batch in batches:
        stats.observe(batch)
    return stats


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.01, 100.0), st.floats(0.01, 100.0))
def test_merge_equals_observing_everything_at_the_coarser_width(seed: int, scale_a: float, scale_b: float) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, scale_a, 500), rng.normal(1.0, scale_b, 700)
    merged = _stats(a).merge(_stats(b))
    assert merged.count == 1200 and merged.finite_count == 1200
    assert (merged.min, merged.max) == (min(a.min(), b.min()), max(a.max(), b.max()))
    whole = _stats(np.concatenate([a, b]))
    if whole.exponent == merged.exponent:
        np.testing.assert_array_equal(whole.counts, merged.counts)
    assert abs(whole.quantile(0.5) - merged.quantile(0.5)) <= 2 * merged.width


def test_round_trip_through_json_dict() -> None:
    stats = _stats(np.random.default_rng(0).normal(size=1000), np.array([np.inf, np.nan]))
    again = TensorStats.from_dict(stats.as_dict())
    assert again.as_dict() == stats.as_dict() and again.nonfinite == 2


def test_quantiles_track_the_data() -> None:
    data = np.random.default_rng(1).normal(0, 2, 200_000)
    stats = _stats(*np.split(data, 20))
    for level in (0.01, 0.5, 0.99):
        assert abs(stats.quantile(level) - np.quantile(data, level)) < 0.01


def test_memory_does_not_grow_with_samples() -> None:
    """Observing 10x more batches allocates no more memory: the histogram has a fixed number of bins."""
    rng = np.random.default_rng(2)
    batches = [rng.normal(0, 1, 4096) for _ in range(8)]

    def peak_for(repeats: int) -> int:
        tracemalloc.start()
        stats = TensorStats()
        for _ in range(repeats):
            for batch in batches:
                stats.observe(batch)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    small, large = peak_for(1), peak_for(10)
    assert large <= small * 1.1 + 4096, (small, large)
    assert len(TensorStats().counts) == BINS


def test_every_method_gives_a_range_inside_the_data() -> None:
    stats = _stats(np.random.default_rng(3).standard_t(3, 50_000))
    for name, method in METHODS.items():
        chosen = method(stats)
        assert stats.min <= chosen.lo < chosen.hi <= stats.max, name


def test_activation_aware_clips_saturated_tanh_inputs_and_lowers_the_error() -> None:
    """tanh on N(0, 4): min/max spends codes on saturated inputs; the chosen range clips them."""
    stats = _stats(np.random.default_rng(4).normal(0, 4, 100_000))
    tanh = activation("tanh")
    chosen = activation_aware(stats, tanh)
    wide = minmax(stats)
    assert chosen.hi < 0.5 * wide.hi and chosen.lo > 0.5 * wide.lo
    points, weights = stats.centres(), stats.counts.astype(float)
    ours = activation_error(tanh, points, weights, qparams_from_range(chosen.lo, chosen.hi))[0]
    theirs = activation_error(tanh, points, weights, qparams_from_range(wide.lo, wide.hi))[0]
    assert ours < 0.5 * theirs


def test_activation_aware_keeps_gelus_negative_dip() -> None:
    stats = _stats(np.random.default_rng(5).normal(0, 1.5, 100_000))
    chosen = activation_aware(stats, activation("gelu"))
    assert chosen.lo < -0.75  # the dip's minimum is at x = -0.75
