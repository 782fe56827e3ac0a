"""Kernels of the emulator, one entry per TFLite builtin: int8 with TFLite reference arithmetic, float32 in numpy.

Requantization uses :mod:`edgeact.numerics.requantize` with the caller's rounding mode (TFLite's double rounding for
the reference kernels); activation builtins use the ``litert`` table convention; CAST -> ADD -> GATHER tables are
exact integer operations. Ops whose reference kernels compute in float (QUANTIZE, CONCATENATION with rescaling,
MEAN with rescaling, SOFTMAX) are emulated in float32 and agree within one output step.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from edgeact.activations import activation
from edgeact.exporters.tflite.graph import LoweredGraph, LoweredOp
from edgeact.numerics import PerChannelQParams, QParams, lut_for
from edgeact.numerics.requantize import (
    RequantRounding,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    requantize,
)
from edgeact.numerics.rounding import round_half_away_from_zero

Arrays = list[np.ndarray | None]
Kernel = Callable[[LoweredGraph, LoweredOp, Arrays, RequantRounding], list[np.ndarray]]
KERNELS: dict[str, Kernel] = {}
SAME = 0


def kernel(*ops: str) -> Callable[[Kernel], Kernel]:
    def register(function: Kernel) -> Kernel:
        for op in ops:
            KERNELS[op] = function
        return function

    return register


# ---- helpers --------------------------------------------------------------------------------------------------------
def _quant(graph: LoweredGraph, index: int) -> QParams | PerChannelQParams | None:
    return graph.tensors[index].quant


def _scale_zp(graph: LoweredGraph, index: int) -> tuple[float, int]:
    q = _quant(graph, index)
    if isinstance(q, PerChannelQParams):
        return q.scales[0], 0
    return q.scale, q.zero_point


def _is_float(graph: LoweredGraph, op: LoweredOp) -> bool:
    return graph.tensors[op.outputs[0]].dtype == "float32"


def _int8(values: np.ndarray) -> np.ndarray:
    return np.clip(values, -128, 127).astype(np.int8)


def _per_channel_requant(acc: np.ndarray, multipliers: list[float], rounding: RequantRounding) -> np.ndarray:
    """Requantize the last axis channel by channel (one multiplier per channel, or one for all)."""
    acc = np.asarray(acc, dtype=np.int64)
    if len(multipliers) == 1:
        return requantize(acc, multipliers[0], rounding)
    out = np.empty_like(acc)
    for channel, multiplier in enumerate(multipliers):
        out[..., channel] = requantize(acc[..., channel], multiplier, rounding)
    return out


def _multipliers(graph: LoweredGraph, x: int, w: int, y: int) -> list[float]:
    """TFLite's real multipliers s_x * s_w[c] / s_y, in double from the float32 scales."""
    sx, _ = _scale_zp(graph, x)
    sy, _ = _scale_zp(graph, y)
    wq = _quant(graph, w)
    scales = wq.scales if isinstance(wq, PerChannelQParams) else (wq.scale,)
    return [float(np.float32(sx)) * float(np.float32(s)) / float(np.float32(sy)) for s in scales]


def _output_zp(graph: LoweredGraph, op: LoweredOp) -> int:
    return _scale_zp(graph, op.outputs[0])[1]


# ---- matmuls and convolutions ---------------------------------------------------------------------------------------
def fully_connected_acc(graph: LoweredGraph, op: LoweredOp, inputs: Arrays) -> np.ndarray:
    """int32 accumulators (N, channels) of an int8 FULLY_CONNECTED, bias included."""
    x, w, b = inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None
    _, zx = _scale_zp(graph, op.inputs[0])
    acc = (x.reshape(-1, w.shape[1]).astype(np.int64) - zx) @ w.T.astype(np.int64)
    return acc + (b.astype(np.int64) if b is not None else 0)


@kernel("FULLY_CONNECTED")
def fully_connected(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    x, w, b = inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None
    out_shape = graph.tensors[op.outputs[0]].shape
    if _is_float(graph, op):
        y = x.reshape(-1, w.shape[1]).astype(np.float32) @ w.T.astype(np.float32)
        return [(y + (b if b is not None else 0)).astype(np.float32).reshape(out_shape)]
    acc = fully_connected_acc(graph, op, inputs)
    y = _per_channel_requant(acc, _multipliers(graph, op.inputs[0], op.inputs[1], op.outputs[0]), rounding)
    return [_int8(y + _output_zp(graph, op)).reshape(out_shape)]


@kernel("BATCH_MATMUL")
def batch_matmul(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    a, b = inputs
    if _is_float(graph, op):
        return [np.matmul(a.astype(np.float32), b.astype(np.float32))]
    (sa, za), (sb, zb), (so, zo) = (_scale_zp(graph, i) for i in (*op.inputs, op.outputs[0]))
    acc = np.matmul(a.astype(np.int64) - za, b.astype(np.int64) - zb)
    multiplier = float(np.float32(sa)) * float(np.float32(sb)) / float(np.float32(so))
    return [_int8(requantize(acc, multiplier, rounding) + zo)]


def _same_padding(size: int, kernel_size: int, stride: int, dilation: int) -> tuple[int, int, int]:
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel_size - 1) * dilation + 1 - size, 0)
    return out, total // 2, total - total // 2


def _windows(x: np.ndarray, kh: int, kw: int, options: dict, fill: float) -> tuple[np.ndarray, np.ndarray]:
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
    zx = 0 if floating else _scale_zp(graph, op.inputs[0])[1]
    depthwise = op.op == "DEPTHWISE_CONV_2D"
    kh, kw = (w.shape[1], w.shape[2])
    patches, _ = _windows(x.astype(np.float64 if floating else np.int64), kh, kw, op.options, zx)
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


@kernel("CONV_2D", "DEPTHWISE_CONV_2D")
def conv(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    if _is_float(graph, op):
        return [conv_acc(graph, op, inputs, floating=True).astype(np.float32)]
    acc = conv_acc(graph, op, inputs)
    y = _per_channel_requant(acc, _multipliers(graph, op.inputs[0], op.inputs[1], op.outputs[0]), rounding)
    return [_int8(y + _output_zp(graph, op))]


@kernel("MAX_POOL_2D", "AVERAGE_POOL_2D")
def pool(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    x = inputs[0]
    kh, kw = op.options["filterHeight"], op.options["filterWidth"]
    floating = _is_float(graph, op)
    patches, inside = _windows(x.astype(np.float64 if floating else np.int64), kh, kw, op.options, 0)
    mask = inside[None, :, :, :, None]
    if op.op == "MAX_POOL_2D":
        return [np.where(mask, patches, -np.inf if floating else -(2**40)).max(axis=3).astype(x.dtype)]
    total, count = np.where(mask, patches, 0).sum(axis=3), mask.sum(axis=3)
    if floating:
        return [(total / count).astype(np.float32)]
    half = count // 2
    rounded = np.where(total > 0, (total + half) // count, -((-total + half) // count))  # C++ truncation
    return [_int8(rounded)]


# ---- elementwise ----------------------------------------------------------------------------------------------------
FLOAT_BINARY = {
    "ADD": np.add, "SUB": np.subtract, "MUL": np.multiply, "DIV": np.divide, "MAXIMUM": np.maximum,
    "MINIMUM": np.minimum, "SQUARED_DIFFERENCE": lambda a, b: (a - b) * (a - b),
}


@kernel("ADD", "SUB")
def add_sub(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    a, b = inputs
    out = graph.tensors[op.outputs[0]]
    if out.quant is None:  # float32, or the int32 ADD of a table lookup (exact)
        return [FLOAT_BINARY[op.op](a, b).astype(out.dtype)]
    (s1, z1), (s2, z2), (so, zo) = (_scale_zp(graph, i) for i in (*op.inputs, op.outputs[0]))
    left_shift = 20
    twice_max = 2.0 * max(float(np.float32(s1)), float(np.float32(s2)))
    shifted = [(v.astype(np.int64) - z) * (1 << left_shift) for v, z in ((a, z1), (b, z2))]
    scaled = [requantize(v, float(np.float32(s)) / twice_max, rounding)
              for v, s in zip(shifted, (s1, s2), strict=True)]
    total = scaled[0] + scaled[1] if op.op == "ADD" else scaled[0] - scaled[1]
    output_multiplier = twice_max / ((1 << left_shift) * float(np.float32(so)))
    return [_int8(requantize(total, output_multiplier, rounding) + zo)]


@kernel("MUL")
def mul(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    a, b = inputs
    if _is_float(graph, op):
        return [(a * b).astype(np.float32)]
    (s1, z1), (s2, z2), (so, zo) = (_scale_zp(graph, i) for i in (*op.inputs, op.outputs[0]))
    acc = (a.astype(np.int64) - z1) * (b.astype(np.int64) - z2)
    multiplier = float(np.float32(s1)) * float(np.float32(s2)) / float(np.float32(so))
    return [_int8(requantize(acc, multiplier, rounding) + zo)]


@kernel("DIV", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE")
def float_binary(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    a, b = inputs
    return [FLOAT_BINARY[op.op](a.astype(np.float32), b.astype(np.float32)).astype(np.float32)]


@kernel("POW")
def power(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return [np.power(inputs[0].astype(np.float32), inputs[1].astype(np.float32)).astype(np.float32)]


@kernel("ELU")
def elu(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    x = inputs[0].astype(np.float32)
    return [np.where(x < 0, np.expm1(np.minimum(x, 0)), x).astype(np.float32)]


@kernel("PRELU")
def prelu(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    """x >= 0: x * s_in/s_out; x < 0: x * alpha * s_in*s_alpha/s_out (TFLite's reference PRELU, two multipliers)."""
    x, alpha = inputs
    if _is_float(graph, op):
        x = x.astype(np.float32)
        return [np.where(x >= 0, x, x * alpha.astype(np.float32)).astype(np.float32)]
    (si, zi), (sa, za), (so, zo) = (_scale_zp(graph, i) for i in (*op.inputs, op.outputs[0]))
    centred = x.astype(np.int64) - zi
    positive = requantize(centred, float(np.float32(si)) / float(np.float32(so)), rounding)
    product = centred * (np.broadcast_to(alpha, np.broadcast_shapes(x.shape, alpha.shape)).astype(np.int64) - za)
    negative = requantize(product, float(np.float32(si)) * float(np.float32(sa)) / float(np.float32(so)), rounding)
    return [_int8(np.where(centred >= 0, positive, negative) + zo)]


FLOAT_UNARY = {"SIN": np.sin, "COS": np.cos, "EXP": np.exp, "LOG": np.log, "SQRT": np.sqrt, "ABS": np.abs,
               "NEG": np.negative, "FLOOR": np.floor, "CEIL": np.ceil, "ROUND": np.round, "SIGN": np.sign}


@kernel(*FLOAT_UNARY)
def float_unary(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    return [FLOAT_UNARY[op.op](inputs[0].astype(np.float32)).astype(np.float32)]


@kernel("RSQRT")
def rsqrt(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    return [(np.float32(1.0) / np.sqrt(inputs[0].astype(np.float32))).astype(np.float32)]


# ---- reductions, softmax --------------------------------------------------------------------------------------------
@kernel("MEAN")
def mean(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    x, axes = inputs
    keep = op.options.get("keepDims", False)
    axes = tuple(int(a) % x.ndim for a in np.asarray(axes).reshape(-1))
    if _is_float(graph, op):
        return [x.astype(np.float32).mean(axis=axes, keepdims=keep).astype(np.float32)]
    (si, zi), (so, zo) = _scale_zp(graph, op.inputs[0]), _scale_zp(graph, op.outputs[0])
    count = int(np.prod([x.shape[a] for a in axes]))
    total = x.astype(np.int64).sum(axis=axes, keepdims=keep) - zi * count
    # TFLite's reference QuantizedMeanOrSum: the 1/count folds into the Q31 multiplier of s_in/s_out.
    multiplier, shift = quantize_multiplier(float(np.float32(si)) / float(np.float32(so)))
    extra = min(count.bit_length() - 1, 32, 31 + shift)
    multiplier, shift = (multiplier << extra) // count, shift - extra
    return [_int8(multiply_by_quantized_multiplier(total, multiplier, shift, rounding) + zo)]


@kernel("SOFTMAX")
def softmax(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    beta = np.float32(op.options.get("beta", 1.0))
    floating = _is_float(graph, op)
    x = inputs[0].astype(np.float32)
    if not floating:
        si, zi = _scale_zp(graph, op.inputs[0])
        x = np.float32(si) * (x - np.float32(zi))
    shifted = beta * (x - x.max(axis=-1, keepdims=True))
    e = np.exp(shifted.astype(np.float64))
    p = e / e.sum(axis=-1, keepdims=True)
    if floating:
        return [p.astype(np.float32)]
    so, zo = _scale_zp(graph, op.outputs[0])
    return [_int8(round_half_away_from_zero(p / so) + zo)]


# ---- data movement --------------------------------------------------------------------------------------------------
@kernel("RESHAPE")
def reshape(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    return [inputs[0].reshape(graph.tensors[op.outputs[0]].shape)]


@kernel("TRANSPOSE")
def transpose(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    return [np.transpose(inputs[0], np.asarray(inputs[1]).reshape(-1))]


@kernel("STRIDED_SLICE")
def strided_slice(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    x, begin, end, strides = inputs
    index = tuple(slice(int(b), int(e), int(s)) for b, e, s in zip(begin, end, strides, strict=True))
    return [x[index]]


@kernel("SPLIT")
def split(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    axis, x = int(np.asarray(inputs[0]).reshape(-1)[0]), inputs[1]
    return list(np.split(x, op.options.get("numSplits", 1), axis=axis))


@kernel("SPLIT_V")
def split_v(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    x, sizes, axis = inputs[0], np.asarray(inputs[1]).reshape(-1), int(np.asarray(inputs[2]).reshape(-1)[0])
    return list(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


@kernel("GATHER")
def gather(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    return [np.take(inputs[0], np.asarray(inputs[1], dtype=np.int64), axis=op.options.get("axis", 0))]


@kernel("PAD", "PADV2")
def pad(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    fill = 0 if _is_float(graph, op) else _output_zp(graph, op)
    if op.op == "PADV2":
        fill = np.asarray(inputs[2]).reshape(-1)[0]
    return [np.pad(inputs[0], np.asarray(inputs[1]).reshape(-1, 2), constant_values=fill)]


def _nearest_indices(size_in: int, size_out: int, align: bool, half: bool) -> np.ndarray:
    """TFLite's GetNearestNeighbor: the source index of every output index along one axis (float32 scale)."""
    scale = np.float32((size_in - 1) / (size_out - 1)) if align and size_out > 1 else np.float32(size_in / size_out)
    offset = np.float32(0.5) if half else np.float32(0.0)
    position = (np.arange(size_out, dtype=np.float32) + offset) * scale
    index = round_half_away_from_zero(position) if align else np.floor(position)
    index = np.minimum(index.astype(np.int64), size_in - 1)
    return np.maximum(index, 0) if half else index


@kernel("RESIZE_NEAREST_NEIGHBOR")
def resize_nearest(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    x, size = inputs[0], np.asarray(inputs[1]).reshape(-1)
    align, half = bool(op.options.get("alignCorners")), bool(op.options.get("halfPixelCenters"))
    rows = _nearest_indices(x.shape[1], int(size[0]), align, half)
    cols = _nearest_indices(x.shape[2], int(size[1]), align, half)
    return [x[:, rows][:, :, cols]]


@kernel("CONCATENATION")
def concatenation(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    axis = op.options.get("axis", 0)
    if _is_float(graph, op):
        return [np.concatenate(inputs, axis=axis)]
    so, zo = _scale_zp(graph, op.outputs[0])
    parts = []
    for index, value in zip(op.inputs, inputs, strict=True):
        si, zi = _scale_zp(graph, index)
        if (si, zi) == (so, zo):
            parts.append(value)
            continue
        scale = np.float32(si) / np.float32(so)
        rescaled = value.astype(np.float32) * scale + (np.float32(-zi) * scale)
        parts.append(_int8(round_half_away_from_zero(rescaled) + zo))
    return [np.concatenate(parts, axis=axis)]


@kernel("CAST")
def cast(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    return [inputs[0].astype(graph.tensors[op.outputs[0]].dtype)]


@kernel("QUANTIZE")
def quantize_op(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    so, zo = _scale_zp(graph, op.outputs[0])
    if graph.tensors[op.inputs[0]].dtype == "int8":  # requantize: (q - zp_in) * s_in / s_out
        si, zi = _scale_zp(graph, op.inputs[0])
        multiplier = float(np.float32(si)) / float(np.float32(so))
        return [_int8(requantize(inputs[0].astype(np.int64) - zi, multiplier, rounding) + zo)]
    return [_int8(round_half_away_from_zero(inputs[0].astype(np.float32) / np.float32(so)) + zo)]


@kernel("DEQUANTIZE")
def dequantize_op(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    si, zi = _scale_zp(graph, op.inputs[0])
    return [((inputs[0].astype(np.int32) - zi).astype(np.float32) * np.float32(si)).astype(np.float32)]


# ---- activations ----------------------------------------------------------------------------------------------------
BUILTIN_ACTIVATIONS = {"TANH": "tanh", "LOGISTIC": "sigmoid", "HARD_SWISH": "hardswish", "LEAKY_RELU": "leaky_relu"}


def _builtin_activation(op: LoweredOp):  # type: ignore[no-untyped-def]
    if op.op == "GELU":
        return activation("gelu_tanh" if op.options.get("approximate") else "gelu")
    if op.op == "LEAKY_RELU":
        return activation("leaky_relu", alpha=op.options.get("alpha", 0.01))
    return activation(BUILTIN_ACTIVATIONS[op.op])


@kernel("TANH", "LOGISTIC", "GELU", "HARD_SWISH", "LEAKY_RELU")
def builtin_activation(graph, op, inputs, rounding, convention: str = "litert"):  # type: ignore[no-untyped-def]
    """An int8 activation builtin as the table its device builds (``convention``; LiteRT's by default)."""
    act = _builtin_activation(op)
    x = inputs[0]
    if _is_float(graph, op):
        return [act.float32(x.astype(np.float32)).astype(np.float32)]
    in_q, out_q = _quant(graph, op.inputs[0]), _quant(graph, op.outputs[0])
    table = lut_for(act, in_q, out_q, convention)
    return [table.lookup(x.astype(np.int64)).astype(np.int8)]


@kernel("RELU", "RELU6")
def relu(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    high = None if op.op == "RELU" else 6.0
    if _is_float(graph, op):
        return [np.clip(inputs[0], 0.0, high).astype(np.float32)]
    (si, zi), (so, zo) = _scale_zp(graph, op.inputs[0]), _scale_zp(graph, op.outputs[0])
    real = np.clip(np.float32(si) * (inputs[0].astype(np.float32) - np.float32(zi)), 0.0, high)
    return [_int8(round_half_away_from_zero(real / np.float32(so)) + zo)]
