"""``--io int8``: the .tflite's float inputs and outputs become int8 codes on their planned grids (no QUANTIZE /
DEQUANTIZE at the boundary), as MCU and NPU pipelines feed them.

- The input and output tensors are int8 with exactly the grid the record plans for those values (and lists in
  ``tflite.io``); the float I/O model of the same plan has float32 ones.
- Fed the codes a caller computes (round half away from zero, as TFLite's QUANTIZE does; written here in numpy),
  LiteRT (XNNPACK and reference kernels) and TFLite Micro give the float I/O model's output codes.
- ``profile-device`` feeds float data to either model: it quantizes and dequantizes at the boundary, so both give
  the same SQNR and the emulator stays bit-exact.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edgeact
from edgeact.graph.tflite_import import read_tflite
from edgeact.profiler.profile import profile_device
from edgeact.runtimes.litert import LiteRTKernels, run_litert_many
from edgeact.runtimes.tflm import run_tflm_many

DIGITS = Path(__file__).resolve().parents[1] / "examples" / "digits"
CASES = [("cnn_silu", "litert"), ("mlp_tanh", "tflm"), ("transformer_gelu", "litert")]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[tuple[str, str, str], edgeact.QuantizeResult]:  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("io")
    return {(name, target, io): edgeact.quantize(DIGITS / f"{name}.onnx", DIGITS / f"{name}.calib.npz",
                                                 formats=["tflite"], target=target, io=io,
                                                 output_dir=out / f"{name}_{target}_{io}")
            for name, target in CASES for io in ("float", "int8")}


def _codes(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    scaled = x.astype(np.float64) / scale
    return np.clip(np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) + zero_point, -128, 127).astype(np.int8)


@pytest.mark.parametrize(("name", "target"), CASES)
def test_inputs_and_outputs_are_int8_on_their_planned_grids(models, name: str, target: str) -> None:
    result = models[name, target, "int8"]
    graph = read_tflite(result.paths["tflite"].read_bytes())
    io = result.record["tflite"]["io"]
    for index in (*graph.inputs, *graph.outputs):
        tensor = graph.tensors[index]
        planned = result.record["tensors"][tensor.name]
        assert tensor.dtype == "int8" and io[tensor.name]["dtype"] == "int8"
        assert (tensor.quant.scale, tensor.quant.zero_point) == (planned["scale"], planned["zero_point"])
        assert (io[tensor.name]["scale"], io[tensor.name]["zero_point"]) == (planned["scale"], planned["zero_point"])
    assert not any(op.op in ("QUANTIZE", "DEQUANTIZE") and set(op.inputs) & set(graph.inputs) for op in graph.ops)
    floating = read_tflite(models[name, target, "float"].paths["tflite"].read_bytes())
    assert {floating.tensors[i].dtype for i in (*floating.inputs, *floating.outputs)} == {"float32"}
    assert models[name, target, "float"].record["tensors"] == result.record["tensors"]  # one plan


@pytest.mark.parametrize(("name", "target"), CASES)
def test_every_runtime_gives_the_float_io_models_codes(models, name: str, target: str) -> None:
    coded, floating = models[name, target, "int8"], models[name, target, "float"]
    io = coded.record["tflite"]["io"]
    data = np.load(DIGITS / f"{name}.eval.npz")
    inputs = [n for n, entry in io.items() if entry["role"] == "input"]
    (output,) = [n for n, entry in io.items() if entry["role"] == "output"]
    samples = [[data[n][i : i + 1] for n in inputs] for i in range(48)]
    fed = [[_codes(x, io[n]["scale"], io[n]["zero_point"]) for n, x in zip(inputs, sample, strict=True)]
           for sample in samples]
    scale, zero = io[output]["scale"], io[output]["zero_point"]
    runs = {"xnnpack": (LiteRTKernels.XNNPACK, run_litert_many), "reference": (LiteRTKernels.REFERENCE,
                                                                               run_litert_many)}
    for label, (kernels, run) in runs.items():
        got = np.concatenate([o[0] for o in run(coded.paths["tflite"].read_bytes(), fed, kernels)])
        want = np.concatenate([o[0] for o in run(floating.paths["tflite"].read_bytes(), samples, kernels)])
        assert got.dtype == np.int8
        want_codes = _codes(want, scale, zero)
        assert np.mean(got == want_codes) >= 0.99 and np.max(np.abs(got.astype(int) - want_codes)) <= 1, label
    if target == "tflm":  # TFLite Micro runs it, with LiteRT's reference kernels' codes
        micro = np.concatenate([o[0] for o in run_tflm_many(coded.paths["tflite"].read_bytes(), fed)])
        reference = np.concatenate([o[0] for o in run_litert_many(coded.paths["tflite"].read_bytes(), fed,
                                                                 LiteRTKernels.REFERENCE)])
        assert micro.dtype == np.int8
        np.testing.assert_array_equal(micro, reference)


@pytest.mark.parametrize(("name", "target"), CASES)
def test_profile_device_feeds_int8_inputs_and_reads_int8_outputs(models, name: str, target: str) -> None:
    device = "litert-xnnpack" if target == "litert" else "tflm"
    reports = {io: profile_device(models[name, target, io].paths["tflite"], device, DIGITS / f"{name}.onnx",
                                  DIGITS / f"{name}.eval.npz", max_samples=48) for io in ("float", "int8")}
    (coded,), (floating,) = reports["int8"]["outputs"].values(), reports["float"]["outputs"].values()
    assert coded["emulator"]["equal_codes"] == 1.0
    assert abs(coded["sqnr_db"] - floating["sqnr_db"]) < 0.1 and coded["sqnr_db"] > 25


def test_the_summary_gives_the_grids_and_io_without_a_tflite_is_ignored(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "edgeact.cli", "quantize", str(DIGITS / "mlp_tanh.onnx"), "--calib",
                          str(DIGITS / "mlp_tanh.calib.npz"), "--format", "tflite", "--io", "int8", "-o",
                          str(tmp_path / "a")], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "tflite int8 input x: code = round(x / 0.00392157) - 128 (ties away from zero" in run.stdout
    assert "tflite int8 output logits: code = round(x / " in run.stdout
    run = subprocess.run([sys.executable, "-m", "edgeact.cli", "quantize", str(DIGITS / "mlp_tanh.onnx"), "--calib",
                          str(DIGITS / "mlp_tanh.calib.npz"), "--format", "onnx-qdq", "--io", "int8", "-o",
                          str(tmp_path / "b")], capture_output=True, text=True, check=False)
    assert run.returncode == 0 and "--io" in run.stderr and "ignored" in run.stderr, run.stderr


def test_an_input_or_output_without_an_int8_grid_stays_float_with_a_warning(tmp_path: Path) -> None:
    result = edgeact.quantize(DIGITS / "mlp_tanh.onnx", DIGITS / "mlp_tanh.calib.npz", formats=["tflite"], io="int8",
                              exclude=["Gemm"], output_dir=tmp_path)
    io = result.record["tflite"]["io"]
    assert io["x"]["dtype"] == io["logits"]["dtype"] == "float32"
    for role, name in (("input", "x"), ("output", "logits")):
        assert any(f"--io int8, but {role} {name!r} stays float32: the plan gives it no int8 grid" in warning
                   for warning in result.record["warnings"]), result.record["warnings"]
