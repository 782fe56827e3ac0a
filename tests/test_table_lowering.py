"""CAST(int8->int32) -> ADD(+128) -> GATHER reproduces any table exactly on LiteRT and TFLite Micro."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ALL_INT8_CODES, random_grid

from edgeact.activations import REGISTRY
from edgeact.exporters.tflite.single_op import table_lowering_model
from edgeact.numerics import covering_output_grid, lut_for
from edgeact.runtimes.litert import run_litert
from edgeact.runtimes.tflm import run_tflm


def tables_for(function: str) -> list:
    rng = np.random.default_rng(7 + sum(map(ord, function)))
    act = REGISTRY[function]
    tables = []
    for _ in range(3):
        in_q = random_grid(rng, 0.005, 0.2)
        tables.append(lut_for(act, in_q, random_grid(rng, 0.005, 0.1)))  # clamps at the ends
        tables.append(lut_for(act, in_q, covering_output_grid(act, in_q)))
    return tables


@pytest.mark.parametrize("function", sorted(REGISTRY))
def test_gather_lowering_is_exact_on_litert(function: str) -> None:
    for table in tables_for(function):
        model = table_lowering_model(table, shape=(1, 256))
        for kernels in ("xnnpack", "reference"):
            out = run_litert(model, [ALL_INT8_CODES.reshape(1, 256)], kernels)[0]
            assert np.array_equal(out.ravel().astype(np.int64), table.values), (function, kernels)


@pytest.mark.parametrize("function", sorted(REGISTRY))
def test_gather_lowering_is_exact_on_tflite_micro(function: str) -> None:
    for table in tables_for(function):
        out = run_tflm(table_lowering_model(table), [ALL_INT8_CODES])[0]
        assert np.array_equal(out.astype(np.int64), table.values), function


def test_gather_lowering_reads_any_input_order() -> None:
    """Not just the identity permutation: shuffled codes index the right entries."""
    act = REGISTRY["gelu"]
    rng = np.random.default_rng(3)
    table = lut_for(act, random_grid(rng, 0.01, 0.1), random_grid(rng, 0.01, 0.05))
    shuffled = np.random.default_rng(5).permutation(ALL_INT8_CODES)
    expected = table.lookup(shuffled)
    assert np.array_equal(run_tflm(table_lowering_model(table), [shuffled])[0].astype(np.int64), expected)
    assert np.array_equal(run_litert(table_lowering_model(table), [shuffled])[0].astype(np.int64), expected)
