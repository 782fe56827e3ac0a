"""The calibration record (``<stem>.calibration.json``): what a quantize run decided and measured, typed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from edgeact import __version__
from edgeact.documents.calibration_record import RECORD_SCHEMA, CalibrationRecordDocument, Evaluation
from edgeact.documents.typed_json import build, to_json


@dataclass
class CalibrationRecord:
    """One quantize run: the model and its front end, options, what the passes did, the plan (grids, tables,
    fallbacks, hazards), the TFLite lowering, static shapes, warnings, the evaluation and the files written."""

    model: str
    frontend: dict[str, str]
    model_sha256: str
    options: dict[str, Any]
    opset: dict[str, int]
    passes: list[str]
    calibration: dict[str, Any]
    plan: dict[str, Any]  # planning.record.plan_dict(plan): written at the top level of the JSON
    files: dict[str, str]
    evaluation: Evaluation = field(default_factory=Evaluation)
    tflite: dict[str, Any] | None = None
    static_shapes: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    budget: dict[str, Any] | None = None  # quantize --budget: what was kept float and why
    bias_correction: dict[str, Any] | None = None  # the bias correction stage: what moved, before/after
    edgeact_version: str = __version__

    def as_dict(self) -> dict[str, Any]:
        """The JSON object written (the plan's keys at the top level, optional sections only when present)."""
        record: dict[str, Any] = {
            "edgeact_version": self.edgeact_version, "model": self.model, "frontend": self.frontend,
            "model_sha256": self.model_sha256, "options": self.options, "opset": self.opset, "passes": self.passes,
            "calibration": self.calibration, **self.plan, "warnings": self.warnings,
            "evaluation": to_json(self.evaluation), "files": self.files, "schema_version": RECORD_SCHEMA,
        }
        if self.tflite is not None:
            record["tflite"] = self.tflite
        if self.static_shapes is not None:
            record["static_shapes"] = self.static_shapes
        if self.budget is not None:
            record["budget"] = self.budget
        if self.bias_correction is not None:
            record["bias_correction"] = self.bias_correction
        return record

    def document(self) -> CalibrationRecordDocument:
        """The record as its documented, typed form (docs/schema: one definition); a field that breaks the schema
        is an error here, before anything is written."""
        return build(CalibrationRecordDocument, self.as_dict())

    def to_json(self) -> str:
        """The record's text, written only after it passes its documented schema."""
        return json.dumps(to_json(self.document()), indent=1, sort_keys=True, default=float) + "\n"
