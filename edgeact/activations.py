"""The activation registry: one :class:`Activation` entry per elementwise function.

Each entry carries a float64 reference that neither overflows nor returns NaN for |x| <= 1e4, its
derivative, the limits it saturates to, and -- where a runtime builds int8 tables from its own float32
formula -- that formula, evaluated step by step in float32 as the runtime's C++ does.
Each entry also names the standard ONNX op and the TFLite builtin computing it, where they exist, and its float32
TFLite form (one builtin or a short sequence, ``float_tflite``): the planner, the TFLite lowering, the emulator and the
profiler read them here. Adding an activation is adding one entry to
``REGISTRY`` and its case (docs/contributing.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import special

from edgeact.errors import UnknownActivationError, UsageError
from edgeact.numerics.libm import expf, float32_function, tanhf

Array = np.ndarray
F32 = np.float32
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_TANH_CUBIC = 0.044715


def _f32(values: Array) -> Array:
    """Correctly rounded float32 of a float64 result: what a good libm's float function returns."""
    return np.asarray(values, dtype=np.float64).astype(np.float32)


# ---- float64 references and derivatives ------------------------------------------------------

def _tanh(x: Array, p: dict) -> Array:
    return np.tanh(x)


def _d_tanh(x: Array, p: dict) -> Array:
    return 1.0 - np.tanh(x) ** 2


def _sigmoid(x: Array, p: dict) -> Array:
    return special.expit(x)


def _d_sigmoid(x: Array, p: dict) -> Array:
    s = special.expit(x)
    return s * (1.0 - s)


def _gelu(x: Array, p: dict) -> Array:
    return 0.5 * x * special.erfc(-x / math.sqrt(2.0))


def _d_gelu(x: Array, p: dict) -> Array:
    return 0.5 * special.erfc(-x / math.sqrt(2.0)) + x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _gelu_tanh_inner(x: Array) -> Array:
    return SQRT_2_OVER_PI * (x + GELU_TANH_CUBIC * x**3)


def _gelu_tanh(x: Array, p: dict) -> Array:
    return x * special.expit(2.0 * _gelu_tanh_inner(x))  # == 0.5x(1+tanh(u)) without cancellation


def _d_gelu_tanh(x: Array, p: dict) -> Array:
    t = np.tanh(_gelu_tanh_inner(x))
    inner_slope = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_TANH_CUBIC * x * x)
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * inner_slope


def _silu(x: Array, p: dict) -> Array:
    return x * special.expit(x)


def _d_silu(x: Array, p: dict) -> Array:
    s = special.expit(x)
    return s * (1.0 + x * (1.0 - s))


def _hardswish(x: Array, p: dict) -> Array:
    return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0


def _d_hardswish(x: Array, p: dict) -> Array:
    return np.where(x < -3.0, 0.0, np.where(x > 3.0, 1.0, (2.0 * x + 3.0) / 6.0))


def _hardsigmoid(x: Array, p: dict) -> Array:
    return np.clip(p["alpha"] * x + p["beta"], 0.0, 1.0)


def _d_hardsigmoid(x: Array, p: dict) -> Array:
    inside = (p["alpha"] * x + p["beta"] > 0.0) & (p["alpha"] * x + p["beta"] < 1.0)
    return np.where(inside, p["alpha"], 0.0)


def _elu(x: Array, p: dict) -> Array:
    return np.where(x > 0, x, p["alpha"] * np.expm1(np.minimum(x, 0.0)))


def _d_elu(x: Array, p: dict) -> Array:
    return np.where(x > 0, 1.0, p["alpha"] * np.exp(np.minimum(x, 0.0)))


def _softplus(x: Array, p: dict) -> Array:
    return np.logaddexp(0.0, x)


def _d_softplus(x: Array, p: dict) -> Array:
    return special.expit(x)


def _mish(x: Array, p: dict) -> Array:
    return x * np.tanh(np.logaddexp(0.0, x))


def _d_mish(x: Array, p: dict) -> Array:
    t = np.tanh(np.logaddexp(0.0, x))
    return t + x * (1.0 - t * t) * special.expit(x)


def _leaky_relu(x: Array, p: dict) -> Array:
    return np.where(x >= 0, x, p["alpha"] * x)


def _d_leaky_relu(x: Array, p: dict) -> Array:
    return np.where(x >= 0, 1.0, p["alpha"])


# ---- float32 formulas of runtimes that build tables themselves --------------------------------

_erfcf = float32_function("erfcf", special.erfc)


def _litert_tanh(x: Array, p: dict) -> Array:
    return tanhf(x)  # std::tanh(float)


def _litert_logistic(x: Array, p: dict) -> Array:
    return F32(1.0) / (F32(1.0) + expf(-x))  # 1.0f / (1.0f + std::exp(-value))


def _litert_gelu(x: Array, p: dict) -> Array:
    # 0.5f * in * std::erfc(in * static_cast<float>(-M_SQRT1_2))
    return (F32(0.5) * x) * _erfcf(x * F32(-0.70710678118654752440))


def _litert_gelu_tanh(x: Array, p: dict) -> Array:
    # 0.5f * in * (1.f + std::tanh(kSqrt2dPi * (in + 0.044715f * in * in * in)))
    k = F32(1.12837916709551257390 * 0.70710678118654752440)
    cubic = ((F32(GELU_TANH_CUBIC) * x) * x) * x
    return (F32(0.5) * x) * (F32(1.0) + tanhf(k * (x + cubic)))


def _litert_elu(x: Array, p: dict) -> Array:
    # value < 0.0 ? std::exp(value) - 1.0f : value
    return np.where(x < 0, expf(x) - F32(1.0), x)


def _xnnpack_sigmoid(x: Array, p: dict) -> Array:
    # e = exp(double(x)); float(e / (1 + e)), saturated beyond |x| > 100
    xd = x.astype(np.float64)
    e = np.exp(np.clip(xd, -100.0, 100.0))
    y = _f32(e / (1.0 + e))
    return np.where(xd > 100, F32(1.0), np.where(xd < -100, F32(0.0), y))


# ---- the registry ------------------------------------------------------------------------------

Fn = Callable[[Array, dict], Array]


@dataclass(frozen=True)
class OnnxSpelling:
    """The standard ONNX op computing an activation, and how the node's attributes give its parameters."""

    op_type: str
    attributes: tuple[tuple[str, str, float], ...] = ()  # (parameter, ONNX attribute, ONNX default)
    when: tuple[str, str, str] | None = None  # (attribute, value, default): this entry only for that value

    def matches(self, attributes: dict) -> bool:
        return self.when is None or str(attributes.get(self.when[0], self.when[2])) == self.when[1]

    def params(self, attributes: dict) -> dict[str, float]:
        return {param: float(attributes.get(name, default)) for param, name, default in self.attributes}


@dataclass(frozen=True)
class TFLiteBuiltin:
    """The TFLite builtin computing an activation, with its options."""

    op: str
    options: tuple[tuple[str, Any], ...] = ()  # fixed options
    param_options: tuple[tuple[str, str], ...] = ()  # (option, parameter): options taken from the parameters
    int8_table: bool = False  # its int8 kernel is a 256-entry table: the planner may choose it (target_forms)
    checked: bool = False  # profile-device checks its int8 kernel against the profile's [activations.OP]

    def options_for(self, params: dict) -> dict[str, Any]:
        return {**dict(self.options), **{option: float(params[param]) for option, param in self.param_options}}


@dataclass(frozen=True)
class FloatStep:
    """One float32 TFLite builtin of an activation's float lowering (a sequence of these computes it).

    ``operands``: ``"x"`` the activation's input, ``"y"`` the previous step's result (the input at the first step),
    a parameter's name or a number: that float32 scalar constant. ``name`` suffixes the step's result tensor and its
    constants (``op.lower()`` by default)."""

    op: str
    operands: tuple[str | float, ...] = ("y",)
    options: tuple[tuple[str, Any], ...] = ()  # fixed options
    param_options: tuple[tuple[str, str], ...] = ()  # (option, parameter): options taken from the parameters
    name: str = ""

    @property
    def suffix(self) -> str:
        return self.name or self.op.lower()

    def options_for(self, params: dict) -> dict[str, Any]:
        return {**dict(self.options), **{option: float(params[param]) for option, param in self.param_options}}

    def constant(self, operand: str | float, params: dict) -> float | None:
        """The scalar an operand stands for, or None for ``x``/``y``."""
        return None if operand in ("x", "y") else float(params[operand] if isinstance(operand, str) else operand)


@dataclass(frozen=True)
class Activation:
    """One elementwise activation and everything edgeact knows about it."""

    name: str
    reference: Fn
    derivative: Fn
    limits: Callable[[dict], tuple[float | None, float | None]]  # f(-inf), f(+inf); None: unbounded
    monotone: bool
    summary: str
    params: dict = field(default_factory=dict)
    litert_float32: Fn | None = None  # LiteRT's own float32 table formula, where it has a builtin
    xnnpack_float: Fn | None = None  # XNNPACK's table formula, where it differs from LiteRT's
    onnx: OnnxSpelling | None = None  # the standard ONNX op computing it
    tflite: TFLiteBuiltin | None = None  # the TFLite builtin computing it
    float_tflite: tuple[FloatStep, ...] = ()  # its float32 TFLite lowering; () when it has none
    float_tflite_when: tuple[tuple[str, float], ...] = ()  # (parameter, value): the float form only for these
    chain_ops: tuple[str, ...] = ()  # a fused chain's float form: the TFLite builtins its ops lower to, in order

    def float_steps(self) -> tuple[FloatStep, ...]:
        """The float32 TFLite builtins computing it with its parameters, in order; () when none does."""
        if any(float(self.params[param]) != value for param, value in self.float_tflite_when):
            return ()
        return self.float_tflite

    def float_builtins(self) -> tuple[str, ...]:
        """The TFLite builtins its float32 form runs, in order (its float steps, or a fused chain's ops); () when
        it has no float form."""
        return tuple(step.op for step in self.float_steps()) or self.chain_ops

    def __call__(self, x: Array) -> Array:
        """The float64 reference f(x)."""
        return self.reference(np.asarray(x, dtype=np.float64), self.params)

    def slope(self, x: Array) -> Array:
        """The derivative f'(x) in float64."""
        return self.derivative(np.asarray(x, dtype=np.float64), self.params)

    def float32(self, x: Array) -> Array:
        """f evaluated as LiteRT builds its tables: its own float32 formula, else correctly rounded."""
        x = np.asarray(x, dtype=np.float32)
        if self.litert_float32 is not None:
            return self.litert_float32(x, self.params)
        return _f32(self.reference(x.astype(np.float64), self.params))

    def xnnpack(self, x: Array) -> Array:
        """f evaluated as XNNPACK builds its tables."""
        if self.xnnpack_float is not None:
            return self.xnnpack_float(np.asarray(x, dtype=np.float32), self.params)
        return self.float32(x)

    def with_params(self, **params: float) -> Activation:
        """A copy with some parameters (e.g. ``alpha``) changed."""
        unknown = set(params) - set(self.params)
        if unknown:
            raise UsageError(
                f"activation {self.name!r} has no parameter {sorted(unknown)[0]!r}"
                f" (its parameters: {', '.join(self.params) or 'none'})"
            )
        for key, value in params.items():
            if not math.isfinite(float(value)):
                raise UsageError(f"activation {self.name!r}: parameter {key!r} must be a finite number, got {value}")
        return replace(self, params={**self.params, **{k: float(v) for k, v in params.items()}})

    def saturation_bounds(self, out_step: float) -> tuple[float | None, float | None]:
        """Inputs beyond which f stays within ``out_step``/2 of its limit (None where no limit)."""
        lower, upper = self.limits(self.params)
        return (
            _saturation_point(self, lower, out_step, direction=-1.0),
            _saturation_point(self, upper, out_step, direction=1.0),
        )


def _saturation_point(act: Activation, limit: float | None, out_step: float, direction: float) -> float | None:
    """Outermost x along ``direction`` where |f(x) - limit| exceeds out_step/2, refined by bisection."""
    if limit is None:
        return None
    tolerance = out_step / 2.0
    grid = direction * np.linspace(0.0, 1e4, 1_000_001)
    outside = np.abs(act(grid) - limit) > tolerance
    if not outside.any():
        return 0.0
    last = int(np.flatnonzero(outside)[-1])
    if last == grid.size - 1:
        return None  # never saturates within |x| <= 1e4
    near, far = float(grid[last]), float(grid[last + 1])
    for _ in range(60):
        middle = 0.5 * (near + far)
        if abs(float(act(np.array([middle]))[0]) - limit) > tolerance:
            near = middle
        else:
            far = middle
    return far


REGISTRY: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("tanh", _tanh, _d_tanh, lambda p: (-1.0, 1.0), True, "hyperbolic tangent",
                   litert_float32=_litert_tanh, onnx=OnnxSpelling("Tanh"),
                   tflite=TFLiteBuiltin("TANH", int8_table=True, checked=True), float_tflite=(FloatStep("TANH"),)),
        Activation("sigmoid", _sigmoid, _d_sigmoid, lambda p: (0.0, 1.0), True, "logistic 1/(1+e^-x)",
                   litert_float32=_litert_logistic, xnnpack_float=_xnnpack_sigmoid, onnx=OnnxSpelling("Sigmoid"),
                   tflite=TFLiteBuiltin("LOGISTIC", int8_table=True, checked=True),
                   float_tflite=(FloatStep("LOGISTIC"),)),
        Activation("gelu", _gelu, _d_gelu, lambda p: (0.0, None), False, "GELU, exact erf form",
                   litert_float32=_litert_gelu, onnx=OnnxSpelling("Gelu", when=("approximate", "none", "none")),
                   tflite=TFLiteBuiltin("GELU", (("approximate", False),), int8_table=True, checked=True),
                   float_tflite=(FloatStep("GELU", options=(("approximate", False),)),)),
        Activation("gelu_tanh", _gelu_tanh, _d_gelu_tanh, lambda p: (0.0, None), False, "GELU, tanh approximation",
                   litert_float32=_litert_gelu_tanh, onnx=OnnxSpelling("Gelu", when=("approximate", "tanh", "none")),
                   tflite=TFLiteBuiltin("GELU", (("approximate", True),), int8_table=True, checked=True),
                   float_tflite=(FloatStep("GELU", options=(("approximate", True),)),)),
        Activation("silu", _silu, _d_silu, lambda p: (0.0, None), False, "SiLU / Swish x*sigmoid(x)",
                   float_tflite=(FloatStep("LOGISTIC", ("x",), name="sigmoid"), FloatStep("MUL", ("x", "y")))),
        Activation("hardswish", _hardswish, _d_hardswish, lambda p: (0.0, None), False, "x*relu6(x+3)/6",
                   onnx=OnnxSpelling("HardSwish"), tflite=TFLiteBuiltin("HARD_SWISH", checked=True),
                   float_tflite=(FloatStep("HARD_SWISH"),)),
        Activation("hardsigmoid", _hardsigmoid, _d_hardsigmoid, lambda p: (0.0, 1.0), True,
                   "clip(alpha*x+beta, 0, 1); PyTorch's alpha=1/6", params={"alpha": 1.0 / 6.0, "beta": 0.5},
                   onnx=OnnxSpelling("HardSigmoid", (("alpha", "alpha", 0.2), ("beta", "beta", 0.5))),
                   float_tflite=(FloatStep("MUL", ("y", "alpha")), FloatStep("ADD", ("y", "beta")),
                                 FloatStep("MAXIMUM", ("y", 0.0)), FloatStep("MINIMUM", ("y", 1.0)))),
        Activation("elu", _elu, _d_elu, lambda p: (-p["alpha"], None), True, "x>0 ? x : alpha*(e^x-1)",
                   params={"alpha": 1.0}, litert_float32=_litert_elu,
                   onnx=OnnxSpelling("Elu", (("alpha", "alpha", 1.0),)),
                   tflite=TFLiteBuiltin("ELU"),  # TFLite's ELU has no alpha: its float form only for alpha 1
                   float_tflite=(FloatStep("ELU"),), float_tflite_when=(("alpha", 1.0),)),
        Activation("softplus", _softplus, _d_softplus, lambda p: (0.0, None), True, "log(1+e^x)",
                   onnx=OnnxSpelling("Softplus")),
        Activation("mish", _mish, _d_mish, lambda p: (0.0, None), False, "x*tanh(softplus(x))",
                   onnx=OnnxSpelling("Mish")),
        Activation("leaky_relu", _leaky_relu, _d_leaky_relu, lambda p: (None, None), True, "x>=0 ? x : alpha*x",
                   params={"alpha": 0.01}, onnx=OnnxSpelling("LeakyRelu", (("alpha", "alpha", 0.01),)),
                   tflite=TFLiteBuiltin("LEAKY_RELU", param_options=(("alpha", "alpha"),)),
                   float_tflite=(FloatStep("LEAKY_RELU", param_options=(("alpha", "alpha"),)),)),
    )
}


def standard_activation(op_type: str, attributes: dict) -> Activation | None:
    """The registry entry a standard ONNX op computes (its attributes as parameters), or None."""
    for entry in REGISTRY.values():
        if entry.onnx is not None and entry.onnx.op_type == op_type and entry.onnx.matches(attributes):
            params = entry.onnx.params(attributes)
            return entry.with_params(**params) if params else entry
    return None


def tflite_builtin_activation(op: str, options: dict) -> Activation:
    """The registry entry a TFLite activation builtin computes, given its options (parameters from them)."""
    for entry in REGISTRY.values():
        builtin = entry.tflite
        if builtin is None or builtin.op != op or any(options.get(k, v) != v for k, v in builtin.options):
            continue
        params = {param: options[option] for option, param in builtin.param_options if option in options}
        return entry.with_params(**params) if params else entry
    raise UnknownActivationError(f"no activation of the registry is the TFLite builtin {op} with {options}")


# ---- functions of one variable that are not in the registry (fused elementwise chains) ----------------------

LIMIT_FAR, LIMIT_NEAR = 1.0e4, 1.0e3  # f has a limit at +-inf when it no longer moves between these


def _finite(values: Array) -> Array:
    """NaN -> 0 and +-inf -> +-1e30 (tables.UNDEFINED): tables and error measures stay defined where f is not
    (log(0), 1/0); output grids are sized without those codes, which saturate."""
    return np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=1e30, neginf=-1e30)


def _numeric_limit(fn: Callable[[Array], Array], direction: float) -> float | None:
    far, near = _finite(fn(np.array([direction * LIMIT_FAR, direction * LIMIT_NEAR])))
    return float(far) if abs(far - near) <= 1e-9 * (1.0 + abs(far)) and abs(far) < 1e30 else None


def function_activation(name: str, fn: Callable[[Array], Array], summary: str,
                        chain_ops: tuple[str, ...] = ()) -> Activation:
    """An :class:`Activation` for any float64 function of one variable (a fused elementwise chain): f itself,
    a central-difference derivative, limits where f settles by |x| = 1e4, never a runtime builtin; ``chain_ops``:
    the TFLite builtins its float form lowers to."""

    def reference(x: Array, p: dict) -> Array:
        return _finite(fn(x))

    def derivative(x: Array, p: dict) -> Array:
        step = 1e-4 * np.maximum(1.0, np.abs(x))
        return (_finite(fn(x + step)) - _finite(fn(x - step))) / (2.0 * step)

    limits = (_numeric_limit(fn, -1.0), _numeric_limit(fn, 1.0))
    return Activation(name, reference, derivative, lambda p: limits, False, summary, chain_ops=chain_ops)


def activation(name: str, **params: float) -> Activation:
    """Registry lookup; unknown names raise an error listing the known ones."""
    try:
        entry = REGISTRY[name]
    except KeyError:
        raise UnknownActivationError(
            f"unknown activation {name!r}; known: {', '.join(sorted(REGISTRY))}"
        ) from None
    return entry.with_params(**params) if params else entry
