"""XNNPACK's int8 arithmetic for the ops its LiteRT delegate takes (from XNNPACK's microkernel parameters):
per-channel GEMM/conv requantization in float32 (scale = s_in * s_w / s_out in float32, lrintf: ties to even),
ADD/SUB with 20-bit fixed-point multipliers and a round-half-up shift, MUL in float32, QUANTIZE as x * (1/s) in
float32 rounded to nearest even."""

from __future__ import annotations

import numpy as np

from edgeact.numerics.rounding import round_half_to_even
from edgeact.ops import conv, conversions, elementwise_binary, matmul, pooling
from edgeact.ops._kernel import is_float, output_zp, quant_of, saturate_int8, scale_zp
from edgeact.runtimes.emulator.kernels import Kernel


def _f32(value: float) -> np.float32:
    return np.float32(value)


def _channel_scales(graph, op) -> np.ndarray:  # type: ignore[no-untyped-def]
    sx, _ = scale_zp(graph, op.inputs[0])
    so, _ = scale_zp(graph, op.outputs[0])
    wq = quant_of(graph, op.inputs[1])
    scales = np.asarray(getattr(wq, "scales", None) or (wq.scale,), dtype=np.float32)
    return (np.float32(sx) * scales) / np.float32(so)


def _float_requant(acc: np.ndarray, scale: np.ndarray | np.float32, zero_point: int) -> np.ndarray:
    scaled = acc.astype(np.float32) * scale
    return saturate_int8(round_half_to_even(scaled.astype(np.float64)) + zero_point)


def gemm_like(accumulate, reference: Kernel) -> Kernel:  # type: ignore[no-untyped-def]
    """FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D: the same accumulators, XNNPACK's float32 requantization."""

    def kernel(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
        if is_float(graph, op):
            return reference(graph, op, inputs, rounding)
        result = _float_requant(accumulate(graph, op, inputs), _channel_scales(graph, op),
                                output_zp(graph, op))
        return [result.reshape(graph.tensors[op.outputs[0]].shape)]

    return kernel


def add_sub(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    out = graph.tensors[op.outputs[0]]
    if out.quant is None:
        return elementwise_binary.add_sub(graph, op, inputs, rounding)
    (sa, za), (sb, zb), (so, zo) = (scale_zp(graph, i) for i in (*op.inputs, op.outputs[0]))
    a_scale, b_scale = _f32(_f32(sa) / _f32(so)), _f32(_f32(sb) / _f32(so))
    if op.op == "SUB":
        b_scale = -b_scale
    exponent = int(np.frexp(max(abs(a_scale), abs(b_scale)))[1]) - 1
    shift = 20 - exponent
    a_mult = int(round_half_to_even(np.float64(abs(a_scale)) * 2.0**shift)) * (1 if a_scale >= 0 else -1)
    b_mult = int(round_half_to_even(np.float64(abs(b_scale)) * 2.0**shift)) * (1 if b_scale >= 0 else -1)
    bias = (1 << (shift - 1)) - a_mult * za - b_mult * zb
    total = bias + inputs[0].astype(np.int64) * a_mult + inputs[1].astype(np.int64) * b_mult
    return [saturate_int8((total >> shift) + zo)]


def mul(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    if is_float(graph, op):
        return elementwise_binary.mul(graph, op, inputs, rounding)
    (sa, za), (sb, zb), (so, zo) = (scale_zp(graph, i) for i in (*op.inputs, op.outputs[0]))
    scale = _f32(_f32(_f32(sa) * _f32(sb)) / _f32(so))
    acc = (inputs[0].astype(np.int64) - za) * (inputs[1].astype(np.int64) - zb)
    return [_float_requant(acc, scale, zo)]


def quantize(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    if graph.tensors[op.inputs[0]].dtype != "float32":
        return conversions.quantize_op(graph, op, inputs, rounding)
    so, zo = scale_zp(graph, op.outputs[0])
    scaled = inputs[0].astype(np.float32) * (np.float32(1.0) / np.float32(so))
    return [saturate_int8(round_half_to_even(scaled.astype(np.float64)) + zo)]


XNNPACK_KERNELS: dict[str, Kernel] = {
    "FULLY_CONNECTED": gemm_like(matmul.fully_connected_acc, matmul.fully_connected),
    "CONV_2D": gemm_like(conv.conv_acc, conv.conv),
    "DEPTHWISE_CONV_2D": gemm_like(conv.conv_acc, conv.conv),
    "ADD": add_sub,
    "SUB": add_sub,
    "MUL": mul,
    "QUANTIZE": quantize,
}


def mean(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    """qs8 mean: the zero-point-corrected sum times s_in / (s_out * count) in float32, ties to even."""
    if is_float(graph, op):
        return pooling.mean(graph, op, inputs, rounding)
    x, axes = inputs
    axes = tuple(int(a) % x.ndim for a in np.asarray(axes).reshape(-1))
    (si, zi), (so, zo) = scale_zp(graph, op.inputs[0]), scale_zp(graph, op.outputs[0])
    count = int(np.prod([x.shape[a] for a in axes]))
    total = x.astype(np.int64).sum(axis=axes, keepdims=op.options.get("keepDims", False)) - zi * count
    scale = _f32(_f32(si) / (_f32(so) * _f32(count)))
    return [_float_requant(total, scale, zo)]


XNNPACK_KERNELS["MEAN"] = mean
