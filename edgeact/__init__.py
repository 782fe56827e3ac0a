"""edgeact: int8 edge deployment for models with saturating and smooth activations.

Public API (mirrors the CLI): :func:`quantize` (``edgeact quantize``), :func:`calibrate` (``edgeact calibrate``),
:func:`sensitivity` (``edgeact sensitivity``), :func:`build_lut` (``edgeact lut``), :func:`devices`
(``edgeact devices``), plus the building blocks
:func:`activation`, :class:`QParams` and :func:`lut_for`. ``quantize``/``calibrate``/``sensitivity`` load onnx and
onnxruntime on first use.
"""

__version__ = "0.1.0"

from edgeact.activations import activation  # noqa: E402
from edgeact.lut import LutReport, build_lut  # noqa: E402
from edgeact.numerics import Convention, QParams, lut_for, table_error  # noqa: E402

__all__ = [
    "Convention", "LutReport", "QParams", "QuantizeResult", "__version__", "activation", "build_lut", "calibrate",
    "devices", "lut_for", "quantize", "sensitivity", "table_error",
]

_LAZY = {"quantize", "calibrate", "sensitivity", "devices", "QuantizeResult"}


def __getattr__(name: str):  # noqa: ANN202 - module-level lazy attribute
    if name in _LAZY:
        from edgeact import api

        return getattr(api, name)
    raise AttributeError(f"module 'edgeact' has no attribute {name!r}")
