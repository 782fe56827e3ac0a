"""Whole models, quantized by edgeact and by onnxruntime.quantization.quantize_static on the same data
(QDQ, per-channel, MinMax, int8), compared on held-out samples by output SQNR against fp32 in onnxruntime.

Each margin below is the smallest improvement the test accepts (measured values are in the README)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

import edgeact
from bench.ort_baseline import ort_quantize_static, run
from edgeact.metrics import sqnr_db
from examples import onnx_models as builders

MODELS = {
    "mlp_tanh": (builders.mlp_tanh, 1.0),
    "transformer_gelu_erf_torch": (lambda: builders.transformer_block("erf"), 0.5),
    "transformer_gelu_tanh_torch": (lambda: builders.transformer_block("tanh"), 0.5),
    "transformer_gelu_tanh_jax2tf": (lambda: builders.transformer_block("tanh_jax"), 0.5),
    "silu_convnet": (builders.silu_convnet, 0.75),
    "attention_with_additive_mask": (lambda: builders.transformer_block("tanh_jax", masked=True), 15.0),
}


def _quantize_both(name: str, model: onnx.ModelProto, folder: Path):
    path = folder / f"{name}.onnx"
    onnx.save(model, path)
    calib = builders.sample_inputs(model, 128, seed=1)
    np.savez(folder / f"{name}.calib.npz", **calib)
    result = edgeact.quantize(path, folder / f"{name}.calib.npz", output_dir=folder / "edgeact")
    baseline = ort_quantize_static(path, calib, folder / f"{name}.ort.int8.onnx")
    return path, result, baseline


@pytest.mark.parametrize("name", list(MODELS))
def test_beats_onnxruntime_quantize_static(name: str, tmp_path: Path) -> None:
    build, margin = MODELS[name]
    model = build()
    path, result, baseline = _quantize_both(name, model, tmp_path)
    held_out = builders.sample_inputs(model, 64, seed=2)
    reference = run(path, held_out)
    ours = {form: sqnr_db(reference, run(result.paths[form], held_out)) for form in ("onnx-qdq", "onnx-table")}
    theirs = sqnr_db(reference, run(baseline, held_out))
    for form, db in ours.items():
        assert db >= theirs + margin, f"{name} {form}: edgeact {db:.2f} dB vs onnxruntime {theirs:.2f} dB"
    assert ours["onnx-table"] > 25.0


def test_concat_of_boxes_and_scores_keeps_the_scores(tmp_path: Path) -> None:
    """Boxes (0..640 px) and scores (0..1) concatenated: one int8 scale would zero the scores."""
    model = builders.detector_head()
    path, result, baseline = _quantize_both("detector", model, tmp_path)
    held_out = builders.sample_inputs(model, 64, seed=2)
    reference = run(path, held_out)[:, 4:]
    ours = sqnr_db(reference, run(result.paths["onnx-qdq"], held_out)[:, 4:])
    theirs = sqnr_db(reference, run(baseline, held_out)[:, 4:])
    assert ours >= 30.0 and ours >= theirs + 20.0, (ours, theirs)
    assert any(f["op_type"] == "Concat" and "input ranges differ" in f["reason"] for f in result.record["fallbacks"])


def test_integer_token_inputs_quantize(tmp_path: Path) -> None:
    model = builders.token_classifier()
    path, result, _ = _quantize_both("tokens", model, tmp_path)
    held_out = builders.sample_inputs(model, 64, seed=2)
    assert sqnr_db(run(path, held_out), run(result.paths["onnx-table"], held_out)) > 25.0
    gathers = [c for c in result.record["constants"] if c["role"] == "operand"]
    assert gathers and gathers[0]["dtype"] == "int8"  # the embedding table is stored int8


def test_table_form_computes_exactly_edgeacts_table(tmp_path: Path) -> None:
    """x -> tanh -> y: feed every input grid point; the table model returns the record's table, code for code."""
    g = builders.GraphBuilder()
    g.nodes.append(onnx.helper.make_node("Tanh", ["x"], ["y"], name="tanh"))
    model = g.model([builders.tensor("x", ["N", 8])], [builders.tensor("y", ["N", 8])])
    path, result, _ = _quantize_both("tanh", model, tmp_path)
    assert "Tanh" not in {n.op_type for n in onnx.load(result.paths["onnx-table"]).graph.node}
    plan = result.record["activations"][0]
    in_grid, out_grid = plan["input_grid"], plan["output_grid"]
    codes = np.arange(-128, 128)
    x = (np.float32(in_grid["scale"]) * (codes - in_grid["zero_point"]).astype(np.float32)).reshape(32, 8)
    y = run(result.paths["onnx-table"], {"x": x}).ravel()
    got = np.rint(y / np.float32(out_grid["scale"])).astype(int) + out_grid["zero_point"]
    assert got.tolist() == plan["table"]
