"""The one exception tree of edgeact.

Every error a user can cause derives from :class:`EdgeactError`; the CLI maps them to exit codes
(``UsageError`` -> 2, everything else -> 1).
"""

from __future__ import annotations


class EdgeactError(Exception):
    """Base of every error edgeact raises on purpose."""


class UsageError(EdgeactError):
    """An argument or option has a value that cannot be used (exit code 2)."""


class QuantizationRangeError(EdgeactError):
    """A float range cannot give quantization parameters (zero width, non-finite)."""


class UnknownActivationError(UsageError):
    """An activation name that is not in the registry."""


class UnsupportedConventionError(UsageError):
    """A table convention that has no form for the requested bit width or function."""


class ModelFormatError(EdgeactError):
    """A model file that cannot be read or written as the format it claims to be."""


class RuntimeUnavailableError(EdgeactError):
    """A runtime (LiteRT, TFLite Micro, onnxruntime) that is not installed or refuses a model."""


class DeviceProfileError(EdgeactError):
    """A device profile file that does not follow the schema."""


class CalibrationDataError(EdgeactError):
    """Calibration data that does not match the model (names, dtypes, shapes) or holds NaN/Inf."""


class GateInputError(EdgeactError):
    """A report or baseline that cannot be compared (corrupt, other schema, other device, other model)."""


class DocumentError(EdgeactError):
    """A JSON document (a profile-device report, a calibration record) that does not follow its schema; the message
    names the field (``outputs.y.sqnr_db is a string, expected a number``)."""


class UserCodeError(EdgeactError):
    """The user's Python code named by reference (a model factory, a metric) that cannot be imported, is not what
    was asked for, or raised: the message names the reference and the exception."""
