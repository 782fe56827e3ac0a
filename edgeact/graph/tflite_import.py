"""Read a .tflite file back into edgeact's lowered-graph form (tensors with quantization and data, builtin ops
with their options), so the emulator and the profiler can run and compare any int8 .tflite."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from edgeact.errors import ModelFormatError, UsageError
from edgeact.numerics import PerChannelQParams, QParams
from edgeact.ops.table import OPTIONS
from edgeact.runtimes.tflite_verify import verify_tflite
from edgeact.tflite.graph import LoweredGraph, LoweredOp, LoweredTensor
from edgeact.tflite.schema import TENSOR_TYPES, builtin_options_code, schema_module

_TYPE_NAMES = {code: name for name, code in TENSOR_TYPES.items()}


def _enum_names(module: str, enum: str) -> dict[int, str]:
    table = getattr(schema_module(module), enum)
    return {int(value): name for name, value in vars(table).items() if not name.startswith("_")}


def _quant(tensor, dtype: str, where: str):  # type: ignore[no-untyped-def]
    q = tensor.Quantization()
    if q is None or q.ScaleLength() == 0:
        return None
    scales = [float(q.Scale(i)) for i in range(q.ScaleLength())]
    zero_points = [int(q.ZeroPoint(i)) for i in range(q.ZeroPointLength())] or [0] * len(scales)
    if len(scales) > 1:
        if not all(math.isfinite(s) and s > 0 for s in scales):
            raise ModelFormatError(f"{where}: per-channel scales must be finite and > 0")
        return PerChannelQParams(tuple(scales), int(q.QuantizedDimension()), dtype)
    try:
        return QParams(scales[0], zero_points[0], dtype if dtype in ("int8", "int16", "int32", "int64") else "int8")
    except UsageError as exc:  # a grid no runtime can use: the file is wrong, not the command line
        raise ModelFormatError(f"{where}: {exc}") from None


def _array(values) -> tuple[int, ...]:  # type: ignore[no-untyped-def]
    """A flatbuffer int vector's ``AsNumpy()`` as a tuple (the bindings give ``0`` for an absent vector)."""
    return tuple(int(i) for i in values) if isinstance(values, np.ndarray) else ()


def _options(op, name: str, where: str, tables: Mapping[str, tuple[str, dict]]) -> dict:  # type: ignore[no-untyped-def]
    if name not in tables:
        return {}
    table_name, defaults = tables[name]
    table = op.BuiltinOptions()
    if table is None:
        return dict(defaults)
    if op.BuiltinOptionsType() != builtin_options_code(table_name):
        raise ModelFormatError(f"{where} ({name}) has options of type {op.BuiltinOptionsType()}, not {table_name}")
    options = getattr(schema_module(table_name), table_name)()
    options.Init(table.Bytes, table.Pos)
    return {key: getattr(options, key[0].upper() + key[1:])() for key in defaults}


def _tensor_data(tensor, raw: bytes, dtype: str, shape: tuple[int, ...], where: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A constant's values; a sparse tensor, or a buffer that does not hold the tensor's shape, is refused."""
    name = (tensor.Name() or b"").decode(errors="replace")
    if tensor.Sparsity() is not None:
        raise ModelFormatError(f"{where} ({name!r}) is stored sparse (it needs a DENSIFY op); edgeact reads dense "
                               "tensors only: use the model's dense version")
    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if len(raw) != expected:
        raise ModelFormatError(f"{where} ({name!r}): its buffer holds {len(raw)} bytes, its shape {list(shape)} of "
                               f"{dtype} needs {expected}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def read_tflite(payload: bytes, source: str = "<tflite>", options: Mapping[str, tuple[str, dict]] | None = None
                ) -> LoweredGraph:
    """The first subgraph of ``payload`` as a :class:`LoweredGraph` (errors name ``source``). The file is verified
    in full first: the flatbuffer bindings trust every offset in it. ``options``: builtin -> (options table, its
    fields with defaults) read besides those edgeact writes."""
    tables = {**OPTIONS, **(options or {})}
    verify_tflite(payload, source)
    try:
        model = schema_module("Model").Model.GetRootAsModel(payload, 0)
        graph = model.Subgraphs(0)
        opcodes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    except Exception as exc:  # flatbuffers raises plain errors on garbage
        raise ModelFormatError(f"{source}: not a .tflite model ({exc})") from exc
    if graph is None:
        raise ModelFormatError(f"{source}: not a .tflite model (no subgraph)")
    type_codes = _enum_names("TensorType", "TensorType")
    operator_names = _enum_names("BuiltinOperator", "BuiltinOperator")
    lowered = LoweredGraph()
    for index in range(graph.TensorsLength()):
        tensor = graph.Tensors(index)
        if tensor.Type() not in type_codes:
            raise ModelFormatError(f"{source}: tensor {index} has a type ({tensor.Type()}) edgeact cannot read")
        dtype = np.dtype(_TYPE_NAMES.get(type_codes[tensor.Type()], "float32")).name
        shape = _array(tensor.ShapeAsNumpy())
        data = None
        buffer = model.Buffers(tensor.Buffer())
        if buffer is not None and buffer.DataLength():
            if type_codes[tensor.Type()] not in _TYPE_NAMES:
                raise ModelFormatError(f"{source}: tensor {index} holds {type_codes[tensor.Type()]} data, which "
                                       "edgeact cannot read")
            data = _tensor_data(tensor, buffer.DataAsNumpy().tobytes(), dtype, shape, f"{source}: tensor {index}")
        where = f"{source}: tensor {index}"
        lowered.tensors.append(LoweredTensor((tensor.Name() or b"").decode(), shape, dtype,
                                             _quant(tensor, dtype, where), data))
    for index in range(graph.OperatorsLength()):
        op = graph.Operators(index)
        code = opcodes[op.OpcodeIndex()]
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin not in operator_names:
            raise ModelFormatError(f"{source}: operator {index} is builtin operator {builtin}, unknown to edgeact")
        name = operator_names[builtin]
        inputs, outputs = _array(op.InputsAsNumpy()), _array(op.OutputsAsNumpy())
        params = lowered.tensors[inputs[0]] if inputs and inputs[0] >= 0 else None
        table = name == "GATHER" and params is not None and params.data is not None and params.shape == (256,)
        options = _options(op, name, f"{source}: operator {index}", tables)
        if name == "CUSTOM":  # which custom op: only the runtime that registered it knows what it computes
            options = {"customCode": (code.CustomCode() or b"").decode(errors="replace")}
        lowered.ops.append(LoweredOp(name, inputs, outputs, options, f"op{index}", table))
    lowered.inputs, lowered.outputs = list(_array(graph.InputsAsNumpy())), list(_array(graph.OutputsAsNumpy()))
    if not lowered.inputs or not lowered.outputs:
        raise ModelFormatError(f"{source}: the model has no {'inputs' if not lowered.inputs else 'outputs'}")
    return lowered


def metadata(payload: bytes, source: str = "<tflite>") -> dict[str, str]:
    """The model's named metadata buffers (edgeact writes its version and the calibration record's hash)."""
    verify_tflite(payload, source)
    model = schema_module("Model").Model.GetRootAsModel(payload, 0)
    entries = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        buffer = model.Buffers(entry.Buffer())
        text = buffer.DataAsNumpy().tobytes().decode(errors="replace") if buffer.DataLength() else ""
        entries[(entry.Name() or b"").decode()] = text
    return entries
