"""`edgeact profile-device` on real runtimes and emulated devices: agreement with the emulator, a planted TFLite Micro
TANH hazard, a deliberately badly quantized layer found by the per-layer numbers, reports, and bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import helper

import edgeact
from edgeact.cli import main
from edgeact.exporters.tflite.writer import serialise
from edgeact.numerics import QParams
from edgeact.profiler.profile import profile_device
from edgeact.tflite.graph import LoweredGraph
from examples import onnx_models

DIGITS = Path(__file__).parents[1] / "examples" / "digits"
MODEL, CALIB, EVAL = (DIGITS / f"transformer_gelu{suffix}" for suffix in (".onnx", ".calib.npz", ".eval.npz"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("profile")
    litert = edgeact.quantize(MODEL, CALIB, output_dir=folder / "litert", formats=["onnx-qdq", "tflite"])
    tflm = edgeact.quantize(MODEL, CALIB, output_dir=folder / "tflm", formats=["tflite"], target="tflm")
    return {"litert": litert.paths["tflite"], "tflm": tflm.paths["tflite"], "onnx": litert.paths["onnx-qdq"]}


@pytest.mark.parametrize("device, model", [
    ("litert-xnnpack", "litert"), ("litert-reference", "litert"), ("tflm", "tflm"), ("npu-table", "litert"),
    ("cmsis-nn", "tflm"),
])
def test_device_agrees_with_the_emulator(exported, device: str, model: str) -> None:
    report = profile_device(exported[model], device, MODEL, EVAL, per_layer=True, max_samples=64, latency_runs=5)
    output = report["outputs"]["logits"]
    assert output["emulator"]["max_lsb"] <= 1 and output["emulator"]["equal_codes"] >= 0.99
    if device != "litert-reference":  # float islands (LayerNorm) differ by ulps from LiteRT's float kernels
        assert output["emulator"]["equal_codes"] == 1.0
    for layer in report["layers"]:
        if "max_lsb" in layer:
            assert layer["max_lsb"] <= 1, layer
    assert output["sqnr_db"] > 30 and output["top1_agreement"] > 0.95
    assert report["activations"] and report["activations"][0]["function"] == "gelu"


def test_onnxruntime_agrees_with_the_onnx_reference_evaluator(exported) -> None:
    """onnxruntime's fused int8 kernels against the ONNX reference evaluator on the same QDQ model: identical output
    codes; per layer (each layer re-run by the evaluator on onnxruntime's own inputs) within 1 step."""
    report = profile_device(exported["onnx"], "onnxruntime-cpu", MODEL, EVAL, per_layer=True, max_samples=64,
                            latency_runs=5)
    output = report["outputs"]["logits"]
    assert output["emulator"]["equal_codes"] == 1.0 and output["sqnr_db"] > 30
    assert report["layers"] and max(layer["max_lsb"] for layer in report["layers"]) <= 1
    assert min(layer["equal_codes"] for layer in report["layers"]) > 0.99
    assert report["latency_ms"]["median"] > 0


def _planted_tanh(tmp_path: Path) -> tuple[Path, Path, Path]:
    """x -> QUANTIZE -> TANH (output grid 1/64, which TFLite Micro ignores) -> DEQUANTIZE -> y, with its baseline."""
    graph = LoweredGraph()
    x = graph.tensor("x", (1, 64), "float32")
    xq = graph.tensor("x/int8", (1, 64), "int8", QParams(4.0 / 128, 0))
    yq = graph.tensor("y/int8", (1, 64), "int8", QParams(1.0 / 64, 0))
    y = graph.tensor("y", (1, 64), "float32")
    graph.op("QUANTIZE", [x], [xq], "q")
    graph.op("TANH", [xq], [yq], "tanh")
    graph.op("DEQUANTIZE", [yq], [y], "dq")
    graph.inputs, graph.outputs = [x], [y]
    model = tmp_path / "planted.int8.tflite"
    model.write_bytes(serialise(graph, {}, "planted"))
    baseline = helper.make_model(helper.make_graph([helper.make_node("Tanh", ["x"], ["y"])], "g",
                                                   [onnx_models.tensor("x", [1, 64])],
                                                   [onnx_models.tensor("y", [1, 64])]),
                                 opset_imports=[helper.make_opsetid("", 13)])
    baseline.ir_version = 8
    onnx.save(baseline, tmp_path / "tanh.onnx")
    np.savez(tmp_path / "eval.npz", x=np.random.default_rng(0).normal(0, 1.5, (16, 64)).astype(np.float32))
    return model, tmp_path / "tanh.onnx", tmp_path / "eval.npz"


def test_planted_tanh_output_scale_is_flagged_on_tflite_micro(tmp_path: Path) -> None:
    model, baseline, data = _planted_tanh(tmp_path)
    report = profile_device(model, "tflm", baseline, data, latency_runs=3)
    (hazard,) = [h for h in report["hazards"] if h["op"] == "TANH"]
    assert hazard["status"] == "wrong_silently" and "ignores" in hazard["reason"]
    assert report["outputs"]["y"]["emulator"]["equal_codes"] < 0.5  # the device computed something else
    clean = profile_device(model, "litert-reference", baseline, data, latency_runs=3)
    assert clean["outputs"]["y"]["emulator"]["equal_codes"] == 1.0
    assert not [h for h in clean["hazards"] if h["op"] == "TANH"]


def test_per_layer_numbers_point_at_the_badly_quantized_layer(tmp_path: Path) -> None:
    """Statistics in which one tensor's range is 50x too wide (min/max ranges): that tensor's grid is 50x too
    coarse. The per-layer report must rank it worst."""
    model = onnx_models.mlp_tanh()
    onnx.save(model, tmp_path / "mlp.onnx")
    np.savez(tmp_path / "calib.npz", **onnx_models.sample_inputs(model, 64, seed=1))
    np.savez(tmp_path / "eval.npz", **onnx_models.sample_inputs(model, 32, seed=2))
    stats = edgeact.calibrate(tmp_path / "mlp.onnx", tmp_path / "calib.npz")
    adds = [n.output[0] for n in onnx.load(tmp_path / "mlp.onnx").graph.node if n.op_type == "Add"]
    damaged = adds[1]  # the second linear layer's output
    observed = stats.tensors[damaged]  # two outliers 50x beyond the range: a histogram that still holds min/max
    observed.observe(np.array([observed.min * 50.0, observed.max * 50.0]))
    stats.save(tmp_path / "stats.json")
    result = edgeact.quantize(tmp_path / "mlp.onnx", stats=[tmp_path / "stats.json"], output_dir=tmp_path / "out",
                              formats=["tflite"], method="minmax")
    report = profile_device(result.paths["tflite"], "litert-reference", tmp_path / "mlp.onnx", tmp_path / "eval.npz",
                            per_layer=True, latency_runs=3)
    ranked = sorted((layer for layer in report["layers"] if layer["sqnr_drop_db"] is not None),
                    key=lambda layer: -layer["sqnr_drop_db"])
    assert ranked[0]["tensor"] == damaged, [(layer["tensor"], layer["sqnr_drop_db"]) for layer in ranked]
    assert ranked[0]["sqnr_drop_db"] > 10 + max(layer["sqnr_drop_db"] for layer in ranked[1:])


def test_a_folded_relu_is_compared_after_the_relu(tmp_path: Path) -> None:
    """A linear layer's int8 output grid clamps to the Relu after it (the Relu is folded away): that tensor holds
    relu(x), so the per-layer report compares it with the float Relu output, not with x (whose negative half the
    grid drops on purpose, which read as a loss of ~20 dB before)."""
    model = onnx_models.detector_head()
    onnx.save(model, tmp_path / "head.onnx")
    np.savez(tmp_path / "calib.npz", **onnx_models.sample_inputs(model, 64, seed=1))
    np.savez(tmp_path / "eval.npz", **onnx_models.sample_inputs(model, 32, seed=2))
    result = edgeact.quantize(tmp_path / "head.onnx", tmp_path / "calib.npz", output_dir=tmp_path / "out",
                              formats=["tflite", "onnx-qdq"])
    relu = next(n for n in model.graph.node if n.op_type == "Relu")
    for form, device in (("tflite", "litert-reference"), ("onnx-qdq", "onnxruntime-cpu")):
        report = profile_device(result.paths[form], device, tmp_path / "head.onnx", tmp_path / "eval.npz",
                                per_layer=True, latency_runs=3)
        layers = {layer["tensor"]: layer for layer in report["layers"]}
        assert relu.input[0] not in layers, (form, sorted(layers))
        assert layers[relu.output[0]]["sqnr_db"] > 30, (form, layers[relu.output[0]])


def invoke(*args: object):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_writes_json_and_html(exported, tmp_path: Path) -> None:
    result = invoke("profile-device", exported["tflm"], "--device", "tflm", "--baseline", MODEL, "--data", EVAL,
                    "--per-layer", "--json", tmp_path / "r.json", "--html", tmp_path / "r.html", "--max-samples", 32,
                    "--latency-runs", 3)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["schema_version"] == 2 and report["device"]["name"] == "tflm" and report["samples"] == 32
    page = (tmp_path / "r.html").read_text()
    assert page.count("data:image/png;base64,") == 4  # per-layer SQNR, error histogram, transfer curve, saturation
    for title in ("Per-layer SQNR", "Error histogram: logits", "Transfer curve:", "Activation saturation"):
        assert title in page
    for shown in ("<th>NaN</th>", "<th>Inf</th>", "<th>emulator agreement</th>", "<p>Latency:", "<h2>Activations</h2>",
                  "<th>int8 floor</th>", "<h2>Layers</h2>", "<th>loses vs inputs dB</th>"):  # what the JSON holds
        assert shown in page, shown
    embedded = re.search(r'<script type="application/json" id="report">(.*?)</script>', page, flags=re.S).group(1)

    def strict(token: str) -> None:  # what a browser's JSON.parse refuses
        raise AssertionError(f"{token} in the page's JSON")

    assert json.loads(embedded, parse_constant=strict) == json.loads(json.dumps(report), parse_constant=strict)


@pytest.mark.parametrize("case, expected, code", [
    ("unknown-device", "known: cmsis-nn, litert-reference", 1),
    ("malformed-toml", "not valid TOML", 1),
    ("schema-version", "schema_version 1 is not supported", 1),
    ("wrong-format", "runs .tflite models", 2),
    ("unsupported-op", "cannot run", 2),
    ("data-mismatch", "missing ['x']", 1),
    ("baseline-mismatch", "the int8 model has inputs ['x']", 2),
])
def test_bad_input(exported, tmp_path: Path, case: str, expected: str, code: int) -> None:
    model, device, baseline, data = exported["tflm"], "tflm", MODEL, EVAL
    if case == "unknown-device":
        device = "abacus"
    elif case in ("malformed-toml", "schema-version"):
        device = tmp_path / "device.toml"
        device.write_text("name = [" if case == "malformed-toml" else 'schema_version = 1\nname = "old"\n')
    elif case == "wrong-format":
        model = exported["onnx"]
    elif case == "unsupported-op":  # the LiteRT export uses the GELU builtin, which TFLite Micro lacks
        model = exported["litert"]
    elif case == "data-mismatch":
        data = tmp_path / "bad.npz"
        np.savez(data, pixels=np.zeros((4, 8, 8), np.float32))
    else:
        onnx.save(onnx_models.mlp_tanh(), tmp_path / "other.onnx")
        baseline = tmp_path / "other.onnx"
    result = invoke("profile-device", model, "--device", device, "--baseline", baseline, "--data", data,
                    "--json", tmp_path / "report.json")
    assert result.exit_code == code, result.output
    assert expected in result.output
    assert not (tmp_path / "report.json").exists()


def test_profile_then_gate_in_one_step(exported, tmp_path: Path) -> None:
    common = ("profile-device", exported["tflm"], "--device", "tflm", "--baseline", MODEL, "--data", EVAL,
              "--max-samples", 32, "--latency-runs", 3, "--json")
    first = invoke(*common, tmp_path / "first.json")
    assert first.exit_code == 0, first.output
    assert invoke(*common, tmp_path / "again.json", "--gate", tmp_path / "first.json").exit_code == 0
    better = json.loads((tmp_path / "first.json").read_text())
    better["outputs"]["logits"]["sqnr_db"] += 3.0  # a baseline this model no longer reaches
    (tmp_path / "better.json").write_text(json.dumps(better))
    result = invoke(*common, tmp_path / "now.json", "--gate", tmp_path / "better.json")
    assert result.exit_code == 3 and "output logits: SQNR | **FAIL**" in result.output
