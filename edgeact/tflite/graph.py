"""The lowered TFLite graph: tensors and builtin ops as plain data -- what the exporter lowers to and serialises,
what :mod:`edgeact.graph.tflite_import` reads a .tflite back into, and what the emulator and the profiler run.
Neutral ground: the exporters, the reader, the runtimes and the profiler all import it; it imports none of them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeact.documents.provenance import TFLiteProvenance
from edgeact.numerics.qparams import PerChannelQParams, QParams

Quantization = QParams | PerChannelQParams


@dataclass
class LoweredTensor:
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name
    quant: Quantization | None = None
    data: np.ndarray | None = None
    source: str | None = None  # the ONNX value it carries (None: a lowering's intermediate or constant)
    layout: str = "nchw"  # "nhwc": a rank-4 value stored channels-last

    @property
    def codes_grid(self) -> QParams | None:
        """The per-tensor grid of an integer tensor that carries real values (int8/uint8/int16 codes), else None."""
        if self.dtype not in ("int8", "uint8", "int16") or not isinstance(self.quant, QParams):
            return None
        return QParams(self.quant.scale, self.quant.zero_point, self.dtype)


@dataclass
class LoweredOp:
    op: str  # TFLite builtin name
    inputs: tuple[int, ...]  # -1: omitted optional input
    outputs: tuple[int, ...]
    options: dict[str, Any]
    node: str  # the ONNX node it lowers
    table: bool = False  # part of a CAST -> ADD -> GATHER activation table


@dataclass
class LoweredGraph:
    tensors: list[LoweredTensor] = field(default_factory=list)
    ops: list[LoweredOp] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    constants: dict[tuple, int] = field(default_factory=dict, repr=False)  # (dtype, shape, sha256, grid) -> tensor

    def tensor(
        self, name: str, shape: tuple[int, ...], dtype: str, quant: Quantization | None = None,
        data: np.ndarray | None = None, source: str | None = None, layout: str = "nchw",
    ) -> int:
        taken = {t.name for t in self.tensors}
        unique, suffix = name, 1
        while unique in taken:
            suffix += 1
            unique = f"{name}_{suffix}"
        self.tensors.append(LoweredTensor(unique, tuple(int(d) for d in shape), np.dtype(dtype).name, quant, data,
                                          source, layout))
        return len(self.tensors) - 1

    def constant(self, name: str, data: np.ndarray, quant: Quantization | None = None) -> int:
        """A constant tensor; identical data on an identical grid is stored once (an unrolled LSTM's 40 MatMuls
        share one weight tensor), under the first name it was given."""
        data = np.array(data, order="C")  # keeps a 0-d array 0-d (np.ascontiguousarray makes it 1-d)
        key = (data.dtype.name, data.shape, hashlib.sha256(data.tobytes()).hexdigest(), quant)
        if key not in self.constants:
            self.constants[key] = self.tensor(name, data.shape, data.dtype.name, quant, data)
        return self.constants[key]

    def op(
        self, op: str, inputs: list[int], outputs: list[int], node: str, table: bool = False, **options: Any
    ) -> None:
        self.ops.append(LoweredOp(op, tuple(inputs), tuple(outputs), options, node, table))

    def like(self, index: int, name: str, dtype: str | None = None, quant: Quantization | None = None) -> int:
        """A new tensor shaped like tensor ``index``."""
        source = self.tensors[index]
        return self.tensor(name, source.shape, dtype or source.dtype, quant)


def provenance(graph: LoweredGraph) -> TFLiteProvenance:
    """Which ONNX value (and layout) each tensor carries and which ONNX node each op lowers."""
    nodes: dict[str, list[int]] = {}
    for index, op in enumerate(graph.ops):
        nodes.setdefault(op.node, []).append(index)
    carried = [(index, t) for index, t in enumerate(graph.tensors) if t.source is not None]
    return TFLiteProvenance(values={str(index): t.source for index, t in carried},
                            nhwc=[index for index, t in carried if t.layout == "nhwc"], nodes=nodes)
