"""Stage 4, ``export``: a plan written as one form, in memory. Exporters only translate the plan.

Forms: ``onnx-qdq`` and ``onnx-table`` (the canonical model with the plan's grids and tables), ``tflite`` (int8 for a
target device profile, on the model fixed to its static shapes) and ``fp32-tflite`` (the float32 baseline).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgeact.errors import EdgeactError, UsageError
from edgeact.exporters.onnx import FORMATS as ONNX_FORMATS
from edgeact.exporters.onnx import export_onnx
from edgeact.exporters.tflite.lower import UnsupportedOpError
from edgeact.exporters.tflite.model import TFLiteLowering, lower_tflite
from edgeact.pipeline.prepare import Prepared
from edgeact.planning.plan import QuantPlan
from edgeact.planning.target_forms import target_profile

FORMATS = (*ONNX_FORMATS, "tflite")
DEFAULT_FORMATS = ONNX_FORMATS
TFLITE_DEFAULT_FORMATS = ("tflite",)  # a .tflite in gives a .tflite out unless asked otherwise


def default_formats(model: Any) -> tuple[str, ...]:
    """The forms written when none are asked for: the int8 .tflite for a .tflite model, else both ONNX forms."""
    from edgeact.frontends.tflite import is_tflite_source

    return TFLITE_DEFAULT_FORMATS if is_tflite_source(model) else DEFAULT_FORMATS
SUFFIXES = {
    "onnx-qdq": ".int8.qdq.onnx", "onnx-table": ".int8.table.onnx", "tflite": ".int8.tflite",
    "fp32-tflite": ".fp32.tflite",
}


@dataclass
class Artifact:
    """One exported form in memory: its bytes (a .tflite's without metadata; :meth:`final_bytes` adds it)."""

    form: str
    payload: bytes
    lowering: TFLiteLowering | None = None  # the lowered graph of a TFLite form

    def final_bytes(self, metadata: dict[str, bytes]) -> bytes:
        """The file's bytes: a .tflite carries ``metadata`` (the record's hash), an ONNX form is as exported."""
        return self.lowering.to_bytes(metadata) if self.lowering is not None else self.payload


def export(prepared: Prepared, plan: QuantPlan | None, form: str, target: str = "litert") -> Artifact:
    """Stage 4: ``plan`` as ``form`` (``fp32-tflite`` needs no plan). ``target``: the TFLite device profile."""
    if form in ONNX_FORMATS:
        return Artifact(form, export_onnx(prepared.model, plan, form))
    if form in ("tflite", "fp32-tflite"):
        view, shapes = prepared.static
        lowering = lower_tflite(view, plan if form == "tflite" else None, shapes, target)
        return Artifact(form, lowering.to_bytes({}), lowering)
    raise UsageError(f"unknown format {form!r}; choose from {', '.join((*FORMATS, 'fp32-tflite'))}")


def tflite_check(prepared: Prepared, target: str) -> Callable[[QuantPlan], tuple[str, str] | None]:
    """A plan check for ``target``: (node, why) of the first node its .tflite lowering refuses, or None."""

    def check(plan: QuantPlan) -> tuple[str, str] | None:
        view, shapes = prepared.static
        try:
            lower_tflite(view, plan, shapes, target)
        except UnsupportedOpError as exc:
            return (exc.node, f"{exc.reason} for {exc.node}") if exc.node is not None else None
        return None

    return check


def export_forms(prepared: Prepared, plan: QuantPlan, formats: list[str], target: str,
                 float_tflite: bool) -> tuple[dict[str, Artifact], list[str]]:
    """Every requested form; a float32 .tflite that cannot be built is a warning, not a failure."""
    artifacts = {form: export(prepared, plan, form, target) for form in formats}
    warnings = slow_16x8(artifacts.get("tflite"), target) + float_io(artifacts.get("tflite"))
    if float_tflite:
        try:
            artifacts["fp32-tflite"] = export(prepared, None, "fp32-tflite", target)
        except EdgeactError as exc:
            warnings.append(f"float32 .tflite not written: {exc}")
    return artifacts, warnings


def float_io(artifact: Artifact | None) -> list[str]:
    """A warning for each float input or output that stays float32 although int8 I/O was asked for, and why."""
    lowered = artifact.lowering if artifact is not None else None
    kept = lowered.io_float if lowered is not None else ()
    return [f"tflite: --io int8, but {role} {name!r} stays float32: {why}" for role, name, why in kept]


def slow_16x8(artifact: Artifact | None, target: str) -> list[str]:
    """A warning when the .tflite runs 16x8 ops the target's fast path does not take (LiteRT's XNNPACK delegate takes
    no int16 op: they run on LiteRT's own kernels, outside it, and split its partitions)."""
    lowered = artifact.lowering if artifact is not None else None
    profile = target_profile(target)
    if lowered is None or profile.int16_activations:
        return []
    graph = lowered.graph
    wide = [op for op in graph.ops if op.op not in ("QUANTIZE", "DEQUANTIZE") and any(
        graph.tensors[i].dtype == "int16" for i in (*op.inputs, *op.outputs) if i >= 0)]
    if not wide:
        return []
    return [f"tflite: {len(wide)} op(s) run 16x8 (int16 activations), which {profile.name}'s fast path does not take "
            f"(its profile: int16_activations = false): they run on the runtime's own kernels, slower than int8, and "
            f"split the delegate's partitions (first: {wide[0].op} of node {wide[0].node!r}); --promote float keeps "
            "budget promotions out of int16"]


def _io(lowering: TFLiteLowering) -> dict[str, dict[str, object]]:
    """Each graph input and output of the int8 .tflite: its type and, for int8 codes, the grid to feed or read."""
    graph, io = lowering.graph, {}
    for role, indices in (("input", graph.inputs), ("output", graph.outputs)):
        for index in indices:
            tensor, grid = graph.tensors[index], graph.tensors[index].codes_grid
            io[tensor.name] = {"role": role, "dtype": tensor.dtype, **(
                {"scale": grid.scale, "zero_point": grid.zero_point} if grid is not None else {})}
    return io


def tflite_record(artifacts: dict[str, Artifact]) -> dict[str, object]:
    """The record's ``tflite`` entry: the target, and which activations became GATHER tables or builtins."""
    int8 = artifacts.get("tflite")
    lowered = (int8 or artifacts.get("fp32-tflite") or Artifact("", b"")).lowering
    if lowered is None:
        return {}
    entry: dict[str, object] = {"target": lowered.target}
    if int8 is not None and int8.lowering is not None:
        entry.update(table_ops=list(int8.lowering.table_ops), builtin_ops=list(int8.lowering.builtin_ops),
                     island_ops=list(int8.lowering.island_ops), io=_io(int8.lowering))
    return {"tflite": entry}
