"""Each canonicalisation pass on its own, and the importer's checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx.parser
import onnx_ir as ir
import pytest

from edgeact.errors import ModelFormatError
from edgeact.graph import load_onnx, view_of
from edgeact.graph.passes import (
    CANONICALISATION,
    ConstantsRight,
    FoldBatchNorm,
    FoldConstants,
    FuseStructures,
    NameEverything,
    RemoveIdentityDropout,
)
from edgeact.graph.view import EDGEACT_DOMAIN
from examples import onnx_models


def _model(body: str, opset: int = 13) -> ir.Model:
    text = f"""<ir_version: 8, opset_import: ["" : {opset}]>
case (float[N, 4] x) => (float[N, 4] y) {{
{body}
}}"""
    return ir.from_proto(onnx.shape_inference.infer_shapes(onnx.parser.parse_model(text)))


def _ops(model: ir.Model) -> list[str]:
    return [node.op_type for node in model.graph]


def test_passes_have_unique_names_and_say_what_they_change() -> None:
    names = [p.name for p in CANONICALISATION]
    assert len(set(names)) == len(names) and all(p.changes for p in CANONICALISATION)


def test_fold_constants_evaluates_constant_subgraphs() -> None:
    model = _model("""
a = Constant <value = float[4] {1.0, 2.0, 3.0, 4.0}> ()
b = Mul(a, a)
y = Add(x, b)
""")
    assert FoldConstants()(model).modified
    assert _ops(model) == ["Add"]
    folded = model.graph.node(0).inputs[1].const_value.numpy()
    np.testing.assert_array_equal(folded, [1.0, 4.0, 9.0, 16.0])


def test_identity_and_dropout_are_removed_but_outputs_keep_their_names() -> None:
    model = _model("""
a = Identity(x)
b, mask = Dropout(a)
c = Relu(b)
y = Identity(c)
""")
    assert RemoveIdentityDropout()(model).modified
    assert _ops(model) == ["Relu"]
    assert [v.name for v in model.graph.outputs] == ["y"]


def test_constants_right_swaps_only_constant_first_operands() -> None:
    model = _model("""
c = Constant <value = float {2.0}> ()
a = Mul(c, x)
b = Add(a, x)
y = Sub(c, b)
""")
    FoldConstants()(model)
    assert ConstantsRight()(model).modified
    mul, add, sub = list(model.graph)
    assert mul.inputs[1].const_value is not None and mul.inputs[0].name == "x"
    assert [v.name for v in add.inputs] == ["a", "x"]  # no constant: untouched
    assert sub.inputs[0].const_value is not None  # Sub is not commutative: untouched


def test_matmul_add_becomes_one_linear_node_that_computes_the_same() -> None:
    model = onnx_models.transformer_block("erf")
    ir_model = ir.from_proto(onnx.shape_inference.infer_shapes(model))
    for pass_type in (FoldConstants, ConstantsRight):
        pass_type()(ir_model)
    assert FuseStructures()(ir_model).modified
    fused = [n.op_type for n in ir_model.graph if n.domain == EDGEACT_DOMAIN]
    assert fused.count("Linear") == 6 and fused.count("LayerNorm") == 2


def test_matmul_with_activation_operands_is_not_linear() -> None:
    model = _model("""
t = Transpose <perm = [1, 0]> (x)
m = MatMul(x, t)
s = ReduceSum <keepdims = 1> (m)
y = Add(x, s)
""")
    assert not FuseStructures()(model).modified


def test_name_everything_names_fused_nodes_after_their_output() -> None:
    model = _model("""
s = Sigmoid(x)
y = Mul(x, s)
""")
    for pass_type in CANONICALISATION[:-1]:
        pass_type()(model)
    NameEverything()(model)
    (node,) = list(model.graph)
    assert node.name == "silu_y"
    assert len({n.name for n in model.graph}) == len(list(model.graph))


def test_view_lists_values_with_dtypes_and_constants(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(onnx_models.token_classifier(), path)
    view = view_of(load_onnx(path))
    assert view.inputs == ("ids",) and view.values["ids"].dtype == "int64"
    assert any(v.constant is not None and v.constant.ndim == 2 for v in view.values.values())


@pytest.mark.parametrize("opset,message", [(22, "opset 22 is newer than edgeact knows.*opset_version=21"),
                                           (6, "opset 6 is too old")])
def test_unsupported_opsets_are_refused_by_name(opset: int, message: str, tmp_path: Path) -> None:
    model = onnx_models.mlp_tanh()
    model.opset_import[0].version = opset
    path = tmp_path / f"opset{opset}.onnx"
    onnx.save(model, path)
    with pytest.raises(ModelFormatError, match=message):
        load_onnx(path)


@pytest.mark.parametrize("opset", [9, 11, 12])
def test_old_opsets_are_upgraded_and_say_from_which(opset: int, tmp_path: Path) -> None:
    model = onnx_models.mlp_tanh()
    model.opset_import[0].version = opset
    path = tmp_path / f"opset{opset}.onnx"
    onnx.save(model, path)
    loaded = load_onnx(path)
    assert loaded.opset_imports[""] == 13 and loaded.meta["edgeact.upgraded_from_opset"] == opset


def test_external_data_inside_the_folder_is_read(tmp_path: Path) -> None:
    model = onnx_models.mlp_tanh()
    path = tmp_path / "ext.onnx"
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin",
              size_threshold=0)
    loaded = load_onnx(path)
    assert any(v.const_value is not None for v in loaded.graph.initializers.values())


def test_batchnorm_folds_into_the_conv_before_it() -> None:
    g = onnx_models.GraphBuilder()
    conv = g.op("Conv", "x", g.weight(4, 3, 3, 3), g.const(np.zeros(4)), pads=[1, 1, 1, 1])
    rng = np.random.default_rng(0)
    stats = [g.const(v) for v in (rng.uniform(0.5, 2, 4), rng.normal(0, 1, 4), rng.normal(0, 1, 4),
                                  rng.uniform(0.5, 2, 4))]
    g.nodes.append(onnx.helper.make_node("BatchNormalization", [conv, *stats], ["y"], name="bn"))
    proto = g.model([onnx_models.tensor("x", ["N", 3, 8, 8])], [onnx_models.tensor("y", ["N", 4, 8, 8])])
    model = ir.from_proto(onnx.shape_inference.infer_shapes(proto))
    assert FoldBatchNorm()(model).modified and _ops(model) == ["Conv"]
    import onnxruntime as ort

    from edgeact.graph.importer import model_bytes

    x = rng.normal(0, 1, (2, 3, 8, 8)).astype(np.float32)
    folded = ort.InferenceSession(model_bytes(model)).run(None, {"x": x})[0]
    original = ort.InferenceSession(proto.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_allclose(folded, original, rtol=1e-4, atol=1e-5)


def test_an_old_opset_model_with_local_functions_is_upgraded_with_them_inlined(tmp_path: Path) -> None:
    text = """<ir_version: 7, opset_import: ["" : 11, "local" : 1]>
g (float[N, 4] x) => (float[N, 4] y) {
   y = local.myrelu(x)
}
<domain: "local", opset_import: ["" : 11]>
myrelu (a) => (b) {
   b = Relu(a)
}"""
    path = tmp_path / "local.onnx"
    onnx.save(onnx.parser.parse_model(text), path)
    model = load_onnx(path)
    assert model.meta["edgeact.upgraded_from_opset"] == 11 and [n.op_type for n in model.graph] == ["Relu"]


def test_pattern_passes_require_constants_right_and_say_so() -> None:
    """The invariant the fusion patterns rely on is checked by onnx-ir around the pass, not assumed."""
    model = _model("""
c = Constant <value = float {2.0}> ()
y = Mul(c, x)
""")
    FoldConstants()(model)
    with pytest.raises(ir.passes.PreconditionError, match="constants-right"):
        FuseStructures()(model)
    ConstantsRight()(model)
    FuseStructures()(model)  # now it may run


def test_name_everything_ensures_unique_names() -> None:
    model = _model("""
a = Relu(x)
y = Relu(a)
""")
    for node in model.graph:
        node.name = "same"
    assert NameEverything()(model).modified
    assert len({node.name for node in model.graph}) == 2
    broken = NameEverything()
    broken.call = lambda m: ir.passes.PassResult(m, False)  # a NameEverything that forgets its job
    for node in model.graph:
        node.name = "same"
    with pytest.raises(ir.passes.PostconditionError, match="same"):
        broken(model)
