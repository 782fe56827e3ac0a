"""Every fusion variant in tests/cases/fusions.toml fuses into one node and computes bit-for-bit what the
decomposed graph did (onnxruntime, both models); every look-alike is left alone."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import onnx
import onnx.parser
import onnxruntime as ort
import pytest

from edgeact.graph import canonicalise, load_onnx
from edgeact.graph.importer import model_bytes
from edgeact.graph.view import EDGEACT_DOMAIN

CASES = tomllib.loads((Path(__file__).parent / "cases" / "fusions.toml").read_text())["case"]


def _constant_line(name: str, value) -> str:
    if isinstance(value, dict) and "float" in value:
        items = ", ".join(repr(float(v)) for v in value["float"])
        return f"{name} = Constant <value = float[{len(value['float'])}] {{{items}}}> ()"
    if isinstance(value, dict):
        return f"{name} = Constant <value = int64[{len(value['int64'])}] {{{', '.join(map(str, value['int64']))}}}> ()"
    return f"{name} = Constant <value = float {{{value!r}}}> ()"


def case_model(case: dict) -> onnx.ModelProto:
    constants = "\n".join(_constant_line(k, v) for k, v in case.get("constants", {}).items())
    text = f"""<ir_version: 8, opset_import: ["" : 17]>
fusion_case (float[N, 8] x) => (float[N, 8] y) {{
{constants}
{case['body']}
}}"""
    model = onnx.parser.parse_model(text)
    onnx.checker.check_model(model)
    return model


def _run(payload: bytes, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(payload, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_fusion_case(case: dict, tmp_path: Path) -> None:
    original = case_model(case)
    path = tmp_path / "case.onnx"
    onnx.save(original, path)
    model = load_onnx(path)
    canonicalise(model)
    fused = [node.op_type for node in model.graph if node.domain == EDGEACT_DOMAIN]
    if case["fused"]:
        assert fused == [case["fused"]], [(n.domain, n.op_type) for n in model.graph]
        assert len(list(model.graph)) == 1
    else:
        assert fused == case.get("edgeact_nodes", [])
    x = np.linspace(-6.0, 6.0, 8 * 64, dtype=np.float32).reshape(64, 8)
    np.testing.assert_array_equal(_run(model_bytes(model), x), _run(original.SerializeToString(), x))
