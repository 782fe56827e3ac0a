"""The general mechanisms that published models need, each on one small synthetic model that fails without it:
old opsets, exporter spellings (Erf-GELU, x*HardSigmoid(x), decomposed LayerNorm), a batch on axis 1, ranges that
exclude zero, dynamic H/W into TFLite, and unknown elementwise spellings becoming one exact table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import edgeact
from bench.ort_baseline import ort_quantize_static
from edgeact.cli import main
from edgeact.metrics import sqnr_db
from edgeact.numerics import dequantize, quantize
from edgeact.numerics.rounding import Rounding
from edgeact.runtimes.litert import run_litert
from examples.onnx_models import GraphBuilder, sample_inputs, tensor


def invoke(*args: object):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, [str(a) for a in args])


def _run(model: Path | bytes, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"]).run(None, feeds)


def _save(tmp_path: Path, model: onnx.ModelProto, name: str = "m") -> Path:
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, path)
    return path


# ---- an opset-11 model with exporter spellings --------------------------------------------------------------------
def _opset11_spellings() -> onnx.ModelProto:
    """Linear -> decomposed LayerNorm -> Erf-GELU -> Linear -> x * HardSigmoid(x) (Paddle) -> Linear, at opset 11."""
    g = GraphBuilder(seed=3)
    h = g.layer_norm(g.linear("x", 16, 16), 16)
    erf = g.op("Erf", g.op("Div", h, g.const(1.4142135381698608)))
    h = g.op("Mul", g.op("Mul", h, g.op("Add", erf, g.const(1.0))), g.const(0.5))
    h = g.linear(h, 16, 16)
    h = g.op("Mul", h, g.op("HardSigmoid", h, alpha=0.2, beta=0.5))
    g.nodes.append(helper.make_node("Identity", [g.linear(h, 16, 4)], ["y"], name="out"))
    return g.model([tensor("x", ["N", 16])], [tensor("y", ["N", 4])], opset=11)


def test_an_opset_11_model_with_exporter_spellings_quantizes_to_every_format(tmp_path: Path) -> None:
    model = _opset11_spellings()
    path = _save(tmp_path, model)
    np.savez(tmp_path / "calib.npz", **sample_inputs(model, 64, seed=1))
    result = edgeact.quantize(path, tmp_path / "calib.npz", output_dir=tmp_path / "out",
                              formats=["onnx-qdq", "onnx-table", "tflite"])
    record = result.record
    assert record["opset"] == {"opset": 13, "upgraded_from": 11}
    functions = sorted(a["function"] for a in record["activations"])
    assert functions == ["elementwise", "gelu"], functions
    assert "LayerNorm" in {n["op_type"] for n in record["quantized_nodes"]}
    assert record["fallbacks"] == []
    held_out = sample_inputs(model, 32, seed=2)
    reference = _run(path, held_out)[0]
    for form in ("onnx-qdq", "onnx-table"):
        assert sqnr_db(reference, _run(result.paths[form], held_out)[0]) > 20.0, form  # six int8 roundings deep
    payload = result.paths["tflite"].read_bytes()
    lite = np.concatenate([run_litert(payload, [held_out["x"][i : i + 1]])[0] for i in range(32)])
    assert sqnr_db(reference, lite) > 20.0


# ---- a batch on axis 1 ------------------------------------------------------------------------------------------
def _state_model() -> onnx.ModelProto:
    """y = tanh(x W + state[0] + state[1]) with x [N, 8] and a recurrent-style state [2, N, 4]."""
    g = GraphBuilder(seed=5)
    first = g.op("Gather", "state", g.const(np.array(0), dtype=np.int64), axis=0)
    second = g.op("Gather", "state", g.const(np.array(1), dtype=np.int64), axis=0)
    h = g.op("Add", g.op("Add", g.linear("x", 8, 4), first), second)
    g.nodes.append(helper.make_node("Tanh", [h], ["y"], name="out"))
    return g.model([tensor("x", ["N", 8]), tensor("state", [2, "N", 4])], [tensor("y", ["N", 4])])


def _state_feeds(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {"x": rng.normal(0, 1.5, (n, 8)).astype(np.float32), "state": rng.normal(0, 1, (2, n, 4)).astype(np.float32)}


def test_inputs_batched_on_axis_1_calibrate_merge_and_evaluate(tmp_path: Path) -> None:
    path = _save(tmp_path, _state_model())
    rng = np.random.default_rng(0)
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    for index in range(12):  # a folder of complete feeds, one sample each: [1, 8] and [2, 1, 4]
        np.savez(feeds / f"{index:03d}.npz", **_state_feeds(rng, 1))
    np.savez(tmp_path / "batched.npz", **_state_feeds(rng, 20))  # 20 samples: axis 0 of x, axis 1 of state
    shard_a = edgeact.calibrate(path, feeds, stats_out=tmp_path / "a.json")
    shard_b = edgeact.calibrate(path, tmp_path / "batched.npz", stats_out=tmp_path / "b.json")
    assert (shard_a.samples, shard_b.samples) == (12, 20)
    result = edgeact.quantize(path, tmp_path / "batched.npz", stats=[tmp_path / "a.json"], output_dir=tmp_path / "o",
                              formats=["onnx-qdq", "tflite"])
    assert result.record["calibration"]["samples"] == 32
    assert result.record["static_shapes"]["batch_stays_dynamic"] == {"x": 0, "state": 1}
    assert all(db > 25.0 for form in ("onnx-qdq", "tflite") for db in result.record["evaluation"][form].values())
    held_out = _state_feeds(rng, 16)  # the ONNX model keeps its dynamic batch
    assert sqnr_db(_run(path, held_out)[0], _run(result.paths["onnx-qdq"], held_out)[0]) > 25.0


def test_mismatched_batch_axes_name_each_input_and_its_axis(tmp_path: Path) -> None:
    path = _save(tmp_path, _state_model())
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "bad.npz", x=rng.normal(size=(5, 8)).astype(np.float32),
             state=rng.normal(size=(2, 6, 4)).astype(np.float32))
    result = invoke("quantize", path, "--calib", tmp_path / "bad.npz", "-o", tmp_path / "o")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "bad.npz" in result.output and "x 5 (axis 0)" in result.output and "state 6 (axis 1)" in result.output


# ---- ranges that exclude zero, constant and tiny tensors ----------------------------------------------------------
def _offset_model() -> onnx.ModelProto:
    """Tensors that live in [8, 9] (a sigmoid's input far from 0), a constant 3 and a 1e-30-wide tensor."""
    g = GraphBuilder(seed=7)
    shifted = g.op("Add", g.op("Mul", g.op("Tanh", g.linear("x", 8, 8)), g.const(0.5)), g.const(8.5))
    negative = g.op("Sub", g.const(-4.0), g.op("Sigmoid", shifted))
    constant = g.op("Add", g.op("Mul", "x", g.const(0.0)), g.const(3.0))
    tiny = g.op("Mul", g.op("Tanh", "x"), g.const(1e-30))
    out = g.op("Add", g.op("Add", g.op("Mul", negative, constant), g.op("Mul", tiny, g.const(1e29))), shifted)
    g.nodes.append(helper.make_node("Identity", [g.linear(out, 8, 4)], ["y"], name="out"))
    return g.model([tensor("x", ["N", 8])], [tensor("y", ["N", 4])])


@pytest.mark.parametrize("method", ["auto", "minmax", "percentile", "entropy", "mse"])
def test_every_range_method_handles_ranges_that_exclude_zero(method: str, tmp_path: Path) -> None:
    model = _offset_model()
    path = _save(tmp_path, model)
    np.savez(tmp_path / "calib.npz", **sample_inputs(model, 2048, seed=1))  # enough values for entropy's KL
    result = edgeact.quantize(path, tmp_path / "calib.npz", method=method, output_dir=tmp_path / "o",
                              formats=["onnx-qdq"])
    observed = edgeact.calibrate(path, tmp_path / "calib.npz").tensors
    for name, entry in result.record["tensors"].items():
        stats, (lo, hi) = observed[name], entry["range"]
        if stats.min > 0:  # all positive: the range reaches into the data, it does not clip all of it away
            assert hi >= stats.min, (name, entry)
        if stats.max < 0:
            assert lo <= stats.max, (name, entry)
    assert result.record["evaluation"]["onnx-qdq"]["y"] > 20.0


def test_an_edited_range_names_the_tensor_and_the_stats_file(tmp_path: Path) -> None:
    model = _offset_model()
    path = _save(tmp_path, model)
    np.savez(tmp_path / "calib.npz", **sample_inputs(model, 16, seed=1))
    edgeact.calibrate(path, tmp_path / "calib.npz", stats_out=tmp_path / "s.json")
    stats = json.loads((tmp_path / "s.json").read_text())
    broken = "y"  # the output: it always gets a grid
    stats["tensors"][broken]["min"], stats["tensors"][broken]["max"] = 2.0, 1.0  # an edited file: min > max
    (tmp_path / "s.json").write_text(json.dumps(stats))
    result = invoke("quantize", path, "--stats", tmp_path / "s.json", "--method", "minmax", "-o", tmp_path / "o")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert str(tmp_path / "s.json") in result.output and repr(broken) in result.output


# ---- dynamic H/W into TFLite ----------------------------------------------------------------------------------------
def _dynamic_hw_model() -> onnx.ModelProto:
    """Conv -> SiLU -> flatten spelled with Shape/Gather/Concat/Reshape over a [1, 3, H, W] input."""
    g = GraphBuilder(seed=9)
    conv = g.op("Conv", "x", g.weight(4, 3, 3, 3), g.const(np.zeros(4)), pads=[1, 1, 1, 1])
    act = g.op("Mul", conv, g.op("Sigmoid", conv))
    pooled = g.op("GlobalAveragePool", act)
    batch = g.op("Gather", g.op("Shape", pooled), g.const(np.array(0), dtype=np.int64), axis=0)
    shape = g.op("Concat", g.op("Unsqueeze", batch, g.const(np.array([0]), dtype=np.int64)),
                 g.const(np.array([-1]), dtype=np.int64), axis=0)
    g.nodes.append(helper.make_node("Reshape", [pooled, shape], ["y"], name="flatten"))
    return g.model([tensor("x", [1, 3, "H", "W"])], [tensor("y", [1, 4])])


def test_dynamic_hw_to_tflite_takes_the_first_feed_or_input_shape_and_says_which(tmp_path: Path) -> None:
    model = _dynamic_hw_model()
    path = _save(tmp_path, model)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "calib.npz", x=rng.normal(size=(8, 3, 12, 16)).astype(np.float32))
    by_feed = invoke("quantize", path, "--calib", tmp_path / "calib.npz", "--format", "tflite", "-o", tmp_path / "a")
    assert by_feed.exit_code == 0, by_feed.output
    assert "x=1x3x12x16 (from the first calibration feed)" in by_feed.output
    by_option = invoke("quantize", path, "--calib", tmp_path / "calib.npz", "--format", "tflite",
                       "--input-shape", "x=1x3x12x16", "-o", tmp_path / "b")
    assert by_option.exit_code == 0, by_option.output
    record = json.loads((tmp_path / "b" / "m.calibration.json").read_text())
    assert record["static_shapes"]["shapes_from"] == "--input-shape"
    assert record["static_shapes"]["input_shapes"] == {"x": [1, 3, 12, 16]}
    x = rng.normal(size=(1, 3, 12, 16)).astype(np.float32)
    lite = run_litert((tmp_path / "b" / "m.int8.tflite").read_bytes(), [x])[0]
    assert lite.shape == (1, 4) and sqnr_db(_run(path, {"x": x})[0], lite) > 25.0


def test_dynamic_hw_to_tflite_without_shapes_is_a_clear_error_before_any_work(tmp_path: Path) -> None:
    model = _dynamic_hw_model()
    path = _save(tmp_path, model)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "calib.npz", x=rng.normal(size=(4, 3, 12, 16)).astype(np.float32))
    assert invoke("calibrate", path, "--calib", tmp_path / "calib.npz", "--stats-out", tmp_path / "s.json",
                  "--input-shape", "x=1x3x12x16").exit_code == 0
    unshaped = invoke("quantize", path, "--stats", tmp_path / "s.json", "--format", "tflite", "-o", tmp_path / "o")
    assert unshaped.exit_code == 2 and "Traceback" not in unshaped.output
    assert "dynamic dims" in unshaped.output and "--input-shape x=" in unshaped.output
    assert not (tmp_path / "o").exists()
    shaped = invoke("quantize", path, "--stats", tmp_path / "s.json", "--format", "tflite", "--input-shape",
                    "x=1x3x12x16", "-o", tmp_path / "o")
    assert shaped.exit_code == 0, shaped.output
    wrong = invoke("quantize", path, "--stats", tmp_path / "s.json", "--format", "tflite", "--input-shape",
                   "x=1x4x12x16", "-o", tmp_path / "w")
    assert wrong.exit_code == 2 and "does not fit the model's input shape" in wrong.output


# ---- unknown elementwise spellings become one exact table -----------------------------------------------------------
def _quick_gelu(g: GraphBuilder, x: str) -> str:
    return g.op("Mul", x, g.op("Sigmoid", g.op("Mul", g.const(1.702), x)))


def _tanh_gelu_reordered(g: GraphBuilder, x: str) -> str:
    """0.5 * x * (1 + tanh(sqrt(2/pi) * x * (1 + 0.044715 x^2))), constants first, the cubic factored."""
    inner = g.op("Mul", x, g.op("Add", g.const(1.0), g.op("Mul", g.const(0.044715), g.op("Mul", x, x))))
    tanh = g.op("Tanh", g.op("Mul", g.const(0.7978845608028654), inner))
    return g.op("Mul", g.const(0.5), g.op("Mul", g.op("Add", g.const(1.0), tanh), x))


@pytest.mark.parametrize("spelling", [_quick_gelu, _tanh_gelu_reordered], ids=["quick_gelu", "tanh_gelu_reordered"])
def test_an_unknown_elementwise_spelling_is_one_exact_table(spelling, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g = GraphBuilder(seed=11)
    h = g.linear("x", 8, 8)
    chain_start = len(g.nodes)
    y = spelling(g, h)
    chain = g.nodes[chain_start:]
    g.nodes.append(helper.make_node("Identity", [g.linear(y, 8, 4)], ["y"], name="out"))
    model = g.model([tensor("x", ["N", 8])], [tensor("y", ["N", 4])])
    path = _save(tmp_path, model)
    np.savez(tmp_path / "calib.npz", **sample_inputs(model, 64, seed=1))
    result = edgeact.quantize(path, tmp_path / "calib.npz", output_dir=tmp_path / "o", formats=["onnx-table"])
    (act,) = result.plan.activations
    assert act.function.name == "elementwise" and act.input == h and act.output == y

    # the original subgraph alone, evaluated by onnx's reference evaluator in float64 on every int8 input code
    used = {name for node in chain for name in node.input}
    constants = [onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(t).astype(np.float64), t.name)
                 for t in model.graph.initializer if t.name in used]  # the float32 constants, exactly, in float64
    sub = helper.make_model(helper.make_graph(chain, "chain", [tensor(h, [256], TensorProto.DOUBLE)],
                                              [tensor(y, [256], TensorProto.DOUBLE)], constants))
    codes = np.arange(-128, 128)
    x = dequantize(codes, act.table.in_q)
    inputs = {h: x.astype(np.float64)}
    exact = np.asarray(ReferenceEvaluator(sub).run(None, inputs)[0], dtype=np.float64)
    expected = quantize(exact, act.table.out_q, Rounding.HALF_AWAY_FROM_ZERO)
    np.testing.assert_array_equal(act.table.values, expected)
    assert act.error.rms_error <= 1.05 * act.error.rms_floor


# ---- the CLI never shows a traceback ----------------------------------------------------------------------------
def test_an_internal_error_is_one_line_and_its_traceback_needs_debug(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from edgeact import api

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ValueError("invalid value encountered in cast")

    monkeypatch.setattr(api, "quantize", broken)
    plain = invoke("quantize", "m.onnx", "--calib", "c.npz")
    assert plain.exit_code == 1 and "internal error (ValueError: invalid value encountered in cast)" in plain.output
    assert "--debug" in plain.output and "Traceback" not in plain.output
    debug = invoke("--debug", "quantize", "m.onnx", "--calib", "c.npz")
    assert isinstance(debug.exception, ValueError)


def test_float_tflite_of_a_conv_without_bias_runs_and_matches(tmp_path: Path) -> None:
    g = GraphBuilder(seed=13)
    g.nodes.append(helper.make_node("Conv", ["x", g.weight(4, 3, 3, 3)], ["y"], name="conv", pads=[1, 1, 1, 1]))
    model = g.model([tensor("x", ["N", 3, 6, 6])], [tensor("y", ["N", 4, 6, 6])])
    path = _save(tmp_path, model)
    np.savez(tmp_path / "calib.npz", **sample_inputs(model, 16, seed=1))
    result = edgeact.quantize(path, tmp_path / "calib.npz", output_dir=tmp_path / "o", formats=["tflite"],
                              float_tflite=True)
    assert result.record["warnings"] == []
    x = sample_inputs(model, 1, seed=2)["x"]
    lite = run_litert(result.paths["fp32-tflite"].read_bytes(), [x])[0]
    np.testing.assert_allclose(lite, _run(path, {"x": x})[0], rtol=1e-4, atol=1e-5)


def test_a_large_intermediate_inside_a_fused_chain_is_never_mask_fill(tmp_path: Path) -> None:
    """jax2tf's tanh-GELU on pre-activations near -70: its cubic term reaches -1.5e4, which used to be taken for
    additive-mask fill (kept float). Inside the fused chain it is just part of f(x)."""
    g = GraphBuilder(seed=17)
    h = g.linear("x", 8, 8)
    y = _tanh_gelu_reordered(g, h)
    g.nodes.append(helper.make_node("Identity", [g.linear(y, 8, 4)], ["y"], name="out"))
    model = g.model([tensor("x", ["N", 8])], [tensor("y", ["N", 4])])
    path = _save(tmp_path, model)
    np.savez(tmp_path / "calib.npz", **sample_inputs(model, 64, seed=1, scale=60.0))
    result = edgeact.quantize(path, tmp_path / "calib.npz", output_dir=tmp_path / "o", formats=["onnx-qdq"])
    assert result.record["fallbacks"] == [] and not any("mask" in h for h in result.record["hazards"])
    assert [a["function"] for a in result.record["activations"]] == ["elementwise"]
    assert edgeact.calibrate(path, tmp_path / "calib.npz").tensors[h].min < -70.0  # the cubic term < -1.5e4


@pytest.mark.parametrize("spelling", ["log_clip", "log_max", "relu6_min_max"])
def test_clamped_logs_and_min_max_chains_are_exact_tables(spelling: str, tmp_path: Path) -> None:
    """log(clip(x, 1e-10)) as log-mel front ends write it, log(max(x, eps)), relu6 as Min(Max(x, 0), 6)."""
    g = GraphBuilder(seed=19)
    h = g.linear("x", 8, 8)
    if spelling == "log_clip":
        y = g.op("Log", g.op("Clip", h, g.const(1e-10)))
    elif spelling == "log_max":
        y = g.op("Log", g.op("Max", h, g.const(1e-3)))
    else:
        y = g.op("Min", g.op("Max", h, g.const(0.0)), g.const(6.0))
    g.nodes.append(helper.make_node("Identity", [g.linear(y, 8, 4)], ["y"], name="out"))
    model = g.model([tensor("x", ["N", 8])], [tensor("y", ["N", 4])])
    path = _save(tmp_path, model)
    np.savez(tmp_path / "calib.npz", **sample_inputs(model, 64, seed=1))
    result = edgeact.quantize(path, tmp_path / "calib.npz", output_dir=tmp_path / "o",
                              formats=["onnx-qdq", "onnx-table", "tflite"])
    assert [a["function"] for a in result.record["activations"]] == ["elementwise"]
    held_out = sample_inputs(model, 32, seed=2)
    reference = _run(path, held_out)[0]
    # the peer on the same data keeps Log/Max/Min float between QuantizeLinear/DequantizeLinear
    peer = ort_quantize_static(path, sample_inputs(model, 64, seed=1), tmp_path / "ort.onnx")
    floor = sqnr_db(reference, _run(peer, held_out)[0]) - 1.0
    for form in ("onnx-qdq", "onnx-table"):
        assert sqnr_db(reference, _run(result.paths[form], held_out)[0]) > floor, form
    lite = np.concatenate([run_litert(result.paths["tflite"].read_bytes(), [held_out["x"][i : i + 1]])[0]
                           for i in range(32)])
    assert sqnr_db(reference, lite) > floor


BATCH_AXIS_CASES = [  # (inputs, outputs, expected batch axes): the model's own dims decide, not axis 0
    ({"x": ("N", "T", 40), "state": (2, "N", 128)}, {"y": ("N", 4)}, {"x": 0, "state": 1}),
    ({"x": ("T", "N", 8), "h0": (1, "N", 4)}, {"y": ("T", 2, "N", 4), "h": (1, "N", 4)}, {"x": 1, "h0": 1}),
    ({"x": (1, 1, 64, "W")}, {"y": (1, "seqlen")}, {"x": 0}),  # W is no batch: a batch of 1
    ({"x": ("D0", 3, 224, 224)}, {"y": ("D0", 4)}, {"x": 0}),
    ({"x": (2, 4, 8)}, {"y": (2, 3)}, {"x": 0}),  # fully static: a fixed batch of 2
    ({"x": (4, "T")}, {"y": (4, 1)}, {"x": None}),  # T never reaches the output: each feed whole
    ({"a": ("a0", 8), "m": ("m0", 8)}, {}, {"a": 0, "m": 0}),  # unrelated leading symbols: axis 0 each
]


@pytest.mark.parametrize("inputs,outputs,expected", BATCH_AXIS_CASES)
def test_batch_axes_come_from_the_models_dims(inputs, outputs, expected) -> None:  # type: ignore[no-untyped-def]
    from edgeact.calibration.data import batch_axes

    assert batch_axes(inputs, outputs) == expected


def test_a_feed_without_a_batch_axis_is_taken_whole(tmp_path: Path) -> None:
    """x [4, T] -> Softmax over T -> ReduceMax -> [4, 1]: T is no batch, so one [4, 50] file is one feed."""
    g = GraphBuilder(seed=23)
    soft = g.op("Softmax", "x", axis=1)
    g.nodes.append(helper.make_node("ReduceMax", [soft], ["y"], name="peak", axes=[1], keepdims=1))
    model = g.model([tensor("x", [4, "T"])], [tensor("y", [4, 1])])
    path = _save(tmp_path, model)
    x = np.random.default_rng(0).normal(0, 3, (4, 50)).astype(np.float32)
    np.savez(tmp_path / "feed.npz", x=x)
    stats = edgeact.calibrate(path, tmp_path / "feed.npz")
    assert stats.samples == 1
    expected = _run(path, {"x": x})[0]
    assert stats.tensors["y"].max == pytest.approx(float(expected.max()), rel=1e-6)


def test_an_activation_output_below_minus_1e4_is_a_value_not_mask_fill(tmp_path: Path) -> None:
    """-exp(x) on inputs up to ~12 reaches -1.6e5: the table's output is a function value, not an additive mask."""
    g = GraphBuilder(seed=29)
    h = g.linear("x", 8, 8)
    g.nodes.append(helper.make_node("Neg", [g.op("Exp", h)], ["y"], name="out"))
    model = g.model([tensor("x", ["N", 8])], [tensor("y", ["N", 8])])
    path = _save(tmp_path, model)
    np.savez(tmp_path / "calib.npz", **sample_inputs(model, 64, seed=1, scale=6.0))
    result = edgeact.quantize(path, tmp_path / "calib.npz", output_dir=tmp_path / "o", formats=["onnx-qdq"])
    (act,) = result.record["activations"]
    assert act["function"] == "elementwise" and result.record["tensors"][act["output"]]["range"][0] < -1e4
    assert result.record["fallbacks"] == [] and not any("mask" in h for h in result.record["hazards"])


def test_non_finite_values_never_break_rounding_or_code_agreement() -> None:
    import warnings

    from edgeact.numerics.rounding import clamp
    from edgeact.profiler.metrics import code_agreement

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "invalid value encountered in cast" would raise here
        np.testing.assert_array_equal(clamp(np.array([np.nan, np.inf, -np.inf, 3.0]), -128, 127), [0, 127, -128, 3])
        agreement = code_agreement(np.array([np.nan, 1.0, np.inf]), np.array([0, 1, 5]))
    assert agreement["equal_codes"] == pytest.approx(2 / 3)


def test_profile_device_checks_data_against_the_int8_models_own_shapes(tmp_path: Path) -> None:
    """A .tflite built for 12x16 and evaluation data at 20x20: a clear error naming the file, not a runtime crash."""
    model = _dynamic_hw_model()
    path = _save(tmp_path, model)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "calib.npz", x=rng.normal(size=(4, 3, 12, 16)).astype(np.float32))
    np.savez(tmp_path / "other.npz", x=rng.normal(size=(2, 3, 20, 20)).astype(np.float32))
    assert invoke("quantize", path, "--calib", tmp_path / "calib.npz", "--format", "onnx-qdq,tflite",
                  "-o", tmp_path / "o").exit_code == 0
    for model_file, device in (("m.int8.tflite", "litert-reference"), ("m.int8.tflite", "cmsis-nn"),
                               ("m.int8.qdq.onnx", "onnxruntime-cpu")):
        result = invoke("profile-device", tmp_path / "o" / model_file, "--device", device, "--baseline", path,
                        "--data", tmp_path / "other.npz")
        assert result.exit_code == 1 and "Traceback" not in result.output and "internal error" not in result.output
        assert "other.npz" in result.output and "must be 12" in result.output, result.output
