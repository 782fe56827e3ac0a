"""Per-op quantizers as a table: which inputs are int8 activations, which are weights/bias, how the output grid
is chosen. Each op's quantizer is declared by its spec in :mod:`edgeact.ops`, each activation by its entry in
:data:`edgeact.activations.REGISTRY`; this module reads both (docs/contributing.md)."""

from __future__ import annotations

from edgeact.activations import REGISTRY, Activation, activation, function_activation, standard_activation
from edgeact.elementwise import ELEMENTWISE_OP, ElementwiseFunction, is_elementwise_call
from edgeact.graph.view import EDGEACT_DOMAIN, GraphView, NodeView
from edgeact.ops.activations import chain_float_builtins
from edgeact.ops.spec import OpQuantizer, Role
from edgeact.ops.table import SPECS

_ACTIVATION = OpQuantizer(Role.ACTIVATION)
# every op's quantizer, from its spec (edgeact.ops)
OP_QUANTIZERS: dict[tuple[str, str], OpQuantizer] = {
    key: spec.quantizer for key, spec in SPECS.items() if spec.quantizer is not None
}

# The standard ONNX ops that compute a registry activation (each entry's ``onnx`` field).
STANDARD_ACTIVATIONS: frozenset[str] = frozenset(a.onnx.op_type for a in REGISTRY.values() if a.onnx is not None)


def activation_of(node: NodeView, view: GraphView | None = None) -> Activation | None:
    """The activation a node computes: a registry entry (standard op or fused ``ai.edgeact`` node), or the function
    of one variable a fused elementwise chain computes (its body, found in ``view``), else None."""
    if is_elementwise_call(node):
        body = view.body_of(node) if view is not None else None
        return chain_activation(body) if body is not None else None
    if node.domain == EDGEACT_DOMAIN:
        return activation(node.op_type) if node.op_type in REGISTRY else None
    if node.domain == "" and node.op_type in STANDARD_ACTIVATIONS:
        return standard_activation(node.op_type, node.attributes)
    return None


def chain_activation(body: GraphView) -> Activation:
    """The activation of a fused elementwise chain (built once per body)."""
    cached = body.__dict__.get("_chain_activation")
    if cached is None:
        function = ElementwiseFunction(body)
        cached = function_activation(ELEMENTWISE_OP, function, function.expression(), chain_float_builtins(body))
        object.__setattr__(body, "_chain_activation", cached)
    return cached


def quantizer_for(node: NodeView, view: GraphView | None = None) -> OpQuantizer | None:
    """The node's quantizer, or None when it has none (the node stays float)."""
    if activation_of(node, view) is not None:
        return _ACTIVATION
    return OP_QUANTIZERS.get((node.domain, node.op_type))
