"""Pooling and reductions: MaxPool, AveragePool -> MAX_POOL_2D / AVERAGE_POOL_2D (explicit max pooling pads:
PADV2 with the planned lowest code), GlobalAveragePool and ReduceMean -> MEAN."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from edgeact.graph.view import NodeView
from edgeact.numerics.requantize import multiply_by_quantized_multiplier, quantize_multiplier
from edgeact.ops._kernel import float_requant, is_float, is_int16, out_dtype, saturate, scale_zp
from edgeact.ops._lowering import SAME, pad_input, padding_of
from edgeact.ops.conv import windows
from edgeact.ops.layout import TO_NHWC
from edgeact.ops.spec import COMPUTE, SHARED, Builtin, OpQuantizer, OpSpec, Role

if TYPE_CHECKING:
    from edgeact.exporters.tflite.lower import Lowering
    from edgeact.ops.spec import Lowerer


# ---- TFLite lowering ----------------------------------------------------------------------------------------------
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
        padding, explicit = padding_of(ctx, pooled, spatial, kernel, strides, (1, 1))
        if op == "AVERAGE_POOL_2D" and (explicit is not None or (padding == SAME and a.get("count_include_pad", 0))):
            raise ctx.unsupported(node, "average pooling pads that are neither SAME (excluding pads) nor VALID")
        source = ctx.get(node.inputs[0], dtype, "nhwc", node.name)
        if explicit is not None:  # max pooling: pad with the lowest value, which no window's maximum can be
            source = pad_input(ctx, node, source, explicit, lowest=True)
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


# ---- emulator kernels ---------------------------------------------------------------------------------------------
def pool(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    x = inputs[0]
    kh, kw = op.options["filterHeight"], op.options["filterWidth"]
    floating = is_float(graph, op)
    patches, inside = windows(x.astype(np.float64 if floating else np.int64), kh, kw, op.options, 0)
    mask = inside[None, :, :, :, None]
    if op.op == "MAX_POOL_2D":
        return [np.where(mask, patches, -np.inf if floating else -(2**40)).max(axis=3).astype(x.dtype)]
    total, count = np.where(mask, patches, 0).sum(axis=3), mask.sum(axis=3)
    if floating:
        return [(total / count).astype(np.float32)]
    half = count // 2
    rounded = np.where(total > 0, (total + half) // count, -((-total + half) // count))  # C++ truncation
    return [saturate(rounded, out_dtype(graph, op))]


def mean(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    x, axes = inputs
    keep = op.options.get("keepDims", False)
    axes = tuple(int(a) % x.ndim for a in np.asarray(axes).reshape(-1))
    if is_float(graph, op):
        return [x.astype(np.float32).mean(axis=axes, keepdims=keep).astype(np.float32)]
    (si, zi), (so, zo) = scale_zp(graph, op.inputs[0]), scale_zp(graph, op.outputs[0])
    count = int(np.prod([x.shape[a] for a in axes]))
    total = x.astype(np.int64).sum(axis=axes, keepdims=keep) - zi * count
    # TFLite's reference QuantizedMeanOrSum: the 1/count folds into the Q31 multiplier of s_in/s_out.
    multiplier, shift = quantize_multiplier(float(np.float32(si)) / float(np.float32(so)))
    extra = min(count.bit_length() - 1, 32, 31 + shift)
    multiplier, shift = (multiplier << extra) // count, shift - extra
    scaled = multiply_by_quantized_multiplier(total, multiplier, shift, rounding)
    return [saturate(scaled + zo, out_dtype(graph, op))]


# ---- the specs ----------------------------------------------------------------------------------------------------
POOL_OPTIONS = {"padding": 1, "strideW": 1, "strideH": 1, "filterWidth": 1, "filterHeight": 1,
                "fusedActivationFunction": 0}
def xnnpack_mean(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    """XNNPACK's qs8 mean: the zero-point-corrected sum times s_in / (s_out * count) in float32, ties to even (int16:
    not delegated, LiteRT's reference)."""
    if is_float(graph, op) or is_int16(graph, op):
        return mean(graph, op, inputs, rounding)
    x, axes = inputs
    axes = tuple(int(a) % x.ndim for a in np.asarray(axes).reshape(-1))
    (si, zi), (so, zo) = scale_zp(graph, op.inputs[0]), scale_zp(graph, op.outputs[0])
    count = int(np.prod([x.shape[a] for a in axes]))
    total = x.astype(np.int64).sum(axis=axes, keepdims=op.options.get("keepDims", False)) - zi * count
    scale = np.float32(np.float32(si) / (np.float32(so) * np.float32(count)))
    return [float_requant(total, scale, zo)]


BUILTINS = (
    Builtin("MAX_POOL_2D", pool, ("Pool2DOptions", POOL_OPTIONS)),
    Builtin("AVERAGE_POOL_2D", pool, ("Pool2DOptions", POOL_OPTIONS)),
    Builtin("MEAN", mean, ("ReducerOptions", {"keepDims": False}), arithmetic={"xnnpack": xnnpack_mean}),
)

SPECS = (
    OpSpec("MaxPool", OpQuantizer(Role.SHARED, pad_fill=True), _lower_pool("MAX_POOL_2D"), ("MAX_POOL_2D", "PADV2")),
    # (TFLite's int8 AVERAGE_POOL_2D needs equal grids)
    OpSpec("AveragePool", SHARED, _lower_pool("AVERAGE_POOL_2D"), ("AVERAGE_POOL_2D",)),
    OpSpec("GlobalAveragePool", COMPUTE, lower_global_average_pool, ("MEAN",)),
    OpSpec("ReduceMean", COMPUTE, lower_reduce_mean, ("MEAN",)),
)
