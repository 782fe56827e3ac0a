"""Hazards real exported models contain: mask fills (-1e4, -3.4e38, -inf), If subgraphs, unknown ops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

import edgeact
from bench.ort_baseline import run
from edgeact.metrics import sqnr_db
from examples import onnx_models as builders


def _quantize(model: onnx.ModelProto, tmp_path: Path, **options):
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    np.savez(tmp_path / "calib.npz", **builders.sample_inputs(model, 64, seed=1))
    result = edgeact.quantize(path, tmp_path / "calib.npz", output_dir=tmp_path / "out", **options)
    held_out = builders.sample_inputs(model, 32, seed=2)
    return result, sqnr_db(run(path, held_out), run(result.paths["onnx-table"], held_out))


@pytest.mark.parametrize("fill", [-1.0e4, -3.4e38, -np.inf], ids=["-1e4", "-3.4e38", "-inf"])
def test_constant_causal_mask_stays_float(fill: float, tmp_path: Path) -> None:
    g = builders.GraphBuilder()
    scores = g.linear("x", 8, 8)
    mask = g.const(np.triu(np.full((8, 8), fill), k=1))
    masked = g.op("Add", scores, mask)
    g.nodes.append(helper.make_node("Softmax", [masked], ["y"], axis=-1, name="softmax"))
    model = g.model([builders.tensor("x", ["N", 8, 8])], [builders.tensor("y", ["N", 8, 8])])
    result, db = _quantize(model, tmp_path)
    assert any("additive-mask" in f["reason"] for f in result.record["fallbacks"])
    assert db > 30.0, db


def test_if_subgraph_is_a_fallback_not_a_crash(tmp_path: Path) -> None:
    g = builders.GraphBuilder()
    hidden = g.op("Tanh", g.linear("x", 8, 8))
    then_graph = helper.make_graph([helper.make_node("Relu", [hidden], ["branch_out"])], "then", [],
                                   [builders.tensor("branch_out", None)])
    else_graph = helper.make_graph([helper.make_node("Neg", [hidden], ["branch_out2"])], "else", [],
                                   [builders.tensor("branch_out2", None)])
    flag = g.op("Greater", g.op("ReduceSum", "x", keepdims=0), g.const(-1.0e9))  # data-dependent: not folded
    g.nodes.append(helper.make_node("If", [flag], ["branched"], then_branch=then_graph, else_branch=else_graph,
                                    name="branch"))
    g.nodes.append(helper.make_node("Tanh", ["branched"], ["y"], name="after"))
    model = g.model([builders.tensor("x", ["N", 8])], [builders.tensor("y", ["N", 8])])
    result, db = _quantize(model, tmp_path)
    fallbacks = {f["node"]: f["reason"] for f in result.record["fallbacks"]}
    assert "subgraphs" in fallbacks["branch"]
    assert db > 25.0, db


def test_op_without_quantizer_is_listed_and_runs_float(tmp_path: Path) -> None:
    g = builders.GraphBuilder()
    h = g.op("CumSum", g.linear("x", 8, 8), g.const(np.array(1), dtype=np.int64))
    g.nodes.append(helper.make_node("Tanh", [g.linear(h, 8, 8)], ["y"], name="out"))
    model = g.model([builders.tensor("x", ["N", 8])], [builders.tensor("y", ["N", 8])])
    result, db = _quantize(model, tmp_path)
    reasons = [f["reason"] for f in result.record["fallbacks"] if f["op_type"] == "CumSum"]
    assert reasons == ["no int8 quantizer for CumSum"]
    assert "CumSum" in {n.op_type for n in onnx.load(result.paths["onnx-qdq"]).graph.node}
    assert db > 25.0, db
