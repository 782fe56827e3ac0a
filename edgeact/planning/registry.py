"""Per-op quantizers as a table: which inputs are int8 activations, which are weights/bias, how the output grid
is chosen. Adding an op = one entry here (and one case in tests/cases/op_quantizers.toml)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from edgeact.activations import REGISTRY, Activation, activation, function_activation
from edgeact.elementwise import ELEMENTWISE_OP, ElementwiseFunction, is_elementwise_call
from edgeact.graph.view import EDGEACT_DOMAIN, GraphView, NodeView


class Role(str, Enum):
    COMPUTE = "compute"  # output grid from its own calibrated range
    SHARED = "shared"  # output reuses the grid of input 0 (data movement, max pooling)
    ACTIVATION = "activation"  # an exact int8 table with its own input and output grids
    FOLD = "fold"  # Relu / Clip: its output range becomes the producer's grid


@dataclass(frozen=True)
class OpQuantizer:
    role: Role
    data_inputs: tuple[int, ...] | None = (0,)  # None: every input
    weight: int | None = None  # per-channel int8 symmetric
    weight_axis: Callable[[NodeView], int] | int = 0
    bias: int | None = None  # int32 at s_in * s_w; when absent, an all-zero one (TFLite's kernels take a bias)
    output_range: tuple[float, float] | None = None  # a range known without calibration
    reciprocal: int | None = None  # a constant divisor, planned as int8 codes of its reciprocal (TFLite: MUL)
    pad_fill: bool = False  # explicit pads hold the lowest int8 code (TFLite: PADV2 before MAX_POOL_2D)

    def axis_for(self, node: NodeView) -> int:
        return self.weight_axis(node) if callable(self.weight_axis) else self.weight_axis


def _gemm_axis(node: NodeView) -> int:
    return 0 if node.attributes.get("transB", 0) else 1


_SHARED = OpQuantizer(Role.SHARED)
_COMPUTE = OpQuantizer(Role.COMPUTE)
_BINARY = OpQuantizer(Role.COMPUTE, data_inputs=(0, 1))
# Softmax's int8 grid is the one TFLite requires, (1/256, -128): one calibration gives the same scales in ONNX and
# TFLite; an output of exactly 1.0 saturates to 255/256.
_SOFTMAX = OpQuantizer(Role.COMPUTE, output_range=(0.0, 255.0 / 256.0))
_ACTIVATION = OpQuantizer(Role.ACTIVATION)

OP_QUANTIZERS: dict[tuple[str, str], OpQuantizer] = {
    ("", "Conv"): OpQuantizer(Role.COMPUTE, weight=1, weight_axis=0, bias=2),
    ("", "Gemm"): OpQuantizer(Role.COMPUTE, weight=1, weight_axis=_gemm_axis, bias=2),
    # MatMul has no bias input: with a constant 2-D weight, TFLite's FULLY_CONNECTED gets the planned zero one
    ("", "MatMul"): OpQuantizer(Role.COMPUTE, data_inputs=(0, 1), weight=1, weight_axis=-1, bias=2),
    (EDGEACT_DOMAIN, "Linear"): OpQuantizer(Role.COMPUTE, weight=1, weight_axis=1, bias=2),
    ("", "Add"): _BINARY,
    ("", "Sub"): _BINARY,
    ("", "Div"): OpQuantizer(Role.COMPUTE, reciprocal=1),  # divisor: float in ONNX, an int8 reciprocal in TFLite
    ("", "Mul"): _BINARY,
    ("", "Concat"): OpQuantizer(Role.COMPUTE, data_inputs=None),
    **{("", op): _SHARED for op in ("Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Slice", "Split",
                                   "Gather", "AveragePool", "Expand", "Identity", "DepthToSpace",
                                   "SpaceToDepth", "Resize")},  # (TFLite's int8 AVERAGE_POOL_2D needs equal grids too)
    ("", "MaxPool"): OpQuantizer(Role.SHARED, pad_fill=True),
    **{("", op): _COMPUTE for op in ("GlobalAveragePool", "ReduceMean", "LayerNormalization")},
    (EDGEACT_DOMAIN, "LayerNorm"): _COMPUTE,
    ("", "Softmax"): _SOFTMAX,
    (EDGEACT_DOMAIN, "Softmax"): _SOFTMAX,
    ("", "PRelu"): _BINARY,  # the constant slope is an int8 operand on its own grid
    ("", "Relu"): OpQuantizer(Role.FOLD),
    ("", "Clip"): OpQuantizer(Role.FOLD),
}

# Standard ONNX activations -> registry entry (with the node's attributes as parameters).
STANDARD_ACTIVATIONS: dict[str, Callable[[NodeView], Activation]] = {
    "Tanh": lambda n: activation("tanh"),
    "Sigmoid": lambda n: activation("sigmoid"),
    "HardSwish": lambda n: activation("hardswish"),
    "HardSigmoid": lambda n: activation(
        "hardsigmoid", alpha=float(n.attributes.get("alpha", 0.2)), beta=float(n.attributes.get("beta", 0.5))
    ),
    "Gelu": lambda n: activation("gelu_tanh" if n.attributes.get("approximate", "none") == "tanh" else "gelu"),
    "Elu": lambda n: activation("elu", alpha=float(n.attributes.get("alpha", 1.0))),
    "Softplus": lambda n: activation("softplus"),
    "Mish": lambda n: activation("mish"),
    "LeakyRelu": lambda n: activation("leaky_relu", alpha=float(n.attributes.get("alpha", 0.01))),
}


def activation_of(node: NodeView, view: GraphView | None = None) -> Activation | None:
    """The activation a node computes: a registry entry (standard op or fused ``ai.edgeact`` node), or the function
    of one variable a fused elementwise chain computes (its body, found in ``view``), else None."""
    if is_elementwise_call(node):
        body = view.body_of(node) if view is not None else None
        return chain_activation(body) if body is not None else None
    if node.domain == EDGEACT_DOMAIN:
        return activation(node.op_type) if node.op_type in REGISTRY else None
    if node.domain == "" and node.op_type in STANDARD_ACTIVATIONS:
        return STANDARD_ACTIVATIONS[node.op_type](node)
    return None


def chain_activation(body: GraphView) -> Activation:
    """The activation of a fused elementwise chain (built once per body)."""
    cached = body.__dict__.get("_chain_activation")
    if cached is None:
        function = ElementwiseFunction(body)
        cached = function_activation(ELEMENTWISE_OP, function, function.expression())
        object.__setattr__(body, "_chain_activation", cached)
    return cached


def quantizer_for(node: NodeView, view: GraphView | None = None) -> OpQuantizer | None:
    """The node's quantizer, or None when it has none (the node stays float)."""
    if activation_of(node, view) is not None:
        return _ACTIVATION
    return OP_QUANTIZERS.get((node.domain, node.op_type))
