"""Softmax (ONNX's, and the fused ai.edgeact decomposition) -> SOFTMAX over the last axis."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgeact.domain import EDGEACT_DOMAIN
from edgeact.errors import EdgeactError
from edgeact.numerics.exp_table import softmax_exp_table
from edgeact.numerics.fixed_point import (
    calculate_input_radius,
    exp_on_negative_values,
    get_reciprocal,
    preprocess_softmax_scaling,
    rescale,
    rounding_divide_by_pots,
    wrap_int32,
)
from edgeact.numerics.requantize import multiply_by_quantized_multiplier, saturating_rounding_doubling_high_mul
from edgeact.numerics.rounding import round_half_away_from_zero
from edgeact.numerics.softmax16 import OUTPUT_SCALE, softmax_int16
from edgeact.ops._kernel import is_float, is_int16, saturate_int8, scale_zp
from edgeact.ops.spec import Builtin, OnnxEmission, OpQuantizer, OpSpec, Role

if TYPE_CHECKING:
    from edgeact.exporters.tflite.lower import Lowering
    from edgeact.graph.view import NodeView


# ---- TFLite lowering ----------------------------------------------------------------------------------------------
def lower_softmax(ctx: Lowering, node: NodeView, dtype: str) -> None:
    rank = ctx.rank(node.inputs[0])
    axis = int(node.attributes.get("axis", -1)) % rank
    layout = "nhwc" if rank == 4 and axis == 1 and ctx.layouts(node.inputs[0]) == {"nhwc"} else "nchw"
    if layout == "nchw" and axis != rank - 1:
        raise ctx.unsupported(node, f"softmax over axis {axis} (TFLite's SOFTMAX is over the last axis)")
    source = ctx.get(node.inputs[0], dtype, layout, node.name)
    ctx.graph.op("SOFTMAX", [source], [ctx.output(node, node.outputs[0], dtype, layout)], node.name, beta=1.0)


# ---- emulator kernels ---------------------------------------------------------------------------------------------
_SCALED_DIFF_INTEGER_BITS, _ACCUMULATION_INTEGER_BITS = 5, 12  # Q5.26 input differences, Q12.19 sum of exps


def _float_softmax(op, x: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    beta = np.float32(op.options.get("beta", 1.0))
    shifted = beta * (x - x.max(axis=-1, keepdims=True))
    e = np.exp(shifted.astype(np.float64))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def _softmax_int16(graph, op, x: np.ndarray, real: type) -> np.ndarray:  # type: ignore[no-untyped-def]
    """TFLite's int16 SOFTMAX (tables in double on LiteRT, float32 on TFLite Micro); output grid (1/32768, 0)."""
    if scale_zp(graph, op.outputs[0]) != (OUTPUT_SCALE, 0):
        raise EdgeactError(f"SOFTMAX {op.node!r}: int16 output grid {scale_zp(graph, op.outputs[0])}, but TFLite's "
                           "int16 kernel writes (1/32768, 0)")
    return softmax_int16(x, scale_zp(graph, op.inputs[0])[0], float(op.options.get("beta", 1.0)), real)


def tflm_softmax(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    """TFLite Micro: the reference kernels, its int16 tables built in float32."""
    if is_int16(graph, op):
        return [_softmax_int16(graph, op, inputs[0], np.float32)]
    return softmax(graph, op, inputs, rounding)


def softmax(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    """TFLite's reference SOFTMAX (LiteRT's BUILTIN_REF, TFLite Micro): int8 in gemmlowp fixed point
    (reference_ops::Softmax, with the parameters of PreprocessSoftmaxScaling and CalculateInputRadius), as the
    double-rounding builds compute it (``rounding`` is not used). Input differences below diff_min give -128."""
    if is_float(graph, op):
        return [_float_softmax(op, inputs[0].astype(np.float32))]
    if is_int16(graph, op):
        return [_softmax_int16(graph, op, inputs[0], np.float64)]
    if scale_zp(graph, op.outputs[0]) != (1.0 / 256.0, -128):
        raise EdgeactError(f"SOFTMAX {op.node!r}: int8 output grid {scale_zp(graph, op.outputs[0])}, but TFLite's "
                           "kernel writes (1/256, -128) only")
    multiplier, left_shift = preprocess_softmax_scaling(
        float(np.float32(op.options.get("beta", 1.0))), float(np.float32(scale_zp(graph, op.inputs[0])[0])),
        _SCALED_DIFF_INTEGER_BITS)
    diff_min = -calculate_input_radius(_SCALED_DIFF_INTEGER_BITS, left_shift)
    x = inputs[0].astype(np.int64)
    diff = x - x.max(axis=-1, keepdims=True)
    kept = diff >= diff_min
    scaled = multiply_by_quantized_multiplier(np.where(kept, diff, 0), multiplier, left_shift)  # ...GreaterThanOne
    exps = exp_on_negative_values(scaled, _SCALED_DIFF_INTEGER_BITS)  # Q0.31
    terms = np.where(kept, rescale(exps, 0, _ACCUMULATION_INTEGER_BITS), 0)
    reciprocal, bits_over_unit = get_reciprocal(wrap_int32(terms.sum(axis=-1, keepdims=True)),
                                                _ACCUMULATION_INTEGER_BITS)
    exponent = bits_over_unit + 31 - 8  # to the 8-bit output's unit, 1/256
    codes = rounding_divide_by_pots(saturating_rounding_doubling_high_mul(reciprocal, exps), exponent)
    return [np.where(kept, np.clip(codes - 128, -128, 127), -128).astype(np.int8)]


def xnnpack_softmax(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    """LiteRT's default interpreter: XNNPACK takes only float SOFTMAX, so int8 runs LiteRT's optimized kernel, which
    on x86-64 is a float32 table of expf (PopulateSoftmaxLookupTable, optimized_ops::Softmax)."""
    if is_float(graph, op) or is_int16(graph, op):  # int16: LiteRT's reference SoftmaxInt16 in both resolvers
        return softmax(graph, op, inputs, rounding)
    si, _ = scale_zp(graph, op.inputs[0])
    so, zo = scale_zp(graph, op.outputs[0])
    table = softmax_exp_table(float(si), float(op.options.get("beta", 1.0)))  # exp(-s * beta * d), d = 0..255
    x = inputs[0].astype(np.int64)
    exps = table[x.max(axis=-1, keepdims=True) - x]
    total = np.zeros(exps.shape[:-1], dtype=np.float32)
    for column in np.moveaxis(exps, -1, 0):  # the C loop's order: float32 sums do not reassociate
        total = total + column
    inverse = np.float32(1.0) / (total * np.float32(so))
    probabilities = exps * inverse[..., None]
    return [saturate_int8(round_half_away_from_zero(probabilities.astype(np.float64)) + zo)]


# ---- the specs ----------------------------------------------------------------------------------------------------
BUILTINS = (Builtin("SOFTMAX", softmax, ("SoftmaxOptions", {"beta": 1.0}),
                    arithmetic={"xnnpack": xnnpack_softmax, "tflm": tflm_softmax}),)

# Softmax's grids are the ones TFLite requires, int8 (1/256, -128) and int16 (1/32768, 0): one calibration gives the
# same scales in ONNX and TFLite; an output of exactly 1.0 saturates to 255/256 (32767/32768).
_SOFTMAX = OpQuantizer(Role.COMPUTE, output_range=(0.0, 255.0 / 256.0), output_range_int16=(0.0, 32767.0 / 32768.0))
SPECS = (
    OpSpec("Softmax", _SOFTMAX, lower_softmax, ("SOFTMAX",)),
    OpSpec("Softmax", _SOFTMAX, lower_softmax, ("SOFTMAX",), domain=EDGEACT_DOMAIN, onnx=OnnxEmission.INLINE),
)
