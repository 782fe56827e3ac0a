"""Numerics: the only home of rounding, clamping, requantization and table building."""

from edgeact.numerics.floor import TableError, table_error
from edgeact.numerics.qparams import (
    PerChannelQParams,
    QParams,
    as_codes,
    dequantize,
    dequantize_codes,
    integer_range,
    per_channel_symmetric,
    qparams_from_range,
    quantize,
)
from edgeact.numerics.requantize import RequantRounding, quantize_multiplier, requantize, requantize_to_grid
from edgeact.numerics.rounding import Rounding, clamp, round_to_int
from edgeact.numerics.tables import Convention, Table, covering_output_grid, int16_interpolate, lut_for

__all__ = [
    "Convention", "PerChannelQParams", "QParams", "RequantRounding", "Rounding", "Table", "TableError", "as_codes",
    "clamp", "covering_output_grid", "dequantize", "dequantize_codes", "int16_interpolate", "integer_range", "lut_for",
    "per_channel_symmetric", "qparams_from_range", "quantize", "quantize_multiplier", "requantize",
    "requantize_to_grid", "round_to_int", "table_error",
]
