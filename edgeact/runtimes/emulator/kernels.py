"""Kernels of the emulator, one entry per TFLite builtin, read from the op table (:mod:`edgeact.ops`: each op family
module holds the kernels of the builtins it emits): int8 with TFLite reference arithmetic, float32 in numpy.

Requantization goes through :func:`edgeact.ops._kernel.requantized` (requantize -> + zero point -> clamp, with the
caller's rounding mode: TFLite's double rounding for the reference kernels); activation builtins use the ``litert``
table convention; CAST -> ADD -> GATHER tables are exact integer operations. SOFTMAX is TFLite's gemmlowp fixed-point
reference (and, for the ``xnnpack`` arithmetic, LiteRT's optimized float32 expf table), bit for bit. Ops whose
reference kernels compute in float (QUANTIZE, CONCATENATION with rescaling) are emulated in float32.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgeact.numerics.requantize import RequantRounding
from edgeact.ops._kernel import Arrays
from edgeact.ops.table import BUILTINS
from edgeact.tflite.graph import LoweredGraph, LoweredOp

Kernel = Callable[[LoweredGraph, LoweredOp, Arrays, RequantRounding], list[np.ndarray]]
KERNELS: dict[str, Kernel] = {name: builtin.kernel for name, builtin in BUILTINS.items()}
# Arithmetic a device profile's ``arithmetic`` key names -> the kernels replacing the reference ones, from each
# builtin's ``arithmetic`` table ("reference": none)
ARITHMETIC: dict[str, dict[str, Kernel]] = {"reference": {}}
for _name, _builtin in BUILTINS.items():
    for _arithmetic, _kernel in _builtin.arithmetic.items():
        ARITHMETIC.setdefault(_arithmetic, {})[_name] = _kernel
