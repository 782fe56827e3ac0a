"""The calibration record: every decision of a quantize run as JSON (reproducible, diffable)."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from edgeact.activations import REGISTRY
from edgeact.numerics import PerChannelQParams, QParams, dequantize
from edgeact.planning.plan import ActivationPlan, ConstantPlan, Fallback, QuantPlan
from edgeact.planning.target_forms import ActivationForm


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
        "table": plan.table.samples().tolist(),
        **({"table_sampled": True} if plan.table.bits == 16 and not plan.table.interpolated else {}),
        "form": forms_dict(plan.forms),
        **_unregistered(plan),
    }


def forms_dict(forms: dict[str, ActivationForm]) -> dict[str, Any]:
    """An activation's form per output format, with the reason (and the builtin, where one is used)."""
    return {form: forms[form].as_dict() for form in sorted(forms)}


def codes_dict(codes: np.ndarray) -> dict[str, Any]:
    """Integer codes as their sha256 (of the values in C order, little-endian), count, dtype and shape."""
    data = np.ascontiguousarray(codes, dtype=codes.dtype.newbyteorder("<"))
    return {"sha256": hashlib.sha256(data.tobytes()).hexdigest(), "count": int(data.size),
            "dtype": data.dtype.name, "shape": list(data.shape)}


def constant_dict(plan: ConstantPlan) -> dict[str, Any]:
    """One planned constant: where it goes, its grid, its codes (hashed) and the formats that store them."""
    entry = {"node": plan.node, "input": plan.constant, "input_index": plan.input_index, "role": plan.role,
             **grid_dict(plan.grid), "codes": codes_dict(plan.codes), "formats": list(plan.formats)}
    return {**entry, "why": plan.why} if plan.why else entry


def fallback_dict(fallback: Fallback) -> dict[str, Any]:
    entry = {"node": fallback.node, "op_type": fallback.op_type, "reason": fallback.reason}
    return {**entry, "form": forms_dict(fallback.forms)} if fallback.forms else entry


def _unregistered(plan: ActivationPlan) -> dict[str, Any]:
    """A function outside the registry (a fused elementwise chain): its formula and f at every input code, so
    reports can draw it without the model."""
    if plan.function.name in REGISTRY:
        return {}
    x = dequantize(plan.table.in_q.codes, plan.table.in_q)
    return {"expression": plan.function.summary, "reference": [float(v) for v in plan.function(x)]}


def plan_dict(plan: QuantPlan) -> dict[str, Any]:
    """The plan part of the record (its target, tensors, activations and their forms, constants with their codes,
    fallbacks, hazards)."""
    tensors = {}
    for name in sorted(plan.grids):
        entry = grid_dict(plan.grids[name])
        chosen = plan.ranges.get(name)
        if chosen is not None:
            entry.update(range=[chosen.lo, chosen.hi], method=chosen.method, why=chosen.why)
        if name in plan.shares_grid_with:
            entry["shares_grid_with"] = plan.shares_grid_with[name]
        if name in plan.int16:
            entry["int16_why"] = plan.int16[name]
        tensors[name] = entry
    return {
        "plan_target": plan.target,
        "onnx_codes": {"activations": plan.onnx_codes, "why": plan.onnx_codes_why},
        "tflite_io": plan.io,
        "tflite_islands": dict(sorted(plan.islands.items())),
        "tensors": tensors,
        "activations": [activation_dict(a) for a in plan.activations],
        "constants": [constant_dict(c) for c in plan.constants],
        "quantized_nodes": [{"node": name, "op_type": op, **({"domain": plan.domains[name]} if name in plan.domains
                                                             else {})} for name, op in plan.quantized],
        "fallbacks": [fallback_dict(f) for f in plan.fallbacks],
        "integer_nodes": [{"node": name, "op_type": op} for name, op in plan.integer_nodes],
        "hazards": plan.hazards,
    }
