"""One spec per op (edgeact/ops): every op the planner quantizes or the TFLite lowering handles has an OpSpec, every
OpSpec has its declarative case, and every TFLite builtin an OpSpec or an activation emits has an emulator kernel
and, where it takes options, the writer's options entry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

import edgeact
from edgeact.activations import REGISTRY
from edgeact.exporters.tflite.lower import UnsupportedOpError
from edgeact.exporters.tflite.lowerings import LOWERINGS
from edgeact.exporters.tflite.writer import OPTIONS
from edgeact.ops.table import BUILTINS, SPECS
from edgeact.planning.registry import OP_QUANTIZERS
from edgeact.runtimes.emulator.kernels import KERNELS
from tests.test_op_quantizers import CASES, case_model, op_name

# builtins the lowering context and the table lookup insert around any op
CONTEXT_BUILTINS = ("QUANTIZE", "DEQUANTIZE", "TRANSPOSE", "CAST", "ADD", "GATHER")


def test_every_planned_or_lowered_op_has_a_spec() -> None:
    missing = sorted(op_name(*key) for key in set(OP_QUANTIZERS) | set(LOWERINGS) if key not in SPECS)
    assert not missing, f"ops with no OpSpec in edgeact/ops: {missing}"


def test_every_quantized_spec_has_a_case_and_every_lowered_one_runs_in_tflite() -> None:
    """A spec with a quantizer is named in some case's ``int8``; a spec with a TFLite lowering has a case that
    tests/test_tflite_op_cases.py runs (no ``tflite`` skip); a spec without one says why."""
    named = {entry for case in CASES for entry in case["int8"]}
    in_tflite = {entry for case in CASES if "tflite" not in case for entry in case["int8"]}
    problems = []
    for key, spec in SPECS.items():
        name = op_name(*key)
        if spec.quantizer is not None and name not in named:
            problems.append(f"{name}: no case in tests/cases/op_quantizers.toml")
        if spec.quantizer is not None and spec.lower is not None and name not in in_tflite and name != "Identity":
            problems.append(f"{name}: lowered to TFLite, but every case of it skips TFLite")
        if (spec.lower is None) != (spec.no_tflite is not None):
            problems.append(f"{name}: a spec without a TFLite lowering says why (no_tflite), and only then")
    assert not problems, "\n".join(problems)


def test_every_emitted_builtin_has_a_kernel_and_writer_options() -> None:
    emitted = {op for spec in SPECS.values() for op in spec.emits} | set(CONTEXT_BUILTINS)
    emitted |= {a.tflite.op for a in REGISTRY.values() if a.tflite is not None}
    problems = [f"{op}: no Builtin in edgeact/ops" for op in sorted(emitted - set(BUILTINS))]
    problems += [f"{op}: no emulator kernel" for op in sorted(emitted - set(KERNELS))]
    problems += [f"{op}: its options table is not the writer's" for op, builtin in BUILTINS.items()
                 if builtin.options is not None and OPTIONS.get(op) != builtin.options]
    assert not problems, "\n".join(problems)


def test_depth_to_space_crd_is_refused_by_name(tmp_path: Path) -> None:
    """TFLite's DEPTH_TO_SPACE is ONNX's DCR order; a CRD DepthToSpace is refused, saying so."""
    case = {"input": [8, 4, 4], "graph": [["y", "DepthToSpace", ["x"], {"blocksize": 2, "mode": "CRD"}]]}
    onnx.save(case_model(case), tmp_path / "crd.onnx")
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(1).normal(0, 1.5, (16, 8, 4, 4)).astype(np.float32))
    with pytest.raises(UnsupportedOpError, match="DCR"):
        edgeact.quantize(tmp_path / "crd.onnx", tmp_path / "calib.npz", output_dir=tmp_path / "out",
                         formats=["tflite"], target="litert")


def test_onnx_emission_inlines_exactly_the_fused_functions() -> None:
    """ONNX runtimes know no ai.edgeact op: every ai.edgeact spec is written as its body, every standard op as
    itself (a standard op is no function to inline)."""
    from edgeact.domain import EDGEACT_DOMAIN
    from edgeact.ops.spec import OnnxEmission
    from edgeact.ops.table import onnx_emission

    for (domain, op_type), spec in SPECS.items():
        expected = OnnxEmission.INLINE if domain == EDGEACT_DOMAIN else OnnxEmission.KEEP
        assert spec.onnx is expected, op_name(domain, op_type)
    assert onnx_emission(EDGEACT_DOMAIN, "gelu") is OnnxEmission.INLINE  # a fused activation planned float
    assert onnx_emission("com.microsoft", "FusedConv") is OnnxEmission.KEEP  # a foreign op passes through
    assert onnx_emission(EDGEACT_DOMAIN, "NoSuchOp") is None


def test_onnx_export_refuses_an_edgeact_op_with_no_spec() -> None:
    """A fused node no spec covers is refused by name, not written as a call that no ONNX runtime can run."""
    import onnx_ir as ir

    from edgeact.errors import EdgeactError
    from edgeact.exporters.onnx.qdq import export_onnx
    from edgeact.planning.plan import QuantPlan

    x = ir.Value(name="x", type=ir.TensorType(ir.DataType.FLOAT), shape=ir.Shape([1, 4]))
    body_in = ir.Value(name="a", type=ir.TensorType(ir.DataType.FLOAT), shape=ir.Shape([1, 4]))
    inner = ir.Node("", "Relu", [body_in], name="inner")
    function = ir.Function("ai.edgeact", "Mystery", "", graph=ir.Graph([body_in], inner.outputs, nodes=[inner]),
                           attributes=[])
    call = ir.Node("ai.edgeact", "Mystery", [x], name="mystery_node")
    call.outputs[0].name, call.outputs[0].type, call.outputs[0].shape = "y", x.type, x.shape
    graph = ir.Graph([x], call.outputs, nodes=[call], opset_imports={"": 17, "ai.edgeact": 1})
    model = ir.Model(graph, ir_version=8, functions=[function])
    with pytest.raises(EdgeactError, match=r"mystery_node.*ai\.edgeact::Mystery has no ONNX form"):
        export_onnx(model, QuantPlan(), "onnx-qdq")
