"""The TFLite activation builtins (TANH, LOGISTIC, GELU, HARD_SWISH, LEAKY_RELU, ELU): their options and their
emulator kernel. Which activation each computes is its entry's ``tflite`` field in :data:`edgeact.activations.REGISTRY`
(activations are planned by :func:`edgeact.planning.registry.activation_of`, not by op type: no ``SPECS`` here)."""

from __future__ import annotations

import numpy as np

from edgeact.activations import REGISTRY, tflite_builtin_activation
from edgeact.numerics import lut_for
from edgeact.ops._kernel import is_float, quant_of
from edgeact.ops.spec import Builtin

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
