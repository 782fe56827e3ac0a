"""Softmax (ONNX's, and the fused ai.edgeact decomposition) -> SOFTMAX over the last axis."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgeact.domain import EDGEACT_DOMAIN
from edgeact.numerics.rounding import round_half_away_from_zero
from edgeact.ops._kernel import is_float, saturate_int8, scale_zp
from edgeact.ops.spec import Builtin, OnnxEmission, OpQuantizer, OpSpec, Role

if TYPE_CHECKING:
    from edgeact.exporters.tflite.lower import Lowering
    from edgeact.graph.view import NodeView


# ---- TFLite lowering ----------------------------------------------------------------------------------------------
def lower_softmax(ctx: Lowering, node: NodeView, dtype: str) -> None:
    rank = ctx.rank(node.inputs[0])
    axis = int(node.attributes.get("axis", -1)) % rank
    layout = "nhwc" if rank == 4 and axis == 1 and ctx.layouts(node.inputs[0]) == {"nhwc"} else "nchw"
    if layout == "nchw" and axis != rank - 1:
        raise ctx.unsupported(node, f"softmax over axis {axis} (TFLite's SOFTMAX is over the last axis)")
    source = ctx.get(node.inputs[0], dtype, layout, node.name)
    ctx.graph.op("SOFTMAX", [source], [ctx.output(node, node.outputs[0], dtype, layout)], node.name, beta=1.0)


# ---- emulator kernels ---------------------------------------------------------------------------------------------
def softmax(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    beta = np.float32(op.options.get("beta", 1.0))
    floating = is_float(graph, op)
    x = inputs[0].astype(np.float32)
    if not floating:
        si, zi = scale_zp(graph, op.inputs[0])
        x = np.float32(si) * (x - np.float32(zi))
    shifted = beta * (x - x.max(axis=-1, keepdims=True))
    e = np.exp(shifted.astype(np.float64))
    p = e / e.sum(axis=-1, keepdims=True)
    if floating:
        return [p.astype(np.float32)]
    so, zo = scale_zp(graph, op.outputs[0])
    return [saturate_int8(round_half_away_from_zero(p / so) + zo)]


# ---- the specs ----------------------------------------------------------------------------------------------------
BUILTINS = (Builtin("SOFTMAX", softmax, ("SoftmaxOptions", {"beta": 1.0})),)

# Softmax's int8 grid is the one TFLite requires, (1/256, -128): one calibration gives the same scales in ONNX and
# TFLite; an output of exactly 1.0 saturates to 255/256.
_SOFTMAX = OpQuantizer(Role.COMPUTE, output_range=(0.0, 255.0 / 256.0))
SPECS = (
    OpSpec("Softmax", _SOFTMAX, lower_softmax, ("SOFTMAX",)),
    OpSpec("Softmax", _SOFTMAX, lower_softmax, ("SOFTMAX",), domain=EDGEACT_DOMAIN, onnx=OnnxEmission.INLINE),
)
