"""Every calibration record and profile-device report a representative set of runs writes follows the JSON Schema
files under docs/schema/ (several models, the ONNX and PyTorch front ends, a fused elementwise chain, static shapes,
saved statistics; every format; devices tflm, cmsis-nn, litert-reference, litert-xnnpack, npu-table and
onnxruntime-cpu). The files are what the typed classes generate (one source of truth), they are strict (a missing
key, a wrong type or an unknown key fails), and the typed readers agree with them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
import torch
from onnx import helper

import edgeact
from edgeact.documents.calibration_record import CalibrationRecordDocument
from edgeact.documents.profile_report import ProfileReport
from edgeact.documents.schemas import SCHEMAS, schema_text
from edgeact.documents.typed_json import from_json, to_json
from edgeact.errors import DocumentError
from edgeact.profiler.profile import profile_device
from edgeact.profiler.report import write_json
from examples.onnx_models import GraphBuilder, sample_inputs, tensor

ROOT = Path(__file__).parents[1]
SCHEMA_DIR, DIGITS = ROOT / "docs" / "schema", ROOT / "examples" / "digits"
REPORT, RECORD = "profile-report.schema.json", "calibration-record.schema.json"


def _validator(file: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads((SCHEMA_DIR / file).read_text()))


def _quick_gelu_chain(folder: Path) -> tuple[Path, Path]:
    """x -> Linear -> x*sigmoid(1.702x) (no named activation: a fused elementwise chain) -> Linear -> y."""
    g = GraphBuilder(seed=3)
    h = g.linear("x", 8, 8)
    y = g.op("Mul", h, g.op("Sigmoid", g.op("Mul", g.const(1.702), h)))
    g.nodes.append(helper.make_node("Identity", [g.linear(y, 8, 4)], ["y"], name="out"))
    model = g.model([tensor("x", ["N", 8])], [tensor("y", ["N", 4])])
    path = folder / "chain.onnx"
    path.write_bytes(model.SerializeToString())
    np.savez(folder / "chain.npz", **sample_inputs(model, 48, seed=1))
    return path, folder / "chain.npz"


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1, self.l2 = torch.nn.Linear(16, 32), torch.nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(torch.tanh(self.l1(x)))


def _digits(name: str) -> tuple[Path, Path, Path]:
    return DIGITS / f"{name}.onnx", DIGITS / f"{name}.calib.npz", DIGITS / f"{name}.eval.npz"


def _profile(out: Path, name: str, model: Path, device: str, baseline: Path, data: Path, **options: Any) -> None:
    report = profile_device(model, device, baseline, data, max_samples=24, latency_runs=2, **options)
    write_json(report, out / f"{name}.report.json")


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, list[Path]]:  # type: ignore[no-untyped-def]
    """The records and reports of the representative runs."""
    out = tmp_path_factory.mktemp("schemas")
    gelu, gelu_calib, gelu_eval = _digits("transformer_gelu")
    a = edgeact.quantize(gelu, gelu_calib, output_dir=out / "gelu", formats=["onnx-qdq", "onnx-table", "tflite"],
                         float_tflite=True).paths
    _profile(out, "gelu-litert-reference", a["tflite"], "litert-reference", gelu, gelu_eval, per_layer=True)
    _profile(out, "gelu-npu-table", a["tflite"], "npu-table", gelu, gelu_eval, per_layer=True)
    _profile(out, "gelu-ort", a["onnx-qdq"], "onnxruntime-cpu", gelu, gelu_eval, per_layer=True)
    _profile(out, "gelu-ort-table", a["onnx-table"], "onnxruntime-cpu", gelu, gelu_eval)
    cnn, cnn_calib, cnn_eval = _digits("cnn_silu")
    b = edgeact.quantize(cnn, cnn_calib, output_dir=out / "cnn", formats=["tflite"], target="tflm").paths
    _profile(out, "cnn-tflm", b["tflite"], "tflm", cnn, cnn_eval, per_layer=True)
    _profile(out, "cnn-cmsis-nn", b["tflite"], "cmsis-nn", cnn, cnn_eval, per_layer=True)
    mlp, mlp_calib, mlp_eval = _digits("mlp_tanh")
    stats = edgeact.calibrate(mlp, mlp_calib)
    stats.save(out / "mlp.stats.json")
    edgeact.quantize(mlp, stats=[out / "mlp.stats.json"], output_dir=out / "mlp-stats", formats=["onnx-qdq"],
                     per_tensor=True, method="minmax")
    c = edgeact.quantize(mlp, mlp_calib, output_dir=out / "mlp", formats=["onnx-qdq"]).paths
    values = np.load(mlp_eval)["x"].copy()
    values[2, 0] = np.nan
    np.savez(out / "nan.npz", x=values)
    _profile(out, "mlp-bad-samples", c["onnx-qdq"], "onnxruntime-cpu", mlp, out / "nan.npz", skip_bad_samples=True)
    chain, chain_data = _quick_gelu_chain(out)
    d = edgeact.quantize(chain, chain_data, output_dir=out / "chain", formats=["onnx-table", "tflite"]).paths
    _profile(out, "chain-xnnpack", d["tflite"], "litert-xnnpack", chain, chain_data, per_layer=True)
    np.savez(out / "torch.npz", x=np.random.default_rng(0).normal(0, 1.5, (32, 16)).astype(np.float32))
    edgeact.quantize(_Net(), out / "torch.npz", output_dir=out / "torch", formats=["onnx-qdq", "tflite"])
    return {"records": sorted(out.rglob("*.calibration.json")), "reports": sorted(out.glob("*.report.json"))}


def _documents(written: dict[str, list[Path]], kind: str) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in written[kind]]


def test_the_runs_write_every_kind_of_document(written) -> None:  # type: ignore[no-untyped-def]
    """The representative set reaches every optional part of both schemas (else a part could drift unseen)."""
    records, reports = _documents(written, "records"), _documents(written, "reports")
    assert len(records) == 6 and len(reports) == 8
    assert {r["frontend"]["kind"] for r in records} == {"onnx", "pytorch module"}
    assert any("static_shapes" in r for r in records) and any("static_shapes" not in r for r in records)
    assert any("tflite" in r for r in records) and any(r["evaluation"] == {} for r in records)
    assert any("expression" in a and "reference" in a for r in records for a in r["activations"])
    assert any("scales" in c for r in records for c in r["constants"])
    assert any("scale" in c for r in records for c in r["constants"])
    assert {r["device"]["name"] for r in reports} == {"litert-reference", "npu-table", "onnxruntime-cpu", "tflm",
                                                       "cmsis-nn", "litert-xnnpack"}
    assert any(r["latency_ms"] is None for r in reports) and any(r["latency_ms"] for r in reports)
    assert any(r["bad_samples"] for r in reports) and any(r["float_ops"] for r in reports)
    assert any("max_lsb" in layer for r in reports for layer in r["layers"])
    assert any("reference" in a for r in reports for a in r["activations"])


@pytest.mark.parametrize("kind, file", [("records", RECORD), ("reports", REPORT)])
def test_every_written_document_follows_its_schema(written, kind: str, file: str) -> None:  # type: ignore[no-untyped-def]
    validator = _validator(file)
    for path in written[kind]:
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(
            json.loads(path.read_text()))]
        assert not errors, (path, errors[:5])


@pytest.mark.parametrize("kind, cls", [("records", CalibrationRecordDocument), ("reports", ProfileReport)])
def test_the_typed_classes_hold_every_field_written(written, kind: str, cls: type) -> None:  # type: ignore[no-untyped-def]
    """Read and written back, a document is unchanged: no field is outside the classes the schemas come from."""
    for data in _documents(written, kind):
        assert to_json(from_json(cls, data)) == data


@pytest.mark.parametrize("file", list(SCHEMAS))
def test_the_schema_files_are_what_the_classes_generate(file: str) -> None:
    assert (SCHEMA_DIR / file).read_text() == schema_text(file), \
        f"docs/schema/{file} is stale: run .venv/bin/python -m edgeact.documents.schemas docs/schema"
    jsonschema.Draft202012Validator.check_schema(json.loads((SCHEMA_DIR / file).read_text()))


def _edit(path: str, value: object = None, delete: bool = False):  # type: ignore[no-untyped-def]
    """An edit at a dotted path (a number indexes a list; ``*`` is the first key of an object)."""
    def edit(data: dict) -> None:
        *parents, last = [int(k) if k.isdigit() else k for k in path.split(".")]
        for key in parents:
            data = data[next(iter(data))] if key == "*" else data[key]
        last = next(iter(data)) if last == "*" else last
        if delete:
            del data[last]
        else:
            data[last] = value
    return edit


BROKEN_REPORTS = [
    ("sqnr-missing", _edit("outputs.*.sqnr_db", delete=True), "outputs.logits.sqnr_db is missing"),
    ("sqnr-string", _edit("outputs.*.sqnr_db", "30"), "outputs.logits.sqnr_db is a string, expected a number"),
    ("device-missing", _edit("device", delete=True), "device is missing"),
    ("samples-float", _edit("samples", 2.5), "samples is a number, expected an integer"),
    ("layer-tensor-number", _edit("layers.0.tensor", 3), "layers[0].tensor is a number, expected a string"),
    ("table-string", _edit("activations.0.table", "1 2"), "activations[0].table is a string, expected a list"),
    ("histogram-missing", _edit("outputs.*.error_histogram", delete=True),
     "outputs.logits.error_histogram is missing"),
    ("hazard-reason-null", _edit("hazards.0.reason", None), "hazards[0].reason is null, expected a string"),
    ("fingerprint-shape", _edit("fingerprint.inputs.0.shape", [1.5]),
     "fingerprint.inputs[0].shape[0] is a number, expected an integer or a string"),
    ("unknown-key", _edit("outputs.*.sqnr", 3.0), None),
]
BROKEN_RECORDS = [
    ("sha-missing", _edit("model_sha256", delete=True), "model_sha256 is missing"),
    ("grid-scale-string", _edit("activations.0.input_grid.scale", "0.1"),
     "activations[0].input_grid.scale is a string, expected a number"),
    ("error-missing", _edit("activations.0.error.rms_floor", delete=True), "activations[0].error.rms_floor is missing"),
    ("form-reason-missing", _edit("activations.0.form.*.reason", delete=True), "reason is missing"),
    ("constant-codes-missing", _edit("constants.0.codes", delete=True), "constants[0]"),
    ("tensor-zero-point-float", _edit("tensors.*.zero_point", 1.5), "is a number, expected an integer"),
    ("options-bool", _edit("options.per_tensor", "no"), "options.per_tensor is a string, expected true or false"),
    ("files-list", _edit("files", ["a.onnx"]), "files is a list, expected an object"),
    ("evaluation-sqnr-string", _edit("evaluation.onnx-qdq.logits", "high"),
     "evaluation.onnx-qdq.logits is a string, expected a number"),
    ("unknown-key", _edit("activations.0.colour", "red"), None),
]


@pytest.mark.parametrize("case, edit, message", BROKEN_REPORTS, ids=[c[0] for c in BROKEN_REPORTS])
def test_the_report_schema_refuses_a_broken_report(written, case: str, edit, message: str | None) -> None:  # type: ignore[no-untyped-def]
    report = next(d for d in _documents(written, "reports") if d["device"]["name"] == "litert-reference")
    _refused(report, edit, REPORT, ProfileReport, message)


@pytest.mark.parametrize("case, edit, message", BROKEN_RECORDS, ids=[c[0] for c in BROKEN_RECORDS])
def test_the_record_schema_refuses_a_broken_record(written, case: str, edit, message: str | None) -> None:  # type: ignore[no-untyped-def]
    record = next(d for d in _documents(written, "records") if "onnx-qdq" in d["evaluation"])
    _refused(record, edit, RECORD, CalibrationRecordDocument, message)


def _refused(document: dict, edit, file: str, cls: type, message: str | None) -> None:  # type: ignore[no-untyped-def]
    """The schema refuses the edited document, and so does the typed reader, naming the field (an unknown key is
    the schema's alone to refuse: readers take documents with more fields than they know)."""
    _validator(file).validate(document)  # the intact document is valid
    broken = copy.deepcopy(document)
    edit(broken)
    with pytest.raises(jsonschema.ValidationError):
        _validator(file).validate(broken)
    if message is None:
        from_json(cls, broken)
        return
    with pytest.raises(DocumentError, match=None) as caught:
        from_json(cls, broken)
    assert message in str(caught.value), str(caught.value)
