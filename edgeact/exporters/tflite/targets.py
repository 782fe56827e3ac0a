"""Which device a TFLite export targets: a device profile whose model format is tflite (``litert`` is shorthand for
``litert-xnnpack``, LiteRT's default interpreter), by built-in name or by a path ending in ``.toml``. Which int8
activation builtins the device computes exactly is the planner's question (planning.target_forms); the lowering asks
the profile only which ops it runs at all, never a device name."""

from __future__ import annotations

from edgeact.errors import DeviceProfileError, UsageError
from edgeact.hardware.profiles import DeviceProfile, builtin_profiles, load_profile
from edgeact.planning.target_forms import ALIASES


def tflite_targets() -> list[str]:
    """Names ``--target`` accepts: the built-in tflite profiles and their aliases."""
    names = [name for name in builtin_profiles() if load_profile(name).model_format == "tflite"]
    return sorted(list(ALIASES) + names)


def target(name: str) -> DeviceProfile:
    """The device profile a TFLite export targets (a built-in name, an alias, or a profile .toml path)."""
    try:
        profile = load_profile(ALIASES.get(name, name))
    except UsageError as exc:
        raise UsageError(f"unknown TFLite target {name!r}: expected one of {', '.join(tflite_targets())}, or a device "
                         "profile file whose path ends in .toml") from exc
    except DeviceProfileError as exc:
        if str(name).endswith(".toml"):  # the file exists or not, is a valid profile or not: its own message
            raise
        raise UsageError(f"unknown TFLite target {name!r}: {exc}") from exc
    if profile.model_format != "tflite":
        raise UsageError(f"target {name!r} runs .{profile.model_format} models, not .tflite")
    return profile
