"""Single-operator .tflite models: an int8 activation builtin, or the portable table lowering.

The table lowering is CAST(int8 -> int32) -> ADD(+128) -> GATHER(int8 table): it runs bit-exactly on
any TFLite runtime that has these three ops (LiteRT, TFLite Micro), for any function and any grids.
"""

from __future__ import annotations

import numpy as np

from edgeact.errors import UsageError
from edgeact.exporters.tflite.writer import TFLiteModelBuilder
from edgeact.numerics.qparams import QParams
from edgeact.numerics.tables import Table

# builtin ops that compute an elementwise activation on int8 tensors
ACTIVATION_BUILTINS = ("TANH", "LOGISTIC", "GELU", "HARD_SWISH", "ELU", "LEAKY_RELU")


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


def add_table_lookup(model: TFLiteModelBuilder, table: Table, x: int, y: int, prefix: str) -> None:
    """Append CAST -> ADD(-qmin) -> GATHER computing ``y = table[x]`` to ``model``.

    ``x`` and ``y`` are existing int8 tensors of the same shape; ``prefix`` names the new tensors.
    """
    shape = model.tensor_shape(x)
    as_int32 = model.add_tensor(f"{prefix}/codes_int32", shape, "int32")
    offset = model.add_constant(f"{prefix}/code_offset", np.array([-table.in_q.qmin], dtype=np.int32))
    index = model.add_tensor(f"{prefix}/table_index", shape, "int32")
    values = model.add_constant(f"{prefix}/table", table.values.astype(np.int8), quant=table.out_q)
    model.add_operator("CAST", [x], [as_int32])
    model.add_operator("ADD", [as_int32, offset], [index])
    model.add_operator("GATHER", [values, index], [y])


def table_lowering_model(table: Table, shape: tuple[int, ...] = (256,)) -> bytes:
    """A model computing ``table`` on int8 input through CAST -> ADD -> GATHER."""
    if table.bits != 8:
        raise UsageError(f"the GATHER lowering takes int8 tables, not int{table.bits}")
    model = TFLiteModelBuilder(description=f"edgeact table {table.function}")
    x = model.add_tensor("x", shape, "int8", quant=table.in_q)
    y = model.add_tensor("y", shape, "int8", quant=table.out_q)
    add_table_lookup(model, table, x, y, prefix=table.function)
    model.set_inputs([x])
    model.set_outputs([y])
    return model.build()
