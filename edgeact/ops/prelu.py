"""PRelu with a constant slope -> PRELU (int8: the slope an int8 constant on its own grid)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgeact.ops._kernel import is_float, requantized, scale_zp
from edgeact.ops._lowering import layout_for, operand_constant
from edgeact.ops.spec import BINARY, Builtin, OpSpec

if TYPE_CHECKING:
    from edgeact.exporters.tflite.lower import Lowering
    from edgeact.graph.view import NodeView


# ---- TFLite lowering ----------------------------------------------------------------------------------------------
def lower_prelu(ctx: Lowering, node: NodeView, dtype: str) -> None:
    """PRelu with a constant slope -> PRELU (int8: its slope an int8 constant on its own grid)."""
    x, y = node.inputs[0], node.outputs[0]
    if ctx.constant(node.inputs[1]) is None:
        raise ctx.unsupported(node, "PRelu with a slope that is not a constant")
    layout = layout_for(ctx, [x])
    slope = operand_constant(ctx, node, 1, dtype, ctx.shape(y), layout)
    source = ctx.get(x, dtype, layout, node.name)
    ctx.graph.op("PRELU", [source, slope], [ctx.output(node, y, dtype, layout)], node.name)


# ---- emulator kernels ---------------------------------------------------------------------------------------------
def prelu(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    """x >= 0: x * s_in/s_out; x < 0: x * alpha * s_in*s_alpha/s_out (TFLite's reference PRELU, two multipliers)."""
    x, alpha = inputs
    if is_float(graph, op):
        x = x.astype(np.float32)
        return [np.where(x >= 0, x, x * alpha.astype(np.float32)).astype(np.float32)]
    (si, zi), (sa, za), (so, zo) = (scale_zp(graph, i) for i in (*op.inputs, op.outputs[0]))
    centred = x.astype(np.int64) - zi
    positive = requantized(centred, float(np.float32(si)) / float(np.float32(so)), zo, rounding)
    product = centred * (np.broadcast_to(alpha, np.broadcast_shapes(x.shape, alpha.shape)).astype(np.int64) - za)
    negative = requantized(product, float(np.float32(si)) * float(np.float32(sa)) / float(np.float32(so)), zo,
                           rounding)
    return [np.where(centred >= 0, positive, negative)]


# ---- the specs ----------------------------------------------------------------------------------------------------
BUILTINS = (Builtin("PRELU", prelu),)

SPECS = (OpSpec("PRelu", BINARY, lower_prelu, ("PRELU",)),)  # the constant slope is an int8 operand on its own grid
