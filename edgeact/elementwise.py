"""Elementwise ONNX ops as data: which ops a fused chain may hold, and their float64 semantics.

Any single-input subgraph of these ops is a function of one variable, so with an int8 input it is exactly a
256-entry table. :data:`ELEMENTWISE_OPS` says, per op, how to evaluate it in float64 (constants taken at the
float32 values the model stores), whether it is linear (a chain of only linear ops stays as ordinary int8 ops)
and whether it is ``standalone``: a single such node with no quantizer of its own becomes a table on its own.
:class:`ElementwiseFunction` evaluates a fused chain's body; it holds no onnx object (a :class:`GraphView`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import special

from edgeact.domain import EDGEACT_DOMAIN
from edgeact.errors import ModelFormatError

if TYPE_CHECKING:  # the graph package imports this module: no import back at run time
    from edgeact.graph.view import GraphView, NodeView

Array = np.ndarray
Kernel = Callable[[list[Array], dict], Array]
ELEMENTWISE_OP = "elementwise"  # the ai.edgeact op a fused chain becomes


def _attr(attrs: dict, name: str, default: float) -> float:
    return float(attrs.get(name, default))


def _clip(inputs: list[Array], attrs: dict) -> Array:
    x = inputs[0]
    low = inputs[1] if len(inputs) > 1 and inputs[1] is not None else attrs.get("min", -np.inf)
    high = inputs[2] if len(inputs) > 2 and inputs[2] is not None else attrs.get("max", np.inf)
    return np.minimum(np.maximum(x, low), high)


def _gelu(inputs: list[Array], attrs: dict) -> Array:
    x = inputs[0]
    if attrs.get("approximate", "none") == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * special.erfc(-x / math.sqrt(2.0))


def _pow(inputs: list[Array], attrs: dict) -> Array:
    base, exponent = inputs
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return np.power(base, exponent)


def _divide(inputs: list[Array], attrs: dict) -> Array:
    with np.errstate(invalid="ignore", divide="ignore"):
        return inputs[0] / inputs[1]


def _unary(fn: Callable[[Array], Array]) -> Kernel:
    def kernel(inputs: list[Array], attrs: dict) -> Array:
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return fn(inputs[0])

    return kernel


def _with_alpha(fn: Callable[[Array, float], Array], default: float) -> Kernel:
    return lambda inputs, attrs: fn(inputs[0], _attr(attrs, "alpha", default))


@dataclass(frozen=True)
class ElementwiseOp:
    kernel: Kernel
    linear: bool = False  # affine in its one non-constant input (Add/Sub/Mul/Div by a constant, Neg)
    standalone: bool = False  # one node alone becomes a table (it has no int8 quantizer of its own)


ELEMENTWISE_OPS: dict[str, ElementwiseOp] = {
    "Add": ElementwiseOp(lambda i, a: i[0] + i[1], linear=True),
    "Sub": ElementwiseOp(lambda i, a: i[0] - i[1], linear=True),
    "Mul": ElementwiseOp(lambda i, a: i[0] * i[1], linear=True),
    "Div": ElementwiseOp(_divide, linear=True),
    "Neg": ElementwiseOp(lambda i, a: -i[0], linear=True),
    "Pow": ElementwiseOp(_pow, standalone=True),
    "Max": ElementwiseOp(lambda i, a: functools.reduce(np.maximum, i), standalone=True),
    "Min": ElementwiseOp(lambda i, a: functools.reduce(np.minimum, i), standalone=True),
    "Relu": ElementwiseOp(_unary(lambda x: np.maximum(x, 0.0))),
    "Clip": ElementwiseOp(_clip),
    "Sigmoid": ElementwiseOp(_unary(special.expit)),
    "Tanh": ElementwiseOp(_unary(np.tanh)),
    "HardSigmoid": ElementwiseOp(
        lambda i, a: np.clip(_attr(a, "alpha", 0.2) * i[0] + _attr(a, "beta", 0.5), 0.0, 1.0)),
    "HardSwish": ElementwiseOp(_unary(lambda x: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0))),
    "Gelu": ElementwiseOp(_gelu),
    "Elu": ElementwiseOp(_with_alpha(lambda x, al: np.where(x > 0, x, al * np.expm1(np.minimum(x, 0.0))), 1.0)),
    "LeakyRelu": ElementwiseOp(_with_alpha(lambda x, al: np.where(x >= 0, x, al * x), 0.01)),
    "Softplus": ElementwiseOp(_unary(lambda x: np.logaddexp(0.0, x))),
    "Mish": ElementwiseOp(_unary(lambda x: x * np.tanh(np.logaddexp(0.0, x)))),
    "Erf": ElementwiseOp(_unary(special.erf), standalone=True),
    "Exp": ElementwiseOp(_unary(np.exp), standalone=True),
    "Log": ElementwiseOp(_unary(np.log), standalone=True),
    "Sqrt": ElementwiseOp(_unary(np.sqrt), standalone=True),
    "Reciprocal": ElementwiseOp(_unary(lambda x: 1.0 / x), standalone=True),
    "Abs": ElementwiseOp(_unary(np.abs), standalone=True),
    "Softsign": ElementwiseOp(_unary(lambda x: x / (1.0 + np.abs(x))), standalone=True),
    "Sin": ElementwiseOp(_unary(np.sin), standalone=True),
    "Cos": ElementwiseOp(_unary(np.cos), standalone=True),
    "Floor": ElementwiseOp(_unary(np.floor), standalone=True),
    "Ceil": ElementwiseOp(_unary(np.ceil), standalone=True),
    "Round": ElementwiseOp(_unary(np.round), standalone=True),  # ONNX Round: half to even, as numpy
    "Sign": ElementwiseOp(_unary(np.sign), standalone=True),
    "Selu": ElementwiseOp(lambda i, a: _attr(a, "gamma", 1.0507009873554805) * np.where(
        i[0] > 0, i[0], _attr(a, "alpha", 1.6732632423543772) * np.expm1(np.minimum(i[0], 0.0))), standalone=True),
    "Celu": ElementwiseOp(_with_alpha(
        lambda x, al: np.maximum(x, 0.0) + np.minimum(0.0, al * np.expm1(np.minimum(x, 0.0) / al)), 1.0),
        standalone=True),
    "ThresholdedRelu": ElementwiseOp(_with_alpha(lambda x, al: np.where(x > al, x, 0.0), 1.0), standalone=True),
}


def is_linear_node(op_type: str, constant_inputs: list[bool]) -> bool:
    """Affine in its single non-constant input: x+c, x-c, c-x, x*c, x/c, -x (not c/x, not x*x)."""
    entry = ELEMENTWISE_OPS.get(op_type)
    if entry is None or not entry.linear or constant_inputs.count(False) != 1:
        return False
    return not (op_type == "Div" and constant_inputs[0])


class ElementwiseFunction:
    """y = f(x) of a fused chain, evaluated node by node in float64 over its body (one input, one output)."""

    def __init__(self, body: GraphView) -> None:
        if len(body.inputs) != 1 or len(body.outputs) != 1:
            raise ModelFormatError(f"an elementwise chain has one input and one output, not {body.inputs} -> "
                                   f"{body.outputs}")
        self.body = body
        self.constants = {name: v.constant.astype(np.float64) for name, v in body.values.items()
                          if v.constant is not None}
        for node in body.nodes:
            if node.domain != "" or node.op_type not in ELEMENTWISE_OPS:
                raise ModelFormatError(f"op {node.op_type!r} cannot be part of an elementwise chain")

    def __call__(self, x: Array) -> Array:
        values: dict[str, Array] = {self.body.inputs[0]: np.asarray(x, dtype=np.float64)}
        for node in self.body.nodes:
            inputs = [self._value(values, name) for name in node.inputs]
            values[node.outputs[0]] = np.asarray(ELEMENTWISE_OPS[node.op_type].kernel(inputs, node.attributes),
                                                 dtype=np.float64)
        return np.broadcast_to(values[self.body.outputs[0]], np.shape(x)).copy()

    def _value(self, values: dict[str, Array], name: str) -> Array | None:
        if not name:
            return None
        if name in values:
            return values[name]
        return self.constants[name].reshape(()) if self.constants[name].size == 1 else self.constants[name]

    def expression(self) -> str:
        """The chain as a formula over ``x`` (constants at 4 significant digits), for reports."""
        text: dict[str, str] = {self.body.inputs[0]: "x"}
        for node in self.body.nodes:
            args = [text.get(n) or _constant_text(self.constants.get(n)) for n in node.inputs if n]
            text[node.outputs[0]] = _formula(node, args)
        return text[self.body.outputs[0]]


_INFIX = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/", "Pow": "^"}


def _constant_text(value: Array | None) -> str:
    return "?" if value is None else f"{float(value.reshape(-1)[0]):.4g}"


def _formula(node: NodeView, args: list[str]) -> str:
    if node.op_type in _INFIX and len(args) == 2:
        return f"({args[0]} {_INFIX[node.op_type]} {args[1]})"
    if node.op_type == "Neg":
        return f"-{args[0]}"
    return f"{node.op_type.lower()}({', '.join(args)})"


def is_elementwise_call(node: NodeView) -> bool:
    """A fused chain: an ``ai.edgeact`` elementwise node whose body is the original ops."""
    return node.domain == EDGEACT_DOMAIN and node.op_type == ELEMENTWISE_OP
