"""The grid and integer codes of every constant an exporter writes: weights, biases (given or zero), constant
operands, a Div's reciprocal, the lowest code that explicit max-pooling pads are filled with.

Each function returns ``(grid, codes)``, or None where the constant stays float. Rounding is numerics' own.
"""

from __future__ import annotations

import numpy as np

from edgeact.numerics import PerChannelQParams, QParams, per_channel_symmetric, qparams_from_range, quantize
from edgeact.numerics.qparams import bias_grid, integer_range, quantize_per_channel
from edgeact.numerics.rounding import Rounding

Grid = QParams | PerChannelQParams
Coded = tuple[Grid, np.ndarray]


def weight_codes(weight: np.ndarray, axis: int, per_tensor: bool, name: str) -> Coded:
    """int8 symmetric codes: per output channel along ``axis``, or one scale for the tensor."""
    if per_tensor or weight.ndim < 2:
        peak = float(np.abs(weight).max()) or 1.0
        grid = qparams_from_range(-peak, peak, "int8", symmetric=True, tensor=name)
        return grid, quantize(weight, grid, Rounding.HALF_TO_EVEN).astype(np.int8)
    grid = per_channel_symmetric(weight, axis)
    return grid, quantize_per_channel(weight, grid).astype(np.int8)


def _channels(weight_grid: Grid) -> int:
    return len(weight_grid.scales) if isinstance(weight_grid, PerChannelQParams) else 1


def bias_codes(bias: np.ndarray, input_scale: float, weight_grid: Grid) -> Coded | None:
    """int32 codes at s_in * s_w (one per output channel; a single value broadcasts), or None when the bias does
    not fit the weight's channels (it stays float)."""
    flat, channels = bias.reshape(-1), _channels(weight_grid)
    if channels > 1 and flat.size not in (1, channels):
        return None
    grid = bias_grid(input_scale, weight_grid)
    if channels == 1:
        grid = PerChannelQParams(grid.scales * flat.size, 0, "int32")
    return grid, quantize_per_channel(flat, grid).astype(np.int32)


def bias_fits_onnx(bias: np.ndarray, weight_grid: Grid) -> bool:
    """Can a DequantizeLinear restore the bias in its own shape (1-D, one value per channel)?"""
    channels = _channels(weight_grid)
    return bias.ndim == 1 and (channels == 1 or bias.shape[0] == channels)


def zero_bias_codes(channels: int, input_scale: float, weight_grid: Grid) -> Coded:
    """All-zero int32 bias on the bias grid, for kernels that take a bias the model does not have."""
    grid = bias_grid(input_scale, weight_grid)
    if len(grid.scales) == 1:
        grid = PerChannelQParams(grid.scales * channels, 0, "int32")
    return grid, np.zeros(channels, dtype=np.int32)


def operand_codes(constant: np.ndarray, grid: QParams | None, name: str) -> Coded:
    """Codes of a constant operand, on ``grid`` (the op's shared grid, int8 or int16) or on its own int8 min/max
    grid."""
    if grid is None:
        grid = qparams_from_range(float(constant.min()), float(constant.max()), "int8", tensor=name)
    return grid, quantize(constant, grid, Rounding.HALF_TO_EVEN).astype(grid.dtype)


def reciprocal_codes(divisor: np.ndarray, name: str) -> Coded | None:
    """int8 symmetric codes of 1/divisor (a Div by a constant becomes a multiplication), or None when the divisor
    holds 0 or is not finite."""
    with np.errstate(divide="ignore", invalid="ignore"):
        reciprocal = 1.0 / divisor.astype(np.float64)
    if not np.isfinite(reciprocal).all():
        return None
    peak = float(np.abs(reciprocal).max())
    grid = qparams_from_range(-peak, peak, "int8", symmetric=True, tensor=name)
    return grid, quantize(reciprocal, grid, Rounding.HALF_TO_EVEN).astype(np.int8)


def pad_fill_codes(grid: QParams) -> Coded:
    """The lowest code of ``grid``: what explicit max-pooling pads hold (no window's maximum can be below it)."""
    return grid, np.asarray([integer_range(grid.dtype)[0]], dtype=grid.dtype)
