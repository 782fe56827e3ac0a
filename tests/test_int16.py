"""int16 activations (A16W8, issue 14 item 2, ONNX forms): ``--int16`` and ``--budget`` promotions give groups
symmetric int16 grids that onnxruntime runs — as com.microsoft Q/DQ below opset 21, standard Q/DQ from 21 — with
int8 weights; an int16 activation's onnx-table Gather agrees with onnxruntime's float op between int16 Q/DQ; the
switchable model's int16 side is the onnx-qdq export of the all-int16 plan bit for bit. The .tflite is 16x8 (int16
activations, int8 weights, int64 bias) where the target's profile lists the kernels: it runs on LiteRT bit-exact with
the emulator; a target with none says so before any work, and a budget promotion the target cannot run in 16x8 goes
float, saying why (tests/test_tflite_op_cases.py checks every op case in 16x8)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

import edgeact
from edgeact import api
from edgeact.analysis.sensitivity import int16_alternative, trials_for
from edgeact.errors import UsageError
from edgeact.metrics import sqnr_db
from edgeact.pipeline.calibrate import first_batches
from edgeact.planning.plan import PlanOptions
from edgeact.runtimes.onnxruntime import ort_session, run_ort
from examples.onnx_models import GraphBuilder, sample_inputs, tensor

ROOT = Path(__file__).parents[1]
DIGITS = ROOT / "examples" / "digits"


def _quantize(tmp_path: Path, name: str, **options) -> edgeact.QuantizeResult:  # type: ignore[no-untyped-def]
    return edgeact.quantize(DIGITS / f"{name}.onnx", DIGITS / f"{name}.calib.npz", output_dir=tmp_path, **options)


def _outputs(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return run_ort(ort_session(path.read_bytes()), feeds)


def test_int16_tanh_runs_on_onnxruntime_and_beats_int8(tmp_path: Path) -> None:
    eight = _quantize(tmp_path / "a", "mlp_tanh")
    wide = _quantize(tmp_path / "b", "mlp_tanh", int16=["Tanh"])
    tensors = wide.record["tensors"]
    for activation in wide.record["activations"]:
        for side in ("input", "output"):
            grid = tensors[activation[side]]
            assert grid["dtype"] == "int16" and grid["zero_point"] == 0  # TFLite's 16x8 scheme: symmetric
        assert activation["input_grid"]["dtype"] == "int16" and len(activation["table"]) == 513
    assert any("--int16 Tanh" in t.get("int16_why", "") for t in tensors.values())
    assert all(c["dtype"] == "int8" for c in wide.record["constants"] if c["role"] == "weight")  # A16W8
    qdq = onnx.load(wide.paths["onnx-qdq"])  # opset 17: onnxruntime's com.microsoft Q/DQ carry the int16 codes
    int16_nodes = [n for n in qdq.graph.node if n.domain == "com.microsoft"]
    assert int16_nodes and {n.op_type for n in int16_nodes} == {"QuantizeLinear", "DequantizeLinear"}
    feeds = {"x": np.load(DIGITS / "mlp_tanh.eval.npz")["x"]}
    reference = _outputs(DIGITS / "mlp_tanh.onnx", feeds)["logits"]
    db = {name: sqnr_db(reference, _outputs(result.paths[form], feeds)["logits"])
          for name, result in (("int8", eight), ("int16", wide)) for form in ("onnx-qdq",)}
    assert db["int16"] > db["int8"] + 0.5, db
    table = _outputs(wide.paths["onnx-table"], feeds)["logits"]
    assert sqnr_db(reference, table) > db["int8"]
    schema = json.loads((ROOT / "docs" / "schema" / "calibration-record.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(wide.paths["record"].read_text()))


def _gelu_model(folder: Path, opset: int) -> tuple[Path, Path]:
    g = GraphBuilder(seed=3)
    h = g.linear("x", 8, 16, gain=1.0)
    g.nodes.append(helper.make_node("Gelu", [h], ["y"], name="gelu"))
    graph = helper.make_graph(g.nodes, "gelu", [tensor("x", ["N", 8])], [tensor("y", ["N", 16])], g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)
    path = folder / f"gelu{opset}.onnx"
    path.write_bytes(model.SerializeToString())
    np.savez(folder / "gelu.npz", **sample_inputs(model, 64, seed=4))
    return path, folder / "gelu.npz"


def test_opset_21_uses_standard_int16_qdq_and_the_table_agrees_with_the_float_op(tmp_path: Path) -> None:
    model, data = _gelu_model(tmp_path, 21)
    result = edgeact.quantize(model, data, output_dir=tmp_path / "out", int16=["gelu"])
    qdq = onnx.load(result.paths["onnx-qdq"])
    assert not [n for n in qdq.graph.node if n.domain]  # int16 Q/DQ are standard from opset 21
    assert {onnx.TensorProto.INT16} <= {i.data_type for i in qdq.graph.initializer if i.name.endswith("zero_point")}
    (activation,) = result.record["activations"]
    step = result.record["tensors"]["y"]["scale"]
    feeds = {"x": np.load(data)["x"]}
    float_op = _outputs(result.paths["onnx-qdq"], feeds)["y"]  # onnxruntime's Gelu between int16 DQ and Q
    gathered = _outputs(result.paths["onnx-table"], feeds)["y"]  # the exact table: f rounded at every int16 code
    table = onnx.load(result.paths["onnx-table"])
    assert "Gather" in {n.op_type for n in table.graph.node} and "Gelu" not in {n.op_type for n in table.graph.node}
    assert activation["error"]["interpolation_bound"] == 0.0 and activation["table_sampled"]
    # the float32 op rounds the same values as the float64 table: they differ by at most one step, and rarely
    assert np.abs(float_op - gathered).max() <= 1.01 * step
    assert np.mean(np.abs(float_op - gathered) > step / 2) < 0.01


def test_the_switchable_int16_side_is_the_all_int16_qdq_export(tmp_path: Path) -> None:
    prepared = api.prepare(DIGITS / "transformer_gelu.onnx", DIGITS / "transformer_gelu.calib.npz")
    stats = api.statistics(prepared, prepared.data)
    options = PlanOptions()
    decided = api.plan(prepared, stats, options)
    wide = int16_alternative(prepared.view, stats.tensors, options, decided)
    assert {g.dtype for g in wide.grids.values()} == {"int16"} and set(wide.grids) == set(decided.grids)
    batches = first_batches(prepared.data, 16, 8, prepared)
    trials = trials_for(prepared, decided, batches, 6, alternative=wide)
    # onnxruntime rewrites DQ(int8 weight) -> MatMul reading int16 values into MatMulNBits, whose default accuracy
    # level computes in int8 (the plan's hazard says so); edgeact's sessions set level 1: the QDQ model as written
    exported = api.export(prepared, wide, "onnx-qdq").payload
    assert any("MatMulNBits" in hazard for hazard in wide.hazards)
    default = ort.InferenceSession(exported, providers=["CPUExecutionProvider"])
    first = run_ort(default, batches[0])
    assert any(not np.array_equal(first[o], v) for o, v in trials.runner.outputs_of(trials.float_cache)[0].items())
    session = ort_session(exported)
    for batch, values in zip(batches, trials.runner.outputs_of(trials.float_cache), strict=True):
        for output, expected in run_ort(session, batch).items():
            np.testing.assert_array_equal(values[output], expected)
    session = ort_session(api.export(prepared, decided, "onnx-qdq").payload)  # and the int8 side is still int8
    for batch, values in zip(batches, trials.runner.outputs_of(trials.int8_cache), strict=True):
        for output, expected in run_ort(session, batch).items():
            np.testing.assert_array_equal(values[output], expected)


def _outlier_channel_model(folder: Path) -> tuple[Path, Path]:
    """x -> Linear whose last output channel is 1000x the others -> wide -> Tanh -> Linear -> y: an int8 grid for
    ``wide`` has steps of ~8 for channels of size ~1; an int16 grid, ~0.03."""
    g = GraphBuilder(seed=5)
    weight = g.rng.normal(0.0, 0.35, size=(8, 8))
    weight[:, -1] *= 1000.0
    wide = g.op("MatMul", "x", g.const(weight, "w"))
    g.nodes.append(helper.make_node("Identity", [g.linear(g.op("Tanh", wide), 8, 4)], ["y"], name="out"))
    model = g.model([tensor("x", ["N", 8])], [tensor("y", ["N", 4])])
    path = folder / "outlier_channel.onnx"
    path.write_bytes(model.SerializeToString())
    np.savez(folder / "outlier_channel.npz", **sample_inputs(model, 64, seed=2))
    return path, folder / "outlier_channel.npz"


def test_budget_promotes_to_int16_keeps_every_node_quantized_and_the_written_model_meets_it(tmp_path: Path) -> None:
    model, data = _outlier_channel_model(tmp_path)
    feeds = {"x": np.load(data)["x"][:16]}
    reference = _outputs(model, feeds)["y"]
    plain = edgeact.quantize(model, data, formats=["onnx-qdq"], output_dir=tmp_path / "plain")
    assert sqnr_db(reference, _outputs(plain.paths["onnx-qdq"], feeds)["y"]) < 25.0
    result = edgeact.quantize(model, data, output_dir=tmp_path / "budget", budget="sqnr>=35")
    budget = result.record["budget"]
    assert budget["met"] and budget["precision"] == "int16" and "note" not in budget
    assert {p["precision"] for p in budget["promotions"]} == {"int16"}
    assert result.record["fallbacks"] == []  # every node still quantized
    assert budget["int8_share"]["int16_mac_ops"] >= 1
    for form in ("onnx-qdq", "onnx-table"):  # measured here, on the files written
        assert sqnr_db(reference, _outputs(result.paths[form], feeds)["y"]) >= 35.0, form


def test_budget_falls_back_to_float_where_int16_cannot_meet_it(tmp_path: Path) -> None:
    """The outlier of this model sits in a constant operand (int8 in A16W8): no int16 grid fixes it."""
    from tests.test_sensitivity import _outlier_model

    model, data = _outlier_model(tmp_path)
    result = edgeact.quantize(model, data, output_dir=tmp_path / "out", budget="sqnr>=30")
    budget = result.record["budget"]
    assert budget["met"] and budget["precision"] == "float" and "A16W8 keeps weights int8" in budget["note"]
    assert {p["precision"] for p in budget["promotions"]} == {"float"}


def test_int16_for_a_target_without_16x8_kernels_is_a_usage_error_before_any_work(tmp_path: Path) -> None:
    missing = tmp_path / "missing.onnx"
    with pytest.raises(UsageError, match="runs no 16x8 op"):
        edgeact.quantize(missing, tmp_path / "x.npz", formats=["tflite"], target="npu-table", int16=["Tanh"])
    with pytest.raises(UsageError, match="runs no 16x8 op"):
        edgeact.quantize(missing, tmp_path / "x.npz", formats=["onnx-qdq", "tflite"], target="npu-table",
                         budget="sqnr>=30", promote="int16")
    run = subprocess.run([sys.executable, "-m", "edgeact.cli", "quantize", str(DIGITS / "mlp_tanh.onnx"), "--calib",
                          str(DIGITS / "mlp_tanh.calib.npz"), "--format", "tflite", "--target", "npu-table",
                          "--int16", "Tanh", "-o", str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2 and "runs no 16x8 op" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def _profile(model: Path, device: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess, dict]:  # type: ignore[type-arg]
    report = tmp_path / f"{device}.json"
    run = subprocess.run([sys.executable, "-m", "edgeact.cli", "profile-device", str(model), "--device", device,
                          "--baseline", str(DIGITS / "mlp_tanh.onnx"), "--data", str(DIGITS / "mlp_tanh.calib.npz"),
                          "--max-samples", "64", "--json", str(report)], capture_output=True, text=True, cwd=ROOT)
    return run, json.loads(report.read_text()) if run.returncode == 0 else {}


def test_16x8_tflite_runs_on_litert_bit_exact_and_tflm_refuses_its_int16_table(tmp_path: Path) -> None:
    """--int16 Tanh --format tflite: the Gemms around each Tanh run 16x8, the tanh is an int16 GATHER table; LiteRT
    runs it (reference kernels and the default interpreter) bit-exact with the emulator at the ONNX model's SQNR;
    TFLite Micro has no int16 GATHER, and profile-device says so before running."""
    run = subprocess.run([sys.executable, "-m", "edgeact.cli", "quantize", str(DIGITS / "mlp_tanh.onnx"), "--calib",
                          str(DIGITS / "mlp_tanh.calib.npz"), "--format", "tflite,onnx-qdq", "--int16", "Tanh",
                          "-o", str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "op(s) run 16x8" in run.stdout + run.stderr  # XNNPACK (the default target) delegates none of them
    model = tmp_path / "out" / "mlp_tanh.int8.tflite"
    record = json.loads((tmp_path / "out" / "mlp_tanh.calibration.json").read_text())
    tflite_db, onnx_db = (record["evaluation"][form]["logits"] for form in ("tflite", "onnx-qdq"))
    assert abs(tflite_db - onnx_db) < 0.5 and tflite_db > 42.0
    for device in ("litert-reference", "litert-xnnpack"):
        run, report = _profile(model, device, tmp_path)
        assert run.returncode == 0, run.stderr
        assert report["outputs"]["logits"]["emulator"]["equal_codes"] == 1.0
    run, _ = _profile(model, "tflm", tmp_path)
    assert run.returncode == 2 and "16x8 (int16) ops ['GATHER']" in run.stderr and "Traceback" not in run.stderr


def test_budget_promotion_the_target_cannot_run_in_16x8_goes_float(tmp_path: Path) -> None:
    """On TFLite Micro an int16 tanh table cannot run (no int16 GATHER): the budget's int16 promotion of the Tanh's
    group goes float, the record says why, and the .tflite written runs on TFLite Micro bit-exact."""
    result = _quantize(tmp_path / "out", "mlp_tanh", formats=["tflite"], target="tflm", budget="sqnr>=46")
    budget = result.record["budget"]
    assert budget["met"] and budget["precision"] == "int16"
    floated = [p for p in budget["promotions"] if p.get("why")]
    assert floated and all(p["precision"] == "float" and "no 16x8 GATHER" in p["why"] for p in floated)
    assert any(p["precision"] == "int16" for p in budget["promotions"])
    run, report = _profile(result.paths["tflite"], "tflm", tmp_path)
    assert run.returncode == 0, run.stderr
    assert report["outputs"]["logits"]["emulator"]["equal_codes"] == 1.0


def test_an_int16_pattern_matching_nothing_is_a_hazard(tmp_path: Path) -> None:
    result = _quantize(tmp_path, "mlp_tanh", int16=["NoSuchOp"], formats=["onnx-qdq"])
    assert any("--int16 'NoSuchOp' matched no node" in h for h in result.record["hazards"])
    assert {t["dtype"] for t in result.record["tensors"].values()} == {"int8"}


def test_profile_device_runs_an_int16_model_and_reports_its_tables(tmp_path: Path) -> None:
    wide = _quantize(tmp_path, "mlp_tanh", int16=["Tanh"], formats=["onnx-qdq"])
    html = tmp_path / "report.html"
    run = subprocess.run([sys.executable, "-m", "edgeact.cli", "profile-device", str(wide.paths["onnx-qdq"]),
                          "--device", "onnxruntime-cpu", "--baseline", str(DIGITS / "mlp_tanh.onnx"),
                          "--data", str(DIGITS / "mlp_tanh.eval.npz"), "--html", str(html)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "emulator agreement 100.00%" in run.stdout  # onnx.reference runs the com.microsoft int16 Q/DQ too
    assert run.stdout.count("activation /net/") == 2 and "not a usable calibration record" not in run.stdout
    assert html.is_file()  # the transfer plots of int16 tables drew (a failure there exits 1)


def test_unknown_promotion_and_alternative_are_usage_errors_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown promotion 'int4'"):
        edgeact.quantize(tmp_path / "missing.onnx", tmp_path / "x.npz", budget="sqnr>=30", promote="int4")
    with pytest.raises(UsageError, match="unknown alternative 'int4'"):
        edgeact.sensitivity(tmp_path / "missing.onnx", tmp_path / "x.npz", alternative="int4")


def test_int16_spread_past_a_promotion_to_a_node_the_target_cannot_run_goes_float(tmp_path: Path) -> None:
    """Promoting a Tanh's input group makes its output group int16 too (one table): a DepthToSpace reading that
    output has no 16x8 kernel on LiteRT, so the promotion that spread there goes float and the plan lowers."""
    from edgeact.analysis.budget import Promotion, _fitted_plan, parse_budget
    from edgeact.pipeline.calibrate import statistics
    from edgeact.pipeline.export import tflite_check
    from edgeact.pipeline.prepare import prepare
    from tests.test_op_quantizers import case_model

    case = {"op": "spread", "input": [8, 4, 4], "graph": [["h", "Conv", ["x", "w:8x8x1x1", "b:8"]],
                                                          ["t", "Tanh", ["h"]],
                                                          ["y", "DepthToSpace", ["t"], {"blocksize": 2}]]}
    onnx.save(case_model(case), tmp_path / "m.onnx")
    np.savez(tmp_path / "c.npz", x=np.random.default_rng(1).normal(0, 1.5, (32, 8, 4, 4)).astype(np.float32))
    prepared = prepare(str(tmp_path / "m.onnx"), tmp_path / "c.npz", static=True)
    stats = statistics(prepared, prepared.data).tensors
    check = tflite_check(prepared, "litert-reference")
    promotions = [Promotion("h", ("Conv_0", "Tanh_1"), 1.0, "int16")]
    plan = _fitted_plan(prepared, stats, PlanOptions(target="litert-reference"), parse_budget("sqnr>=30"),
                        promotions, check)
    assert check(plan) is None and not plan.int16
    assert promotions[0].precision == "float" and "DEPTH_TO_SPACE" in promotions[0].why


def test_auto_promotion_follows_the_target_profile() -> None:
    """int16 for ONNX forms and for .tflite targets whose fast path runs 16x8; float for LiteRT's XNNPACK (which
    delegates no int16 op) and for a target that runs no 16x8 op at all."""
    assert api.promotion_precision("auto", ["onnx-qdq"], False, "litert") == "int16"
    assert api.promotion_precision("auto", ["onnx-qdq", "tflite"], False, "litert") == "float"
    assert api.promotion_precision("auto", ["tflite"], False, "litert-reference") == "int16"
    assert api.promotion_precision("auto", ["tflite"], False, "tflm") == "int16"
    assert api.promotion_precision("auto", ["tflite"], False, "npu-table") == "float"
    assert api.promotion_precision("int16", ["tflite"], False, "litert") == "int16"


def test_int16_table_on_a_target_without_int16_gather_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "edgeact.cli", "quantize", str(DIGITS / "mlp_tanh.onnx"), "--calib",
                          str(DIGITS / "mlp_tanh.calib.npz"), "--format", "tflite", "--target", "tflm", "--int16",
                          "Tanh", "-o", str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "/net/net.1/Tanh" in run.stderr and "no 16x8 GATHER kernel" in run.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
