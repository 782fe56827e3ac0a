"""The planner: graph view + calibration stats -> every int8 grid, table, constant and fallback.

Grids are chosen per *group*: values joined by data-movement ops (Reshape, MaxPool, ...) or by a folded
Relu/Clip share one grid. Activation tables are planned first, in graph order, so their input grids can be chosen
for the error after the activation and their output grids cover what the table produces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeact.activations import Activation
from edgeact.calibration.observers import TensorStats
from edgeact.calibration.ranges import METHODS, ChosenRange, Reader, joint_aware, minmax
from edgeact.elementwise import is_elementwise_call
from edgeact.errors import UsageError
from edgeact.graph.view import GraphView, NodeView
from edgeact.numerics import (
    PerChannelQParams,
    QParams,
    Table,
    TableError,
    covering_output_grid,
    lut_for,
    qparams_from_range,
    table_error,
)
from edgeact.numerics.tables import exact_table
from edgeact.planning import constants as codes_of
from edgeact.planning.registry import OpQuantizer, Role, activation_of, quantizer_for
from edgeact.planning.target_forms import (
    ONNX_CODES,
    RECURRENT_CELLS,
    ActivationForm,
    activation_forms,
    float_forms,
    onnx_activation_codes,
    op_islands,
    recurrent_cell_precision,
    target_profile,
)

TFLITE_IO = ("float", "int8")  # --io
MASK_THRESHOLD = -1.0e4  # values at or below this are additive-mask fill, never part of an int8 range
CONCAT_RANGE_RATIO = 16.0  # concat inputs whose ranges differ more than this keep the concat float
SHAPE_READERS = frozenset({"Shape", "Size"})  # read a float tensor's dims, never its values
OUTPUT_FORMATS = ("onnx-qdq", "onnx-table", "tflite")
CELL_OUTPUT_OPS = frozenset({"Mul", "Sub"})  # the op that makes a recurrent cell's output h from its gates alone


@dataclass(frozen=True)
class PlanOptions:
    """How to plan: calibration ``method``, per-tensor weights, nodes to keep float, and the ``target`` device
    profile (a built-in name such as ``litert``, ``tflm``, or a profile ``.toml`` path) whose kernels decide each
    activation's form."""

    method: str = "auto"
    per_tensor: bool = False
    exclude: frozenset[str] = frozenset()
    target: str = "litert"
    float_nodes: tuple[tuple[str, str], ...] = ()  # (node, why): nodes a decision above the planner keeps float
    int16: frozenset[str] = frozenset()  # node names, op types or activations whose values get int16 grids
    int16_values: tuple[tuple[str, str], ...] = ()  # (value, why): values whose whole group gets an int16 grid
    onnx_activations: str = "auto"  # int8 | uint8 codes for 8-bit activations in the ONNX forms (auto: its device's)
    io: str = "float"  # the .tflite's float inputs and outputs: float32, or int8 where the plan gives them an int8 grid
    recurrent_cells: str = "auto"  # an unrolled LSTM/GRU's gates and state: int16 | float | int8 (auto: the target's)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UsageError(f"unknown calibration method {self.method!r}; known: {', '.join(METHODS)}")
        if self.io not in TFLITE_IO:
            raise UsageError(f"unknown TFLite I/O {self.io!r}; known: {', '.join(TFLITE_IO)}")
        if self.recurrent_cells not in RECURRENT_CELLS:
            raise UsageError(f"unknown recurrent cell precision {self.recurrent_cells!r}; known: "
                             f"{', '.join(RECURRENT_CELLS)}")
        if self.onnx_activations not in ONNX_CODES:
            raise UsageError(f"unknown ONNX activation codes {self.onnx_activations!r}; known: {', '.join(ONNX_CODES)}")


@dataclass(frozen=True)
class ConstantPlan:
    node: str
    input_index: int
    constant: str
    role: str  # weight | bias | operand | reciprocal | pad_fill
    grid: QParams | PerChannelQParams
    codes: np.ndarray
    formats: tuple[str, ...] = OUTPUT_FORMATS  # the output formats that store these codes
    why: str = ""  # for a constant the model does not hold as such (a reciprocal, a zero bias, a pad fill)


@dataclass(frozen=True)
class ActivationPlan:
    node: str
    function: Activation
    input: str
    output: str
    input_range: ChosenRange
    table: Table
    error: TableError
    saturation_rate: float | None  # share of calibration inputs beyond the saturation bounds
    forms: dict[str, ActivationForm] = field(default_factory=dict)  # output format -> builtin | table | float


@dataclass(frozen=True)
class Fallback:
    node: str
    op_type: str
    reason: str
    forms: dict[str, ActivationForm] = field(default_factory=dict)  # an activation's (float) form per format


@dataclass
class QuantPlan:
    target: str = "litert"  # the device profile the activation forms were decided for
    grids: dict[str, QParams] = field(default_factory=dict)
    ranges: dict[str, ChosenRange] = field(default_factory=dict)  # by group root
    shares_grid_with: dict[str, str] = field(default_factory=dict)  # member -> group root
    constants: list[ConstantPlan] = field(default_factory=list)
    activations: list[ActivationPlan] = field(default_factory=list)
    quantized: list[tuple[str, str]] = field(default_factory=list)  # (node, op_type)
    domains: dict[str, str] = field(default_factory=dict)  # node -> its op's domain, for nodes outside ONNX's
    fallbacks: list[Fallback] = field(default_factory=list)
    integer_nodes: list[tuple[str, str]] = field(default_factory=list)  # shape arithmetic, nothing to quantize
    hazards: list[str] = field(default_factory=list)
    onnx_codes: str = "int8"  # 8-bit activation codes in the ONNX forms: int8 | uint8 (same grids, code + 128)
    onnx_codes_why: str = ""
    io: str = "float"  # the .tflite's float inputs and outputs: float32 | int8 (those on an int8 grid)
    islands: dict[str, str] = field(default_factory=dict)  # quantized node -> why the .tflite runs it as a float island
    int16: dict[str, str] = field(default_factory=dict)  # group root -> why its grid is int16 (A16W8)


class _Groups:
    """Union-find over value names; the root is the earliest member."""

    def __init__(self, order: dict[str, int]) -> None:
        self.parent: dict[str, str] = {}
        self.order = order

    def find(self, name: str) -> str:
        self.parent.setdefault(name, name)
        while self.parent[name] != name:
            self.parent[name] = self.parent[self.parent[name]]
            name = self.parent[name]
        return name

    def union(self, a: str, b: str) -> None:
        ra, rb = sorted((self.find(a), self.find(b)), key=lambda n: self.order.get(n, -1))
        self.parent[rb] = ra

    def members(self, root: str) -> list[str]:
        return [name for name in self.parent if self.find(name) == root]


def _data_indices(node: NodeView, quantizer: OpQuantizer) -> list[int]:
    indices = range(len(node.inputs)) if quantizer.data_inputs is None else quantizer.data_inputs
    return [i for i in indices if i < len(node.inputs) and node.inputs[i]]


class _Planner:
    def __init__(self, view: GraphView, stats: dict[str, TensorStats], options: PlanOptions) -> None:
        self.view, self.stats, self.options = view, stats, options
        self.profile = target_profile(options.target)
        codes, why = onnx_activation_codes(options.onnx_activations)
        self.plan = QuantPlan(target=options.target, onnx_codes=codes, onnx_codes_why=why, io=options.io)
        self.cells = recurrent_cell_precision(self.profile, options.recurrent_cells)  # (precision, why)
        self.roles: dict[str, OpQuantizer] = {}
        self.order = {}
        for index, node in enumerate(view.nodes):
            for name in node.outputs:
                self.order[name] = index + 1
        self.groups = _Groups(self.order)
        self.wanted: set[str] = set()
        self.fold_source: dict[str, str] = {}  # group root -> the Relu/Clip output whose range it takes
        self.quantized_constants: dict[tuple, object] = {}  # (constant, role, grid or axis) -> its grid/codes
        self.fixed_ranges: dict[str, tuple[float, float]] = {}  # float node -> the fixed range of its op's output

    # -- which values can hold an int8 grid ---------------------------------------------------------------------
    def _is_activation_value(self, name: str) -> bool:
        value = self.view.values.get(name)
        return bool(name) and value is not None and value.is_float and value.constant is None and name in self.stats

    def _mask_floor(self, name: str) -> float | None:
        """The huge negative (or non-finite) fill a value holds, or None when it has none. A value an activation
        (a table: named, or a fused elementwise chain) produces is a function's output, never mask fill."""
        producer = self.view.producer(name)
        if producer is not None and activation_of(producer, self.view) is not None:
            return None
        value = self.view.values.get(name)
        if value is not None and value.constant is not None and value.is_float and value.constant.size:
            data = value.constant.astype(np.float64)
            if not np.isfinite(data).all() or data.min() <= MASK_THRESHOLD:
                return float(np.nanmin(np.where(np.isfinite(data), data, -np.inf)))
            return None
        stats = self.stats.get(name)
        if stats is not None and (stats.nonfinite or (stats.exponent is not None and stats.min <= MASK_THRESHOLD)):
            return -np.inf if stats.nonfinite else stats.min
        return None

    def _range_of(self, name: str) -> tuple[float, float] | None:
        value = self.view.values.get(name)
        if value is not None and value.constant is not None and value.constant.size:
            return float(value.constant.min()), float(value.constant.max())
        stats = self.stats.get(name)
        return (stats.min, stats.max) if stats is not None and stats.exponent is not None else None

    # -- roles and fallbacks --------------------------------------------------------------------------------------
    def _fallback_reason(self, node: NodeView) -> str | None:
        if self._excluded_by(node):
            return "excluded by --exclude"
        kept = dict(self.options.float_nodes).get(node.name)
        if kept is not None:
            return kept
        if self.cells[0] == "float" and self._in_cell(node):
            return self.cells[1]
        if node.has_subgraphs:
            return f"{node.op_type} holds subgraphs; it runs float between DequantizeLinear/QuantizeLinear"
        quantizer = quantizer_for(node, self.view)
        if quantizer is None:
            return f"no int8 quantizer for {node.domain + '::' if node.domain else ''}{node.op_type}"
        if quantizer.stays_float is not None and (why := quantizer.stays_float(node)):
            return why
        for name in node.outputs:
            floor = self._mask_floor(name)
            if floor is not None:
                return f"output {name!r} holds additive-mask values (down to {floor:.3g}); kept float"
        for index in _data_indices(node, quantizer):
            name = node.inputs[index]
            constant = self.view.values[name].constant is not None
            if index == quantizer.weight and constant:
                continue
            reason = self._gridless_reason(name, constant)
            if reason is not None and quantizer.output_range is None:
                return reason
            if reason is not None and not constant and self.view.values[name].is_float:
                # an op with a fixed output range (Softmax) reading a float input no int8 grid holds: it computes in
                # float32 in every format; its output keeps the op's range
                self.fixed_ranges[node.name] = quantizer.output_range
                return f"{reason} (no int8 grid holds it: the op computes in float, its output quantized)"
        if quantizer.weight is not None and quantizer.data_inputs == (0,):
            weight = node.inputs[quantizer.weight] if quantizer.weight < len(node.inputs) else ""
            if weight and self.view.values[weight].constant is None:
                return f"weight {weight!r} is not a constant"
        if node.op_type == "Concat":
            return self._concat_reason(node)
        return None

    def _in_cell(self, node: NodeView) -> str:
        """The recurrent cell type (LSTM, GRU) whose gates or state ``node`` computes, or whose output h it makes
        from them alone; or ""."""
        outputs = {self.view.values[name].cell for name in node.outputs if name in self.view.values}
        if len(outputs) == 1 and "" not in outputs:
            return outputs.pop()
        if node.op_type not in CELL_OUTPUT_OPS:  # h = o * tanh(c) (LSTM), candidate - z * (...) (GRU)
            return ""
        read = [self.view.values[name] for name in node.inputs if name in self.view.values]
        inputs = {value.cell for value in read if value.constant is None}
        return inputs.pop() if len(inputs) == 1 and "" not in inputs else ""

    def _gridless_reason(self, name: str, constant: bool) -> str | None:
        """Why a data input can hold no int8 grid, or None."""
        if self._mask_floor(name) is not None:
            return f"input {name!r} holds additive-mask values; kept float"
        if not constant and not self._is_activation_value(name):
            return f"input {name!r} is not a float tensor edgeact observed"
        return None

    def _concat_reason(self, node: NodeView) -> str | None:
        widths = [hi - lo for lo, hi in filter(None, (self._range_of(n) for n in node.inputs if n))]
        widths = [w for w in widths if w > 0]
        if len(widths) > 1 and max(widths) / min(widths) > CONCAT_RANGE_RATIO:
            ratio = max(widths) / min(widths)
            return f"input ranges differ x{ratio:.0f}; one int8 scale would wipe out the smaller inputs"
        return None

    def _excluded_by(self, node: NodeView) -> str | None:
        return self._matched_by(node, self.options.exclude)

    def _matched_by(self, node: NodeView, patterns: frozenset[str]) -> str | None:
        """The first of ``patterns`` naming ``node``: its name, op type, activation, or a node of its fused body."""
        if not patterns:
            return None
        act = activation_of(node, self.view)
        keys = {node.name, node.op_type} | ({act.name} if act is not None else set())
        body = self.view.body_of(node) if is_elementwise_call(node) else None
        keys |= {key for inner in (body.nodes if body is not None else ()) for key in (inner.name, inner.op_type)}
        return next((entry for entry in sorted(patterns) if entry in keys), None)

    def _check_excludes(self) -> None:
        for flag, patterns in (("--exclude", self.options.exclude), ("--int16", self.options.int16)):
            used = {self._matched_by(node, patterns) for node in self.view.nodes}
            for entry in sorted(patterns - used):
                self.plan.hazards.append(f"{flag} {entry!r} matched no node name, op type or activation")

    def _integer_only(self, node: NodeView) -> bool:
        """Shape arithmetic: no float output, and no float input read for its values (Shape/Size read only dims)."""
        def is_float(name: str) -> bool:
            value = self.view.values.get(name) if name else None
            return value is not None and value.is_float

        if any(is_float(name) for name in node.outputs) or node.has_subgraphs:
            return False
        return node.op_type in SHAPE_READERS or not any(is_float(name) for name in node.inputs)

    def assign_roles(self) -> None:
        self._check_excludes()
        for node in self.view.nodes:
            if self._integer_only(node):
                self.plan.integer_nodes.append((node.name, node.op_type))
                continue
            reason = self._fallback_reason(node)
            if reason is None:
                self.roles[node.name] = quantizer_for(node, self.view)  # type: ignore[assignment]
                self.plan.quantized.append((node.name, node.op_type))
                if node.domain:
                    self.plan.domains[node.name] = node.domain
            else:
                forms = float_forms(reason) if activation_of(node, self.view) is not None else {}
                self.plan.fallbacks.append(Fallback(node.name, node.op_type, reason, forms))  # its reason says why

    # -- groups of values sharing one grid ------------------------------------------------------------------------
    def collect_values(self) -> None:
        for node in self.view.nodes:
            quantizer = self.roles.get(node.name)
            if quantizer is None:
                continue
            names = [node.inputs[i] for i in _data_indices(node, quantizer)] + list(node.outputs)
            self.wanted |= {n for n in names if self._is_activation_value(n) and self._mask_floor(n) is None}
        for name in self.wanted:
            self.groups.find(name)
        for node in self.view.nodes:
            quantizer = self.roles.get(node.name)
            if quantizer is None or not node.inputs:
                continue
            source = node.inputs[0]
            if quantizer.role is Role.SHARED and source in self.wanted:
                for out in node.outputs:
                    if out in self.wanted:
                        self.groups.union(source, out)
            if quantizer.role is Role.FOLD and self._can_fold(node):
                self.groups.union(source, node.outputs[0])
                self.fold_source[self.groups.find(source)] = node.outputs[0]

    def _can_fold(self, node: NodeView) -> bool:
        source, out = node.inputs[0], node.outputs[0]
        producer = self.view.producer(source)
        producer_role = self.roles.get(producer.name) if producer else None
        return (
            source in self.wanted
            and out in self.wanted
            and producer_role is not None
            and producer_role.role is Role.COMPUTE
            and len(self.view.consumers(source)) == 1
            and source not in self.view.outputs
        )

    def _readers(self, root: str) -> list[Reader]:
        """Who reads the values on ``root``'s grid from outside the group: (value, its stats, the activation that
        reads it, or None for any other op or a graph output)."""
        members = self.groups.members(root)
        readers: dict[tuple[str, str], Reader] = {}
        for member in members:
            if member in self.view.outputs:
                readers[(member, "")] = (member, self.stats[member], None)
            for consumer in self.view.consumers(member):
                if set(consumer.outputs) & set(members):
                    continue  # data movement or a folded Relu inside the group
                act = activation_of(consumer, self.view) if consumer.name in self.roles else None
                readers[(member, act.name if act is not None else "")] = (member, self.stats[member], act)
        return [readers[key] for key in sorted(readers)]

    # -- grids ------------------------------------------------------------------------------------------------------
    def _set_grid(self, root: str, chosen: ChosenRange) -> QParams:
        wide = root in self.plan.int16  # int16 grids are symmetric (TFLite's 16x8 scheme: zero point 0)
        grid = qparams_from_range(chosen.lo, chosen.hi, "int16" if wide else "int8", symmetric=wide, tensor=root)
        self.plan.ranges[root] = chosen
        self._assign(root, grid)
        return grid

    def _assign(self, root: str, grid: QParams) -> None:
        for member in self.groups.members(root):
            self.plan.grids[member] = grid
            if member != root:
                self.plan.shares_grid_with[member] = root

    def _method_range(self, name: str) -> ChosenRange:
        stats = self.stats[name]
        if stats.min == stats.max == 0.0:  # a tensor that is always 0 (a dead unit): any grid holds it
            return minmax(stats)
        if self.groups.find(name) in self.plan.int16:  # 32767 steps: clipping saves nothing worth an outlier
            chosen = minmax(stats)
            return ChosenRange(chosen.lo, chosen.hi, chosen.method, chosen.why + " (int16 grid)")
        return METHODS[self.options.method](stats)

    def mark_int16(self) -> None:
        """The groups of ``options.int16_values`` get int16 grids; an activation's input and output groups share
        their precision (a table maps int8 -> int8 or int16 -> int16)."""
        requested = list(self.options.int16_values)
        if self.cells[0] == "int16":
            requested += [(name, f"{value.cell} cell: {self.cells[1]}") for name, value in self.view.values.items()
                          if value.cell and name in self.wanted]
        for node in self.view.nodes:
            pattern = self._matched_by(node, self.options.int16) if node.name in self.roles else None
            if pattern is not None:
                names = [n for n in (*node.inputs, *node.outputs) if n in self.wanted]
                requested += [(name, f"--int16 {pattern}") for name in names]
        for value, why in requested:
            if value not in self.wanted:
                self.plan.hazards.append(f"int16 requested for {value!r}, which holds no planned grid; ignored")
                continue
            self.plan.int16.setdefault(self.groups.find(value), why)
        changed = bool(self.plan.int16)
        while changed:
            changed = False
            for node in self.view.nodes:
                if activation_of(node, self.view) is None or node.name not in self.roles:
                    continue
                ends = [self.groups.find(v) for v in (node.inputs[0], node.outputs[0]) if v in self.wanted]
                wide = [root for root in ends if root in self.plan.int16]
                for root in ends:
                    if wide and root not in self.plan.int16:
                        self.plan.int16[root] = f"{self.plan.int16[wide[0]]} (shares {node.name}'s int16 table)"
                        changed = True
        self._warn_weight_only_rewrite()

    def _warn_weight_only_rewrite(self) -> None:
        """onnxruntime's CPU provider rewrites DequantizeLinear(int8 weight) -> MatMul into MatMulNBits when no
        int8 kernel takes the pair, and by default that kernel quantizes its float input to int8 blockwise: the
        precision an int16 grid bought is lost there unless the session says otherwise."""
        rewritten = [node.name for node in self.view.nodes if node.op_type == "MatMul" and node.name in self.roles
                     and self.roles[node.name].weight is not None and node.inputs[0] in self.wanted
                     and self.groups.find(node.inputs[0]) in self.plan.int16]
        if rewritten:
            self.plan.hazards.append(
                f"{len(rewritten)} MatMul node(s) read int16 values with int8 weights (first: {rewritten[0]!r}): "
                "onnxruntime's CPU provider rewrites them into MatMulNBits, which computes with int8 activations "
                "by default; edgeact's sessions (and yours should) set session.qdq_matmulnbits_accuracy_level=1 "
                "to keep int16 precision there (other A16W8 runtimes, e.g. QNN, run the QDQ model as written)")

    def plan_activations(self) -> None:
        for node in self.view.nodes:
            act = activation_of(node, self.view)
            if act is None or node.name not in self.roles:
                continue
            source, out = node.inputs[0], node.outputs[0]
            if source not in self.wanted or out not in self.wanted:
                continue
            root = self.groups.find(source)
            if root in self.plan.ranges:
                chosen = self.plan.ranges[root]
                in_q = self.plan.grids[source]
            else:
                # the grid holds the whole group (a Split's other parts, a folded Relu's range), not only this input
                grid_values = self.fold_source.get(root, root)
                degenerate = self.stats[grid_values].min == self.stats[grid_values].max
                if root in self.plan.int16 and not degenerate:  # clipped where f saturates: no codes wasted there
                    chosen = joint_aware(self._readers(root), "int16")
                elif self.options.method == "auto" and not degenerate:
                    chosen = joint_aware(self._readers(root))
                else:
                    chosen = self._method_range(grid_values)
                in_q = self._set_grid(root, chosen)
            seen = self.stats[source]  # what this activation reads: within the grid's range, maybe narrower
            reads = (max(chosen.lo, seen.min), min(chosen.hi, seen.max))
            reads = reads if reads[0] <= reads[1] else None
            out_root = self.groups.find(out)
            if out_root in self.plan.ranges:
                out_q = self.plan.grids[out]
            else:
                out_q = covering_output_grid(act, in_q, reads, out)
                why = f"covers {act.name} over its input range"
                self.plan.ranges[out_root] = ChosenRange(*out_q.real_range, "table", why)
                self._assign(out_root, out_q)
            table = exact_table(act, in_q, out_q) if in_q.dtype == "int16" else lut_for(act, in_q, out_q)
            bounds = act.saturation_bounds(out_q.scale)
            saturation = None if bounds == (None, None) else self.stats[source].fraction_outside(*bounds)
            forms = activation_forms(self.profile, act, table)
            self.plan.activations.append(ActivationPlan(
                node.name, act, source, out, chosen, table, table_error(act, table, reads), saturation, forms))

    def plan_remaining_grids(self) -> None:
        roots = sorted({self.groups.find(n) for n in self.wanted}, key=lambda n: self.order.get(n, 0))
        for root in roots:
            if root in self.plan.ranges:
                continue
            known = self._known_output_range(root)
            if known is not None:
                self._set_grid(root, ChosenRange(*known, "known", "the op's output range is fixed"))
            elif root in self.fold_source:
                chosen = self._method_range(self.fold_source[root])
                why = chosen.why + ", of the folded Relu/Clip"
                self._set_grid(root, ChosenRange(chosen.lo, chosen.hi, chosen.method, why))
            else:
                self._set_grid(root, self._method_range(root))

    def _known_output_range(self, root: str) -> tuple[float, float] | None:
        producer = self.view.producer(root)
        if producer is None:
            return None
        quantizer = self.roles.get(producer.name)
        if quantizer is None:
            return self.fixed_ranges.get(producer.name)
        if quantizer.output_range_int16 is not None and root in self.plan.int16:
            return quantizer.output_range_int16
        return quantizer.output_range

    # -- constants ------------------------------------------------------------------------------------------------
    def plan_constants(self) -> None:
        for node in self.view.nodes:
            quantizer = self.roles.get(node.name)
            if quantizer is None:
                continue
            weight_grid = None
            data = set(_data_indices(node, quantizer))
            for index, name in enumerate(node.inputs):
                constant = self._float_constant(name)
                if constant is None:
                    continue
                if index == quantizer.weight:
                    weight_grid = self._weight_plan(node, index, name, constant, quantizer)
                elif index == quantizer.bias and weight_grid is not None:
                    self._bias_plan(node, index, name, constant, weight_grid)
                elif index == quantizer.reciprocal:
                    self._reciprocal_plan(node, index, name, constant)
                elif index in data:
                    self._operand_plan(node, index, name, constant, quantizer)
            self._implicit_constants(node, quantizer, weight_grid)

    def _float_constant(self, name: str) -> np.ndarray | None:
        value = self.view.values.get(name) if name else None
        if value is None or value.constant is None or not value.is_float or not value.constant.size:
            return None
        return value.constant.astype(np.float64)

    def _shared(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """One constant used by many nodes (an unrolled LSTM's weights) is quantized once: same grid, same codes."""
        if key not in self.quantized_constants:
            self.quantized_constants[key] = compute()
        return self.quantized_constants[key]

    def _add(self, node: NodeView, index: int, name: str, role: str, coded: codes_of.Coded,
             formats: tuple[str, ...] = OUTPUT_FORMATS, why: str = "") -> None:
        self.plan.constants.append(ConstantPlan(node.name, index, name, role, *coded, formats, why))

    def _weight_plan(self, node: NodeView, index: int, name: str, weight: np.ndarray, q: OpQuantizer):
        axis = q.axis_for(node) % weight.ndim
        coded = self._shared((name, "weight", axis),
                             lambda: codes_of.weight_codes(weight, axis, self.options.per_tensor, name))
        self._add(node, index, name, "weight", coded)
        return coded[0]

    def _bias_plan(self, node: NodeView, index: int, name: str, bias: np.ndarray, weight_grid) -> None:
        in_grid = self.plan.grids.get(node.inputs[0])
        coded = codes_of.bias_codes(bias, in_grid.scale, weight_grid) if in_grid is not None else None
        if coded is None:
            return  # the bias stays float
        coded = self._shared((name, "bias", coded[0]), lambda: coded)
        if codes_of.bias_fits_onnx(bias, weight_grid):
            self._add(node, index, name, "bias", coded)
        else:
            self._add(node, index, name, "bias", coded, ("tflite",),
                      f"a bias of shape {list(bias.shape)}: int32 in TFLite's kernel, float in ONNX")

    def _reciprocal_plan(self, node: NodeView, index: int, name: str, divisor: np.ndarray) -> None:
        coded = self._shared((name, "reciprocal"), lambda: codes_of.reciprocal_codes(divisor, name))
        if coded is not None:
            self._add(node, index, name, "reciprocal", coded, ("tflite",),
                      "TFLite multiplies by the int8 reciprocal; ONNX divides by the float constant")

    def _operand_plan(self, node: NodeView, index: int, name: str, constant: np.ndarray, q: OpQuantizer) -> None:
        shared = q.role is Role.SHARED and node.outputs[0] in self.plan.grids
        grid = self.plan.grids[node.outputs[0]] if shared else None
        if grid is None and not np.any(constant):  # all zero (an exporter's Add(x, 0) "assign"): no range of its
            grid = next((self.plan.grids[n] for n in node.inputs if n in self.plan.grids), None)  # own; a reader's
        coded = codes_of.operand_codes(constant, grid, name)
        self._add(node, index, name, "operand", self._shared((name, "operand", coded[0]), lambda: coded))

    def _implicit_constants(self, node: NodeView, q: OpQuantizer, weight_grid) -> None:
        """Constants TFLite's kernels need that the model does not hold: a zero bias, a max-pooling pad fill."""
        in_grid = self.plan.grids.get(node.inputs[0]) if node.inputs else None
        if in_grid is None:
            return
        absent = q.bias is not None and (q.bias >= len(node.inputs) or not node.inputs[q.bias])
        weight = self._float_constant(node.inputs[q.weight]) if q.weight is not None else None
        if absent and weight_grid is not None and weight is not None and weight.ndim in (2, 4):
            channels = weight.shape[q.axis_for(node) % weight.ndim]
            self._add(node, q.bias, "", "bias", codes_of.zero_bias_codes(channels, in_grid.scale, weight_grid),
                      ("tflite",), "no bias in the model: TFLite's kernel takes an all-zero one")
        pads = any(node.attributes.get("pads", ())) or node.attributes.get("ceil_mode", 0)
        if q.pad_fill and pads:
            self._add(node, -1, "", "pad_fill", codes_of.pad_fill_codes(in_grid), ("tflite",),
                      "explicit pads hold the lowest code (TFLite: PADV2)")


def make_plan(view: GraphView, stats: dict[str, TensorStats], options: PlanOptions | None = None) -> QuantPlan:
    """Decide every grid, table, quantized constant (with its codes) and fallback of ``view`` from calibration
    ``stats``, and each activation's form in every output format for ``options.target``."""
    planner = _Planner(view, stats, options or PlanOptions())
    planner.assign_roles()
    planner.collect_values()
    planner.mark_int16()
    planner.plan_activations()
    planner.plan_remaining_grids()
    planner.plan_constants()
    planner.plan.islands = op_islands(planner.profile, planner.plan)
    return planner.plan
