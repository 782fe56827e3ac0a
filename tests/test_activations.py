"""The activation registry against declarative cases (tests/cases/activations.toml, from mpmath)."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest
from conftest import CASES

from edgeact.activations import REGISTRY, activation
from edgeact.errors import UnknownActivationError, UsageError

CASE_DATA = tomllib.loads((CASES / "activations.toml").read_text())


def test_every_registry_entry_has_a_case_and_back() -> None:
    assert sorted(CASE_DATA) == sorted(REGISTRY)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_reference_matches_high_precision_values(name: str) -> None:
    act = REGISTRY[name]
    points = np.array(CASE_DATA[name]["points"])
    got = act(points[:, 0])
    assert np.allclose(got, points[:, 1], rtol=1e-12, atol=1e-300)
    assert act.monotone == CASE_DATA[name]["monotone"]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_no_overflow_or_nan_up_to_1e4(name: str) -> None:
    x = np.concatenate([np.linspace(-1e4, 1e4, 200_001), [-1e4, 1e4, -0.0, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y, slope = REGISTRY[name](x), REGISTRY[name].slope(x)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(slope))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_derivative_matches_finite_differences(name: str) -> None:
    act = REGISTRY[name]
    x = np.linspace(-8, 8, 1601) + 1e-3  # off the kinks of hardswish/hardsigmoid/relu-likes
    x = x[np.all(np.abs(x[:, None] - np.array([-3.0, 3.0, 0.0])) > 1e-3, axis=1)]
    h = 1e-6
    numeric = (act(x + h) - act(x - h)) / (2 * h)
    assert np.allclose(act.slope(x), numeric, atol=1e-5)


@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.parametrize("out_step", [1 / 128, 1 / 256, 0.02])
def test_saturation_bounds_are_where_f_reaches_its_limit(name: str, out_step: float) -> None:
    act = REGISTRY[name]
    limits = act.limits(act.params)
    bounds = act.saturation_bounds(out_step)
    for side, (limit, bound) in enumerate(zip(limits, bounds, strict=True)):
        if limit is None:
            assert bound is None
            continue
        direction = -1.0 if side == 0 else 1.0
        beyond = bound + direction * np.linspace(0.0, 50.0, 5001)
        assert np.all(np.abs(act(beyond) - limit) <= out_step / 2 + 1e-15)
        just_inside = bound - direction * 1e-6
        assert abs(float(act(np.array([just_inside]))[0]) - limit) > out_step / 2 - 1e-6


def test_parameters_change_the_function_and_its_limits() -> None:
    elu = activation("elu", alpha=0.5)
    assert elu.limits(elu.params) == (-0.5, None)
    assert np.isclose(float(elu(np.array([-50.0]))[0]), -0.5)
    assert np.isclose(float(activation("leaky_relu", alpha=0.2)(np.array([-1.0]))[0]), -0.2)
    with pytest.raises(UsageError, match="no parameter 'beta'"):
        activation("elu", beta=1.0)


def test_unknown_activation_lists_the_known_ones() -> None:
    with pytest.raises(UnknownActivationError, match="known: .*gelu.*tanh"):
        activation("swishy")
