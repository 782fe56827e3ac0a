"""Pad (constant mode, fill 0) -> PAD: data movement on one grid (TFLite's int8 PAD fills with the zero point, the
code of real 0). The PAD / PADV2 builtins and their kernel live with the convolutions, which pad explicitly too."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgeact.ops._lowering import layout_for
from edgeact.ops.layout import TO_NHWC
from edgeact.ops.spec import SHARED, OpSpec

if TYPE_CHECKING:
    from edgeact.exporters.tflite.lower import Lowering
    from edgeact.graph.view import NodeView


def _optional(node: NodeView, index: int) -> str:
    return node.inputs[index] if len(node.inputs) > index and node.inputs[index] else ""


def lower_pad(ctx: Lowering, node: NodeView, dtype: str) -> None:
    """Constant-mode Pad with a constant ``pads`` (and ``axes``) and fill 0 -> PAD, in the layout the input has."""
    x, y = node.inputs[0], node.outputs[0]
    mode = str(node.attributes.get("mode", "constant"))
    if mode != "constant":
        raise ctx.unsupported(node, f"Pad mode {mode!r} (TFLite's PAD fills with a constant)")
    pads = ctx.constant(node.inputs[1]) if len(node.inputs) > 1 else None
    if pads is None:
        raise ctx.unsupported(node, "Pad with non-constant pads")
    fill = ctx.constant(_optional(node, 2)) if _optional(node, 2) else np.zeros(1, np.float32)
    if fill is None or np.any(np.asarray(fill) != 0):
        raise ctx.unsupported(node, "Pad with a fill value other than 0")
    rank = ctx.rank(x)
    axes = ctx.constant(_optional(node, 3)) if _optional(node, 3) else np.arange(rank)
    if axes is None:
        raise ctx.unsupported(node, "Pad with non-constant axes")
    pads = np.asarray(pads, dtype=np.int64).reshape(-1)
    if np.any(pads < 0):
        raise ctx.unsupported(node, "Pad with negative pads (a crop)")
    rows = np.zeros((rank, 2), dtype=np.int64)
    for position, axis in enumerate(np.asarray(axes).reshape(-1)):
        rows[int(axis) % rank] = (pads[position], pads[position + len(axes)])
    layout = layout_for(ctx, [x]) if rank == 4 else "nchw"
    if layout == "nhwc":
        rows = rows[list(TO_NHWC)]
    source = ctx.get(x, dtype, layout, node.name)
    ctx.graph.op("PAD", [source, ctx.int32_constant(f"{node.name}/pads", rows)],
                 [ctx.output(node, y, dtype, layout)], node.name)


SPECS = (OpSpec("Pad", SHARED, lower_pad, ("PAD",)),)
BUILTINS = ()
