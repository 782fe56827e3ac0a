"""Matrix products: Gemm, MatMul and the fused ai.edgeact Linear -> FULLY_CONNECTED, or BATCH_MATMUL for two
activations."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgeact.domain import EDGEACT_DOMAIN
from edgeact.ops._kernel import (
    channel_multipliers,
    float_requant_gemm,
    is_float,
    is_int16,
    output_zp,
    requantized,
    requantized_int64,
    scale_zp,
)
from edgeact.ops._lowering import bias_constant, weight_constant
from edgeact.ops.spec import Builtin, OnnxEmission, OpQuantizer, OpSpec, Role

if TYPE_CHECKING:
    from edgeact.exporters.tflite.lower import Lowering
    from edgeact.graph.view import NodeView
    from edgeact.ops._kernel import Arrays
    from edgeact.tflite.graph import LoweredGraph, LoweredOp


# ---- TFLite lowering ----------------------------------------------------------------------------------------------
def _fully_connected(ctx: Lowering, node: NodeView, dtype: str, transposed: bool) -> None:
    x, y = node.inputs[0], node.outputs[0]
    arrange = (lambda w: w) if transposed else (lambda w: np.ascontiguousarray(w.T))
    weight = weight_constant(ctx, node, 1, dtype, arrange, axis=0)
    bias = bias_constant(ctx, node, 2, dtype)
    inputs = [ctx.get(x, dtype, node=node.name), weight, bias]
    ctx.graph.op("FULLY_CONNECTED", inputs, [ctx.output(node, y, dtype)], node.name, keepNumDims=ctx.rank(x) > 2)


def lower_linear(ctx: Lowering, node: NodeView, dtype: str) -> None:
    _fully_connected(ctx, node, dtype, transposed=False)


def lower_gemm(ctx: Lowering, node: NodeView, dtype: str) -> None:
    a = node.attributes
    if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or ctx.rank(node.inputs[0]) != 2:
        raise ctx.unsupported(node, "Gemm with transA, alpha or beta != 1 has no FULLY_CONNECTED form")
    if ctx.constant(node.inputs[1]) is None:
        raise ctx.unsupported(node, "Gemm needs a constant weight")
    _fully_connected(ctx, node, dtype, transposed=bool(a.get("transB", 0)))


def lower_matmul(ctx: Lowering, node: NodeView, dtype: str) -> None:
    a, b = node.inputs
    if ctx.constant(b) is not None and ctx.constant(b).ndim == 2:
        _fully_connected(ctx, node, dtype, transposed=False)
        return
    inputs = [ctx.get(a, dtype, node=node.name), ctx.get(b, dtype, node=node.name)]
    ctx.graph.op("BATCH_MATMUL", inputs, [ctx.output(node, node.outputs[0], dtype)], node.name)


# ---- emulator kernels ---------------------------------------------------------------------------------------------
def fully_connected_acc(graph: LoweredGraph, op: LoweredOp, inputs: Arrays) -> np.ndarray:
    """int32 accumulators (N, channels) of an int8 FULLY_CONNECTED, bias included."""
    x, w, b = inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None
    _, zx = scale_zp(graph, op.inputs[0])
    acc = (x.reshape(-1, w.shape[1]).astype(np.int64) - zx) @ w.T.astype(np.int64)
    return acc + (b.astype(np.int64) if b is not None else 0)


def fully_connected(graph, op, inputs, rounding, int16_in_double: bool = True):  # type: ignore[no-untyped-def]
    """TFLite's FULLY_CONNECTED; 16x8 requantizes in double from the float32 scales (LiteRT) or, as TFLite Micro
    does (``int16_in_double`` false), by the int64 fixed-point multiplier."""
    x, w, b = inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None
    out_shape = graph.tensors[op.outputs[0]].shape
    if is_float(graph, op):
        y = x.reshape(-1, w.shape[1]).astype(np.float32) @ w.T.astype(np.float32)
        return [(y + (b if b is not None else 0)).astype(np.float32).reshape(out_shape)]
    acc = fully_connected_acc(graph, op, inputs)
    multipliers = channel_multipliers(graph, op.inputs[0], op.inputs[1], op.outputs[0])
    if is_int16(graph, op):  # 16x8 (int64 bias): requantized in double from the float32 scales
        return [requantized_int64(acc, multipliers, output_zp(graph, op), in_double=int16_in_double).reshape(
            out_shape)]
    return [requantized(acc, multipliers, output_zp(graph, op), rounding).reshape(out_shape)]


def batch_matmul(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    a, b = inputs
    if is_float(graph, op):
        return [np.matmul(a.astype(np.float32), b.astype(np.float32))]
    (sa, za), (sb, zb), (so, zo) = (scale_zp(graph, i) for i in (*op.inputs, op.outputs[0]))
    acc = np.matmul(a.astype(np.int64) - za, b.astype(np.int64) - zb)
    multiplier = float(np.float32(sa) * np.float32(sb)) / float(np.float32(so))  # TFLite: float32 product of scales
    if is_int16(graph, op):  # int64 accumulators, TFLite's int64 requantization
        return [requantized_int64(acc, [multiplier], zo)]
    return [requantized(acc, multiplier, zo, rounding)]


# ---- the specs ----------------------------------------------------------------------------------------------------
def _gemm_axis(node: NodeView) -> int:
    return 0 if node.attributes.get("transB", 0) else 1


def tflm_fully_connected(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    return fully_connected(graph, op, inputs, rounding, int16_in_double=False)


BUILTINS = (
    Builtin("FULLY_CONNECTED", fully_connected, ("FullyConnectedOptions", {
        "fusedActivationFunction": 0, "weightsFormat": 0, "keepNumDims": False, "asymmetricQuantizeInputs": False}),
        arithmetic={"xnnpack": float_requant_gemm(fully_connected_acc, fully_connected),
                    "tflm": tflm_fully_connected}),
    Builtin("BATCH_MATMUL", batch_matmul, ("BatchMatMulOptions", {"adjX": False, "adjY": False,
                                                                 "asymmetricQuantizeInputs": False})),
)

SPECS = (
    OpSpec("Gemm", OpQuantizer(Role.COMPUTE, weight=1, weight_axis=_gemm_axis, bias=2), lower_gemm,
           ("FULLY_CONNECTED",)),
    # MatMul has no bias input: with a constant 2-D weight, TFLite's FULLY_CONNECTED gets the planned zero one
    OpSpec("MatMul", OpQuantizer(Role.COMPUTE, data_inputs=(0, 1), weight=1, weight_axis=-1, bias=2), lower_matmul,
           ("FULLY_CONNECTED", "BATCH_MATMUL")),
    OpSpec("Linear", OpQuantizer(Role.COMPUTE, weight=1, weight_axis=1, bias=2), lower_linear, ("FULLY_CONNECTED",),
           domain=EDGEACT_DOMAIN, onnx=OnnxEmission.INLINE),
)
