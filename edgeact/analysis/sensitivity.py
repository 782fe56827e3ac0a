"""The analysis: for every tensor group of a plan, the model's error when only that group is int8, and when every
group but it is int8 (what leaving it float recovers), ranked. Trials run the switchable model's segments from the
group's first one on, with everything upstream from a cached base pass (float, or full int8)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from edgeact.analysis.trials import Feeds, TrialRunner
from edgeact.calibration.data import sample_count
from edgeact.calibration.engine import input_specs
from edgeact.documents.sensitivity_report import SENSITIVITY_SCHEMA, GroupSensitivity, Score, SensitivityReport
from edgeact.errors import UserCodeError
from edgeact.exporters.onnx.switchable import switchable_model
from edgeact.graph.importer import model_bytes
from edgeact.graph.segments import cut
from edgeact.graph.view import GraphView
from edgeact.metrics import Metric, sqnr_db
from edgeact.pipeline.prepare import Prepared
from edgeact.planning.groups import TensorGroup, tensor_groups
from edgeact.planning.plan import PlanOptions, QuantPlan, make_plan
from edgeact.runtimes.onnxruntime import ort_session, run_ort
from edgeact.user_code import describe

SEGMENTS = 12
SAMPLES = 16  # samples a trial (and a --budget measurement) runs by default


def _stacked(results: Sequence[Feeds]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([np.atleast_1d(r[name]) for r in results], axis=0) for name in results[0]}


def score(reference: Sequence[Feeds], results: Sequence[Feeds], metric: Metric | None) -> Score:
    """SQNR of each output over every sample (and the task metric) of ``results`` against ``reference``."""
    per_output = {name: sqnr_db(np.concatenate([r[name].reshape(-1) for r in reference]),
                                np.concatenate([r[name].reshape(-1) for r in results]))
                  for name in reference[0]}
    return Score(sqnr_db=min(per_output.values()), per_output_db=per_output, metric=_metric_value(
        metric, reference, results))


def _metric_value(metric: Metric | None, reference: Sequence[Feeds], results: Sequence[Feeds]) -> float | None:
    """``metric`` on the outputs stacked over samples; what the user's function raises or returns other than a
    finite number is a clear error naming it."""
    if metric is None:
        return None
    name = getattr(metric, "__name__", type(metric).__name__)
    try:
        value = metric(_stacked(reference), _stacked(results))
    except Exception as exc:
        raise UserCodeError(f"the metric {name} raised {describe(exc)}") from exc
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise UserCodeError(f"the metric {name} returned {value!r}; expected a finite number (higher is better)")
    return number


def _gain(better: float | None, base: float | None) -> float | None:
    if better is None or base is None:
        return None
    if math.isinf(better) and math.isinf(base) and better == base:
        return 0.0
    return better - base


def _ranked(entries: list[GroupSensitivity], by_metric: bool) -> list[GroupSensitivity]:
    def key(entry: GroupSensitivity) -> tuple[float, float, float, str]:
        metric_gain = entry.recovered_metric if by_metric and entry.recovered_metric is not None else 0.0
        return (-metric_gain, -entry.recovered_db, entry.only_int8.sqnr_db, entry.group)

    ordered = sorted(entries, key=key)
    return [replace(entry, rank=rank) for rank, entry in enumerate(ordered, start=1)]


def _group_entry(group: TensorGroup, only: Score, without: Score, full: Score) -> GroupSensitivity:
    return GroupSensitivity(rank=0, group=group.name, values=list(group.values), producers=list(group.producers),
                            constants=len(group.constants), only_int8=only, all_but_this=without,
                            recovered_db=_gain(without.sqnr_db, full.sqnr_db),
                            recovered_metric=_gain(without.metric, full.metric))


@dataclass
class Trials:
    """The groups of a plan, the switchable model's runner on fixed batches, the two base passes (every group off:
    float, or on the alternative plan's int16 grids; every group int8) and the float outputs trials are scored
    against."""

    groups: list[TensorGroup]
    runner: TrialRunner
    float_cache: list[Feeds]  # every group off: float, or the alternative's precision
    int8_cache: list[Feeds]
    reference: list[Feeds]  # the float model's outputs


def trials_for(prepared: Prepared, plan: QuantPlan, batches: Sequence[Feeds], segments: int = SEGMENTS,
               alternative: QuantPlan | None = None) -> Trials:
    """``plan``'s groups behind switches (off: float, or ``alternative``'s grids), cut into ``segments``, with both
    base passes run on ``batches``."""
    groups = tensor_groups(prepared.view, plan)
    model = switchable_model(prepared.model, plan, groups, alternative)
    runner = TrialRunner(model, cut(model.payload, segments), batches, prepared.view.outputs)
    off = runner.base(False)
    reference = runner.outputs_of(off) if alternative is None else _float_outputs(prepared, batches)
    return Trials(groups, runner, off, runner.base(True), reference)


def int16_alternative(view: GraphView, stats: dict, options: PlanOptions, plan: QuantPlan) -> QuantPlan:
    """``plan`` with every group on an int16 grid (weights still int8): what a group becomes when trials promote it
    to int16."""
    every = tuple((value, "every group int16: the alternative the trials measure") for value in plan.grids)
    return make_plan(view, stats, replace(options, int16_values=options.int16_values + every))


def _float_outputs(prepared: Prepared, batches: Sequence[Feeds]) -> list[Feeds]:
    """The float model's outputs on each of ``batches``."""
    session = ort_session(model_bytes(prepared.model), f"float model {prepared.source}", spinning=False)
    return [run_ort(session, batch, list(prepared.view.outputs)) for batch in batches]


def analyse(prepared: Prepared, plan: QuantPlan, batches: Sequence[Feeds], *, metric: Metric | None = None,
            metric_name: str | None = None, segments: int = SEGMENTS, method: str = "auto",
            progress: bool = False, trials: Trials | None = None, alternative: str = "float",
            samples: int | None = None) -> SensitivityReport:
    """Every group of ``plan`` tried both ways on ``batches`` (graph inputs), ranked by what promoting it recovers
    (the task ``metric`` when given, else the lowest output SQNR). ``trials``: already built ones (whose off side
    is ``alternative``: float, or int16). ``samples``: try on the leading batches holding that many samples only
    (a budget ranks on a few and decides on all of its own)."""
    from tqdm import tqdm

    started = time.perf_counter()
    trials = trials or trials_for(prepared, plan, batches, segments)
    used = leading(prepared, batches, samples)
    runner, reference = trials.runner, trials.reference[:used]
    off, on = trials.float_cache[:used], trials.int8_cache[:used]
    full = score(reference, runner.outputs_of(on), metric)
    entries = []
    bar = tqdm(list(enumerate(trials.groups)), desc="sensitivity", unit="group",
               disable=None if progress else True, leave=False)
    for index, group in bar:
        only = score(reference, runner.trial(off, False, index), metric)
        without = score(reference, runner.trial(on, True, index), metric)
        entries.append(_group_entry(group, only, without, full))
    return SensitivityReport(
        schema_version=SENSITIVITY_SCHEMA, model=prepared.source, model_sha256=prepared.fingerprint,
        target=plan.target, method=method, samples=samples_in(prepared, batches[:used]),
        metric=metric_name, alternative=alternative, full_int8=full, groups=_ranked(entries, metric is not None),
        trials=runner.trials,
        segments=len(runner.segments), seconds=round(time.perf_counter() - started, 3))


def leading(prepared: Prepared, batches: Sequence[Feeds], samples: int | None) -> int:
    """How many leading ``batches`` hold at least ``samples`` samples (all of them when None or fewer)."""
    if samples is None:
        return len(batches)
    specs, held = input_specs(prepared.view), 0
    for count, batch in enumerate(batches, start=1):
        held += sample_count(batch, specs)
        if held >= samples:
            return count
    return len(batches)


def samples_in(prepared: Prepared, batches: Sequence[Feeds]) -> int:
    """How many samples ``batches`` (feeds of ``prepared``'s inputs) hold."""
    specs = input_specs(prepared.view)
    return sum(sample_count(batch, specs) for batch in batches)
