"""Convolutions: Conv (2-D, plain or depthwise) -> CONV_2D / DEPTHWISE_CONV_2D, with PAD for explicit pads."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from edgeact.ops._kernel import (
    channel_multipliers,
    float_requant_gemm,
    is_float,
    is_int16,
    output_zp,
    requantized,
    requantized_int64,
    scale_zp,
)
from edgeact.ops._lowering import SAME, bias_constant, pad_input, padding_of, weight_constant
from edgeact.ops.spec import Builtin, OpQuantizer, OpSpec, Role

if TYPE_CHECKING:
    from edgeact.exporters.tflite.lower import Lowering
    from edgeact.graph.view import NodeView
    from edgeact.ops._kernel import Arrays
    from edgeact.tflite.graph import LoweredGraph, LoweredOp


# ---- TFLite lowering ----------------------------------------------------------------------------------------------
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
    padding, explicit = padding_of(ctx, node, ctx.shape(x)[2:], kernel, strides, dilations)
    source = pad_input(ctx, node, ctx.get(x, dtype, "nhwc", node.name), explicit)
    if depthwise:
        w = weight_constant(ctx, node, 1, dtype, lambda a: np.ascontiguousarray(np.transpose(a, (1, 2, 3, 0))), axis=3)
    else:
        w = weight_constant(ctx, node, 1, dtype, lambda a: np.ascontiguousarray(np.transpose(a, (0, 2, 3, 1))), axis=0)
    bias = bias_constant(ctx, node, 2, dtype)
    options = dict(padding=padding, strideH=strides[0], strideW=strides[1], dilationHFactor=dilations[0],
                   dilationWFactor=dilations[1])
    out = ctx.output(node, y, dtype, "nhwc")
    if depthwise:
        ctx.graph.op("DEPTHWISE_CONV_2D", [source, w, bias], [out], node.name,
                     depthMultiplier=weight.shape[0] // channels, **options)
    else:
        ctx.graph.op("CONV_2D", [source, w, bias], [out], node.name, **options)


# ---- emulator kernels ---------------------------------------------------------------------------------------------
def _same_padding(size: int, kernel_size: int, stride: int, dilation: int) -> tuple[int, int, int]:
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel_size - 1) * dilation + 1 - size, 0)
    return out, total // 2, total - total // 2


def windows(x: np.ndarray, kh: int, kw: int, options: dict, fill: float) -> tuple[np.ndarray, np.ndarray]:
    """(N, OH, OW, kh*kw, C) patches of NHWC ``x`` and a mask of which taps are inside the unpadded input."""
    sh, sw = options.get("strideH", 1), options.get("strideW", 1)
    dh, dw = options.get("dilationHFactor", 1), options.get("dilationWFactor", 1)
    n, h, w, c = x.shape
    if options.get("padding", 1) == SAME:
        oh, top, bottom = _same_padding(h, kh, sh, dh)
        ow, left, right = _same_padding(w, kw, sw, dw)
    else:
        oh, ow = (h - (kh - 1) * dh - 1) // sh + 1, (w - (kw - 1) * dw - 1) // sw + 1
        top = bottom = left = right = 0
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
    inside = np.pad(np.ones((h, w), bool), ((top, bottom), (left, right)), constant_values=False)
    patches, masks = [], []
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + (oh - 1) * sh + 1, sh)
            cols = slice(j * dw, j * dw + (ow - 1) * sw + 1, sw)
            patches.append(padded[:, rows, cols, :])
            masks.append(inside[rows, cols])
    return np.stack(patches, axis=3), np.stack(masks, axis=2)


def conv_acc(graph: LoweredGraph, op: LoweredOp, inputs: Arrays, floating: bool = False) -> np.ndarray:
    """Accumulators (N, OH, OW, channels) of CONV_2D / DEPTHWISE_CONV_2D (int64 for int8, bias included)."""
    x, w, b = inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None
    zx = 0 if floating else scale_zp(graph, op.inputs[0])[1]
    depthwise = op.op == "DEPTHWISE_CONV_2D"
    kh, kw = (w.shape[1], w.shape[2])
    patches, _ = windows(x.astype(np.float64 if floating else np.int64), kh, kw, op.options, zx)
    centred = patches - zx  # (N, OH, OW, taps, C)
    if depthwise:
        multiplier = op.options.get("depthMultiplier", 1)
        centred = np.repeat(centred, multiplier, axis=-1)
        acc = np.einsum("nhwtc,tc->nhwc", centred, w.reshape(kh * kw, -1).astype(centred.dtype))
    else:
        acc = np.einsum("nhwtc,otc->nhwo", centred, w.reshape(w.shape[0], kh * kw, -1).astype(centred.dtype))
    if b is None:
        return acc
    return acc + (b.astype(np.float64) if floating else b.astype(np.int64))


def conv(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    if is_float(graph, op):
        return [conv_acc(graph, op, inputs, floating=True).astype(np.float32)]
    acc = conv_acc(graph, op, inputs)
    multipliers = channel_multipliers(graph, op.inputs[0], op.inputs[1], op.outputs[0])
    if is_int16(graph, op):  # 16x8: int64 accumulators and bias, TFLite's int64 requantization
        return [requantized_int64(acc, multipliers, output_zp(graph, op))]
    return [requantized(acc, multipliers, output_zp(graph, op), rounding)]


def pad(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    fill = 0 if is_float(graph, op) else output_zp(graph, op)
    if op.op == "PADV2":
        fill = np.asarray(inputs[2]).reshape(-1)[0]
    return [np.pad(inputs[0], np.asarray(inputs[1]).reshape(-1, 2), constant_values=fill)]


# ---- the specs ----------------------------------------------------------------------------------------------------
CONV_OPTIONS = {"padding": 1, "strideW": 1, "strideH": 1, "fusedActivationFunction": 0, "dilationWFactor": 1,
                "dilationHFactor": 1}
XNNPACK = {"xnnpack": float_requant_gemm(conv_acc, conv)}
BUILTINS = (
    Builtin("CONV_2D", conv, ("Conv2DOptions", CONV_OPTIONS), arithmetic=XNNPACK),
    Builtin("DEPTHWISE_CONV_2D", conv, ("DepthwiseConv2DOptions", {
        "padding": 1, "strideW": 1, "strideH": 1, "depthMultiplier": 1, "fusedActivationFunction": 0,
        "dilationWFactor": 1, "dilationHFactor": 1}), arithmetic=XNNPACK),
    Builtin("PAD", pad),
    Builtin("PADV2", pad, ("PadV2Options", {})),
)

SPECS = (
    OpSpec("Conv", OpQuantizer(Role.COMPUTE, weight=1, weight_axis=0, bias=2, bias_axis=1), lower_conv,
           ("CONV_2D", "DEPTHWISE_CONV_2D", "PAD")),
)
