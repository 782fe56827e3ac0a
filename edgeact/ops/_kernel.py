"""Helpers the emulator kernels share: a tensor's grid, float or int8, and requantization onto the output grid
(through :func:`edgeact.numerics.requantize.requantize_to_grid`, the one requantize -> + zero point -> clamp)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgeact.numerics import PerChannelQParams, QParams
from edgeact.numerics.requantize import RequantRounding, requantize_to_grid
from edgeact.numerics.rounding import round_half_to_even

if TYPE_CHECKING:
    from edgeact.tflite.graph import LoweredGraph, LoweredOp

Arrays = list[np.ndarray | None]
INT8_MIN, INT8_MAX = -128, 127


def quant_of(graph: LoweredGraph, index: int) -> QParams | PerChannelQParams | None:
    return graph.tensors[index].quant


def scale_zp(graph: LoweredGraph, index: int) -> tuple[float, int]:
    q = quant_of(graph, index)
    if isinstance(q, PerChannelQParams):
        return q.scales[0], 0
    return q.scale, q.zero_point


def is_float(graph: LoweredGraph, op: LoweredOp) -> bool:
    return graph.tensors[op.outputs[0]].dtype == "float32"


def saturate_int8(values: np.ndarray) -> np.ndarray:
    return np.clip(values, -128, 127).astype(np.int8)


def channel_multipliers(graph: LoweredGraph, x: int, w: int, y: int) -> list[float]:
    """TFLite's real multipliers s_x * s_w[c] / s_y, in double from the float32 scales."""
    sx, _ = scale_zp(graph, x)
    sy, _ = scale_zp(graph, y)
    wq = quant_of(graph, w)
    scales = wq.scales if isinstance(wq, PerChannelQParams) else (wq.scale,)
    return [float(np.float32(sx)) * float(np.float32(s)) / float(np.float32(sy)) for s in scales]


def output_zp(graph: LoweredGraph, op: LoweredOp) -> int:
    return scale_zp(graph, op.outputs[0])[1]


def requantized(acc: np.ndarray, multiplier: float | list[float], zero_point: int,
                rounding: RequantRounding) -> np.ndarray:
    """int8 codes of int32 accumulators: requantize by ``multiplier`` (one, or one per channel of the last axis),
    add ``zero_point``, saturate."""
    if not isinstance(multiplier, list):
        return requantize_to_grid(acc, multiplier, zero_point, INT8_MIN, INT8_MAX, rounding).astype(np.int8)
    if len(multiplier) == 1:
        return requantized(acc, multiplier[0], zero_point, rounding)
    acc = np.asarray(acc, dtype=np.int64)
    out = np.empty(acc.shape, dtype=np.int8)
    for channel, value in enumerate(multiplier):
        out[..., channel] = requantized(acc[..., channel], value, zero_point, rounding)
    return out


# ---- XNNPACK's arithmetic (from its microkernel parameters): float32 requantization, rounded to nearest even -----
def float_requant(acc: np.ndarray, scale: np.ndarray | np.float32, zero_point: int) -> np.ndarray:
    """int8 codes of ``acc * scale`` computed in float32, ties to even, plus ``zero_point``, saturated."""
    scaled = acc.astype(np.float32) * scale
    return saturate_int8(round_half_to_even(scaled.astype(np.float64)) + zero_point)


def float32_channel_scales(graph: LoweredGraph, op: LoweredOp) -> np.ndarray:
    """XNNPACK's per-channel requantization scales s_in * s_w[c] / s_out, in float32."""
    sx, _ = scale_zp(graph, op.inputs[0])
    so, _ = scale_zp(graph, op.outputs[0])
    wq = quant_of(graph, op.inputs[1])
    scales = np.asarray(getattr(wq, "scales", None) or (wq.scale,), dtype=np.float32)
    return (np.float32(sx) * scales) / np.float32(so)


def float_requant_gemm(accumulate, reference):  # type: ignore[no-untyped-def]
    """FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D on XNNPACK: ``reference``'s accumulators (``accumulate``),
    XNNPACK's float32 requantization; float ops run ``reference``."""

    def kernel(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
        if is_float(graph, op):
            return reference(graph, op, inputs, rounding)
        result = float_requant(accumulate(graph, op, inputs), float32_channel_scales(graph, op),
                               output_zp(graph, op))
        return [result.reshape(graph.tensors[op.outputs[0]].shape)]

    return kernel
