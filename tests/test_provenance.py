"""Provenance travels in data: every .tflite edgeact writes says which ONNX value (and layout) each tensor carries
and which ONNX node each op lowers; every int8 ONNX model says which value each DequantizeLinear output restores.
profile-device reads that, not names: a model whose tensors are renamed profiles the same, a model that names its
calibration record finds it whatever the file is called, and only a file without the metadata is read by the old
naming conventions (the same numbers); unreadable metadata is a warning."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import onnx
import pytest

import edgeact
from edgeact.api import CanonicalModel
from edgeact.documents.provenance import PROVENANCE_KEY, RECORD_KEY, RECORD_SHA256_KEY, TFLiteProvenance
from edgeact.documents.typed_json import from_json
from edgeact.exporters.tflite.writer import serialise
from edgeact.graph import view_of
from edgeact.graph.tflite_import import metadata, read_tflite
from edgeact.profiler.profile import profile_device
from edgeact.profiler.provenance import tflite_provenance

DIGITS = Path(__file__).parents[1] / "examples" / "digits"


def _digits(name: str) -> tuple[Path, Path, Path]:
    return DIGITS / f"{name}.onnx", DIGITS / f"{name}.calib.npz", DIGITS / f"{name}.eval.npz"


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("provenance")
    found = {}
    for name in ("transformer_gelu", "cnn_silu"):
        model, calib, _ = _digits(name)
        result = edgeact.quantize(model, calib, output_dir=folder / name, formats=["onnx-qdq", "tflite"],
                                  target="tflm")
        found[f"{name}/tflite"], found[f"{name}/onnx"] = result.paths["tflite"], result.paths["onnx-qdq"]
        found[f"{name}/record"] = result.paths["record"]
    return found


def _profile(model: Path, name: str, device: str = "tflm"):  # type: ignore[no-untyped-def]
    baseline, _, data = _digits(name)
    return profile_device(model, device, baseline, data, per_layer=True, max_samples=16, latency_runs=1)


def _layers(report) -> list[tuple[str, float]]:  # type: ignore[no-untyped-def]
    return sorted((layer.tensor, layer.sqnr_db) for layer in report.layers)


@pytest.mark.parametrize("name", ["transformer_gelu", "cnn_silu"])
def test_every_tflite_tensor_says_which_onnx_value_it_carries(exported, name: str) -> None:
    """Each int8 tensor's value has that tensor's grid in the record; channels-last ones are rank 4; every op lowers
    a node of the model."""
    payload = exported[f"{name}/tflite"].read_bytes()
    provenance = from_json(TFLiteProvenance, json.loads(metadata(payload)[PROVENANCE_KEY]))
    graph, record = read_tflite(payload), json.loads(exported[f"{name}/record"].read_text())
    checked = 0
    for key, value in provenance.values.items():
        tensor = graph.tensors[int(key)]
        if tensor.quant is not None and tensor.data is None:
            grid = record["tensors"][value]
            assert (tensor.quant.scale, tensor.quant.zero_point) == (pytest.approx(grid["scale"]), grid["zero_point"])
            checked += 1
        assert len(tensor.shape) == 4 or int(key) not in provenance.nhwc
    assert checked >= 8
    assert (name == "cnn_silu") == bool(provenance.nhwc)
    nodes = {node.name for node in view_of(CanonicalModel.load(_digits(name)[0]).model).nodes}
    assert set(provenance.nodes) - {"outputs"} <= nodes  # "outputs": the conversions at the graph outputs
    assert sorted(i for indices in provenance.nodes.values() for i in indices) == list(range(len(graph.ops)))


def test_every_dequantized_onnx_value_says_which_value_it_restores(exported) -> None:
    model = onnx.load(exported["transformer_gelu/onnx"])
    carried = json.loads({p.key: p.value for p in model.metadata_props}[PROVENANCE_KEY])["dequantized"]
    constants = {t.name for t in model.graph.initializer}
    restored = {node.output[0] for node in model.graph.node
                if node.op_type == "DequantizeLinear" and node.input[0] not in constants}
    planned = json.loads(exported["transformer_gelu/record"].read_text())["tensors"]
    assert set(carried) == restored and set(carried.values()) <= set(planned)


def _renamed_tflite(source: Path, target: Path) -> None:
    """``source`` with every tensor but the graph's inputs and outputs renamed ``t<index>`` and its calibration record
    named in its metadata (so the file needs no particular name): only the provenance says what a tensor is."""
    payload = source.read_bytes()
    carried = metadata(payload)
    graph = read_tflite(payload)
    tflite_provenance(graph, carried, source)
    for index, tensor in enumerate(graph.tensors):
        if index not in graph.inputs and index not in graph.outputs:
            tensor.name = f"t{index}"
    record = source.with_name(source.name.replace(".int8.tflite", ".calibration.json"))
    extra = {RECORD_KEY: record.name.encode(), RECORD_SHA256_KEY: carried[RECORD_SHA256_KEY].encode()}
    target.write_bytes(serialise(graph, extra, "renamed"))


@pytest.mark.parametrize("name", ["transformer_gelu", "cnn_silu"])
def test_renamed_tensors_profile_the_same(exported, name: str) -> None:
    original = _profile(exported[f"{name}/tflite"], name)
    renamed = exported[f"{name}/tflite"].with_name("anything.tflite")
    _renamed_tflite(exported[f"{name}/tflite"], renamed)
    report = _profile(renamed, name)
    assert _layers(report) == _layers(original) and report.layers
    assert report.float_ops == original.float_ops and report.activations == original.activations
    assert report.activations, "the record the file names is found whatever the file is called"
    assert not report.warnings


def test_float_ops_are_grouped_by_the_node_they_lower(exported) -> None:
    """The LayerNorms of the transformer run in float on TFLite Micro: each one's ops under its ONNX node."""
    report = _profile(exported["transformer_gelu/tflite"], "transformer_gelu")
    assert sorted(report.float_ops) == ["/norm1/LayerNormalization", "/norm2/LayerNormalization"]
    assert all(len(ops) == 9 for ops in report.float_ops.values())


def _without_provenance(payload: bytes) -> bytes:
    """The same file as one written before provenance existed: its metadata entry renamed (same length)."""
    assert payload.count(PROVENANCE_KEY.encode()) == 1
    return payload.replace(PROVENANCE_KEY.encode(), b"edgeact_xrovenance")


@pytest.mark.parametrize("name", ["transformer_gelu", "cnn_silu"])
def test_a_tflite_without_provenance_is_read_by_its_names(exported, name: str) -> None:
    old = exported[f"{name}/tflite"].with_name(f"{name}.old.int8.tflite")
    old.write_bytes(_without_provenance(exported[f"{name}/tflite"].read_bytes()))
    report, original = _profile(old, name), _profile(exported[f"{name}/tflite"], name)
    assert _layers(report) == _layers(original) and report.layers
    assert sum(map(len, report.float_ops.values())) == sum(map(len, original.float_ops.values()))


def test_an_onnx_model_without_provenance_is_read_by_its_names(exported, tmp_path: Path) -> None:
    model = onnx.load(exported["transformer_gelu/onnx"])
    del model.metadata_props[:]
    old = exported["transformer_gelu/onnx"].with_name("transformer_gelu.old.int8.qdq.onnx")
    onnx.save(model, old)
    report = _profile(old, "transformer_gelu", "onnxruntime-cpu")
    original = _profile(exported["transformer_gelu/onnx"], "transformer_gelu", "onnxruntime-cpu")
    assert _layers(report) == _layers(original) and report.layers


def test_renamed_dequantized_values_profile_the_same(exported) -> None:
    """DequantizeLinear outputs renamed ``dq<k>`` (and the provenance with them): the same layers."""
    model = onnx.load(exported["transformer_gelu/onnx"])
    props = {p.key: p for p in model.metadata_props}
    carried = json.loads(props[PROVENANCE_KEY].value)["dequantized"]
    renames = {name: f"dq{k}" for k, name in enumerate(sorted(carried)) if name.endswith("_dequantized")}
    for node in model.graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    for info in model.graph.value_info:
        info.name = renames.get(info.name, info.name)
    props[PROVENANCE_KEY].value = json.dumps({"version": 1, "dequantized": {
        renames.get(name, name): value for name, value in carried.items()}})
    renamed = exported["transformer_gelu/onnx"].with_name("transformer_gelu.renamed.int8.qdq.onnx")
    onnx.save(model, renamed)
    report = _profile(renamed, "transformer_gelu", "onnxruntime-cpu")
    original = _profile(exported["transformer_gelu/onnx"], "transformer_gelu", "onnxruntime-cpu")
    assert renames and _layers(report) == _layers(original) and report.layers


def test_unreadable_provenance_is_a_warning(exported) -> None:
    payload = exported["cnn_silu/tflite"].read_bytes()
    assert payload.count(b'"values":') == 1
    broken = exported["cnn_silu/tflite"].with_name("cnn_silu.broken.int8.tflite")
    broken.write_bytes(payload.replace(b'"values":', b'"valuez":'))
    report = _profile(broken, "cnn_silu")
    assert any(f"{PROVENANCE_KEY} metadata is not readable (values is missing)" in w for w in report.warnings)
    assert report.layers == [] and report.outputs["logits"].sqnr_db > 20


def test_the_record_hash_still_guards_a_renamed_file(exported, tmp_path: Path) -> None:
    """A file that names its record but carries another record's hash: the activations are not reported."""
    source = exported["cnn_silu/tflite"]
    graph = read_tflite(source.read_bytes())
    tflite_provenance(graph, metadata(source.read_bytes()), source)
    record = exported["cnn_silu/record"]
    wrong = {RECORD_KEY: record.name.encode(), RECORD_SHA256_KEY: hashlib.sha256(b"other").hexdigest().encode()}
    target = source.with_name("named.tflite")
    target.write_bytes(serialise(graph, wrong, "wrong hash"))
    report = _profile(target, "cnn_silu")
    assert report.activations == [] and any("not the calibration record" in w for w in report.warnings)
