"""Hostile input to `edgeact gate` and `edgeact profile-device` (issue 12): a baseline of another model, reports with
missing fields or wrong types, bad gate settings, corrupt models and calibration records, data that does not fit,
NaN samples, and outputs that would replace an input. Every case runs the real CLI on real onnxruntime and checks the
exit code, that the message names the file or field, that nothing crashed, and that no input changed."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import edgeact
from edgeact.cli import main
from examples import onnx_models


def invoke(*args: object):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    return result


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _plain(path: Path, x_shape: list, x_dtype: int = TensorProto.FLOAT, width: int = 16) -> Path:
    """A float model ``x -> (Cast) -> MatMul -> y`` with the given input, as a baseline that does not fit."""
    nodes, source = [], "x"
    if x_dtype != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT))
        source = "xf"
    nodes.append(helper.make_node("MatMul", [source, "w"], ["y"]))
    weight = numpy_helper.from_array(np.ones((width, 4), np.float32), "w")
    y_shape = [*x_shape[:-1], 4]
    graph = helper.make_graph(nodes, "g", [onnx_models.tensor("x", x_shape, x_dtype)],
                              [onnx_models.tensor("y", y_shape)], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """Two float models with one signature (different weights), their int8 forms and a report of each."""
    folder = tmp_path_factory.mktemp("hostile")
    paths = {"folder": folder}
    for name, seed in (("mlp", 0), ("other", 1)):
        model = onnx_models.mlp_tanh(seed=seed)
        onnx.save(model, folder / f"{name}.onnx")
        paths[name] = folder / f"{name}.onnx"
    model = onnx_models.mlp_tanh()
    np.savez(folder / "calib.npz", **onnx_models.sample_inputs(model, 64, seed=1))
    np.savez(folder / "eval.npz", **onnx_models.sample_inputs(model, 24, seed=2))
    paths["eval"] = folder / "eval.npz"
    for name in ("mlp", "other"):
        result = edgeact.quantize(paths[name], folder / "calib.npz", output_dir=folder / name,
                                  formats=["onnx-qdq", "tflite"])
        paths[f"{name}_int8"], paths[f"{name}_tflite"] = result.paths["onnx-qdq"], result.paths["tflite"]
        paths[f"{name}_report"] = folder / f"{name}.report.json"
        done = invoke("profile-device", paths[f"{name}_int8"], "--device", "onnxruntime-cpu", "--baseline",
                      paths[name], "--data", paths["eval"], "--latency-runs", 2, "--json", paths[f"{name}_report"])
        assert done.exit_code == 0, done.output
    return paths


@pytest.fixture()
def pair(world, tmp_path: Path) -> tuple[Path, Path]:
    """r.json and b.json: copies of one report (the gate passes on them)."""
    report, baseline = tmp_path / "r.json", tmp_path / "b.json"
    report.write_bytes(world["mlp_report"].read_bytes())
    baseline.write_bytes(world["mlp_report"].read_bytes())
    return report, baseline


# -- gate: the baseline of another model ----------------------------------------------------------------------------


def test_gate_refuses_the_baseline_of_another_model(world) -> None:
    report, baseline = world["mlp_report"], world["other_report"]
    before = sha(report), sha(baseline)
    result = invoke("gate", report, "--baseline", baseline)
    assert result.exit_code == 1, result.output
    assert "not the same model" in result.output and str(baseline) in result.output
    assert "mlp.onnx" in result.output and "other.onnx" in result.output
    forced = invoke("gate", report, "--baseline", baseline, "--allow-mismatch")
    assert forced.exit_code in (0, 3) and "compared anyway (--allow-mismatch)" in forced.output
    assert (sha(report), sha(baseline)) == before


@pytest.mark.parametrize("case, expected", [
    ("hash", "float model"),
    ("input-shape", "inputs x float32"),
    ("output-name", "outputs"),
])
def test_gate_refuses_another_fingerprint(pair, case: str, expected: str) -> None:
    report, baseline = pair
    data = json.loads(report.read_text())
    fingerprint = data["fingerprint"]
    if case == "hash":
        fingerprint["float_model_sha256"] = "0" * 64
    elif case == "input-shape":
        fingerprint["inputs"][0]["shape"] = ["N", 17]
    else:
        fingerprint["outputs"][0]["name"] = "logits"
    report.write_text(json.dumps(data))
    result = invoke("gate", report, "--baseline", baseline)
    assert result.exit_code == 1 and "not the same model" in result.output and expected in result.output
    assert invoke("gate", report, "--baseline", baseline, "--allow-mismatch").exit_code == 0


def test_gate_reads_an_old_baseline_without_a_fingerprint_with_a_warning(pair) -> None:
    report, baseline = pair
    old = json.loads(baseline.read_text())
    del old["fingerprint"], old["warnings"], old["bad_samples"]
    old["schema_version"] = 1
    baseline.write_text(json.dumps(old))
    result = invoke("gate", report, "--baseline", baseline, "--markdown", report.with_name("gate.md"))
    assert result.exit_code == 0, result.output
    assert f"{baseline} carries no model fingerprint" in result.output
    assert "carries no model fingerprint" in report.with_name("gate.md").read_text()


# -- gate: reports with missing fields or wrong types ---------------------------------------------------------------


def _drop_sqnr(d: dict) -> None:
    del d["outputs"]["y"]["sqnr_db"]


def _set(path: str, value: object):  # type: ignore[no-untyped-def]
    """An edit that sets the field at a dotted path (a number indexes a list)."""
    def edit(data: dict) -> None:
        *parents, last = [int(k) if k.isdigit() else k for k in path.split(".")]
        for key in parents:
            data = data[key]
        data[last] = value
    return edit


HOSTILE_REPORTS = [
    ("sqnr-missing", _drop_sqnr, "outputs.y.sqnr_db is missing"),
    ("sqnr-string", _set("outputs.y.sqnr_db", "30.1"), "outputs.y.sqnr_db is a string, expected a number"),
    ("sqnr-bool", _set("outputs.y.sqnr_db", True), "outputs.y.sqnr_db is a boolean, expected a number"),
    ("outputs-list", _set("outputs", [1, 2]), "outputs is a list, expected an object"),
    ("outputs-empty", _set("outputs", {}), "outputs is empty"),
    ("rms-null", _set("activations.0.rms_error", None), "activations[0].rms_error is null, expected a number"),
    ("device-string", _set("device", "onnxruntime-cpu"), "device is a string, expected an object"),
    ("schema-string", _set("schema_version", "2"), "schema_version is a string, expected an integer"),
    ("layers-object", _set("layers", {"a": 1}), "layers is an object, expected a list"),
    ("latency-string", _set("latency_ms.median", "fast"), "latency_ms.median is a string, expected a number"),
    ("signature-dims", _set("fingerprint.inputs.0.shape", [1.5]),
     "fingerprint.inputs[0].shape[0] is a number, expected an integer or a string"),
]


@pytest.mark.parametrize("role", ["report", "baseline"])
@pytest.mark.parametrize("case, edit, expected", HOSTILE_REPORTS, ids=[c[0] for c in HOSTILE_REPORTS])
def test_gate_names_the_file_and_field_of_a_broken_report(pair, role: str, case: str, edit, expected: str) -> None:  # type: ignore[no-untyped-def]
    report, baseline = pair
    target = report if role == "report" else baseline
    data = json.loads(target.read_text())
    edit(data)
    target.write_text(json.dumps(data))
    before = sha(report), sha(baseline)
    junit = report.with_name("gate.xml")
    result = invoke("gate", report, "--baseline", baseline, "--junit", junit)
    assert result.exit_code == 1, result.output
    assert f"{target}: {expected}" in result.output and f"usable as the {role}" in result.output
    assert not junit.exists() and (sha(report), sha(baseline)) == before


@pytest.mark.parametrize("content, expected", [
    ("", "an empty file"),
    ("   \n", "an empty file"),
    ("hello", "not JSON"),
    ('{"outputs": ', "not JSON"),
    ("[]", "the top level is a list, expected an object"),
    ("3", "the top level is a number, expected an object"),
    ("[" * 100000, "not JSON"),
])
def test_gate_refuses_a_file_that_is_not_a_report(pair, content: str, expected: str) -> None:
    report, baseline = pair
    report.write_text(content)
    result = invoke("gate", report, "--baseline", baseline)
    assert result.exit_code == 1 and f"{report}: {expected}" in result.output, result.output
    binary = baseline.with_name("binary.json")
    binary.write_bytes(b"\xff\xfe\x00garbage")
    result = invoke("gate", baseline, "--baseline", binary)
    assert result.exit_code == 1 and str(binary) in result.output


# -- gate: settings -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("toml, expected", [
    ('max_sqnr_drop = "big"\n', "max_sqnr_drop is a string, expected a number"),
    ("max_sqnr_drop = -1\n", "max_sqnr_drop = -1 is out of range; it must be >= 0"),
    ("max_sqnr_drop = nan\n", "max_sqnr_drop is NaN"),
    ("min_top1_agreement = 2\n", "min_top1_agreement = 2 is out of range; it must be >= 0 and <= 1"),
    ("max_latency_ratio = 0\n", "max_latency_ratio = 0 is out of range; it must be > 0"),
    ('per_layer = "yes"\n', "per_layer is a string, expected true or false"),
    ("per_layer = 1\n", "per_layer is a number, expected true or false"),
    ("[gate]\nmax_sqnr_drop = 0.1\nmax_sqnr_dorp = 1\n", "unknown gate setting(s) ['max_sqnr_dorp']"),
    ("gate = 3\n", "[gate] is a number, expected a table of gate settings"),
    ("[tool.edgeact]\ngate = [1]\n", "[tool.edgeact.gate] is a list, expected a table of gate settings"),
    ("max_sqnr_drop = [\n", "not valid TOML"),
])
def test_gate_refuses_bad_settings_naming_the_file(pair, toml: str, expected: str) -> None:
    report, baseline = pair
    config = report.with_name("gate.toml")
    config.write_text(toml)
    result = invoke("gate", report, "--baseline", baseline, "--config", config)
    assert result.exit_code == 2, result.output
    assert str(config) in result.output and expected in result.output


def test_gate_settings_in_pyproject_are_checked(pair, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    report, baseline = pair
    (report.parent / "pyproject.toml").write_text('[tool.edgeact.gate]\nmax_layer_sqnr_drop = "1 dB"\n')
    monkeypatch.chdir(report.parent)
    result = invoke("gate", report, "--baseline", baseline)
    assert result.exit_code == 2 and "pyproject.toml: max_layer_sqnr_drop is a string" in result.output
    (report.parent / "pyproject.toml").write_text("[tool.edgeact.gate]\nmax_layer_sqnr_drop = 1.0\n")
    assert invoke("gate", report, "--baseline", baseline).exit_code == 0
    for value in ("-1", "nan"):
        result = invoke("gate", report, "--baseline", baseline, "--max-sqnr-drop", value)
        assert result.exit_code == 2 and "--max-sqnr-drop" in result.output, result.output


def test_gate_says_which_settings_gate_nothing(pair) -> None:
    report, baseline = pair
    data = json.loads(baseline.read_text())
    data["latency_ms"] = None  # as an emulated device writes it
    baseline.write_text(json.dumps(data))
    result = invoke("gate", report, "--baseline", baseline, "--max-latency-ratio", 2, "--per-layer")
    assert result.exit_code == 0, result.output
    assert "max_latency_ratio is ignored: the baseline has no latency" in result.output
    assert "per_layer is ignored: the baseline has no layers" in result.output


# -- gate: outputs never replace inputs -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["markdown-is-baseline", "junit-is-report", "markdown-hard-link-to-baseline",
                                  "junit-symlink-to-report", "markdown-is-config", "junit-is-markdown"])
def test_gate_outputs_never_overwrite_inputs(pair, case: str) -> None:
    report, baseline = pair
    config = report.with_name("gate.toml")
    config.write_text("max_sqnr_drop = 0.5\n")
    options: list[object] = ["--config", config]
    if case == "markdown-is-baseline":
        options += ["--markdown", baseline]
    elif case == "junit-is-report":
        options += ["--junit", report]
    elif case == "markdown-hard-link-to-baseline":
        os.link(baseline, report.with_name("link.md"))
        options += ["--markdown", report.with_name("link.md")]
    elif case == "junit-symlink-to-report":
        report.with_name("link.xml").symlink_to(report)
        options += ["--junit", report.with_name("link.xml")]
    elif case == "markdown-is-config":
        options += ["--markdown", config]
    else:
        options += ["--junit", report.with_name("gate.out"), "--markdown", report.with_name("gate.out")]
    before = [sha(p) for p in (report, baseline, config)]
    result = invoke("gate", report, "--baseline", baseline, *options)
    assert result.exit_code == 2, result.output
    assert "would overwrite the input" in result.output or "are the same file" in result.output
    assert [sha(p) for p in (report, baseline, config)] == before
    assert not report.with_name("gate.out").exists()


def test_gate_checks_output_folders_before_any_work(pair) -> None:
    report, baseline = pair
    markdown = report.with_name("gate.md")
    result = invoke("gate", report, "--baseline", baseline, "--markdown", markdown, "--junit",
                    report.parent / "missing" / "gate.xml")
    assert result.exit_code == 1 and f"folder {report.parent / 'missing'} does not exist" in result.output
    assert not markdown.exists()


def test_update_baseline_from_the_baseline_itself_is_a_no_op(pair) -> None:
    report, baseline = pair
    before = sha(baseline)
    os.link(baseline, report.with_name("same.json"))
    for source in (baseline, report.with_name("same.json")):
        result = invoke("gate", source, "--baseline", baseline, "--update-baseline", "--junit", "gate.xml")
        assert result.exit_code == 0 and "already is the baseline" in result.output, result.output
        assert "--junit ignored with --update-baseline" in result.output
    assert sha(baseline) == before and not Path("gate.xml").exists()
    report.write_text("{}")
    result = invoke("gate", report, "--baseline", baseline, "--update-baseline")
    assert result.exit_code == 1 and "schema_version is missing" in result.output and sha(baseline) == before


# -- profile-device: the baseline and data must be the int8 model's -------------------------------------------------


def _profile(world, *options: object, model: Path | None = None, baseline: Path | None = None,  # type: ignore[no-untyped-def]
             data: Path | None = None, device: str = "onnxruntime-cpu"):
    return invoke("profile-device", model or world["mlp_int8"], "--device", device, "--baseline",
                  baseline or world["mlp"], "--data", data or world["eval"], "--latency-runs", 2, *options)


def test_profile_warns_when_the_calibration_record_names_another_float_model(world, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    result = _profile(world, "--json", report, baseline=world["other"])
    assert result.exit_code == 0, result.output
    assert "warning: mlp.calibration.json says the int8 model was quantized from float model 'mlp.onnx'" in \
        result.output and "not the baseline other.onnx" in result.output
    assert any("not the baseline other.onnx" in w for w in json.loads(report.read_text())["warnings"])
    gated = invoke("gate", report, "--baseline", world["mlp_report"])
    assert gated.exit_code == 1 and "not the same model" in gated.output
    assert json.loads(world["mlp_report"].read_text())["warnings"] == []  # the right baseline: no warning


def test_profile_checks_the_tflite_record_too(world, tmp_path: Path) -> None:
    result = _profile(world, model=world["mlp_tflite"], baseline=world["other"], device="litert-reference")
    assert result.exit_code == 0 and "not the baseline other.onnx" in result.output, result.output
    model = tmp_path / "mlp.int8.tflite"
    model.write_bytes(world["mlp_tflite"].read_bytes())
    record = json.loads((world["mlp_tflite"].parent / "mlp.calibration.json").read_text())
    record["model_sha256"] = "0" * 64
    (tmp_path / "mlp.calibration.json").write_text(json.dumps(record))
    result = _profile(world, model=model, device="litert-reference")
    assert result.exit_code == 0 and "not the calibration record mlp.int8.tflite was written with" in result.output


@pytest.mark.parametrize("case, expected", [
    ("wider-input", "input 'x' has shape ['N', 32] in the baseline, ['N', 16] in the int8 model"),
    ("int-input", "input 'x' is int64 in the baseline, float32 in the int8 model"),
    ("other-rank", "input 'x' has shape ['N', 2, 16] in the baseline, ['N', 16] in the int8 model"),
    ("other-names", "the int8 model has inputs ['x']"),
    ("no-outputs", "no outputs"),
    ("not-onnx", "not an ONNX model"),
])
def test_profile_refuses_a_baseline_that_is_not_the_int8_models(world, tmp_path: Path, case: str,
                                                                  expected: str) -> None:
    code = 2
    if case == "wider-input":
        baseline = _plain(tmp_path / "b.onnx", ["N", 32], width=32)
    elif case == "int-input":
        baseline = _plain(tmp_path / "b.onnx", ["N", 16], TensorProto.INT64)
    elif case == "other-rank":
        baseline = _plain(tmp_path / "b.onnx", ["N", 2, 16])
    elif case == "other-names":
        baseline = tmp_path / "b.onnx"
        onnx.save(onnx_models.token_classifier(), baseline)
    elif case == "no-outputs":
        model = onnx.load(world["mlp"])
        del model.graph.output[:]
        baseline, code = tmp_path / "b.onnx", 1
        onnx.save(model, baseline)
    else:
        baseline, code = tmp_path / "b.onnx", 1
        baseline.write_bytes(world["mlp"].read_bytes()[:200])
    before = sha(baseline)
    result = _profile(world, "--json", tmp_path / "r.json", baseline=baseline)
    assert result.exit_code == code, result.output
    assert expected in result.output and str(baseline) in result.output
    assert not (tmp_path / "r.json").exists() and sha(baseline) == before


@pytest.mark.parametrize("case, expected", [
    ("float64", "expected dtype float32, got float64"),
    ("shape", "axis 1 must be 16"),
    ("names", "missing ['x']"),
    ("not-npz", "not a readable .npz"),
])
def test_profile_refuses_data_that_does_not_fit(world, tmp_path: Path, case: str, expected: str) -> None:
    data = tmp_path / "d.npz"
    values = np.load(world["eval"])["x"]
    if case == "float64":
        np.savez(data, x=values.astype(np.float64))
    elif case == "shape":
        np.savez(data, x=np.zeros((4, 17), np.float32))
    elif case == "names":
        np.savez(data, pixels=values)
    else:
        data.write_bytes(b"PK\x03\x04 truncated")
    result = _profile(world, data=data)
    assert result.exit_code == 1 and expected in result.output and str(data) in result.output, result.output


@pytest.mark.parametrize("case", ["truncated", "empty", "garbage", "no-outputs"])
def test_profile_refuses_a_broken_int8_model_naming_it(world, tmp_path: Path, case: str) -> None:
    model = tmp_path / "mlp.int8.qdq.onnx"
    payload = world["mlp_int8"].read_bytes()
    if case == "truncated":
        model.write_bytes(payload[: len(payload) // 2])
    elif case == "empty":
        model.write_bytes(b"")
    elif case == "garbage":
        model.write_bytes(os.urandom(4096))
    else:
        proto = onnx.load(world["mlp_int8"])
        del proto.graph.output[:]
        onnx.save(proto, model)
    result = _profile(world, "--json", tmp_path / "r.json", model=model)
    assert result.exit_code == 1 and str(model) in result.output, result.output
    if case == "no-outputs":
        assert "no outputs" in result.output
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("content, expected", [
    (b'{"model_sha256": "ab', "not a readable calibration record (not JSON"),
    (b"", "not a readable calibration record (not JSON"),
    (b'{"model_sha256": "ab", "activations": "none"}',
     "not a usable calibration record (activations is a string, expected a list)"),
    (b'{"model_sha256": 3, "activations": []}',
     "not a usable calibration record (model_sha256 is a number, expected a string)"),
    (b"\xff\xfe", "not a readable calibration record"),
])
def test_profile_warns_on_a_corrupt_calibration_record(world, tmp_path: Path, content: bytes, expected: str) -> None:
    model = tmp_path / "mlp.int8.qdq.onnx"
    model.write_bytes(world["mlp_int8"].read_bytes())
    (tmp_path / "mlp.calibration.json").write_bytes(content)
    result = _profile(world, "--json", tmp_path / "r.json", model=model)
    assert result.exit_code == 0, result.output
    assert f"warning: {tmp_path / 'mlp.calibration.json'}: {expected}" in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["activations"] == [] and any(expected in w for w in report["warnings"])


RECORD_DAMAGE = [
    ("short-table", _set("activations.0.table", [0, 1, 2]), "activations[0].table has 3 entries"),
    ("nan-scale", _set("activations.0.input_grid.scale", float("nan")), "activations[0].input_grid.scale is nan"),
    ("zero-scale", _set("activations.1.output_grid.scale", 0), "activations[1].output_grid.scale is 0"),
    ("inf-error", _set("activations.0.error.rms_error", float("inf")), "activations[0].error.rms_error is inf"),
    ("unknown-function", _set("activations.0.function", "tanhh"), "activations[0]: unknown"),
    ("unknown-param", _set("activations.0.params", {"alpha": 1.0}), "activations[0]:"),
    ("string-table", _set("activations.0.table", "0 1 2"), "activations[0].table is a string, expected a list"),
]


@pytest.mark.parametrize("case, damage, expected", RECORD_DAMAGE, ids=[c[0] for c in RECORD_DAMAGE])
def test_profile_warns_on_a_damaged_calibration_record(world, tmp_path: Path, case: str, damage,  # type: ignore[no-untyped-def]
                                                       expected: str) -> None:
    model = tmp_path / "mlp.int8.qdq.onnx"
    model.write_bytes(world["mlp_int8"].read_bytes())
    record = json.loads((world["mlp_int8"].parent / "mlp.calibration.json").read_text())
    damage(record)
    (tmp_path / "mlp.calibration.json").write_text(json.dumps(record))
    result = _profile(world, "--json", tmp_path / "r.json", "--html", tmp_path / "r.html", model=model)
    assert result.exit_code == 0, result.output
    assert f"warning: {tmp_path / 'mlp.calibration.json'}: not a usable calibration record ({expected}" \
        in result.output
    assert json.loads((tmp_path / "r.json").read_text())["activations"] == []
    assert "Transfer curve" not in (tmp_path / "r.html").read_text()


def test_profile_skips_bad_samples_only_when_asked(world, tmp_path: Path) -> None:
    values = np.load(world["eval"])["x"]
    values[3, 0], values[17, 5] = np.nan, np.inf
    data = tmp_path / "nan.npz"
    np.savez(data, x=values)
    refused = _profile(world, data=data)
    assert refused.exit_code == 1 and "sample 3 contains NaN or Inf" in refused.output
    assert "--skip-bad-samples" in refused.output
    result = _profile(world, "--skip-bad-samples", "--json", tmp_path / "r.json", data=data)
    assert result.exit_code == 0 and "skipped 2 sample(s) with NaN/Inf" in result.output, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["bad_samples"] == ["nan.npz[3]", "nan.npz[17]"] and report["samples"] == len(values) - 2


def test_profile_says_latency_runs_are_ignored_on_an_emulated_device(world, tmp_path: Path) -> None:
    result = _profile(world, "--json", tmp_path / "r.json", model=world["mlp_tflite"], device="npu-table")
    assert result.exit_code == 0, result.output
    assert "--latency-runs is ignored: device npu-table is emulated" in result.output
    assert json.loads((tmp_path / "r.json").read_text())["latency_ms"] is None
    quiet = invoke("profile-device", world["mlp_tflite"], "--device", "npu-table", "--baseline", world["mlp"],
                   "--data", world["eval"])
    assert quiet.exit_code == 0 and "--latency-runs" not in quiet.output


# -- profile-device: outputs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["json-is-model", "html-hard-link-to-baseline", "json-is-data", "json-is-gate",
                                  "json-is-html"])
def test_profile_outputs_never_overwrite_inputs(world, tmp_path: Path, case: str) -> None:
    model, baseline, data = (tmp_path / name for name in ("mlp.int8.qdq.onnx", "mlp.onnx", "eval.npz"))
    for source, copy_to in ((world["mlp_int8"], model), (world["mlp"], baseline), (world["eval"], data)):
        copy_to.write_bytes(source.read_bytes())
    gate_baseline = tmp_path / "gate.json"
    gate_baseline.write_bytes(world["mlp_report"].read_bytes())
    options: list[object] = ["--gate", gate_baseline]
    if case == "json-is-model":
        options += ["--json", model]
    elif case == "html-hard-link-to-baseline":
        os.link(baseline, tmp_path / "r.html")
        options += ["--json", tmp_path / "r.json", "--html", tmp_path / "r.html"]
    elif case == "json-is-data":
        options += ["--json", data]
    elif case == "json-is-gate":
        options += ["--json", gate_baseline]
    else:
        options += ["--json", tmp_path / "r.out", "--html", tmp_path / "r.out"]
    inputs = [model, baseline, data, gate_baseline]
    before = [sha(p) for p in inputs]
    result = _profile(world, *options, model=model, baseline=baseline, data=data)
    assert result.exit_code == 2, result.output
    assert "would overwrite the input" in result.output or "are the same file" in result.output
    assert [sha(p) for p in inputs] == before
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "r.out").exists()


def test_profile_checks_destinations_and_the_gate_baseline_before_the_run(world, tmp_path: Path) -> None:
    missing = _profile(world, "--json", tmp_path / "r.json", "--html", tmp_path / "nowhere" / "r.html")
    assert missing.exit_code == 1 and f"folder {tmp_path / 'nowhere'} does not exist" in missing.output
    folder = _profile(world, "--json", tmp_path)
    assert folder.exit_code in (1, 2) and str(tmp_path) in folder.output
    broken = tmp_path / "gate.json"
    broken.write_text(json.dumps({**json.loads(world["mlp_report"].read_text()), "outputs": []}))
    result = _profile(world, "--json", tmp_path / "r.json", "--gate", broken)
    assert result.exit_code == 1 and f"{broken}: outputs is a list, expected an object" in result.output
    assert not (tmp_path / "r.json").exists() and "SQNR" not in result.output  # refused before profiling


def test_profile_then_gate_refuses_the_baseline_of_another_model(world, tmp_path: Path) -> None:
    result = _profile(world, "--json", tmp_path / "r.json", "--gate", world["other_report"])
    assert result.exit_code == 1 and "not the same model" in result.output, result.output
    assert (tmp_path / "r.json").exists()  # the report is kept: it is this model's, only the gate refused


def test_report_carries_the_float_models_fingerprint(world) -> None:
    """The fingerprint is the hash quantize records for the float model, and the float model's own signature."""
    report = json.loads(world["mlp_report"].read_text())
    record = json.loads((world["mlp_int8"].parent / "mlp.calibration.json").read_text())
    graph = onnx.load(world["mlp"]).graph
    assert report["fingerprint"]["float_model_sha256"] == record["model_sha256"]
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in graph.input]
    assert report["fingerprint"]["inputs"] == [{"name": v.name, "dtype": "float32", "shape": shape}
                                               for v, shape in zip(graph.input, dims, strict=True)]
    assert report["fingerprint"]["outputs"][0]["name"] == graph.output[0].name
    other = json.loads(world["other_report"].read_text())["fingerprint"]
    assert other["float_model_sha256"] != report["fingerprint"]["float_model_sha256"]
    assert {k: v for k, v in other.items() if k != "float_model_sha256"} == \
        {k: v for k, v in report["fingerprint"].items() if k != "float_model_sha256"}
    assert report["schema_version"] == 2


def test_gating_the_baseline_against_itself_is_warned_about(pair) -> None:
    """Before, `gate b.json --baseline b.json` passed silently: a wrong path in CI never gates anything."""
    _, baseline = pair
    result = invoke("gate", baseline, "--baseline", baseline)
    assert result.exit_code == 0 and "is the baseline itself" in result.output, result.output
