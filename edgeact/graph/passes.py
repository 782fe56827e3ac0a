"""Canonicalisation: named passes run in a fixed order before calibration (each says what it changes)."""

from __future__ import annotations

import onnx
import onnx_ir as ir
import onnx_ir.passes.common as common
import onnxscript.optimizer
from onnxscript.rewriter import pattern
from onnxscript.rewriter.rules import common as common_rules

from edgeact.elementwise import ELEMENTWISE_OP, ELEMENTWISE_OPS
from edgeact.errors import ModelFormatError
from edgeact.graph import chains as chains_module
from edgeact.graph import fusions, recurrent
from edgeact.graph.equalize import equalize
from edgeact.graph.importer import model_bytes
from edgeact.graph.view import EDGEACT_DOMAIN

COMMUTATIVE_OPS = frozenset({"Add", "Mul"})


class EdgeactPass(ir.passes.InPlacePass):
    """A pass with a stable ``name`` (shown in the calibration record) and a one-line ``changes``; onnx-ir calls its
    ``requires``/``ensures`` around ``call`` (a broken invariant is a Pre-/PostconditionError naming the pass)."""

    name: str = ""
    changes: str = ""
    modified: bool = False  # whether the last run changed the model (for the record's list of passes)

    def __call__(self, model_or_result):  # type: ignore[no-untyped-def]
        result = super().__call__(model_or_result)
        self.modified = bool(result.modified)
        return result


def constant_left_operands(model: ir.Model) -> list[str]:
    """Add/Mul nodes of the main graph whose constant operand comes first (patterns expect it second)."""
    return [node.name or node.op_type for node in model.graph
            if node.op_type in COMMUTATIVE_OPS and node.domain == "" and len(node.inputs) == 2
            and node.inputs[0] is not None and node.inputs[0].const_value is not None
            and node.inputs[1] is not None and node.inputs[1].const_value is None]


def duplicate_names(model: ir.Model) -> list[str]:
    """Node names and value names of the main graph that are empty or used twice."""
    nodes = [node.name for node in model.graph]
    values = [value.name for node in model.graph for value in node.outputs]
    values += [value.name for value in model.graph.inputs]
    return sorted({name or "<empty>" for names in (nodes, values) for name in names
                   if not name or names.count(name) > 1})


class FoldConstants(EdgeactPass):
    name = "fold-constants"
    changes = "evaluates sub-graphs whose inputs are all constant; results become initializers"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        result = onnxscript.optimizer.fold_constants(model)
        lifted = common.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0)(model)
        return ir.passes.PassResult(model, bool(result.modified or lifted.modified))


class ScalarConstants(EdgeactPass):
    name = "scalar-constants"
    changes = "one-element constants of elementwise ops ([1], [1,1,1,1]) become scalars where the result's shape stays"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        modified = False
        scalars: dict[str, ir.Value] = {}
        for node in model.graph:
            if node.domain != "" or node.op_type not in ELEMENTWISE_OPS or _rank(node.outputs[0]) is None:
                continue
            data_ranks = [_rank(v) for v in node.inputs if v is not None and v.const_value is None]
            if not data_ranks or None in data_ranks or max(data_ranks) != _rank(node.outputs[0]):
                continue
            for index, value in enumerate(node.inputs):
                if value is None or value.const_value is None or value.const_value.size != 1:
                    continue
                if len(value.const_value.shape) == 0:
                    continue
                if value.name not in scalars:
                    array = value.const_value.numpy().reshape(())
                    scalars[value.name] = ir.Value(name=f"{value.name}_scalar", shape=ir.Shape([]),
                                                   type=ir.TensorType(value.const_value.dtype),
                                                   const_value=ir.tensor(array))
                    model.graph.register_initializer(scalars[value.name])
                node.replace_input_with(index, scalars[value.name])
                modified = True
        if modified:
            common.RemoveUnusedNodesPass()(model)
        return ir.passes.PassResult(model, modified)


def _rank(value: ir.Value) -> int | None:
    return len(value.shape) if value is not None and value.shape is not None else None


class _DropoutToIdentity(pattern.RewriteRuleClassBase):
    def pattern(self, op, x):
        return op.Dropout(x, _allow_other_inputs=True, _allow_other_attributes=True)

    def rewrite(self, op, x):
        return op.Identity(x)


class RemoveIdentityDropout(EdgeactPass):
    name = "remove-identity-dropout"
    changes = "removes Identity and inference-time Dropout; consumers read the source value"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        count = pattern.RewriteRuleSet([_DropoutToIdentity.rule()]).apply_to_model(model)
        identity = common.IdentityEliminationPass()(model)
        return ir.passes.PassResult(model, bool(count or identity.modified))


class FoldBatchNorm(EdgeactPass):
    name = "fold-batchnorm"
    changes = "folds inference BatchNormalization into the Conv/ConvTranspose/Gemm before it (weights change by ulps)"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        rules = [common_rules.fuse_batchnorm_into_conv_rule, common_rules.fuse_batchnorm_into_conv_transpose_rule,
                 common_rules.fuse_batchnorm_into_gemm_rule]
        return ir.passes.PassResult(model, bool(_rewrite_main_graph(rules, model)))


class EqualizeChannels(EdgeactPass):
    name = "equalize-channels"
    changes = ("cross-layer equalization: rescales the channels between two Convs (through ReLU/PReLU/pooling/zero "
               "pads) so each channel's weights span the same range in both; outputs change by float rounding")

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        return ir.passes.PassResult(model, bool(equalize(model.graph)))


class ConstantsRight(EdgeactPass):
    name = "constants-right"
    changes = "puts the constant operand of Add/Mul second, so patterns need one operand order"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        modified = False
        for node in model.graph:
            if node.op_type in COMMUTATIVE_OPS and node.domain == "" and len(node.inputs) == 2:
                first, second = node.inputs
                if first is not None and first.const_value is not None and second.const_value is None:
                    node.replace_input_with(0, second)
                    node.replace_input_with(1, first)
                    modified = True
        return ir.passes.PassResult(model, modified)

    def ensures(self, model: ir.Model) -> None:
        if left := constant_left_operands(model):
            raise ir.passes.PostconditionError(f"constant operand still first in {left[:5]}")


def _rewrite_main_graph(rules: list[pattern.RewriteRule], model: ir.Model) -> int:
    """Apply ``rules`` to the main graph only: the bodies of fused functions keep their original nodes."""
    existing = dict(model.functions)
    model.functions.clear()
    tags = {value.name: {k: v for k, v in value.meta.items() if k.startswith("edgeact.")} for node in model.graph
            for value in node.outputs if any(k.startswith("edgeact.") for k in value.meta)}
    try:
        return pattern.RewriteRuleSet(rules).apply_to_model(model)
    finally:
        model.functions.update(existing)
        for node in model.graph:  # a replacement output keeps the provenance the value it replaces carried
            for value in node.outputs:
                for key, text in tags.get(value.name, {}).items():
                    value.meta.setdefault(key, text)


class _RuleSetPass(EdgeactPass):
    """Rewrite rules written for one operand order: they need ``constants-right`` to have run."""

    rules: staticmethod

    def requires(self, model: ir.Model) -> None:
        if left := constant_left_operands(model):
            raise ir.passes.PreconditionError(f"needs constants-right first; constant operand first in {left[:5]}")

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        count = sum(_rewrite_main_graph(stage, model) for stage in self.rules())
        if count:
            model.opset_imports.setdefault(EDGEACT_DOMAIN, 1)
            common.RemoveUnusedNodesPass()(model)
        return ir.passes.PassResult(model, bool(count))


class FuseActivations(_RuleSetPass):
    name = "fuse-activations"
    changes = "decomposed GELU (erf, tanh), SiLU, hardswish, hardsigmoid, mish -> one ai.edgeact node each"
    rules = staticmethod(fusions.activation_rules)


class FuseStructures(_RuleSetPass):
    name = "fuse-structures"
    changes = "decomposed LayerNorm and Softmax, MatMul+Add -> one ai.edgeact node each"
    rules = staticmethod(fusions.structure_rules)


class FuseElementwiseChains(EdgeactPass):
    name = "fuse-elementwise-chains"
    changes = "any other single-input chain of elementwise ops (x*sigmoid(1.702x), exp, pow, ...) -> one ai.edgeact " \
              "elementwise node, an exact int8 table"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        chains = chains_module.find_chains(model.graph)
        taken = {f.overload for f in model.functions.values() if f.name == ELEMENTWISE_OP}
        number = 0
        for chain in chains:
            number += 1
            while str(number) in taken:
                number += 1
            chains_module.fuse_chain(model, chain, str(number))
        if chains:
            model.opset_imports.setdefault(EDGEACT_DOMAIN, 1)
        return ir.passes.PassResult(model, bool(chains))


class UnrollRecurrent(EdgeactPass):
    name = "unroll-recurrent"
    changes = "LSTM / GRU with a static sequence length -> MatMul + sigmoid/tanh gates per step (state I/O kept)"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        modified = False
        for node in list(model.graph):
            if node.domain == "" and node.op_type in ("LSTM", "GRU"):
                modified |= recurrent.unroll(model.graph, node)
        if modified:  # a zero initial state's Shape -> ConstantOfShape chain is now unused
            common.RemoveUnusedNodesPass()(model)
        return ir.passes.PassResult(model, modified)


class NameEverything(EdgeactPass):
    name = "name-everything"
    changes = "gives every node and value a unique name (fused nodes: <op>_<output>)"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        modified = False
        for node in model.graph:
            generated = not node.name or node.name.startswith("node_")  # unnamed, or named by the rewriter
            if generated and node.domain == EDGEACT_DOMAIN and node.outputs[0].name:
                node.name = f"{node.op_type}_{node.outputs[0].name}"
                modified = True
        fixed = common.NameFixPass()(model)
        return ir.passes.PassResult(model, modified or fixed.modified)

    def ensures(self, model: ir.Model) -> None:
        if duplicated := duplicate_names(model):
            raise ir.passes.PostconditionError(f"names still empty or repeated: {duplicated[:5]}")


CANONICALISATION: tuple[type[EdgeactPass], ...] = (
    FoldConstants,
    RemoveIdentityDropout,
    UnrollRecurrent,
    FoldBatchNorm,
    EqualizeChannels,
    ScalarConstants,
    ConstantsRight,
    FuseActivations,
    FuseStructures,
    FuseElementwiseChains,
    NameEverything,
)


def specialise_shapes(model: ir.Model, shapes: dict[str, tuple[int | None, ...]]) -> ir.Model:
    """A copy of ``model`` whose inputs have the static ``shapes`` (None: that dim stays as it is): shapes inferred
    anew and ``fold-constants`` repeated until the shape arithmetic of fixed dims (Shape -> Gather -> Concat ->
    Reshape) is constant."""
    proto = onnx.load_model_from_string(model_bytes(model))
    for value in proto.graph.input:
        if value.name in shapes:
            dims = value.type.tensor_type.shape.dim
            for dim, size in zip(dims, shapes[value.name], strict=True):
                if size is not None:
                    dim.Clear()
                    dim.dim_value = int(size)
    for _ in range(4):
        del proto.graph.value_info[:]
        try:
            proto = onnx.shape_inference.infer_shapes(proto, data_prop=True)
        except onnx.shape_inference.InferenceError as exc:
            raise ModelFormatError(f"shapes {shapes} do not fit the model: {exc}") from exc
        static = ir.from_proto(proto)
        folded = FoldConstants()(static).modified
        common.RemoveUnusedNodesPass()(static)
        proto = onnx.load_model_from_string(model_bytes(static))
        if not folded:
            break
    return ir.from_proto(proto)


class FixInputShapes(ir.passes.FunctionalPass):
    """Named like the other passes; returns a new model (see :func:`specialise_shapes`)."""

    name = "fix-input-shapes"
    changes = "fixes dynamic input dims (for a static target) and folds the shape arithmetic they fed"

    def __init__(self, shapes: dict[str, tuple[int | None, ...]]) -> None:
        super().__init__()
        self.shapes = shapes

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        return ir.passes.PassResult(specialise_shapes(model, self.shapes), True)


def canonicalise(model: ir.Model, skip: frozenset[str] = frozenset()) -> list[str]:
    """Run the canonicalisation passes in place; returns the names of the passes that changed the model."""
    passes = [pass_type() for pass_type in CANONICALISATION if pass_type.name not in skip]
    ir.passes.PassManager(passes, steps=1)(model)
    common.RemoveUnusedFunctionsPass()(model)
    return [p.name for p in passes if p.modified]
