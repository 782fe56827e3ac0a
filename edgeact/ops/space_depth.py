"""DepthToSpace and SpaceToDepth: data movement between the channel axis and blocks of pixels (int8: one grid).

ONNX works on NCHW, TFLite's DEPTH_TO_SPACE / SPACE_TO_DEPTH on NHWC with the channel index (i*b + j)*C + c of the
pixel (i, j) of a b x b block: ONNX's DCR order (DepthToSpace's default, and SpaceToDepth's only one). DepthToSpace
in CRD mode (channel index c*b*b + i*b + j) has no single builtin and is refused."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgeact.ops.spec import SHARED, Builtin, OpSpec

if TYPE_CHECKING:
    from edgeact.exporters.tflite.lower import Lowering
    from edgeact.graph.view import NodeView

BUILTIN_OF = {"DepthToSpace": "DEPTH_TO_SPACE", "SpaceToDepth": "SPACE_TO_DEPTH"}


def lower_space_depth(ctx: Lowering, node: NodeView, dtype: str) -> None:
    """DepthToSpace (DCR) -> DEPTH_TO_SPACE, SpaceToDepth -> SPACE_TO_DEPTH, on the NHWC form of the input."""
    x, y = node.inputs[0], node.outputs[0]
    op = BUILTIN_OF[node.op_type]
    mode = str(node.attributes.get("mode", "DCR"))
    if node.op_type == "DepthToSpace" and mode != "DCR":
        raise ctx.unsupported(node, f"DepthToSpace mode {mode!r}: TFLite's DEPTH_TO_SPACE computes the DCR order "
                                    "only (export with mode='DCR', or export ONNX)")
    if ctx.rank(x) != 4:
        raise ctx.unsupported(node, f"{node.op_type} of a rank-{ctx.rank(x)} tensor (TFLite's {op} takes rank 4)")
    if not ctx.runs(op):
        raise ctx.unsupported(node, f"{op} is not in the target's op set")
    source = ctx.get(x, dtype, "nhwc", node.name)
    ctx.graph.op(op, [source], [ctx.output(node, y, dtype, "nhwc")], node.name,
                 blockSize=int(node.attributes["blocksize"]))


def depth_to_space(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    """NHWC: out[n, h*b + i, w*b + j, c] = in[n, h, w, (i*b + j)*C + c] (any dtype: no arithmetic)."""
    x, b = inputs[0], int(op.options["blockSize"])
    n, h, w, c = x.shape
    blocks = x.reshape(n, h, w, b, b, c // (b * b)).transpose(0, 1, 3, 2, 4, 5)
    return [np.ascontiguousarray(blocks).reshape(n, h * b, w * b, c // (b * b))]


def space_to_depth(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    """NHWC: out[n, h, w, (i*b + j)*C + c] = in[n, h*b + i, w*b + j, c]."""
    x, b = inputs[0], int(op.options["blockSize"])
    n, h, w, c = x.shape
    blocks = x.reshape(n, h // b, b, w // b, b, c).transpose(0, 1, 3, 2, 4, 5)
    return [np.ascontiguousarray(blocks).reshape(n, h // b, w // b, b * b * c)]


BUILTINS = (
    Builtin("DEPTH_TO_SPACE", depth_to_space, ("DepthToSpaceOptions", {"blockSize": 2})),
    Builtin("SPACE_TO_DEPTH", space_to_depth, ("SpaceToDepthOptions", {"blockSize": 2})),
)

SPECS = (
    OpSpec("DepthToSpace", SHARED, lower_space_depth, ("DEPTH_TO_SPACE",)),
    OpSpec("SpaceToDepth", SHARED, lower_space_depth, ("SPACE_TO_DEPTH",)),
)
