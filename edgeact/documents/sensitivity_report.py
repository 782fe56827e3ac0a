"""The sensitivity report (``edgeact sensitivity --json``), typed: what the analysis builds and the JSON, HTML and
terminal writers render. docs/schema/sensitivity-report.schema.json is generated from it."""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgeact.documents.typed_json import Between, spec

SENSITIVITY_SCHEMA = 1
SQNR = Between(-math.inf, math.inf, finite=False)  # dB: Infinity when exact


@dataclass(frozen=True, kw_only=True)
class Score:
    """The model's outputs under one mix of int8 and float groups, against the float model."""

    sqnr_db: float = spec("the lowest per-output SQNR (dB) over the samples; Infinity when exact", between=SQNR)
    per_output_db: dict[str, float] = spec("SQNR (dB) of each graph output")
    metric: float | None = spec("the task metric (higher is better), when one was given")


@dataclass(frozen=True, kw_only=True)
class GroupSensitivity:
    """One tensor group: its values share one grid; its constants are those of the nodes writing them."""

    rank: int = spec("1 = the group whose return to float recovers most (by the metric when given, else SQNR)")
    group: str = spec("the group's first value (its root)")
    values: list[str] = spec("the planned values sharing the group's grid")
    producers: list[str] = spec("the nodes writing those values")
    constants: int = spec("how many planned constants (weights, biases, operands) the group's nodes hold")
    only_int8: Score = spec("this group int8, every other group float (or int16: the report's alternative)")
    all_but_this: Score = spec("every other group int8, this one float (or int16)")
    recovered_db: float = spec("all_but_this.sqnr_db minus the full int8 SQNR: what promoting it gains",
                               between=SQNR)
    recovered_metric: float | None = spec("all_but_this.metric minus the full int8 metric, when a metric was given")


@dataclass(frozen=True, kw_only=True)
class SensitivityReport:
    """Per-group sensitivity of a model's int8 plan, measured with the onnx-qdq form's arithmetic on onnxruntime."""

    schema_version: int = spec("version of this layout", between=Between(1, SENSITIVITY_SCHEMA))
    model: str = spec("the float model as given")
    model_sha256: str = spec("sha256 of the float model as edgeact prepares it")
    target: str = spec("the device profile the plan was made for")
    method: str = spec("the calibration method of the plan")
    samples: int = spec("evaluation samples every trial ran")
    metric: str | None = spec("the task metric's name, when one was given")
    alternative: str | None = spec("what a group is promoted to in the trials: float, or int16 (A16W8); absent: "
                                   "float", optional=True)
    full_int8: Score = spec("every group int8 (the plan as quantize writes it)")
    groups: list[GroupSensitivity] = spec("every group, ranked")
    trials: int = spec("trials run (two per group)")
    segments: int = spec("segments the model was cut into: a trial reruns only those from its group's first one")
    seconds: float = spec("wall time of the analysis (data loading, base passes and trials)")
