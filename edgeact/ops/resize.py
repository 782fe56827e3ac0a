"""Resize (nearest neighbour, rank 4) -> RESIZE_NEAREST_NEIGHBOR: data movement on one grid."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgeact.numerics.rounding import round_half_away_from_zero
from edgeact.ops.spec import SHARED, Builtin, OpSpec

if TYPE_CHECKING:
    from edgeact.exporters.tflite.lower import Lowering
    from edgeact.graph.view import NodeView


# ---- TFLite lowering ----------------------------------------------------------------------------------------------
NEAREST_FORMS = {  # (coordinate_transformation_mode, nearest_mode) -> TFLite's (alignCorners, halfPixelCenters)
    ("asymmetric", "floor"): (False, False),
    ("align_corners", "round_prefer_ceil"): (True, False),
    ("tf_half_pixel_for_nn", "floor"): (False, True),
}


def lower_resize(ctx: Lowering, node: NodeView, dtype: str) -> None:
    """Nearest-neighbour Resize of an NCHW tensor -> RESIZE_NEAREST_NEIGHBOR (data movement: one grid)."""
    x, y = node.inputs[0], node.outputs[0]
    a = node.attributes
    mode = a.get("mode", "nearest")
    form = (a.get("coordinate_transformation_mode", "half_pixel"), a.get("nearest_mode", "round_prefer_floor"))
    if mode != "nearest" or form not in NEAREST_FORMS or ctx.rank(x) != 4:
        raise ctx.unsupported(node, f"Resize mode {mode!r} with {form[0]!r}/{form[1]!r} (TFLite runs nearest-"
                                    f"neighbour forms {sorted(NEAREST_FORMS)} on rank-4 tensors)")
    in_shape, out_shape = ctx.shape(x), ctx.shape(y)
    if in_shape[:2] != out_shape[:2]:
        raise ctx.unsupported(node, "Resize of the batch or channel axis")
    align, half = NEAREST_FORMS[form]
    source = ctx.get(x, dtype, "nhwc", node.name)
    size = ctx.int32_constant(f"{node.name}/size", list(out_shape[2:]))
    ctx.graph.op("RESIZE_NEAREST_NEIGHBOR", [source, size], [ctx.output(node, y, dtype, "nhwc")], node.name,
                 alignCorners=align, halfPixelCenters=half)


# ---- emulator kernels ---------------------------------------------------------------------------------------------
def _nearest_indices(size_in: int, size_out: int, align: bool, half: bool) -> np.ndarray:
    """TFLite's GetNearestNeighbor: the source index of every output index along one axis (float32 scale)."""
    scale = np.float32((size_in - 1) / (size_out - 1)) if align and size_out > 1 else np.float32(size_in / size_out)
    offset = np.float32(0.5) if half else np.float32(0.0)
    position = (np.arange(size_out, dtype=np.float32) + offset) * scale
    index = round_half_away_from_zero(position) if align else np.floor(position)
    index = np.minimum(index.astype(np.int64), size_in - 1)
    return np.maximum(index, 0) if half else index


def resize_nearest(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    x, size = inputs[0], np.asarray(inputs[1]).reshape(-1)
    align, half = bool(op.options.get("alignCorners")), bool(op.options.get("halfPixelCenters"))
    rows = _nearest_indices(x.shape[1], int(size[0]), align, half)
    cols = _nearest_indices(x.shape[2], int(size[1]), align, half)
    return [x[:, rows][:, :, cols]]


# ---- the specs ----------------------------------------------------------------------------------------------------
BUILTINS = (
    Builtin("RESIZE_NEAREST_NEIGHBOR", resize_nearest, ("ResizeNearestNeighborOptions", {
        "alignCorners": False, "halfPixelCenters": False})),
)

SPECS = (OpSpec("Resize", SHARED, lower_resize, ("RESIZE_NEAREST_NEIGHBOR",)),)
