"""Per-op lowerings to TFLite builtins, as a table: (domain, op_type) -> function(ctx, node, dtype), read from the
op specs (:mod:`edgeact.ops`); activations lower by :func:`edgeact.ops.activations.lower_activation`, by their
planned form (builtin or GATHER table).

``dtype`` is ``int8`` when the plan quantized the node (the plan then holds a grid for every float value it reads
and writes, else the export stops), else ``float32`` (then the context inserts DEQUANTIZE before and QUANTIZE after,
where neighbours are int8). A float activation lowers to its registry entry's float form (``float_tflite``).
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


def lower_graph(ctx: Lowering) -> Lowering:
    """Lower every node of ``ctx.view`` in order; graph inputs and outputs stay float32/int, in ONNX order."""
    quantized = {name for name, _ in ctx.plan.quantized} if ctx.plan is not None else set()
    for name in ctx.view.inputs:
        value = ctx.view.values[name]
        dtype = FLOAT if value.is_float else ("int32" if value.dtype == "int64" else value.dtype)  # TFLM: no int64
        ctx.graph.inputs.append(ctx.put(name, ctx.graph.tensor(name, ctx.shape(name), dtype), dtype))
    for node in ctx.view.nodes:
        lowering = lowering_for(node, ctx.view)
        if lowering is None:
            raise UnsupportedOpError(
                f"node {node.name!r}: op {node.domain + '::' if node.domain else ''}{node.op_type} has no TFLite "
                f"lowering (target {ctx.target.name}); keep it out of the model or export ONNX"
            )
        if node.name in quantized:
            _check_int8(ctx, node)
        lowering(ctx, node, INT8 if node.name in quantized else FLOAT)
    for name in ctx.view.outputs:
        index = ctx.get(name, FLOAT, "nchw", "outputs")
        ctx.graph.tensors[index].name = _free_name(ctx, name, index)
        ctx.graph.outputs.append(index)
    return ctx


def _free_name(ctx: Lowering, name: str, index: int) -> str:
    """Graph outputs carry the ONNX output names (another tensor holding the name is renamed)."""
    for other, tensor in enumerate(ctx.graph.tensors):
        if other != index and tensor.name == name:
            tensor.name = f"{name}/inner"
    return name

