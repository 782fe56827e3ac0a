"""`edgeact quantize` / `edgeact calibrate` through click's CliRunner: outputs, determinism, shards, bad input.

Every bad input must give exit code 1 or 2, a message naming the file or tensor, and leave no output file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from edgeact.cli import main
from examples import onnx_models as builders


@pytest.fixture()
def mlp(tmp_path: Path) -> tuple[Path, Path]:
    model = builders.mlp_tanh()
    path = tmp_path / "mlp.onnx"
    onnx.save(model, path)
    np.savez(tmp_path / "calib.npz", **builders.sample_inputs(model, 48, seed=1))
    return path, tmp_path / "calib.npz"


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_quantize_writes_three_files_and_a_summary(mlp, tmp_path: Path) -> None:
    model, calib = mlp
    result = invoke("quantize", model, "--calib", calib, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["mlp.calibration.json", "mlp.int8.qdq.onnx", "mlp.int8.table.onnx"]
    assert "SQNR vs fp32" in result.output and "tanh" in result.output


@pytest.mark.parametrize("extra", [("--bias-correction",), ("--budget", "sqnr>=60", "--format", "onnx-qdq")])
def test_outputs_are_byte_identical_across_runs(mlp, tmp_path: Path, extra: tuple[str, ...]) -> None:
    """Bias correction and a budget's search included: no wall time or other run-to-run value in any file."""
    model, calib = mlp
    for folder in ("a", "b"):
        assert invoke("quantize", model, "--calib", calib, *extra, "-o", tmp_path / folder).exit_code == 0
    record = json.loads((tmp_path / "a" / "mlp.calibration.json").read_text())
    assert record["bias_correction"]["applied"] if extra == ("--bias-correction",) else record["budget"]["promotions"]
    for name in os.listdir(tmp_path / "a"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_sharded_stats_merge_like_one_calibration(mlp, tmp_path: Path) -> None:
    """Two shards calibrated apart and merged give the same minmax model as both shards at once."""
    model, _ = mlp
    data = builders.sample_inputs(onnx.load(model), 64, seed=3)
    shards = tmp_path / "shards"
    shards.mkdir()
    for index in range(2):
        np.savez(shards / f"s{index}.npz", x=data["x"][index * 32 : (index + 1) * 32])
        stats = tmp_path / f"s{index}.json"
        assert invoke("calibrate", model, "--calib", shards / f"s{index}.npz", "--stats-out", stats).exit_code == 0
    merged = invoke("quantize", model, "--stats", tmp_path / "s0.json", tmp_path / "s1.json", "--method", "minmax",
                    "--format", "onnx-qdq", "-o", tmp_path / "merged")
    whole = invoke("quantize", model, "--calib", shards, "--method", "minmax", "--format", "onnx-qdq",
                   "-o", tmp_path / "whole")
    assert merged.exit_code == 0 and whole.exit_code == 0, merged.output + whole.output
    assert (tmp_path / "merged/mlp.int8.qdq.onnx").read_bytes() == (tmp_path / "whole/mlp.int8.qdq.onnx").read_bytes()


def test_exclude_keeps_nodes_float(mlp, tmp_path: Path) -> None:
    model, calib = mlp
    result = invoke("quantize", model, "--calib", calib, "--exclude", "Tanh", "-o", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    assert '"excluded by --exclude"' in result.output
    assert "Tanh" in {n.op_type for n in onnx.load(tmp_path / "out/mlp.int8.table.onnx").graph.node}


def test_skip_bad_samples_counts_them(mlp, tmp_path: Path) -> None:
    model, _ = mlp
    data = builders.sample_inputs(onnx.load(model), 16, seed=1)
    data["x"][3, 0] = np.nan
    np.savez(tmp_path / "bad.npz", **data)
    result = invoke("quantize", model, "--calib", tmp_path / "bad.npz", "--skip-bad-samples", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "(1 skipped)" in result.output


def _truncated(path: Path, tmp: Path) -> Path:
    out = tmp / "truncated.onnx"
    out.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    return out


def _checker_failure(path: Path, tmp: Path) -> Path:
    model = onnx.load(path)
    model.graph.node[0].input[0] = "no_such_tensor"
    out = tmp / "broken.onnx"
    out.write_bytes(model.SerializeToString())
    return out


def _escaping_external_data(path: Path, tmp: Path) -> Path:
    model = onnx.load(path)
    weight = model.graph.initializer[0]
    weight.data_location = onnx.TensorProto.EXTERNAL
    weight.ClearField("raw_data")
    weight.ClearField("float_data")
    entry = weight.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    out = tmp / "escaping.onnx"
    out.write_bytes(model.SerializeToString())
    return out


def _not_onnx(path: Path, tmp: Path) -> Path:
    out = tmp / "notes.onnx"
    out.write_text("this is a text file, not a model\n")
    return out


@pytest.mark.parametrize(
    "make_model, expected",
    [
        (_not_onnx, "not an ONNX model"),
        (_truncated, "truncated.onnx"),
        (_checker_failure, "onnx.checker rejects"),
        (_escaping_external_data, "outside the model's folder"),
    ],
    ids=["not-onnx", "truncated", "checker", "external-data-escape"],
)
def test_bad_model_files(mlp, tmp_path: Path, make_model, expected: str) -> None:
    model, calib = mlp
    bad = make_model(model, tmp_path)
    result = invoke("quantize", bad, "--calib", calib, "-o", tmp_path / "out")
    assert result.exit_code in (1, 2), result.output
    assert expected in result.output and bad.name in result.output
    assert not (tmp_path / "out").exists()


def _data(tmp: Path, **arrays) -> Path:
    path = tmp / "data.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "arrays, expected",
    [
        ({"input": np.zeros((4, 16), np.float32)}, "missing ['x'], unexpected ['input']"),
        ({"x": np.zeros((4, 16), np.float32), "extra": np.zeros(3)}, "unexpected ['extra']"),
        ({"x": np.zeros((64,), np.float32)}, "input 'x': expected rank 2"),
        ({"x": np.zeros((4, 16), np.float64)}, "input 'x': expected dtype float32, got float64"),
        ({"x": np.zeros((4, 15), np.float32)}, "input 'x': axis 1 must be 16"),
        ({"x": np.array([[0.0] * 16, [np.nan] * 16], np.float32)}, "sample 1 contains NaN or Inf"),
    ],
    ids=["keys-missing", "keys-extra", "rank", "dtype", "shape", "nan"],
)
def test_bad_calibration_data(mlp, tmp_path: Path, arrays: dict, expected: str) -> None:
    model, _ = mlp
    data = _data(tmp_path, **arrays)
    result = invoke("quantize", model, "--calib", data, "-o", tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert expected in result.output and "data.npz" in result.output
    assert not (tmp_path / "out").exists()


def test_empty_data_folder(mlp, tmp_path: Path) -> None:
    model, _ = mlp
    (tmp_path / "empty").mkdir()
    result = invoke("quantize", model, "--calib", tmp_path / "empty", "-o", tmp_path / "out")
    assert result.exit_code == 1 and "no .npz files" in result.output and "empty" in result.output


def test_output_folder_not_writable(mlp, tmp_path: Path) -> None:
    """-o under a regular file cannot be created (works as root too, unlike a chmod'ed folder)."""
    model, calib = mlp
    blocker = tmp_path / "blocker.txt"
    blocker.write_text("a file, not a folder\n")
    result = invoke("quantize", model, "--calib", calib, "-o", blocker / "out")
    assert result.exit_code == 1 and "blocker.txt" in result.output and "cannot be created" in result.output
    assert blocker.read_text() == "a file, not a folder\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker.txt", "calib.npz", "mlp.onnx"]


@pytest.mark.parametrize("target", ["model", "calib"])
def test_stats_output_equal_to_an_input_is_refused(mlp, target: str) -> None:
    model, calib = mlp
    victim = model if target == "model" else calib
    before = victim.read_bytes()
    result = invoke("calibrate", model, "--calib", calib, "--stats-out", victim)
    assert result.exit_code == 2 and "would overwrite the input" in result.output
    assert victim.read_bytes() == before


def test_plots_draw_one_map_per_activation(mlp, tmp_path: Path) -> None:
    model, calib = mlp
    result = invoke("quantize", model, "--calib", calib, "-o", tmp_path / "out", "--plots")
    assert result.exit_code == 0, result.output
    pngs = sorted((tmp_path / "out" / "mlp.plots").glob("*.png"))
    assert len(pngs) == 2 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_help_teaches_with_examples() -> None:
    for command in ("quantize", "calibrate"):
        text = invoke(command, "--help").output
        assert "Examples:" in text and "edgeact " + command in text


def test_exclude_by_activation_name_and_unmatched_entries_are_reported(mlp, tmp_path: Path) -> None:
    model, calib = mlp
    result = invoke("quantize", model, "--calib", calib, "--exclude", "tanh", "Tnah", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert result.output.count("excluded by --exclude") == 2
    assert "--exclude 'Tnah' matched no node" in result.output


def test_per_tensor_weights_have_one_scale(mlp, tmp_path: Path) -> None:
    import json

    model, calib = mlp
    assert invoke("quantize", model, "--calib", calib, "--per-tensor", "-o", tmp_path / "out").exit_code == 0
    record = json.loads((tmp_path / "out" / "mlp.calibration.json").read_text())
    weights = [c for c in record["constants"] if c["role"] == "weight"]
    assert weights and all("scale" in c and "scales" not in c for c in weights)


def test_api_accepts_a_model_proto(tmp_path: Path) -> None:
    import edgeact

    model = builders.mlp_tanh()
    np.savez(tmp_path / "calib.npz", **builders.sample_inputs(model, 16, seed=1))
    result = edgeact.quantize(model, tmp_path / "calib.npz", output_dir=tmp_path, formats=["onnx-table"])
    assert result.paths["onnx-table"].name == "model.int8.table.onnx" and result.paths["onnx-table"].exists()


def test_stats_from_another_model_are_refused(mlp, tmp_path: Path) -> None:
    model, calib = mlp
    other = tmp_path / "other.onnx"
    onnx.save(builders.mlp_tanh(seed=5), other)
    assert invoke("calibrate", other, "--calib", calib, "--stats-out", tmp_path / "other.json").exit_code == 0
    result = invoke("quantize", model, "--stats", tmp_path / "other.json", "-o", tmp_path / "out")
    assert result.exit_code == 1 and "other.json" in result.output and "different model" in result.output
    assert not (tmp_path / "out").exists()


def test_options_this_run_does_not_use_are_warned_about(mlp, tmp_path: Path) -> None:
    """Before, --target without a TFLite output and --batch-size with --stats only were silently ignored."""
    model, calib = mlp
    result = invoke("quantize", model, "--calib", calib, "--format", "onnx-qdq", "--target", "tflm",
                    "-o", tmp_path / "a")
    assert result.exit_code == 0, result.output
    assert "warning: --target is ignored" in result.output
    assert invoke("calibrate", model, "--calib", calib, "--stats-out", tmp_path / "s.json").exit_code == 0
    result = invoke("quantize", model, "--stats", tmp_path / "s.json", "--batch-size", "4", "--format", "onnx-qdq",
                    "-o", tmp_path / "b")
    assert result.exit_code == 0, result.output
    assert "warning: --batch-size is ignored" in result.output
    quiet = invoke("quantize", model, "--calib", calib, "--format", "tflite", "--target", "tflm", "-o", tmp_path / "c")
    assert quiet.exit_code == 0 and "warning" not in quiet.output
