"""edgeact's reference emulator: runs a lowered TFLite graph with a runtime's integer arithmetic, op by op in numpy.

``Rules`` name that arithmetic: the requantization rounding per op, and kernels that replace the reference ones
(XNNPACK's float32 requantization and fixed-point ADD). ``run_op`` evaluates one op on given input arrays (to check a
runtime's own intermediate tensors op by op); ``emulate`` runs the whole graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgeact.errors import EdgeactError
from edgeact.hardware.profiles import DeviceProfile
from edgeact.numerics.requantize import RequantRounding
from edgeact.ops.activations import builtin_activation
from edgeact.runtimes.emulator.kernels import ARITHMETIC, KERNELS, Kernel
from edgeact.tflite.graph import LoweredGraph, LoweredOp


@dataclass(frozen=True)
class Rules:
    roundings: dict[str, RequantRounding]  # op -> requantization rounding; "*" for every other op
    kernels: dict[str, Kernel] = field(default_factory=dict)  # op -> kernel replacing the reference one
    conventions: dict[str, str] = field(default_factory=dict)  # activation builtin -> table convention

    def rounding(self, op: str) -> RequantRounding:
        return self.roundings.get(op, self.roundings.get("*", RequantRounding.TFLITE_DOUBLE))

    def kernel(self, op: str) -> Kernel | None:
        if op in self.conventions:
            convention = self.conventions[op]
            return lambda graph, o, inputs, rounding: builtin_activation(graph, o, inputs, rounding, convention)
        return self.kernels.get(op, KERNELS.get(op))


def run_op(graph: LoweredGraph, op: LoweredOp, inputs: list[np.ndarray | None], rules: Rules) -> list[np.ndarray]:
    """Outputs of ``op`` on ``inputs`` (None for an omitted optional input)."""
    kernel = rules.kernel(op.op)
    if kernel is None:
        raise EdgeactError(f"the emulator has no kernel for {op.op} (node {op.node!r})")
    return kernel(graph, op, inputs, rules.rounding(op.op))


def emulate(graph: LoweredGraph, inputs: list[np.ndarray], rules: Rules) -> dict[int, np.ndarray]:
    """Every tensor's value (by index) after running ``graph`` on ``inputs`` (graph input order)."""
    values: dict[int, np.ndarray] = {}
    for index, tensor in enumerate(graph.tensors):
        if tensor.data is not None:
            values[index] = tensor.data
    for index, value in zip(graph.inputs, inputs, strict=True):
        values[index] = np.asarray(value, dtype=graph.tensors[index].dtype)
    for op in graph.ops:
        arrays = [values[i] if i >= 0 else None for i in op.inputs]
        for index, value in zip(op.outputs, run_op(graph, op, arrays, rules), strict=True):
            values[index] = np.asarray(value, dtype=graph.tensors[index].dtype).reshape(graph.tensors[index].shape)
    return values


def rules_for(profile: DeviceProfile) -> Rules:
    """The emulator rules a device profile states: requantization rounding per op, reference or XNNPACK arithmetic,
    the table convention of each activation builtin. The profiles are their only source (the rules each built-in
    profile states were measured bit-exact against its runtime: tests/test_tflite_export.py)."""
    roundings = {op: RequantRounding(mode) for op, mode in profile.requantization.items()}
    conventions = {op: kernel.conventions[0] for op, kernel in profile.activations.items() if kernel.conventions}
    return Rules(roundings, ARITHMETIC[profile.arithmetic], conventions)
