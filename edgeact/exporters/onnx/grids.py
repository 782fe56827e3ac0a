"""How a planned grid is written in ONNX: the integer type of its codes, and the domain of the QuantizeLinear /
DequantizeLinear pair that carries it (int16 codes need opset 21, or onnxruntime's ``com.microsoft`` Q/DQ, which
accept int16 at any opset)."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

INT16_OPSET = 21  # the first ai.onnx opset whose QuantizeLinear/DequantizeLinear take int16
MICROSOFT = "com.microsoft"
CODE_TYPES: dict[str, tuple[type, ir.DataType]] = {
    "int8": (np.int8, ir.DataType.INT8), "uint8": (np.uint8, ir.DataType.UINT8),
    "int16": (np.int16, ir.DataType.INT16), "int32": (np.int32, ir.DataType.INT32)}


def qdq_domain(model: ir.Model, dtype: str) -> str:
    """The domain of the Q/DQ nodes for codes of ``dtype`` in ``model`` (registered in its opset imports)."""
    if dtype != "int16" or model.opset_imports.get("", 0) >= INT16_OPSET:
        return ""
    model.opset_imports.setdefault(MICROSOFT, 1)
    return MICROSOFT
