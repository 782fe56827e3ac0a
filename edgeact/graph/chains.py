"""Find single-input chains of elementwise ops and fuse each into one ``ai.edgeact`` elementwise node.

A chain is a set of main-graph nodes from :data:`edgeact.elementwise.ELEMENTWISE_OPS` whose constant operands hold
one element each, that reads exactly one non-constant value ``x`` from outside and hands exactly one value ``y``
to the rest of the graph, with ``y`` shaped like ``x``. Then ``y = f(x)`` for a function of one variable, which an
int8 input makes an exact 256-entry table, whatever spelling the exporter chose. The fused node calls a
model-local function holding the original nodes, so the model computes bit for bit what it did.

A chain qualifies when it holds two or more nodes, at least one of them not affine (a run of scalar Add/Mul stays
ordinary int8 ops), or one node of an op with no int8 quantizer of its own (Exp, Erf, Pow, ...). A Relu/Clip that
reads ``x`` directly is left outside, so it keeps folding into its producer's grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx_ir as ir

from edgeact.elementwise import ELEMENTWISE_OP, ELEMENTWISE_OPS, is_linear_node
from edgeact.graph.view import EDGEACT_DOMAIN

MAX_CHAIN_NODES = 48
FOLDABLE_HEADS = frozenset({"Relu", "Clip"})


def _is_float(value: ir.Value | None) -> bool:
    return value is not None and value.dtype is not None and value.dtype.is_floating_point()


def _member(node: ir.Node) -> bool:
    """Can ``node`` be part of a chain: an elementwise float op whose constant operands hold one element."""
    if node.domain != "" or node.op_type not in ELEMENTWISE_OPS or len(node.outputs) != 1:
        return False
    if not _is_float(node.outputs[0]):
        return False
    for value in node.inputs:
        if value is None:
            continue
        if value.const_value is not None and value.const_value.size != 1:
            return False
        if value.const_value is None and not _is_float(value):
            return False
    return True


def _external_inputs(nodes: set[ir.Node]) -> set[ir.Value]:
    produced = {node.outputs[0] for node in nodes}
    return {v for node in nodes for v in node.inputs if v is not None and v.const_value is None and v not in produced}


def _absorbable(value: ir.Value, chain: set[ir.Node]) -> ir.Node | None:
    """The producer of ``value`` when it can join ``chain``: a member op whose output only the chain reads."""
    producer = value.producer()
    if producer is None or producer in chain or not _member(producer) or value.is_graph_output():
        return None
    if any(use.node not in chain for use in value.uses()):
        return None
    return producer


def _grow(root: ir.Node) -> set[ir.Node] | None:
    """The largest chain ending at ``root`` with one external input (grown upstream), or None."""
    chain, best = {root}, None
    while len(chain) <= MAX_CHAIN_NODES:
        inputs = _external_inputs(chain)
        if len(inputs) == 1:
            best = set(chain)
        candidates = sorted(filter(None, (_absorbable(v, chain) for v in inputs)), key=lambda n: n.name or "")
        if not candidates:
            break
        chain.add(candidates[0])
    return best


def _foldable(node: ir.Node) -> bool:
    """A Relu, or a Clip whose lower bound a grid holds exactly (<= 0): folding it into its producer's grid keeps
    what it computes. Clip(x, 1e-10) before a Log stays in the chain: a grid always holds 0, log(0) does not."""
    if node.op_type not in FOLDABLE_HEADS:
        return False
    low = node.inputs[1] if node.op_type == "Clip" and len(node.inputs) > 1 else None
    return low is None or (low.const_value is not None and float(low.const_value.numpy().reshape(-1)[0]) <= 0.0)


def _drop_foldable_head(chain: set[ir.Node]) -> set[ir.Node]:
    """Leave a Relu/Clip that alone reads the chain's input outside (it folds into its producer instead)."""
    while len(chain) > 1:
        (source,) = _external_inputs(chain)
        readers = [node for node in chain if source in node.inputs]
        if len(readers) != 1 or not _foldable(readers[0]):
            break
        chain = chain - {readers[0]}
    return chain


def _affine_values(chain: set[ir.Node], order: dict[ir.Node, int]) -> set[ir.Value]:
    """The chain's values that are affine functions of its input (x + 0.5x is; x * x and sigmoid(x) are not)."""
    (source,) = _external_inputs(chain)
    affine = {source}
    for node in sorted(chain, key=order.__getitem__):
        data = [v for v in node.inputs if v is not None and v.const_value is None]
        constant = [v is not None and v.const_value is not None for v in node.inputs]
        if node.op_type in ("Add", "Sub") and all(v in affine for v in data):
            affine.add(node.outputs[0])
        elif is_linear_node(node.op_type, constant) and data[0] in affine:
            affine.add(node.outputs[0])
    return affine


def _qualifies(chain: set[ir.Node], order: dict[ir.Node, int]) -> bool:
    """Two or more nodes computing something not affine, or one node of a standalone (quantizer-less) op."""
    affine = _affine_values(chain, order)
    if len(chain) == 1:
        (node,) = chain
        return ELEMENTWISE_OPS[node.op_type].standalone and node.outputs[0] not in affine
    return any(node.outputs[0] not in affine for node in chain)


@dataclass(frozen=True)
class Chain:
    nodes: list[ir.Node]  # in graph order
    source: ir.Value
    result: ir.Value


def _same_shape(a: ir.Value, b: ir.Value) -> bool:
    return a.shape is not None and b.shape is not None and list(a.shape) == list(b.shape)


def find_chains(graph: ir.Graph) -> list[Chain]:
    """Every qualifying chain of ``graph``, grown from the most downstream node first; chains do not overlap."""
    order = {node: index for index, node in enumerate(graph)}
    taken: set[ir.Node] = set()
    found = []
    for root in reversed(list(graph)):
        if root in taken or not _member(root):
            continue
        chain = _grow(root)
        if chain is None or chain & taken:
            continue
        chain = _drop_foldable_head(chain)
        (source,) = _external_inputs(chain)
        if not _qualifies(chain, order) or not _same_shape(source, root.outputs[0]):
            continue
        taken |= chain
        found.append(Chain(sorted(chain, key=order.__getitem__), source, root.outputs[0]))
    return found[::-1]


def _function_body(chain: Chain) -> tuple[ir.Value, list[ir.Node], ir.Value]:
    """Copies of the chain's nodes over a fresh formal input; constants become Constant nodes."""
    formal = ir.Value(name="x", shape=chain.source.shape, type=chain.source.type)
    mapping: dict[ir.Value, ir.Value] = {chain.source: formal}
    nodes: list[ir.Node] = []

    def copied(value: ir.Value | None) -> ir.Value | None:
        if value is None:
            return None
        if value not in mapping:
            constant = ir.Node("", "Constant", [], [ir.AttrTensor("value", value.const_value)])
            constant.outputs[0].name = f"c{len(nodes)}"
            nodes.append(constant)
            mapping[value] = constant.outputs[0]
        return mapping[value]

    for node in chain.nodes:
        inputs = [copied(v) for v in node.inputs]
        clone = ir.Node("", node.op_type, inputs, list(node.attributes.values()), name=node.name)
        clone.outputs[0].name = node.outputs[0].name
        clone.outputs[0].type, clone.outputs[0].shape = node.outputs[0].type, node.outputs[0].shape
        mapping[node.outputs[0]] = clone.outputs[0]
        nodes.append(clone)
    return formal, nodes, mapping[chain.result]


def fuse_chain(model: ir.Model, chain: Chain, overload: str) -> ir.Node:
    """Replace ``chain`` by one call of a new model-local function ``ai.edgeact::elementwise`` (``overload``)."""
    (source,) = _external_inputs(set(chain.nodes))  # an upstream chain fused first replaced the value object
    chain = Chain(chain.nodes, source, chain.result)
    formal, body, result = _function_body(chain)
    opsets = {"": model.graph.opset_imports.get("", 13)}
    function = ir.Function(EDGEACT_DOMAIN, ELEMENTWISE_OP, overload,
                           graph=ir.Graph([formal], [result], nodes=body, opset_imports=opsets), attributes=())
    model.functions[function.identifier()] = function
    call = ir.Node(EDGEACT_DOMAIN, ELEMENTWISE_OP, [chain.source], overload=overload,
                   name=f"{ELEMENTWISE_OP}_{chain.result.name}")
    output = call.outputs[0]
    output.type, output.shape = chain.result.type, chain.result.shape
    ir.convenience.replace_nodes_and_values(model.graph, chain.nodes[-1], chain.nodes, [call], [chain.result],
                                            [output])
    return call
