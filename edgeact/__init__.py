"""edgeact: int8 edge deployment for models with saturating and smooth activations.

Public API (mirrors the CLI): :func:`build_lut` (``edgeact lut``), plus the building blocks
:func:`activation`, :class:`QParams` and :func:`lut_for`.
"""

__version__ = "0.1.0"

from edgeact.activations import activation  # noqa: E402
from edgeact.lut import LutReport, build_lut  # noqa: E402
from edgeact.numerics import Convention, QParams, lut_for, table_error  # noqa: E402

__all__ = ["Convention", "LutReport", "QParams", "__version__", "activation", "build_lut", "lut_for", "table_error"]
