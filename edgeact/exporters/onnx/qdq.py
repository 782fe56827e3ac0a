"""Write a :class:`QuantPlan` into the canonical model as QuantizeLinear/DequantizeLinear pairs.

``onnx-qdq``: every planned value gets Q->DQ with its grid; weights and biases are stored as int8/int32 behind a
DequantizeLinear (per output channel); each node is written as its op spec's ONNX emission says (fused ``ai.edgeact``
functions inlined back to standard ops), which onnxruntime, TensorRT, QNN and OpenVINO consume.
``onnx-table``: the same, but each planned activation is Cast(int8 -> int32) -> Gather on its 256-entry int8 table
(rolled so the signed code is the index), so any ONNX runtime computes exactly edgeact's table.

8-bit activation grids are written with the plan's ONNX code type (``onnx_codes``): int8, or uint8 (the same grid,
zero point + 128, every code + 128; tables indexed by the unsigned code) where the ONNX device fuses QDQ into its int8
kernels only for uint8 activations. Weights stay int8 and biases int32 (u8 x s8 is the fast path).

Every number comes from the plan: the grids, the codes of the constants planned for ``form``, and each
activation's form in ``form`` (``table``: the Gather; ``float``: the op between DequantizeLinear/QuantizeLinear).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import onnx_ir.passes.common as common

from edgeact.documents.provenance import PROVENANCE_KEY, OnnxProvenance
from edgeact.errors import EdgeactError
from edgeact.exporters.onnx.grids import CODE_TYPES, qdq_domain
from edgeact.graph import view_of
from edgeact.graph.importer import check_bytes, model_bytes
from edgeact.numerics import PerChannelQParams, QParams, as_codes
from edgeact.ops.relu_clip import folded_values
from edgeact.ops.spec import OnnxEmission
from edgeact.ops.table import onnx_emission
from edgeact.planning.plan import ActivationPlan, ConstantPlan, QuantPlan
from edgeact.planning.target_forms import FLOAT, TABLE

FORMATS = ("onnx-qdq", "onnx-table")


class _Writer:
    def __init__(self, model: ir.Model, activation_codes: str = "int8") -> None:
        self.model = model
        self.activation_codes = activation_codes  # the plan's code type for 8-bit activation grids
        self.graph = model.graph
        sources = list(self.graph.inputs) + list(self.graph.initializers.values())
        self.values: dict[str, ir.Value] = {v.name: v for v in sources}
        self.nodes: dict[str, ir.Node] = {}
        for node in self.graph:
            self.nodes[node.name] = node
            self.values.update({v.name: v for v in node.outputs})
        self.quantize_nodes: dict[str, ir.Node] = {}
        self.dequantize_nodes: dict[str, ir.Node] = {}
        self.codes: dict[str, ir.Value] = {}  # value name -> the int8 codes that carry it
        self.restored: dict[tuple, ir.Value] = {}  # (constant, role, grid) -> its shared DequantizeLinear output

    def _initializer(self, name: str, array: np.ndarray) -> ir.Value:
        if name in self.graph.initializers:
            return self.graph.initializers[name]
        value = ir.Value(name=name, const_value=ir.tensor(array, name=name))
        self.graph.register_initializer(value)
        return value

    def _grid_inputs(self, prefix: str, grid: QParams | PerChannelQParams) -> tuple[ir.Value, ir.Value]:
        dtype = CODE_TYPES[grid.dtype][0]
        if isinstance(grid, PerChannelQParams):
            scale = np.asarray(grid.scales, dtype=np.float32)
            zero = np.zeros(len(grid.scales), dtype=dtype)
        else:
            scale, zero = np.asarray(grid.scale, dtype=np.float32), np.asarray(grid.zero_point, dtype=dtype)
        return self._initializer(f"{prefix}_scale", scale), self._initializer(f"{prefix}_zero_point", zero)

    def quantized_constant(self, plan: ConstantPlan) -> None:
        """The constant's int8/int32 codes behind one DequantizeLinear, shared by every node that uses the same
        constant on the same grid (an unrolled LSTM's weights are stored once, not once per step)."""
        node = self.nodes[plan.node]
        key = (plan.constant, plan.role, plan.grid)
        if key not in self.restored:
            grid, codes = plan.grid, plan.codes
            if plan.role not in ("weight", "bias") and isinstance(grid, QParams):  # on an activation's grid
                grid = as_codes(grid, self.activation_codes)
                codes = codes.astype(np.int64) + (grid.zero_point - plan.grid.zero_point)
            codes = codes.astype(CODE_TYPES[grid.dtype][0])
            name = f"{plan.constant}_{plan.role}_q"
            if name in self.graph.initializers:  # the same constant on another grid
                name = f"{name}_{plan.node}"
            stored = self._initializer(name, codes)
            scale, zero = self._grid_inputs(stored.name, grid)
            attributes = [ir.AttrInt64("axis", grid.axis)] if isinstance(grid, PerChannelQParams) else []
            domain = qdq_domain(self.model, grid.dtype)
            restore = ir.Node(domain, "DequantizeLinear", [stored, scale, zero], attributes,
                              name=f"{stored.name}_dequantize")
            restore.outputs[0].name = f"{stored.name}_dequantized"
            self.graph.insert_before(node, restore)
            self.restored[key] = restore.outputs[0]
        node.replace_input_with(plan.input_index, self.restored[key])

    def quantize_value(self, name: str, planned: QParams) -> None:
        value = self.values[name]
        grid = as_codes(planned, self.activation_codes)
        scale, zero = self._grid_inputs(name, grid)
        domain = qdq_domain(self.model, grid.dtype)
        quantize = ir.Node(domain, "QuantizeLinear", [value, scale, zero], name=f"{name}_quantize")
        quantize.outputs[0].name = f"{name}_quantized"
        restore = ir.Node(domain, "DequantizeLinear", [quantize.outputs[0], scale, zero], name=f"{name}_dequantize")
        restored = restore.outputs[0]
        restored.type, restored.shape = value.type, value.shape
        quantize.outputs[0].type = ir.TensorType(CODE_TYPES[grid.dtype][1])
        quantize.outputs[0].shape = value.shape
        for usage in list(value.uses()):
            if usage.node is not quantize:
                usage.node.replace_input_with(usage.idx, restored)
        if value.is_graph_output():
            index = list(self.graph.outputs).index(value)
            value.name = f"{name}_float"
            self.graph.outputs[index] = restored
            restored.name = name
        else:
            restored.name = f"{name}_dequantized"
        producer = value.producer()
        if producer is not None:
            self.graph.insert_after(producer, [quantize, restore])
        else:
            self.graph.insert_before(next(iter(self.graph)), [quantize, restore])
        self.quantize_nodes[name], self.dequantize_nodes[name] = quantize, restore
        self.codes[name] = quantize.outputs[0]

    def table_activation(self, plan: ActivationPlan) -> None:
        """Replace DQ -> f -> Q by Cast -> Gather on the table (chained tables read each other's codes): int8's 256
        entries, or an int16 table read at all 65,536 codes."""
        in_q, out_q = plan.table.in_q, plan.table.out_q
        shifted_in, shifted_out = as_codes(in_q, self.activation_codes), as_codes(out_q, self.activation_codes)
        codes = plan.table.lookup(in_q.codes).astype(np.int64) + (shifted_out.zero_point - out_q.zero_point)
        codes = codes.astype(CODE_TYPES[shifted_out.dtype][0])  # in input-code order, lowest code first
        if shifted_in.qmin < 0:  # index = signed input code (negative wraps)
            half = codes.size // 2
            codes = np.concatenate([codes[half:], codes[:half]])
        table = self._initializer(f"{plan.node}_table", codes)
        source = self.codes[plan.input]
        to_int32 = [ir.AttrInt64("to", ir.DataType.INT32)]
        cast = ir.Node("", "Cast", [source], to_int32, name=f"{plan.node}_index")
        cast.outputs[0].name = f"{plan.node}_index"
        axis = [ir.AttrInt64("axis", 0)]
        gather = ir.Node("", "Gather", [table, cast.outputs[0]], axis, name=f"{plan.node}_table_lookup")
        gather.outputs[0].name = f"{plan.output}_quantized_by_table"
        gather.outputs[0].type, gather.outputs[0].shape = source.type, source.shape
        self.graph.insert_after(source.producer(), [cast, gather])
        output_q = self.quantize_nodes[plan.output]
        for usage in list(output_q.outputs[0].uses()):  # the output DQ, and the next table's Cast if chained
            usage.node.replace_input_with(usage.idx, gather.outputs[0])
        self.codes[plan.output] = gather.outputs[0]
        self.graph.remove([self.nodes[plan.node], output_q], safe=True)


def _form_of(activation: ActivationPlan, form: str) -> str:
    """The planned form of ``activation`` in ``form``: ``table`` or ``float`` (ONNX has no int8 builtin)."""
    planned = activation.forms.get(form)
    if planned is None or planned.kind not in (TABLE, FLOAT):
        raise EdgeactError(f"activation {activation.node!r}: the plan holds no {form} form for it")
    return planned.kind


def _inline_by_emission(model: ir.Model) -> None:
    """Write each node as its op spec says (:func:`edgeact.ops.table.onnx_emission`): ``INLINE`` calls become their
    function's body; a node no spec covers is refused rather than written as a call no runtime has."""
    inline: set[ir.OperatorIdentifier] = set()
    for node in model.graph:
        emission = onnx_emission(node.domain, node.op_type)
        if emission is None:
            raise EdgeactError(f"node {node.name!r}: {node.domain}::{node.op_type} has no ONNX form in edgeact.ops "
                               "(its spec must say how the ONNX exporters write it)")
        if emission is OnnxEmission.INLINE:
            inline.add(node.op_identifier())
    common.InlinePass(criteria=lambda function: function.identifier() in inline)(model)


def _provenance(writer: _Writer, model: ir.Model, folded: dict[str, str]) -> OnnxProvenance:
    """Which planned value each DequantizeLinear output still in ``model`` restores: a value whose grid folds the
    Relu/Clip after it restores that Relu/Clip's output (its grid clamps as the Relu/Clip does)."""
    present = {value.name for node in model.graph for value in node.outputs}
    return OnnxProvenance(dequantized={node.outputs[0].name: folded.get(name, name)
                                       for name, node in writer.dequantize_nodes.items()
                                       if node.outputs[0].name in present})


def export_onnx(model: ir.Model, plan: QuantPlan, form: str) -> bytes:
    """The int8 model in ``form`` (``onnx-qdq`` or ``onnx-table``), serialised and checked."""
    copy = ir.from_proto(ir.to_proto(model))
    writer = _Writer(copy, plan.onnx_codes)
    for constant in plan.constants:
        if form in constant.formats:
            writer.quantized_constant(constant)
    for name in sorted(plan.grids, key=list(writer.values).index):
        writer.quantize_value(name, plan.grids[name])
    for activation in plan.activations:
        if _form_of(activation, form) == TABLE:
            writer.table_activation(activation)
    _inline_by_emission(copy)
    common.RemoveUnusedNodesPass()(copy)
    common.RemoveUnusedFunctionsPass()(copy)
    common.RemoveUnusedOpsetsPass()(copy)
    common.TopologicalSortPass()(copy)
    folded = folded_values(view_of(model), plan.grids)
    copy.metadata_props[PROVENANCE_KEY] = _provenance(writer, copy, folded).to_text()
    payload = model_bytes(copy)
    check_bytes(payload, form)
    return payload
