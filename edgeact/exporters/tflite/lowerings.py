"""Per-op lowerings to TFLite builtins, as a table: (domain, op_type) -> function(ctx, node, dtype), read from the
op specs (:mod:`edgeact.ops`); activations lower by :func:`edgeact.ops.activations.lower_activation`, by their
planned form (builtin or GATHER table).

``dtype`` is ``int8`` when the plan quantized the node (the plan then holds a grid for every float value it reads
and writes, else the export stops), ``int16`` when one of those grids is int16 (the node runs TFLite's 16x8 kernel;
an int8 value it reads or writes is widened exactly, ``Lowering.grid_as``), else ``float32`` (then the context
inserts DEQUANTIZE before and QUANTIZE after, where neighbours are quantized).
A float activation lowers to its registry entry's float form (``float_tflite``).
"""

from __future__ import annotations

from collections.abc import Callable

from edgeact.exporters.tflite.lower import FLOAT, INT8, Lowering, UnsupportedOpError
from edgeact.graph.view import GraphView, NodeView
from edgeact.ops.activations import lower_activation
from edgeact.ops.table import SPECS
from edgeact.planning.registry import activation_of

Lowerer = Callable[[Lowering, NodeView, str], None]


LOWERINGS: dict[tuple[str, str], Lowerer] = {key: spec.lower for key, spec in SPECS.items() if spec.lower is not None}


def lowering_for(node: NodeView, view: GraphView | None = None) -> Lowerer | None:
    if activation_of(node, view) is not None:
        return lower_activation
    return LOWERINGS.get((node.domain, node.op_type))


def _check_int8(ctx: Lowering, node: NodeView) -> None:
    """A node the plan made int8 has a grid on every float value it reads or writes (the planner falls back to
    float where one cannot have a grid); the exporter never changes a node's precision itself."""
    missing = [name for name in node.outputs if name and ctx.grid(name) is None]
    for name in node.inputs:
        value = ctx.view.values.get(ctx.resolve(name)) if name else None
        if value is not None and value.is_float and value.constant is None and ctx.grid(name) is None:
            missing.append(name)
    if missing:
        raise ctx.unsupported(node, f"the plan made it int8 but holds no int8 grid for {missing[0]!r}")


def _check_int16(ctx: Lowering, node: NodeView, ops: list) -> None:  # type: ignore[type-arg]
    """Every op a node lowered to that reads or writes int16 is one the target runs 16x8 (its profile's
    ``int16_ops``): a 16x8 model the device cannot run is never written."""
    for op in ops:
        tensors = [ctx.graph.tensors[i] for i in (*op.inputs, *op.outputs) if i >= 0]
        if any(t.dtype == "int16" for t in tensors) and not ctx.target.runs_int16(op.op):
            missing = f"no 16x8 {op.op} kernel (its profile's int16_ops)"
            raise UnsupportedOpError(f"node {node.name!r} ({node.op_type}): target {ctx.target.name} has {missing} "
                                     "for its int16 values; keep them int8 (or float), or export ONNX",
                                     node.name, missing)


def _io_dtype(ctx: Lowering, name: str, role: str) -> str:
    """A float graph input or output's type in the .tflite: int8 where the plan asks for int8 I/O and gives it an
    int8 grid (the caller feeds and reads its codes), else float32 (noted, with why, when int8 was asked for)."""
    if ctx.plan is None or ctx.plan.io != INT8:
        return FLOAT
    grid = ctx.grid(name)
    if grid is not None and grid.dtype == INT8:
        return INT8
    why = (f"the plan gives it an {grid.dtype} grid" if grid is not None else
           "the plan gives it no int8 grid (it is read or written only by float ops)")
    ctx.io_float.append((role, name, why))
    return FLOAT


def lower_graph(ctx: Lowering) -> Lowering:
    """Lower every node of ``ctx.view`` in order; graph inputs and outputs in ONNX order: float32 (int8 codes on their
    planned grid with the plan's int8 I/O), integer inputs as they are."""
    quantized = {name for name, _ in ctx.plan.quantized} if ctx.plan is not None else set()
    for name in ctx.view.inputs:
        value = ctx.view.values[name]
        integer = "int32" if value.dtype == "int64" else value.dtype  # TFLM has no int64: int32 token ids
        dtype = _io_dtype(ctx, name, "input") if value.is_float else integer
        quant = ctx.grid_as(name, dtype) if dtype == INT8 else None
        ctx.graph.inputs.append(ctx.put(name, ctx.graph.tensor(name, ctx.shape(name), dtype, quant), dtype))
    for node in ctx.view.nodes:
        lowering = lowering_for(node, ctx.view)
        if lowering is None:
            raise UnsupportedOpError(
                f"node {node.name!r}: op {node.domain + '::' if node.domain else ''}{node.op_type} has no TFLite "
                f"lowering (target {ctx.target.name}); keep it out of the model or export ONNX"
            )
        if node.name in quantized:
            _check_int8(ctx, node)
        emitted = len(ctx.graph.ops)
        if node.name in ctx.plan_islands():  # float32 between its planned grids, inside the device's fast path
            lowering(ctx, node, FLOAT)
            for name in node.outputs:
                if name and ctx.grid(name) is not None:
                    ctx.round_onto_grid(name, ctx.node_dtype(node), node.name)
            ctx.island_ops.append(node.name)
        else:
            lowering(ctx, node, ctx.node_dtype(node) if node.name in quantized else FLOAT)
        ctx.settle(node)
        _check_int16(ctx, node, ctx.graph.ops[emitted:])
    for name in ctx.view.outputs:
        emitted = len(ctx.graph.ops)
        index = ctx.get(name, _io_dtype(ctx, name, "output"), "nchw", "outputs")
        producer = ctx.view.producer(ctx.resolve(name))
        if producer is not None:
            _check_int16(ctx, producer, ctx.graph.ops[emitted:])
        ctx.graph.tensors[index].name = _free_name(ctx, name, index)
        ctx.graph.outputs.append(index)
    return ctx


def _free_name(ctx: Lowering, name: str, index: int) -> str:
    """Graph outputs carry the ONNX output names (another tensor holding the name is renamed)."""
    for other, tensor in enumerate(ctx.graph.tensors):
        if other != index and tensor.name == name:
            tensor.name = f"{name}/inner"
    return name

