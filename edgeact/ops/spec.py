"""The types of an op spec: how the planner quantizes an ONNX op, how it lowers to TFLite, and the TFLite builtins
it emits (their options table and their emulator kernel). Pure data: no model library is imported here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from edgeact.exporters.tflite.lower import Lowering
    from edgeact.graph.view import NodeView
    from edgeact.numerics.requantize import RequantRounding
    from edgeact.tflite.graph import LoweredGraph, LoweredOp

    Lowerer = Callable[[Lowering, NodeView, str], None]
    Kernel = Callable[[LoweredGraph, LoweredOp, list[np.ndarray | None], RequantRounding], list[np.ndarray]]


class Role(str, Enum):
    COMPUTE = "compute"  # output grid from its own calibrated range
    SHARED = "shared"  # output reuses the grid of input 0 (data movement, max pooling)
    ACTIVATION = "activation"  # an exact int8 table with its own input and output grids
    FOLD = "fold"  # Relu / Clip: its output range becomes the producer's grid


class FormKind:
    """The forms an activation can take in an output format (the plan's ``ActivationForm.kind``)."""

    BUILTIN = "builtin"  # the target's own op computes exactly the planned table
    TABLE = "table"  # the planned int8 table, as a lookup (TFLite: CAST -> ADD -> GATHER; ONNX: Cast -> Gather)
    FLOAT = "float"  # the float op between dequantize and quantize


class OnnxEmission(str, Enum):
    """How the ONNX exporters write a node of this op (activations: their planned form, a table or this)."""

    KEEP = "keep"  # the node itself, its planned inputs restored by DequantizeLinear and its output quantized
    INLINE = "inline"  # a fused ai.edgeact function: written as its body of standard ops, between the same Q/DQ


@dataclass(frozen=True)
class OpQuantizer:
    role: Role
    data_inputs: tuple[int, ...] | None = (0,)  # None: every input
    weight: int | None = None  # per-channel int8 symmetric
    weight_axis: Callable[[NodeView], int] | int = 0
    bias: int | None = None  # int32 at s_in * s_w; when absent, an all-zero one (TFLite's kernels take a bias)
    bias_axis: int = -1  # the output axis the bias adds along (one value per output channel)
    output_range: tuple[float, float] | None = None  # a range known without calibration
    output_range_int16: tuple[float, float] | None = None  # that range on an int16 grid (default: output_range)
    reciprocal: int | None = None  # a constant divisor, planned as int8 codes of its reciprocal (TFLite: MUL)
    pad_fill: bool = False  # explicit pads hold the lowest int8 code (TFLite: PADV2 before MAX_POOL_2D)
    stays_float: Callable[[NodeView], str | None] | None = None  # why a node of this op stays float (None: int8)

    def axis_for(self, node: NodeView) -> int:
        return self.weight_axis(node) if callable(self.weight_axis) else self.weight_axis


SHARED = OpQuantizer(Role.SHARED)
COMPUTE = OpQuantizer(Role.COMPUTE)
BINARY = OpQuantizer(Role.COMPUTE, data_inputs=(0, 1))


@dataclass(frozen=True)
class Builtin:
    """A TFLite builtin: its options table with default fields (None: it takes none; the field order is the
    order the writer serialises them), the emulator's kernel for it (TFLite's reference arithmetic), the kernels of
    other arithmetics a device profile may name (``arithmetic = "xnnpack"``), and the version its operator code
    carries."""

    name: str
    kernel: Kernel
    options: tuple[str, Mapping[str, Any]] | None = None
    version: int = 1  # the operator code's version (LiteRT registers BROADCAST_TO from version 2 only)
    arithmetic: Mapping[str, Kernel] = field(default_factory=dict)  # arithmetic name -> its kernel for this builtin


@dataclass(frozen=True)
class OpSpec:
    """One ONNX op (``domain``, ``op_type``): its quantizer (None: it stays float), how the ONNX exporters write it,
    its TFLite lowering (None: no TFLite form, ``no_tflite`` says why) and the TFLite builtins that lowering may
    emit."""

    op_type: str
    quantizer: OpQuantizer | None
    lower: Lowerer | None
    emits: tuple[str, ...] = ()
    domain: str = ""
    no_tflite: str | None = None
    onnx: OnnxEmission = OnnxEmission.KEEP
    notes: str = field(default="", compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return self.domain, self.op_type
