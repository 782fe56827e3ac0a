"""Helpers the TFLite lowerings share: weights, biases and constant operands from the plan, convolution and pooling
padding, the layout a value is kept in, and the CAST -> ADD -> GATHER table lookup."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from edgeact.numerics import PerChannelQParams, QParams
from edgeact.ops.layout import FLOAT, INT16, TO_NHWC, WIDENING

if TYPE_CHECKING:
    from edgeact.exporters.tflite.lower import Lowering
    from edgeact.graph.view import NodeView
    from edgeact.numerics.tables import Table
    from edgeact.tflite.graph import LoweredGraph

SAME, VALID = 0, 1


def weight_constant(ctx: Lowering, node: NodeView, index: int, dtype: str, arrange: Callable[[np.ndarray], np.ndarray],
            axis: int) -> int:
    """Weight constant rearranged for TFLite (``arrange``), int8 per channel on ``axis`` or float32."""
    name = node.inputs[index]
    if dtype == FLOAT:
        return ctx.graph.constant(f"{name}/float", arrange(ctx.constant(name).astype(np.float32)))
    plan = ctx.constant_plan(node, index)
    if plan is None:
        raise ctx.unsupported(node, f"weight {name!r} has no int8 plan")
    grid = plan.grid
    if isinstance(grid, PerChannelQParams):
        grid = PerChannelQParams(grid.scales, axis, "int8")
    return ctx.graph.constant(f"{name}/int8", arrange(plan.codes.astype(np.int8)), grid)


def bias_constant(ctx: Lowering, node: NodeView, index: int, dtype: str) -> int:
    """The bias (LiteRT's kernels want one: a zero one where the model has none), float32 or the planned int32
    (int64 for a 16x8 op)."""
    absent = index >= len(node.inputs) or not node.inputs[index]
    name = f"{node.name}/zero_bias" if absent else node.inputs[index]
    if dtype == FLOAT:
        if absent:
            output_shape = ctx.shape(node.outputs[0])
            channels = output_shape[1] if node.op_type == "Conv" else output_shape[-1]
            return ctx.graph.constant(name, np.zeros(channels, dtype=np.float32))
        return ctx.graph.constant(f"{name}/float", ctx.constant(name).astype(np.float32).reshape(-1))
    plan = ctx.constant_plan(node, index)
    if plan is None:
        raise ctx.unsupported(node, f"bias {name!r} has no int32 plan")
    if dtype == INT16:  # 16x8 kernels take an int64 bias; a widened int8 input scales its codes by 128 (exact)
        widening = round(ctx.grid(node.inputs[0]).scale / ctx.grid_as(node.inputs[0], INT16).scale)
        codes = plan.codes.astype(np.int64).reshape(-1) * widening
        grid = PerChannelQParams(tuple(s / widening for s in plan.grid.scales), plan.grid.axis, "int64")
        return ctx.graph.constant(name if absent else f"{name}/int64", codes, grid)
    return ctx.graph.constant(name if absent else f"{name}/int32", plan.codes.astype(np.int32).reshape(-1),
                              plan.grid)


def operand_constant(ctx: Lowering, node: NodeView, index: int, dtype: str, shape: tuple[int, ...], layout: str) -> int:
    """A constant operand of an elementwise op, broadcast to ``shape``'s rank and laid out like the data."""
    name = node.inputs[index]
    values = ctx.constant(name)
    plan = ctx.constant_plan(node, index) if dtype != FLOAT else None
    if dtype != FLOAT and plan is None:
        raise ctx.unsupported(node, f"constant {name!r} has no int8 plan")
    if plan is not None:
        grid, data = codes_as(plan.grid, plan.codes, dtype)
    else:
        grid, data = None, values.astype(np.float32)
    data = data.reshape((1,) * (len(shape) - data.ndim) + data.shape)
    if layout == "nhwc":
        data = np.transpose(data, TO_NHWC)
    return ctx.graph.constant(f"{name}/{node.name}", data, grid)


def codes_as(grid: QParams, codes: np.ndarray, dtype: str) -> tuple[QParams, np.ndarray]:
    """Planned codes in a ``dtype`` tensor: as planned, or int8 codes widened to int16 without loss ((q - zp) * 128
    on scale s / 128, zero point 0) for a 16x8 op."""
    if grid.dtype == dtype:
        return grid, codes.astype(dtype)
    if dtype == INT16 and isinstance(grid, QParams) and grid.dtype == "int8":
        widened = (codes.astype(np.int32) - grid.zero_point) * WIDENING
        return QParams(grid.scale / WIDENING, 0, INT16), widened.astype(np.int16)
    raise ValueError(f"cannot hold {grid.dtype} codes in a {dtype} tensor")


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def padding_of(ctx: Lowering, node: NodeView, spatial: tuple[int, int], kernel, strides, dilations):  # type: ignore[no-untyped-def]
    """SAME, VALID, or explicit pads [[top, bottom], [left, right]] for a separate PAD op."""
    if node.attributes.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID", "SAME_UPPER"):
        raise ctx.unsupported(node, f"auto_pad {node.attributes['auto_pad']}")
    if node.attributes.get("auto_pad") == "SAME_UPPER":
        return SAME, None
    pads = list(node.attributes.get("pads", [0, 0, 0, 0]))
    explicit = [(pads[0], pads[2]), (pads[1], pads[3])]
    if not any(pads):
        return VALID, None
    if explicit == [_same_pads(spatial[i], kernel[i], strides[i], dilations[i]) for i in range(2)]:
        return SAME, None
    return VALID, explicit


def pad_input(ctx: Lowering, node: NodeView, source: int, explicit, lowest: bool = False) -> int:  # type: ignore[no-untyped-def]
    """``source`` (NHWC) padded by ``explicit``: with real 0 (PAD fills int8 with the zero point) or, for max
    pooling, with the lowest value of its type (PADV2)."""
    if explicit is None:
        return source
    tensor = ctx.graph.tensors[source]
    (top, bottom), (left, right) = explicit
    shape = (tensor.shape[0], tensor.shape[1] + top + bottom, tensor.shape[2] + left + right, tensor.shape[3])
    padded = ctx.graph.tensor(f"{tensor.name}/padded", shape, tensor.dtype, tensor.quant)
    pads = ctx.int32_constant(f"{node.name}/pads", [[0, 0], [top, bottom], [left, right], [0, 0]])
    if not lowest:
        ctx.graph.op("PAD", [source, pads], [padded], node.name)
        return padded
    if not ctx.runs("PADV2"):
        raise ctx.unsupported(node, "explicit max-pooling pads need PADV2")
    if tensor.dtype == FLOAT:
        value = ctx.graph.constant(f"{node.name}/pad_value", np.asarray([np.finfo(np.float32).min], np.float32))
    else:
        plan = ctx.constant_plan(node, -1, "pad_fill")
        if plan is None:
            raise ctx.unsupported(node, "int8 explicit max-pooling pads with no planned fill code")
        value = ctx.graph.constant(f"{node.name}/pad_value", plan.codes, plan.grid)
    ctx.graph.op("PADV2", [source, pads, value], [padded], node.name)
    return padded


def layout_for(ctx: Lowering, names: list[str]) -> str:
    """nhwc when a rank-4 input exists only channels-last (keep it there), else nchw."""
    for name in names:
        if ctx.constant(name) is None and ctx.rank(name) == 4 and ctx.layouts(name) == {"nhwc"}:
            return "nhwc"
    return "nchw"


def requantized_onto(ctx: Lowering, node: NodeView, source: int, grid) -> int:  # type: ignore[no-untyped-def]
    """``source`` moved onto ``grid`` (int8 or int16) by a requantizing QUANTIZE (itself when it is already there)."""
    tensor = ctx.graph.tensors[source]
    if tensor.quant == grid:
        return source
    moved = ctx.graph.like(source, f"{tensor.name}/requantized", grid.dtype, quant=grid)
    ctx.graph.op("QUANTIZE", [source], [moved], node.name)
    return moved


def table_lookup(graph: LoweredGraph, source: int, out: int, table: Table, prefix: str, node: str) -> None:
    """``out = table[source]`` as CAST(int8 -> int32) -> ADD(-qmin) -> GATHER(256-entry int8 table): exact on LiteRT
    and TFLite Micro, for any function and any grids (the one builder of this lowering; ``prefix`` names the new
    tensors, ``node`` is the ONNX node the ops lower). An int16 table gathers from all 65,536 codes its knots give."""
    wide = graph.like(source, f"{prefix}/codes_int32", "int32")
    index = graph.like(source, f"{prefix}/table_index", "int32")
    graph.op("CAST", [source], [wide], node, table=True)
    offset = graph.constant(f"{prefix}/offset", np.int32(-table.in_q.qmin))  # table index = code - qmin
    graph.op("ADD", [wide, offset], [index], node, table=True)
    values = graph.constant(f"{prefix}/table", table.output_codes().astype(table.out_q.dtype), table.out_q)
    graph.op("GATHER", [values, index], [out], node, table=True, axis=0)
