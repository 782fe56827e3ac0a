"""Single-operator .tflite models: an int8 activation builtin, or the portable table lowering.

The table lowering is CAST(int8 -> int32) -> ADD(+128) -> GATHER(int8 table): it runs bit-exactly on
any TFLite runtime that has these three ops (LiteRT, TFLite Micro), for any function and any grids.
"""

from __future__ import annotations

from edgeact.activations import REGISTRY
from edgeact.errors import UsageError
from edgeact.exporters.tflite.writer import TFLiteModelBuilder, builder_of
from edgeact.numerics.qparams import QParams
from edgeact.numerics.tables import Table
from edgeact.ops._lowering import table_lookup
from edgeact.tflite.graph import LoweredGraph

# builtin ops that compute an elementwise activation on int8 tensors
ACTIVATION_BUILTINS = tuple(dict.fromkeys(a.tflite.op for a in REGISTRY.values() if a.tflite is not None))


def activation_builtin_model(
    op: str, in_q: QParams, out_q: QParams, shape: tuple[int, ...] = (256,), **options: object
) -> bytes:
    """One builtin activation (``TANH``, ``LOGISTIC``, ``GELU`` ...) from grid ``in_q`` to ``out_q``."""
    if op not in ACTIVATION_BUILTINS:
        raise UsageError(f"{op!r} is not an activation builtin; choose from {', '.join(ACTIVATION_BUILTINS)}")
    model = TFLiteModelBuilder(description=f"edgeact single-op {op}")
    x = model.add_tensor("x", shape, in_q.dtype, quant=in_q)
    y = model.add_tensor("y", shape, out_q.dtype, quant=out_q)
    model.add_operator(op, [x], [y], **options)
    model.set_inputs([x])
    model.set_outputs([y])
    return model.build()


def table_lowering_model(table: Table, shape: tuple[int, ...] = (256,)) -> bytes:
    """A model computing ``table`` on int8 input through CAST -> ADD -> GATHER."""
    if table.bits != 8:
        raise UsageError(f"the GATHER lowering takes int8 tables, not int{table.bits}")
    graph = LoweredGraph()
    x = graph.tensor("x", shape, "int8", table.in_q)
    y = graph.tensor("y", shape, "int8", table.out_q)
    table_lookup(graph, x, y, table, prefix=table.function, node=table.function)
    graph.inputs, graph.outputs = [x], [y]
    return builder_of(graph, f"edgeact table {table.function}").build()
