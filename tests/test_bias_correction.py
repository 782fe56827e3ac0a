"""Bias correction (issue 14, outlier handling): each quantized bias absorbs its layer's mean int8-vs-float output
error on calibration samples, corrected level by level. The planted case: per-tensor weights round a channel of
small weights up, every one, so that channel's output mean drifts by a known amount; after correction the int8
model's channel mean matches float on onnxruntime and on LiteRT alike (the plan owns the corrected codes, every
form carries them). The level-by-level measurement on cached segments equals one run of the whole model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import edgeact
from edgeact.api import prepare, statistics
from edgeact.pipeline import bias_correction
from edgeact.pipeline.calibrate import first_batches
from edgeact.planning.plan import PlanOptions, make_plan
from edgeact.runtimes.litert import run_litert
from edgeact.runtimes.onnxruntime import ort_session, run_ort
from examples.onnx_models import tensor

INPUTS = 256
SMALL = 0.0045  # channel 0's weights: 0.57 of the per-tensor step (max |w| = 1 -> 1/127), all rounded up to 1 step


def _drifting_model(path: Path) -> Path:
    """x[N,256] in [0,1] -> Gemm(4 channels) -> Relu-free output: channel 0 = SMALL * sum(x) plus bias."""
    rng = np.random.default_rng(3)
    weight = rng.uniform(-1.0, 1.0, (4, INPUTS)).astype(np.float32)
    weight[1, 0] = 1.0  # the per-tensor maximum: step 1/127
    weight[0] = SMALL
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["hidden"], transB=1, name="dense"),
             helper.make_node("Gemm", ["hidden", "w2", "b2"], ["y"], transB=1, name="head")]
    initializers = [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(np.full(4, 0.1, np.float32), "b"),
                    numpy_helper.from_array(np.eye(4, dtype=np.float32), "w2"),
                    numpy_helper.from_array(np.zeros(4, np.float32), "b2")]
    graph = helper.make_graph(nodes, "drift", [tensor("x", ["N", INPUTS])], [tensor("y", ["N", 4])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    return path


def _calibration(path: Path, count: int = 200) -> Path:
    np.savez(path, x=np.random.default_rng(5).uniform(0.0, 1.0, (count, INPUTS)).astype(np.float32))
    return path


@pytest.fixture(scope="module")
def drifting(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("drift")
    return _drifting_model(folder / "drift.onnx"), _calibration(folder / "calib.npz")


def _channel_error(outputs: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return (outputs.astype(np.float64) - reference).mean(axis=0)


def test_planted_drift_is_corrected_on_onnxruntime_and_litert(drifting: tuple[Path, Path], tmp_path: Path) -> None:
    model, calib = drifting
    x = np.load(calib)["x"][:64]
    reference = run_ort(ort_session(model.read_bytes()), {"x": x})["y"].astype(np.float64)
    results = {}
    for corrected in (False, True):
        result = edgeact.quantize(model, calib, output_dir=tmp_path / str(corrected), per_tensor=True,
                                  formats=["onnx-qdq", "tflite"], input_shapes={"x": (1, INPUTS)},
                                  bias_correction=corrected)
        qdq = run_ort(ort_session(result.paths["onnx-qdq"].read_bytes()), {"x": x})["y"]
        tflite = result.paths["tflite"].read_bytes()
        litert = np.concatenate([run_litert(tflite, [row[None]])[0] for row in x])
        step = result.record["tensors"]["y"]["scale"]
        results[corrected] = (_channel_error(qdq, reference), _channel_error(litert, reference), step,
                              result.record["bias_correction"])
    drift = (1 / 127 - SMALL) * INPUTS * 0.5  # every small weight rounded up by (step - SMALL), times mean(x)
    plain_qdq, plain_litert, step, plain_record = results[False]
    assert not plain_record["applied"] and "--bias-correction turns it on" in plain_record["why"]
    assert drift > 2 * step  # the planted drift is worth measuring at the output grid
    assert abs(plain_qdq[0] - drift) < 0.6 * step and abs(plain_litert[0] - drift) < 0.6 * step
    fixed_qdq, fixed_litert, step, record = results[True]
    assert record["applied"] and record["levels"] == 2 and record["samples"] == 64
    assert np.abs(fixed_qdq).max() < 0.6 * step and np.abs(fixed_litert).max() < 0.6 * step  # output rounding only
    moved = {entry["constant"]: entry for entry in record["biases"]}
    assert set(moved) == {"b", "b2"} and moved["b"]["level"] == 1 and moved["b2"]["level"] == 2
    assert moved["b"]["max_shift"] == pytest.approx(drift, rel=0.1)  # the float shift it folded in, channel 0
    assert record["worst_output_sqnr_db"]["after"] > record["worst_output_sqnr_db"]["before"]


def test_segmented_levels_equal_one_whole_model_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The level loop reruns only cached segments; cutting the model differently, or caching nothing (or only some
    batches) within the memory bound, must not change one code."""
    digits = Path(__file__).parents[1] / "examples" / "digits"
    prepared = prepare(str(digits / "cnn_silu.onnx"), str(digits / "cnn_silu.calib.npz"), static=False)
    plan = make_plan(prepared.view, statistics(prepared, prepared.data, [], 8, False).tensors, PlanOptions())
    batches = first_batches(prepared.data, 32, 8, prepared)
    codes = {}
    for segments, cache_bytes in ((1, 1 << 30), (3, 1 << 30), (16, 1 << 30), (16, 0), (16, 40_000), (16, 70_000)):
        monkeypatch.setattr(bias_correction, "SEGMENTS", segments)
        monkeypatch.setattr(bias_correction, "CACHE_BYTES", cache_bytes)  # 0: every batch reruns from its inputs
        corrected, record = bias_correction.correct_biases(prepared, plan, batches)
        assert record["applied"] and record["levels"] == 3
        codes[segments, cache_bytes] = [c.codes.tobytes() for c in corrected.constants if c.role == "bias"]
    assert len(set(map(tuple, codes.values()))) == 1
    codes[1] = codes[1, 1 << 30]
    assert codes[1] != [c.codes.tobytes() for c in plan.constants if c.role == "bias"]  # something moved


def test_without_samples_the_plan_is_unchanged_and_says_why(drifting: tuple[Path, Path], tmp_path: Path) -> None:
    model, calib = drifting
    stats = edgeact.calibrate(model, calib, stats_out=tmp_path / "stats.json")
    assert stats.samples == 200
    result = edgeact.quantize(model, stats=[tmp_path / "stats.json"], output_dir=tmp_path / "out", per_tensor=True,
                              bias_correction=True)
    record = result.record["bias_correction"]
    assert not record["applied"] and "no calibration samples" in record["why"]


def test_bias_record_fields_match_the_schema_and_summary(drifting: tuple[Path, Path], tmp_path: Path) -> None:
    model, calib = drifting
    from edgeact.cli_quantize import summary_text

    result = edgeact.quantize(model, calib, output_dir=tmp_path, per_tensor=True, bias_correction=True,
                              bias_samples=16)
    assert result.document is not None and result.document.bias_correction.samples == 16
    assert "bias correction: 2 biases in 2 levels on 16 calibration samples" in summary_text(result.document)
    assert result.record["options"]["bias_correction"] is True


def test_helper_makes_initializers_overridable() -> None:
    from edgeact.graph.observe import with_fed_initializers

    nodes = [helper.make_node("Add", ["x", "c"], ["y"])]
    graph = helper.make_graph(nodes, "g", [tensor("x", [2])], [tensor("y", [2])],
                              [numpy_helper.from_array(np.ones(2, np.float32), "c")])
    payload = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    session = ort_session(with_fed_initializers(payload, ["c"]))
    x = np.zeros(2, np.float32)
    assert run_ort(session, {"x": x})["y"].tolist() == [1.0, 1.0]
    assert run_ort(session, {"x": x, "c": np.full(2, 5.0, np.float32)})["y"].tolist() == [5.0, 5.0]
    assert TensorProto.FLOAT == onnx.load_model_from_string(with_fed_initializers(payload, ["c"])).graph.input[1] \
        .type.tensor_type.elem_type


def _gemm(name: str, x: str, out: str, shape: tuple[int, int], rng: np.random.Generator) -> tuple:
    weight = numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), f"{name}_w")
    bias = numpy_helper.from_array(rng.normal(0, 0.3, shape[:1]).astype(np.float32), f"{name}_b")
    return helper.make_node("Gemm", [x, weight.name, bias.name], [out], transB=1, name=name), [weight, bias]


def test_an_early_graph_output_is_measured_and_corrected(tmp_path: Path) -> None:
    """y1 leaves the graph in its first segment while y2 needs three levels: the final run must recompute y1."""
    rng = np.random.default_rng(0)
    parts = [_gemm("g1", "x", "y1", (4, 16), rng), _gemm("g2", "x", "h", (16, 16), rng),
             _gemm("g3", "hr", "h3", (16, 16), rng), _gemm("g4", "h3r", "y2", (4, 16), rng)]
    nodes = [parts[0][0], parts[1][0], helper.make_node("Relu", ["h"], ["hr"]), parts[2][0],
             helper.make_node("Relu", ["h3"], ["h3r"]), parts[3][0]]
    outputs = [tensor("y1", ["N", 4]), tensor("y2", ["N", 4])]
    graph = helper.make_graph(nodes, "early", [tensor("x", ["N", 16])], outputs,
                              [init for _, inits in parts for init in inits])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "early.onnx")
    np.savez(tmp_path / "calib.npz", x=rng.uniform(-1, 1, (64, 16)).astype(np.float32))
    result = edgeact.quantize(tmp_path / "early.onnx", tmp_path / "calib.npz", output_dir=tmp_path / "out",
                              bias_correction=True)
    record = result.record["bias_correction"]
    assert record["applied"] and record["levels"] == 3 and len(record["biases"]) == 4
    assert [entry["level"] for entry in record["biases"]] == sorted(entry["level"] for entry in record["biases"])


def test_a_broadcast_bias_is_skipped_with_its_reason(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    first, inits = _gemm("g1", "x", "h", (8, 16), rng)
    second, more = _gemm("g2", "h", "y", (4, 8), rng)
    one = numpy_helper.from_array(np.array([0.2], np.float32), "g1_b")  # one value for all 8 channels
    graph = helper.make_graph([first, second], "bcast", [tensor("x", ["N", 16])], [tensor("y", ["N", 4])],
                              [inits[0], one, *more])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "bcast.onnx")
    np.savez(tmp_path / "calib.npz", x=rng.uniform(-1, 1, (64, 16)).astype(np.float32))
    record = edgeact.quantize(tmp_path / "bcast.onnx", tmp_path / "calib.npz", output_dir=tmp_path / "out",
                              per_tensor=True, bias_correction=True).record["bias_correction"]
    assert record["skipped"] == [{"constant": "g1_b",
                                  "why": "one value broadcast over every channel: no per-channel correction"}]
    assert [entry["constant"] for entry in record["biases"]] == ["g2_b"] and record["levels"] == 1


def test_bias_samples_below_one_is_a_usage_error(drifting: tuple[Path, Path], tmp_path: Path) -> None:
    from edgeact.errors import UsageError

    model, calib = drifting
    with pytest.raises(UsageError, match="bias_samples=0"):
        edgeact.quantize(model, calib, output_dir=tmp_path, bias_correction=True, bias_samples=0)
