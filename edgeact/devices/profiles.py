"""Load device profiles and answer: does this device compute (op, qparams) as the exact table does?

Schema version 1 covers how a device computes int8 activation builtins (``[activations.OP]``); later
versions add the rest of the device description. Unknown keys, missing keys and wrong types are
errors that name the key and the file.
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

SCHEMA_VERSION = 1
KERNELS = ("exact", "fixed_output", "fixed_point", "missing")
_TOP_KEYS = {"schema_version": int, "name": str, "description": str, "runtime": str, "activations": dict}
_ACTIVATION_KEYS = {
    "kernel": str,
    "output_scale": float,
    "output_zero_point": int,
    "refuses_other_output": str,
    "max_lsb_error": int,
}


@dataclass(frozen=True)
class ActivationKernel:
    """How a device computes one int8 activation builtin."""

    kernel: str
    output_scale: float | None = None
    output_zero_point: int | None = None
    refuses_other_output: str = "nothing"
    max_lsb_error: int = 0


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    description: str
    runtime: str
    activations: dict[str, ActivationKernel]
    source: str


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


def _parse(data: dict[str, Any], source: str) -> DeviceProfile:
    _check_keys(data, _TOP_KEYS, "", source, set(_TOP_KEYS))
    if data["schema_version"] != SCHEMA_VERSION:
        raise DeviceProfileError(
            f"{source}: schema_version {data['schema_version']} is not supported (this edgeact reads {SCHEMA_VERSION})"
        )
    activations = {}
    for op, entry in data["activations"].items():
        _check_keys(entry, _ACTIVATION_KEYS, f"activations.{op}.", source, {"kernel"})
        if entry["kernel"] not in KERNELS:
            raise DeviceProfileError(
                f"{source}: activations.{op}.kernel is {entry['kernel']!r}; expected one of {', '.join(KERNELS)}"
            )
        activations[op] = ActivationKernel(**entry)
    return DeviceProfile(data["name"], data["description"], data["runtime"], activations, source)


def load_profile(name_or_path: str | Path) -> DeviceProfile:
    """A built-in profile by name (``"tflm"``) or a profile file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        source, text = str(path), _read(path)
    else:
        resource = resources.files("edgeact").joinpath("device_profiles", f"{name_or_path}.toml")
        if not resource.is_file():
            raise DeviceProfileError(f"no built-in device profile {str(name_or_path)!r}")
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
