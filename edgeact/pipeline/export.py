"""Stage 4, ``export``: a plan written as one form, in memory. Exporters only translate the plan.

Forms: ``onnx-qdq`` and ``onnx-table`` (the canonical model with the plan's grids and tables), ``tflite`` (int8 for a
target device profile, on the model fixed to its static shapes) and ``fp32-tflite`` (the float32 baseline).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeact.errors import EdgeactError, UsageError
from edgeact.exporters.onnx import FORMATS as ONNX_FORMATS
from edgeact.exporters.onnx import export_onnx
from edgeact.exporters.tflite.model import TFLiteLowering, lower_tflite
from edgeact.pipeline.prepare import Prepared
from edgeact.planning.plan import QuantPlan

FORMATS = (*ONNX_FORMATS, "tflite")
DEFAULT_FORMATS = ONNX_FORMATS
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
    if form == "tflite" and plan is not None and plan.int16:
        raise UsageError(f"tflite: the plan gives {len(plan.int16)} tensor group(s) int16 grids (first: "
                         f"{next(iter(plan.int16))!r}) and edgeact does not write 16x8 .tflite models yet; write "
                         "onnx-qdq / onnx-table, or let --budget promote to float (--promote float)")
    if form in ("tflite", "fp32-tflite"):
        view, shapes = prepared.static
        lowering = lower_tflite(view, plan if form == "tflite" else None, shapes, target)
        return Artifact(form, lowering.to_bytes({}), lowering)
    raise UsageError(f"unknown format {form!r}; choose from {', '.join((*FORMATS, 'fp32-tflite'))}")


def export_forms(prepared: Prepared, plan: QuantPlan, formats: list[str], target: str,
                 float_tflite: bool) -> tuple[dict[str, Artifact], list[str]]:
    """Every requested form; a float32 .tflite that cannot be built is a warning, not a failure."""
    artifacts = {form: export(prepared, plan, form, target) for form in formats}
    warnings = []
    if float_tflite:
        try:
            artifacts["fp32-tflite"] = export(prepared, None, "fp32-tflite", target)
        except EdgeactError as exc:
            warnings.append(f"float32 .tflite not written: {exc}")
    return artifacts, warnings


def tflite_record(artifacts: dict[str, Artifact]) -> dict[str, object]:
    """The record's ``tflite`` entry: the target, and which activations became GATHER tables or builtins."""
    int8 = artifacts.get("tflite")
    lowered = (int8 or artifacts.get("fp32-tflite") or Artifact("", b"")).lowering
    if lowered is None:
        return {}
    entry: dict[str, object] = {"target": lowered.target}
    if int8 is not None and int8.lowering is not None:
        entry.update(table_ops=list(int8.lowering.table_ops), builtin_ops=list(int8.lowering.builtin_ops))
    return {"tflite": entry}
