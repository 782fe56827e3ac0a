"""Elementwise binary ops: Add, Sub, Mul, Div (int8 Div by a constant: MUL by its planned reciprocal), and
the float-only binary builtins a float island or a fused chain uses (MAXIMUM, MINIMUM, POW, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgeact.numerics.requantize import (
    quantize_multiplier,
    requantize,
    rounding_divide_by_pot,
    rounding_doubling_high_mul,
)
from edgeact.numerics.rounding import round_half_to_even
from edgeact.ops._kernel import (
    float_requant,
    is_float,
    is_int16,
    out_dtype,
    requantized,
    saturate,
    saturate_int8,
    scale_zp,
)
from edgeact.ops._lowering import codes_as, layout_for, operand_constant
from edgeact.ops.layout import FLOAT, INT16, TO_NHWC
from edgeact.ops.spec import BINARY, Builtin, OpQuantizer, OpSpec, Role

if TYPE_CHECKING:
    from edgeact.exporters.tflite.lower import Lowering
    from edgeact.graph.view import NodeView
    from edgeact.ops.spec import Lowerer


# ---- TFLite lowering ----------------------------------------------------------------------------------------------
def _lower_binary(op: str) -> Lowerer:
    def lower(ctx: Lowering, node: NodeView, dtype: str) -> None:
        y = node.outputs[0]
        layout = layout_for(ctx, list(node.inputs))
        shape = ctx.shape(y)
        inputs = []
        for index, name in enumerate(node.inputs):
            if ctx.constant(name) is not None:
                inputs.append(operand_constant(ctx, node, index, dtype, shape, layout))
            else:
                inputs.append(ctx.get(name, dtype, layout, node.name))
        general = {"potScaleInt16": False} if dtype == INT16 and op in ("ADD", "SUB") else {}  # any int16 scales
        ctx.graph.op(op, inputs, [ctx.output(node, y, dtype, layout)], node.name, **general)

    return lower


def lower_div(ctx: Lowering, node: NodeView, dtype: str) -> None:
    """Div; by a constant in int8: MUL by the planned int8 reciprocal."""
    divisor = ctx.constant(node.inputs[1])
    if dtype == FLOAT or divisor is None:
        _lower_binary("DIV")(ctx, node, FLOAT if divisor is None else dtype)
        return
    plan = ctx.constant_plan(node, 1, "reciprocal")
    if plan is None:
        raise ctx.unsupported(node, f"{dtype} Div by {node.inputs[1]!r}, whose reciprocal has no int8 plan")
    layout = layout_for(ctx, [node.inputs[0]])
    grid, data = codes_as(plan.grid, plan.codes, dtype)
    data = data.reshape((1,) * (ctx.rank(node.outputs[0]) - data.ndim) + data.shape)
    data = np.transpose(data, TO_NHWC) if layout == "nhwc" else data
    operand = ctx.graph.constant(f"{node.inputs[1]}/reciprocal", data, grid)
    source = ctx.get(node.inputs[0], dtype, layout, node.name)
    ctx.graph.op("MUL", [source, operand], [ctx.output(node, node.outputs[0], dtype, layout)], node.name)


# ---- emulator kernels ---------------------------------------------------------------------------------------------
FLOAT_BINARY = {
    "ADD": np.add, "SUB": np.subtract, "MUL": np.multiply, "DIV": np.divide, "MAXIMUM": np.maximum,
    "MINIMUM": np.minimum, "SQUARED_DIFFERENCE": lambda a, b: (a - b) * (a - b),
}


def add_sub(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    a, b = inputs
    out = graph.tensors[op.outputs[0]]
    if out.quant is None:  # float32, or the int32 ADD of a table lookup (exact)
        return [FLOAT_BINARY[op.op](a, b).astype(out.dtype)]
    (s1, z1), (s2, z2), (so, zo) = (scale_zp(graph, i) for i in (*op.inputs, op.outputs[0]))
    left_shift = 15 if out.dtype == "int16" else 20  # int16: TFLite's general-scale path (pot_scale_int16 false)
    twice_max = 2.0 * max(float(np.float32(s1)), float(np.float32(s2)))
    shifted = [(v.astype(np.int64) - z) * (1 << left_shift) for v, z in ((a, z1), (b, z2))]
    scaled = [requantize(v, float(np.float32(s)) / twice_max, rounding)
              for v, s in zip(shifted, (s1, s2), strict=True)]
    total = scaled[0] + scaled[1] if op.op == "ADD" else scaled[0] - scaled[1]
    output_multiplier = twice_max / ((1 << left_shift) * float(np.float32(so)))
    return [requantized(total, output_multiplier, zo, rounding, out.dtype)]


def mul(graph, op, inputs, rounding, in_double: bool = False):  # type: ignore[no-untyped-def]
    """TFLite's MUL: the product of centred codes times s1 * s2 / s_out, a multiplier LiteRT computes in float32
    from the float32 scales and TFLite Micro in double (``in_double``)."""
    a, b = inputs
    if is_float(graph, op):
        return [(a * b).astype(np.float32)]
    (s1, z1), (s2, z2), (so, zo) = (scale_zp(graph, i) for i in (*op.inputs, op.outputs[0]))
    acc = (a.astype(np.int64) - z1) * (b.astype(np.int64) - z2)
    f32 = float if in_double else np.float32
    multiplier = float(f32(f32(s1) * f32(s2)) / f32(so))
    return [requantized(acc, multiplier, zo, rounding, out_dtype(graph, op))]


def tflm_mul(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    return mul(graph, op, inputs, rounding, in_double=True)


def _neon_int16_add(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    """LiteRT's optimized int16 ADD without broadcast, as the x86 wheel runs it (NEON code through NEON_2_SSE):
    blocks of 16 values scale each input by one left shift and a round-half-up doubling high multiply, the rest
    take the reference formula."""
    a, b = (np.asarray(v, dtype=np.int64).reshape(-1) for v in inputs)
    (s1, _), (s2, _), (so, zo) = (scale_zp(graph, i) for i in (*op.inputs, op.outputs[0]))
    twice_max = 2.0 * max(float(np.float32(s1)), float(np.float32(s2)))
    blocked = (a.size // 16) * 16
    scaled = []
    for values, scale in ((a[:blocked], s1), (b[:blocked], s2)):
        multiplier, shift = quantize_multiplier(float(np.float32(scale)) / twice_max)
        count = 15 + shift
        shifted = values << count if count >= 0 else values >> -count
        scaled.append(rounding_doubling_high_mul(shifted, multiplier))
    multiplier, shift = quantize_multiplier(twice_max / ((1 << 15) * float(np.float32(so))))
    head = rounding_divide_by_pot(rounding_doubling_high_mul(scaled[0] + scaled[1], multiplier), -shift)
    tail = add_sub(graph, op, [a[blocked:], b[blocked:]], rounding)[0].reshape(-1)
    out = np.concatenate([saturate(head + zo, "int16"), tail])
    return [out.reshape(inputs[0].shape)]


def xnnpack_add_sub(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    """XNNPACK's ADD/SUB: 20-bit fixed-point multipliers of s_a/s_out and s_b/s_out (float32), a round-half-up
    shift. Unquantized ADDs (float, or the int32 index arithmetic of a table) and int16 ones (not delegated) run the
    reference."""
    if is_int16(graph, op) and op.op == "ADD" and inputs[0].shape == inputs[1].shape:
        return _neon_int16_add(graph, op, inputs, rounding)
    if graph.tensors[op.outputs[0]].quant is None or is_int16(graph, op):
        return add_sub(graph, op, inputs, rounding)
    (sa, za), (sb, zb), (so, zo) = (scale_zp(graph, i) for i in (*op.inputs, op.outputs[0]))
    a_scale, b_scale = np.float32(np.float32(sa) / np.float32(so)), np.float32(np.float32(sb) / np.float32(so))
    if op.op == "SUB":
        b_scale = -b_scale
    exponent = int(np.frexp(max(abs(a_scale), abs(b_scale)))[1]) - 1
    shift = 20 - exponent
    a_mult = int(round_half_to_even(np.float64(abs(a_scale)) * 2.0**shift)) * (1 if a_scale >= 0 else -1)
    b_mult = int(round_half_to_even(np.float64(abs(b_scale)) * 2.0**shift)) * (1 if b_scale >= 0 else -1)
    bias = (1 << (shift - 1)) - a_mult * za - b_mult * zb
    total = bias + inputs[0].astype(np.int64) * a_mult + inputs[1].astype(np.int64) * b_mult
    return [saturate_int8((total >> shift) + zo)]


def xnnpack_mul(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    """XNNPACK's MUL: the product of centred codes times s_a * s_b / s_out in float32, ties to even (int16: not
    delegated, the reference)."""
    if is_float(graph, op) or is_int16(graph, op):
        return mul(graph, op, inputs, rounding)
    (sa, za), (sb, zb), (so, zo) = (scale_zp(graph, i) for i in (*op.inputs, op.outputs[0]))
    scale = np.float32(np.float32(np.float32(sa) * np.float32(sb)) / np.float32(so))
    acc = (inputs[0].astype(np.int64) - za) * (inputs[1].astype(np.int64) - zb)
    return [float_requant(acc, scale, zo)]


def float_binary(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    a, b = inputs
    return [FLOAT_BINARY[op.op](a.astype(np.float32), b.astype(np.float32)).astype(np.float32)]


def power(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return [np.power(inputs[0].astype(np.float32), inputs[1].astype(np.float32)).astype(np.float32)]


# ---- the specs ----------------------------------------------------------------------------------------------------
BUILTINS = (
    Builtin("ADD", add_sub, ("AddOptions", {"fusedActivationFunction": 0, "potScaleInt16": True}),
            arithmetic={"xnnpack": xnnpack_add_sub}),
    Builtin("SUB", add_sub, ("SubOptions", {"fusedActivationFunction": 0, "potScaleInt16": True}),
            arithmetic={"xnnpack": xnnpack_add_sub}),
    Builtin("MUL", mul, ("MulOptions", {"fusedActivationFunction": 0}),
            arithmetic={"xnnpack": xnnpack_mul, "tflm": tflm_mul}),
    Builtin("DIV", float_binary, ("DivOptions", {"fusedActivationFunction": 0})),
    *(Builtin(op, float_binary) for op in ("MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE")),
    Builtin("POW", power),
)

SPECS = (
    OpSpec("Add", BINARY, _lower_binary("ADD"), ("ADD",)),
    OpSpec("Sub", BINARY, _lower_binary("SUB"), ("SUB",)),
    OpSpec("Mul", BINARY, _lower_binary("MUL"), ("MUL",)),
    # the divisor: float in ONNX, an int8 reciprocal in TFLite
    OpSpec("Div", OpQuantizer(Role.COMPUTE, reciprocal=1), lower_div, ("DIV", "MUL")),
)
