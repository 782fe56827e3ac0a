"""edgeact drift: the calibration's own distribution fits (exit 0), the same data scaled x3 does not (exit 3);
the numbers are parsed back from OpenMetrics; saved statistics give what streaming the calibration data gives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from edgeact.cli import main

DIGITS = Path(__file__).resolve().parents[1] / "examples" / "digits"
MODEL, CALIB, EVAL = (DIGITS / f"mlp_tanh{suffix}" for suffix in (".onnx", ".calib.npz", ".eval.npz"))


def invoke(*args: object):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("drift")
    assert invoke("quantize", MODEL, "--calib", CALIB, "--format", "onnx-qdq", "-o", out).exit_code == 0
    data = np.load(EVAL)
    np.savez(out / "scaled.npz", **{name: data[name] * 3.0 for name in data.files})
    return out


def test_same_distribution_fits_and_scaled_data_drifts(world: Path) -> None:
    record = world / "mlp_tanh.calibration.json"
    fits = invoke("drift", MODEL, "--record", record, "--data", EVAL, "--calib", CALIB, "--json", world / "ok.json")
    assert fits.exit_code == 0, fits.output
    assert "fits the calibration" in fits.output and json.loads((world / "ok.json").read_text())["drifted"] is False
    moved = invoke("drift", MODEL, "--record", record, "--data", world / "scaled.npz", "--calib", CALIB,
                   "--metrics", world / "scaled.prom", "--json", world / "scaled.json")
    assert moved.exit_code == 3, moved.output
    assert "beyond its grid" in moved.output and "PSI" in moved.output and "DRIFTED" in moved.output
    samples = {(s.name, s.labels.get("tensor", s.labels.get("activation"))): s.value
               for f in text_string_to_metric_families((world / "scaled.prom").read_text()) for s in f.samples}
    report = json.loads((world / "scaled.json").read_text())
    assert samples[("edgeact_drifted", None)] == 1.0
    for tensor in report["tensors"]:
        assert samples[("edgeact_clipped_ratio", tensor["tensor"])] == pytest.approx(tensor["clipped"])
        assert samples[("edgeact_drift_psi", tensor["tensor"])] == pytest.approx(tensor["psi"])
        assert samples[("edgeact_nonfinite_total", tensor["tensor"])] == 0
    x = next(t for t in report["tensors"] if t["tensor"] == "x")  # inputs in [0, 1]: x3 leaves two thirds outside
    assert x["calibration_clipped"] == 0.0 and x["clipped"] > 0.3 and x["psi"] > 0.25
    assert any(a["saturation"] > a["calibration_saturation"] + 0.05 for a in report["activations"])


def test_saved_statistics_give_nearly_the_same_report(world: Path) -> None:
    """--calib counts the calibration data exactly; --stats reads its shares off the saved histograms: the same
    tensors drift."""
    assert invoke("calibrate", MODEL, "--calib", CALIB, "--stats-out", world / "calib.stats.json").exit_code == 0
    record = world / "mlp_tanh.calibration.json"
    streamed = invoke("drift", MODEL, "--record", record, "--data", world / "scaled.npz", "--calib", CALIB,
                      "--json", world / "a.json")
    saved = invoke("drift", MODEL, "--record", record, "--data", world / "scaled.npz", "--stats",
                   world / "calib.stats.json", "--json", world / "b.json")
    assert streamed.exit_code == saved.exit_code == 3
    exact, read = (json.loads((world / f"{n}.json").read_text()) for n in "ab")
    for a, b in zip(exact["tensors"], read["tensors"], strict=True):
        assert a["tensor"] == b["tensor"] and a["clipped"] == b["clipped"]  # the new data: counted exactly both times
        assert abs(a["calibration_clipped"] - b["calibration_clipped"]) < 0.01
    assert {f.split(":")[0] for f in exact["findings"]} == {f.split(":")[0] for f in read["findings"]}


def test_one_outlier_is_no_drift_and_a_nan_sample_is_a_finding(world: Path) -> None:
    """One value of 1000 among 32,000 in [0, 1] would coarsen a histogram's bins; the counts are exact."""
    data = dict(np.load(EVAL))
    spike = data["x"].copy()
    spike[0, 0] = 1000.0
    np.savez(world / "spike.npz", x=spike)
    record = world / "mlp_tanh.calibration.json"
    fits = invoke("drift", MODEL, "--record", record, "--data", world / "spike.npz", "--calib", CALIB)
    assert fits.exit_code == 0, fits.output
    broken = spike.copy()
    broken[3, 0] = np.nan
    np.savez(world / "nan.npz", x=broken)
    nan = invoke("drift", MODEL, "--record", record, "--data", world / "nan.npz", "--calib", CALIB)
    assert nan.exit_code == 3 and "1 new sample(s) hold NaN/Inf inputs" in nan.output, nan.output


def test_bad_input_is_a_clear_error(world: Path, tmp_path: Path) -> None:
    record = world / "mlp_tanh.calibration.json"
    missing = invoke("drift", MODEL, "--record", record, "--data", EVAL)
    assert missing.exit_code == 2 and "--calib" in missing.output
    other = invoke("drift", DIGITS / "cnn_silu.onnx", "--record", record, "--data", DIGITS / "cnn_silu.eval.npz",
                   "--calib", DIGITS / "cnn_silu.calib.npz")
    assert other.exit_code == 1 and "another model" in other.output and "Traceback" not in other.output
    (tmp_path / "r.json").write_text("{}")
    broken = invoke("drift", MODEL, "--record", tmp_path / "r.json", "--data", EVAL, "--calib", CALIB)
    assert broken.exit_code == 1 and "not a usable calibration record" in broken.output
    inputs = invoke("drift", MODEL, "--record", record, "--data", EVAL, "--calib", CALIB, "--json", CALIB)
    assert inputs.exit_code != 0 and np.load(CALIB).files  # never overwrites an input


def test_a_relu_folded_into_its_producers_grid_is_no_drift(tmp_path: Path) -> None:
    """A linear layer's grid clamps to the ReLU after it: half its float input lies below the grid on purpose.
    Drift measures the ReLU's output on that grid instead; the calibration's own distribution fits (with saved
    statistics too, where the calibration's share is read off histograms)."""
    import onnx

    from examples import onnx_models

    model = onnx_models.detector_head()
    onnx.save(model, tmp_path / "head.onnx")
    np.savez(tmp_path / "calib.npz", **onnx_models.sample_inputs(model, 256, seed=1))
    np.savez(tmp_path / "eval.npz", **onnx_models.sample_inputs(model, 256, seed=2))
    assert invoke("quantize", tmp_path / "head.onnx", "--calib", tmp_path / "calib.npz", "--format", "onnx-qdq",
                  "-o", tmp_path).exit_code == 0
    assert invoke("calibrate", tmp_path / "head.onnx", "--calib", tmp_path / "calib.npz", "--stats-out",
                  tmp_path / "s.json").exit_code == 0
    relu = next(n for n in model.graph.node if n.op_type == "Relu")
    for source in (["--calib", tmp_path / "calib.npz"], ["--stats", tmp_path / "s.json"]):
        result = invoke("drift", tmp_path / "head.onnx", "--record", tmp_path / "head.calibration.json", "--data",
                        tmp_path / "eval.npz", *source, "--json", tmp_path / "d.json")
        assert result.exit_code == 0, result.output
        tensors = {t["tensor"] for t in json.loads((tmp_path / "d.json").read_text())["tensors"]}
        assert relu.input[0] not in tensors and relu.output[0] in tensors, tensors
