"""Per-op lowerings to TFLite builtins, as a table: (domain, op_type) -> function(ctx, node, dtype).

``dtype`` is ``int8`` when the planner quantized the node and every input it reads has a grid, else ``float32``
(then the context inserts DEQUANTIZE before and QUANTIZE after, where neighbours are int8).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from edgeact.elementwise import is_elementwise_call
from edgeact.exporters.tflite.lower import FLOAT, INT8, TO_NHWC, Lowering, UnsupportedOpError
from edgeact.graph.view import EDGEACT_DOMAIN, GraphView, NodeView
from edgeact.numerics import PerChannelQParams
from edgeact.planning.registry import activation_of
from edgeact.planning.target_forms import BUILTIN, TABLE

Lowerer = Callable[[Lowering, NodeView, str], None]
SAME, VALID = 0, 1
RELU, RELU6 = 1, 3


# ---- constants: weights, biases, operands ------------------------------------------------------------------------
def _weight(ctx: Lowering, node: NodeView, index: int, dtype: str, arrange: Callable[[np.ndarray], np.ndarray],
            axis: int) -> int:
    """Weight constant rearranged for TFLite (``arrange``), int8 per channel on ``axis`` or float32."""
    name = node.inputs[index]
    if dtype == FLOAT:
        return ctx.graph.constant(f"{name}/float", arrange(ctx.constant(name).astype(np.float32)))
    plan = ctx.constant_plan(node, index)
    if plan is None:
        raise ctx.unsupported(node, f"weight {name!r} has no int8 plan")
    grid = plan.grid
    if isinstance(grid, PerChannelQParams):
        grid = PerChannelQParams(grid.scales, axis, "int8")
    return ctx.graph.constant(f"{name}/int8", arrange(plan.codes.astype(np.int8)), grid)


def _bias(ctx: Lowering, node: NodeView, index: int, dtype: str) -> int:
    """The bias (LiteRT's kernels want one: a zero one where the model has none), float32 or the planned int32."""
    absent = index >= len(node.inputs) or not node.inputs[index]
    name = f"{node.name}/zero_bias" if absent else node.inputs[index]
    if dtype == FLOAT:
        if absent:
            output_shape = ctx.shape(node.outputs[0])
            channels = output_shape[1] if node.op_type == "Conv" else output_shape[-1]
            return ctx.graph.constant(name, np.zeros(channels, dtype=np.float32))
        return ctx.graph.constant(f"{name}/float", ctx.constant(name).astype(np.float32).reshape(-1))
    plan = ctx.constant_plan(node, index)
    if plan is None:
        raise ctx.unsupported(node, f"bias {name!r} has no int32 plan")
    return ctx.graph.constant(name if absent else f"{name}/int32", plan.codes.astype(np.int32).reshape(-1),
                              plan.grid)


def _operand(ctx: Lowering, node: NodeView, index: int, dtype: str, shape: tuple[int, ...], layout: str) -> int:
    """A constant operand of an elementwise op, broadcast to ``shape``'s rank and laid out like the data."""
    name = node.inputs[index]
    values = ctx.constant(name)
    plan = ctx.constant_plan(node, index) if dtype == INT8 else None
    if dtype == INT8 and plan is None:
        raise ctx.unsupported(node, f"constant {name!r} has no int8 plan")
    data = plan.codes.astype(np.int8) if plan is not None else values.astype(np.float32)
    data = data.reshape((1,) * (len(shape) - data.ndim) + data.shape)
    if layout == "nhwc":
        data = np.transpose(data, TO_NHWC)
    return ctx.graph.constant(f"{name}/{node.name}", data, plan.grid if plan is not None else None)


# ---- fully connected, matmul, conv ------------------------------------------------------------------------------
def _fully_connected(ctx: Lowering, node: NodeView, dtype: str, transposed: bool) -> None:
    x, y = node.inputs[0], node.outputs[0]
    arrange = (lambda w: w) if transposed else (lambda w: np.ascontiguousarray(w.T))
    weight = _weight(ctx, node, 1, dtype, arrange, axis=0)
    bias = _bias(ctx, node, 2, dtype)
    inputs = [ctx.get(x, dtype, node=node.name), weight, bias]
    ctx.graph.op("FULLY_CONNECTED", inputs, [ctx.output(node, y, dtype)], node.name, keepNumDims=ctx.rank(x) > 2)


def lower_linear(ctx: Lowering, node: NodeView, dtype: str) -> None:
    _fully_connected(ctx, node, dtype, transposed=False)


def lower_gemm(ctx: Lowering, node: NodeView, dtype: str) -> None:
    a = node.attributes
    if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or ctx.rank(node.inputs[0]) != 2:
        raise ctx.unsupported(node, "Gemm with transA, alpha or beta != 1 has no FULLY_CONNECTED form")
    if ctx.constant(node.inputs[1]) is None:
        raise ctx.unsupported(node, "Gemm needs a constant weight")
    _fully_connected(ctx, node, dtype, transposed=bool(a.get("transB", 0)))


def lower_matmul(ctx: Lowering, node: NodeView, dtype: str) -> None:
    a, b = node.inputs
    if ctx.constant(b) is not None and ctx.constant(b).ndim == 2:
        _fully_connected(ctx, node, dtype, transposed=False)
        return
    inputs = [ctx.get(a, dtype, node=node.name), ctx.get(b, dtype, node=node.name)]
    ctx.graph.op("BATCH_MATMUL", inputs, [ctx.output(node, node.outputs[0], dtype)], node.name)


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _padding(ctx: Lowering, node: NodeView, spatial: tuple[int, int], kernel, strides, dilations):  # type: ignore[no-untyped-def]
    """SAME, VALID, or explicit pads [[top, bottom], [left, right]] for a separate PAD op."""
    if node.attributes.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID", "SAME_UPPER"):
        raise ctx.unsupported(node, f"auto_pad {node.attributes['auto_pad']}")
    if node.attributes.get("auto_pad") == "SAME_UPPER":
        return SAME, None
    pads = list(node.attributes.get("pads", [0, 0, 0, 0]))
    explicit = [(pads[0], pads[2]), (pads[1], pads[3])]
    if not any(pads):
        return VALID, None
    if explicit == [_same_pads(spatial[i], kernel[i], strides[i], dilations[i]) for i in range(2)]:
        return SAME, None
    return VALID, explicit


def _padded(ctx: Lowering, node: NodeView, source: int, explicit, lowest: bool = False) -> int:  # type: ignore[no-untyped-def]
    """``source`` (NHWC) padded by ``explicit``: with real 0 (PAD fills int8 with the zero point) or, for max
    pooling, with the lowest value of its type (PADV2)."""
    if explicit is None:
        return source
    tensor = ctx.graph.tensors[source]
    (top, bottom), (left, right) = explicit
    shape = (tensor.shape[0], tensor.shape[1] + top + bottom, tensor.shape[2] + left + right, tensor.shape[3])
    padded = ctx.graph.tensor(f"{tensor.name}/padded", shape, tensor.dtype, tensor.quant)
    pads = ctx.int32_constant(f"{node.name}/pads", [[0, 0], [top, bottom], [left, right], [0, 0]])
    if not lowest:
        ctx.graph.op("PAD", [source, pads], [padded], node.name)
        return padded
    if not ctx.runs("PADV2"):
        raise ctx.unsupported(node, "explicit max-pooling pads need PADV2")
    if tensor.dtype == FLOAT:
        value = ctx.graph.constant(f"{node.name}/pad_value", np.asarray([np.finfo(np.float32).min], np.float32))
    else:
        plan = ctx.constant_plan(node, -1, "pad_fill")
        if plan is None:
            raise ctx.unsupported(node, "int8 explicit max-pooling pads with no planned fill code")
        value = ctx.graph.constant(f"{node.name}/pad_value", plan.codes, plan.grid)
    ctx.graph.op("PADV2", [source, pads, value], [padded], node.name)
    return padded


def lower_conv(ctx: Lowering, node: NodeView, dtype: str) -> None:
    x, y = node.inputs[0], node.outputs[0]
    weight = ctx.constant(node.inputs[1])
    if weight is None or weight.ndim != 4:
        raise ctx.unsupported(node, "only 2-D convolutions with constant weights")
    channels, group = ctx.shape(x)[1], int(node.attributes.get("group", 1))
    depthwise = group > 1 and group == channels and weight.shape[1] == 1
    if group != 1 and not depthwise:
        raise ctx.unsupported(node, f"grouped convolution (group={group}) that is not depthwise")
    kernel = weight.shape[2:]
    strides = tuple(node.attributes.get("strides", [1, 1]))
    dilations = tuple(node.attributes.get("dilations", [1, 1]))
    padding, explicit = _padding(ctx, node, ctx.shape(x)[2:], kernel, strides, dilations)
    source = _padded(ctx, node, ctx.get(x, dtype, "nhwc", node.name), explicit)
    if depthwise:
        w = _weight(ctx, node, 1, dtype, lambda a: np.ascontiguousarray(np.transpose(a, (1, 2, 3, 0))), axis=3)
    else:
        w = _weight(ctx, node, 1, dtype, lambda a: np.ascontiguousarray(np.transpose(a, (0, 2, 3, 1))), axis=0)
    bias = _bias(ctx, node, 2, dtype)
    options = dict(padding=padding, strideH=strides[0], strideW=strides[1], dilationHFactor=dilations[0],
                   dilationWFactor=dilations[1])
    out = ctx.output(node, y, dtype, "nhwc")
    if depthwise:
        ctx.graph.op("DEPTHWISE_CONV_2D", [source, w, bias], [out], node.name,
                     depthMultiplier=weight.shape[0] // channels, **options)
    else:
        ctx.graph.op("CONV_2D", [source, w, bias], [out], node.name, **options)


# ---- pooling and reductions -------------------------------------------------------------------------------------
def _ceil_pads(node: NodeView, spatial: tuple[int, ...], kernel, strides) -> list[int]:  # type: ignore[no-untyped-def]
    """ONNX pads with ceil_mode's extra end padding made explicit (the last window starts inside the input)."""
    pads = list(node.attributes.get("pads", [0] * 4))
    if not node.attributes.get("ceil_mode", 0):
        return pads
    for axis in range(2):
        padded = spatial[axis] + pads[axis] + pads[axis + 2]
        out = math.ceil((padded - kernel[axis]) / strides[axis]) + 1
        if (out - 1) * strides[axis] >= spatial[axis] + pads[axis]:
            out -= 1
        pads[axis + 2] += max((out - 1) * strides[axis] + kernel[axis] - padded, 0)
    return pads


def _lower_pool(op: str) -> Lowerer:
    def lower(ctx: Lowering, node: NodeView, dtype: str) -> None:
        a = node.attributes
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            raise ctx.unsupported(node, "dilated pooling")
        kernel, strides = tuple(a["kernel_shape"]), tuple(a.get("strides", [1, 1]))
        spatial = ctx.shape(node.inputs[0])[2:]
        pooled = NodeView(node.name, node.op_type, node.domain, node.inputs, node.outputs,
                          {**a, "pads": _ceil_pads(node, spatial, kernel, strides)})
        padding, explicit = _padding(ctx, pooled, spatial, kernel, strides, (1, 1))
        if op == "AVERAGE_POOL_2D" and (explicit is not None or (padding == SAME and a.get("count_include_pad", 0))):
            raise ctx.unsupported(node, "average pooling pads that are neither SAME (excluding pads) nor VALID")
        source = ctx.get(node.inputs[0], dtype, "nhwc", node.name)
        if explicit is not None:  # max pooling: pad with the lowest value, which no window's maximum can be
            source = _padded(ctx, node, source, explicit, lowest=True)
        out = ctx.output(node, node.outputs[0], dtype, "nhwc")
        ctx.graph.op(op, [source], [out], node.name, padding=padding, strideH=strides[0], strideW=strides[1],
                     filterHeight=kernel[0], filterWidth=kernel[1])

    return lower


def lower_global_average_pool(ctx: Lowering, node: NodeView, dtype: str) -> None:
    source = ctx.get(node.inputs[0], dtype, "nhwc", node.name)
    out = ctx.output(node, node.outputs[0], dtype, "nhwc")
    ctx.graph.op("MEAN", [source, ctx.int32_constant(f"{node.name}/axes", [1, 2])], [out], node.name, keepDims=True)


def _axes(ctx: Lowering, node: NodeView) -> list[int]:
    if "axes" in node.attributes:
        axes = list(node.attributes["axes"])
    elif len(node.inputs) > 1 and node.inputs[1]:
        axes = [int(a) for a in ctx.constant(node.inputs[1]).reshape(-1)]
    else:
        axes = list(range(ctx.rank(node.inputs[0])))
    return sorted(a % ctx.rank(node.inputs[0]) for a in axes)


def lower_reduce_mean(ctx: Lowering, node: NodeView, dtype: str) -> None:
    keep = bool(node.attributes.get("keepdims", 1))
    axes = _axes(ctx, node)
    layout = "nhwc" if keep and ctx.rank(node.inputs[0]) == 4 and "nchw" not in ctx.layouts(node.inputs[0]) else "nchw"
    if layout == "nhwc":
        axes = sorted(TO_NHWC.index(a) for a in axes)
    source = ctx.get(node.inputs[0], dtype, layout, node.name)
    out = ctx.output(node, node.outputs[0], dtype, layout)
    ctx.graph.op("MEAN", [source, ctx.int32_constant(f"{node.name}/axes", axes)], [out], node.name, keepDims=keep)


# ---- elementwise --------------------------------------------------------------------------------------------------
def _layout_for(ctx: Lowering, names: list[str]) -> str:
    """nhwc when a rank-4 input exists only channels-last (keep it there), else nchw."""
    for name in names:
        if ctx.constant(name) is None and ctx.rank(name) == 4 and ctx.layouts(name) == {"nhwc"}:
            return "nhwc"
    return "nchw"


def _lower_binary(op: str) -> Lowerer:
    def lower(ctx: Lowering, node: NodeView, dtype: str) -> None:
        y = node.outputs[0]
        layout = _layout_for(ctx, list(node.inputs))
        shape = ctx.shape(y)
        inputs = []
        for index, name in enumerate(node.inputs):
            if ctx.constant(name) is not None:
                inputs.append(_operand(ctx, node, index, dtype, shape, layout))
            else:
                inputs.append(ctx.get(name, dtype, layout, node.name))
        ctx.graph.op(op, inputs, [ctx.output(node, y, dtype, layout)], node.name)

    return lower


def lower_div(ctx: Lowering, node: NodeView, dtype: str) -> None:
    """Div; by a constant in int8: MUL by the planned int8 reciprocal."""
    divisor = ctx.constant(node.inputs[1])
    if dtype == FLOAT or divisor is None:
        _lower_binary("DIV")(ctx, node, FLOAT if divisor is None else dtype)
        return
    plan = ctx.constant_plan(node, 1, "reciprocal")
    if plan is None:
        raise ctx.unsupported(node, f"int8 Div by {node.inputs[1]!r}, whose reciprocal has no int8 plan")
    layout = _layout_for(ctx, [node.inputs[0]])
    data = plan.codes.astype(np.int8)
    data = data.reshape((1,) * (ctx.rank(node.outputs[0]) - data.ndim) + data.shape)
    data = np.transpose(data, TO_NHWC) if layout == "nhwc" else data
    operand = ctx.graph.constant(f"{node.inputs[1]}/reciprocal", data, plan.grid)
    source = ctx.get(node.inputs[0], INT8, layout, node.name)
    ctx.graph.op("MUL", [source, operand], [ctx.output(node, node.outputs[0], INT8, layout)], node.name)


def lower_concat(ctx: Lowering, node: NodeView, dtype: str) -> None:
    rank = ctx.rank(node.outputs[0])
    axis = int(node.attributes.get("axis", 0)) % rank
    layout = _layout_for(ctx, list(node.inputs))
    if layout == "nhwc":
        axis = TO_NHWC.index(axis)
    inputs = [ctx.get(name, dtype, layout, node.name) for name in node.inputs]
    out = ctx.output(node, node.outputs[0], dtype, layout)
    if dtype == INT8:  # XNNPACK and TFLite Micro take int8 CONCATENATION only on one shared grid
        inputs = [_requantized(ctx, node, source, ctx.graph.tensors[out].quant) for source in inputs]
    ctx.graph.op("CONCATENATION", inputs, [out], node.name, axis=axis)


def _requantized(ctx: Lowering, node: NodeView, source: int, grid) -> int:  # type: ignore[no-untyped-def]
    """``source`` moved onto ``grid`` by an int8 -> int8 QUANTIZE (itself when it is already there)."""
    tensor = ctx.graph.tensors[source]
    if tensor.quant == grid:
        return source
    moved = ctx.graph.like(source, f"{tensor.name}/requantized", quant=grid)
    ctx.graph.op("QUANTIZE", [source], [moved], node.name)
    return moved


# ---- data movement ------------------------------------------------------------------------------------------------
def lower_reshape(ctx: Lowering, node: NodeView, dtype: str) -> None:
    x, y = node.inputs[0], node.outputs[0]
    shape = ctx.shape(x)
    spatial_ones = len(shape) == 4 and shape[2] == shape[3] == 1 and ctx.layouts(x) == {"nhwc"}
    source = ctx.get(x, dtype, "nhwc" if spatial_ones else "nchw", node.name)  # NHWC [N,1,1,C] reads like NCHW
    new_shape = ctx.int32_constant(f"{node.name}/shape", ctx.shape(y))
    ctx.graph.op("RESHAPE", [source, new_shape], [ctx.output(node, y, dtype)], node.name)


def lower_transpose(ctx: Lowering, node: NodeView, dtype: str) -> None:
    rank = ctx.rank(node.inputs[0])
    perm = node.attributes.get("perm", list(reversed(range(rank))))
    source = ctx.get(node.inputs[0], dtype, "nchw", node.name)
    ctx.graph.op("TRANSPOSE", [source, ctx.int32_constant(f"{node.name}/perm", perm)],
                 [ctx.output(node, node.outputs[0], dtype)], node.name)


def lower_softmax(ctx: Lowering, node: NodeView, dtype: str) -> None:
    rank = ctx.rank(node.inputs[0])
    axis = int(node.attributes.get("axis", -1)) % rank
    layout = "nhwc" if rank == 4 and axis == 1 and ctx.layouts(node.inputs[0]) == {"nhwc"} else "nchw"
    if layout == "nchw" and axis != rank - 1:
        raise ctx.unsupported(node, f"softmax over axis {axis} (TFLite's SOFTMAX is over the last axis)")
    source = ctx.get(node.inputs[0], dtype, layout, node.name)
    ctx.graph.op("SOFTMAX", [source], [ctx.output(node, node.outputs[0], dtype, layout)], node.name, beta=1.0)


def lower_gather(ctx: Lowering, node: NodeView, dtype: str) -> None:
    data, indices = node.inputs
    if ctx.constant(data) is not None:
        plan = ctx.constant_plan(node, 0) if dtype == INT8 else None
        values = plan.codes.astype(np.int8) if plan is not None else ctx.constant(data).astype(np.float32)
        source = ctx.graph.constant(f"{data}/{dtype}", values, plan.grid if plan is not None else None)
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


FLOAT_UNARY = {"Sin": "SIN", "Cos": "COS", "Exp": "EXP", "Log": "LOG", "Sqrt": "SQRT", "Abs": "ABS", "Neg": "NEG",
               "Floor": "FLOOR", "Ceil": "CEIL", "Round": "ROUND", "Sign": "SIGN"}


def lower_float_unary(ctx: Lowering, node: NodeView, dtype: str) -> None:
    """Float-only elementwise ops (a float island: DEQUANTIZE before, QUANTIZE after where neighbours are int8)."""
    layout = _layout_for(ctx, [node.inputs[0]])
    source = ctx.get(node.inputs[0], FLOAT, layout, node.name)
    ctx.graph.op(FLOAT_UNARY[node.op_type], [source], [ctx.output(node, node.outputs[0], FLOAT, layout)], node.name)


def lower_identity(ctx: Lowering, node: NodeView, dtype: str) -> None:
    ctx.aliases[node.outputs[0]] = node.inputs[0]


# ---- Resize (nearest), PRelu ----------------------------------------------------------------------------------
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


def lower_prelu(ctx: Lowering, node: NodeView, dtype: str) -> None:
    """PRelu with a constant slope -> PRELU (int8: its slope an int8 constant on its own grid)."""
    x, y = node.inputs[0], node.outputs[0]
    if ctx.constant(node.inputs[1]) is None:
        raise ctx.unsupported(node, "PRelu with a slope that is not a constant")
    layout = _layout_for(ctx, [x])
    slope = _operand(ctx, node, 1, dtype, ctx.shape(y), layout)
    source = ctx.get(x, dtype, layout, node.name)
    ctx.graph.op("PRELU", [source, slope], [ctx.output(node, y, dtype, layout)], node.name)


# ---- Relu / Clip ---------------------------------------------------------------------------------------------------
def _clip_bounds(ctx: Lowering, node: NodeView) -> tuple[float | None, float | None]:
    if node.op_type == "Relu":
        return 0.0, None
    low = ctx.constant(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else None
    high = ctx.constant(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    return (None if low is None else float(low)), (None if high is None else float(high))


def lower_relu_clip(ctx: Lowering, node: NodeView, dtype: str) -> None:
    x, y = node.inputs[0], node.outputs[0]
    if dtype == INT8 and ctx.grid(x) == ctx.grid(y):
        ctx.aliases[y] = x  # folded: the producer's grid already clamps to the Relu/Clip range
        return
    low, high = _clip_bounds(ctx, node)
    layout = _layout_for(ctx, [x])
    source = ctx.get(x, dtype, layout, node.name)
    out = ctx.output(node, y, dtype, layout)
    if (low, high) in ((0.0, None), (0.0, 6.0)):
        ctx.graph.op("RELU" if high is None else "RELU6", [source], [out], node.name)
        return
    if dtype == INT8:
        raise ctx.unsupported(node, f"int8 Clip to [{low}, {high}] that is not folded")
    current = source
    for op, bound in (("MAXIMUM", low), ("MINIMUM", high)):
        if bound is None:
            continue
        target = out if op == "MINIMUM" or high is None else ctx.graph.like(source, f"{y}/{op.lower()}")
        ctx.graph.op(op, [current, ctx.graph.constant(f"{node.name}/{op.lower()}", np.float32(bound))], [target],
                     node.name)
        current = target


# ---- LayerNorm: float, between DEQUANTIZE and QUANTIZE (TFLite has no int8 layer norm) ---------------------------
def _layer_norm_epsilon(ctx: Lowering, node: NodeView) -> tuple[str, float]:
    """How the variance is kept off zero: ("ADD" | "MAXIMUM", epsilon), from the op or the fused body (whose
    reductions the fusion checked run over the last axis)."""
    if node.domain == "":
        if int(node.attributes.get("axis", -1)) % ctx.rank(node.inputs[0]) != ctx.rank(node.inputs[0]) - 1:
            raise ctx.unsupported(node, "LayerNormalization over more than the last axis")
        return "ADD", float(node.attributes.get("epsilon", 1e-5))
    body = ctx.view.body_of(node)
    for inner in body.nodes if body is not None else ():
        if inner.op_type in ("Add", "Max") and body.values[inner.inputs[1]].constant is not None:
            constant = body.values[inner.inputs[1]].constant
            if constant.size == 1 and 0.0 < float(constant.reshape(-1)[0]) < 0.1:
                return ("ADD" if inner.op_type == "Add" else "MAXIMUM"), float(constant.reshape(-1)[0])
    raise ctx.unsupported(node, "cannot find the layer norm's epsilon")


def lower_layer_norm(ctx: Lowering, node: NodeView, dtype: str) -> None:
    x, y = node.inputs[0], node.outputs[0]
    shift, epsilon = _layer_norm_epsilon(ctx, node)
    g, name = ctx.graph, node.name
    source = ctx.get(x, FLOAT, "nchw", name)
    axes = ctx.int32_constant(f"{name}/axes", [ctx.rank(x) - 1])
    reduced = tuple(ctx.shape(x)[:-1]) + (1,)
    mean, variance = (g.tensor(f"{name}/{label}", reduced, FLOAT) for label in ("mean", "variance"))
    centred, square, scaled, normalised = (g.like(source, f"{name}/{label}")
                                           for label in ("centred", "square", "scaled", "normalised"))
    inverse, shifted = (g.tensor(f"{name}/{label}", reduced, FLOAT) for label in ("inverse_std", "variance_eps"))
    g.op("MEAN", [source, axes], [mean], name, keepDims=True)
    g.op("SUB", [source, mean], [centred], name)
    g.op("MUL", [centred, centred], [square], name)
    g.op("MEAN", [square, axes], [variance], name, keepDims=True)
    g.op(shift, [variance, g.constant(f"{name}/epsilon", np.float32(epsilon))], [shifted], name)
    g.op("RSQRT", [shifted], [inverse], name)
    g.op("MUL", [centred, inverse], [normalised], name)
    scale = g.constant(f"{node.inputs[1]}/float", ctx.constant(node.inputs[1]).astype(np.float32))
    g.op("MUL", [normalised, scale], [scaled], name)
    bias_name = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
    out = ctx.output(node, y, FLOAT)
    if bias_name is None:
        g.op("MUL", [normalised, scale], [out], name)
        return
    g.op("ADD", [scaled, g.constant(f"{bias_name}/float", ctx.constant(bias_name).astype(np.float32))], [out], name)


# ---- activations -------------------------------------------------------------------------------------------------
FLOAT_ACTIVATIONS: dict[str, tuple[str, dict]] = {
    "tanh": ("TANH", {}),
    "sigmoid": ("LOGISTIC", {}),
    "gelu": ("GELU", {"approximate": False}),
    "gelu_tanh": ("GELU", {"approximate": True}),
    "hardswish": ("HARD_SWISH", {}),
    "leaky_relu": ("LEAKY_RELU", {}),
}


def lower_activation(ctx: Lowering, node: NodeView, dtype: str) -> None:
    """int8: the planned form (the exact builtin, or the GATHER table); float: the float op(s)."""
    x, y = node.inputs[0], node.outputs[0]
    layout = _layout_for(ctx, [x])
    if dtype == FLOAT:
        _float_activation(ctx, node, activation_of(node, ctx.view), layout)
        return
    plan = ctx.activation_plan(node)
    form = plan.forms.get("tflite")
    if form is None or form.kind not in (BUILTIN, TABLE):
        raise ctx.unsupported(node, f"the plan (target {ctx.plan.target}) holds no int8 TFLite form for it")
    source = ctx.get(x, INT8, layout, node.name)
    out = ctx.output(node, y, INT8, layout)
    if form.kind == BUILTIN:
        ctx.graph.op(form.op, [source], [out], node.name, **dict(form.options))
        ctx.builtin_ops.append(node.name)
        return
    _table_lookup(ctx, node, source, out, plan.table)


def _table_lookup(ctx: Lowering, node: NodeView, source: int, out: int, table) -> None:  # type: ignore[no-untyped-def]
    """CAST(int8 -> int32) -> ADD(+128) -> GATHER(256-entry int8 table): exact on LiteRT and TFLite Micro."""
    g = ctx.graph
    wide = g.like(source, f"{node.name}/codes_int32", "int32")
    index = g.like(source, f"{node.name}/table_index", "int32")
    g.op("CAST", [source], [wide], node.name, table=True)
    offset = g.constant(f"{node.name}/offset", np.int32(-table.in_q.qmin))  # table index = code - qmin
    g.op("ADD", [wide, offset], [index], node.name, table=True)
    values = g.constant(f"{node.name}/table", table.values.astype(np.int8), table.out_q)
    g.op("GATHER", [values, index], [out], node.name, table=True, axis=0)
    ctx.table_ops.append(node.name)


# float32 TFLite form of each op a fused elementwise chain may hold (a scalar constant operand broadcasts)
FLOAT_CHAIN_OPS: dict[str, str] = {
    "Add": "ADD", "Sub": "SUB", "Mul": "MUL", "Div": "DIV", "Pow": "POW", "Max": "MAXIMUM", "Min": "MINIMUM",
    "Relu": "RELU", "Sigmoid": "LOGISTIC", "Tanh": "TANH", "HardSwish": "HARD_SWISH", "Elu": "ELU",  # alpha 1
    **FLOAT_UNARY,
}


def _float_chain(ctx: Lowering, node: NodeView, layout: str) -> None:
    """A fused elementwise chain kept float: its original ops, one TFLite builtin each (Clip as MAXIMUM/MINIMUM)."""
    body = ctx.view.body_of(node)
    g = ctx.graph
    source = ctx.get(node.inputs[0], FLOAT, layout, node.name)
    tensors = {body.inputs[0]: source}
    for index, inner in enumerate(body.nodes):
        if inner.op_type not in FLOAT_CHAIN_OPS and inner.op_type != "Clip":
            raise ctx.unsupported(node, f"float {inner.op_type} (inside the fused chain) has no TFLite builtin")
        if inner.op_type == "Elu" and float(inner.attributes.get("alpha", 1.0)) != 1.0:
            raise ctx.unsupported(node, "float Elu with alpha != 1 (inside the fused chain): TFLite's ELU has none")
        inputs = [None if not n else tensors[n] if n in tensors else g.constant(
            f"{node.name}/c{index}_{position}", body.values[n].constant.astype(np.float32).reshape(()))
            for position, n in enumerate(inner.inputs)]
        last = inner.outputs[0] == body.outputs[0]
        out = ctx.output(node, node.outputs[0], FLOAT, layout) if last else g.like(source, f"{node.name}/{index}")
        if inner.op_type == "Clip":
            bounds = [(op, b) for op, b in zip(("MAXIMUM", "MINIMUM"), inputs[1:3], strict=False) if b is not None]
            current = inputs[0]
            for step, (op, bound) in enumerate(bounds):
                target = out if step == len(bounds) - 1 else g.like(source, f"{node.name}/{index}_{op.lower()}")
                g.op(op, [current, bound], [target], node.name)
                current = target
            if not bounds:  # Clip without bounds copies its input
                g.op("RESHAPE", [current, ctx.int32_constant(f"{node.name}/{index}_shape", g.tensors[source].shape)],
                     [out], node.name)
        else:
            if not ctx.runs(FLOAT_CHAIN_OPS[inner.op_type]):
                raise ctx.unsupported(node, f"float {inner.op_type} needs {FLOAT_CHAIN_OPS[inner.op_type]}")
            operands = [i for i in inputs if i is not None]
            while len(operands) > 2:  # a variadic Max/Min as a chain of binary MAXIMUM/MINIMUM
                partial = g.like(source, f"{node.name}/{index}_{len(operands)}")
                g.op(FLOAT_CHAIN_OPS[inner.op_type], operands[:2], [partial], node.name)
                operands = [partial, *operands[2:]]
            g.op(FLOAT_CHAIN_OPS[inner.op_type], operands, [out], node.name)
        tensors[inner.outputs[0]] = out


def _float_activation(ctx: Lowering, node: NodeView, act, layout: str) -> None:  # type: ignore[no-untyped-def]
    if is_elementwise_call(node):
        _float_chain(ctx, node, layout)
        return
    x, y = node.inputs[0], node.outputs[0]
    source = ctx.get(x, FLOAT, layout, node.name)
    out = ctx.output(node, y, FLOAT, layout)
    if act.name == "silu":
        gate = ctx.graph.like(source, f"{node.name}/sigmoid")
        ctx.graph.op("LOGISTIC", [source], [gate], node.name)
        ctx.graph.op("MUL", [source, gate], [out], node.name)
        return
    if act.name == "hardsigmoid":  # clip(alpha x + beta, 0, 1)
        current = source
        for op, value in (("MUL", act.params["alpha"]), ("ADD", act.params["beta"]), ("MAXIMUM", 0.0),
                          ("MINIMUM", 1.0)):
            target = out if op == "MINIMUM" else ctx.graph.like(source, f"{node.name}/{op.lower()}")
            ctx.graph.op(op, [current, ctx.graph.constant(f"{node.name}/{op.lower()}_c", np.float32(value))],
                         [target], node.name)
            current = target
        return
    if act.name not in FLOAT_ACTIVATIONS:
        raise ctx.unsupported(node, f"float {act.name} has no TFLite builtin")
    op, options = FLOAT_ACTIVATIONS[act.name]
    if not ctx.runs(op):
        raise ctx.unsupported(node, f"float {act.name} needs {op}, which the target has no kernel for")
    if act.name == "leaky_relu":
        options = {"alpha": float(act.params["alpha"])}
    ctx.graph.op(op, [source], [out], node.name, **options)


LOWERINGS: dict[tuple[str, str], Lowerer] = {
    (EDGEACT_DOMAIN, "Linear"): lower_linear,
    ("", "Gemm"): lower_gemm,
    ("", "MatMul"): lower_matmul,
    ("", "Conv"): lower_conv,
    ("", "MaxPool"): _lower_pool("MAX_POOL_2D"),
    ("", "AveragePool"): _lower_pool("AVERAGE_POOL_2D"),
    ("", "GlobalAveragePool"): lower_global_average_pool,
    ("", "ReduceMean"): lower_reduce_mean,
    ("", "Add"): _lower_binary("ADD"),
    ("", "Sub"): _lower_binary("SUB"),
    ("", "Mul"): _lower_binary("MUL"),
    ("", "Div"): lower_div,
    ("", "Concat"): lower_concat,
    **{("", op): lower_reshape for op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze")},
    ("", "Transpose"): lower_transpose,
    ("", "Softmax"): lower_softmax,
    (EDGEACT_DOMAIN, "Softmax"): lower_softmax,
    ("", "Gather"): lower_gather,
    ("", "Slice"): lower_slice,
    ("", "Split"): lower_split,
    ("", "Identity"): lower_identity,
    ("", "Resize"): lower_resize,
    ("", "PRelu"): lower_prelu,
    **{("", op): lower_float_unary for op in FLOAT_UNARY},
    ("", "Relu"): lower_relu_clip,
    ("", "Clip"): lower_relu_clip,
    ("", "LayerNormalization"): lower_layer_norm,
    (EDGEACT_DOMAIN, "LayerNorm"): lower_layer_norm,
}


def lowering_for(node: NodeView, view: GraphView | None = None) -> Lowerer | None:
    if activation_of(node, view) is not None:
        return lower_activation
    return LOWERINGS.get((node.domain, node.op_type))


def _int8_ready(ctx: Lowering, node: NodeView) -> bool:
    if ctx.plan is None or not all(ctx.grid(o) is not None for o in node.outputs if o):
        return False
    for name in node.inputs:
        value = ctx.view.values.get(ctx.resolve(name)) if name else None
        if value is not None and value.is_float and value.constant is None and ctx.grid(name) is None:
            return False
    return True


def lower_graph(ctx: Lowering) -> Lowering:
    """Lower every node of ``ctx.view`` in order; graph inputs and outputs stay float32/int, in ONNX order."""
    quantized = {name for name, _ in ctx.plan.quantized} if ctx.plan is not None else set()
    for name in ctx.view.inputs:
        value = ctx.view.values[name]
        dtype = FLOAT if value.is_float else ("int32" if value.dtype == "int64" else value.dtype)  # TFLM: no int64
        ctx.graph.inputs.append(ctx.put(name, ctx.graph.tensor(name, ctx.shape(name), dtype), dtype))
    for node in ctx.view.nodes:
        lowering = lowering_for(node, ctx.view)
        if lowering is None:
            raise UnsupportedOpError(
                f"node {node.name!r}: op {node.domain + '::' if node.domain else ''}{node.op_type} has no TFLite "
                f"lowering (target {ctx.target.name}); keep it out of the model or export ONNX"
            )
        dtype = INT8 if node.name in quantized and _int8_ready(ctx, node) else FLOAT
        lowering(ctx, node, dtype)
    for name in ctx.view.outputs:
        index = ctx.get(name, FLOAT, "nchw", "outputs")
        ctx.graph.tensors[index].name = _free_name(ctx, name, index)
        ctx.graph.outputs.append(index)
    return ctx


def _free_name(ctx: Lowering, name: str, index: int) -> str:
    """Graph outputs carry the ONNX output names (another tensor holding the name is renamed)."""
    for other, tensor in enumerate(ctx.graph.tensors):
        if other != index and tensor.name == name:
            tensor.name = f"{name}/inner"
    return name

