"""`edgeact quantize --format tflite`: files, determinism, metadata and signature, clear refusals."""

from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path

import numpy as np
import onnx
from click.testing import CliRunner
from onnx import helper

from bench.ort_baseline import run as ort_run
from edgeact.cli import main
from edgeact.metrics import sqnr_db
from examples import onnx_models


def invoke(*args: object):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, [str(a) for a in args])


def _model(tmp_path: Path, model: onnx.ModelProto, name: str = "m") -> tuple[Path, Path]:
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, path)
    np.savez(tmp_path / "calib.npz", **onnx_models.sample_inputs(model, 32, seed=1))
    return path, tmp_path / "calib.npz"


def test_tflite_files_are_byte_identical_across_runs(tmp_path: Path) -> None:
    model, calib = _model(tmp_path, onnx_models.transformer_block("erf"))
    for folder in ("a", "b"):
        result = invoke("quantize", model, "--calib", calib, "--format", "tflite", "--float-tflite", "-o",
                        tmp_path / folder)
        assert result.exit_code == 0, result.output
    for name in ("m.int8.tflite", "m.fp32.tflite", "m.calibration.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_metadata_and_signature(tmp_path: Path) -> None:
    model, calib = _model(tmp_path, onnx_models.mlp_tanh())
    assert invoke("quantize", model, "--calib", calib, "--format", "tflite", "--target", "tflm",
                  "-o", tmp_path / "out").exit_code == 0
    payload = (tmp_path / "out" / "m.int8.tflite").read_bytes()
    flat = importlib.import_module("tflite.Model").Model.GetRootAsModel(payload, 0)
    metadata = {}
    for i in range(flat.MetadataLength()):
        entry = flat.Metadata(i)
        metadata[entry.Name().decode()] = flat.Buffers(entry.Buffer()).DataAsNumpy().tobytes().decode()
    record = (tmp_path / "out" / "m.calibration.json").read_bytes()
    assert metadata["calibration_record_sha256"] == hashlib.sha256(record).hexdigest()
    assert metadata["edgeact_version"]
    signature = flat.SignatureDefs(0)
    assert signature.SignatureKey() == b"serving_default"
    assert [signature.Inputs(i).Name() for i in range(signature.InputsLength())] == [b"x"]
    assert [signature.Outputs(i).Name() for i in range(signature.OutputsLength())] == [b"y"]


def test_op_the_target_cannot_run_is_refused_by_name_and_nothing_is_written(tmp_path: Path) -> None:
    g = onnx_models.GraphBuilder()
    g.nodes.append(helper.make_node("Det", [g.op("Reshape", g.linear("x", 4, 4), g.const([2, 2], dtype=np.int64))],
                                    ["y"], name="the_determinant"))
    model, calib = _model(tmp_path, g.model([onnx_models.tensor("x", [1, 4])], [onnx_models.tensor("y", [])]))
    result = invoke("quantize", model, "--calib", calib, "--format", "onnx-qdq,tflite", "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert "'the_determinant'" in result.output and "Det" in result.output and "no TFLite lowering" in result.output
    assert not (tmp_path / "out").exists()


def test_float_tflite_that_cannot_be_built_is_a_warning_and_the_int8_model_is_kept(tmp_path: Path) -> None:
    """TFLite Micro has no float GELU: the float32 baseline cannot be built, the int8 model (GELU as a table) can."""
    model, calib = _model(tmp_path, onnx_models.transformer_block("erf"))
    result = invoke("quantize", model, "--calib", calib, "--format", "tflite", "--target", "tflm", "--float-tflite",
                    "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    warning = next(line for line in result.output.splitlines() if "warning" in line)
    assert "float32 .tflite not written" in warning and "gelu" in warning.lower() and "tflm" in warning
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["m.calibration.json", "m.int8.tflite"], written
    record = json.loads((tmp_path / "out" / "m.calibration.json").read_text())
    assert record["warnings"] == [warning.strip().removeprefix("warning ")]
    assert "fp32-tflite" not in record["files"]


def test_float_only_op_runs_as_a_float_island(tmp_path: Path) -> None:
    """Sin kept float (--exclude): DEQUANTIZE -> SIN -> QUANTIZE between int8 layers, on LiteRT and TFLite Micro."""
    from edgeact.runtimes.litert import run_litert
    from edgeact.runtimes.tflm import run_tflm

    g = onnx_models.GraphBuilder()
    g.nodes.append(helper.make_node("Tanh", [g.linear(g.op("Sin", g.linear("x", 8, 8)), 8, 8)], ["y"], name="out"))
    model, calib = _model(tmp_path, g.model([onnx_models.tensor("x", ["N", 8])], [onnx_models.tensor("y", ["N", 8])]))
    for target in ("litert", "tflm"):
        result = invoke("quantize", model, "--calib", calib, "--format", "onnx-qdq,tflite", "--target", target, "-o",
                        tmp_path / target, "--exclude", "Sin")
        assert result.exit_code == 0, result.output
        payload = (tmp_path / target / "m.int8.tflite").read_bytes()
        xs = onnx_models.sample_inputs(onnx.load(model), 16, seed=3)["x"]
        run = run_tflm if target == "tflm" else run_litert
        y = np.concatenate([run(payload, [xs[i : i + 1]])[0] for i in range(16)])
        reference = ort_run(model, {"x": xs})
        onnx_int8 = ort_run(tmp_path / target / "m.int8.qdq.onnx", {"x": xs})
        assert sqnr_db(reference, y) >= sqnr_db(reference, onnx_int8) - 0.5


def test_summary_reports_tables_and_tflite_quality(tmp_path: Path) -> None:
    model, calib = _model(tmp_path, onnx_models.silu_convnet())
    result = invoke("quantize", model, "--calib", calib, "--format", "tflite", "--target", "tflm", "-o", tmp_path)
    assert result.exit_code == 0, result.output
    assert "tflite (tflm): 2 activations as GATHER tables" in result.output
    assert "SQNR vs fp32 (tflite" in result.output
