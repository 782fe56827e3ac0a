"""Does new data still fit the grids a model was calibrated on? The new data's statistics (the same mergeable
observers as calibration) against the calibration statistics and the record's grids: per planned tensor, the share
of values outside its grid (clipping) and a population stability index (PSI) of its histogram; per activation, the
saturation rate; NaN/Inf counts. A threshold crossed is a finding (``edgeact drift`` exits 3: recalibrate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from edgeact.activations import REGISTRY, activation
from edgeact.calibration.engine import CalibrationStats
from edgeact.calibration.observers import TensorStats
from edgeact.documents.calibration_record import CalibrationRecordDocument
from edgeact.numerics.qparams import integer_range

PSI_BUCKETS = 10  # deciles of the calibration data (the usual PSI buckets)
PSI_FLOOR = 1e-4  # a bucket share below this counts as this (an empty bucket would make PSI infinite)


@dataclass(frozen=True)
class DriftThresholds:
    max_clipped_increase: float = 0.01  # share of a tensor's values beyond its grid, above calibration's
    max_saturation_increase: float = 0.05  # share of an activation's inputs where it saturates, above calibration's
    max_psi: float = 0.25  # population stability index of a tensor's histogram (0.25: a major shift, by convention)
    max_nonfinite: int = 0  # NaN/Inf values in any tensor


@dataclass(frozen=True)
class TensorDrift:
    tensor: str
    clipped: float  # share of the new values beyond the grid
    calibration_clipped: float
    psi: float
    nonfinite: int


@dataclass(frozen=True)
class ActivationDrift:
    activation: str
    function: str
    saturation: float
    calibration_saturation: float


@dataclass
class DriftReport:
    model: str
    samples: int
    tensors: list[TensorDrift]
    activations: list[ActivationDrift]
    thresholds: DriftThresholds
    findings: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return bool(self.findings)

    def to_json(self) -> dict[str, object]:
        return {"model": self.model, "samples": self.samples, "drifted": self.drifted, "findings": self.findings,
                "thresholds": vars(self.thresholds), "tensors": [vars(t) for t in self.tensors],
                "activations": [vars(a) for a in self.activations]}


def grid_range(scale: float, zero_point: int, dtype: str) -> tuple[float, float]:
    """The real values a grid holds: [scale * (qmin - zp), scale * (qmax - zp)]."""
    low, high = integer_range(dtype)
    return scale * (low - zero_point), scale * (high - zero_point)


def _below(stats: TensorStats, x: float) -> float:
    return stats.fraction_outside(x, None) if stats.finite_count else 0.0


def psi(expected: TensorStats, actual: TensorStats, buckets: int = PSI_BUCKETS) -> float:
    """Population stability index of ``actual`` against ``expected`` over ``expected``'s quantile buckets."""
    if not expected.finite_count or not actual.finite_count:
        return 0.0
    edges = sorted({expected.quantile(i / buckets) for i in range(1, buckets)})
    cdf = [(_below(expected, x), _below(actual, x)) for x in edges]
    points = [(0.0, 0.0), *cdf, (1.0, 1.0)]
    total = 0.0
    for (e0, a0), (e1, a1) in zip(points, points[1:], strict=False):
        e, a = max(e1 - e0, PSI_FLOOR), max(a1 - a0, PSI_FLOOR)
        total += (a - e) * math.log(a / e)
    return float(total)


def drift(record: CalibrationRecordDocument, calibration: CalibrationStats, new: CalibrationStats,
          thresholds: DriftThresholds | None = None) -> DriftReport:
    """``new`` against ``calibration`` under ``record``'s grids (all three of one model as edgeact prepares it)."""
    limits = thresholds or DriftThresholds()
    report = DriftReport(record.model, new.samples, [], [], limits)
    for name, grid in sorted(record.tensors.items()):
        if name not in new.tensors or name not in calibration.tensors:
            continue
        lo, hi = grid_range(grid.scale, grid.zero_point, grid.dtype)
        seen, before = new.tensors[name], calibration.tensors[name]
        entry = TensorDrift(name, seen.fraction_outside(lo, hi), before.fraction_outside(lo, hi), psi(before, seen),
                            seen.nonfinite)
        report.tensors.append(entry)
        if entry.clipped - entry.calibration_clipped > limits.max_clipped_increase:
            report.findings.append(f"{name}: {entry.clipped:.2%} of values beyond its grid [{lo:.4g}, {hi:.4g}] "
                                   f"(calibration: {entry.calibration_clipped:.2%})")
        if entry.psi > limits.max_psi:
            report.findings.append(f"{name}: PSI {entry.psi:.3f} against the calibration histogram "
                                   f"(limit {limits.max_psi})")
        if entry.nonfinite > limits.max_nonfinite:
            report.findings.append(f"{name}: {entry.nonfinite} NaN/Inf values")
    for act in record.activations:
        if act.input not in new.tensors:
            continue
        if act.function not in REGISTRY:  # a fused chain: its saturation is not one of the registry's
            continue
        function = activation(act.function, **act.params)
        bounds = function.saturation_bounds(act.output_grid.scale)
        if bounds == (None, None) or act.saturation_rate is None:
            continue
        entry = ActivationDrift(act.node, act.function, new.tensors[act.input].fraction_outside(*bounds),
                                act.saturation_rate)
        report.activations.append(entry)
        if entry.saturation - entry.calibration_saturation > limits.max_saturation_increase:
            report.findings.append(f"activation {act.node} ({act.function}) saturates on {entry.saturation:.2%} of "
                                   f"its inputs (calibration: {entry.calibration_saturation:.2%})")
    return report


def worst(report: DriftReport, count: int = 5) -> list[TensorDrift]:
    """The tensors that moved most (clipping increase, then PSI)."""
    return sorted(report.tensors, key=lambda t: (-(t.clipped - t.calibration_clipped), -t.psi,
                                                 t.tensor))[:count] if report.tensors else []


def drift_families(report: DriftReport) -> list[list[str]]:
    """The report as OpenMetrics families."""
    from edgeact.reports.openmetrics import family

    base = {"model": report.model}
    return [
        family("edgeact_clipped_ratio", "gauge", "share of a tensor's new values beyond its int8 grid",
               (({**base, "tensor": t.tensor}, t.clipped) for t in report.tensors)),
        family("edgeact_drift_psi", "gauge", "population stability index of a tensor against calibration",
               (({**base, "tensor": t.tensor}, t.psi) for t in report.tensors)),
        family("edgeact_saturation_ratio", "gauge", "share of an activation's new inputs where it saturates",
               (({**base, "activation": a.activation}, a.saturation) for a in report.activations)),
        family("edgeact_nonfinite", "counter", "NaN and Inf values in a tensor of the float model on the new data",
               (({**base, "tensor": t.tensor}, t.nonfinite) for t in report.tensors)),
        family("edgeact_drifted", "gauge", "1 when a drift threshold was crossed", [(base, float(report.drifted))]),
    ]


def nonfinite_total(report: DriftReport) -> int:
    return int(np.sum([t.nonfinite for t in report.tensors])) if report.tensors else 0
