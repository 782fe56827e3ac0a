"""The switchable model of a plan: the float model in which every tensor group's quantization is behind one boolean
graph input. Switch ``g`` on and group ``g``'s values pass QuantizeLinear -> DequantizeLinear on their planned grids
and the constants of the nodes writing them are replaced by their planned codes dequantized (the arithmetic of the
``onnx-qdq`` form); off, the group is float. One model, one onnxruntime session, any mix of int8 and float groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx_ir as ir
import onnx_ir.passes.common as common

from edgeact.graph.importer import model_bytes
from edgeact.numerics import QParams, dequantize_codes
from edgeact.planning.groups import TensorGroup
from edgeact.planning.plan import ConstantPlan, QuantPlan

SWITCH_PREFIX = "edgeact_switch_"
_INT = {"int8": (np.int8, ir.DataType.INT8), "uint8": (np.uint8, ir.DataType.UINT8),
        "int16": (np.int16, ir.DataType.INT16)}


@dataclass(frozen=True)
class SwitchableModel:
    payload: bytes
    switches: tuple[str, ...]  # the boolean input of each group, in group order


def _scalar(graph: ir.Graph, name: str, array: np.ndarray) -> ir.Value:
    value = ir.Value(name=name, const_value=ir.tensor(array, name=name))
    graph.register_initializer(value)
    return value


def _fake_quantize(graph: ir.Graph, value: ir.Value, grid: QParams, switch: ir.Value) -> None:
    """Every use of ``value`` reads Where(switch, DQ(Q(value)), value); a graph output keeps its name."""
    numpy_type, _ = _INT[grid.dtype]
    name = value.name
    scale = _scalar(graph, f"{name}_sw_scale", np.asarray(grid.scale, dtype=np.float32))
    zero = _scalar(graph, f"{name}_sw_zero_point", np.asarray(grid.zero_point, dtype=numpy_type))
    quantize = ir.Node("", "QuantizeLinear", [value, scale, zero], name=f"{name}_sw_quantize")
    restore = ir.Node("", "DequantizeLinear", [quantize.outputs[0], scale, zero], name=f"{name}_sw_dequantize")
    choose = ir.Node("", "Where", [switch, restore.outputs[0], value], name=f"{name}_sw_where")
    quantize.outputs[0].name, restore.outputs[0].name = f"{name}_sw_quantized", f"{name}_sw_dequantized"
    chosen = choose.outputs[0]
    chosen.type, chosen.shape = value.type, value.shape
    for usage in list(value.uses()):
        if usage.node is not quantize and usage.node is not choose:
            usage.node.replace_input_with(usage.idx, chosen)
    if value.is_graph_output():
        index = list(graph.outputs).index(value)
        value.name, graph.outputs[index], chosen.name = f"{name}_float", chosen, name
    else:
        chosen.name = f"{name}_switched"
    producer = value.producer()
    added = [quantize, restore, choose]
    if producer is not None:
        graph.insert_after(producer, added)
    else:
        graph.insert_before(next(iter(graph)), added)


def _switch_constant(graph: ir.Graph, node: ir.Node, constant: ConstantPlan, switch: ir.Value, tag: str) -> None:
    """The node's constant input becomes Where(switch, its planned codes dequantized, the float constant)."""
    original = node.inputs[constant.input_index]
    restored = _scalar(graph, f"{constant.constant}_{constant.role}_sw{tag}",
                       dequantize_codes(constant.codes, constant.grid))
    choose = ir.Node("", "Where", [switch, restored, original], name=f"{node.name}_{constant.input_index}_sw_where")
    choose.outputs[0].name = f"{node.name}_{constant.input_index}_switched"
    choose.outputs[0].type = ir.TensorType(ir.DataType.FLOAT)
    graph.insert_before(node, choose)
    node.replace_input_with(constant.input_index, choose.outputs[0])


def switchable_model(model: ir.Model, plan: QuantPlan, groups: Sequence[TensorGroup]) -> SwitchableModel:
    """``model`` (the prepared float model) with each group of ``groups`` behind its own switch input."""
    copy = ir.from_proto(ir.to_proto(model))
    graph = copy.graph
    values = {v.name: v for v in graph.inputs}
    nodes = {}
    for node in graph:
        nodes[node.name] = node
        values.update({v.name: v for v in node.outputs})
    switches = []
    for index, group in enumerate(groups):
        switch = ir.Value(name=f"{SWITCH_PREFIX}{index}", type=ir.TensorType(ir.DataType.BOOL), shape=ir.Shape([]))
        graph.inputs.append(switch)
        switches.append(switch.name)
        for name in group.values:
            _fake_quantize(graph, values[name], plan.grids[name], switch)
        for number in group.constants:
            _switch_constant(graph, nodes[plan.constants[number].node], plan.constants[number], switch, str(number))
    common.TopologicalSortPass()(copy)
    return SwitchableModel(model_bytes(copy), tuple(switches))
