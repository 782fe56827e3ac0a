"""Whole-model TFLite export: canonical graph + plan (or none, for float32) -> .tflite bytes."""

from __future__ import annotations

from dataclasses import dataclass

from edgeact.exporters.tflite.graph import LoweredGraph, serialise
from edgeact.exporters.tflite.lower import Lowering
from edgeact.exporters.tflite.lowerings import lower_graph
from edgeact.exporters.tflite.targets import target as target_named
from edgeact.graph.view import GraphView
from edgeact.planning.plan import QuantPlan


@dataclass(frozen=True)
class TFLiteExport:
    payload: bytes
    graph: LoweredGraph
    table_ops: tuple[str, ...]  # activation nodes lowered as GATHER tables
    builtin_ops: tuple[str, ...]  # activation nodes lowered as exact builtins


def export_tflite(
    view: GraphView,
    plan: QuantPlan | None,
    shapes: dict[str, tuple[int, ...]],
    target: str,
    metadata: dict[str, bytes],
) -> TFLiteExport:
    """The model as .tflite: int8 on ``plan``'s grids, or float32 when ``plan`` is None."""
    ctx = lower_graph(Lowering(view, plan, shapes, target_named(target)))
    kind = "int8" if plan is not None else "float32"
    payload = serialise(ctx.graph, metadata, f"edgeact {kind} model for {target}")
    return TFLiteExport(payload, ctx.graph, tuple(ctx.table_ops), tuple(ctx.builtin_ops))
