"""edgeact's reference emulator: runs a lowered TFLite graph with the integer arithmetic of TFLite's reference
kernels (requantization with the runtime's rounding; tables exactly), op by op in numpy.

``run_op`` evaluates one op on given input arrays (to check a runtime's own intermediate tensors op by op);
``emulate`` runs the whole graph.
"""

from __future__ import annotations

import numpy as np

from edgeact.errors import EdgeactError
from edgeact.exporters.tflite.graph import LoweredGraph, LoweredOp
from edgeact.numerics.requantize import RequantRounding
from edgeact.runtimes.emulator.kernels import KERNELS, Kernel

Roundings = dict[str, RequantRounding]  # op -> requantization rounding; "*" for every other op

# Measured against ai-edge-litert 2.3.0's reference kernels (tests/test_tflite_export.py): its per-channel int8
# FULLY_CONNECTED requantizes with single rounding, CONV_2D / BATCH_MATMUL / ADD / MUL with TFLite's double rounding.
LITERT_REFERENCE: Roundings = {"FULLY_CONNECTED": RequantRounding.SINGLE, "*": RequantRounding.TFLITE_DOUBLE}
# Measured against tflite-micro 0.dev20261023: every requantization uses TFLite's double rounding.
TFLM_REFERENCE: Roundings = {"*": RequantRounding.TFLITE_DOUBLE}
ROUNDINGS: dict[str, Roundings] = {"litert-reference": LITERT_REFERENCE, "tflm": TFLM_REFERENCE}


def _rounding(roundings: Roundings, op: str) -> RequantRounding:
    return roundings.get(op, roundings.get("*", RequantRounding.TFLITE_DOUBLE))


def run_op(
    graph: LoweredGraph, op: LoweredOp, inputs: list[np.ndarray | None], roundings: Roundings = LITERT_REFERENCE
) -> list[np.ndarray]:
    """Outputs of ``op`` on ``inputs`` (None for an omitted optional input)."""
    kernel: Kernel | None = KERNELS.get(op.op)
    if kernel is None:
        raise EdgeactError(f"the emulator has no kernel for {op.op} (node {op.node!r})")
    return kernel(graph, op, inputs, _rounding(roundings, op.op))


def emulate(
    graph: LoweredGraph, inputs: list[np.ndarray], roundings: Roundings = LITERT_REFERENCE
) -> dict[int, np.ndarray]:
    """Every tensor's value (by index) after running ``graph`` on ``inputs`` (graph input order)."""
    values: dict[int, np.ndarray] = {}
    for index, tensor in enumerate(graph.tensors):
        if tensor.data is not None:
            values[index] = tensor.data
    for index, value in zip(graph.inputs, inputs, strict=True):
        values[index] = np.asarray(value, dtype=graph.tensors[index].dtype)
    for op in graph.ops:
        arrays = [values[i] if i >= 0 else None for i in op.inputs]
        for index, value in zip(op.outputs, run_op(graph, op, arrays, roundings), strict=True):
            values[index] = np.asarray(value, dtype=graph.tensors[index].dtype).reshape(graph.tensors[index].shape)
    return values
