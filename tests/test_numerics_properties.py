"""Property tests of the numerics module against exact rational references."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeact.activations import REGISTRY
from edgeact.errors import QuantizationRangeError
from edgeact.numerics import (
    QParams,
    dequantize,
    lut_for,
    qparams_from_range,
    quantize,
    quantize_multiplier,
    requantize,
    table_error,
)
from edgeact.numerics.rounding import round_half_away_from_zero, round_half_to_even, round_half_up

finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False)
int32s = st.integers(min_value=-(2**31), max_value=2**31 - 1)
multipliers = st.floats(min_value=2.0**-30, max_value=100.0, allow_nan=False, allow_infinity=False)
dtypes = st.sampled_from(["int8", "uint8", "int16"])


def exact_half_away(value: Fraction) -> int:
    floor = math.floor(abs(value))
    rounded = floor + (1 if abs(value) - floor >= Fraction(1, 2) else 0)
    return rounded if value >= 0 else -rounded


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=64), min_size=1, max_size=50))
def test_rounding_modes_match_exact_definitions(values: list[float]) -> None:
    x = np.array(values + [0.5, -0.5, 1.5, -2.5, 0.49999999999999994], dtype=np.float64)
    assert [int(v) for v in round_half_away_from_zero(x)] == [exact_half_away(Fraction(v)) for v in x]
    assert [int(v) for v in round_half_to_even(x)] == [round(Fraction(v)) for v in x]  # Python: ties to even
    assert [int(v) for v in round_half_up(x)] == [math.floor(Fraction(v) + Fraction(1, 2)) for v in x]


@given(finite, finite, dtypes, st.booleans(), st.data())
def test_quantize_dequantize_error_is_at_most_half_a_step(
    lo: float, hi: float, dtype: str, symmetric: bool, data: st.DataObject
) -> None:
    lo, hi = min(lo, hi), max(lo, hi)
    if max(-min(lo, 0.0), max(hi, 0.0)) < 1e-6:
        return
    qp = qparams_from_range(lo, hi, dtype, symmetric=symmetric)
    low, high = qp.real_range
    # the grid covers the range up to the half step its rounded zero point can shift it by
    assert low <= min(lo, 0.0) + qp.scale * 0.5001 and high >= max(hi, 0.0) - qp.scale * 0.5001
    x = np.array(data.draw(st.lists(st.floats(min_value=low, max_value=high), min_size=1, max_size=30)))
    error = np.abs(dequantize(quantize(x, qp), qp) - x)
    assert np.all(error <= qp.scale / 2 * (1 + 1e-9))


@pytest.mark.parametrize("lo,hi", [(float("nan"), 1.0), (-float("inf"), 1.0), (2.0, 1.0)])
def test_bad_ranges_name_the_tensor(lo: float, hi: float) -> None:
    with pytest.raises(QuantizationRangeError, match="encoder/tanh_in"):
        qparams_from_range(lo, hi, tensor="encoder/tanh_in")


@pytest.mark.parametrize("lo,hi", [(0.0, 0.0), (3.0, 3.0), (-1e-30, -1e-30), (1e-38, 2e-38), (-5.0, -4.0), (8.0, 9.0)])
def test_degenerate_ranges_give_a_usable_grid_holding_zero_and_the_range(lo: float, hi: float) -> None:
    qp = qparams_from_range(lo, hi)
    low, high = qp.real_range
    assert 0.0 < qp.scale < np.inf and 1.0 / qp.scale < np.inf
    assert low <= min(lo, 0.0) + qp.scale and high >= max(hi, 0.0) - qp.scale


@given(int32s, multipliers)
@settings(max_examples=300)
def test_requantize_exact_is_exact(acc: int, m: float) -> None:
    product = Fraction(acc) * Fraction(m)
    if abs(product) >= 2**40:
        return
    assert int(requantize(np.array([acc]), m, "exact")[0]) == exact_half_away(product)


@given(int32s, st.floats(min_value=2.0**-30, max_value=0.999, allow_nan=False))
@settings(max_examples=300)
def test_requantize_double_rounding_within_one_lsb(acc: int, m: float) -> None:
    got = int(requantize(np.array([acc]), m, "tflite_double")[0])
    assert abs(got - exact_half_away(Fraction(acc) * Fraction(m))) <= 1


@given(int32s, st.floats(min_value=2.0**-30, max_value=0.999, allow_nan=False))
@settings(max_examples=300)
def test_requantize_single_rounding_is_exact_on_the_q31_multiplier(acc: int, m: float) -> None:
    q, shift = quantize_multiplier(m)
    exact = math.floor(Fraction(acc * q, 2 ** (31 - shift)) + Fraction(1, 2))
    assert int(requantize(np.array([acc]), m, "single")[0]) == exact


@given(int32s, st.floats(min_value=2.0**-30, max_value=10.0, allow_nan=False))
@settings(max_examples=300)
def test_requantize_float32_rne_within_float32_precision(acc: int, m: float) -> None:
    got = int(requantize(np.array([acc]), m, "float32_rne")[0])
    exact = Fraction(acc) * Fraction(m)
    assert abs(got - exact) <= Fraction(1, 2) + abs(exact) * Fraction(1, 2**22)


def test_double_rounding_differs_from_exact_somewhere() -> None:
    """The modes are really different (else the 1-LSB test above could pass with an exact kernel)."""
    acc = np.arange(-(2**20), 2**20, 977)
    m = 0.3712
    assert np.any(requantize(acc, m, "tflite_double") != requantize(acc, m, "exact"))


grids = st.builds(
    lambda s, z: QParams(s, z),
    st.floats(min_value=0.002, max_value=0.2),
    st.integers(min_value=-128, max_value=127),
)
conventions = st.sampled_from(["ideal", "litert", "xnnpack"])


@given(st.sampled_from(sorted(n for n, a in REGISTRY.items() if a.monotone)), grids, grids, conventions)
@settings(max_examples=150, deadline=None)
def test_tables_are_monotone_where_f_is(function: str, in_q: QParams, out_q: QParams, convention: str) -> None:
    table = lut_for(REGISTRY[function], in_q, out_q, convention)
    assert np.all(np.diff(table.values) >= 0)


@given(st.sampled_from(sorted(REGISTRY)), grids, grids, conventions)
@settings(max_examples=150, deadline=None)
def test_measured_table_error_never_exceeds_the_bound(
    function: str, in_q: QParams, out_q: QParams, convention: str
) -> None:
    act = REGISTRY[function]
    err = table_error(act, lut_for(act, in_q, out_q, convention))
    assert err.per_code_max_error <= err.per_code_bound
    assert err.max_abs_error <= err.bound


@given(
    st.sampled_from(sorted(REGISTRY)),
    st.floats(min_value=5e-5, max_value=5e-4),
    st.sampled_from(["ideal", "litert"]),
)
@settings(max_examples=25, deadline=None)
def test_int16_table_error_never_exceeds_the_bound(function: str, in_scale: float, convention: str) -> None:
    from edgeact.numerics import covering_output_grid

    act = REGISTRY[function]
    in_q = QParams(in_scale, 0, "int16")
    err = table_error(act, lut_for(act, in_q, covering_output_grid(act, in_q), convention))
    assert err.per_code_max_error <= err.per_code_bound
    assert err.max_abs_error <= err.bound
