"""Float-only elementwise ops (Sin, Cos, Exp, Log, Sqrt, Abs, Neg, Floor, Ceil, Round, Sign): no quantizer, so a
float island in TFLite (DEQUANTIZE before, QUANTIZE after where neighbours are int8), one float32 builtin each."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgeact.ops._lowering import layout_for
from edgeact.ops.layout import FLOAT
from edgeact.ops.spec import Builtin, OpSpec

if TYPE_CHECKING:
    from edgeact.exporters.tflite.lower import Lowering
    from edgeact.graph.view import NodeView


# ---- TFLite lowering ----------------------------------------------------------------------------------------------
FLOAT_UNARY = {"Sin": "SIN", "Cos": "COS", "Exp": "EXP", "Log": "LOG", "Sqrt": "SQRT", "Abs": "ABS", "Neg": "NEG",
               "Floor": "FLOOR", "Ceil": "CEIL", "Round": "ROUND", "Sign": "SIGN"}


def lower_float_unary(ctx: Lowering, node: NodeView, dtype: str) -> None:
    """Float-only elementwise ops (a float island: DEQUANTIZE before, QUANTIZE after where neighbours are int8)."""
    layout = layout_for(ctx, [node.inputs[0]])
    source = ctx.get(node.inputs[0], FLOAT, layout, node.name)
    ctx.graph.op(FLOAT_UNARY[node.op_type], [source], [ctx.output(node, node.outputs[0], FLOAT, layout)], node.name)


# ---- emulator kernels ---------------------------------------------------------------------------------------------
NUMPY_UNARY = {"SIN": np.sin, "COS": np.cos, "EXP": np.exp, "LOG": np.log, "SQRT": np.sqrt, "ABS": np.abs,
               "NEG": np.negative, "FLOOR": np.floor, "CEIL": np.ceil, "ROUND": np.round, "SIGN": np.sign}


def float_unary(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    return [NUMPY_UNARY[op.op](inputs[0].astype(np.float32)).astype(np.float32)]


# ---- the specs ----------------------------------------------------------------------------------------------------
BUILTINS = tuple(Builtin(op, float_unary) for op in NUMPY_UNARY)

SPECS = tuple(OpSpec(op, None, lower_float_unary, (builtin,)) for op, builtin in FLOAT_UNARY.items())
