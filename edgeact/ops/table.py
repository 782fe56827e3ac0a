"""The op table: every op family module of :mod:`edgeact.ops` (each module with a ``SPECS`` tuple; found by name,
so adding a family is adding its module), collected once. The planner's registry, the TFLite lowering, the
flatbuffer writer and the emulator read these tables; none holds its own."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Any

import edgeact.ops
from edgeact.activations import REGISTRY
from edgeact.domain import EDGEACT_DOMAIN
from edgeact.elementwise import ELEMENTWISE_OP
from edgeact.ops.spec import Builtin, OnnxEmission, OpSpec

NOT_FAMILIES = {"spec", "layout", "table"}


def _families() -> tuple[ModuleType, ...]:
    names = sorted(m.name for m in pkgutil.iter_modules(edgeact.ops.__path__)
                   if not m.name.startswith("_") and m.name not in NOT_FAMILIES)
    return tuple(importlib.import_module(f"edgeact.ops.{name}") for name in names)


FAMILIES = _families()
SPECS: dict[tuple[str, str], OpSpec] = {spec.key: spec for family in FAMILIES for spec in family.SPECS}
BUILTINS: dict[str, Builtin] = {builtin.name: builtin for family in FAMILIES for builtin in family.BUILTINS}
# op name -> (options table, its default fields); ops absent here take no options (the writer and the reader)
OPTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    name: builtin.options for name, builtin in BUILTINS.items() if builtin.options is not None
}


def onnx_emission(domain: str, op_type: str) -> OnnxEmission | None:
    """How the ONNX exporters write a node of (``domain``, ``op_type``): its spec's emission; a fused activation
    (an ``ai.edgeact`` registry activation or elementwise chain) planned float is written as its body (planned as a
    table, the exporter has replaced it); any other standard or foreign-domain op passes through as it is. None: an
    ``ai.edgeact`` op with no spec, which no ONNX runtime could run."""
    spec = SPECS.get((domain, op_type))
    if spec is not None:
        return spec.onnx
    if domain == EDGEACT_DOMAIN:
        return OnnxEmission.INLINE if op_type in REGISTRY or op_type == ELEMENTWISE_OP else None
    return OnnxEmission.KEEP
