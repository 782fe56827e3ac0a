"""Does new data still fit the grids a model was calibrated on? The new data's statistics (the same mergeable
observers as calibration) against the calibration statistics and the record's grids: per planned tensor, the share
of values outside its grid (clipping) and a population stability index (PSI) of its histogram; per activation, the
saturation rate; NaN/Inf counts. A threshold crossed is a finding (``edgeact drift`` exits 3: recalibrate).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from edgeact.activations import REGISTRY, activation
from edgeact.calibration.engine import CalibrationStats
from edgeact.calibration.observers import TensorStats
from edgeact.documents.calibration_record import CalibrationRecordDocument
from edgeact.graph.view import GraphView
from edgeact.numerics.qparams import QParams, integer_range
from edgeact.ops.relu_clip import folded_values

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
    bad_samples: list[str] = field(default_factory=list)  # new samples with NaN/Inf inputs, left out

    @property
    def drifted(self) -> bool:
        return bool(self.findings)

    def to_json(self) -> dict[str, object]:
        return {"model": self.model, "samples": self.samples, "drifted": self.drifted, "findings": self.findings,
                "bad_samples": self.bad_samples,
                "thresholds": vars(self.thresholds), "tensors": [vars(t) for t in self.tensors],
                "activations": [vars(a) for a in self.activations]}


def grid_range(scale: float, zero_point: int, dtype: str) -> tuple[float, float]:
    """Where a grid starts clipping: half a step beyond its end codes (a value nearer rounds onto them)."""
    low, high = integer_range(dtype)
    return scale * (low - zero_point - 0.5), scale * (high - zero_point + 0.5)


def histogram_below(stats: TensorStats, x: float) -> float:
    """Share of ``stats``'s finite values below ``x``, interpolated inside its bin (saved statistics only)."""
    total = stats.finite_count
    if not total or x <= stats.min:
        return 0.0
    if x > stats.max:
        return 1.0
    position = x / stats.width - stats.first
    index = int(np.clip(np.floor(position), 0, len(stats.counts) - 1))
    inside = float(np.clip(position - index, 0.0, 1.0)) if 0 <= position < len(stats.counts) else float(position >= 0)
    return float((stats.counts[:index].sum() + stats.counts[index] * inside) / total)


@dataclass(frozen=True)
class Cuts:
    """Where one tensor's values are counted: its grid's ends, the calibration deciles, its activation's
    saturation bounds (all among ``edges``, sorted)."""

    grid: tuple[float, float]
    deciles: tuple[float, ...]
    saturation: tuple[float | None, float | None] | None = None

    @property
    def edges(self) -> list[float]:
        points = [*self.grid, *self.deciles, *(b for b in (self.saturation or ()) if b is not None)]
        return sorted(set(points))


class Counted:
    """Exact bucket counts of one tensor's values over its cuts: shares below / above any edge."""

    def __init__(self, edges: list[float], counts: list[int]) -> None:
        self.edges, self.counts = edges, np.asarray(counts, dtype=np.float64)
        self.total = float(self.counts.sum())

    def below(self, x: float) -> float:
        return float(self.counts[: self.edges.index(x) + 1].sum() / self.total) if self.total else 0.0

    def above(self, x: float) -> float:
        return float(self.counts[self.edges.index(x) + 1:].sum() / self.total) if self.total else 0.0


def plan_cuts(record: CalibrationRecordDocument, calibration: CalibrationStats, view: GraphView | None = None,
              buckets: int = PSI_BUCKETS) -> dict[str, Cuts]:
    """The cuts of every planned tensor the calibration saw (the deciles from its statistics). With the model's
    ``view``, a value whose grid folds the Relu/Clip after it is left out: its grid clamps on purpose (a ReLU's
    input is half outside it by design), and that Relu/Clip's output, on the same grid, is the tensor measured; so is
    a value that only re-lays out another on its grid (the same numbers, measured once)."""
    bounds = {}
    for act in record.activations:
        if act.input is not None and act.function in REGISTRY and act.saturation_rate is not None:
            bounds[act.input] = activation(act.function, **act.params).saturation_bounds(act.output_grid.scale)
    grids = {name: QParams(grid.scale, grid.zero_point, grid.dtype) for name, grid in record.tensors.items()}
    repeated = set(folded_values(view, grids)) | _relaid(view, grids) if view is not None else set()
    cuts = {}
    for name, grid in sorted(record.tensors.items()):
        stats = calibration.tensors.get(name)
        if name in repeated:
            continue
        if stats is None or not stats.finite_count:
            continue
        deciles = tuple(sorted({stats.quantile(i / buckets) for i in range(1, buckets)}))
        cuts[name] = Cuts(grid_range(grid.scale, grid.zero_point, grid.dtype), deciles, bounds.get(name))
    return cuts


LAYOUT_OPS = frozenset({"Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"})


def _relaid(view: GraphView, grids: dict[str, QParams]) -> set[str]:
    """Values that only re-lay out a planned value on its grid (a Transpose, a Reshape): the same numbers, measured
    once, at the value they come from."""
    return {node.outputs[0] for node in view.nodes if node.op_type in LAYOUT_OPS and not node.domain
            and node.inputs and grids.get(node.inputs[0]) is not None
            and grids.get(node.outputs[0]) == grids.get(node.inputs[0])}


def psi(expected: list[float], actual: list[float]) -> float:
    """Population stability index of bucket shares ``actual`` against ``expected``."""
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, PSI_FLOOR), max(a, PSI_FLOOR)
        total += (a - e) * math.log(a / e)
    return float(total)


def _shares(below: list[float]) -> list[float]:
    points = [0.0, *below, 1.0]
    return [hi - lo for lo, hi in zip(points, points[1:], strict=False)]


def drift(record: CalibrationRecordDocument, calibration: CalibrationStats, cuts: dict[str, Cuts],
          new: dict[str, tuple[list[int], int]], before: dict[str, tuple[list[int], int]] | None, samples: int,
          thresholds: DriftThresholds | None = None, bad_samples: Sequence[str] = (),
          new_stats: CalibrationStats | None = None) -> DriftReport:
    """The new data's exact counts ``new`` against the calibration data's (``before``) over each tensor's ``cuts``,
    under ``record``'s grids. Without ``before`` (saved statistics only) the calibration shares are read off its
    histograms, and the PSI compares them with the new data's histograms (``new_stats``), read the same way."""
    limits = thresholds or DriftThresholds()
    report = DriftReport(record.model, samples, [], [], limits, bad_samples=list(bad_samples))
    if len(bad_samples) > limits.max_nonfinite:
        report.findings.append(f"{len(bad_samples)} new sample(s) hold NaN/Inf inputs (left out of the counts): "
                               f"{', '.join(bad_samples[:5])}{', ...' if len(bad_samples) > 5 else ''}")
    for name, cut in cuts.items():
        if name not in new:
            continue
        seen = Counted(cut.edges, new[name][0])
        new_below = seen.below
        if before is not None and name in before:
            known = Counted(cut.edges, before[name][0])
            calibration_below = known.below
        else:
            calibration_below = partial(histogram_below, calibration.tensors[name])
            if new_stats is not None and name in new_stats.tensors:
                new_below = partial(histogram_below, new_stats.tensors[name])
        lo, hi = cut.grid
        clipped = seen.below(lo) + seen.above(hi)
        calibration_clipped = calibration_below(lo) + 1.0 - calibration_below(hi)
        stability = psi(_shares([calibration_below(x) for x in cut.deciles]),
                        _shares([new_below(x) for x in cut.deciles]))
        entry = TensorDrift(name, clipped, max(0.0, calibration_clipped), stability, new[name][1])
        report.tensors.append(entry)
        _tensor_findings(report, entry, cut, limits)
        if cut.saturation is not None:
            _saturation(report, record, name, seen, cut, limits)
    return report


def _tensor_findings(report: DriftReport, entry: TensorDrift, cut: Cuts, limits: DriftThresholds) -> None:
    lo, hi = cut.grid
    if entry.clipped - entry.calibration_clipped > limits.max_clipped_increase:
        report.findings.append(f"{entry.tensor}: {entry.clipped:.2%} of values beyond its grid [{lo:.4g}, {hi:.4g}] "
                               f"(calibration: {entry.calibration_clipped:.2%})")
    if entry.psi > limits.max_psi:
        report.findings.append(f"{entry.tensor}: PSI {entry.psi:.3f} against the calibration data's deciles "
                               f"(limit {limits.max_psi})")
    if entry.nonfinite > limits.max_nonfinite:
        report.findings.append(f"{entry.tensor}: {entry.nonfinite} NaN/Inf values")


def _saturation(report: DriftReport, record: CalibrationRecordDocument, name: str, seen: Counted, cut: Cuts,
                limits: DriftThresholds) -> None:
    act = next(a for a in record.activations if a.input == name)
    low, high = cut.saturation or (None, None)
    share = (seen.below(low) if low is not None else 0.0) + (seen.above(high) if high is not None else 0.0)
    entry = ActivationDrift(act.node, act.function, share, act.saturation_rate or 0.0)
    report.activations.append(entry)
    if entry.saturation - entry.calibration_saturation > limits.max_saturation_increase:
        report.findings.append(f"activation {act.node} ({act.function}) saturates on {entry.saturation:.2%} of "
                               f"its inputs (calibration: {entry.calibration_saturation:.2%})")


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

