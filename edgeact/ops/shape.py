"""Data movement: Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat, Gather, Slice, Split, Identity, Expand.
Int8 data movement keeps its input's grid (Concat: one shared grid)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgeact.numerics.rounding import round_half_away_from_zero
from edgeact.ops._kernel import is_float, out_dtype, saturate, scale_zp
from edgeact.ops._lowering import codes_as, layout_for, requantized_onto
from edgeact.ops.layout import FLOAT, TO_NCHW, TO_NHWC
from edgeact.ops.spec import SHARED, Builtin, OpQuantizer, OpSpec, Role

if TYPE_CHECKING:
    from edgeact.exporters.tflite.lower import Lowering
    from edgeact.graph.view import NodeView


# ---- TFLite lowerings -------------------------------------------------------------------------------------------
def lower_concat(ctx: Lowering, node: NodeView, dtype: str) -> None:
    rank = ctx.rank(node.outputs[0])
    axis = int(node.attributes.get("axis", 0)) % rank
    layout = layout_for(ctx, list(node.inputs))
    if layout == "nhwc":
        axis = TO_NHWC.index(axis)
    if dtype != FLOAT:  # data movement: each input in its own precision, requantized once onto the output's grid
        dtype = ctx.grid(node.outputs[0]).dtype
        inputs = [ctx.get(name, ctx.grid(name).dtype, layout, node.name) for name in node.inputs]
    else:
        inputs = [ctx.get(name, dtype, layout, node.name) for name in node.inputs]
    out = ctx.output(node, node.outputs[0], dtype, layout)
    if dtype != FLOAT:  # XNNPACK and TFLite Micro take int8 CONCATENATION only on one shared grid
        inputs = [requantized_onto(ctx, node, source, ctx.graph.tensors[out].quant) for source in inputs]
    ctx.graph.op("CONCATENATION", inputs, [out], node.name, axis=axis)


def lower_reshape(ctx: Lowering, node: NodeView, dtype: str) -> None:
    x, y = node.inputs[0], node.outputs[0]
    shape = ctx.shape(x)
    spatial_ones = len(shape) == 4 and shape[2] == shape[3] == 1 and ctx.layouts(x) == {"nhwc"}
    source = ctx.get(x, dtype, "nhwc" if spatial_ones else "nchw", node.name)  # NHWC [N,1,1,C] reads like NCHW
    new_shape = ctx.int32_constant(f"{node.name}/shape", ctx.shape(y))
    ctx.graph.op("RESHAPE", [source, new_shape], [ctx.output(node, y, dtype)], node.name)


def lower_transpose(ctx: Lowering, node: NodeView, dtype: str) -> None:
    """Transpose -> TRANSPOSE; a rank-4 NHWC <-> NCHW swap moves no data when the form it needs exists: the
    channels-last form of ``x.transpose(0, 3, 1, 2)`` is ``x`` itself, and ``x.transpose(0, 2, 3, 1)`` is the
    channels-last form of ``x`` (what a model exported from a channels-last framework does at its boundaries)."""
    x, y = node.inputs[0], node.outputs[0]
    rank = ctx.rank(x)
    perm = tuple(int(p) for p in node.attributes.get("perm", list(reversed(range(rank)))))
    if rank == 4 and perm == TO_NCHW and ctx.constant(x) is None:
        ctx.put(y, ctx.get(x, dtype, "nchw", node.name), dtype, "nhwc")
        return
    if rank == 4 and perm == TO_NHWC and ctx.constant(x) is None and "nhwc" in ctx.layouts(x):
        ctx.put(y, ctx.get(x, dtype, "nhwc", node.name), dtype, "nchw")
        return
    source = ctx.get(x, dtype, "nchw", node.name)
    ctx.graph.op("TRANSPOSE", [source, ctx.int32_constant(f"{node.name}/perm", perm)],
                 [ctx.output(node, node.outputs[0], dtype)], node.name)


def lower_gather(ctx: Lowering, node: NodeView, dtype: str) -> None:
    data, indices = node.inputs
    if ctx.constant(data) is not None:
        plan = ctx.constant_plan(node, 0) if dtype != FLOAT else None
        grid, values = codes_as(plan.grid, plan.codes, dtype) if plan is not None else (
            None, ctx.constant(data).astype(np.float32))
        source = ctx.graph.constant(f"{data}/{dtype}", values, grid)
    else:
        source = ctx.get(data, dtype, "nchw", node.name)
    axis = int(node.attributes.get("axis", 0)) % ctx.rank(data)
    if ctx.constant(indices) is not None:  # TFLite's GATHER takes no negative positions: wrap them here
        index = ctx.int32_constant(f"{indices}/int32", ctx.constant(indices) % ctx.shape(data)[axis])
    else:
        index = ctx.raw(indices)
        if ctx.graph.tensors[index].dtype != "int32":  # TFLite Micro's GATHER takes int32 positions only
            wide = ctx.graph.like(index, f"{indices}/int32", "int32")
            ctx.graph.op("CAST", [index], [wide], node.name)
            index = wide
    ctx.graph.op("GATHER", [source, index], [ctx.output(node, node.outputs[0], dtype)], node.name, axis=axis)


def lower_slice(ctx: Lowering, node: NodeView, dtype: str) -> None:
    shape = ctx.shape(node.inputs[0])
    starts, ends = (ctx.constant(node.inputs[i]) for i in (1, 2))
    if starts is None or ends is None:
        raise ctx.unsupported(node, "Slice with non-constant starts/ends")
    axes = ctx.constant(node.inputs[3]) if len(node.inputs) > 3 and node.inputs[3] else np.arange(len(starts))
    steps = ctx.constant(node.inputs[4]) if len(node.inputs) > 4 and node.inputs[4] else np.ones(len(starts), int)
    begin, end, stride = [0] * len(shape), list(shape), [1] * len(shape)
    for start, stop, axis, step in zip(starts, ends, axes, steps, strict=True):
        axis = int(axis) % len(shape)
        size = shape[axis]
        begin[axis] = int(np.clip(start + size if start < 0 else start, 0, size))
        end[axis] = int(np.clip(stop + size if stop < 0 else stop, -1 if step < 0 else 0, size))
        stride[axis] = int(step)
    inputs = [ctx.get(node.inputs[0], dtype, "nchw", node.name)] + [
        ctx.int32_constant(f"{node.name}/{label}", values)
        for label, values in (("begin", begin), ("end", end), ("strides", stride))
    ]
    ctx.graph.op("STRIDED_SLICE", inputs, [ctx.output(node, node.outputs[0], dtype)], node.name)


def lower_split(ctx: Lowering, node: NodeView, dtype: str) -> None:
    rank = ctx.rank(node.inputs[0])
    axis = int(node.attributes.get("axis", 0)) % rank
    sizes = {ctx.shape(out)[axis] for out in node.outputs}
    source = ctx.get(node.inputs[0], dtype, "nchw", node.name)
    outputs = [ctx.output(node, out, dtype) for out in node.outputs]
    axis_tensor = ctx.int32_constant(f"{node.name}/axis", axis)
    if len(sizes) == 1:
        ctx.graph.op("SPLIT", [axis_tensor, source], outputs, node.name, numSplits=len(outputs))
        return
    parts = ctx.int32_constant(f"{node.name}/sizes", [ctx.shape(out)[axis] for out in node.outputs])
    ctx.graph.op("SPLIT_V", [source, parts, axis_tensor], outputs, node.name, numSplits=len(outputs))


def lower_identity(ctx: Lowering, node: NodeView, dtype: str) -> None:
    ctx.aliases[node.outputs[0]] = node.inputs[0]


def lower_expand(ctx: Lowering, node: NodeView, dtype: str) -> None:
    """Expand -> BROADCAST_TO the output's static shape (ONNX's two-way broadcast, resolved by shape inference)."""
    if not ctx.runs("BROADCAST_TO"):
        raise ctx.unsupported(node, "BROADCAST_TO is not in the target's op set")
    source = ctx.get(node.inputs[0], dtype, "nchw", node.name)
    shape = ctx.int32_constant(f"{node.name}/shape", ctx.shape(node.outputs[0]))
    ctx.graph.op("BROADCAST_TO", [source, shape], [ctx.output(node, node.outputs[0], dtype)], node.name)


# ---- emulator kernels ---------------------------------------------------------------------------------------------
def reshape(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    return [inputs[0].reshape(graph.tensors[op.outputs[0]].shape)]


def transpose(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    return [np.transpose(inputs[0], np.asarray(inputs[1]).reshape(-1))]


def strided_slice(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    x, begin, end, strides = inputs
    index = tuple(slice(int(b), int(e), int(s)) for b, e, s in zip(begin, end, strides, strict=True))
    return [x[index]]


def split(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    axis, x = int(np.asarray(inputs[0]).reshape(-1)[0]), inputs[1]
    return list(np.split(x, op.options.get("numSplits", 1), axis=axis))


def split_v(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    x, sizes, axis = inputs[0], np.asarray(inputs[1]).reshape(-1), int(np.asarray(inputs[2]).reshape(-1)[0])
    return list(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


def gather(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    return [np.take(inputs[0], np.asarray(inputs[1], dtype=np.int64), axis=op.options.get("axis", 0))]


def concatenation(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    axis = op.options.get("axis", 0)
    if is_float(graph, op):
        return [np.concatenate(inputs, axis=axis)]
    so, zo = scale_zp(graph, op.outputs[0])
    parts = []
    for index, value in zip(op.inputs, inputs, strict=True):
        si, zi = scale_zp(graph, index)
        if (si, zi) == (so, zo):
            parts.append(value)
            continue
        scale = np.float32(si) / np.float32(so)
        rescaled = value.astype(np.float32) * scale + (np.float32(-zi) * scale)
        parts.append(saturate(round_half_away_from_zero(rescaled) + zo, out_dtype(graph, op)))
    return [np.concatenate(parts, axis=axis)]


def cast(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    return [inputs[0].astype(graph.tensors[op.outputs[0]].dtype)]


def broadcast_to(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    return [np.broadcast_to(inputs[0], tuple(int(d) for d in np.asarray(inputs[1]).reshape(-1))).copy()]


# ---- the specs ----------------------------------------------------------------------------------------------------
BUILTINS = (
    Builtin("RESHAPE", reshape, ("ReshapeOptions", {})),
    Builtin("TRANSPOSE", transpose),
    Builtin("CONCATENATION", concatenation, ("ConcatenationOptions", {"axis": 0, "fusedActivationFunction": 0})),
    Builtin("GATHER", gather, ("GatherOptions", {"axis": 0, "batchDims": 0})),
    Builtin("CAST", cast, ("CastOptions", {})),
    Builtin("BROADCAST_TO", broadcast_to, ("BroadcastToOptions", {}), version=2),
    Builtin("STRIDED_SLICE", strided_slice, ("StridedSliceOptions", {"beginMask": 0, "endMask": 0,
                                                                     "ellipsisMask": 0, "newAxisMask": 0,
                                                                     "shrinkAxisMask": 0})),
    Builtin("SPLIT", split, ("SplitOptions", {"numSplits": 1})),
    Builtin("SPLIT_V", split_v, ("SplitVOptions", {"numSplits": 1})),
)

SPECS = (
    *(OpSpec(op, SHARED, lower_reshape, ("RESHAPE", "TRANSPOSE")) for op in ("Reshape", "Flatten", "Squeeze",
                                                                               "Unsqueeze")),
    OpSpec("Transpose", SHARED, lower_transpose, ("TRANSPOSE",)),
    OpSpec("Concat", OpQuantizer(Role.COMPUTE, data_inputs=None), lower_concat, ("CONCATENATION", "QUANTIZE")),
    OpSpec("Gather", SHARED, lower_gather, ("GATHER", "CAST")),
    OpSpec("Slice", SHARED, lower_slice, ("STRIDED_SLICE",)),
    OpSpec("Split", SHARED, lower_split, ("SPLIT", "SPLIT_V")),
    OpSpec("Identity", SHARED, lower_identity),
    OpSpec("Expand", SHARED, lower_expand, ("BROADCAST_TO",)),
)
