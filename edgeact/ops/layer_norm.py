"""LayerNormalization (and the fused ai.edgeact LayerNorm): float in TFLite, between DEQUANTIZE and QUANTIZE
(TFLite has no int8 layer norm): MEAN, SUB, MUL, ADD or MAXIMUM, RSQRT."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgeact.domain import EDGEACT_DOMAIN
from edgeact.ops.layout import FLOAT
from edgeact.ops.spec import COMPUTE, Builtin, OnnxEmission, OpSpec

if TYPE_CHECKING:
    from edgeact.exporters.tflite.lower import Lowering
    from edgeact.graph.view import NodeView


# ---- TFLite lowering ----------------------------------------------------------------------------------------------
def _layer_norm_epsilon(ctx: Lowering, node: NodeView) -> tuple[str, float]:
    """How the variance is kept off zero: ("ADD" | "MAXIMUM", epsilon), from the op or the fused body (whose
    reductions the fusion checked run over the last axis)."""
    if node.domain == "":
        if int(node.attributes.get("axis", -1)) % ctx.rank(node.inputs[0]) != ctx.rank(node.inputs[0]) - 1:
            raise ctx.unsupported(node, "LayerNormalization over more than the last axis")
        return "ADD", float(node.attributes.get("epsilon", 1e-5))
    body = ctx.view.body_of(node)
    for inner in body.nodes if body is not None else ():
        if inner.op_type in ("Add", "Max") and body.values[inner.inputs[1]].constant is not None:
            constant = body.values[inner.inputs[1]].constant
            if constant.size == 1 and 0.0 < float(constant.reshape(-1)[0]) < 0.1:
                return ("ADD" if inner.op_type == "Add" else "MAXIMUM"), float(constant.reshape(-1)[0])
    raise ctx.unsupported(node, "cannot find the layer norm's epsilon")


def lower_layer_norm(ctx: Lowering, node: NodeView, dtype: str) -> None:
    x, y = node.inputs[0], node.outputs[0]
    shift, epsilon = _layer_norm_epsilon(ctx, node)
    g, name = ctx.graph, node.name
    source = ctx.get(x, FLOAT, "nchw", name)
    axes = ctx.int32_constant(f"{name}/axes", [ctx.rank(x) - 1])
    reduced = tuple(ctx.shape(x)[:-1]) + (1,)
    mean, variance = (g.tensor(f"{name}/{label}", reduced, FLOAT) for label in ("mean", "variance"))
    centred, square, scaled, normalised = (g.like(source, f"{name}/{label}")
                                           for label in ("centred", "square", "scaled", "normalised"))
    inverse, shifted = (g.tensor(f"{name}/{label}", reduced, FLOAT) for label in ("inverse_std", "variance_eps"))
    g.op("MEAN", [source, axes], [mean], name, keepDims=True)
    g.op("SUB", [source, mean], [centred], name)
    g.op("MUL", [centred, centred], [square], name)
    g.op("MEAN", [square, axes], [variance], name, keepDims=True)
    g.op(shift, [variance, g.constant(f"{name}/epsilon", np.float32(epsilon))], [shifted], name)
    g.op("RSQRT", [shifted], [inverse], name)
    g.op("MUL", [centred, inverse], [normalised], name)
    scale = g.constant(f"{node.inputs[1]}/float", ctx.constant(node.inputs[1]).astype(np.float32))
    g.op("MUL", [normalised, scale], [scaled], name)
    bias_name = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
    out = ctx.output(node, y, FLOAT)
    if bias_name is None:
        g.op("MUL", [normalised, scale], [out], name)
        return
    g.op("ADD", [scaled, g.constant(f"{bias_name}/float", ctx.constant(bias_name).astype(np.float32))], [out], name)


# ---- emulator kernels ---------------------------------------------------------------------------------------------
def rsqrt(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    return [(np.float32(1.0) / np.sqrt(inputs[0].astype(np.float32))).astype(np.float32)]


# ---- the specs ----------------------------------------------------------------------------------------------------
BUILTINS = (Builtin("RSQRT", rsqrt),)

_EMITS = ("MEAN", "SUB", "MUL", "ADD", "MAXIMUM", "RSQRT")
SPECS = (
    OpSpec("LayerNormalization", COMPUTE, lower_layer_norm, _EMITS),
    OpSpec("LayerNorm", COMPUTE, lower_layer_norm, _EMITS, domain=EDGEACT_DOMAIN, onnx=OnnxEmission.INLINE),
)
