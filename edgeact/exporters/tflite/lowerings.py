"""Per-op lowerings to TFLite builtins, as a table: (domain, op_type) -> function(ctx, node, dtype), read from the
op specs (:mod:`edgeact.ops`); activations lower here, by their planned form (builtin or GATHER table).

``dtype`` is ``int8`` when the planner quantized the node and every input it reads has a grid, else ``float32``
(then the context inserts DEQUANTIZE before and QUANTIZE after, where neighbours are int8).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgeact.activations import REGISTRY, TFLiteBuiltin
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
# activation -> its float32 TFLite builtin (each registry entry's ``tflite`` field)
FLOAT_ACTIVATIONS: dict[str, TFLiteBuiltin] = {
    name: a.tflite for name, a in REGISTRY.items() if a.tflite is not None and a.tflite.float_lowering
}


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


# float32 TFLite form of each op a fused elementwise chain may hold (a scalar constant operand broadcasts)
FLOAT_CHAIN_OPS: dict[str, str] = {
    "Add": "ADD", "Sub": "SUB", "Mul": "MUL", "Div": "DIV", "Pow": "POW", "Max": "MAXIMUM", "Min": "MINIMUM",
    "Relu": "RELU", "Sigmoid": "LOGISTIC", "Tanh": "TANH", "HardSwish": "HARD_SWISH", "Elu": "ELU",  # alpha 1
    **FLOAT_UNARY,
}


def _float_chain(ctx: Lowering, node: NodeView, layout: str) -> None:
    """A fused elementwise chain kept float: its original ops, one TFLite builtin each (Clip as MAXIMUM/MINIMUM)."""
    body = ctx.view.body_of(node)
    g = ctx.graph
    source = ctx.get(node.inputs[0], FLOAT, layout, node.name)
    tensors = {body.inputs[0]: source}
    for index, inner in enumerate(body.nodes):
        if inner.op_type not in FLOAT_CHAIN_OPS and inner.op_type != "Clip":
            raise ctx.unsupported(node, f"float {inner.op_type} (inside the fused chain) has no TFLite builtin")
        if inner.op_type == "Elu" and float(inner.attributes.get("alpha", 1.0)) != 1.0:
            raise ctx.unsupported(node, "float Elu with alpha != 1 (inside the fused chain): TFLite's ELU has none")
        inputs = [None if not n else tensors[n] if n in tensors else g.constant(
            f"{node.name}/c{index}_{position}", body.values[n].constant.astype(np.float32).reshape(()))
            for position, n in enumerate(inner.inputs)]
        last = inner.outputs[0] == body.outputs[0]
        out = ctx.output(node, node.outputs[0], FLOAT, layout) if last else g.like(source, f"{node.name}/{index}")
        if inner.op_type == "Clip":
            bounds = [(op, b) for op, b in zip(("MAXIMUM", "MINIMUM"), inputs[1:3], strict=False) if b is not None]
            current = inputs[0]
            for step, (op, bound) in enumerate(bounds):
                target = out if step == len(bounds) - 1 else g.like(source, f"{node.name}/{index}_{op.lower()}")
                g.op(op, [current, bound], [target], node.name)
                current = target
            if not bounds:  # Clip without bounds copies its input
                g.op("RESHAPE", [current, ctx.int32_constant(f"{node.name}/{index}_shape", g.tensors[source].shape)],
                     [out], node.name)
        else:
            if not ctx.runs(FLOAT_CHAIN_OPS[inner.op_type]):
                raise ctx.unsupported(node, f"float {inner.op_type} needs {FLOAT_CHAIN_OPS[inner.op_type]}")
            operands = [i for i in inputs if i is not None]
            while len(operands) > 2:  # a variadic Max/Min as a chain of binary MAXIMUM/MINIMUM
                partial = g.like(source, f"{node.name}/{index}_{len(operands)}")
                g.op(FLOAT_CHAIN_OPS[inner.op_type], operands[:2], [partial], node.name)
                operands = [partial, *operands[2:]]
            g.op(FLOAT_CHAIN_OPS[inner.op_type], operands, [out], node.name)
        tensors[inner.outputs[0]] = out


def _float_activation(ctx: Lowering, node: NodeView, act, layout: str) -> None:  # type: ignore[no-untyped-def]
    if is_elementwise_call(node):
        _float_chain(ctx, node, layout)
        return
    x, y = node.inputs[0], node.outputs[0]
    source = ctx.get(x, FLOAT, layout, node.name)
    out = ctx.output(node, y, FLOAT, layout)
    if act.name == "silu":
        gate = ctx.graph.like(source, f"{node.name}/sigmoid")
        ctx.graph.op("LOGISTIC", [source], [gate], node.name)
        ctx.graph.op("MUL", [source, gate], [out], node.name)
        return
    if act.name == "hardsigmoid":  # clip(alpha x + beta, 0, 1)
        current = source
        for op, value in (("MUL", act.params["alpha"]), ("ADD", act.params["beta"]), ("MAXIMUM", 0.0),
                          ("MINIMUM", 1.0)):
            target = out if op == "MINIMUM" else ctx.graph.like(source, f"{node.name}/{op.lower()}")
            ctx.graph.op(op, [current, ctx.graph.constant(f"{node.name}/{op.lower()}_c", np.float32(value))],
                         [target], node.name)
            current = target
        return
    if act.name not in FLOAT_ACTIVATIONS:
        raise ctx.unsupported(node, f"float {act.name} has no TFLite builtin")
    builtin = FLOAT_ACTIVATIONS[act.name]
    if not ctx.runs(builtin.op):
        raise ctx.unsupported(node, f"float {act.name} needs {builtin.op}, which the target has no kernel for")
    ctx.graph.op(builtin.op, [source], [out], node.name, **builtin.options_for(act.params))


LOWERINGS: dict[tuple[str, str], Lowerer] = {key: spec.lower for key, spec in SPECS.items() if spec.lower is not None}


def lowering_for(node: NodeView, view: GraphView | None = None) -> Lowerer | None:
    if activation_of(node, view) is not None:
        return lower_activation
    return LOWERINGS.get((node.domain, node.op_type))


def _int8_ready(ctx: Lowering, node: NodeView) -> bool:
    if ctx.plan is None or not all(ctx.grid(o) is not None for o in node.outputs if o):
        return False
    for name in node.inputs:
        value = ctx.view.values.get(ctx.resolve(name)) if name else None
        if value is not None and value.is_float and value.constant is None and ctx.grid(name) is None:
            return False
    return True


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
        dtype = INT8 if node.name in quantized and _int8_ready(ctx, node) else FLOAT
        lowering(ctx, node, dtype)
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

