"""Relu and Clip: folded into the producer's grid in int8 (their range becomes it), else RELU / RELU6, or
MAXIMUM / MINIMUM in float."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgeact.numerics.rounding import round_half_away_from_zero
from edgeact.ops._kernel import is_float, out_dtype, saturate, scale_zp
from edgeact.ops._lowering import layout_for
from edgeact.ops.layout import FLOAT
from edgeact.ops.spec import Builtin, OpQuantizer, OpSpec, Role

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from edgeact.exporters.tflite.lower import Lowering
    from edgeact.graph.view import GraphView, NodeView
    from edgeact.numerics.qparams import QParams


FOLDING_OPS = ("Relu", "Clip")


def clip_bounds(node: NodeView, constant: Callable[[str], np.ndarray | None]) -> tuple[float | None, float | None]:
    """The [low, high] a Relu or Clip clamps to (None: no bound on that side)."""
    if node.op_type == "Relu":
        return 0.0, None
    low = constant(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else None
    high = constant(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    return (None if low is None else float(low)), (None if high is None else float(high))


def folded_values(view: GraphView, grids: Mapping[str, QParams]) -> dict[str, str]:
    """Values whose integer grid already clamps as the Relu/Clip reading them (alone) does, so the Relu/Clip is
    folded away: value -> the Relu/Clip output its integer form holds (what it is compared with)."""
    folded = {}
    for node in view.nodes:
        if node.domain or node.op_type not in FOLDING_OPS:
            continue
        x, y = node.inputs[0], node.outputs[0]
        grid = grids.get(x)
        if grid is None or grids.get(y) != grid or len(view.consumers(x)) != 1:
            continue
        if _clamps(grid, *clip_bounds(node, lambda name: view.values[name].constant)):
            folded[x] = y
    return folded


# ---- TFLite lowering ----------------------------------------------------------------------------------------------
def lower_relu_clip(ctx: Lowering, node: NodeView, dtype: str) -> None:
    x, y = node.inputs[0], node.outputs[0]
    low, high = clip_bounds(node, ctx.constant)
    if dtype != FLOAT and ctx.grid(x) == ctx.grid(y) and _clamps(ctx.grid(x), low, high):
        ctx.fold(x, y)  # folded: the producer's grid already clamps to the Relu/Clip range
        return
    layout = layout_for(ctx, [x])
    source = ctx.get(x, dtype, layout, node.name)
    out = ctx.output(node, y, dtype, layout)
    if (low, high) in ((0.0, None), (0.0, 6.0)):
        ctx.graph.op("RELU" if high is None else "RELU6", [source], [out], node.name)
        return
    if dtype != FLOAT:
        raise ctx.unsupported(node, f"{dtype} Clip to [{low}, {high}] that is not folded")
    current = source
    for op, bound in (("MAXIMUM", low), ("MINIMUM", high)):
        if bound is None:
            continue
        target = out if op == "MINIMUM" or high is None else ctx.graph.like(source, f"{y}/{op.lower()}")
        ctx.graph.op(op, [current, ctx.graph.constant(f"{node.name}/{op.lower()}", np.float32(bound))], [target],
                     node.name)
        current = target


def _clamps(grid, low: float | None, high: float | None) -> bool:  # type: ignore[no-untyped-def]
    """Does ``grid`` itself hold values to [low, high], to within one step? A grid planned from the Relu/Clip's
    range reaches at most half a step past it (and a symmetric int16 one, one code below -high); a symmetric int16
    grid under a Relu reaches far below 0 and needs the RELU op."""
    lowest, highest = grid.real_range
    return (low is None or lowest >= low - grid.scale) and (high is None or highest <= high + grid.scale)


# ---- emulator kernels ---------------------------------------------------------------------------------------------
def relu(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    high = None if op.op == "RELU" else 6.0
    if is_float(graph, op):
        return [np.clip(inputs[0], 0.0, high).astype(np.float32)]
    (si, zi), (so, zo) = scale_zp(graph, op.inputs[0]), scale_zp(graph, op.outputs[0])
    real = np.clip(np.float32(si) * (inputs[0].astype(np.float32) - np.float32(zi)), 0.0, high)
    return [saturate(round_half_away_from_zero(real / np.float32(so)) + zo, out_dtype(graph, op))]


# ---- the specs ----------------------------------------------------------------------------------------------------
BUILTINS = (Builtin("RELU", relu), Builtin("RELU6", relu))

SPECS = (
    OpSpec("Relu", OpQuantizer(Role.FOLD), lower_relu_clip, ("RELU", "RELU6")),
    OpSpec("Clip", OpQuantizer(Role.FOLD), lower_relu_clip, ("RELU", "RELU6", "MAXIMUM", "MINIMUM")),
)
