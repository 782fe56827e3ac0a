"""The QUANTIZE / DEQUANTIZE builtins the lowering context inserts between int8 and float32 forms (no ONNX op
of their own)."""

from __future__ import annotations

import numpy as np

from edgeact.numerics.rounding import round_half_away_from_zero, round_half_to_even
from edgeact.ops._kernel import requantized, saturate_int8, scale_zp
from edgeact.ops.spec import Builtin


# ---- emulator kernels ---------------------------------------------------------------------------------------------
def quantize_op(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    so, zo = scale_zp(graph, op.outputs[0])
    if graph.tensors[op.inputs[0]].dtype == "int8":  # requantize: (q - zp_in) * s_in / s_out
        si, zi = scale_zp(graph, op.inputs[0])
        multiplier = float(np.float32(si)) / float(np.float32(so))
        return [requantized(inputs[0].astype(np.int64) - zi, multiplier, zo, rounding)]
    return [saturate_int8(round_half_away_from_zero(inputs[0].astype(np.float32) / np.float32(so)) + zo)]


def dequantize_op(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    si, zi = scale_zp(graph, op.inputs[0])
    return [((inputs[0].astype(np.int32) - zi).astype(np.float32) * np.float32(si)).astype(np.float32)]


# ---- the specs ----------------------------------------------------------------------------------------------------
def xnnpack_quantize(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    """XNNPACK's QUANTIZE of float32: x * (1/s) in float32, ties to even (a requantization runs the reference)."""
    if graph.tensors[op.inputs[0]].dtype != "float32":
        return quantize_op(graph, op, inputs, rounding)
    so, zo = scale_zp(graph, op.outputs[0])
    scaled = inputs[0].astype(np.float32) * (np.float32(1.0) / np.float32(so))
    return [saturate_int8(round_half_to_even(scaled.astype(np.float64)) + zo)]


BUILTINS = (
    Builtin("QUANTIZE", quantize_op, ("QuantizeOptions", {}), arithmetic={"xnnpack": xnnpack_quantize}),
    Builtin("DEQUANTIZE", dequantize_op, ("DequantizeOptions", {})),
)

SPECS = ()
