"""The `litert` and `xnnpack` table conventions equal what ai-edge-litert computes, on all 256 codes.

Each builtin runs three ways: default interpreter (XNNPACK where it takes the op), builtin kernels
without delegate, and the reference kernels. Cases: 50 random grids per op, the fixed grids the TFLite
converter uses, and grids on which the conventions disagree (so a wrong convention cannot pass).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ALL_INT8_CODES, discriminating_grids, random_grid

from edgeact.activations import activation
from edgeact.errors import RuntimeUnavailableError
from edgeact.exporters.tflite.single_op import activation_builtin_model
from edgeact.numerics import QParams, lut_for
from edgeact.runtimes.litert import delegated_op_names, run_litert

BUILTINS = {  # registry function -> (TFLite op, options)
    "tanh": ("TANH", {}),
    "sigmoid": ("LOGISTIC", {}),
    "gelu": ("GELU", {"approximate": False}),
    "gelu_tanh": ("GELU", {"approximate": True}),
}
FIXED_GRIDS = {"tanh": QParams(1 / 128, 0), "sigmoid": QParams(1 / 256, -128)}
RANDOM_CASES = 50


def grids_for(function: str) -> list[tuple[QParams, QParams]]:
    rng = np.random.default_rng(sum(map(ord, function)))
    grids = []
    for i in range(RANDOM_CASES):
        in_q = random_grid(rng, 0.002, 0.25)
        out_q = random_grid(rng, 0.002, 0.05)
        if function == "sigmoid":  # LiteRT's own LOGISTIC kernel accepts only output scale 1/256
            out_q = QParams(1 / 256, out_q.zero_point)
        if function in FIXED_GRIDS and i % 5 == 0:
            out_q = FIXED_GRIDS[function]
        grids.append((in_q, out_q))
    return grids + discriminating_grids(function)


def accepted_by_litert_kernels(function: str, out_q: QParams) -> bool:
    """LiteRT's own int8 LOGISTIC kernel refuses any output scale but 1/256 (XNNPACK takes any)."""
    return function != "sigmoid" or out_q.scale == 1 / 256


def run_builtin(function: str, in_q: QParams, out_q: QParams, kernels: str) -> np.ndarray:
    op, options = BUILTINS[function]
    model = activation_builtin_model(op, in_q, out_q, **options)
    return run_litert(model, [ALL_INT8_CODES], kernels)[0].astype(np.int64)


@pytest.mark.parametrize("function", sorted(BUILTINS))
@pytest.mark.parametrize("kernels", ["builtin", "reference"])
def test_litert_convention_equals_litert_kernels(function: str, kernels: str) -> None:
    act = activation(function)
    mismatches = []
    for in_q, out_q in grids_for(function):
        if not accepted_by_litert_kernels(function, out_q):
            continue
        expected = lut_for(act, in_q, out_q, "litert").values
        got = run_builtin(function, in_q, out_q, kernels)
        if not np.array_equal(got, expected):
            mismatches.append((in_q, out_q, int(np.sum(got != expected))))
    assert not mismatches, mismatches


@pytest.mark.parametrize("kernels", ["builtin", "reference"])
def test_litert_logistic_kernel_refuses_other_output_scales(kernels: str) -> None:
    with pytest.raises(RuntimeUnavailableError, match="1. / 256"):
        run_builtin("sigmoid", QParams(0.05, 0), QParams(1 / 200, -128), kernels)


@pytest.mark.parametrize("function", sorted(BUILTINS))
def test_xnnpack_convention_equals_delegated_ops(function: str) -> None:
    """Where XNNPACK takes the op its table is the `xnnpack` one; elsewhere LiteRT's kernel runs."""
    act = activation(function)
    op, options = BUILTINS[function]
    delegated, grids = 0, grids_for(function)
    for in_q, out_q in grids:
        model = activation_builtin_model(op, in_q, out_q, **options)
        took_it = "DELEGATE" in delegated_op_names(model)
        delegated += took_it
        convention = "xnnpack" if took_it else "litert"
        got = run_litert(model, [ALL_INT8_CODES], "xnnpack")[0].astype(np.int64)
        assert np.array_equal(got, lut_for(act, in_q, out_q, convention).values), (in_q, out_q, convention)
    if function in ("tanh", "sigmoid"):
        assert delegated == len(grids), "XNNPACK is expected to take int8 TANH and LOGISTIC"
    else:
        assert delegated == 0, "XNNPACK is not expected to take int8 GELU"


@pytest.mark.parametrize("function", sorted(BUILTINS))
def test_discriminating_grids_separate_the_conventions(function: str) -> None:
    """The case file really contains grids where the conventions differ (else the tests above prove less)."""
    act = activation(function)
    for in_q, out_q in discriminating_grids(function):
        tables = [lut_for(act, in_q, out_q, c).values for c in ("ideal", "litert", "xnnpack")]
        assert any(not np.array_equal(tables[0], t) for t in tables[1:])


@pytest.mark.parametrize("kernels", ["xnnpack", "builtin", "reference"])
def test_litert_hard_swish_is_fixed_point_within_one_lsb_of_the_table(kernels: str) -> None:
    """HARD_SWISH is not a table on LiteRT: int16 fixed point, at most 1 LSB from the exact table."""
    rng = np.random.default_rng(17)
    act = activation("hardswish")
    worst = []
    for _ in range(20):
        in_q, out_q = random_grid(rng, 0.01, 0.1), random_grid(rng, 0.01, 0.05)
        model = activation_builtin_model("HARD_SWISH", in_q, out_q)
        got = run_litert(model, [ALL_INT8_CODES], kernels)[0].astype(np.int64)
        worst.append(int(np.abs(got - lut_for(act, in_q, out_q).values).max()))
    assert max(worst) <= 1, worst


@pytest.mark.parametrize("function,approximate", [("gelu", False), ("gelu_tanh", True)])
@pytest.mark.parametrize("kernels", ["builtin", "reference"])
def test_int16_litert_tables_equal_litert_int16_gelu(function: str, approximate: bool, kernels: str) -> None:
    """TFLite's 513-knot int16 scheme, read back by interpolation, on all 65,536 int16 codes."""
    rng = np.random.default_rng(23)
    act = activation(function)
    codes16 = np.arange(-32768, 32768, dtype=np.int16)
    differs_from_ideal = 0
    for _ in range(5):
        in_q = QParams(float(rng.uniform(5e-5, 4e-4)), 0, "int16")
        out_q = QParams(float(rng.uniform(5e-5, 4e-4)), 0, "int16")
        model = activation_builtin_model("GELU", in_q, out_q, shape=(65536,), approximate=approximate)
        got = run_litert(model, [codes16], kernels)[0].astype(np.int64)
        assert np.array_equal(got, lut_for(act, in_q, out_q, "litert").output_codes())
        differs_from_ideal += not np.array_equal(got, lut_for(act, in_q, out_q, "ideal").output_codes())
    assert differs_from_ideal, "no grid separated float32 from float64 knots; pick other seeds"
