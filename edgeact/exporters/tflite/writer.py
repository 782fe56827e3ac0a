"""A small, deterministic TFLite flatbuffer writer.

Build a model by adding tensors (with optional constant data and quantization), operators (with
builtin options given as plain keyword fields), graph inputs/outputs and metadata; :meth:`build`
serialises it. The same calls always give the same bytes. The whole-model lowering and the single-op
builders in :mod:`edgeact.exporters.tflite.single_op` both sit on this class; :func:`serialise` writes a lowered
graph (:mod:`edgeact.tflite.graph`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import flatbuffers
import numpy as np

from edgeact.documents.provenance import PROVENANCE_KEY
from edgeact.errors import ModelFormatError
from edgeact.numerics.qparams import PerChannelQParams
from edgeact.ops.table import BUILTINS, OPTIONS
from edgeact.tflite.graph import LoweredGraph, Quantization, provenance
from edgeact.tflite.schema import (
    builtin_operator_code,
    builtin_options_code,
    schema_module,
    tensor_type_code,
)

SCHEMA_VERSION = 3
BUFFER_ALIGNMENT = 16
EXTENDED_OPCODE_PLACEHOLDER = 127  # BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES


@dataclass
class _Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    buffer: int
    quant: Quantization | None


@dataclass
class _Operator:
    op: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any]


@dataclass
class TFLiteModelBuilder:
    """Collects one subgraph's tensors and operators, then writes a .tflite flatbuffer."""

    description: str = "edgeact"
    signature_key: str = "serving_default"
    _tensors: list[_Tensor] = field(default_factory=list)
    _operators: list[_Operator] = field(default_factory=list)
    _buffers: list[bytes] = field(default_factory=lambda: [b""])  # buffer 0: the empty sentinel
    _inputs: list[int] = field(default_factory=list)
    _outputs: list[int] = field(default_factory=list)
    _metadata: list[tuple[str, int]] = field(default_factory=list)

    # ---- graph construction ---------------------------------------------------------------
    def add_tensor(
        self,
        name: str,
        shape: tuple[int, ...],
        dtype: str,
        data: np.ndarray | None = None,
        quant: Quantization | None = None,
    ) -> int:
        """Add a tensor (constant when ``data`` is given) and return its index."""
        if any(t.name == name for t in self._tensors):
            raise ModelFormatError(f"tensor name {name!r} is used twice")
        buffer = 0
        if data is not None:
            array = np.array(data, dtype=np.dtype(dtype), order="C")  # 0-d stays 0-d
            if tuple(array.shape) != tuple(shape):
                raise ModelFormatError(f"tensor {name!r}: data shape {array.shape} != declared {shape}")
            buffer = self._add_buffer(array.tobytes())
        self._tensors.append(_Tensor(name, tuple(int(d) for d in shape), np.dtype(dtype).name, buffer, quant))
        return len(self._tensors) - 1

    def add_constant(self, name: str, data: np.ndarray, quant: Quantization | None = None) -> int:
        """Add a constant tensor whose shape and dtype are those of ``data``."""
        data = np.asarray(data)
        return self.add_tensor(name, tuple(data.shape), data.dtype.name, data, quant)

    def add_operator(self, op: str, inputs: list[int], outputs: list[int], **options: Any) -> None:
        """Add a builtin operator; ``options`` override the defaults of its options table."""
        builtin_operator_code(op)  # validates the name
        defaults = OPTIONS.get(op, (None, {}))[1]
        unknown = set(options) - set(defaults)
        if unknown:
            raise ModelFormatError(f"operator {op}: unknown option(s) {sorted(unknown)}")
        self._operators.append(_Operator(op, tuple(inputs), tuple(outputs), {**defaults, **options}))

    def tensor_shape(self, index: int) -> tuple[int, ...]:
        """Declared shape of tensor ``index``."""
        return self._tensors[index].shape

    def set_inputs(self, tensors: list[int]) -> None:
        self._inputs = list(tensors)

    def set_outputs(self, tensors: list[int]) -> None:
        self._outputs = list(tensors)

    def add_metadata(self, name: str, payload: bytes) -> None:
        """Attach a named metadata buffer (e.g. the edgeact version, the calibration hash)."""
        self._metadata.append((name, self._add_buffer(payload)))

    def _add_buffer(self, payload: bytes) -> int:
        self._buffers.append(bytes(payload))
        return len(self._buffers) - 1

    # ---- serialisation --------------------------------------------------------------------
    def build(self) -> bytes:
        """Serialise to .tflite bytes (deterministic)."""
        if not self._inputs or not self._outputs:
            raise ModelFormatError("a TFLite model needs at least one input and one output")
        b = flatbuffers.Builder(1024)
        opcodes = sorted({o.op for o in self._operators}, key=builtin_operator_code)
        opcode_index = {op: i for i, op in enumerate(opcodes)}
        buffers = [self._write_buffer(b, payload) for payload in self._buffers]
        tensors = [self._write_tensor(b, t) for t in self._tensors]
        operators = [self._write_operator(b, o, opcode_index[o.op]) for o in self._operators]
        subgraph = self._write_subgraph(b, tensors, operators)
        codes = [self._write_opcode(b, op) for op in opcodes]
        signature = self._write_signature(b)
        metadata = [self._write_metadata(b, name, buf) for name, buf in self._metadata]
        description = b.CreateString(self.description)

        M = schema_module("Model")
        vectors = {
            "OperatorCodes": _offsets_vector(b, M.StartOperatorCodesVector, codes),
            "Subgraphs": _offsets_vector(b, M.StartSubgraphsVector, [subgraph]),
            "Buffers": _offsets_vector(b, M.StartBuffersVector, buffers),
            "SignatureDefs": _offsets_vector(b, M.StartSignatureDefsVector, [signature]),
            "Metadata": _offsets_vector(b, M.StartMetadataVector, metadata),
        }
        M.Start(b)
        M.AddVersion(b, SCHEMA_VERSION)
        M.AddDescription(b, description)
        for field_name, vector in vectors.items():
            getattr(M, f"Add{field_name}")(b, vector)
        b.Finish(M.End(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    @staticmethod
    def _write_buffer(b: flatbuffers.Builder, payload: bytes) -> int:
        B = schema_module("Buffer")
        data = None
        if payload:
            b.StartVector(1, len(payload), BUFFER_ALIGNMENT)
            b.head = b.head - len(payload)
            b.Bytes[b.head : b.head + len(payload)] = payload
            data = b.EndVector()
        B.Start(b)
        if data is not None:
            B.AddData(b, data)
        return B.End(b)

    @staticmethod
    def _write_quantization(b: flatbuffers.Builder, quant: Quantization) -> int:
        Q = schema_module("QuantizationParameters")
        if isinstance(quant, PerChannelQParams):
            scales, zero_points, axis = list(quant.scales), list(quant.zero_points), quant.axis
        else:
            scales, zero_points, axis = [quant.scale], [quant.zero_point], 0
        scale_vec = b.CreateNumpyVector(np.asarray(scales, dtype=np.float32))
        zp_vec = b.CreateNumpyVector(np.asarray(zero_points, dtype=np.int64))
        Q.Start(b)
        Q.AddScale(b, scale_vec)
        Q.AddZeroPoint(b, zp_vec)
        Q.AddQuantizedDimension(b, axis)
        return Q.End(b)

    def _write_tensor(self, b: flatbuffers.Builder, t: _Tensor) -> int:
        T = schema_module("Tensor")
        name = b.CreateString(t.name)
        shape = b.CreateNumpyVector(np.asarray(t.shape, dtype=np.int32))
        quant = self._write_quantization(b, t.quant) if t.quant is not None else None
        T.Start(b)
        T.AddShape(b, shape)
        T.AddType(b, tensor_type_code(t.dtype))
        T.AddBuffer(b, t.buffer)
        T.AddName(b, name)
        if quant is not None:
            T.AddQuantization(b, quant)
        return T.End(b)

    @staticmethod
    def _write_options(b: flatbuffers.Builder, op: _Operator) -> tuple[int, int] | None:
        if op.op not in OPTIONS:
            return None
        table, _ = OPTIONS[op.op]
        module = schema_module(table)
        module.Start(b)
        for name, value in op.options.items():
            adder = getattr(module, f"Add{name[0].upper()}{name[1:]}")
            adder(b, value)
        return builtin_options_code(table), module.End(b)

    def _write_operator(self, b: flatbuffers.Builder, op: _Operator, opcode: int) -> int:
        op_table = schema_module("Operator")
        inputs = b.CreateNumpyVector(np.asarray(op.inputs, dtype=np.int32))
        outputs = b.CreateNumpyVector(np.asarray(op.outputs, dtype=np.int32))
        options = self._write_options(b, op)
        op_table.Start(b)
        op_table.AddOpcodeIndex(b, opcode)
        op_table.AddInputs(b, inputs)
        op_table.AddOutputs(b, outputs)
        if options is not None:
            op_table.AddBuiltinOptionsType(b, options[0])
            op_table.AddBuiltinOptions(b, options[1])
        return op_table.End(b)

    def _write_subgraph(self, b: flatbuffers.Builder, tensors: list[int], operators: list[int]) -> int:
        S = schema_module("SubGraph")
        tensor_vec = _offsets_vector(b, S.StartTensorsVector, tensors)
        op_vec = _offsets_vector(b, S.StartOperatorsVector, operators)
        inputs = b.CreateNumpyVector(np.asarray(self._inputs, dtype=np.int32))
        outputs = b.CreateNumpyVector(np.asarray(self._outputs, dtype=np.int32))
        name = b.CreateString("main")
        S.Start(b)
        S.AddTensors(b, tensor_vec)
        S.AddOperators(b, op_vec)
        S.AddInputs(b, inputs)
        S.AddOutputs(b, outputs)
        S.AddName(b, name)
        return S.End(b)

    @staticmethod
    def _write_opcode(b: flatbuffers.Builder, op: str) -> int:
        C = schema_module("OperatorCode")
        code = builtin_operator_code(op)
        C.Start(b)
        C.AddDeprecatedBuiltinCode(b, min(code, EXTENDED_OPCODE_PLACEHOLDER))
        C.AddBuiltinCode(b, code)
        C.AddVersion(b, BUILTINS[op].version if op in BUILTINS else 1)
        return C.End(b)

    def _write_signature(self, b: flatbuffers.Builder) -> int:
        TM, SD = schema_module("TensorMap"), schema_module("SignatureDef")

        def tensor_maps(indices: list[int]) -> list[int]:
            maps = []
            for index in indices:
                name = b.CreateString(self._tensors[index].name)
                TM.Start(b)
                TM.AddName(b, name)
                TM.AddTensorIndex(b, index)
                maps.append(TM.End(b))
            return maps

        inputs = _offsets_vector(b, SD.StartInputsVector, tensor_maps(self._inputs))
        outputs = _offsets_vector(b, SD.StartOutputsVector, tensor_maps(self._outputs))
        key = b.CreateString(self.signature_key)
        SD.Start(b)
        SD.AddInputs(b, inputs)
        SD.AddOutputs(b, outputs)
        SD.AddSignatureKey(b, key)
        SD.AddSubgraphIndex(b, 0)
        return SD.End(b)

    @staticmethod
    def _write_metadata(b: flatbuffers.Builder, name: str, buffer: int) -> int:
        MD = schema_module("Metadata")
        name_offset = b.CreateString(name)
        MD.Start(b)
        MD.AddName(b, name_offset)
        MD.AddBuffer(b, buffer)
        return MD.End(b)


def _offsets_vector(b: flatbuffers.Builder, start_vector: Any, offsets: list[int]) -> int:
    start_vector(b, len(offsets))
    for offset in reversed(offsets):
        b.PrependUOffsetTRelative(offset)
    return b.EndVector()


def builder_of(graph: LoweredGraph, description: str) -> TFLiteModelBuilder:
    """A flatbuffer builder holding ``graph``'s tensors, ops, inputs and outputs (no metadata yet)."""
    builder = TFLiteModelBuilder(description=description)
    for t in graph.tensors:
        builder.add_tensor(t.name, t.shape, t.dtype, t.data, t.quant)
    for op in graph.ops:
        builder.add_operator(op.op, list(op.inputs), list(op.outputs), **op.options)
    builder.set_inputs(graph.inputs)
    builder.set_outputs(graph.outputs)
    return builder


def serialise(graph: LoweredGraph, metadata: dict[str, bytes], description: str) -> bytes:
    """The .tflite bytes of ``graph`` (deterministic); its metadata holds ``metadata`` and the graph's
    :func:`provenance`."""
    metadata = {PROVENANCE_KEY: provenance(graph).to_bytes(), **metadata}
    builder = builder_of(graph, description)
    for name in sorted(metadata):
        builder.add_metadata(name, metadata[name])
    return builder.build()
