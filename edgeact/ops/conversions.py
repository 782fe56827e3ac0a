"""The QUANTIZE / DEQUANTIZE builtins the lowering context inserts between int8 and float32 forms (no ONNX op
of their own)."""

from __future__ import annotations

import numpy as np

from edgeact.numerics.rounding import round_half_away_from_zero, round_half_to_even
from edgeact.ops._kernel import out_dtype, requantized, saturate, saturate_int8, scale_zp
from edgeact.ops.spec import Builtin


# ---- emulator kernels ---------------------------------------------------------------------------------------------
def quantize_op(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    so, zo = scale_zp(graph, op.outputs[0])
    dtype = out_dtype(graph, op)
    if graph.tensors[op.inputs[0]].dtype in ("int8", "int16"):  # requantize: (q - zp_in) * s_in / s_out
        si, zi = scale_zp(graph, op.inputs[0])
        multiplier = float(np.float32(si)) / float(np.float32(so))
        return [requantized(inputs[0].astype(np.int64) - zi, multiplier, zo, rounding, dtype)]
    return [saturate(round_half_away_from_zero(inputs[0].astype(np.float32) / np.float32(so)) + zo, dtype)]


def dequantize_op(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    si, zi = scale_zp(graph, op.inputs[0])
    return [((inputs[0].astype(np.int32) - zi).astype(np.float32) * np.float32(si)).astype(np.float32)]


# ---- the specs ----------------------------------------------------------------------------------------------------
def xnnpack_quantize(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    """XNNPACK's QUANTIZE of float32 to int8: x * (1/s) in float32, ties to even (a requantization, or an int16
    output, which XNNPACK does not take, runs the reference)."""
    if graph.tensors[op.inputs[0]].dtype != "float32":
        return quantize_op(graph, op, inputs, rounding)
    if out_dtype(graph, op) == "int16":  # not delegated: LiteRT's optimized int16 QUANTIZE
        return [litert_int16_quantize(graph, op, inputs[0])]
    so, zo = scale_zp(graph, op.outputs[0])
    scaled = inputs[0].astype(np.float32) * (np.float32(1.0) / np.float32(so))
    return [saturate_int8(round_half_to_even(scaled.astype(np.float64)) + zo)]


def litert_int16_quantize(graph, op, x: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    """LiteRT's optimized float32 -> int16 QUANTIZE on x86 (NEON code through NEON_2_SSE): blocks of 8 values times
    float32(1 / s), rounded to nearest even; the remaining values divided by s in double, rounded half away."""
    so, zo = scale_zp(graph, op.outputs[0])
    flat = x.astype(np.float32).reshape(-1)
    blocked = (flat.size // 8) * 8
    inverse = np.float32(1.0 / float(np.float32(so)))
    head = round_half_to_even((flat[:blocked] * inverse).astype(np.float64))
    tail = round_half_away_from_zero(flat[blocked:].astype(np.float64) / float(np.float32(so)))
    return saturate(np.concatenate([head, tail]) + zo, "int16").reshape(x.shape)


BUILTINS = (
    Builtin("QUANTIZE", quantize_op, ("QuantizeOptions", {}), arithmetic={"xnnpack": xnnpack_quantize}),
    Builtin("DEQUANTIZE", dequantize_op, ("DequantizeOptions", {})),
)

SPECS = ()
