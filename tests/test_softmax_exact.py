"""int8 SOFTMAX, bit for bit: edgeact's emulator against LiteRT's reference kernels (gemmlowp fixed point), TFLite
Micro (the same reference code) and LiteRT's default interpreter (XNNPACK leaves int8 SOFTMAX to LiteRT's optimized
kernel: a float32 expf table), on hundreds of rows per row length and input grid.

One model holds several softmaxes, each over the last axis of its own input: row lengths 4..64, input grids from
~0.001 (every difference counts) to ~1 (differences below TFLite's diff_min are dropped, outputs saturate). The rows
are random, plus rows whose exact softmax lands next to a rounding boundary of the 1/256 output grid: there any
approximation of TFLite's arithmetic (float64 softmax, rounded) is off by one, where random rows rarely show it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

import edgeact
from edgeact.api import CanonicalModel, static_shapes
from edgeact.exporters.tflite.model import lower_tflite
from edgeact.graph import view_of
from edgeact.hardware import load_profile
from edgeact.runtimes.emulator import emulate, rules_for
from edgeact.runtimes.litert import run_litert_many
from edgeact.runtimes.tflm import run_tflm_many

ROWS = 64  # rows per input per run
RANDOM_RUNS, TIE_RUNS = 2, 4  # 384 rows per softmax
# (row length, standard deviation of the data): the input grid is about 8 sigma / 255
SOFTMAXES = ((4, 40.0), (7, 0.03), (16, 2.0), (33, 0.6), (64, 8.0), (24, 0.25))
RUNNERS = {
    "litert-reference": ("litert", lambda model, samples: run_litert_many(model, samples, "reference")),
    "tflm": ("tflm", run_tflm_many),
    "litert-xnnpack": ("litert", lambda model, samples: run_litert_many(model, samples, "xnnpack")),
}


def _model() -> onnx.ModelProto:
    nodes, inputs, outputs = [], [], []
    for index, (length, _) in enumerate(SOFTMAXES):
        inputs.append(helper.make_tensor_value_info(f"x{index}", onnx.TensorProto.FLOAT, ["N", ROWS, length]))
        outputs.append(helper.make_tensor_value_info(f"y{index}", onnx.TensorProto.FLOAT, ["N", ROWS, length]))
        nodes.append(helper.make_node("Softmax", [f"x{index}"], [f"y{index}"], name=f"softmax{index}", axis=-1))
    graph = helper.make_graph(nodes, "softmaxes", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def _data(count: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    data = {}
    for index, (length, sigma) in enumerate(SOFTMAXES):
        values = rng.normal(0.0, sigma, (count, ROWS, length))
        values[:, 0] = values[:, 0, :1]  # a row of equal values
        values[:, 1, 0] += 6 * sigma  # a row with one dominant value
        data[f"x{index}"] = values.astype(np.float32)
    return data


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, tuple[bytes, object]]:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("softmax")
    path = folder / "softmaxes.onnx"
    onnx.save(_model(), path)
    np.savez(folder / "calib.npz", **_data(32, seed=1))
    canonical = CanonicalModel.load(path)
    models = {}
    for target in ("litert", "tflm"):
        result = edgeact.quantize(path, folder / "calib.npz", output_dir=folder / target, formats=["tflite"],
                                  target=target)
        lowered = lower_tflite(view_of(canonical.model), result.plan, static_shapes(canonical), target)
        models[target] = (Path(result.paths["tflite"]).read_bytes(), lowered.graph)
    return models


def _near_ties(scale: float, length: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` rows of int8 codes whose exact softmax (on a ``scale`` grid) is nearest a rounding boundary of the
    1/256 output grid, among 2e6 random codes; the codes of a row span about 10 units of the real line."""
    spread = int(min(255, np.ceil(10 / scale)))
    codes = rng.integers(-128, -128 + spread + 1, (2_000_000 // length, length)) + rng.integers(0, 256 - spread, (
        2_000_000 // length, 1))
    e = np.exp(float(np.float32(scale)) * (codes - codes.max(axis=-1, keepdims=True)))
    steps = 256 * e / e.sum(axis=-1, keepdims=True)
    distance = np.abs(steps - np.floor(steps) - 0.5).min(axis=-1)
    return codes[np.argsort(distance)[:count]]


def _samples(graph) -> tuple[list[list[np.ndarray]], list[dict[int, np.ndarray]]]:  # type: ignore[no-untyped-def]
    """Runs of feeds (random runs, then near-tie runs) and, per near-tie run, the codes each SOFTMAX must read."""
    held_out = _data(RANDOM_RUNS, seed=2)
    samples = [[held_out[f"x{i}"][run : run + 1] for i in range(len(SOFTMAXES))] for run in range(RANDOM_RUNS)]
    rng = np.random.default_rng(3)
    ties = [[] for _ in range(TIE_RUNS)], [{} for _ in range(TIE_RUNS)]
    for length, _ in SOFTMAXES:
        op = next(op for op in graph.ops if op.op == "SOFTMAX" and graph.tensors[op.inputs[0]].shape[-1] == length)
        quant = graph.tensors[op.inputs[0]].quant
        codes = _near_ties(quant.scale, length, TIE_RUNS * ROWS, rng).reshape(TIE_RUNS, 1, ROWS, length)
        values = ((codes - quant.zero_point) * np.float32(quant.scale)).astype(np.float32)
        for run in range(TIE_RUNS):
            ties[0][run].append(values[run])
            ties[1][run][op.inputs[0]] = codes[run]
    return samples + ties[0], [{}] * RANDOM_RUNS + ties[1]


@pytest.mark.parametrize("runtime", list(RUNNERS))
def test_int8_softmax_is_bit_exact(exported, runtime: str) -> None:
    target, runner = RUNNERS[runtime]
    payload, graph = exported[target]
    softmaxes = [op for op in graph.ops if op.op == "SOFTMAX"]
    assert len(softmaxes) == len(SOFTMAXES)
    assert all(graph.tensors[op.inputs[0]].dtype == "int8" for op in softmaxes)
    rules = rules_for(load_profile(runtime))
    samples, codes = _samples(graph)
    for feeds, expected, got in zip(samples, codes, runner(payload, samples), strict=True):
        emulated = emulate(graph, feeds, rules)
        for tensor, value in expected.items():  # the near-tie codes reach the softmaxes
            np.testing.assert_array_equal(emulated[tensor], value)
        for index, output in enumerate(graph.outputs):
            np.testing.assert_array_equal(got[index], emulated[output], err_msg=f"{runtime}, softmax {index}")
