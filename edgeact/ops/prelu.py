"""PRelu with a constant slope -> PRELU (int8: the slope an int8 constant on its own grid)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgeact.ops._kernel import is_float, out_dtype, requantized, scale_zp
from edgeact.ops._lowering import layout_for, operand_constant
from edgeact.ops.layout import FLOAT, INT8
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
    slope_dtype = FLOAT if dtype == FLOAT else INT8  # TFLite's int16 PRELU reads an int8 slope too
    slope = operand_constant(ctx, node, 1, slope_dtype, ctx.shape(y), layout)
    source = ctx.get(x, dtype, layout, node.name)
    ctx.graph.op("PRELU", [source, slope], [ctx.output(node, y, dtype, layout)], node.name)


# ---- emulator kernels ---------------------------------------------------------------------------------------------
def prelu(graph, op, inputs, rounding, in_double: bool = False):  # type: ignore[no-untyped-def]
    """x >= 0: x * s_in/s_out; x < 0: x * alpha * s_in*s_alpha/s_out (TFLite's reference PRELU, two multipliers
    computed in float32 from the float32 scales; TFLite Micro computes them in double, ``in_double``)."""
    x, alpha = inputs
    if is_float(graph, op):
        x = x.astype(np.float32)
        return [np.where(x >= 0, x, x * alpha.astype(np.float32)).astype(np.float32)]
    (si, zi), (sa, za), (so, zo) = (scale_zp(graph, i) for i in (*op.inputs, op.outputs[0]))
    centred, dtype = x.astype(np.int64) - zi, out_dtype(graph, op)
    f32 = float if in_double else np.float32
    positive = requantized(centred, float(f32(si) / f32(so)), zo, rounding, dtype)
    product = centred * (np.broadcast_to(alpha, np.broadcast_shapes(x.shape, alpha.shape)).astype(np.int64) - za)
    negative = requantized(product, float(f32(f32(si) * f32(sa)) / f32(so)), zo, rounding, dtype)
    return [np.where(centred >= 0, positive, negative)]


# ---- the specs ----------------------------------------------------------------------------------------------------
def tflm_prelu(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    return prelu(graph, op, inputs, rounding, in_double=True)


BUILTINS = (Builtin("PRELU", prelu, arithmetic={"tflm": tflm_prelu}),)

SPECS = (OpSpec("PRelu", BINARY, lower_prelu, ("PRELU",)),)  # the constant slope is an int8 operand on its own grid
