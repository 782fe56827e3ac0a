"""The calibration record: every decision of a quantize run as JSON (reproducible, diffable)."""

from __future__ import annotations

from typing import Any

from edgeact.activations import REGISTRY
from edgeact.numerics import PerChannelQParams, QParams, dequantize
from edgeact.planning.plan import ActivationPlan, QuantPlan


def grid_dict(grid: QParams | PerChannelQParams) -> dict[str, Any]:
    if isinstance(grid, PerChannelQParams):
        return {"dtype": grid.dtype, "axis": grid.axis, "scales": list(grid.scales)}
    return {"dtype": grid.dtype, "scale": grid.scale, "zero_point": grid.zero_point}


def activation_dict(plan: ActivationPlan) -> dict[str, Any]:
    chosen = plan.input_range
    return {
        "node": plan.node,
        "function": plan.function.name,
        "params": plan.function.params,
        "input": plan.input,
        "output": plan.output,
        "input_range": {"lo": chosen.lo, "hi": chosen.hi, "method": chosen.method, "why": chosen.why},
        "input_grid": grid_dict(plan.table.in_q),
        "output_grid": grid_dict(plan.table.out_q),
        "saturation_rate": plan.saturation_rate,
        "error": plan.error.as_dict(),
        "table": plan.table.values.tolist(),
        **_unregistered(plan),
    }


def _unregistered(plan: ActivationPlan) -> dict[str, Any]:
    """A function outside the registry (a fused elementwise chain): its formula and f at every input code, so
    reports can draw it without the model."""
    if plan.function.name in REGISTRY:
        return {}
    x = dequantize(plan.table.in_q.codes, plan.table.in_q)
    return {"expression": plan.function.summary, "reference": [float(v) for v in plan.function(x)]}


def plan_dict(plan: QuantPlan) -> dict[str, Any]:
    """The plan part of the record (tensors, activations, constants, fallbacks, hazards)."""
    tensors = {}
    for name in sorted(plan.grids):
        entry = grid_dict(plan.grids[name])
        chosen = plan.ranges.get(name)
        if chosen is not None:
            entry.update(range=[chosen.lo, chosen.hi], method=chosen.method, why=chosen.why)
        if name in plan.shares_grid_with:
            entry["shares_grid_with"] = plan.shares_grid_with[name]
        tensors[name] = entry
    return {
        "tensors": tensors,
        "activations": [activation_dict(a) for a in plan.activations],
        "constants": [
            {"node": c.node, "input": c.constant, "role": c.role, **grid_dict(c.grid)} for c in plan.constants
        ],
        "quantized_nodes": [{"node": name, "op_type": op} for name, op in plan.quantized],
        "fallbacks": [{"node": f.node, "op_type": f.op_type, "reason": f.reason} for f in plan.fallbacks],
        "integer_nodes": [{"node": name, "op_type": op} for name, op in plan.integer_nodes],
        "hazards": plan.hazards,
    }
