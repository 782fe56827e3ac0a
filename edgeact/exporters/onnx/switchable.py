"""The switchable model of a plan: the float model in which every tensor group's quantization is behind one boolean
graph input. Switch ``g`` on and group ``g``'s values pass QuantizeLinear -> DequantizeLinear on their planned grids
and the constants of the nodes writing them are replaced by their planned codes dequantized (the arithmetic of the
``onnx-qdq`` form); off, the group is float — or, given an *alternative* plan (the same groups on int16 grids), the
group takes that plan's grids and codes. One model, one onnxruntime session, any mix of int8 and float (int16) groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx_ir as ir
import onnx_ir.passes.common as common

from edgeact.exporters.onnx.grids import CODE_TYPES, qdq_domain
from edgeact.graph.importer import model_bytes
from edgeact.numerics import QParams, dequantize_codes
from edgeact.planning.groups import TensorGroup
from edgeact.planning.plan import ConstantPlan, QuantPlan

SWITCH_PREFIX = "edgeact_switch_"


@dataclass(frozen=True)
class SwitchableModel:
    payload: bytes
    switches: tuple[str, ...]  # the boolean input of each group, in group order
    dequantized: frozenset[str] = frozenset()  # constants holding planned codes dequantized (not the model's own)


def _scalar(graph: ir.Graph, name: str, array: np.ndarray) -> ir.Value:
    value = ir.Value(name=name, const_value=ir.tensor(array, name=name))
    graph.register_initializer(value)
    return value


def _quantize_dequantize(model: ir.Model, value: ir.Value, grid: QParams, tag: str) -> list[ir.Node]:
    """QuantizeLinear -> DequantizeLinear of ``value`` on ``grid`` (its nodes; the last one's output is the result)."""
    graph, domain = model.graph, qdq_domain(model, grid.dtype)
    numpy_type, _ = CODE_TYPES[grid.dtype]
    name = f"{value.name}_{tag}"
    scale = _scalar(graph, f"{name}_scale", np.asarray(grid.scale, dtype=np.float32))
    zero = _scalar(graph, f"{name}_zero_point", np.asarray(grid.zero_point, dtype=numpy_type))
    quantize = ir.Node(domain, "QuantizeLinear", [value, scale, zero], name=f"{name}_quantize")
    restore = ir.Node(domain, "DequantizeLinear", [quantize.outputs[0], scale, zero], name=f"{name}_dequantize")
    quantize.outputs[0].name, restore.outputs[0].name = f"{name}_quantized", f"{name}_dequantized"
    quantize.outputs[0].type, restore.outputs[0].type = ir.TensorType(CODE_TYPES[grid.dtype][1]), value.type
    return [quantize, restore]


def _fake_quantize(model: ir.Model, value: ir.Value, grid: QParams, switch: ir.Value,
                   alternative: QParams | None) -> None:
    """Every use of ``value`` reads Where(switch, DQ(Q(value)), value) — or DQ(Q(value)) on the ``alternative``
    grid when switched off; a graph output keeps its name."""
    graph, name = model.graph, value.name
    added = _quantize_dequantize(model, value, grid, "sw")
    off = value
    if alternative is not None:
        added += _quantize_dequantize(model, value, alternative, "sw_off")
        off = added[-1].outputs[0]
    choose = ir.Node("", "Where", [switch, added[1].outputs[0], off], name=f"{name}_sw_where")
    added.append(choose)
    chosen = choose.outputs[0]
    chosen.type, chosen.shape = value.type, value.shape
    for usage in list(value.uses()):
        if usage.node not in added:
            usage.node.replace_input_with(usage.idx, chosen)
    if value.is_graph_output():
        index = list(graph.outputs).index(value)
        value.name, graph.outputs[index], chosen.name = f"{name}_float", chosen, name
    else:
        chosen.name = f"{name}_switched"
    producer = value.producer()
    if producer is not None:
        graph.insert_after(producer, added)
    else:
        graph.insert_before(next(iter(graph)), added)


def _switch_constant(graph: ir.Graph, node: ir.Node, constant: ConstantPlan, switch: ir.Value, tag: str,
                     alternative: ConstantPlan | None) -> list[str]:
    """The node's constant input becomes Where(switch, its planned codes dequantized, the float constant — or the
    ``alternative`` plan's codes of it, dequantized); returns the names of the dequantized constants it added."""
    original = node.inputs[constant.input_index]
    restored = _scalar(graph, f"{constant.constant}_{constant.role}_sw{tag}",
                       dequantize_codes(constant.codes, constant.grid))
    if alternative is not None:
        original = _scalar(graph, f"{constant.constant}_{constant.role}_sw{tag}_off",
                           dequantize_codes(alternative.codes, alternative.grid))
    choose = ir.Node("", "Where", [switch, restored, original], name=f"{node.name}_{constant.input_index}_sw_where")
    choose.outputs[0].name = f"{node.name}_{constant.input_index}_switched"
    choose.outputs[0].type = ir.TensorType(ir.DataType.FLOAT)
    graph.insert_before(node, choose)
    node.replace_input_with(constant.input_index, choose.outputs[0])
    return [restored.name] + ([original.name] if alternative is not None else [])


def switchable_model(model: ir.Model, plan: QuantPlan, groups: Sequence[TensorGroup],
                     alternative: QuantPlan | None = None) -> SwitchableModel:
    """``model`` (the prepared float model) with each group of ``groups`` behind its own switch input; off, a group
    is float, or on ``alternative``'s grids and constant codes (a plan of the same groups, e.g. every one int16)."""
    others = {(c.node, c.input_index): c for c in alternative.constants} if alternative is not None else {}
    copy = ir.from_proto(ir.to_proto(model))
    graph = copy.graph
    values = {v.name: v for v in graph.inputs}
    nodes = {}
    for node in graph:
        nodes[node.name] = node
        values.update({v.name: v for v in node.outputs})
    switches, dequantized = [], []
    for index, group in enumerate(groups):
        switch = ir.Value(name=f"{SWITCH_PREFIX}{index}", type=ir.TensorType(ir.DataType.BOOL), shape=ir.Shape([]))
        graph.inputs.append(switch)
        switches.append(switch.name)
        for name in group.values:
            _fake_quantize(copy, values[name], plan.grids[name], switch,
                           alternative.grids.get(name) if alternative is not None else None)
        for number in group.constants:
            constant = plan.constants[number]
            dequantized += _switch_constant(graph, nodes[constant.node], constant, switch, str(number),
                                            others.get((constant.node, constant.input_index)))
    common.TopologicalSortPass()(copy)
    return SwitchableModel(model_bytes(copy), tuple(switches), frozenset(dequantized))
