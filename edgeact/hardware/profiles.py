"""Load device profiles and answer: does this device compute (op, qparams) as the exact table does?

Schema version 2: the backend that runs the model (a real runtime, or edgeact's emulator for targets with no
runtime here), the model format it consumes, requantization rounding per op, which arithmetic the emulator uses
for it, per-channel and int16 support, thread count, the ops it runs (naming the op sets of ``op_sets.toml`` as
``"@set"``; see that file), and how each int8 activation builtin is computed (``[activations.OP]``). Unknown
keys, missing keys, wrong types, values out of range and other schema versions are errors that name the key and the
file. A built-in profile is asked for by name (``NAME_PATTERN``: never a path into
or out of the package), any other profile by a path ending in ``.toml``.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from edgeact.errors import DeviceProfileError, UsageError
from edgeact.numerics.qparams import QParams
from edgeact.numerics.tables import Convention

SCHEMA_VERSION = 2
KERNELS = ("exact", "exact_at_output", "fixed_output", "fixed_point", "missing")
# The classes these name are in edgeact.runtimes.backends.BACKENDS (a test keeps the two equal).
BACKENDS = ("onnxruntime", "litert-xnnpack", "litert-builtin", "litert-reference", "tflm", "emulator")
FORMATS = ("tflite", "onnx")
ARITHMETIC = ("reference", "xnnpack", "tflm")
ROUNDINGS = {"double": "tflite_double", "single": "single", "float_rne": "float32_rne"}
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")  # a built-in profile's name (the file device_profiles/NAME.toml)
REFUSALS = ("nothing", "zero_point")
ACTIVATION_CODES = ("int8", "uint8")  # the integer type of int8-grid activation codes (uint8: zero point + 128)
CONVENTIONS = tuple(convention.value for convention in Convention)
MAX_THREADS = 1024
OP_SETS = "op_sets.toml"  # the named op sets profiles refer to as "@name" (not a profile itself)


@dataclass(frozen=True)
class _Field:
    """What one key of a profile holds: its type, and the values or range it may take."""

    kind: type  # str | int | float | bool | list | dict
    required: bool = True
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    above_low: bool = False  # the range excludes ``low`` itself
    items: tuple[str, ...] | None = None  # a list of strings, from these choices (empty: any string)


_TOP_KEYS = {
    "schema_version": _Field(int), "name": _Field(str), "description": _Field(str),
    "backend": _Field(str, choices=BACKENDS), "model_format": _Field(str, choices=FORMATS),
    "arithmetic": _Field(str, choices=ARITHMETIC), "per_channel": _Field(bool), "int16_activations": _Field(bool),
    "threads": _Field(int, low=1, high=MAX_THREADS), "requantization": _Field(dict), "activations": _Field(dict),
    "sources": _Field(str, required=False), "ops": _Field(list, items=()), "dtypes": _Field(list, items=()),
    "int16_ops": _Field(list, required=False, items=()),
    "activation_codes": _Field(str, required=False, choices=ACTIVATION_CODES),
    "float_island_ops": _Field(list, required=False, items=()),
    "int8_off_fast_path": _Field(list, required=False, items=()),
}
_ACTIVATION_KEYS = {
    "kernel": _Field(str, choices=KERNELS),
    "output_scale": _Field(float, required=False, low=0.0, above_low=True),
    "output_zero_point": _Field(int, required=False, low=-128, high=127),
    "refuses_other_output": _Field(str, required=False, choices=REFUSALS),
    "max_lsb_error": _Field(int, required=False, low=0, high=255),
    "conventions": _Field(list, required=False, items=CONVENTIONS),
    "splits_fast_path": _Field(bool, required=False),
}
_OP_SET_KEYS = {"description": _Field(str), "ops": _Field(list, items=())}
_NEEDS_OUTPUT_GRID = ("fixed_output", "exact_at_output")
_KIND_NAMES = {str: "str (a string)", int: "int (an integer)", float: "float (a finite number)",
               bool: "bool (true or false)", list: "list (an array)", dict: "a table"}


@dataclass(frozen=True)
class ActivationKernel:
    """How a device computes one int8 activation builtin."""

    kernel: str
    output_scale: float | None = None
    output_zero_point: int | None = None
    refuses_other_output: str = "nothing"
    max_lsb_error: int = 0
    conventions: tuple[str, ...] = ()  # table conventions the device may build it with (exact kinds)
    splits_fast_path: bool = False  # its fast path (a delegate) does not run it: each one splits the graph there


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    description: str
    backend: str
    model_format: str
    arithmetic: str  # the emulator's kernels for this device: reference | xnnpack | tflm
    per_channel: bool
    int16_activations: bool  # its fast path (a delegate, the optimized kernels) takes int16 activations
    threads: int
    requantization: dict[str, str]  # op -> numerics RequantRounding value; "*" for every other op
    activations: dict[str, ActivationKernel]
    source: str
    ops: tuple[str, ...]  # builtin ops (TFLite) or op types (ONNX) the device runs
    dtypes: tuple[str, ...]  # tensor types it runs them on
    int16_ops: tuple[str, ...] = ()  # TFLite builtins it runs on int16 activations (16x8), checked bit-exact
    activation_codes: str = "int8"  # the code type its fast kernels take for 8-bit activations (ONNX: int8 | uint8)
    float_island_ops: tuple[str, ...] = ()  # float32 builtins its fast path runs between DEQUANTIZE and QUANTIZE
    int8_off_fast_path: tuple[str, ...] = ()  # builtins its fast path does not run in int8 (each splits it there)

    def island_instead(self, ops: tuple[str, ...]) -> bool:
        """Whether an op lowered to builtins ``ops`` runs faster as a float island: one of them splits the fast path
        in int8, and the fast path runs all of them in float32 between DEQUANTIZE and QUANTIZE."""
        return any(op in self.int8_off_fast_path for op in ops) and self.runs_float_island(ops)

    def runs_float_island(self, ops: tuple[str, ...]) -> bool:
        """Whether its fast path runs DEQUANTIZE -> ``ops`` (float32) -> QUANTIZE without leaving it."""
        return bool(ops) and all(op in self.float_island_ops for op in ("DEQUANTIZE", *ops, "QUANTIZE"))

    def runs_int16(self, op: str) -> bool:
        """Whether the device runs TFLite builtin ``op`` on int16 activations (16x8)."""
        return op in self.int16_ops

    @property
    def runtime(self) -> str:
        return self.backend

    def runs_op(self, op: str) -> bool:
        """Whether the device runs builtin (TFLite) or op type (ONNX) ``op`` at all."""
        return "*" in self.ops or op in self.ops


@dataclass(frozen=True)
class ActivationVerdict:
    """Whether a device computes an activation builtin the way the exact table does."""

    correct: bool
    status: str  # exact | within_lsb | wrong_silently | refused | missing | unknown
    reason: str


def _type_name(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "table"}.get(
        type(value), type(value).__name__)


def _show(value: Any) -> str:
    """``repr(value)``, cut short (a whole table in an error message helps nobody)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_type(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _in_range(value: Any, spec: _Field) -> bool:
    if spec.low is not None and (value <= spec.low if spec.above_low else value < spec.low):
        return False
    return spec.high is None or value <= spec.high


def _check_value(value: Any, spec: _Field, key: str, source: str) -> None:
    """One key's value against its spec: type (finite numbers), choices, range, list items."""
    if not _check_type(value, spec.kind):
        raise DeviceProfileError(f"{source}: key '{key}' must be {_KIND_NAMES[spec.kind]}, "
                                 f"got {_type_name(value)} {_show(value)}")
    if spec.choices and value not in spec.choices:
        allowed = ", ".join(map(str, spec.choices))
        raise DeviceProfileError(f"{source}: {key} is {_show(value)}; expected one of {allowed}")
    if not _in_range(value, spec):
        bounds = f"> {spec.low}" if spec.above_low else f"from {spec.low} to {spec.high}"
        raise DeviceProfileError(f"{source}: key '{key}' is {value!r}; it must be {bounds}")
    if spec.items is not None:
        for item in value:
            if not isinstance(item, str) or (spec.items and item not in spec.items):
                allowed = f" from {', '.join(spec.items)}" if spec.items else ""
                raise DeviceProfileError(f"{source}: key '{key}' must be a list of strings{allowed}; got {_show(item)}")


def _check_table(table: Any, schema: dict[str, _Field], where: str, source: str) -> None:
    """Every key of ``table`` known, every required key present, every value of its type and range."""
    if not isinstance(table, dict):
        name = where.rstrip(".") or "the profile"
        raise DeviceProfileError(f"{source}: '{name}' must be a table, got {_type_name(table)} {_show(table)}")
    for key, value in table.items():
        if key not in schema:
            raise DeviceProfileError(f"{source}: unknown key '{where}{key}'; allowed: {', '.join(schema)}")
        _check_value(value, schema[key], f"{where}{key}", source)
    for key in sorted(key for key, spec in schema.items() if spec.required and key not in table):
        raise DeviceProfileError(f"{source}: missing key '{where}{key}'")


def _requantization(table: dict[str, Any], source: str) -> dict[str, str]:
    modes = {}
    for op, mode in table.items():
        if not isinstance(mode, str) or mode not in ROUNDINGS:
            raise DeviceProfileError(
                f"{source}: requantization.{op} is {_show(mode)}; expected one of {', '.join(ROUNDINGS)} (a string)"
            )
        modes[op] = ROUNDINGS[mode]
    if "*" not in modes:
        raise DeviceProfileError(f"{source}: missing key 'requantization.\"*\"' (the rounding of every other op)")
    return modes


def _activation(op: str, entry: Any, source: str) -> ActivationKernel:
    where = f"activations.{op}."
    _check_table(entry, _ACTIVATION_KEYS, where, source)
    if entry["kernel"] in _NEEDS_OUTPUT_GRID:
        for key in ("output_scale", "output_zero_point"):
            if key not in entry:
                raise DeviceProfileError(
                    f"{source}: missing key '{where}{key}' (kernel {entry['kernel']!r} needs the output grid)"
                )
    values = {**entry, "conventions": tuple(entry.get("conventions", ()))}
    if "output_scale" in values:
        values["output_scale"] = float(values["output_scale"])
    return ActivationKernel(**values)


@cache
def op_sets() -> dict[str, tuple[str, ...]]:
    """The built-in op sets (``op_sets.toml``), each expanded to its ops."""
    source = f"built-in op sets {OP_SETS}"
    text = resources.files("edgeact").joinpath("device_profiles", OP_SETS).read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DeviceProfileError(f"{source}: not valid TOML: {exc}") from exc
    for name, entry in data.items():
        _check_table(entry, _OP_SET_KEYS, f"{name}.", source)
    raw = {name: entry["ops"] for name, entry in data.items()}
    return {name: expand_ops(raw[name], raw, f"{source}: set {name!r}") for name in raw}


def expand_ops(ops: list[str], sets: dict[str, list[str]] | dict[str, tuple[str, ...]], where: str,
               seen: tuple[str, ...] = ()) -> tuple[str, ...]:
    """``ops`` with every ``"@set"`` replaced by the set's ops and every ``"-OP"`` removed (in order, once each);
    errors name ``where``."""
    found: dict[str, None] = {}
    removed = []
    for item in ops:
        if item.startswith("-"):
            removed.append(item[1:])
        elif item.startswith("@"):
            name = item[1:]
            if name not in sets:
                raise DeviceProfileError(f"{where}: ops names op set {item!r}; known sets: "
                                         f"{', '.join('@' + known for known in sets)}")
            if name in seen:
                raise DeviceProfileError(f"{where}: op set {item!r} includes itself")
            found.update(dict.fromkeys(expand_ops(list(sets[name]), sets, where, (*seen, name))))
        else:
            found[item] = None
    for op in removed:
        if op not in found:
            raise DeviceProfileError(f"{where}: ops removes '-{op}', which none of its op sets holds")
        del found[op]
    return tuple(found)


def _parse(data: dict[str, Any], source: str) -> DeviceProfile:
    if data.get("schema_version") != SCHEMA_VERSION:
        raise DeviceProfileError(
            f"{source}: schema_version {_show(data.get('schema_version'))} is not supported (this edgeact reads "
            f"{SCHEMA_VERSION})"
        )
    _check_table(data, _TOP_KEYS, "", source)
    activations = {op: _activation(op, entry, source) for op, entry in data["activations"].items()}
    ops = expand_ops(data["ops"], op_sets(), source)
    int16_ops = _int16_ops(data, ops, source)
    codes = data.get("activation_codes", "int8")
    if codes != "int8" and data["model_format"] != "onnx":
        raise DeviceProfileError(f"{source}: activation_codes {codes!r} needs model_format \"onnx\" (TFLite's int8 "
                                 "kernels take int8 activations)")
    if codes not in data["dtypes"]:
        raise DeviceProfileError(f"{source}: activation_codes {codes!r} is not one of its dtypes {data['dtypes']}")
    islands, off = tuple(data.get("float_island_ops", ())), tuple(data.get("int8_off_fast_path", ()))
    foreign = [op for op in (*islands, *off) if "*" not in ops and op not in ops]
    if foreign:
        raise DeviceProfileError(f"{source}: float_island_ops / int8_off_fast_path name {foreign}, which its ops do "
                                 "not hold")
    return DeviceProfile(
        data["name"], data["description"], data["backend"], data["model_format"], data["arithmetic"],
        data["per_channel"], data["int16_activations"], data["threads"],
        _requantization(data["requantization"], source), activations, source, ops, tuple(data["dtypes"]), int16_ops,
        codes, islands, off,
    )


def _int16_ops(data: dict[str, Any], ops: tuple[str, ...], source: str) -> tuple[str, ...]:
    """``int16_ops`` expanded: ops the device runs at all, with the int16 and int64 (bias) tensor types it needs."""
    int16_ops = expand_ops(data.get("int16_ops", []), op_sets(), source)
    foreign = [op for op in int16_ops if "*" not in ops and op not in ops]
    if foreign:
        raise DeviceProfileError(f"{source}: int16_ops names {foreign}, which its ops do not hold")
    missing = [dtype for dtype in ("int16", "int64") if int16_ops and dtype not in data["dtypes"]]
    if missing:
        raise DeviceProfileError(f"{source}: int16_ops needs dtypes {missing} (int16 activations, int64 biases)")
    return int16_ops


def builtin_profiles() -> list[str]:
    """Names of the profiles shipped with edgeact."""
    folder = resources.files("edgeact").joinpath("device_profiles")
    return sorted(entry.name.removesuffix(".toml") for entry in folder.iterdir()
                  if entry.name.endswith(".toml") and entry.name != OP_SETS)


ALIASES = {"litert": "litert-xnnpack"}  # names that stand for a built-in profile


def load_profile(name_or_path: str | Path) -> DeviceProfile:
    """A built-in profile by name (``"tflm"``, matching ``NAME_PATTERN``; an alias such as ``"litert"``) or a
    profile file by a path ending .toml."""
    text = ALIASES.get(str(name_or_path), str(name_or_path))
    if text.endswith(".toml"):
        source, content = text, _read(Path(text))
    elif NAME_PATTERN.fullmatch(text):
        source, content = f"built-in profile {text}", _builtin(text)
    else:
        raise UsageError(
            f"device profile {text!r} is neither a built-in name ({', '.join(builtin_profiles())}) nor a profile "
            "file: a profile file's path must end in .toml"
        )
    try:
        data = tomllib.loads(content)
    except tomllib.TOMLDecodeError as exc:
        raise DeviceProfileError(f"{source}: not valid TOML: {exc}") from exc
    return _parse(data, source)


def _builtin(name: str) -> str:
    """The text of built-in profile ``name`` (already checked against ``NAME_PATTERN``: no path separators)."""
    resource = resources.files("edgeact").joinpath("device_profiles", f"{name}.toml")
    if not resource.is_file():
        raise DeviceProfileError(
            f"no built-in device profile {name!r}; known: {', '.join(builtin_profiles())} (or pass a .toml path)"
        )
    return resource.read_text(encoding="utf-8")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DeviceProfileError(f"{path}: cannot read device profile: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DeviceProfileError(f"{path}: device profile is not UTF-8 text (byte {exc.start}: {exc.reason})") from exc


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
