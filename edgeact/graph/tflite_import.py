"""Read a .tflite file back into edgeact's lowered-graph form (tensors with quantization and data, builtin ops
with their options), so the emulator and the profiler can run and compare any int8 .tflite."""

from __future__ import annotations


import numpy as np

from edgeact.errors import ModelFormatError
from edgeact.exporters.tflite.graph import LoweredGraph, LoweredOp, LoweredTensor
from edgeact.exporters.tflite.schema import TENSOR_TYPES, schema_module
from edgeact.exporters.tflite.writer import OPTIONS
from edgeact.numerics import PerChannelQParams, QParams

_TYPE_NAMES = {code: name for name, code in TENSOR_TYPES.items()}


def _enum_names(module: str, enum: str) -> dict[int, str]:
    table = getattr(schema_module(module), enum)
    return {int(value): name for name, value in vars(table).items() if not name.startswith("_")}


def _quant(tensor, dtype: str):  # type: ignore[no-untyped-def]
    q = tensor.Quantization()
    if q is None or q.ScaleLength() == 0:
        return None
    scales = [float(q.Scale(i)) for i in range(q.ScaleLength())]
    zero_points = [int(q.ZeroPoint(i)) for i in range(q.ZeroPointLength())] or [0] * len(scales)
    if len(scales) == 1:
        return QParams(scales[0], zero_points[0], dtype if dtype in ("int8", "int16", "int32") else "int8")
    return PerChannelQParams(tuple(scales), int(q.QuantizedDimension()), dtype)


def _options(op, name: str) -> dict:  # type: ignore[no-untyped-def]
    if name not in OPTIONS:
        return {}
    table_name, defaults = OPTIONS[name]
    table = op.BuiltinOptions()
    if table is None:
        return dict(defaults)
    options = getattr(schema_module(table_name), table_name)()
    options.Init(table.Bytes, table.Pos)
    return {key: getattr(options, key[0].upper() + key[1:])() for key in defaults}


def read_tflite(payload: bytes, source: str = "<tflite>") -> LoweredGraph:
    """The first subgraph of ``payload`` as a :class:`LoweredGraph` (errors name ``source``)."""
    try:
        model = schema_module("Model").Model.GetRootAsModel(payload, 0)
        graph = model.Subgraphs(0)
        opcodes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    except Exception as exc:  # flatbuffers raises plain errors on garbage
        raise ModelFormatError(f"{source}: not a .tflite model ({exc})") from exc
    if graph is None:
        raise ModelFormatError(f"{source}: not a .tflite model (no subgraph)")
    type_codes = {int(v): k for k, v in vars(schema_module("TensorType").TensorType).items() if not k.startswith("_")}
    operator_names = _enum_names("BuiltinOperator", "BuiltinOperator")
    lowered = LoweredGraph()
    for index in range(graph.TensorsLength()):
        tensor = graph.Tensors(index)
        dtype = np.dtype(_TYPE_NAMES.get(type_codes[tensor.Type()], "float32")).name
        shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
        data = None
        buffer = model.Buffers(tensor.Buffer())
        if buffer is not None and buffer.DataLength():
            data = np.frombuffer(buffer.DataAsNumpy().tobytes(), dtype=dtype).reshape(shape)
        lowered.tensors.append(LoweredTensor(tensor.Name().decode(), shape, dtype, _quant(tensor, dtype), data))
    for index in range(graph.OperatorsLength()):
        op = graph.Operators(index)
        code = opcodes[op.OpcodeIndex()]
        name = operator_names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        inputs = tuple(int(i) for i in op.InputsAsNumpy()) if op.InputsLength() else ()
        outputs = tuple(int(i) for i in op.OutputsAsNumpy())
        params = lowered.tensors[inputs[0]] if inputs else None
        table = name == "GATHER" and params is not None and params.data is not None and params.shape == (256,)
        lowered.ops.append(LoweredOp(name, inputs, outputs, _options(op, name), f"op{index}", table))
    lowered.inputs = [int(i) for i in graph.InputsAsNumpy()]
    lowered.outputs = [int(i) for i in graph.OutputsAsNumpy()]
    return lowered


def metadata(payload: bytes) -> dict[str, str]:
    """The model's named metadata buffers (edgeact writes its version and the calibration record's hash)."""
    model = schema_module("Model").Model.GetRootAsModel(payload, 0)
    entries = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        buffer = model.Buffers(entry.Buffer())
        text = buffer.DataAsNumpy().tobytes().decode(errors="replace") if buffer.DataLength() else ""
        entries[entry.Name().decode()] = text
    return entries
