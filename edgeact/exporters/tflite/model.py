"""Whole-model TFLite export: canonical graph + plan (or none, for float32) -> lowered graph -> .tflite bytes."""

from __future__ import annotations

from dataclasses import dataclass

from edgeact.errors import UsageError
from edgeact.exporters.tflite.lower import Lowering
from edgeact.exporters.tflite.lowerings import lower_graph
from edgeact.exporters.tflite.targets import target as target_named
from edgeact.exporters.tflite.writer import serialise
from edgeact.graph.view import GraphView
from edgeact.planning.plan import QuantPlan
from edgeact.tflite.graph import LoweredGraph


@dataclass(frozen=True)
class TFLiteLowering:
    graph: LoweredGraph
    target: str
    int8: bool
    table_ops: tuple[str, ...]  # activation nodes lowered as GATHER tables
    builtin_ops: tuple[str, ...]  # activation nodes lowered as exact builtins
    island_ops: tuple[str, ...] = ()  # activation nodes lowered as float islands (DEQUANTIZE -> f -> QUANTIZE)
    io_float: tuple[tuple[str, str, str], ...] = ()  # (input|output, name, why) float32 although int8 I/O was asked

    def to_bytes(self, metadata: dict[str, bytes]) -> bytes:
        kind = "int8" if self.int8 else "float32"
        return serialise(self.graph, metadata, f"edgeact {kind} model for {self.target}")


def lower_tflite(
    view: GraphView, plan: QuantPlan | None, shapes: dict[str, tuple[int, ...]], target: str
) -> TFLiteLowering:
    """The model lowered to TFLite builtins: int8 on ``plan``'s grids, or float32 when ``plan`` is None.

    ``plan`` must have been made for ``target`` (``PlanOptions(target=...)``, or ``planning.retarget``): the plan
    decides each activation's form on the target, the exporter only translates it."""
    if plan is not None and target_named(plan.target).name != target_named(target).name:
        raise UsageError(f"the plan was made for target {plan.target!r}, not {target!r}: plan with "
                         f"PlanOptions(target={target!r}), or export planning.target_forms.retarget(plan, {target!r})")
    ctx = lower_graph(Lowering(view, plan, shapes, target_named(target)))  # a device profile
    return TFLiteLowering(ctx.graph, target, plan is not None, tuple(ctx.table_ops), tuple(ctx.builtin_ops),
                          tuple(ctx.island_ops), tuple(ctx.io_float))
