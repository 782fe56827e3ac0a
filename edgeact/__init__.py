"""edgeact: int8 edge deployment for models with saturating and smooth activations.

Public API (mirrors the CLI): :func:`quantize` (``edgeact quantize``), :func:`calibrate` (``edgeact calibrate``),
:func:`sensitivity` (``edgeact sensitivity``), :func:`profile_device` (``edgeact profile-device``), :func:`gate`
(``edgeact gate``), :func:`drift` (``edgeact drift``), :func:`devices` (``edgeact devices``), :func:`build_lut`
(``edgeact lut``), plus the building
blocks :func:`activation`, :class:`QParams` and :func:`lut_for`. The commands' functions load onnx, onnxruntime and
LiteRT on first use.
"""

__version__ = "0.1.0"

from edgeact.activations import activation  # noqa: E402
from edgeact.lut import LutReport, build_lut  # noqa: E402
from edgeact.numerics import Convention, QParams, lut_for, table_error  # noqa: E402

__all__ = [
    "Convention", "LutReport", "QParams", "QuantizeResult", "__version__", "activation", "build_lut", "calibrate",
    "devices", "drift", "gate", "lut_for", "profile_device", "quantize", "sensitivity", "table_error",
]

_LAZY = {"quantize", "calibrate", "sensitivity", "devices", "drift", "profile_device", "gate", "QuantizeResult"}


def __getattr__(name: str):  # noqa: ANN202 - module-level lazy attribute
    if name in _LAZY:
        from edgeact import api

        return getattr(api, name)
    raise AttributeError(f"module 'edgeact' has no attribute {name!r}")
