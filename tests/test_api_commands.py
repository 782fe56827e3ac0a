"""The Python API mirrors the CLI: edgeact.profile_device and edgeact.gate on a real LiteRT run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import edgeact
from edgeact.errors import GateInputError, UsageError

DIGITS = Path(__file__).resolve().parents[1] / "examples" / "digits"


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("api")
    written = edgeact.quantize(DIGITS / "mlp_tanh.onnx", DIGITS / "mlp_tanh.calib.npz", formats=["tflite"],
                               output_dir=out)
    report = edgeact.profile_device(written.paths["tflite"], "litert-reference", DIGITS / "mlp_tanh.onnx",
                                    DIGITS / "mlp_tanh.eval.npz", max_samples=32, latency_runs=3,
                                    json_path=out / "report.json", html_path=out / "report.html")
    return out, report


def test_profile_device_returns_the_report_and_writes_both_files(profiled) -> None:  # type: ignore[no-untyped-def]
    out, report = profiled
    assert report.device.name == "litert-reference" and report.samples == 32
    assert report.outputs["logits"].sqnr_db > 30.0
    assert json.loads((out / "report.json").read_text())["outputs"]["logits"]["sqnr_db"] == pytest.approx(
        report.outputs["logits"].sqnr_db)
    assert (out / "report.html").read_text().startswith("<!doctype html>")


def test_gate_takes_reports_or_paths_and_fails_a_worse_one(profiled, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out, report = profiled
    assert edgeact.gate(report, out / "report.json").passed
    better = json.loads((out / "report.json").read_text())
    better["outputs"]["logits"]["sqnr_db"] += 3.0  # a baseline 3 dB better: this report dropped 3 dB
    (tmp_path / "better.json").write_text(json.dumps(better))
    result = edgeact.gate(report, tmp_path / "better.json")
    assert not result.passed and [check.name for check in result.failures] == ["output logits: SQNR"]
    assert edgeact.gate(report, tmp_path / "better.json", max_sqnr_drop=3.5).passed
    with pytest.raises(UsageError, match="max-sqnr-drop"):
        edgeact.gate(report, report, max_sqnr_drop="half a dB")
    with pytest.raises(GateInputError):
        edgeact.gate(report, tmp_path / "missing.json")


def test_profile_device_never_overwrites_its_inputs(tmp_path: Path) -> None:
    before = (DIGITS / "mlp_tanh.eval.npz").read_bytes()
    with pytest.raises(UsageError):
        edgeact.profile_device(DIGITS / "mlp_tanh.onnx", "onnxruntime-cpu", DIGITS / "mlp_tanh.onnx",
                               DIGITS / "mlp_tanh.eval.npz", json_path=DIGITS / "mlp_tanh.eval.npz")
    assert (DIGITS / "mlp_tanh.eval.npz").read_bytes() == before


def test_quantize_without_an_output_dir_writes_nothing_and_returns_the_files(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    kept = edgeact.quantize(DIGITS / "mlp_tanh.onnx", DIGITS / "mlp_tanh.calib.npz", formats=["onnx-qdq", "tflite"])
    assert list(tmp_path.iterdir()) == [] and kept.paths == {}
    assert set(kept.files) == {"onnx-qdq", "tflite", "record"}
    written = edgeact.quantize(DIGITS / "mlp_tanh.onnx", DIGITS / "mlp_tanh.calib.npz", formats=["onnx-qdq", "tflite"],
                               output_dir=tmp_path / "out")
    for form, path in written.paths.items():  # byte for byte what the same call writes
        assert kept.files[form] == path.read_bytes(), form
    assert json.loads(kept.files["record"]) == kept.record
    with pytest.raises(UsageError, match="output_dir"):
        edgeact.quantize(DIGITS / "mlp_tanh.onnx", DIGITS / "mlp_tanh.calib.npz", plots=True)


@pytest.mark.parametrize("device, form", [("litert-reference", "tflite"), ("onnxruntime-cpu", "onnx-qdq")])
def test_an_activation_input_clipped_on_purpose_is_judged_after_the_activation(tmp_path: Path, device: str,
                                                                              form: str) -> None:
    """The transformer's GELU input grid is clipped where GELU barely moves (11 dB as a tensor, ~31 dB after the
    GELU): the report says so and the console ranking leaves it out instead of calling it the worst layer."""
    from edgeact.profiler.report import summary_text
    written = edgeact.quantize(DIGITS / "transformer_gelu.onnx", DIGITS / "transformer_gelu.calib.npz",
                               formats=[form], output_dir=tmp_path)
    report = edgeact.profile_device(written.paths[form], device, DIGITS / "transformer_gelu.onnx",
                                    DIGITS / "transformer_gelu.eval.npz", per_layer=True, max_samples=16,
                                    latency_runs=1)
    gelu = next(a for a in written.record["activations"] if a["function"] == "gelu")
    layers = {layer.tensor: layer for layer in report.layers}
    clipped = layers[gelu["input"]]
    assert clipped.feeds_activation == gelu["node"]
    assert clipped.after_activation_sqnr_db == layers[gelu["output"]].sqnr_db
    assert clipped.sqnr_db < 20.0 < clipped.after_activation_sqnr_db  # a false alarm without the distinction
    text = summary_text(report)
    ranked = [line for line in text.splitlines() if line.startswith("  layer ")]
    assert ranked and not any(gelu["input"] in line for line in ranked)
    assert "activation input(s) not ranked" in text and gelu["input"] in text


def test_model_explorer_node_data_is_keyed_by_the_tflites_tensor_names(tmp_path: Path) -> None:
    """One GraphNodeData file per quantity (``results`` of ``{"value": number}`` by output tensor name, and a
    colour scale), keyed by the .tflite's own tensor names, which Model Explorer's TFLite adapter shows as each
    node's ``tensor_name`` (checked by hand with ai-edge-model-explorer-adapter 0.2.1: every key found)."""
    from edgeact.graph.tflite_import import read_tflite
    written = edgeact.quantize(DIGITS / "transformer_gelu.onnx", DIGITS / "transformer_gelu.calib.npz",
                               formats=["tflite"], output_dir=tmp_path)
    report = edgeact.profile_device(written.paths["tflite"], "litert-reference", DIGITS / "transformer_gelu.onnx",
                                    DIGITS / "transformer_gelu.eval.npz", per_layer=True, max_samples=16,
                                    latency_runs=1, model_explorer=tmp_path / "overlay.json")
    names = {t.name for t in read_tflite(written.paths["tflite"].read_bytes()).tensors}
    files = sorted(tmp_path.glob("overlay.*.json"))
    assert [f.name for f in files] == ["overlay.device_agreement.json", "overlay.precision_bits.json",
                                       "overlay.sqnr_db.json", "overlay.sqnr_drop_db.json"]
    for path in files:
        data = json.loads(path.read_text())
        assert set(data) <= {"results", "gradient", "thresholds"} and data["results"]
        assert set(data["results"]) <= names, path.name
        assert all(set(v) == {"value"} and isinstance(v["value"], float | int) for v in data["results"].values())
    sqnr = json.loads((tmp_path / "overlay.sqnr_db.json").read_text())["results"]
    by_name = {layer.device_tensor: layer.sqnr_db for layer in report.layers}
    assert all(entry["value"] == pytest.approx(min(by_name[name], 200.0), abs=1e-4) for name, entry in sqnr.items())
    with pytest.raises(UsageError, match="per_layer"):
        edgeact.profile_device(written.paths["tflite"], "litert-reference", DIGITS / "transformer_gelu.onnx",
                               DIGITS / "transformer_gelu.eval.npz", model_explorer=tmp_path / "x.json")


def test_api_gate_refuses_unknown_settings_and_outputs_onto_its_inputs(profiled) -> None:  # type: ignore[no-untyped-def]
    out, report = profiled
    before = (out / "report.json").read_bytes()
    with pytest.raises(UsageError, match="nonsense"):
        edgeact.gate(report, out / "report.json", nonsense=3)
    with pytest.raises(UsageError):
        edgeact.gate(out / "report.json", out / "report.json", metrics_path=out / "report.json")
    assert (out / "report.json").read_bytes() == before
    assert callable(edgeact.drift) and "drift" in edgeact.__all__
