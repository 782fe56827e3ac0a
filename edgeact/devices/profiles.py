"""Load device profiles and answer: does this device compute (op, qparams) as the exact table does?

Schema version 2: the backend that runs the model (a real runtime, or edgeact's emulator for targets with no
runtime here), the model format it consumes, requantization rounding per op, which arithmetic the emulator uses
for it, per-channel and int16 support, thread count, and how each int8 activation builtin is computed
(``[activations.OP]``). Unknown keys, missing keys, wrong types and other schema versions are errors that name the
key and the file.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from edgeact.errors import DeviceProfileError
from edgeact.numerics.qparams import QParams

SCHEMA_VERSION = 2
KERNELS = ("exact", "exact_at_output", "fixed_output", "fixed_point", "missing")
BACKENDS = ("onnxruntime", "litert-xnnpack", "litert-reference", "tflm", "emulator")
FORMATS = ("tflite", "onnx")
ARITHMETIC = ("reference", "xnnpack")
ROUNDINGS = {"double": "tflite_double", "single": "single", "float_rne": "float32_rne"}
_TOP_KEYS = {
    "schema_version": int, "name": str, "description": str, "backend": str, "model_format": str,
    "arithmetic": str, "per_channel": bool, "int16_activations": bool, "threads": int, "requantization": dict,
    "activations": dict, "sources": str, "ops": list, "dtypes": list,
}
_OPTIONAL = {"sources"}
_ACTIVATION_KEYS = {
    "kernel": str,
    "output_scale": float,
    "output_zero_point": int,
    "refuses_other_output": str,
    "max_lsb_error": int,
    "conventions": list,
}


@dataclass(frozen=True)
class ActivationKernel:
    """How a device computes one int8 activation builtin."""

    kernel: str
    output_scale: float | None = None
    output_zero_point: int | None = None
    refuses_other_output: str = "nothing"
    max_lsb_error: int = 0
    conventions: tuple[str, ...] = ()  # table conventions the device may build it with (exact kinds)


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    description: str
    backend: str
    model_format: str
    arithmetic: str  # the emulator's kernels for this device: reference | xnnpack
    per_channel: bool
    int16_activations: bool
    threads: int
    requantization: dict[str, str]  # op -> numerics RequantRounding value; "*" for every other op
    activations: dict[str, ActivationKernel]
    source: str
    ops: tuple[str, ...]  # builtin ops (TFLite) or op types (ONNX) the device runs
    dtypes: tuple[str, ...]  # tensor types it runs them on

    @property
    def runtime(self) -> str:
        return self.backend


@dataclass(frozen=True)
class ActivationVerdict:
    """Whether a device computes an activation builtin the way the exact table does."""

    correct: bool
    status: str  # exact | within_lsb | wrong_silently | refused | missing | unknown
    reason: str


def _check_keys(table: dict[str, Any], schema: dict[str, type], where: str, source: str, required: set[str]) -> None:
    for key, value in table.items():
        if key not in schema:
            raise DeviceProfileError(f"{source}: unknown key '{where}{key}'; allowed: {', '.join(schema)}")
        expected = schema[key]
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise DeviceProfileError(
                f"{source}: key '{where}{key}' must be {expected.__name__}, got {type(value).__name__}"
            )
    for key in sorted(required - set(table)):
        raise DeviceProfileError(f"{source}: missing key '{where}{key}'")


def _one_of(data: dict[str, Any], key: str, allowed: tuple[str, ...], source: str) -> None:
    if data[key] not in allowed:
        raise DeviceProfileError(f"{source}: {key} is {data[key]!r}; expected one of {', '.join(allowed)}")


def _requantization(table: dict[str, Any], source: str) -> dict[str, str]:
    modes = {}
    for op, mode in table.items():
        if mode not in ROUNDINGS:
            raise DeviceProfileError(
                f"{source}: requantization.{op} is {mode!r}; expected one of {', '.join(ROUNDINGS)}"
            )
        modes[op] = ROUNDINGS[mode]
    if "*" not in modes:
        raise DeviceProfileError(f"{source}: missing key 'requantization.\"*\"' (the rounding of every other op)")
    return modes


def _parse(data: dict[str, Any], source: str) -> DeviceProfile:
    if data.get("schema_version") != SCHEMA_VERSION:
        raise DeviceProfileError(
            f"{source}: schema_version {data.get('schema_version')} is not supported (this edgeact reads "
            f"{SCHEMA_VERSION})"
        )
    _check_keys(data, _TOP_KEYS, "", source, set(_TOP_KEYS) - _OPTIONAL)
    _one_of(data, "backend", BACKENDS, source)
    _one_of(data, "model_format", FORMATS, source)
    _one_of(data, "arithmetic", ARITHMETIC, source)
    activations = {}
    for op, entry in data["activations"].items():
        _check_keys(entry, _ACTIVATION_KEYS, f"activations.{op}.", source, {"kernel"})
        if entry["kernel"] not in KERNELS:
            raise DeviceProfileError(
                f"{source}: activations.{op}.kernel is {entry['kernel']!r}; expected one of {', '.join(KERNELS)}"
            )
        activations[op] = ActivationKernel(**{**entry, "conventions": tuple(entry.get("conventions", ()))})
    return DeviceProfile(
        data["name"], data["description"], data["backend"], data["model_format"], data["arithmetic"],
        data["per_channel"], data["int16_activations"], data["threads"],
        _requantization(data["requantization"], source), activations, source,
        _strings(data, "ops", source), _strings(data, "dtypes", source),
    )


def _strings(data: dict[str, Any], key: str, source: str) -> tuple[str, ...]:
    values = data[key]
    if not all(isinstance(v, str) for v in values):
        raise DeviceProfileError(f"{source}: key '{key}' must be a list of strings")
    return tuple(values)


def builtin_profiles() -> list[str]:
    """Names of the profiles shipped with edgeact."""
    folder = resources.files("edgeact").joinpath("device_profiles")
    return sorted(entry.name.removesuffix(".toml") for entry in folder.iterdir() if entry.name.endswith(".toml"))


def load_profile(name_or_path: str | Path) -> DeviceProfile:
    """A built-in profile by name (``"tflm"``) or a profile file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        source, text = str(path), _read(path)
    else:
        resource = resources.files("edgeact").joinpath("device_profiles", f"{name_or_path}.toml")
        if not resource.is_file():
            raise DeviceProfileError(
                f"no built-in device profile {str(name_or_path)!r}; known: {', '.join(builtin_profiles())} "
                "(or pass a .toml path)"
            )
        source, text = f"built-in profile {name_or_path}", resource.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DeviceProfileError(f"{source}: not valid TOML: {exc}") from exc
    return _parse(data, source)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DeviceProfileError(f"{path}: cannot read device profile: {exc.strerror}") from exc


def _same_scale(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6)


def activation_verdict(profile: DeviceProfile, op: str, in_q: QParams, out_q: QParams) -> ActivationVerdict:
    """Does ``profile``'s device compute int8 builtin ``op`` from ``in_q`` to ``out_q`` correctly?"""
    kernel = profile.activations.get(op)
    if kernel is None:
        return ActivationVerdict(False, "unknown", f"profile {profile.name} says nothing about {op}")
    if kernel.kernel == "missing":
        return ActivationVerdict(False, "missing", f"{profile.name} has no int8 {op} kernel; the model will not load")
    if kernel.kernel == "exact":
        return ActivationVerdict(True, "exact", f"{profile.name} computes {op} bit-exactly for any grids")
    if kernel.kernel == "exact_at_output":
        if _same_scale(out_q.scale, kernel.output_scale) and out_q.zero_point == kernel.output_zero_point:
            return ActivationVerdict(True, "exact", f"{profile.name} computes {op} bit-exactly at this output grid")
        return ActivationVerdict(
            False, "refused", f"{profile.name} refuses {op} with output grid ({out_q.scale:.7g}, {out_q.zero_point}); "
            f"it takes only ({kernel.output_scale}, {kernel.output_zero_point})",
        )
    if kernel.kernel == "fixed_point":
        return ActivationVerdict(
            True, "within_lsb", f"{profile.name} computes {op} in fixed point within {kernel.max_lsb_error} LSB"
        )
    expected = (kernel.output_scale, kernel.output_zero_point)
    scale_ok = _same_scale(out_q.scale, kernel.output_scale)
    zero_ok = out_q.zero_point == kernel.output_zero_point
    if scale_ok and zero_ok:
        return ActivationVerdict(True, "exact", f"output grid {expected} is the one {profile.name} assumes for {op}")
    refuses = kernel.refuses_other_output == "zero_point" and not zero_ok
    if refuses:
        return ActivationVerdict(
            False,
            "refused",
            f"{profile.name} refuses {op} with output zero point {out_q.zero_point} (needs {expected[1]})",
        )
    return ActivationVerdict(
        False,
        "wrong_silently",
        f"{profile.name} computes {op} as if the output grid were (scale {expected[0]}, zero point {expected[1]}) "
        f"and ignores the model's (scale {out_q.scale:.7g}, zero point {out_q.zero_point}): wrong codes, no error",
    )
