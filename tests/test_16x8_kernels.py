"""The emulator's 16x8 kernels where the runtimes disagree with each other: single-op int16 models on thousands of
values, chosen so that each runtime's own arithmetic differs from the others somewhere (so these tests would fail
if the emulator ran one formula for all of them). Each runtime's output must equal the emulator under that runtime's
device profile, bit for bit.

- ADD: LiteRT's default kernels run x86's NEON-through-SSE path on blocks of 16 values (one rounding per input
  scaling), the reference kernels and TFLite Micro the two-rounding reference formula.
- QUANTIZE float32 -> int16: LiteRT's default kernels multiply blocks of 8 by a float32 reciprocal and round to
  nearest even; the reference kernels divide in float32 and round half away from zero.
- FULLY_CONNECTED: LiteRT requantizes in double from the float32 scales, TFLite Micro by the int64 fixed-point
  multiplier rounded to 15 bits.
- MUL and PRELU: LiteRT computes the real multipliers from the float32 scales in float32, TFLite Micro in double.
- SOFTMAX: LiteRT builds its exp and 1/(1 + x) tables in double, TFLite Micro in float32.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgeact.exporters.tflite.writer import serialise
from edgeact.hardware import load_profile
from edgeact.numerics import PerChannelQParams, QParams
from edgeact.runtimes.emulator import emulate, rules_for
from edgeact.runtimes.litert import run_litert
from edgeact.runtimes.tflm import run_tflm
from edgeact.tflite.graph import LoweredGraph

RUNTIMES = {
    "litert-reference": lambda model, feeds: run_litert(model, feeds, "reference"),
    "litert-xnnpack": lambda model, feeds: run_litert(model, feeds, "xnnpack"),
    "tflm": run_tflm,
}


def _outputs(graph: LoweredGraph, feeds: list[np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(runtime output, emulated output) per runtime."""
    model = serialise(graph, {}, "edgeact 16x8 kernel test")
    results = {}
    for name, runner in RUNTIMES.items():
        emulated = emulate(graph, feeds, rules_for(load_profile(name)))[graph.outputs[0]]
        results[name] = (runner(model, feeds)[0], emulated)
    return results


def _check(results: dict[str, tuple[np.ndarray, np.ndarray]], differ: tuple[str, str]) -> None:
    for name, (got, emulated) in results.items():
        np.testing.assert_array_equal(got, emulated, err_msg=f"{name}: emulator differs from the runtime")
    first, second = (results[name][0] for name in differ)
    assert not np.array_equal(first, second), f"{differ}: no value tells the two arithmetics apart"


def _grid(scale: float) -> QParams:
    return QParams(scale, 0, "int16")


def test_add_16x8_neon_blocks_and_reference_tail() -> None:
    size = 4096 + 7  # 256 blocks of 16 and a tail of 7 that takes the reference formula
    rng = np.random.default_rng(0)
    a, b = (rng.integers(-32768, 32768, (1, size)).astype(np.int16) for _ in range(2))
    graph = LoweredGraph()
    x1, x2 = graph.tensor("a", (1, size), "int16", _grid(0.002)), graph.tensor("b", (1, size), "int16", _grid(0.0011))
    y = graph.tensor("y", (1, size), "int16", _grid(0.003))
    graph.op("ADD", [x1, x2], [y], "add", fusedActivationFunction=0, potScaleInt16=False)
    graph.inputs, graph.outputs = [x1, x2], [y]
    _check(_outputs(graph, [a, b]), ("litert-reference", "litert-xnnpack"))


def test_quantize_float_to_int16_at_ties() -> None:
    scale = 0.001
    size = 8 * 512 + 5
    codes = np.arange(size, dtype=np.float64) - size // 2
    x = (np.float32(scale) * (codes + 0.5)).astype(np.float32).reshape(1, size)  # half-way between two codes
    graph = LoweredGraph()
    source = graph.tensor("x", (1, size), "float32")
    y = graph.tensor("y", (1, size), "int16", _grid(scale))
    graph.op("QUANTIZE", [source], [y], "quantize")
    graph.inputs, graph.outputs = [source], [y]
    _check(_outputs(graph, [x]), ("litert-reference", "litert-xnnpack"))


@pytest.mark.parametrize("per_channel", [True, False], ids=["per-channel", "per-tensor"])
def test_fully_connected_16x8_double_vs_fixed_point(per_channel: bool) -> None:
    rng = np.random.default_rng(1)
    depth, channels, rows = 64, 16, 32
    weights = rng.integers(-127, 128, (channels, depth)).astype(np.int8)
    w_scales = tuple(float(s) for s in rng.uniform(0.002, 0.02, channels)) if per_channel else (0.01,)
    in_scale, out_scale = 0.0007, 0.0123
    bias = rng.integers(-(2**20), 2**20, channels).astype(np.int64)
    graph = LoweredGraph()
    x = graph.tensor("x", (rows, depth), "int16", _grid(in_scale))
    w = graph.constant("w", weights, PerChannelQParams(w_scales, 0, "int8") if per_channel
                       else QParams(w_scales[0], 0, "int8"))
    bias_scales = tuple(in_scale * s for s in (w_scales if per_channel else w_scales * channels))
    b = graph.constant("b", bias, PerChannelQParams(bias_scales, 0, "int64"))
    y = graph.tensor("y", (rows, channels), "int16", _grid(out_scale))
    graph.op("FULLY_CONNECTED", [x, w, b], [y], "fc", fusedActivationFunction=0, weightsFormat=0,
             keepNumDims=False, asymmetricQuantizeInputs=False)
    graph.inputs, graph.outputs = [x], [y]
    feeds = [rng.integers(-32768, 32768, (rows, depth)).astype(np.int16)]
    _check(_outputs(graph, feeds), ("litert-reference", "tflm"))


def test_softmax_16x8_tables_in_double_and_in_float32() -> None:
    """LiteRT builds the int16 SOFTMAX's two tables in double, TFLite Micro in float32: their 1/(1 + x) tables
    differ at two knots, so some rows' outputs differ between the runtimes."""
    rows, depth = 1536, 8  # (TFLite Micro's test arena holds about 60 KB)
    rng = np.random.default_rng(2)
    x = rng.integers(-20000, 20000, (rows, depth)).astype(np.int16)
    graph = LoweredGraph()
    source = graph.tensor("x", (rows, depth), "int16", _grid(0.0004))
    y = graph.tensor("y", (rows, depth), "int16", _grid(1.0 / 32768.0))
    graph.op("SOFTMAX", [source], [y], "softmax", beta=1.0)
    graph.inputs, graph.outputs = [source], [y]
    _check(_outputs(graph, [x]), ("litert-reference", "tflm"))


def test_mul_16x8_multiplier_in_float32_and_in_double() -> None:
    size = 4096
    rng = np.random.default_rng(3)
    a, b = (rng.integers(-32768, 32768, (1, size)).astype(np.int16) for _ in range(2))
    graph = LoweredGraph()
    x1 = graph.tensor("a", (1, size), "int16", _grid(0.0123))
    x2 = graph.tensor("b", (1, size), "int16", _grid(0.000731))
    y = graph.tensor("y", (1, size), "int16", _grid(0.00917))
    graph.op("MUL", [x1, x2], [y], "mul", fusedActivationFunction=0)
    graph.inputs, graph.outputs = [x1, x2], [y]
    _check(_outputs(graph, [a, b]), ("litert-reference", "tflm"))


def test_prelu_16x8_int8_slope_multipliers_in_float32_and_in_double() -> None:
    """TFLite's int16 PRELU reads an int8 slope (with its own zero point)."""
    size = 4096
    rng = np.random.default_rng(4)
    x = rng.integers(-32768, 32768, (1, size)).astype(np.int16)
    in_scale, slope_scale, out_scale = (float(np.float32(v)) for v in rng.uniform([1e-4, 1e-3, 2e-4],
                                                                                  [1e-3, 1e-2, 2e-3]))
    graph = LoweredGraph()
    source = graph.tensor("x", (1, size), "int16", _grid(in_scale))
    alpha = graph.constant("alpha", rng.integers(-128, 128, (1, size)).astype(np.int8), QParams(slope_scale, 3, "int8"))
    y = graph.tensor("y", (1, size), "int16", _grid(out_scale))
    graph.op("PRELU", [source, alpha], [y], "prelu")
    graph.inputs, graph.outputs = [source], [y]
    _check(_outputs(graph, [x]), ("litert-reference", "tflm"))
