"""The TFLite activation builtins (TANH, LOGISTIC, GELU, HARD_SWISH, LEAKY_RELU, ELU): their options and their
emulator kernel, and the TFLite lowering of every activation node (its planned form: the exact builtin or the GATHER
table; kept float, its registry entry's float form). Which activation a builtin computes is its entry's ``tflite``
field in :data:`edgeact.activations.REGISTRY` (activations are planned by
:func:`edgeact.planning.registry.activation_of`, not by op type: no ``SPECS`` here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgeact.activations import REGISTRY, Activation, standard_activation, tflite_builtin_activation
from edgeact.elementwise import is_elementwise_call
from edgeact.numerics import lut_for
from edgeact.ops._kernel import is_float, quant_of
from edgeact.ops._lowering import layout_for, table_lookup
from edgeact.ops.float_unary import FLOAT_UNARY
from edgeact.ops.layout import FLOAT
from edgeact.ops.spec import Builtin, FormKind

if TYPE_CHECKING:
    from edgeact.exporters.tflite.lower import Lowering
    from edgeact.graph.view import GraphView, NodeView


# ---- TFLite lowering -------------------------------------------------------------------------------------------------
def lower_activation(ctx: Lowering, node: NodeView, dtype: str) -> None:
    """int8 or int16: the planned form (the exact builtin, the GATHER table, or a float island: DEQUANTIZE -> the
    float op(s) -> QUANTIZE onto the planned output grid); float: the float op(s)."""
    x, y = node.inputs[0], node.outputs[0]
    layout = layout_for(ctx, [x])
    if dtype == FLOAT:
        _float_activation(ctx, node, ctx.activation(node), layout)
        return
    plan = ctx.activation_plan(node)
    form = plan.forms.get("tflite")
    if form is not None and form.kind == FormKind.FLOAT:  # a float island between its planned grids
        _float_activation(ctx, node, ctx.activation(node), layout)
        ctx.round_onto_grid(node.outputs[0], dtype, node.name)
        ctx.island_ops.append(node.name)
        return
    if form is None or form.kind not in (FormKind.BUILTIN, FormKind.TABLE):
        raise ctx.unsupported(node, f"the plan (target {ctx.plan.target}) holds no {dtype} TFLite form for it")
    source = ctx.get(x, dtype, layout, node.name)
    out = ctx.output(node, y, dtype, layout)
    if form.kind == FormKind.BUILTIN:
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


def chain_float_builtins(body: GraphView) -> tuple[str, ...]:
    """The TFLite builtins a fused chain kept float lowers to (as :func:`_float_chain` writes it); () when one of
    its ops has no float form."""
    ops: list[str] = []
    for inner in body.nodes:
        act = standard_activation(inner.op_type, inner.attributes)
        if act is not None:
            steps = tuple(step.op for step in act.float_steps())
        elif inner.op_type == "Clip":
            steps = tuple(op for op, bound in zip(("MAXIMUM", "MINIMUM"), inner.inputs[1:3], strict=False) if bound)
            steps = steps or ("RESHAPE",)
        else:
            steps = (FLOAT_CHAIN_OPS[inner.op_type],) if inner.op_type in FLOAT_CHAIN_OPS else ()
        if not steps:
            return ()
        ops += steps
    return tuple(ops)


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


# ---- emulator kernels ------------------------------------------------------------------------------------------------
# the builtins' options tables (TANH, LOGISTIC and ELU take none)
OPTIONS_TABLES = {
    "GELU": ("GeluOptions", {"approximate": False}),
    "LEAKY_RELU": ("LeakyReluOptions", {"alpha": 0.01}),
    "HARD_SWISH": ("HardSwishOptions", {}),
}


def builtin_activation(graph, op, inputs, rounding, convention: str = "litert"):  # type: ignore[no-untyped-def]
    """An int8 activation builtin as the table its device builds (``convention``; LiteRT's by default)."""
    act = tflite_builtin_activation(op.op, op.options)
    x = inputs[0]
    if is_float(graph, op):
        return [act.float32(x.astype(np.float32)).astype(np.float32)]
    in_q, out_q = quant_of(graph, op.inputs[0]), quant_of(graph, op.outputs[0])
    table = lut_for(act, in_q, out_q, convention)
    return [table.lookup(x.astype(np.int64)).astype(np.int8)]


def elu(graph, op, inputs, rounding):  # type: ignore[no-untyped-def]
    """float32 ELU (alpha 1: TFLite's ELU has none), as a fused chain's Elu lowers."""
    x = inputs[0].astype(np.float32)
    return [np.where(x < 0, np.expm1(np.minimum(x, 0)), x).astype(np.float32)]


# builtins whose kernel is not the registry's table: TFLite's ELU is float only (alpha 1)
KERNELS = {"ELU": elu}
BUILTINS = tuple(Builtin(op, KERNELS.get(op, builtin_activation), OPTIONS_TABLES.get(op))
                 for op in dict.fromkeys(a.tflite.op for a in REGISTRY.values() if a.tflite is not None))
SPECS = ()
