"""A plain, read-only view of the main graph that the planner and the calibration engine work on.

It holds names, op types, attributes as Python values, dtypes and constant arrays — nothing from onnx —
so the quantization logic never touches an IR object.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx_ir as ir

from edgeact.domain import EDGEACT_DOMAIN  # noqa: F401 - re-exported: the graph layer names it here
from edgeact.graph.recurrent import CELL_KEY

SUBGRAPH_OPS = frozenset({"If", "Loop", "Scan"})


@dataclass(frozen=True)
class ValueView:
    name: str
    dtype: str | None  # numpy dtype name ("float32", "int64", ...) or None when unknown
    shape: tuple[int | str | None, ...] | None
    constant: np.ndarray | None = None  # initializer / Constant value
    cell: str = ""  # the recurrent cell (LSTM, GRU) whose gates or state this value holds (unroll-recurrent says so)

    @property
    def is_float(self) -> bool:
        return self.dtype in ("float32", "float16", "float64")


@dataclass(frozen=True)
class NodeView:
    name: str
    op_type: str
    domain: str
    inputs: tuple[str, ...]  # "" for an omitted optional input
    outputs: tuple[str, ...]
    attributes: dict[str, object] = field(default_factory=dict)
    overload: str = ""

    @property
    def has_subgraphs(self) -> bool:
        return self.op_type in SUBGRAPH_OPS


@dataclass(frozen=True)
class GraphView:
    nodes: tuple[NodeView, ...]
    values: dict[str, ValueView]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    opset: int
    functions: dict[tuple[str, str, str], GraphView] = field(default_factory=dict)  # fused bodies by identifier

    def body_of(self, node: NodeView) -> GraphView | None:
        """The model-local function a fused node calls (its original nodes), or None."""
        return self.functions.get((node.domain, node.op_type, node.overload))

    def consumers(self, value: str) -> list[NodeView]:
        return self._links()[0].get(value, [])

    def producer(self, value: str) -> NodeView | None:
        return self._links()[1].get(value)

    def _links(self) -> tuple[dict[str, list[NodeView]], dict[str, NodeView]]:
        """value -> consuming nodes and value -> producing node, built once per view."""
        cached = self.__dict__.get("_cached_links")
        if cached is None:
            consumers: dict[str, list[NodeView]] = {}
            producers: dict[str, NodeView] = {}
            for node in self.nodes:
                for name in dict.fromkeys(node.inputs):
                    consumers.setdefault(name, []).append(node)
                for name in node.outputs:
                    producers[name] = node
            cached = (consumers, producers)
            object.__setattr__(self, "_cached_links", cached)
        return cached


def _dtype_name(value: ir.Value) -> str | None:
    if value.dtype is None:
        return None
    try:
        return np.dtype(value.dtype.numpy()).name
    except (TypeError, ValueError):
        return str(value.dtype).lower()


def _shape(value: ir.Value) -> tuple[int | str | None, ...] | None:
    if value.shape is None:
        return None
    return tuple(dim if isinstance(dim, int) else (dim.value if dim.value is not None else None) for dim in value.shape)


def _value_view(value: ir.Value) -> ValueView:
    constant = value.const_value.numpy() if value.const_value is not None else None
    cell = value.meta.get(CELL_KEY, "")
    return ValueView(value.name or "", _dtype_name(value), _shape(value), constant, cell)


def _attribute(attr: ir.Attr) -> object:
    if attr.type in (ir.AttributeType.GRAPH, ir.AttributeType.GRAPHS):
        return "<subgraph>"
    if attr.type == ir.AttributeType.TENSOR:
        return attr.value.numpy()
    return attr.value


def _constant_node_value(node: ir.Node) -> np.ndarray | None:
    """The value of a Constant node (tensor or scalar/list attribute forms)."""
    for name, attr in node.attributes.items():
        if name == "value":
            return attr.value.numpy()
        if name in ("value_float", "value_floats"):
            return np.asarray(attr.value, dtype=np.float32)
        if name in ("value_int", "value_ints"):
            return np.asarray(attr.value, dtype=np.int64)
    return None


def _view(nodes, inputs, outputs, initializers, opset: int, functions) -> GraphView:  # type: ignore[no-untyped-def]
    values: dict[str, ValueView] = {}
    for value in list(inputs) + list(initializers):
        values[value.name] = _value_view(value)
    node_views = []
    for node in nodes:
        if node.op_type == "Constant" and node.domain == "" and _constant_node_value(node) is not None:
            value = node.outputs[0]
            values[value.name] = ValueView(value.name, _dtype_name(value), _shape(value), _constant_node_value(node))
            continue
        for value in list(node.inputs) + list(node.outputs):
            if value is not None and value.name not in values:
                values[value.name] = _value_view(value)
        node_views.append(
            NodeView(
                name=node.name or "",
                op_type=node.op_type,
                domain=node.domain,
                inputs=tuple(v.name if v is not None else "" for v in node.inputs),
                outputs=tuple(v.name for v in node.outputs),
                attributes={name: _attribute(attr) for name, attr in node.attributes.items()},
                overload=node.overload or "",
            )
        )
    initializer_names = {v.name for v in initializers}
    return GraphView(
        nodes=tuple(node_views),
        values=values,
        inputs=tuple(v.name for v in inputs if v.name not in initializer_names),
        outputs=tuple(v.name for v in outputs),
        opset=opset,
        functions=functions,
    )


def view_of(model: ir.Model) -> GraphView:
    """The planner's view of ``model``'s main graph (names must be unique: run the passes first).

    Fused nodes' function bodies are in ``functions`` (a view each), for lowerings that need the original nodes.
    """
    opset = model.opset_imports.get("", 0)
    functions = {
        (f.domain, f.name, f.overload or ""): _view(list(f), f.inputs, f.outputs, [], opset, {})
        for f in model.functions.values()
    }
    graph = model.graph
    return _view(list(graph), graph.inputs, graph.outputs, list(graph.initializers.values()), opset, functions)
