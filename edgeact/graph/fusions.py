"""Fusion patterns, as data: each rule turns a decomposed sub-graph into one ``ai.edgeact`` node.

Every rule is an onnxscript pattern rewrite with ``as_function=True``: the matched nodes become the body of a
model-local function that the new node calls, so the fused graph computes bit-for-bit what the original did
(onnxruntime inlines the function) while the planner sees one activation, norm or linear op.
Patterns assume constants sit on the right of Add/Mul (the ``constants-right`` pass runs first); the order of
two non-constant operands is covered with ``OrValue``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import onnx_ir as ir
from onnxscript.rewriter import pattern

from edgeact.graph.view import EDGEACT_DOMAIN

SQRT2 = math.sqrt(2.0)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_CUBIC = 0.044715


def _mul(op, a, b):
    """a*b in either operand order (both non-constant)."""
    return pattern.OrValue([op.Mul(a, b), op.Mul(b, a)])


def _erf_one_plus(op, x):
    scaled = pattern.OrValue([op.Div(x, SQRT2), op.Mul(x, 1.0 / SQRT2)])
    return op.Add(op.Erf(scaled), 1.0)


def _cube(op, x):
    square = op.Mul(x, x)
    return pattern.OrValue([op.Pow(x, 3.0), _mul(op, square, x)])


def _tanh_one_plus(op, x):
    inner = pattern.OrValue([op.Add(x, op.Mul(_cube(op, x), GELU_CUBIC)), op.Add(op.Mul(_cube(op, x), GELU_CUBIC), x)])
    return op.Add(op.Tanh(op.Mul(inner, SQRT_2_OVER_PI)), 1.0)


def _gelu_erf_family(op, x, form: int, swap: bool):
    return _half_x_times(op, x, _erf_one_plus(op, x), form, swap)


def _gelu_tanh_family(op, x, form: int, swap: bool):
    return _half_x_times(op, x, _tanh_one_plus(op, x), form, swap)


def _half_x_times(op, x, one_plus, form: int, swap: bool):
    """The three ways exporters spell 0.5 * x * one_plus (``swap``: the root's two operands reversed)."""
    if form == 0:
        return op.Mul(_mul(op, x, one_plus), 0.5)  # (x * (1+e)) * 0.5 -- torch
    left, right = (op.Mul(x, 0.5), one_plus) if form == 1 else (x, op.Mul(one_plus, 0.5))
    return op.Mul(right, left) if swap else op.Mul(left, right)  # form 2: x * ((1+e) * 0.5) -- jax2tf, HF


def _activation_call(name: str) -> Callable:
    def rewrite(op, x, **_):
        return op.__getattr__(name)(x, _domain=EDGEACT_DOMAIN)

    return rewrite


def _variants(name: str, family: Callable, **choices: tuple) -> list[pattern.RewriteRule]:
    """One rule per combination of ``choices`` (a pattern's root cannot be an alternative)."""
    keys = list(choices)
    combos = [dict(zip(keys, values, strict=True)) for values in itertools.product(*(choices[k] for k in keys))]

    def target_for(combo: dict) -> Callable:
        def target(op, x):
            return family(op, x, **combo)

        return target

    return [
        pattern.RewriteRule(target_for(combo), _activation_call(name), as_function=True, name=f"{name}{combo}")
        for combo in combos
    ]


def _silu(op, x, swap: bool):
    return op.Mul(op.Sigmoid(x), x) if swap else op.Mul(x, op.Sigmoid(x))


def _relu6_of_x_plus_3(op, x):
    return op.Clip(op.Add(x, 3.0), 0.0, 6.0)


def _over_six(op, value, by_mul: bool):
    return op.Mul(value, 1.0 / 6.0) if by_mul else op.Div(value, 6.0)


def _hardswish_outer_div(op, x, by_mul: bool):
    return _over_six(op, _mul(op, x, _relu6_of_x_plus_3(op, x)), by_mul)


def _hardswish_inner_div(op, x, swap: bool):
    hsig = pattern.OrValue([_over_six(op, _relu6_of_x_plus_3(op, x), by_mul) for by_mul in (False, True)])
    return op.Mul(hsig, x) if swap else op.Mul(x, hsig)


def _hardsigmoid(op, x, by_mul: bool):
    return _over_six(op, _relu6_of_x_plus_3(op, x), by_mul)


def _mish(op, x, swap: bool):
    inner = op.Tanh(op.Softplus(x))
    return op.Mul(inner, x) if swap else op.Mul(x, inner)


def _reduce(op, name: str, x):
    return getattr(op, name)(x, _allow_other_inputs=True, _allow_other_attributes=True)


def _mean(op, x):
    """mean over the normalised axis: ReduceMean, or ReduceSum divided by (or times the inverse of) the count."""
    total = _reduce(op, "ReduceSum", x)
    return pattern.OrValue([_reduce(op, "ReduceMean", x), op.Div(total, pattern.ANY_VALUE),
                            op.Mul(total, pattern.ANY_VALUE)])


def _square(op, x):
    return pattern.OrValue([op.Pow(x, 2.0), op.Mul(x, x)])


def _variance(op, x, mean, centred, form: str):
    """var = mean((x - mean)^2) (torch, HF); max(mean(x^2) - mean^2, 0) (Flax, through jax2tf); or unclipped."""
    if form == "centred":
        return _mean(op, _square(op, centred))
    difference = op.Sub(_mean(op, _square(op, x)), _square(op, mean))
    return op.Max(difference, 0.0) if form == "clipped" else difference


def _inverse_std(op, variance):
    shifted = pattern.OrValue([op.Add(variance, pattern.ANY_VALUE), op.Max(variance, pattern.ANY_VALUE)])
    return op.Reciprocal(op.Sqrt(shifted))


def _layer_norm_family(op, x, scale, bias, variance: str, normalise: str):
    mean = _mean(op, x)
    centred = op.Sub(x, mean)
    var = _variance(op, x, mean, centred, variance)
    if normalise == "divide":  # (x - mean) / sqrt(var + eps) * scale + bias
        shifted = pattern.OrValue([op.Add(var, pattern.ANY_VALUE), op.Max(var, pattern.ANY_VALUE)])
        scaled = op.Mul(op.Div(centred, op.Sqrt(shifted)), scale)
    elif normalise == "reciprocal":  # (x - mean) * rsqrt(var + eps) * scale + bias
        scaled = op.Mul(_mul(op, centred, _inverse_std(op, var)), scale)
    else:  # Flax: (x - mean) * (rsqrt(var + eps) * scale) + bias
        scaled = _mul(op, centred, op.Mul(_inverse_std(op, var), scale))
    return op.Add(scaled, bias)


def _layer_norm_call(op, x, scale, bias, **_):
    return op.LayerNorm(x, scale, bias, _domain=EDGEACT_DOMAIN)


def _constant(value: ir.Value | None) -> bool:
    return value is not None and value.const_value is not None


def _scalar(value: ir.Value | None) -> float | None:
    if not _constant(value) or value.const_value.size != 1:
        return None
    return float(value.const_value.numpy().reshape(-1)[0])


def _reduces_last_axis(node: ir.Node, rank: int | None) -> bool:
    axes = node.attributes.get_ints("axes", None)
    if axes is None and len(node.inputs) > 1 and _constant(node.inputs[1]):
        axes = [int(a) for a in node.inputs[1].const_value.numpy().reshape(-1)]
    return axes is not None and len(axes) == 1 and rank is not None and axes[0] % rank == rank - 1


def _layer_norm_check(context, x, scale, bias, **_) -> bool:
    """Constant scale and bias; every reduction over the last axis only; a ReduceSum divided by exactly the axis
    length (or times its inverse); epsilon a small positive scalar."""
    if not (_constant(scale) and _constant(bias)) or x.shape is None:
        return False
    rank, width = len(x.shape), x.shape[-1]
    for node in context.nodes:
        if node.op_type in ("ReduceMean", "ReduceSum") and not _reduces_last_axis(node, rank):
            return False
        if node.op_type in ("Div", "Mul", "Add", "Max") and _constant(node.inputs[1]):
            producer = node.inputs[0].producer()
            value = _scalar(node.inputs[1])
            if producer is not None and producer.op_type == "ReduceSum":
                count = value if node.op_type == "Div" else (1.0 / value if value else None)
                if not isinstance(width, int) or count is None or abs(count - width) > 1e-3 * width:
                    return False
            elif producer is not None and producer.op_type in ("ReduceMean", "ReduceSum", "Sub", "Max"):
                if node.op_type in ("Add", "Max") and value is not None and not (0 <= value < 1e-1):
                    return False
    return True


def _softmax(op, x):
    peak = op.ReduceMax(x, _allow_other_inputs=True, _allow_other_attributes=True)
    shifted = pattern.OrValue([op.Exp(op.Sub(x, peak)), op.Exp(x)])
    return op.Div(shifted, op.ReduceSum(shifted, _allow_other_inputs=True, _allow_other_attributes=True))


def _linear(op, x, weight, bias):
    return op.Add(op.MatMul(x, weight), bias)


def _linear_call(op, x, weight, bias):
    return op.Linear(x, weight, bias, _domain=EDGEACT_DOMAIN)


def _linear_check(context, x, weight, bias, **_) -> bool:
    if not (_constant(weight) and _constant(bias)) or _constant(x):
        return False
    w_shape, b_shape = weight.const_value.shape, bias.const_value.shape
    return len(w_shape) == 2 and tuple(b_shape) in ((w_shape[1],), (1, w_shape[1]))


def activation_rules() -> list[list[pattern.RewriteRule]]:
    """Activation fusions in stages: hardswish before the hardsigmoid inside it (the rewriter visits nodes in
    graph order, so a smaller pattern whose root comes first would otherwise win)."""
    both = (False, True)
    return [
        [
            *_variants("hardswish", _hardswish_outer_div, by_mul=both),
            *_variants("hardswish", _hardswish_inner_div, swap=both),
        ],
        [
            *_variants("gelu", _gelu_erf_family, form=(0, 1, 2), swap=both),
            *_variants("gelu_tanh", _gelu_tanh_family, form=(0, 1, 2), swap=both),
            *_variants("hardsigmoid", _hardsigmoid, by_mul=both),
            *_variants("mish", _mish, swap=both),
            *_variants("silu", _silu, swap=both),
        ],
    ]


def _layer_norm_rules() -> list[pattern.RewriteRule]:
    """LayerNorm as torch, HF, tf2onnx and Flax-through-jax2tf spell it (one rule per root form)."""
    def target_for(variance: str, normalise: str) -> Callable:
        def target(op, x, scale, bias):  # the pattern's variables are exactly these parameters
            return _layer_norm_family(op, x, scale, bias, variance, normalise)

        return target

    return [pattern.RewriteRule(target_for(variance, normalise), _layer_norm_call, _layer_norm_check,
                                as_function=True, name=f"layer_norm_{variance}_{normalise}")
            for variance in ("centred", "clipped", "unclipped") for normalise in ("divide", "reciprocal", "flax")]


def structure_rules() -> list[list[pattern.RewriteRule]]:
    """LayerNorm, Softmax and Linear recognised as one node each."""
    return [[
        *_layer_norm_rules(),
        pattern.RewriteRule(_softmax, _activation_call("Softmax"), as_function=True, name="softmax"),
        pattern.RewriteRule(_linear, _linear_call, _linear_check, as_function=True, name="linear"),
    ]]
