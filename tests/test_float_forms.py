"""Precision and float forms are the plan's and the registry's, never the exporter's:

* an activation's float32 TFLite lowering is its registry entry's ``float_tflite`` (one builtin or a short sequence);
  the exporter holds no activation names;
* a node whose input no int8 grid can hold is a planned fallback (recorded with its reason) and the .tflite computes
  it in float32; the exporter refuses a plan that made a node int8 without a grid for what it reads."""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import helper

import edgeact
from edgeact.activations import REGISTRY, FloatStep
from edgeact.api import CanonicalModel, static_shapes
from edgeact.exporters.tflite import lowerings
from edgeact.exporters.tflite.lower import UnsupportedOpError
from edgeact.exporters.tflite.model import lower_tflite
from edgeact.graph import view_of
from edgeact.graph.view import EDGEACT_DOMAIN
from edgeact.ops.table import BUILTINS
from edgeact.runtimes.emulator.kernels import KERNELS
from edgeact.runtimes.litert import run_litert
from examples import onnx_models as builders

X = np.linspace(-6.0, 6.0, 64, dtype=np.float32).reshape(1, 64)


def _float_lowering(name: str):  # type: ignore[no-untyped-def]
    """The float32 TFLite lowering of one ``ai.edgeact`` activation node (as the fusion passes write them)."""
    node = helper.make_node(name, ["x"], ["y"], domain=EDGEACT_DOMAIN, name="act")
    graph = helper.make_graph([node], name, [builders.tensor("x", [1, 64])], [builders.tensor("y", [1, 64])])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(EDGEACT_DOMAIN, 1)]
    model = ir.from_proto(helper.make_model(graph, opset_imports=opsets))
    return lower_tflite(view_of(model), None, {"x": (1, 64), "y": (1, 64)}, "litert")


@pytest.mark.parametrize("name", list(REGISTRY))
def test_float_lowering_is_the_registry_entry(name: str) -> None:
    """Each activation lowers float to exactly the builtins its entry declares, computing f; none declared: refused."""
    act = REGISTRY[name]
    if not act.float_steps():
        with pytest.raises(UnsupportedOpError, match="declares none"):
            _float_lowering(name)
        return
    lowered = _float_lowering(name)
    assert [op.op for op in lowered.graph.ops] == [step.op for step in act.float_steps()]
    got = run_litert(lowered.to_bytes({}), [X])[0]
    np.testing.assert_allclose(got, act(X), rtol=1e-5, atol=1e-5)


def test_a_changed_registry_entry_changes_the_lowering(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lowering reads the entry: drop silu's float form and it is refused; give tanh another and it follows."""
    monkeypatch.setitem(REGISTRY, "silu", dataclasses.replace(REGISTRY["silu"], float_tflite=()))
    with pytest.raises(UnsupportedOpError, match="silu"):
        _float_lowering("silu")
    steps = (FloatStep("MUL", ("y", 0.5)), FloatStep("LOGISTIC"))
    monkeypatch.setitem(REGISTRY, "tanh", dataclasses.replace(REGISTRY["tanh"], float_tflite=steps))
    assert [op.op for op in _float_lowering("tanh").graph.ops] == ["MUL", "LOGISTIC"]


def test_every_float_step_has_a_builtin_and_an_emulator_kernel() -> None:
    ops = {step.op for act in REGISTRY.values() for step in act.float_tflite}
    assert not ops - set(BUILTINS) and not ops - set(KERNELS), sorted(ops - (set(BUILTINS) & set(KERNELS)))


def test_the_exporter_names_no_activation() -> None:
    source = Path(lowerings.__file__).read_text()
    named = [name for name in REGISTRY if f'"{name}"' in source or f"'{name}'" in source]
    named += [op for op in ("LOGISTIC", "TANH", "HARD_SWISH", "ELU", "GELU") if f'"{op}"' in source]
    assert not named, f"lowerings.py names activations: {named}"


# ---- a node whose input holds no grid ------------------------------------------------------------------------------
def _masked_softmax() -> onnx.ModelProto:
    """Softmax over scores + a (graph input) causal -1e4 mask, then a MatMul: no int8 grid holds the masked scores."""
    g = builders.GraphBuilder()
    masked = g.op("Add", g.linear("x", 8, 8), "mask")
    probabilities = g.op("Softmax", masked, axis=-1)
    g.nodes.append(helper.make_node("Identity", [g.linear(probabilities, 8, 8)], ["y"], name="out"))
    inputs = [builders.tensor("x", ["N", 8, 8]), builders.tensor("mask", ["N", 8, 8])]
    return g.model(inputs, [builders.tensor("y", ["N", 8, 8])])


def _tflite_ops(payload: bytes) -> list[tuple[str, list[str], list[str]]]:
    """(builtin, input tensor types, output tensor types) of each operator of subgraph 0."""
    def names(module: str) -> dict[int, str]:
        cls = getattr(importlib.import_module(f"tflite.{module}"), module)
        return {value: name for name, value in vars(cls).items() if not name.startswith("_")}

    ops, types = names("BuiltinOperator"), names("TensorType")
    flat = importlib.import_module("tflite.Model").Model.GetRootAsModel(payload, 0)
    graph = flat.Subgraphs(0)
    result = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = flat.OperatorCodes(op.OpcodeIndex())
        kinds = [[types[graph.Tensors(int(t)).Type()] for t in tensors if t >= 0]
                 for tensors in (op.InputsAsNumpy(), op.OutputsAsNumpy())]
        result.append((ops[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())], *kinds))
    return result


@pytest.mark.parametrize("target", ["litert", "tflm"])
def test_gridless_input_is_a_recorded_fallback_and_the_tflite_agrees(target: str, tmp_path: Path) -> None:
    model = _masked_softmax()
    onnx.save(model, tmp_path / "m.onnx")
    np.savez(tmp_path / "calib.npz", **builders.sample_inputs(model, 64, seed=1))
    result = edgeact.quantize(tmp_path / "m.onnx", tmp_path / "calib.npz", output_dir=tmp_path / "out",
                              formats=["onnx-qdq", "tflite"], target=target)
    record = json.loads(next((tmp_path / "out").glob("*.calibration.json")).read_text())
    softmax = [f for f in record["fallbacks"] if f["op_type"] == "Softmax"]
    assert len(softmax) == 1 and "no int8 grid" in softmax[0]["reason"], record["fallbacks"]
    assert not any(name == softmax[0]["node"] for name, _ in result.plan.quantized)
    ops = _tflite_ops(result.paths["tflite"].read_bytes())
    assert [(i, o) for op, i, o in ops if op == "SOFTMAX"] == [(["FLOAT32"], ["FLOAT32"])], ops
    grid = result.plan.grids[model.graph.node[[n.op_type for n in model.graph.node].index("Softmax")].output[0]]
    assert grid.real_range == pytest.approx((0.0, 1.0), abs=grid.scale)  # the op's fixed range, kept


def test_the_exporter_refuses_an_int8_node_without_a_grid(tmp_path: Path) -> None:
    model = _masked_softmax()
    onnx.save(model, tmp_path / "m.onnx")
    np.savez(tmp_path / "calib.npz", **builders.sample_inputs(model, 64, seed=1))
    result = edgeact.quantize(tmp_path / "m.onnx", tmp_path / "calib.npz", output_dir=tmp_path / "out",
                              formats=["onnx-qdq"])
    softmax = next(f for f in result.plan.fallbacks if f.op_type == "Softmax").node
    plan = dataclasses.replace(result.plan, quantized=[*result.plan.quantized, (softmax, "Softmax")])
    canonical = CanonicalModel.load(tmp_path / "m.onnx")
    with pytest.raises(UnsupportedOpError, match="the plan made it int8 but holds no int8 grid"):
        lower_tflite(view_of(canonical.model), plan, static_shapes(canonical), plan.target)
