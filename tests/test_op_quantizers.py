"""One declarative case per op quantizer (tests/cases/op_quantizers.toml), quantized and run in onnxruntime."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import edgeact
from bench.ort_baseline import run
from edgeact.activations import REGISTRY
from edgeact.metrics import sqnr_db
from edgeact.planning.registry import OP_QUANTIZERS, STANDARD_ACTIVATIONS

CASE_DIR = Path(__file__).parent / "cases"
CASES = tomllib.loads((CASE_DIR / "op_quantizers.toml").read_text())["case"]


def op_name(domain: str, op_type: str) -> str:
    """How a case names an op: its type, with its domain when it is not ONNX's own ("ai.edgeact::Linear")."""
    return f"{domain}::{op_type}" if domain else op_type


def _constant(token: str, rng: np.random.Generator, name: str) -> onnx.TensorProto:
    kind, _, spec = token.partition(":")
    if kind == "w":
        shape = [int(d) for d in spec.split("x")]
        fan_in = int(np.prod(shape[1:])) if len(shape) > 2 else shape[0] if shape[0] > shape[1] else shape[1]
        array = rng.normal(0.0, 1.0 / math.sqrt(fan_in), shape)
    elif kind == "b":
        array = rng.normal(0.0, 0.1, int(spec))
    elif kind == "c":
        array = np.asarray(float(spec))
    elif kind == "f":
        array = np.asarray(json.loads(spec), dtype=np.float32)
    else:
        return numpy_helper.from_array(np.asarray(json.loads(spec), dtype=np.int64), name)
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def case_model(case: dict) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    nodes, constants = [], []
    for index, row in enumerate(case["graph"]):
        output, op, inputs = row[0], row[1], row[2]
        attributes = row[3] if len(row) > 3 else {}
        outputs = [output] + [f"{output}_out{i}" for i in range(1, row[4])] if len(row) > 4 else [output]
        names = []
        for position, token in enumerate(inputs):
            if ":" in token:
                constants.append(_constant(token, rng, f"const_{index}_{position}"))
                token = constants[-1].name
            names.append(token)
        nodes.append(helper.make_node(op, names, outputs, name=f"{op}_{index}", **attributes))
    graph = helper.make_graph(
        nodes, "op_case", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", *case["input"]])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", case.get("opset", 13))])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)  # fills y's shape


@pytest.mark.parametrize("case", CASES, ids=[c["op"] for c in CASES])
def test_op_quantizer_case(case: dict, tmp_path: Path) -> None:
    model = case_model(case)
    path = tmp_path / "case.onnx"
    onnx.save(model, path)
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "calib.npz", x=rng.normal(0, 1.5, (64, *case["input"])).astype(np.float32))
    result = edgeact.quantize(path, tmp_path / "calib.npz", output_dir=tmp_path / "out")
    record = result.record
    assert sorted(entry["op_type"] for entry in record["fallbacks"]) == sorted(case.get("float", []))
    planned = {op_name(entry.get("domain", ""), entry["op_type"]) for entry in record["quantized_nodes"]}
    assert set(case["int8"]) <= planned, planned
    grids = record["tensors"]
    for name in case.get("same_grid", []):
        first = case["same_grid"][0]
        assert (grids[name]["scale"], grids[name]["zero_point"]) == (grids[first]["scale"], grids[first]["zero_point"])
    if "output_grid" in case:
        assert grids["y"]["scale"] == case["output_grid"]["scale"]
        assert grids["y"]["zero_point"] == case["output_grid"]["zero_point"]
    if "table" in case:
        assert [a["function"] for a in record["activations"]] == [case["table"]]
    held_out = {"x": np.random.default_rng(2).normal(0, 1.5, (32, *case["input"])).astype(np.float32)}
    reference = run(path, held_out)
    for form in ("onnx-qdq", "onnx-table"):
        db = sqnr_db(reference, run(result.paths[form], held_out))
        assert db >= case["min_sqnr"], f"{case['op']} {form}: {db:.1f} dB < {case['min_sqnr']}"


def test_every_registered_op_and_activation_has_a_declarative_case() -> None:
    """Adding an op or an activation means adding its case: each OP_QUANTIZERS entry and each standard activation
    op is named in some case's ``int8`` (which the case test checks is planned int8), each registry activation is
    some case's ``table`` (checked to be planned) and has its reference points in activations.toml."""
    named = {entry for case in CASES for entry in case["int8"]}
    tables = {case["table"] for case in CASES if "table" in case}
    reference = tomllib.loads((CASE_DIR / "activations.toml").read_text())
    missing = sorted({op_name(*key) for key in OP_QUANTIZERS} - named)
    missing += sorted(f"activation op {op}" for op in set(STANDARD_ACTIVATIONS) - named)
    missing += sorted(f"table {name}" for name in set(REGISTRY) - tables)
    missing += sorted(f"activations.toml [{name}]" for name in set(REGISTRY) - set(reference))
    assert not missing, f"no declarative case for: {', '.join(missing)}"
