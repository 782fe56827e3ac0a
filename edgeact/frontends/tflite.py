"""Float .tflite in, ONNX bytes out: a float32 (or float16-weight) TFLite model written as the equivalent ONNX
graph, so the rest of edgeact (calibration, the plan, both exporters, the profiler) takes it like any ONNX model.

The .tflite is read by :func:`edgeact.graph.tflite_import.read_tflite` (verified first); each builtin is written by
its converter in :mod:`edgeact.frontends.tflite_ops`. The conversion only translates: every number comes from the
file. :func:`edgeact.pipeline.prepare.check_tflite_conversion` then runs both on LiteRT and onnxruntime and refuses
a conversion whose outputs differ.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
from onnx import helper

from edgeact.errors import ModelFormatError
from edgeact.frontends.tflite_ops import CONVERTERS, IMPORT_OPTIONS, NATIVE, ONNX_DTYPES, Builder
from edgeact.graph.tflite_import import read_tflite
from edgeact.tflite.graph import LoweredGraph, LoweredOp

TFLITE_SUFFIX = ".tflite"
TFLITE_MAGIC = b"TFL3"  # the flatbuffer file identifier, bytes 4..8
ONNX_OPSET = 20  # Gelu is an ai.onnx op from opset 20
QUANTIZED_DTYPES = ("int8", "uint8", "int16")


@dataclass(frozen=True)
class TFLiteConversion:
    onnx: bytes
    name: str  # stem for output files
    builtins: dict[str, int]  # builtin op -> count, as read
    float16_weights: int  # float16 constants widened to float32


def is_tflite_source(model: Any) -> bool:
    """A .tflite path, or bytes that carry the TFLite file identifier."""
    if isinstance(model, (str, Path)):
        return str(model).lower().endswith(TFLITE_SUFFIX)
    return isinstance(model, bytes) and model[4:8] == TFLITE_MAGIC


def read_payload(path: Path) -> bytes:
    if path.is_dir():
        raise ModelFormatError(f"{path}: is a folder, expected a model file (.tflite)")
    if not path.is_file():
        raise ModelFormatError(f"{path}: no such model file")
    return path.read_bytes()


def convert(payload: bytes, source: str) -> TFLiteConversion:
    """The ONNX form of the float TFLite model ``payload`` (errors name ``source``)."""
    if payload[4:8] != TFLITE_MAGIC:
        raise ModelFormatError(f"{source}: not a .tflite model (no TFL3 file identifier)")
    graph = read_tflite(payload, source, IMPORT_OPTIONS)
    _check_float(graph, source)
    builder = Builder(graph, source)
    inputs = [_graph_input(builder, index) for index in graph.inputs]
    for op in graph.ops:
        CONVERTERS[op.op](builder, op)
    outputs = [_graph_output(builder, index) for index in graph.outputs]
    model = helper.make_model(
        helper.make_graph(builder.nodes, "tflite", inputs, outputs, builder.initializers),
        opset_imports=[helper.make_opsetid("", ONNX_OPSET)], producer_name="edgeact tflite frontend",
        ir_version=10)
    halves = sum(1 for t in graph.tensors if t.dtype == "float16" and t.data is not None)
    stem = Path(source).name.removesuffix(TFLITE_SUFFIX) if source.lower().endswith(TFLITE_SUFFIX) else "model"
    return TFLiteConversion(model.SerializeToString(deterministic=True), stem,
                            dict(sorted(Counter(op.op for op in graph.ops).items())), halves)


def _check_float(graph: LoweredGraph, source: str) -> None:
    """Refuse a quantized model and builtins no converter writes, naming them."""
    quantized = [t for t in graph.tensors if t.dtype in QUANTIZED_DTYPES]
    if quantized:
        raise ModelFormatError(
            f"{source}: already quantized (tensor {quantized[0].name!r} is {quantized[0].dtype}, and "
            f"{len(quantized) - 1} more); edgeact quantizes float32 models (float16 weights are fine): give the "
            "float model this one came from")
    unknown = Counter(_op_label(op) for op in graph.ops if op.op not in CONVERTERS)
    if unknown:
        found = ", ".join(f"{op} x{count}" for op, count in sorted(unknown.items()))
        custom = (" (a custom op computes what the runtime that registered it says: edgeact converts builtins only)"
                  if any(op.op == "CUSTOM" for op in graph.ops) else "")
        raise ModelFormatError(f"{source}: edgeact cannot read TFLite builtin(s) {found} yet{custom}; it reads "
                               f"{', '.join(sorted(CONVERTERS))}")


def _op_label(op: LoweredOp) -> str:
    """A builtin's name; a custom op's with its code (CUSTOM Convolution2DTransposeBias)."""
    return f"CUSTOM {op.options.get('customCode') or '(no code)'}" if op.op == "CUSTOM" else op.op


def _value_info(builder: Builder, index: int, name: str) -> onnx.ValueInfoProto:
    tensor = builder.graph.tensors[index]
    if tensor.dtype not in ONNX_DTYPES:
        raise ModelFormatError(f"{builder.source}: input/output {tensor.name!r} is {tensor.dtype}, which edgeact "
                               f"cannot convert (it reads {', '.join(ONNX_DTYPES)})")
    return helper.make_tensor_value_info(name, ONNX_DTYPES[tensor.dtype], list(tensor.shape))


def _graph_input(builder: Builder, index: int) -> onnx.ValueInfoProto:
    name = builder.fresh(builder.label(index))
    builder.forms[(index, NATIVE)] = name
    return _value_info(builder, index, name)


def _graph_output(builder: Builder, index: int) -> onnx.ValueInfoProto:
    if builder.data(index) is not None:
        raise ModelFormatError(f"{builder.source}: output {builder.label(index)!r} is a constant")
    return _value_info(builder, index, builder.get(index, NATIVE))
