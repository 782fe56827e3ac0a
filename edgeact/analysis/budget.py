"""Mixed precision to an error budget: promote the groups whose return to float recovers most (the sensitivity
ranking) until the budget holds, measured on the switchable model (every candidate mix is one baked pass), then
give back every promotion the budget does not need. A promotion is to ``int16`` (A16W8: the group's grid becomes
int16, weights stay int8, every node stays quantized) or to ``float`` (the group's values stay unquantized, so the
nodes writing and reading them run float). The search ranks and measures with float; the plan written is measured
again in its own precision, and topped up when it lands short."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from edgeact.analysis.sensitivity import (
    SAMPLES,
    SEGMENTS,
    Trials,
    analyse,
    int16_alternative,
    samples_in,
    score,
    trials_for,
)
from edgeact.analysis.trials import Feeds, TrialRunner
from edgeact.documents.sensitivity_report import Score, SensitivityReport
from edgeact.errors import UsageError
from edgeact.graph.view import GraphView
from edgeact.metrics import TASK_METRICS, Metric
from edgeact.pipeline.prepare import Prepared
from edgeact.planning.groups import TensorGroup
from edgeact.planning.plan import PlanOptions, QuantPlan, make_plan
from edgeact.planning.registry import OP_QUANTIZERS

MEASURES = ("sqnr", "int8", *TASK_METRICS)
SHARE = "int8"  # int8>=X: a floor on the int8 share of MAC ops, spent on the most sensitive groups
MIN_GAIN_DB = 0.05  # an int8>=X budget promotes only groups whose promotion recovers more than this (dB)
PRECISIONS = ("int16", "float")  # what a promoted group becomes
TOP_UPS = 8  # rounds of groups added after the search when the re-made plan lands short (1, 2, 4, ... groups)
_SPEC = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*>=\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Budget:
    """``measure >= threshold``: ``sqnr`` (the lowest output SQNR, dB), a task metric (higher is better), or
    ``int8`` (the share of MAC-carrying ops left int8: a floor, spent on the most sensitive groups)."""

    measure: str
    threshold: float
    custom: Metric | None = field(default=None, compare=False)  # the user's metric the measure names

    @property
    def text(self) -> str:
        return f"{self.measure}>={self.threshold:g}"

    @property
    def on_outputs(self) -> bool:
        """Whether it is measured on the model's outputs (an int8 share is counted on the plan)."""
        return self.measure != SHARE

    @property
    def metric(self) -> Metric | None:
        return self.custom or TASK_METRICS.get(self.measure)

    def value(self, measured: Score) -> float:
        return measured.sqnr_db if self.measure == "sqnr" else float(measured.metric)

    def holds(self, measured: Score) -> bool:
        return self.value(measured) >= self.threshold


def parse_budget(text: str, metric: Metric | None = None, metric_name: str | None = None) -> Budget:
    """``sqnr>=30``, ``top1>=0.99``, ``cosine>=0.995``, ``int8>=0.9``; with the user's ``metric`` (named
    ``metric_name``), ``NAME>=X`` where NAME is that name or ``metric``. A usage error names what is accepted."""
    found = _SPEC.match(text)
    try:
        budget = Budget(found.group(1), float(found.group(2))) if found else None
    except ValueError:
        budget = None
    custom = metric is not None and metric is not TASK_METRICS.get(metric_name or "")
    names = {metric_name or "metric", "metric"} if custom else set()
    if budget is not None and budget.measure in names:
        return replace(budget, custom=metric)
    if budget is None or budget.measure not in MEASURES:
        also = f", or {' / '.join(sorted(names))} (the --metric given)" if names else ""
        raise UsageError(f"--budget {text!r}: expected MEASURE>=NUMBER with MEASURE one of {', '.join(MEASURES)}"
                         f"{also} (e.g. sqnr>=30, top1>=0.99, cosine>=0.995, int8>=0.9)")
    if custom:
        raise UsageError(f"--budget {text!r} does not measure the --metric given ({metric_name}): name it, e.g. "
                         f"--budget {metric_name}>={budget.threshold:g}")
    if budget.measure == SHARE and not 0.0 <= budget.threshold <= 1.0:
        raise UsageError(f"--budget {text!r}: the int8 share is a fraction between 0 and 1 (e.g. int8>=0.9)")
    return budget


@dataclass(frozen=True)
class Promotion:
    group: str
    nodes: tuple[str, ...]  # the nodes writing or reading its values (float: they run float; int16: 16x8)
    recovered: float  # what leaving this group alone float recovered, in the budget's measure
    precision: str = "float"
    why: str | None = None  # why it is float although int16 was asked for


# A check of a plan against the device it is written for: None, or (node, why) for the first node the device
# cannot run as planned (a 16x8 kernel it does not have). The API passes the TFLite lowering's.
TargetCheck = Callable[[QuantPlan], tuple[str, str] | None]


@dataclass(frozen=True)
class BudgetChoice:
    budget: Budget
    full_int8: Score
    chosen: Score  # the outputs with the promotions, on the switchable model
    promotions: tuple[Promotion, ...]
    evaluations: int  # mixes measured
    remaining: tuple[Promotion, ...] = ()  # the other groups, most sensitive first (a top-up takes from these)


class _Search:
    """Measures mixes of float groups (cached), each one baked pass of the switchable model."""

    def __init__(self, runner: TrialRunner, reference: Sequence[Feeds], budget: Budget) -> None:
        self.runner, self.reference, self.budget = runner, reference, budget
        self.scores: dict[frozenset[int], Score] = {}

    def score(self, floats: frozenset[int]) -> Score:
        if floats not in self.scores:
            self.scores[floats] = score(self.reference, self.runner.configured(floats), self.budget.metric)
        return self.scores[floats]

    def holds(self, floats: frozenset[int]) -> bool:
        return self.budget.holds(self.score(floats))


def _shortest_prefix(search: _Search, order: list[int]) -> int | None:
    """The fewest leading groups of ``order`` that, float, meet the budget (doubling, then bisecting; assumes
    more float is never worse), or None when even all of them do not."""
    if not order or not search.holds(frozenset(order)):
        return None
    low, high = 0, 1
    while high < len(order) and not search.holds(frozenset(order[:high])):
        low, high = high, min(2 * high, len(order))
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if search.holds(frozenset(order[:middle])) else (middle, high)
    return high


def _give_back(search: _Search, chosen: list[int]) -> list[int]:
    """Return to int8 every chosen group the budget holds without, least sensitive first: a run of them at once
    (the run doubling after a run that could go back, halving after one that could not), so that a long list of
    promotions costs far fewer measurements than one per group."""
    kept, candidates, run = list(chosen), list(reversed(chosen)), 1
    while candidates:
        block = candidates[:run]
        trial = [g for g in kept if g not in block]
        if trial and search.holds(frozenset(trial)):
            kept, candidates, run = trial, candidates[len(block):], run * 2
        elif run > 1:
            run //= 2
        else:
            candidates = candidates[1:]  # this one is needed
    return kept


def choose(runner: TrialRunner, reference: Sequence[Feeds], groups: Sequence[TensorGroup], view: GraphView,
           report: SensitivityReport, budget: Budget, full: Score, precision: str = "float") -> BudgetChoice:
    """The fewest groups (in sensitivity order) to leave float so that ``budget`` holds (``full``: the measure
    with every group int8, already taken), as promotions to ``precision``."""
    search = _Search(runner, reference, budget)
    search.scores[frozenset()] = full
    index_of = {group.name: number for number, group in enumerate(groups)}
    order = [index_of[entry.group] for entry in report.groups]
    gains = {index_of[e.group]: (e.recovered_db if budget.measure == "sqnr" else e.recovered_metric)
             for e in report.groups}
    chosen: list[int] = []
    if not budget.holds(full):
        count = _shortest_prefix(search, order)
        chosen = _give_back(search, order[:count]) if count is not None else order

    def promotion(i: int) -> Promotion:
        wide = precision if groups[i].values else "float"  # a group of constants only: its weights go float
        return Promotion(groups[i].name, float_nodes(groups[i], view), float(gains[i] or 0.0), wide)

    taken = set(chosen)
    return BudgetChoice(budget, full, search.score(frozenset(chosen)), tuple(promotion(i) for i in chosen),
                        len(search.scores), tuple(promotion(i) for i in order if i not in taken))


def float_nodes(group: TensorGroup, view: GraphView) -> tuple[str, ...]:
    """The nodes that must run float for ``group``'s values to stay unquantized: those writing them and those
    reading them (an int8 kernel reads int8 codes)."""
    nodes = dict.fromkeys(group.producers)
    for value in group.values:
        nodes.update(dict.fromkeys(node.name for node in view.consumers(value)))
    return tuple(nodes)


def int8_share(view: GraphView, plan: QuantPlan) -> dict[str, float]:
    """How many MAC-carrying ops (a weight input: Conv, MatMul, Gemm, ...) the plan makes int8 (every planned value
    they read or write int8) and how many 16x8 (some int16)."""
    quantized, weighted = {name for name, _ in plan.quantized}, mac_ops(view)
    macs = [node for node in view.nodes if node.name in weighted]
    wide = [node.name for node in macs if node.name in quantized and any(
        plan.grids[name].dtype == "int16" for name in (*node.inputs, *node.outputs) if name in plan.grids)]
    count = sum(1 for node in macs if node.name in quantized) - len(wide)
    return {"mac_ops": len(macs), "int8_mac_ops": count, "int16_mac_ops": len(wide),
            "share": count / len(macs) if macs else 1.0}


def plan_to_budget(prepared: Prepared, stats: dict, options: PlanOptions, budget: Budget,
                   batches: Sequence[Feeds], *, precision: str = "float", segments: int = SEGMENTS,
                   progress: bool = False, target_check: TargetCheck | None = None) -> tuple[QuantPlan, dict[str, Any]]:
    """The plan ``options`` give, with the fewest groups promoted to ``precision`` (int16 or float) that meet
    ``budget`` on ``batches``, and the record of the choice (every promotion with what it recovered, the budget
    measured before and after). ``target_check``: an int16 promotion the target device cannot run goes float."""
    if precision not in PRECISIONS:
        raise UsageError(f"unknown promotion {precision!r}; choose from {', '.join(PRECISIONS)}")
    full_plan = make_plan(prepared.view, stats, options)
    trials = _trials(prepared, stats, options, full_plan, batches, segments, precision)
    if budget.measure == SHARE:
        return _plan_to_share(prepared, stats, options, budget, batches, full_plan, trials, precision, progress,
                              target_check)
    full = score(trials.reference, trials.runner.outputs_of(trials.int8_cache), budget.metric)
    note = None
    if precision == "int16" and not budget.holds(full):
        ceiling = score(trials.reference, trials.runner.outputs_of(trials.float_cache), budget.metric)
        if not budget.holds(ceiling):  # A16W8 cannot get there: its int8 weights bound it
            note = (f"every group int16 reaches {budget.value(ceiling):.4g} only (A16W8 keeps weights int8), short "
                    f"of {budget.text}: promoted to float instead")
            precision = "float"
            trials = _trials(prepared, stats, options, full_plan, batches, segments, precision)
    promotions: list[Promotion] = []
    evaluations, final, achieved, ranked = 1, full_plan, full, None
    if not budget.holds(full):
        report = analyse(prepared, full_plan, batches, metric=budget.metric, metric_name=budget.measure,
                         trials=trials, progress=progress, alternative=precision, samples=SAMPLES)
        choice = choose(trials.runner, trials.reference, trials.groups, prepared.view, report, budget, full,
                        precision)
        ranked = report.samples

        def replan(promoted: list[Promotion]) -> tuple[QuantPlan, Score]:
            return _replanned(prepared, stats, options, budget, promoted, batches, target_check)

        promotions, final, achieved, topped = _topped_up(replan, budget, list(choice.promotions),
                                                         list(choice.remaining))
        evaluations = choice.evaluations + topped
    return final, {
        "budget": budget.text, "met": budget.holds(achieved), "precision": precision,
        **({"note": note} if note else {}), "samples": samples_in(prepared, batches),
        **({"ranked_samples": ranked} if ranked is not None else {}),
        "full_int8": budget.value(full), "achieved": budget.value(achieved),
        "promotions": _promotion_records(promotions), "int8_share": int8_share(prepared.view, final),
        "evaluations": evaluations}


def _topped_up(replan: Callable[[list[Promotion]], tuple[QuantPlan, Score]], budget: Budget,
               chosen: list[Promotion], spare: list[Promotion]) -> tuple[list[Promotion], QuantPlan, Score, int]:
    """``chosen`` re-made as a plan (readers of float groups float too: it may land short of the budget the search
    met), topped up from ``spare`` (most sensitive first) in runs of 1, 2, 4, ... groups until it holds, then the
    fewest of the last run that still hold (bisection). The promotions, plan, its measure and how many plans were
    measured."""
    added: list[Promotion] = []
    short = 0  # the most top-up groups known to fall short
    plan, achieved = replan(chosen)
    measured = 1
    for run in range(TOP_UPS):
        if budget.holds(achieved) or len(added) == len(spare):
            break
        short, added = len(added), spare[: len(added) + 2**run]
        plan, achieved = replan(chosen + added)
        measured += 1
    if budget.holds(achieved):
        low, high = short, len(added)
        while high - low > 1:
            middle = (low + high) // 2
            candidate, score_ = replan(chosen + added[:middle])
            measured += 1
            if budget.holds(score_):
                high, plan, achieved = middle, candidate, score_
            else:
                low = middle
        added = added[:high]
    return chosen + added, plan, achieved, measured


def _trials(prepared: Prepared, stats: dict, options: PlanOptions, full_plan: QuantPlan, batches: Sequence[Feeds],
            segments: int, precision: str) -> Trials:
    """Trials of ``full_plan``'s groups, each switched between int8 and ``precision``."""
    wide = int16_alternative(prepared.view, stats, options, full_plan) if precision == "int16" else None
    return trials_for(prepared, full_plan, batches, segments, alternative=wide)


def _fitted_plan(prepared: Prepared, stats: dict, options: PlanOptions, budget: Budget,
                 promotions: list[Promotion], target_check: TargetCheck | None) -> QuantPlan:
    """The plan with ``promotions`` made, each int16 promotion the target cannot run turned float (in place, with
    why), until the target runs the plan."""
    plan = _promoted_plan(prepared, stats, options, budget, promotions)
    while target_check is not None and (failure := target_check(plan)) is not None:
        node, why = failure
        hit = [i for i, p in enumerate(promotions) if p.precision == "int16" and node in p.nodes] or [
            i for i, p in enumerate(promotions) if p.precision == "int16" and _widens(prepared, stats, options, budget,
                                                                                      p, node)]
        if not hit:  # not a promotion's doing (--int16, or int8): the export says so itself
            return plan
        for i in hit:
            promotions[i] = replace(promotions[i], precision="float", why=f"the target has {why}")
        plan = _promoted_plan(prepared, stats, options, budget, promotions)
        moot = [p for p in promotions if p.precision == "int16" and p.group not in plan.grids]
        if moot:  # their nodes went float with another group: nothing left to widen
            promotions[:] = [p for p in promotions if p not in moot]
            plan = _promoted_plan(prepared, stats, options, budget, promotions)
    return plan


def _widens(prepared: Prepared, stats: dict, options: PlanOptions, budget: Budget, promotion: Promotion,
            node: str) -> bool:
    """Does ``promotion`` alone give ``node`` an int16 value (an activation's output group shares its input's
    precision, so int16 spreads past the promoted group's own nodes)?"""
    plan = _promoted_plan(prepared, stats, options, budget, [promotion])
    names = next((n for n in prepared.view.nodes if n.name == node), None)
    values = (*names.inputs, *names.outputs) if names is not None else ()
    return any(name in plan.grids and plan.grids[name].dtype == "int16" for name in values)


def _promoted_plan(prepared: Prepared, stats: dict, options: PlanOptions, budget: Budget,
                   promotions: list[Promotion]) -> QuantPlan:
    """The plan with ``promotions`` made: int16 groups, or their nodes float."""
    wide = tuple((p.group, f"promoted to int16 by --budget {budget.text}") for p in promotions
                 if p.precision == "int16")
    why = f"kept float by --budget {budget.text}"
    kept = {node: f"{why} (group {p.group})" for p in promotions if p.precision == "float" for node in p.nodes}
    return make_plan(prepared.view, stats, replace(options, float_nodes=tuple(sorted(kept.items())),
                                                   int16_values=options.int16_values + wide))


def _replanned(prepared: Prepared, stats: dict, options: PlanOptions, budget: Budget, promotions: list[Promotion],
               batches: Sequence[Feeds], target_check: TargetCheck | None) -> tuple[QuantPlan, Score]:
    """The plan with ``promotions`` made (fitted to the target), and the budget's measure of it (the onnx-qdq
    form's arithmetic)."""
    plan = _fitted_plan(prepared, stats, options, budget, promotions, target_check)
    return plan, measure_plan(prepared, plan, batches, budget)


def measure_plan(prepared: Prepared, plan: QuantPlan, batches: Sequence[Feeds], budget: Budget) -> Score:
    """The budget's measure of ``plan`` (the onnx-qdq form's arithmetic) on ``batches``."""
    trials = trials_for(prepared, plan, batches, segments=1)
    return score(trials.reference, trials.runner.outputs_of(trials.int8_cache), budget.metric)


def mac_ops(view: GraphView) -> frozenset[str]:
    """The MAC-carrying ops of ``view``: those whose quantizer has a weight input (Conv, MatMul, Gemm, ...)."""
    weighted = {key for key, quantizer in OP_QUANTIZERS.items() if quantizer.weight is not None}
    return frozenset(node.name for node in view.nodes if (node.domain, node.op_type) in weighted)


def _plan_to_share(prepared: Prepared, stats: dict, options: PlanOptions, budget: Budget, batches: Sequence[Feeds],
                   full_plan: QuantPlan, trials: Trials, precision: str,
                   progress: bool, target_check: TargetCheck | None) -> tuple[QuantPlan, dict[str, Any]]:
    """``int8>=X``: promote the groups whose promotion recovers most SQNR, most first, while at least X of the MAC
    ops stay int8 (a group that costs no MAC op costs nothing); only groups that recover more than MIN_GAIN_DB.
    ``output_sqnr_db`` is measured on the plan before bias correction."""
    full_share = int8_share(prepared.view, full_plan)
    full = score(trials.reference, trials.runner.outputs_of(trials.int8_cache), None)
    report = analyse(prepared, full_plan, batches, trials=trials, progress=progress, alternative=precision,
                     samples=SAMPLES)
    by_name, weighted = {group.name: group for group in trials.groups}, mac_ops(prepared.view)
    floor = math.ceil(budget.threshold * full_share["mac_ops"] - 1e-9)  # MAC ops that must stay int8
    allowed = max(full_share["int8_mac_ops"] - floor, 0)
    spent: set[str] = set()
    chosen: list[tuple[Promotion, frozenset[str]]] = []
    for entry in report.groups:
        cost = frozenset(float_nodes(by_name[entry.group], prepared.view)) & weighted
        if entry.recovered_db is None or entry.recovered_db <= MIN_GAIN_DB or len(spent | cost) > allowed:
            continue
        spent |= cost
        wide = precision if by_name[entry.group].values else "float"
        chosen.append((Promotion(entry.group, float_nodes(by_name[entry.group], prepared.view), entry.recovered_db,
                                 wide), cost))
    final = _fitted_share(prepared, stats, options, budget, chosen, target_check)
    while int8_share(prepared.view, final)["int8_mac_ops"] < min(floor, full_share["int8_mac_ops"]):
        costly = [number for number, (_, cost) in enumerate(chosen) if cost]
        if not costly:
            break
        del chosen[costly[-1]]  # an int16 closure spread further than its cost said: give the last one back
        final = _fitted_share(prepared, stats, options, budget, chosen, target_check)
    share = int8_share(prepared.view, final)
    note = (f"the plan without promotions keeps only {full_share['share']:.1%} of MAC ops int8 (fallbacks, "
            "--int16, --exclude): only promotions that cost none were made" if floor > full_share["int8_mac_ops"]
            else None)
    return final, {
        "budget": budget.text, "met": share["share"] >= budget.threshold, "precision": precision,
        **({"note": note} if note else {}),
        "output_sqnr_db": {"full_int8": full.sqnr_db, "achieved": measure_plan(prepared, final, batches,
                                                                                budget).sqnr_db},
        "samples": samples_in(prepared, batches), "ranked_samples": report.samples,
        "full_int8": full_share["share"], "achieved": share["share"],
        "promotions": _promotion_records([p for p, _ in chosen]), "int8_share": share, "evaluations": 1}


def _fitted_share(prepared: Prepared, stats: dict, options: PlanOptions, budget: Budget,
                  chosen: list[tuple[Promotion, frozenset[str]]], target_check: TargetCheck | None) -> QuantPlan:
    """:func:`_fitted_plan` for ``int8>=X``'s (promotion, cost) pairs (a promotion turned float costs its nodes)."""
    promotions = [p for p, _ in chosen]
    plan = _fitted_plan(prepared, stats, options, budget, promotions, target_check)
    costs = {p.group: cost for p, cost in chosen}  # a promotion turned float has the same nodes, the same cost
    chosen[:] = [(p, costs[p.group]) for p in promotions]
    return plan


def _promotion_records(promotions: Sequence[Promotion]) -> list[dict[str, Any]]:
    return [{"group": p.group, "precision": p.precision, "nodes": list(p.nodes), "recovered": p.recovered,
             **({"why": p.why} if p.why else {})} for p in promotions]
