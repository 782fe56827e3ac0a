"""Per-op lowerings to TFLite builtins, as a table: (domain, op_type) -> function(ctx, node, dtype), read from the
op specs (:mod:`edgeact.ops`); activations lower here, by their planned form (builtin or GATHER table).

``dtype`` is ``int8`` when the plan quantized the node (the plan then holds a grid for every float value it reads
and writes, else the export stops), else ``float32`` (then the context inserts DEQUANTIZE before and QUANTIZE after,
where neighbours are int8). A float activation lowers to its registry entry's float form (``float_tflite``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgeact.activations import Activation, standard_activation
from edgeact.elementwise import is_elementwise_call
from edgeact.exporters.tflite.lower import FLOAT, INT8, Lowering, UnsupportedOpError
from edgeact.graph.view import GraphView, NodeView
from edgeact.ops._lowering import layout_for, table_lookup
from edgeact.ops.float_unary import FLOAT_UNARY
from edgeact.ops.table import SPECS
from edgeact.planning.registry import activation_of
from edgeact.planning.target_forms import BUILTIN, TABLE

Lowerer = Callable[[Lowering, NodeView, str], None]


# ---- activations -------------------------------------------------------------------------------------------------
def lower_activation(ctx: Lowering, node: NodeView, dtype: str) -> None:
    """int8: the planned form (the exact builtin, or the GATHER table); float: the float op(s)."""
    x, y = node.inputs[0], node.outputs[0]
    layout = layout_for(ctx, [x])
    if dtype == FLOAT:
        _float_activation(ctx, node, activation_of(node, ctx.view), layout)
        return
    plan = ctx.activation_plan(node)
    form = plan.forms.get("tflite")
    if form is None or form.kind not in (BUILTIN, TABLE):
        raise ctx.unsupported(node, f"the plan (target {ctx.plan.target}) holds no int8 TFLite form for it")
    source = ctx.get(x, INT8, layout, node.name)
    out = ctx.output(node, y, INT8, layout)
    if form.kind == BUILTIN:
        ctx.graph.op(form.op, [source], [out], node.name, **dict(form.options))
        ctx.builtin_ops.append(node.name)
        return
    _table_lookup(ctx, node, source, out, plan.table)


def _table_lookup(ctx: Lowering, node: NodeView, source: int, out: int, table) -> None:  # type: ignore[no-untyped-def]
    """The activation's exact table (CAST -> ADD -> GATHER)."""
    table_lookup(ctx.graph, source, out, table, node.name, node.name)
    ctx.table_ops.append(node.name)


# float32 TFLite form of each non-activation op a fused elementwise chain may hold (a scalar constant operand
# broadcasts); an activation in the chain (Sigmoid, Tanh, HardSwish, Elu, ...) lowers by its registry entry's float form
FLOAT_CHAIN_OPS: dict[str, str] = {
    "Add": "ADD", "Sub": "SUB", "Mul": "MUL", "Div": "DIV", "Pow": "POW", "Max": "MAXIMUM", "Min": "MINIMUM",
    "Relu": "RELU", **FLOAT_UNARY,
}


def _float_chain(ctx: Lowering, node: NodeView, layout: str) -> None:
    """A fused elementwise chain kept float: its original ops, one TFLite builtin each (Clip as MAXIMUM/MINIMUM,
    an activation as its registry entry's float form)."""
    body = ctx.view.body_of(node)
    g = ctx.graph
    source = ctx.get(node.inputs[0], FLOAT, layout, node.name)
    tensors = {body.inputs[0]: source}
    for index, inner in enumerate(body.nodes):
        act = standard_activation(inner.op_type, inner.attributes)
        inputs = [None if not n else tensors[n] if n in tensors else g.constant(
            f"{node.name}/c{index}_{position}", body.values[n].constant.astype(np.float32).reshape(()))
            for position, n in enumerate(inner.inputs)]
        last = inner.outputs[0] == body.outputs[0]
        out = ctx.output(node, node.outputs[0], FLOAT, layout) if last else g.like(source, f"{node.name}/{index}")
        if act is not None:
            _float_steps(ctx, node, act, inputs[0], out, f"{node.name}/{index}_", " (inside the fused chain)")
        elif inner.op_type == "Clip":
            _float_clip(ctx, node, index, inputs, out, source)
        elif inner.op_type in FLOAT_CHAIN_OPS:
            _float_op(ctx, node, index, inner.op_type, [i for i in inputs if i is not None], out, source)
        else:
            raise ctx.unsupported(node, f"float {inner.op_type} (inside the fused chain) has no TFLite builtin")
        tensors[inner.outputs[0]] = out


def _float_clip(ctx: Lowering, node: NodeView, index: int, inputs: list, out: int, source: int) -> None:
    """Clip as MAXIMUM then MINIMUM (the bounds it has); without bounds a copy (RESHAPE)."""
    g = ctx.graph
    bounds = [(op, b) for op, b in zip(("MAXIMUM", "MINIMUM"), inputs[1:3], strict=False) if b is not None]
    current = inputs[0]
    for step, (op, bound) in enumerate(bounds):
        target = out if step == len(bounds) - 1 else g.like(source, f"{node.name}/{index}_{op.lower()}")
        g.op(op, [current, bound], [target], node.name)
        current = target
    if not bounds:  # Clip without bounds copies its input
        g.op("RESHAPE", [current, ctx.int32_constant(f"{node.name}/{index}_shape", g.tensors[source].shape)],
             [out], node.name)


def _float_op(ctx: Lowering, node: NodeView, index: int, op_type: str, operands: list, out: int,
              source: int) -> None:
    """One chain op as its builtin; a variadic Max/Min as a chain of binary MAXIMUM/MINIMUM."""
    op = FLOAT_CHAIN_OPS[op_type]
    if not ctx.runs(op):
        raise ctx.unsupported(node, f"float {op_type} needs {op}")
    while len(operands) > 2:
        partial = ctx.graph.like(source, f"{node.name}/{index}_{len(operands)}")
        ctx.graph.op(op, operands[:2], [partial], node.name)
        operands = [partial, *operands[2:]]
    ctx.graph.op(op, operands, [out], node.name)


def _float_activation(ctx: Lowering, node: NodeView, act: Activation, layout: str) -> None:
    if is_elementwise_call(node):
        _float_chain(ctx, node, layout)
        return
    source = ctx.get(node.inputs[0], FLOAT, layout, node.name)
    _float_steps(ctx, node, act, source, ctx.output(node, node.outputs[0], FLOAT, layout), f"{node.name}/", "")


def _float_steps(ctx: Lowering, node: NodeView, act: Activation, source: int, out: int, prefix: str,
                 where: str) -> None:
    """The activation's float form, as its registry entry declares it (``float_tflite``): each step one builtin."""
    steps = act.float_steps()
    if not steps:
        raise ctx.unsupported(node, f"float {act.name}{where} has no TFLite form (its registry entry declares none"
                                    f"{' for these parameters' if act.float_tflite else ''})")
    for step in steps:
        if not ctx.runs(step.op):
            raise ctx.unsupported(node, f"float {act.name}{where} needs {step.op}, which the target has no kernel for")
    current = source
    for number, step in enumerate(steps):
        target = out if number == len(steps) - 1 else ctx.graph.like(source, prefix + step.suffix)
        operands = [source if o == "x" else current if o == "y" else ctx.graph.constant(
            f"{prefix}{step.suffix}_c", np.float32(step.constant(o, act.params))) for o in step.operands]
        ctx.graph.op(step.op, operands, [target], node.name, **step.options_for(act.params))
        current = target


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

