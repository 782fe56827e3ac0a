"""Each planned activation's form in each output format, for the plan's target device, with the reason.

A form is ``builtin`` (the runtime's own op computes the table: a TFLite builtin such as TANH), ``table`` (the exact
256-entry table as CAST -> ADD -> GATHER in TFLite or Cast -> Gather in ONNX) or ``float`` (the op runs between
dequantize and quantize). The TFLite builtin is chosen only where the target's profile says the device computes
the planned grids correctly (:func:`edgeact.hardware.profiles.activation_verdict`) *and* builds its table by a
convention that reproduces edgeact's table code for code. Exporters read the form; they never decide it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import numpy as np

from edgeact.activations import REGISTRY, Activation
from edgeact.errors import DeviceProfileError, UsageError
from edgeact.hardware.profiles import ALIASES, DeviceProfile, activation_verdict, builtin_profiles, load_profile
from edgeact.numerics import Table, lut_for
from edgeact.ops.spec import FormKind
from edgeact.ops.table import SPECS

BUILTIN, TABLE, FLOAT = FormKind.BUILTIN, FormKind.TABLE, FormKind.FLOAT
ONNX_CODES = ("auto", "int8", "uint8")  # --onnx-activations
RECURRENT_CELLS = ("auto", "int16", "float", "int8")  # --recurrent-cells
CELL_BUILTINS_16X8 = ("FULLY_CONNECTED", "ADD", "SUB", "MUL", "SPLIT", "GATHER")  # an unrolled cell's 16x8 ops
# activation -> the TFLite int8 builtin that computes it as a 256-entry table, and that builtin's options
# (each registry entry's ``tflite`` field, where its int8 kernel is a table)
TFLITE_INT8_BUILTINS: dict[str, tuple[str, dict[str, Any]]] = {
    name: (a.tflite.op, dict(a.tflite.options)) for name, a in REGISTRY.items()
    if a.tflite is not None and a.tflite.int8_table
}
TABLE_KERNELS = ("exact", "exact_at_output")  # profile kernels that compute a table (not fixed-point arithmetic)
ONNX_QDQ_REASON = ("onnx-qdq keeps the standard op between DequantizeLinear and QuantizeLinear; the runtime "
                   "computes it (onnxruntime CPU: in float32, Sigmoid fused into QLinearSigmoid)")
ONNX_TABLE_REASON = "onnx-table writes every planned activation as Cast -> Gather on its exact int8 table"
ONNX_TABLE16_REASON = "onnx-table writes an int16 activation as Cast -> Gather on its exact table (65,536 codes)"
TFLITE_TABLE16_REASON = ("16x8: the exact table, f rounded at every one of the 65,536 int16 codes, as CAST -> ADD -> "
                         "GATHER (TFLite's int16 builtins interpolate 513 knots, and TANH/LOGISTIC fix the output "
                         "grid)")


@dataclass(frozen=True)
class ActivationForm:
    """How one output format computes an activation: builtin | table | float, why, and the builtin (if any)."""

    kind: str
    reason: str
    op: str | None = None  # the builtin (TFLite: TANH, LOGISTIC, GELU)
    options: tuple[tuple[str, Any], ...] = ()  # the builtin's options, as (name, value) pairs

    def as_dict(self) -> dict[str, Any]:
        extra = {"op": self.op, "options": dict(self.options)} if self.op is not None else {}
        return {"form": self.kind, "reason": self.reason, **extra}


def target_profile(name: str) -> DeviceProfile:
    """The device profile a plan targets: a built-in name, an alias (``litert``), or a profile ``.toml`` path."""
    try:
        return load_profile(ALIASES.get(name, name))
    except UsageError as exc:
        raise UsageError(f"unknown target {name!r}: {exc}") from exc
    except DeviceProfileError as exc:
        if str(name).endswith(".toml"):  # the file's own message names it
            raise
        raise UsageError(f"unknown target {name!r}: {exc}") from exc


def _runs(profile: DeviceProfile, op: str) -> bool:
    return "*" in profile.ops or op in profile.ops


def _table_mismatch(kernel_conventions: tuple[str, ...], act: Activation, table: Table) -> str | None:
    """The first table convention the device may use whose table differs from the plan's, with how many codes."""
    for convention in kernel_conventions or ("ideal",):
        built = lut_for(act, table.in_q, table.out_q, convention).values
        differ = int(np.count_nonzero(built != table.values))
        if differ:
            return f"its table built the {convention} way differs from the planned one at {differ} of 256 codes"
    return None


def _off_fast_path(profile: DeviceProfile, act: Activation, form: ActivationForm, kernel: str) -> ActivationForm:
    """``form`` (a table, or a builtin the device's fast path does not run), or a float island where that form would
    split the fast path and the fast path runs the activation's float form between DEQUANTIZE and QUANTIZE: the same
    grids, f in float32 rounded onto the output grid (the table's codes up to float32 rounding at ties)."""
    entry = profile.activations.get(kernel)
    if entry is None or not entry.splits_fast_path:
        return form
    steps = act.float_builtins()
    if not profile.runs_float_island(steps):
        return form
    what = "a GATHER table" if kernel == "TABLE" else f"int8 {kernel}"
    return ActivationForm(FLOAT, f"{form.reason}; but {what} would split {profile.name}'s fast path, and "
                                 f"DEQUANTIZE -> {' -> '.join(steps)} -> QUANTIZE runs inside it (same grids)")


def _table(profile: DeviceProfile, act: Activation, reason: str) -> ActivationForm:
    return _off_fast_path(profile, act, ActivationForm(TABLE, reason), "TABLE")


def tflite_form(profile: DeviceProfile, act: Activation, table: Table) -> ActivationForm:
    """The activation's form in a .tflite for ``profile``: the exact builtin where the device computes exactly the
    planned table with it, else the GATHER table; either as a float island where it would split the device's fast
    path and the island would not."""
    if act.name not in TFLITE_INT8_BUILTINS:
        return _table(profile, act, f"TFLite has no int8 builtin that computes {act.name} as a table")
    op, options = TFLITE_INT8_BUILTINS[act.name]
    if not _runs(profile, op):
        return _table(profile, act, f"{profile.name} has no {op} kernel")
    verdict = activation_verdict(profile, op, table.in_q, table.out_q)
    if not verdict.correct or verdict.status != "exact":
        return _table(profile, act, f"{op}: {verdict.reason}")
    kernel = profile.activations[op]
    if kernel.kernel not in TABLE_KERNELS:
        return _table(profile, act, f"{profile.name}'s {op} kernel is {kernel.kernel}, not a table: its codes "
                                    "are not the planned table's")
    mismatch = _table_mismatch(kernel.conventions, act, table)
    if mismatch is not None:
        return _table(profile, act, f"{profile.name}'s {op}: {mismatch}")
    builtin = ActivationForm(BUILTIN, f"{verdict.reason}; its table equals the planned one", op,
                             tuple(sorted(options.items())))
    return _off_fast_path(profile, act, builtin, op)


def activation_forms(profile: DeviceProfile, act: Activation, table: Table) -> dict[str, ActivationForm]:
    """The activation's form in every output format (``tflite`` only when the target runs .tflite models)."""
    table_reason = ONNX_TABLE_REASON if table.bits == 8 else ONNX_TABLE16_REASON
    forms = {"onnx-qdq": ActivationForm(FLOAT, ONNX_QDQ_REASON), "onnx-table": ActivationForm(TABLE, table_reason)}
    if profile.model_format == "tflite":
        forms["tflite"] = tflite_form(profile, act, table) if table.bits == 8 else ActivationForm(
            TABLE, TFLITE_TABLE16_REASON)
    return forms


def onnx_activation_codes(choice: str = "auto") -> tuple[str, str]:
    """The integer type of 8-bit activation codes in the ONNX forms, and why: ``auto`` asks the ONNX device's
    profile which codes its fast kernels take; ``int8`` or ``uint8`` is the user's choice. The grids are the same
    either way (a uint8 code is the int8 code + 128); weights stay int8, biases int32, int16 grids int16."""
    if choice not in ONNX_CODES:
        raise UsageError(f"ONNX activation codes must be one of {', '.join(ONNX_CODES)}, got {choice!r}")
    if choice != "auto":
        return choice, f"asked for (--onnx-activations {choice})"
    device = onnx_device()
    if device.activation_codes == "uint8":
        return "uint8", (f"{device.name}: its int8 kernels (QLinearConv, QLinearMatMul, QLinearAdd, ...) are fused "
                         "from QDQ for uint8 activations with int8 weights; with int8 activations most ops run "
                         "DequantizeLinear -> float32 -> QuantizeLinear (on x86 without VNNI its u8 x s8 products "
                         "can saturate: profile-device flags it; --onnx-activations int8 avoids it)")
    return device.activation_codes, f"{device.name}: its kernels take {device.activation_codes} activations"


def recurrent_cell_precision(profile: DeviceProfile, choice: str = "auto") -> tuple[str, str]:
    """The precision of an unrolled LSTM/GRU cell's gates and state (its output h stays int8), and why.

    ``auto``: int16, as TFLite's integer LSTM keeps them (int8 error in the state compounds step after step), where
    the target's fast path runs the cell's ops on int16; float where it does not (the cell's ops then run between
    DEQUANTIZE and QUANTIZE); ``int16``, ``float`` or ``int8`` is the user's choice."""
    if choice not in RECURRENT_CELLS:
        raise UsageError(f"recurrent cells must be one of {', '.join(RECURRENT_CELLS)}, got {choice!r}")
    if choice != "auto":
        return choice, f"--recurrent-cells {choice}"
    state = "int8 error in a recurrent cell's gates and state compounds over its steps"
    missing = [] if profile.model_format == "onnx" else [op for op in CELL_BUILTINS_16X8 if not profile.runs_int16(op)]
    if profile.int16_activations and not missing:
        return "int16", f"{state}: int16 there, as TFLite's integer LSTM keeps them (the cell's output h int8)"
    why = (f"runs no 16x8 {', '.join(missing)}" if missing else
           "takes no int16 on its fast path (int16_activations = false)")
    return "float", f"{state}, and {profile.name} {why}: float there (--recurrent-cells int8 makes them int8)"


@cache
def onnx_device() -> DeviceProfile:
    """The device the ONNX forms are planned for (``--target`` names the TFLite device): the built-in profile that
    runs ONNX models (the first by name, were there several)."""
    onnx = [profile for profile in map(load_profile, builtin_profiles()) if profile.model_format == "onnx"]
    if not onnx:
        raise DeviceProfileError("no built-in device profile runs ONNX models (model_format = \"onnx\")")
    return onnx[0]


def float_forms(reason: str) -> dict[str, ActivationForm]:
    """An activation the plan keeps float: the same form, for the same reason, in every format."""
    return {form: ActivationForm(FLOAT, reason) for form in ("onnx-qdq", "onnx-table", "tflite")}


def op_islands(profile: DeviceProfile, plan: Any) -> dict[str, str]:
    """The quantized nodes (not activations: their forms say) a .tflite for ``profile`` runs as float islands, and
    why: the int8 builtin their lowering emits splits the device's fast path, and their float form runs inside it."""
    if profile.model_format != "tflite":
        return {}
    activations = {a.node for a in plan.activations}
    islands = {}
    for node, op_type in plan.quantized:
        spec = SPECS.get((plan.domains.get(node, ""), op_type))
        if node in activations or spec is None or not profile.island_instead(spec.emits):
            continue
        slow = [op for op in spec.emits if op in profile.int8_off_fast_path]
        islands[node] = (f"int8 {', '.join(slow)} would split {profile.name}'s fast path, and DEQUANTIZE -> "
                         f"{' -> '.join(spec.emits)} -> QUANTIZE runs inside it (same grids)")
    return islands


def retarget(plan: Any, target: str) -> Any:
    """A copy of ``plan`` with its activation forms and float islands decided for another ``target`` (grids and
    tables do not depend on the target): one calibration, exported for two devices."""
    profile = target_profile(target)
    activations = [replace(a, forms=activation_forms(profile, a.function, a.table)) for a in plan.activations]
    retargeted = replace(plan, activations=activations, target=target)
    return replace(retargeted, islands=op_islands(profile, retargeted))
