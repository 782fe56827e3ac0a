"""Lower edgeact's canonical graph and quantization plan to a TFLite graph (int8, or float32 with no plan).

The plan holds every number the int8 graph carries (grids, constant codes, each activation's form on the target);
the lowering translates them into TFLite's layouts and ops and computes none.

Every ONNX value can exist in the TFLite graph as int8 (its planned grid) and/or float32, in ONNX axis order
("nchw") or, for rank-4 values, channels-last ("nhwc"). Lowerings ask for the form they need and the context
inserts QUANTIZE / DEQUANTIZE / TRANSPOSE once per value and form, so NCHW becomes NHWC once where convolutions
start and back once where the graph leaves them — not around every op.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgeact.activations import Activation
from edgeact.errors import EdgeactError
from edgeact.graph.view import GraphView, NodeView, ValueView
from edgeact.hardware.profiles import DeviceProfile
from edgeact.numerics import QParams
from edgeact.ops.layout import FLOAT, INT8, INT16, QUANTIZED, TO_NCHW, TO_NHWC, WIDENING
from edgeact.planning.plan import ActivationPlan, ConstantPlan, QuantPlan
from edgeact.planning.registry import activation_of
from edgeact.tflite.graph import LoweredGraph


class UnsupportedOpError(EdgeactError):
    """An op (or an attribute of it) that the TFLite target cannot run (``node``: the ONNX node, when known;
    ``reason``: why, without the node and target)."""

    def __init__(self, message: str, node: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.node, self.reason = node, reason


def to_layout(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    return tuple(shape[i] for i in TO_NHWC) if layout == "nhwc" else tuple(shape)


@dataclass
class Lowering:
    view: GraphView
    plan: QuantPlan | None
    shapes: dict[str, tuple[int, ...]]
    target: DeviceProfile
    graph: LoweredGraph = field(default_factory=LoweredGraph)
    forms: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (value, dtype, layout) -> tensor
    aliases: dict[str, str] = field(default_factory=dict)
    folded: dict[str, str] = field(default_factory=dict)  # value -> the Relu/Clip output its integer forms hold
    table_ops: list[str] = field(default_factory=list)  # activation nodes lowered as GATHER tables
    builtin_ops: list[str] = field(default_factory=list)  # activation nodes lowered as exact builtins
    island_ops: list[str] = field(default_factory=list)  # activation nodes lowered as float islands
    io_float: list[tuple[str, str, str]] = field(default_factory=list)  # (role, name, why): float despite int8 I/O

    # ---- values ---------------------------------------------------------------------------------------------
    def resolve(self, name: str) -> str:
        while name in self.aliases:
            name = self.aliases[name]
        return name

    def value(self, name: str) -> ValueView:
        return self.view.values[self.resolve(name)]

    def constant(self, name: str) -> np.ndarray | None:
        value = self.view.values.get(self.resolve(name))
        return value.constant if value is not None else None

    def grid(self, name: str) -> QParams | None:
        return self.plan.grids.get(self.resolve(name)) if self.plan is not None else None

    def grid_as(self, name: str, dtype: str) -> QParams | None:
        """The grid of ``name``'s ``dtype`` form: its planned grid, or, for the int16 form of an int8 value (a 16x8
        op reads or writes it), the int8 grid widened without loss: scale s / 128, zero point 0."""
        grid = self.grid(name)
        if grid is None or grid.dtype == dtype:
            return grid
        if dtype == INT16 and grid.dtype == INT8:
            return QParams(grid.scale / WIDENING, 0, INT16)
        return None

    def node_dtype(self, node: NodeView) -> str:
        """The dtype a quantized node runs in: int16 (16x8) when the plan gives any value it reads or writes an
        int16 grid, else int8."""
        names = [name for name in (*node.inputs, *node.outputs) if name]
        return INT16 if any((g := self.grid(name)) is not None and g.dtype == INT16 for name in names) else INT8

    def shape(self, name: str) -> tuple[int, ...]:
        name = self.resolve(name)
        if name in self.shapes:
            return self.shapes[name]
        constant = self.constant(name)
        if constant is not None:
            return tuple(constant.shape)
        raise EdgeactError(f"no static shape known for tensor {name!r}")

    def rank(self, name: str) -> int:
        return len(self.shape(name))

    def constant_plan(self, node: NodeView, index: int, role: str | None = None) -> ConstantPlan | None:
        """The planned codes of ``node``'s constant at ``index`` (of ``role``, when given) stored in .tflite."""
        if self.plan is None:
            return None
        return next((c for c in self.plan.constants if c.node == node.name and c.input_index == index
                     and (role is None or c.role == role) and "tflite" in c.formats), None)

    def activation(self, node: NodeView) -> Activation:
        """The activation an activation node computes (its registry entry, or a fused chain's function)."""
        act = activation_of(node, self.view)
        if act is None:
            raise self.unsupported(node, "not an activation")
        return act

    def activation_plan(self, node: NodeView) -> ActivationPlan:
        """The plan of an int8 activation node: its grids, its table and its form on the target."""
        plan = next((a for a in self.plan.activations if a.node == node.name), None) if self.plan else None
        if plan is None:
            raise self.unsupported(node, "int8 activation with no planned table")
        return plan

    def has(self, name: str, dtype: str, layout: str = "nchw") -> bool:
        return (self.resolve(name), dtype, layout) in self.forms

    def layouts(self, name: str) -> set[str]:
        name = self.resolve(name)
        return {layout for (n, _, layout) in self.forms if n == name}

    # ---- forms: int8/float32, nchw/nhwc -----------------------------------------------------------------------
    def put(self, name: str, index: int, dtype: str, layout: str = "nchw") -> int:
        self.forms[(self.resolve(name), dtype, layout)] = index
        return index

    def output(self, node: NodeView, name: str, dtype: str, layout: str = "nchw", shape: tuple | None = None) -> int:
        """A new tensor for ONNX value ``name`` (int8 or int16 on its grid, :meth:`grid_as`, or float32), registered
        as that form."""
        shape = shape if shape is not None else to_layout(self.shape(name), layout)
        quant = self.grid_as(name, dtype) if dtype in QUANTIZED else None
        if dtype in QUANTIZED and quant is None:
            raise EdgeactError(f"node {node.name!r}: value {name!r} has no {dtype} grid")
        suffix = f"/{dtype}" if dtype in QUANTIZED else ""
        if layout == "nhwc":  # "/int8_nhwc", "/int16_nhwc", "/nhwc"
            suffix += "_nhwc" if suffix else "/nhwc"
        source = self.resolve(name)
        carried = self.folded.get(source, source) if dtype in QUANTIZED else source
        tensor = self.graph.tensor(source + suffix, shape, dtype, quant, source=carried, layout=layout)
        return self.put(name, tensor, dtype, layout)

    def fold(self, value: str, clamped: str) -> None:
        """``clamped`` (a Relu/Clip output) is ``value``'s integer forms: their grid clamps as it does, so they
        carry ``clamped`` (what the profiler compares them with), and ``clamped`` resolves to ``value``."""
        value = self.resolve(value)
        self.aliases[clamped] = value
        self.folded[value] = clamped
        for (name, dtype, _), index in self.forms.items():
            if name == value and dtype in QUANTIZED:
                self.graph.tensors[index].source = clamped

    def get(self, name: str, dtype: str, layout: str = "nchw", node: str = "") -> int:
        """Tensor index of ``name`` as ``dtype`` in ``layout``, converting once from a form that exists."""
        name = self.resolve(name)
        key = (name, dtype, layout)
        if key in self.forms:
            return self.forms[key]
        constant = self.constant(name)
        if constant is not None and dtype == FLOAT:
            data = constant.astype(np.float32)
            data = np.transpose(data, TO_NHWC) if layout == "nhwc" else data
            label = name + ("/nhwc" if layout == "nhwc" else "")
            return self.put(name, self.graph.constant(label, data), dtype, layout)
        other_layout = "nhwc" if layout == "nchw" else "nchw"
        if (name, dtype, other_layout) in self.forms:
            return self._transpose(name, dtype, layout, node)
        planned = self.grid(name)
        if dtype == INT16 and planned is not None and planned.dtype == INT8:  # its planned int8 codes, widened
            self.get(name, INT8, layout, node)
            self._convert(name, INT8, INT16, layout, node)
            return self.forms[key]
        for other_dtype in self._sources_for(dtype):  # another integer width first: a requantization, not a round trip
            for source_layout in (layout, other_layout):
                if (name, other_dtype, source_layout) in self.forms:
                    self._convert(name, other_dtype, dtype, source_layout, node)
                    return self.get(name, dtype, layout, node)
        raise EdgeactError(f"value {name!r} is used before it is computed (node {node!r})")

    @staticmethod
    def _sources_for(dtype: str) -> tuple[str, ...]:
        if dtype == FLOAT:
            return INT8, INT16
        return (INT16 if dtype == INT8 else INT8), FLOAT

    def _transpose(self, name: str, dtype: str, layout: str, node: str) -> int:
        source_layout = "nhwc" if layout == "nchw" else "nchw"
        source = self.forms[(name, dtype, source_layout)]
        perm = np.asarray(TO_NHWC if layout == "nhwc" else TO_NCHW, dtype=np.int32)
        target = self.output(NodeView(node, "", "", (), ()), name, dtype, layout)
        self.graph.op("TRANSPOSE", [source, self.graph.constant(f"{name}/perm_{layout}", perm)], [target], node)
        return target

    def settle(self, node: NodeView) -> None:
        """A value the plan keeps int8 that a 16x8 op wrote in int16 (on the widened grid) is requantized onto its
        int8 grid at once, and its readers read that: every value carries the codes the plan gives it."""
        for name in node.outputs:
            grid = self.grid(name) if name else None
            if grid is None or grid.dtype != INT8:
                continue
            for layout in ("nchw", "nhwc"):
                key = (self.resolve(name), INT16, layout)
                if key in self.forms and not self.has(name, INT8, layout):
                    self._convert(self.resolve(name), INT16, INT8, layout, node.name)
                    wide = self.graph.tensors[self.forms.pop(key)]  # int16 readers widen the int8 codes (exact)
                    wide.name, wide.source = f"{wide.name}_unrounded", None  # not the value the plan gives

    def round_onto_grid(self, name: str, dtype: str, node: str) -> None:
        """A planned value computed in float32 (a float island) is quantized onto its grid at once, and every reader
        reads those codes (a float reader dequantizes them): every value carries the codes the plan gives it."""
        name = self.resolve(name)
        for layout in sorted(layout for (n, d, layout) in self.forms if n == name and d == FLOAT):
            self._convert(name, FLOAT, dtype, layout, node)
            unrounded = self.graph.tensors[self.forms.pop((name, FLOAT, layout))]
            unrounded.name, unrounded.source = f"{unrounded.name}_unrounded", None  # not the value the plan gives

    def plan_islands(self) -> dict[str, str]:
        """Quantized nodes the plan runs as float islands in the .tflite (node -> why)."""
        return self.plan.islands if self.plan is not None else {}

    def _convert(self, name: str, source_dtype: str, dtype: str, layout: str, node: str) -> None:
        source = self.forms[(name, source_dtype, layout)]
        target = self.output(NodeView(node, "", "", (), ()), name, dtype, layout,
                             shape=self.graph.tensors[source].shape)
        self.graph.op("DEQUANTIZE" if dtype == FLOAT else "QUANTIZE", [source], [target], node)

    def raw(self, name: str) -> int:
        """Any registered form of ``name`` (integer graph inputs such as token ids)."""
        name = self.resolve(name)
        for (value, _, _), index in self.forms.items():
            if value == name:
                return index
        raise EdgeactError(f"value {name!r} is used before it is computed")

    # ---- helpers for lowerings --------------------------------------------------------------------------------
    def int32_constant(self, name: str, values) -> int:  # type: ignore[no-untyped-def]
        return self.graph.constant(name, np.asarray(values, dtype=np.int32))

    def runs(self, op: str) -> bool:
        """Does the target device run this TFLite builtin?"""
        return "*" in self.target.ops or op in self.target.ops

    def unsupported(self, node: NodeView, why: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"node {node.name!r} ({node.op_type}): {why} on target {self.target.name}",
                                  node.name, why)
