"""--metrics on profile-device and gate: OpenMetrics text that prometheus_client's parser accepts, carrying the
report's own numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client.openmetrics.parser import text_string_to_metric_families

import edgeact
from edgeact.cli import main

DIGITS = Path(__file__).resolve().parents[1] / "examples" / "digits"


def _samples(path: Path) -> dict[tuple[str, tuple], float]:
    """Every sample of the file, parsed strictly (a malformed file raises): (name, sorted labels) -> value."""
    families = list(text_string_to_metric_families(path.read_text()))
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("metrics")
    model = edgeact.quantize(DIGITS / "mlp_tanh.onnx", DIGITS / "mlp_tanh.calib.npz", formats=["tflite"],
                             output_dir=out).paths["tflite"]
    result = CliRunner().invoke(main, ["profile-device", str(model), "--device", "litert-reference", "--baseline",
                                       str(DIGITS / "mlp_tanh.onnx"), "--data", str(DIGITS / "mlp_tanh.eval.npz"),
                                       "--max-samples", "32", "--per-layer", "--json", str(out / "r.json"),
                                       "--metrics", str(out / "r.prom")])
    assert result.exit_code == 0, result.output
    return out


def test_profile_device_metrics_parse_and_carry_the_reports_numbers(profiled) -> None:  # type: ignore[no-untyped-def]
    report = json.loads((profiled / "r.json").read_text())
    samples = _samples(profiled / "r.prom")
    base = (("device", "litert-reference"), ("model", "mlp_tanh.int8.tflite"))
    assert samples[("edgeact_sqnr_db", (*base, ("output", "logits")))] == pytest.approx(
        report["outputs"]["logits"]["sqnr_db"])
    assert samples[("edgeact_nonfinite_total", (("device", "litert-reference"), ("kind", "nan"),
                                                ("model", "mlp_tanh.int8.tflite"), ("output", "logits")))] == 0
    saturation = {dict(labels)["activation"]: value for (name, labels), value in samples.items()
                  if name == "edgeact_saturation_ratio"}
    assert saturation == pytest.approx({a["node"]: a["saturation_rate"] for a in report["activations"]})
    layers = [name for name, _ in samples if name == "edgeact_layer_sqnr_db"]
    assert len(layers) == len([layer for layer in report["layers"] if layer["sqnr_db"] is not None])
    latency = {dict(labels)["quantile"]: value for (name, labels), value in samples.items()
               if name == "edgeact_latency_seconds"}  # base units, as Prometheus names them
    assert latency == pytest.approx({"0.5": report["latency_ms"]["median"] / 1000,
                                     "0.95": report["latency_ms"]["p95"] / 1000})
    assert (profiled / "r.prom").read_text().endswith("# EOF\n")


def test_gate_metrics_say_pass_or_fail(profiled, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    better = json.loads((profiled / "r.json").read_text())
    better["outputs"]["logits"]["sqnr_db"] += 3.0
    (tmp_path / "better.json").write_text(json.dumps(better))
    for baseline, code, passed in ((profiled / "r.json", 0, 1.0), (tmp_path / "better.json", 3, 0.0)):
        prom = tmp_path / f"gate{code}.prom"
        result = CliRunner().invoke(main, ["gate", str(profiled / "r.json"), "--baseline", str(baseline),
                                           "--metrics", str(prom)])
        assert result.exit_code == code, result.output
        verdict = [v for (name, _), v in _samples(prom).items() if name == "edgeact_gate_passed"]
        assert verdict == [passed]
    api = edgeact.gate(profiled / "r.json", tmp_path / "better.json", metrics_path=tmp_path / "api.prom")
    assert not api.passed and [v for (n, _), v in _samples(tmp_path / "api.prom").items()
                               if n == "edgeact_gate_passed"] == [0.0]


def test_label_values_are_escaped() -> None:
    from edgeact.reports.openmetrics import document, family
    text = document([family("edgeact_x", "gauge", "x", [({"tensor": 'a "b" \\ c\nd'}, float("inf"))])])
    (sample,) = [s for f in text_string_to_metric_families(text) for s in f.samples]
    assert sample.labels == {"tensor": 'a "b" \\ c\nd'} and sample.value == float("inf")
