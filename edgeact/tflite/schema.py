"""Access to the TFLite flatbuffer schema bindings of the ``tflite`` package.

``from tflite import Model`` gives a class, not the module with the builder functions, so every
module is imported by name here, once.
"""

from __future__ import annotations

import importlib
from functools import cache
from types import ModuleType

import numpy as np

TENSOR_TYPES: dict[str, str] = {
    "float32": "FLOAT32",
    "float16": "FLOAT16",
    "int32": "INT32",
    "uint8": "UINT8",
    "int64": "INT64",
    "bool": "BOOL",
    "int16": "INT16",
    "int8": "INT8",
}


@cache
def schema_module(name: str) -> ModuleType:
    """The ``tflite.<name>`` module (builder functions and enums)."""
    return importlib.import_module(f"tflite.{name}")


def builtin_operator_code(op: str) -> int:
    """Numeric BuiltinOperator code of an op name such as ``"TANH"``."""
    enum = schema_module("BuiltinOperator").BuiltinOperator
    try:
        return int(getattr(enum, op))
    except AttributeError:
        raise KeyError(f"TFLite has no builtin operator {op!r}") from None


def tensor_type_code(dtype: str) -> int:
    """Numeric TensorType of a numpy dtype name."""
    return int(getattr(schema_module("TensorType").TensorType, TENSOR_TYPES[np.dtype(dtype).name]))


def builtin_options_code(options_name: str) -> int:
    """Numeric BuiltinOptions union tag of an options table name such as ``"GeluOptions"``."""
    return int(getattr(schema_module("BuiltinOptions").BuiltinOptions, options_name))
