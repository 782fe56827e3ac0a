"""Helpers the emulator kernels share: a tensor's grid, float or int8, and requantization onto the output grid
(through :func:`edgeact.numerics.requantize.requantize_to_grid`, the one requantize -> + zero point -> clamp)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgeact.numerics import PerChannelQParams, QParams
from edgeact.numerics.qparams import integer_range
from edgeact.numerics.requantize import RequantRounding, requantize_float64, requantize_int64, requantize_to_grid
from edgeact.numerics.rounding import round_half_to_even

if TYPE_CHECKING:
    from edgeact.tflite.graph import LoweredGraph, LoweredOp

Arrays = list[np.ndarray | None]


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


def saturate(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` clamped to the range of the integer ``dtype`` (int8, int16) and held in it."""
    low, high = integer_range(dtype)
    return np.clip(values, low, high).astype(dtype)


def out_dtype(graph: LoweredGraph, op: LoweredOp) -> str:
    """The dtype of the op's first output (int8, int16 or float32)."""
    return graph.tensors[op.outputs[0]].dtype


def is_int16(graph: LoweredGraph, op: LoweredOp) -> bool:
    """A 16x8 op: it writes int16 (XNNPACK delegates none of them; LiteRT runs its builtin kernels)."""
    return out_dtype(graph, op) == "int16"


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
                rounding: RequantRounding, dtype: str = "int8") -> np.ndarray:
    """``dtype`` codes of int32 accumulators: requantize by ``multiplier`` (one, or one per channel of the last
    axis), add ``zero_point``, saturate."""
    if not isinstance(multiplier, list):
        low, high = integer_range(dtype)
        return requantize_to_grid(acc, multiplier, zero_point, low, high, rounding).astype(dtype)
    if len(multiplier) == 1:
        return requantized(acc, multiplier[0], zero_point, rounding, dtype)
    acc = np.asarray(acc, dtype=np.int64)
    out = np.empty(acc.shape, dtype=dtype)
    for channel, value in enumerate(multiplier):
        out[..., channel] = requantized(acc[..., channel], value, zero_point, rounding, dtype)
    return out


def requantized_int64(acc: np.ndarray, multipliers: list[float], zero_point: int, in_double: bool = False
                      ) -> np.ndarray:
    """int16 codes of the int64 accumulators of a 16x8 op (one multiplier, or one per channel of the last axis):
    TFLite's int64 requantization (``in_double``: FULLY_CONNECTED's, in double), + ``zero_point``, saturated."""
    acc = np.asarray(acc, dtype=np.int64)
    scale = requantize_float64 if in_double else requantize_int64
    if len(multipliers) == 1:
        return saturate(scale(acc, multipliers[0]) + zero_point, "int16")
    out = np.empty(acc.shape, dtype=np.int16)
    for channel, value in enumerate(multipliers):
        out[..., channel] = saturate(scale(acc[..., channel], value) + zero_point, "int16")
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
        if is_float(graph, op) or is_int16(graph, op):
            return reference(graph, op, inputs, rounding)
        result = float_requant(accumulate(graph, op, inputs), float32_channel_scales(graph, op),
                               output_zp(graph, op))
        return [result.reshape(graph.tensors[op.outputs[0]].shape)]

    return kernel
