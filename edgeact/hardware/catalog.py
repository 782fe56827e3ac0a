"""The built-in device profiles at a glance, for ``edgeact devices``: one summary per profile, from its facts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from edgeact.hardware.profiles import DeviceProfile, builtin_profiles, load_profile


@dataclass(frozen=True)
class DeviceSummary:
    """One device profile: what it is, what runs it, and what it runs."""

    name: str
    aliases: tuple[str, ...]  # other names --target takes for it
    description: str
    backend: str  # the runtime profile-device runs its models on
    model_format: str  # tflite | onnx
    arithmetic: str  # the emulator's kernels for it
    per_channel: bool  # per-channel int8 weights
    ops: int | None  # builtins (TFLite) or op types (ONNX) it runs; None: every op
    int16: str  # what it runs on int16 activations
    float_islands: bool  # an op its fast path runs only in float becomes DEQUANTIZE -> float op -> QUANTIZE inside it

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "aliases": list(self.aliases)}


def _int16(profile: DeviceProfile) -> str:
    if profile.model_format == "onnx":
        return "int16 Q/DQ" if profile.int16_activations else "no"
    if not profile.int16_ops:
        return "no"
    where = "" if profile.int16_activations else ", off its fast path"
    return f"16x8: {len(profile.int16_ops)} builtins{where}"


def summary(profile: DeviceProfile, aliases: tuple[str, ...] = ()) -> DeviceSummary:
    """The summary of one loaded profile."""
    return DeviceSummary(
        name=profile.name, aliases=aliases, description=profile.description, backend=profile.backend,
        model_format=profile.model_format, arithmetic=profile.arithmetic, per_channel=profile.per_channel,
        ops=None if "*" in profile.ops else len(profile.ops), int16=_int16(profile),
        float_islands=bool(profile.float_island_ops))


def device_summaries(aliases: Mapping[str, str] | None = None) -> list[DeviceSummary]:
    """Every built-in profile, by name; ``aliases``: alias -> profile name (``litert`` -> ``litert-xnnpack``)."""
    named = aliases or {}
    return [summary(load_profile(name), tuple(sorted(a for a, target in named.items() if target == name)))
            for name in builtin_profiles()]
