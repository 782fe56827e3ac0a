"""Resize of the spatial axes of a rank-4 tensor: nearest neighbour -> RESIZE_NEAREST_NEIGHBOR (data movement on
one grid); bilinear -> RESIZE_BILINEAR, in float32 (between DEQUANTIZE and QUANTIZE in an int8 model): edgeact has
no bit-exact model of the runtimes' int8 interpolation, so the plan keeps it float and says why."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgeact.numerics.rounding import round_half_away_from_zero
from edgeact.ops._kernel import is_float
from edgeact.ops.layout import FLOAT
from edgeact.ops.spec import Builtin, OpQuantizer, OpSpec, Role

if TYPE_CHECKING:
    from edgeact.exporters.tflite.lower import Lowering
    from edgeact.graph.view import NodeView


# ---- TFLite lowering ----------------------------------------------------------------------------------------------
NEAREST_FORMS = {  # (coordinate_transformation_mode, nearest_mode) -> TFLite's (alignCorners, halfPixelCenters)
    ("asymmetric", "floor"): (False, False),
    ("align_corners", "round_prefer_ceil"): (True, False),
    ("tf_half_pixel_for_nn", "floor"): (False, True),
}


BILINEAR_FORMS = {  # coordinate_transformation_mode -> TFLite's (alignCorners, halfPixelCenters)
    "asymmetric": (False, False),
    "align_corners": (True, False),
    "half_pixel": (False, True),
    "pytorch_half_pixel": (False, True),  # the same as half_pixel where an output axis is longer than 1
}


def bilinear_stays_float(node: NodeView) -> str | None:
    """Why a linear Resize stays float (None: it is a nearest-neighbour one, data movement on one grid)."""
    if node.attributes.get("mode", "nearest") != "linear":
        return None
    return ("bilinear Resize runs float32 (DEQUANTIZE -> RESIZE_BILINEAR -> QUANTIZE): edgeact has no bit-exact "
            "model of the runtimes' int8 interpolation")


def _emit(ctx: Lowering, node: NodeView, dtype: str, builtin: str, flags: tuple[bool, bool]) -> None:
    """``builtin`` on the NHWC form of the input, to the output's spatial size, with TFLite's (alignCorners,
    halfPixelCenters) ``flags``; a resize of the batch or channel axis is refused."""
    x, y = node.inputs[0], node.outputs[0]
    out_shape = ctx.shape(y)
    if ctx.shape(x)[:2] != out_shape[:2]:
        raise ctx.unsupported(node, "Resize of the batch or channel axis")
    source = ctx.get(x, dtype, "nhwc", node.name)
    size = ctx.int32_constant(f"{node.name}/size", list(out_shape[2:]))
    ctx.graph.op(builtin, [source, size], [ctx.output(node, y, dtype, "nhwc")], node.name,
                 alignCorners=flags[0], halfPixelCenters=flags[1])


def _lower_bilinear(ctx: Lowering, node: NodeView, dtype: str) -> None:
    transform = node.attributes.get("coordinate_transformation_mode", "half_pixel")
    halves_one = transform == "pytorch_half_pixel" and min(ctx.shape(node.outputs[0])[2:]) == 1
    if dtype != FLOAT or transform not in BILINEAR_FORMS or ctx.rank(node.inputs[0]) != 4 or halves_one:
        raise ctx.unsupported(node, f"{dtype} bilinear Resize with {transform!r} (TFLite's RESIZE_BILINEAR runs "
                                    f"float32 {sorted(BILINEAR_FORMS)} on rank-4 tensors)")
    _emit(ctx, node, dtype, "RESIZE_BILINEAR", BILINEAR_FORMS[transform])


def lower_resize(ctx: Lowering, node: NodeView, dtype: str) -> None:
    """Nearest-neighbour Resize of an NCHW tensor -> RESIZE_NEAREST_NEIGHBOR (data movement: one grid); bilinear
    (float) -> RESIZE_BILINEAR."""
    x = node.inputs[0]
    a = node.attributes
    mode = a.get("mode", "nearest")
    if mode == "linear":
        _lower_bilinear(ctx, node, dtype)
        return
    form = (a.get("coordinate_transformation_mode", "half_pixel"), a.get("nearest_mode", "round_prefer_floor"))
    if mode != "nearest" or form not in NEAREST_FORMS or ctx.rank(x) != 4:
        raise ctx.unsupported(node, f"Resize mode {mode!r} with {form[0]!r}/{form[1]!r} (TFLite runs nearest-"
                                    f"neighbour forms {sorted(NEAREST_FORMS)} on rank-4 tensors)")
    _emit(ctx, node, dtype, "RESIZE_NEAREST_NEIGHBOR", NEAREST_FORMS[form])


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


def _bilinear_positions(size_in: int, size_out: int, align: bool, half: bool) -> tuple[np.ndarray, ...]:
    """TFLite's ComputeInterpolationValues along one axis: the source position, the lower and upper index."""
    scale = np.float32((size_in - 1) / (size_out - 1)) if align and size_out > 1 else np.float32(size_in / size_out)
    out = np.arange(size_out, dtype=np.float32)
    position = (out + np.float32(0.5)) * scale - np.float32(0.5) if half else out * scale
    lower = np.maximum(np.floor(position).astype(np.int64), 0)
    upper = np.minimum(np.ceil(position).astype(np.int64), size_in - 1)
    return position, lower, upper


def resize_bilinear(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    """Float32 RESIZE_BILINEAR on NHWC (TFLite's reference arithmetic: weights from the unclamped position)."""
    if not is_float(graph, op):
        raise NotImplementedError("int8 RESIZE_BILINEAR has no emulator kernel (edgeact plans bilinear Resize float)")
    x, size = inputs[0], np.asarray(inputs[1]).reshape(-1)
    align, half = bool(op.options.get("alignCorners")), bool(op.options.get("halfPixelCenters"))
    ys, y0, y1 = _bilinear_positions(x.shape[1], int(size[0]), align, half)
    xs, x0, x1 = _bilinear_positions(x.shape[2], int(size[1]), align, half)
    dy = (ys - y0.astype(np.float32))[None, :, None, None]
    dx = (xs - x0.astype(np.float32))[None, None, :, None]
    top = x[:, y0][:, :, x0] * (1 - dx) + x[:, y0][:, :, x1] * dx
    bottom = x[:, y1][:, :, x0] * (1 - dx) + x[:, y1][:, :, x1] * dx
    return [(top * (1 - dy) + bottom * dy).astype(np.float32)]


# ---- the specs ----------------------------------------------------------------------------------------------------
BUILTINS = (
    Builtin("RESIZE_NEAREST_NEIGHBOR", resize_nearest, ("ResizeNearestNeighborOptions", {
        "alignCorners": False, "halfPixelCenters": False})),
    Builtin("RESIZE_BILINEAR", resize_bilinear, ("ResizeBilinearOptions", {
        "alignCorners": False, "halfPixelCenters": False})),
)

SPECS = (OpSpec("Resize", OpQuantizer(Role.SHARED, stays_float=bilinear_stays_float), lower_resize,
                ("RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR")),)
