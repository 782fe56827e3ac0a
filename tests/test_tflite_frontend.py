"""The float-.tflite reader: tiny models written with edgeact's own writer, converted to ONNX, and run on LiteRT's
reference kernels and on onnxruntime. The expected values always come from LiteRT; the ONNX form must agree to
1e-5 of each output's largest magnitude, with the .tflite's output shapes (NHWC stays NHWC). Then the refusals, the
conversion check, and one quantization of a .tflite end to end.

ELU runs on LiteRT's builtin kernels: the reference resolver has none.

TRANSPOSE_CONV is written by a test subclass of edgeact's writer (edgeact itself writes none, so its options table
is not in ``edgeact.ops.table.OPTIONS``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

import edgeact
from edgeact.errors import ModelFormatError
from edgeact.exporters.tflite import writer as writer_module
from edgeact.exporters.tflite.writer import TFLiteModelBuilder, serialise
from edgeact.frontends.tflite import TFLiteConversion, convert
from edgeact.metrics import sqnr_db
from edgeact.numerics import QParams
from edgeact.pipeline.conversion_check import check_tflite_conversion
from edgeact.runtimes.litert import LiteRTKernels, litert_interpreter, run_litert
from edgeact.tflite.graph import LoweredGraph
from edgeact.tflite.schema import builtin_operator_code, builtin_options_code, schema_module

SAME, VALID = 0, 1  # TFLite Padding
RELU, RELU6 = 1, 3  # TFLite ActivationFunctionType
RELATIVE = 1e-5  # of each output's largest magnitude

Shape = tuple[int, ...]


# ---- building float .tflite models --------------------------------------------------------------------------------
class Net:
    """A float .tflite being built: seeded constants (``seed``), every op's output a new float32 tensor."""

    def __init__(self, seed: int = 0) -> None:
        self.graph = LoweredGraph()
        self.rng = np.random.default_rng(seed)

    def shape(self, index: int) -> Shape:
        return self.graph.tensors[index].shape

    def input(self, shape: Shape) -> int:
        index = self.graph.tensor(f"in{len(self.graph.inputs)}", shape, "float32")
        self.graph.inputs.append(index)
        return index

    def weights(self, shape: Shape, dtype: str = "float32", scale: float = 1.0) -> int:
        data = (scale * self.rng.normal(size=shape)).astype(dtype)
        return self.graph.tensor(f"w{len(self.graph.tensors)}", shape, dtype, data=data)

    def ints(self, values: Sequence[int] | Sequence[Sequence[int]]) -> int:
        data = np.asarray(values, dtype=np.int32)
        return self.graph.tensor(f"c{len(self.graph.tensors)}", data.shape, "int32", data=data)

    def op(self, builtin: str, inputs: Sequence[int], shape: Shape, **options: object) -> int:
        out = self.graph.tensor(f"{builtin.lower()}{len(self.graph.ops)}", shape, "float32")
        self.graph.op(builtin, list(inputs), [out], f"op{len(self.graph.ops)}", **options)
        return out

    def conv(self, x: int, channels: int, kernel: int = 3, stride: int = 1, padding: int = SAME, dilation: int = 1,
             fused: int = 0, weights: int | None = None) -> int:
        depth = self.shape(x)[3]
        weights = self.weights((channels, kernel, kernel, depth), scale=0.5) if weights is None else weights
        out = _spatial_out(self.shape(x), kernel, stride, padding, dilation)
        return self.op("CONV_2D", [x, weights, self.weights((channels,))], (1, *out, channels), padding=padding,
                       strideH=stride, strideW=stride, dilationHFactor=dilation, dilationWFactor=dilation,
                       fusedActivationFunction=fused)

    def depthwise(self, x: int, multiplier: int, kernel: int = 3, stride: int = 1, padding: int = SAME) -> int:
        channels = self.shape(x)[3] * multiplier
        out = _spatial_out(self.shape(x), kernel, stride, padding)
        return self.op("DEPTHWISE_CONV_2D", [x, self.weights((1, kernel, kernel, channels)), self.weights((channels,))],
                       (1, *out, channels), padding=padding, strideH=stride, strideW=stride,
                       depthMultiplier=multiplier)

    def pool(self, builtin: str, x: int, kernel: int, stride: int, padding: int = SAME) -> int:
        out = _spatial_out(self.shape(x), kernel, stride, padding)
        return self.op(builtin, [x], (1, *out, self.shape(x)[3]), padding=padding, strideH=stride, strideW=stride,
                       filterHeight=kernel, filterWidth=kernel)

    def reshape(self, x: int, shape: Shape) -> int:
        return self.op("RESHAPE", [x, self.ints(shape)], shape)

    def payload(self, outputs: Sequence[int]) -> bytes:
        self.graph.outputs = list(outputs)
        return serialise(self.graph, {}, "test")


def _spatial_out(shape: Shape, kernel: int, stride: int, padding: int, dilation: int = 1) -> tuple[int, int]:
    """The output height and width of a window op on an NHWC ``shape`` (TFLite's SAME and VALID)."""
    if padding == SAME:
        return -(-shape[1] // stride), -(-shape[2] // stride)
    reach = (kernel - 1) * dilation
    return -(-(shape[1] - reach) // stride), -(-(shape[2] - reach) // stride)


# ---- the cases ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """A model: ``inputs`` shapes, and ``build(net, *inputs)`` giving its output tensor(s); ``kernels``: LiteRT's
    kernels that give the expected values (the reference ones, unless they lack the builtin)."""

    name: str
    inputs: tuple[Shape, ...]
    build: Callable[..., int | tuple[int, ...]]
    kernels: LiteRTKernels = LiteRTKernels.REFERENCE


def _float16(n: Net, shape: Shape, scale: float = 1.0) -> int:
    """A float16 constant widened by DEQUANTIZE, as TFLite's float16 models store weights."""
    half = n.weights(shape, "float16", scale)
    widened = n.graph.tensor(f"{n.graph.tensors[half].name}/float32", shape, "float32")
    n.graph.op("DEQUANTIZE", [half], [widened], f"dequantize{half}")
    return widened


def _float16_conv(n: Net, x: int) -> int:
    """Weights, bias and a per-channel scale in float16."""
    shape = (1, 5, 5, 4)
    conv = n.op("CONV_2D", [x, _float16(n, (4, 3, 3, 3), 0.5), _float16(n, (4,))], shape, padding=SAME,
                fusedActivationFunction=RELU)
    return n.op("MUL", [conv, _float16(n, (4,))], shape)


def _concatenated_heads(n: Net, x: int) -> int:
    """BlazeFace's heads: two convs reshaped to (1, anchors, values) and concatenated along the anchors."""
    small = n.pool("MAX_POOL_2D", x, 2, 2, VALID)
    first, second = n.conv(x, 6), n.conv(small, 6)
    rows = [n.reshape(first, (1, 32, 3)), n.reshape(second, (1, 8, 3))]
    return n.op("CONCATENATION", rows, (1, 40, 3), axis=1)


def _squeeze_excite(n: Net, x: int) -> int:
    """MobileNetV3's gate: MEAN to (1, C), FULLY_CONNECTED, reshaped to (1, 1, 1, C), times the features."""
    features = n.conv(x, 4)
    pooled = n.op("MEAN", [features, n.ints([1, 2])], (1, 4))
    gate = n.op("LOGISTIC", [n.op("FULLY_CONNECTED", [pooled, n.weights((4, 4)), n.weights((4,))], (1, 4))], (1, 4))
    return n.op("MUL", [features, n.reshape(gate, (1, 1, 1, 4))], (1, 4, 4, 4))


def _binaries(n: Net, x: int, y: int) -> int:
    """SUB, DIV, MAXIMUM, MINIMUM, SQUARED_DIFFERENCE between a conv output (NCHW) and the inputs (NHWC)."""
    shape = n.shape(x)
    c = n.conv(x, 2)
    a = n.op("SUB", [c, y], shape)
    b = n.op("DIV", [a, n.op("ADD", [n.op("ABS", [y], shape), n.weights((2,), scale=0.1)], shape)], shape)
    m = n.op("MAXIMUM", [b, n.op("MINIMUM", [x, c], shape)], shape)
    return n.op("SQUARED_DIFFERENCE", [m, x], shape)


def _unaries(n: Net, x: int) -> int:
    """The elementwise builtins without options, on a conv output (the divisor and logs kept positive)."""
    shape = n.shape(x)
    c = n.conv(x, 2)
    positive = n.op("EXP", [n.op("TANH", [c], shape)], shape)
    a = n.op("RSQRT", [positive], shape)
    b = n.op("LOG", [n.op("SQRT", [positive], shape)], shape)
    d = n.op("RELU_N1_TO_1", [n.op("NEG", [c], shape)], shape)
    e = n.op("RELU6", [n.op("RELU", [c], shape)], shape)
    return n.op("ADD", [n.op("ADD", [a, b], shape), n.op("ADD", [d, e], shape)], shape)


def _split(n: Net, x: int) -> tuple[int, int, int]:
    """SPLIT and SPLIT_V (negative axis) of a conv output on the channel axis; three of the parts are outputs."""
    c = n.conv(x, 6)
    outs = [n.graph.tensor(f"part{i}", (1, 4, 4, 2), "float32") for i in range(3)]
    n.graph.op("SPLIT", [n.ints(3), c], outs, "split", numSplits=3)
    left, right = (n.graph.tensor(f"v{i}", (1, 4, 4, 2 + 2 * i), "float32") for i in range(2))
    n.graph.op("SPLIT_V", [c, n.ints([2, 4]), n.ints(-1)], [left, right], "split_v", numSplits=2)
    return outs[0], outs[2], right


def _squeeze_expand(n: Net, x: int) -> int:
    """SQUEEZE is written without options (not in the writer's table): it drops every axis of size 1."""
    pooled = n.op("MEAN", [n.conv(x, 5), n.ints([1, 2])], (2, 1, 1, 5), keepDims=True)
    squeezed = n.op("SQUEEZE", [pooled], (2, 5))
    return n.op("EXPAND_DIMS", [squeezed, n.ints(1)], (2, 1, 5))


CONVOLUTIONS = [
    Case("conv_same_relu", ((1, 6, 6, 3),), lambda n, x: n.conv(x, 4, fused=RELU)),
    Case("conv_valid_relu6", ((1, 7, 6, 3),), lambda n, x: n.conv(x, 5, padding=VALID, fused=RELU6)),
    Case("conv_same_stride2_odd", ((1, 7, 7, 3),), lambda n, x: n.conv(x, 4, stride=2)),
    Case("conv_same_stride2_uneven_pads", ((1, 6, 8, 3),), lambda n, x: n.conv(x, 4, stride=2)),
    Case("conv_valid_stride2", ((1, 8, 7, 2),), lambda n, x: n.conv(x, 3, stride=2, padding=VALID)),
    Case("conv_same_dilation2", ((1, 7, 7, 3),), lambda n, x: n.conv(x, 4, dilation=2)),
    Case("conv_valid_dilation2", ((1, 8, 8, 2),), lambda n, x: n.conv(x, 3, padding=VALID, dilation=2)),
    Case("conv_1x1", ((1, 4, 4, 5),), lambda n, x: n.conv(x, 2, kernel=1)),
    Case("depthwise_multiplier1", ((1, 6, 6, 4),), lambda n, x: n.depthwise(x, 1)),
    Case("depthwise_multiplier2_stride2", ((1, 7, 7, 3),), lambda n, x: n.depthwise(x, 2, stride=2)),
    Case("depthwise_after_conv_valid", ((1, 6, 6, 3),), lambda n, x: n.depthwise(n.conv(x, 4), 2, padding=VALID)),
    Case("float16_weights_dequantize", ((1, 5, 5, 3),), _float16_conv),
    Case("max_pool_same_odd", ((1, 5, 5, 3),), lambda n, x: n.pool("MAX_POOL_2D", x, 3, 2)),
    Case("average_pool_same_odd", ((1, 5, 5, 3),), lambda n, x: n.pool("AVERAGE_POOL_2D", x, 3, 2)),
    Case("max_pool_same_odd_uneven_pads", ((1, 5, 7, 3),), lambda n, x: n.pool("MAX_POOL_2D", n.conv(x, 3), 2, 2)),
    Case("average_pool_same_odd_uneven_pads", ((1, 5, 7, 3),), lambda n, x: n.pool("AVERAGE_POOL_2D", x, 2, 2)),
    Case("average_pool_same_stride1", ((1, 5, 4, 2),), lambda n, x: n.pool("AVERAGE_POOL_2D", x, 2, 1)),
    Case("conv_output_rank4", ((1, 5, 6, 3),), lambda n, x: n.conv(n.conv(x, 4, stride=2), 2)),
    Case("conv_output_also_feeds_conv", ((1, 5, 6, 3),), lambda n, x: (c := n.conv(x, 4), n.conv(c, 2))),
]

ELEMENTWISE = [
    Case("add_two_convs", ((1, 5, 5, 3),), lambda n, x: n.op("ADD", [n.conv(x, 4), n.conv(x, 4)], (1, 5, 5, 4))),
    Case("add_input_and_conv", ((1, 5, 5, 3),),
         lambda n, x: n.op("ADD", [x, n.conv(x, 3)], (1, 5, 5, 3), fusedActivationFunction=RELU)),
    Case("add_two_inputs", ((1, 3, 4, 2), (1, 3, 4, 2)), lambda n, x, y: n.op("ADD", [x, y], (1, 3, 4, 2))),
    Case("add_channel_constant_after_conv", ((1, 4, 4, 3),),
         lambda n, x: n.op("ADD", [n.conv(x, 5), n.weights((5,))], (1, 4, 4, 5))),
    Case("mul_channel_constant_after_conv", ((1, 4, 4, 3),),
         lambda n, x: n.op("MUL", [n.weights((5,)), n.conv(x, 5)], (1, 4, 4, 5))),
    Case("mul_channel_constant_on_input", ((1, 4, 4, 3),),
         lambda n, x: n.op("MUL", [x, n.weights((3,))], (1, 4, 4, 3))),
    Case("logistic", ((1, 4, 4, 3),), lambda n, x: n.op("LOGISTIC", [n.conv(x, 3)], (1, 4, 4, 3))),
    Case("tanh", ((2, 7),), lambda n, x: n.op("TANH", [x], (2, 7))),
    Case("hard_swish", ((1, 4, 4, 3),), lambda n, x: n.op("HARD_SWISH", [n.conv(x, 4)], (1, 4, 4, 4))),
    Case("leaky_relu", ((1, 4, 4, 3),), lambda n, x: n.op("LEAKY_RELU", [n.conv(x, 4)], (1, 4, 4, 4), alpha=0.15)),
    Case("prelu_after_conv", ((1, 4, 4, 3),),
         lambda n, x: n.op("PRELU", [n.conv(x, 4), n.weights((1, 1, 4), scale=0.3)], (1, 4, 4, 4))),
    Case("prelu_on_input", ((1, 3, 5, 4),),
         lambda n, x: n.op("PRELU", [x, n.weights((1, 1, 4), scale=0.3)], (1, 3, 5, 4))),
    Case("gelu", ((1, 4, 4, 3),), lambda n, x: n.op("GELU", [n.conv(x, 4)], (1, 4, 4, 4))),
    Case("gelu_tanh_approximation", ((3, 8),), lambda n, x: n.op("GELU", [x], (3, 8), approximate=True)),
]

SHAPES = [
    Case("pad_channels_after_conv", ((1, 4, 4, 3),),
         lambda n, x: n.op("PAD", [n.conv(x, 4), n.ints([[0, 0], [0, 0], [0, 0], [0, 4]])], (1, 4, 4, 8))),
    Case("pad_spatial_on_input", ((1, 3, 3, 2),),
         lambda n, x: n.op("PAD", [x, n.ints([[0, 0], [1, 2], [0, 1], [0, 0]])], (1, 6, 4, 2))),
    Case("concatenation_channels_of_convs", ((1, 4, 4, 3),),
         lambda n, x: n.op("CONCATENATION", [n.conv(x, 2), n.conv(x, 3)], (1, 4, 4, 5), axis=3)),
    Case("concatenation_negative_axis_input_and_conv", ((1, 4, 4, 3),),
         lambda n, x: n.op("CONCATENATION", [x, n.conv(x, 3)], (1, 4, 4, 6), axis=-1)),
    Case("reshape_conv_rank3", ((1, 4, 4, 3),), lambda n, x: n.reshape(n.conv(x, 6), (1, 32, 3))),
    Case("reshape_concatenation_heads", ((1, 4, 4, 3),), _concatenated_heads),
    Case("fully_connected_rank4_relu", ((1, 4, 4, 3),),
         lambda n, x: n.op("FULLY_CONNECTED", [n.conv(x, 3, stride=2), n.weights((5, 12), scale=0.3),
                                               n.weights((5,))], (1, 5), fusedActivationFunction=RELU)),
    Case("fully_connected_keep_num_dims_relu", ((1, 5, 6),),
         lambda n, x: n.op("FULLY_CONNECTED", [x, n.weights((4, 6)), n.weights((4,))], (1, 5, 4),
                           keepNumDims=True, fusedActivationFunction=RELU)),
    Case("fully_connected_rank2", ((2, 6),),
         lambda n, x: n.op("FULLY_CONNECTED", [x, n.weights((4, 6)), n.weights((4,))], (2, 4))),
    Case("mean_spatial", ((1, 4, 5, 3),), lambda n, x: n.op("MEAN", [n.conv(x, 6), n.ints([1, 2])], (1, 6))),
    Case("mean_spatial_keep_dims", ((1, 4, 5, 3),),
         lambda n, x: n.op("MEAN", [n.conv(x, 6), n.ints([1, 2])], (1, 1, 1, 6), keepDims=True)),
    Case("mean_channels_keep_dims", ((1, 4, 5, 3),),
         lambda n, x: n.op("MEAN", [n.conv(x, 6), n.ints([-1])], (1, 4, 5, 1), keepDims=True)),
    Case("softmax_beta", ((3, 6),), lambda n, x: n.op("SOFTMAX", [x], (3, 6), beta=0.7)),
    Case("softmax_rank4_after_conv", ((1, 3, 4, 2),), lambda n, x: n.op("SOFTMAX", [n.conv(x, 5)], (1, 3, 4, 5))),
    Case("resize_nearest_asymmetric", ((1, 3, 4, 2),),
         lambda n, x: n.op("RESIZE_NEAREST_NEIGHBOR", [n.conv(x, 3), n.ints([6, 8])], (1, 6, 8, 3))),
    Case("resize_nearest_half_pixel", ((1, 3, 4, 2),),
         lambda n, x: n.op("RESIZE_NEAREST_NEIGHBOR", [n.conv(x, 3), n.ints([7, 9])], (1, 7, 9, 3),
                           halfPixelCenters=True)),
    Case("resize_nearest_align_corners", ((1, 3, 4, 2),),
         lambda n, x: n.op("RESIZE_NEAREST_NEIGHBOR", [n.conv(x, 3), n.ints([5, 7])], (1, 5, 7, 3),
                           alignCorners=True)),
    Case("resize_bilinear_asymmetric", ((1, 3, 4, 2),),
         lambda n, x: n.op("RESIZE_BILINEAR", [n.conv(x, 3), n.ints([6, 8])], (1, 6, 8, 3))),
    Case("resize_bilinear_half_pixel", ((1, 3, 4, 2),),
         lambda n, x: n.op("RESIZE_BILINEAR", [n.conv(x, 3), n.ints([7, 9])], (1, 7, 9, 3), halfPixelCenters=True)),
    Case("resize_bilinear_align_corners", ((1, 3, 4, 2),),
         lambda n, x: n.op("RESIZE_BILINEAR", [n.conv(x, 3), n.ints([5, 7])], (1, 5, 7, 3), alignCorners=True)),
    Case("depth_to_space", ((1, 3, 4, 3),),
         lambda n, x: n.op("DEPTH_TO_SPACE", [n.conv(x, 8)], (1, 6, 8, 2), blockSize=2)),
]

OTHER_BUILTINS = [
    Case("squeeze_excite", ((1, 4, 4, 3),), _squeeze_excite),
    Case("depthwise_dilation2", ((1, 7, 7, 3),),
         lambda n, x: n.op("DEPTHWISE_CONV_2D", [x, n.weights((1, 3, 3, 3)), n.weights((3,))], (1, 7, 7, 3),
                           padding=SAME, dilationHFactor=2, dilationWFactor=2)),
    Case("sub_div_max_min", ((1, 3, 4, 2), (1, 3, 4, 2)), _binaries),
    Case("unaries", ((1, 3, 4, 2),), _unaries),
    Case("strided_slice_after_conv", ((1, 6, 6, 3),),
         lambda n, x: n.op("STRIDED_SLICE", [n.conv(x, 4), n.ints([0, 1, 0, 1]), n.ints([1, 6, 5, 4]),
                                             n.ints([1, 2, 1, 1])], (1, 3, 5, 3))),
    Case("strided_slice_reversed_masks", ((2, 5, 3),),
         lambda n, x: n.op("STRIDED_SLICE", [x, n.ints([0, 0, 0]), n.ints([0, 0, 0]), n.ints([1, -1, 1])],
                           (2, 5, 3), beginMask=7, endMask=7)),
    Case("strided_slice_shrink", ((2, 5, 3),),
         lambda n, x: n.op("STRIDED_SLICE", [x, n.ints([0, -1, 0]), n.ints([2, 0, 3]), n.ints([1, 1, 1])],
                           (2, 3), shrinkAxisMask=2)),
    Case("slice_after_conv", ((1, 5, 5, 3),),
         lambda n, x: n.op("SLICE", [n.conv(x, 4), n.ints([0, 1, 2, 1]), n.ints([-1, 3, -1, 2])], (1, 3, 3, 2))),
    Case("split_channels_of_conv", ((1, 4, 4, 3),), _split),
    Case("transpose_after_conv", ((1, 3, 4, 2),),
         lambda n, x: n.op("TRANSPOSE", [n.conv(x, 5), n.ints([0, 3, 1, 2])], (1, 5, 3, 4))),
    Case("squeeze_and_expand_dims", ((2, 4, 4, 3),), _squeeze_expand),
    Case("elu_builtin_kernels", ((2, 7),), lambda n, x: n.op("ELU", [x], (2, 7)), LiteRTKernels.BUILTIN),
    Case("padv2_value", ((1, 3, 3, 2),),
         lambda n, x: n.op("PADV2", [n.conv(x, 2), n.ints([[0, 0], [1, 1], [2, 0], [0, 0]]),
                                     n.graph.tensor("v", (1,), "float32", data=np.array([-0.5], np.float32))],
                           (1, 5, 5, 2))),
    Case("space_to_depth", ((1, 4, 6, 2),),
         lambda n, x: n.op("SPACE_TO_DEPTH", [n.conv(x, 3)], (1, 2, 3, 12), blockSize=2)),
    Case("batch_matmul_adjoint", ((2, 3, 4), (2, 5, 4)),
         lambda n, x, y: n.op("BATCH_MATMUL", [x, y], (2, 3, 5), adjY=True)),
    Case("concatenation_with_constant", ((1, 3, 3, 2),),
         lambda n, x: n.op("CONCATENATION", [n.conv(x, 2), n.weights((1, 3, 3, 1))], (1, 3, 3, 3), axis=3)),
]

CASES = CONVOLUTIONS + ELEMENTWISE + SHAPES + OTHER_BUILTINS


# ---- running both -------------------------------------------------------------------------------------------------
def _model(case: Case, seed: int = 0) -> tuple[bytes, list[np.ndarray]]:
    """``case``'s .tflite and one seeded feed for it."""
    net = Net(seed)
    inputs = [net.input(shape) for shape in case.inputs]
    outputs = case.build(net, *inputs)
    payload = net.payload(list(outputs) if isinstance(outputs, tuple) else [outputs])
    rng = np.random.default_rng(1)
    return payload, [rng.uniform(-3.0, 3.0, size=shape).astype(np.float32) for shape in case.inputs]


def _run_onnx(conversion: TFLiteConversion, feeds: list[np.ndarray]) -> list[np.ndarray]:
    session = onnxruntime.InferenceSession(conversion.onnx, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, dict(zip(names, feeds, strict=True)))


def _assert_close(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert got.shape == expected.shape, f"{what}: ONNX shape {got.shape}, LiteRT {expected.shape}"
    assert got.dtype == expected.dtype, what
    scale = max(float(np.max(np.abs(expected))), 1e-6)
    difference = float(np.max(np.abs(got.astype(np.float64) - expected)))
    assert difference <= RELATIVE * scale, f"{what}: max |difference| {difference:.3g}, largest |output| {scale:.3g}"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_converted_model_matches_litert(case: Case) -> None:
    payload, feeds = _model(case)
    conversion = convert(payload, f"{case.name}.tflite")
    onnx.checker.check_model(onnx.load_from_string(conversion.onnx))
    expected = run_litert(payload, feeds, case.kernels)
    got = _run_onnx(conversion, feeds)
    assert len(got) == len(expected)
    for index, (mine, reference) in enumerate(zip(got, expected, strict=True)):
        _assert_close(mine, reference, f"{case.name} output {index}")


def test_conversion_reports_builtins_and_float16_weights() -> None:
    case = next(c for c in CASES if c.name == "float16_weights_dequantize")
    conversion = convert(_model(case)[0], "half.tflite")
    assert conversion.name == "half"
    assert conversion.builtins == {"CONV_2D": 1, "DEQUANTIZE": 3, "MUL": 1}
    assert conversion.float16_weights == 3


# ---- refusals -----------------------------------------------------------------------------------------------------
def test_quantized_model_is_refused() -> None:
    net = Net()
    x = net.input((1, 4))
    codes = net.graph.tensor("x/int8", (1, 4), "int8", QParams(0.05, 0))
    y = net.graph.tensor("y", (1, 4), "float32")
    net.graph.op("QUANTIZE", [x], [codes], "quantize")
    net.graph.op("DEQUANTIZE", [codes], [y], "dequantize")
    with pytest.raises(ModelFormatError, match=r"q\.tflite: already quantized \(tensor 'x/int8' is int8"):
        convert(net.payload([y]), "q.tflite")


def test_unknown_builtin_is_refused_by_name() -> None:
    net = Net()
    x = net.input((1, 4))
    y = net.op("CUMSUM", [x, net.ints(1)], (1, 4))
    with pytest.raises(ModelFormatError, match=r"cannot read TFLite builtin\(s\) CUMSUM x1"):
        convert(net.payload([y]), "cumsum.tflite")


@pytest.mark.parametrize("payload", [b"", b"not a model at all", b"\x00" * 4 + b"TFL3" + b"\xff" * 24],
                         ids=["empty", "text", "garbage_with_identifier"])
def test_bytes_that_are_not_a_tflite_are_refused(payload: bytes) -> None:
    with pytest.raises(ModelFormatError, match=r"junk\.tflite: .*(not a \.tflite model|not a valid \.tflite)"):
        convert(payload, "junk.tflite")


def test_conversion_check_refuses_a_differing_model() -> None:
    case = next(c for c in CASES if c.name == "conv_same_relu")
    payload, feeds = _model(case)
    other, _ = _model(case, seed=7)  # same inputs and outputs, other weights
    converted = convert(payload, "a.tflite").onnx
    feed = {"in0": feeds[0]}
    assert check_tflite_conversion(payload, converted, feed, "a.tflite") <= 1e-4
    with pytest.raises(ModelFormatError, match=r"b\.tflite: edgeact's ONNX form of this model differs from LiteRT on "
                                               r"output 'conv_2d0'"):
        check_tflite_conversion(other, converted, feed, "b.tflite")


def test_conversion_check_runs_ops_the_reference_resolver_lacks() -> None:
    """LiteRT's reference resolver has no ELU: the check falls back to its builtin kernels instead of refusing."""
    case = next(c for c in CASES if c.name == "elu_builtin_kernels")
    payload, feeds = _model(case)
    converted = convert(payload, "elu.tflite").onnx
    assert check_tflite_conversion(payload, converted, {"in0": feeds[0]}, "elu.tflite") <= 1e-4


# ---- end to end ---------------------------------------------------------------------------------------------------
def test_quantize_a_float_tflite_end_to_end(tmp_path: Path) -> None:
    net = Net()
    x = net.input((1, 8, 8, 3))
    y = net.conv(net.depthwise(net.conv(x, 8, stride=2, fused=RELU6), 1), 4)
    model = tmp_path / "small.tflite"
    model.write_bytes(net.payload([y]))
    calib = tmp_path / "calib"
    calib.mkdir()
    rng = np.random.default_rng(3)
    for shard in range(2):
        np.savez(calib / f"s{shard}.npz", in0=rng.uniform(-3, 3, size=(16, 8, 8, 3)).astype(np.float32))

    result = edgeact.quantize(model, calib=calib, output_dir=tmp_path / "out", formats=("tflite", "onnx-qdq"))

    assert result.record["frontend"]["kind"] == "tflite"
    assert set(result.paths) >= {"tflite", "onnx-qdq", "record"}
    (qdq_input,) = onnxruntime.InferenceSession(result.paths["onnx-qdq"].read_bytes()).get_inputs()
    assert qdq_input.shape == [1, 8, 8, 3]
    int8 = result.paths["tflite"].read_bytes()
    interpreter = litert_interpreter(int8, LiteRTKernels.REFERENCE)
    (detail,) = interpreter.get_input_details()
    assert tuple(detail["shape"]) == (1, 8, 8, 3) and detail["dtype"] == np.float32
    ops = [op["op_name"] for op in interpreter._get_ops_details()]  # noqa: SLF001
    assert ops.count("CONV_2D") == 2 and "TRANSPOSE" not in ops, ops  # int8 convs, NHWC throughout
    assert any(t["dtype"] == np.int8 for t in interpreter.get_tensor_details())
    sample = rng.uniform(-3, 3, size=(1, 8, 8, 3)).astype(np.float32)
    (reference,) = run_litert(model.read_bytes(), [sample], LiteRTKernels.REFERENCE)
    (quantized,) = run_litert(int8, [sample], LiteRTKernels.REFERENCE)
    assert quantized.shape == reference.shape == (1, 4, 4, 4)
    assert sqnr_db(reference, quantized) > 20.0


def _small_model(tmp_path: Path) -> Path:
    net = Net()
    x = net.input((1, 8, 8, 3))
    model = tmp_path / "small.tflite"
    model.write_bytes(net.payload([net.conv(x, 4, fused=RELU)]))
    return model


@pytest.mark.parametrize("case, expected", [
    ("nchw", r"calib/0\.npz: input 'in0': axis 1 must be 8 .*got shape \[1, 3, 8, 8\]"),
    ("float64", r"calib/0\.npz: .*'in0'.*float32.*float64"),
    ("wrong_name", r"calib/0\.npz: keys must be the model's inputs \['in0'\]; missing \['in0'\], unexpected "
                   r"\['images'\]"),
    ("nan_first", r"calib/0\.npz: sample 0 contains NaN or Inf"),
])
def test_bad_calibration_data_is_named_before_the_conversion_is_checked(tmp_path: Path, case: str,
                                                                        expected: str) -> None:
    """The data is checked (names, shapes, dtypes, NaN) before its first sample runs the conversion check: a wrong
    feed is the data's fault, named as for an ONNX model, never an internal error or a converter bug."""
    from click.testing import CliRunner

    from edgeact.cli import main

    model, calib = _small_model(tmp_path), tmp_path / "calib"
    calib.mkdir()
    x = np.random.default_rng(4).uniform(-1, 1, size=(1, 8, 8, 3)).astype(np.float32)
    if case == "nan_first":
        x[0, 0, 0, 0] = np.nan
    arrays = {"nchw": {"in0": x.transpose(0, 3, 1, 2)}, "float64": {"in0": x.astype(np.float64)},
              "wrong_name": {"images": x}, "nan_first": {"in0": x}}[case]
    np.savez(calib / "0.npz", **arrays)
    for command in (["quantize", str(model), "--calib", str(calib), "-o", str(tmp_path / "out")],
                    ["calibrate", str(model), "--calib", str(calib), "--stats-out", str(tmp_path / "s.json")]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 1, (command, result.output)
        assert re.search(expected, result.output), result.output
        assert "internal error" not in result.output and "Traceback" not in result.output


def test_a_nan_sample_skipped_on_request_is_not_the_one_checked(tmp_path: Path) -> None:
    model, calib = _small_model(tmp_path), tmp_path / "calib"
    calib.mkdir()
    x = np.random.default_rng(5).uniform(-1, 1, size=(4, 8, 8, 3)).astype(np.float32)
    x[0, 1, 1, 1] = np.inf
    np.savez(calib / "0.npz", in0=x)
    result = edgeact.quantize(model, calib=calib, formats=("tflite",), skip_bad_samples=True)
    assert result.record["frontend"]["checked_against"].startswith("LiteRT reference kernels on the first "
                                                                   "calibration sample")


def test_a_tflite_in_gives_a_tflite_out_by_default(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from edgeact.cli import main

    model, calib = _small_model(tmp_path), tmp_path / "calib.npz"
    np.savez(calib, in0=np.random.default_rng(6).uniform(-1, 1, size=(8, 8, 8, 3)).astype(np.float32))
    result = CliRunner().invoke(main, ["quantize", str(model), "--calib", str(calib), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["small.calibration.json", "small.int8.tflite"]


def test_profile_device_says_which_file_is_the_float_one(tmp_path: Path) -> None:
    """MODEL and --baseline swapped: each message says which role the file has and what it should be."""
    model, calib = _small_model(tmp_path), tmp_path / "calib.npz"
    np.savez(calib, in0=np.random.default_rng(7).uniform(-1, 1, size=(8, 8, 8, 3)).astype(np.float32))
    int8 = edgeact.quantize(model, calib=calib, output_dir=tmp_path / "out").paths["tflite"]
    with pytest.raises(edgeact.errors.UsageError, match=r"small\.tflite holds no int8 or int16 tensor: it is a float "
                                                        r"model\. Give the int8 \.tflite"):
        edgeact.profile_device(model, "litert", model, calib)
    with pytest.raises(ModelFormatError, match=r"--baseline: .*small\.int8\.tflite: already quantized"):
        edgeact.profile_device(int8, "litert", int8, calib)
    report = edgeact.profile_device(int8, "litert", model, calib, per_layer=True)
    assert report.outputs and not [w for w in report.warnings if "not the baseline" in w], report.warnings


def test_drift_reads_a_tflite_and_measures_each_number_once(tmp_path: Path) -> None:
    """The ONNX form lays the NHWC input out as NCHW (a Transpose on the input's grid): drift measures the input
    once, not its transposed copy, and the ReLU-folded conv output as the ReLU output."""
    model, calib = _small_model(tmp_path), tmp_path / "calib.npz"
    np.savez(calib, in0=np.random.default_rng(8).uniform(-1, 1, size=(64, 8, 8, 3)).astype(np.float32))
    record = edgeact.quantize(model, calib=calib, output_dir=tmp_path / "out").paths["record"]
    report = edgeact.drift(model, calib, record, calib=calib)
    measured = {tensor.tensor for tensor in report.tensors}
    assert "in0" in measured and "in0/nchw" not in measured, measured  # the transposed copy of the input
    assert len(measured & {"conv_2d0", "conv_2d0/nchw"}) == 1, measured  # the ReLU output, once (its NHWC copy not)
    assert not any(name.endswith("pre_activation") for name in measured), measured  # folded into the ReLU's grid
    assert not report.drifted, report.findings


DIGITS = Path(__file__).resolve().parents[1] / "examples" / "digits"


@pytest.mark.parametrize("name", ["mlp_tanh", "cnn_silu", "transformer_gelu", "lstm"])
def test_a_float_tflite_edgeact_writes_quantizes_like_its_onnx(name: str, tmp_path: Path) -> None:
    """The digits models' float .tflite (``--float-tflite``: TRANSPOSE at an NCHW input, SiLU as LOGISTIC x MUL,
    LayerNorm as MEAN/SQUARED_DIFFERENCE/RSQRT, the unrolled LSTM's GATHERs with scalar indices) read back and
    quantized: the int8 .tflite scores as the one quantized from the ONNX model does. The LSTM's cells stay int8
    from a .tflite (its cell tags come from unrolling an ONNX LSTM), so it gets a floor instead."""
    calib, evaluation = DIGITS / f"{name}.calib.npz", np.load(DIGITS / f"{name}.eval.npz")
    direct = edgeact.quantize(DIGITS / f"{name}.onnx", calib, formats=["tflite"], float_tflite=True,
                              output_dir=tmp_path / "onnx", recurrent_cells="int8")
    again = edgeact.quantize(direct.paths["fp32-tflite"], calib, output_dir=tmp_path / "tflite")
    feeds = {key: evaluation[key][:64] for key in evaluation.files}
    reference = onnxruntime.InferenceSession(str(DIGITS / f"{name}.onnx")).run(None, feeds)[0]

    def score(path: Path) -> float:
        rows = [run_litert(path.read_bytes(), [feeds[k][i:i + 1] for k in evaluation.files])[0] for i in range(64)]
        return sqnr_db(reference, np.concatenate(rows).reshape(reference.shape))

    assert score(again.paths["tflite"]) > score(direct.paths["tflite"]) - 0.5


class _CustomOpBuilder(TFLiteModelBuilder):
    """edgeact's writer, with its CUSTOM operator code carrying a custom code (as MediaPipe's models do)."""

    @staticmethod
    def _write_opcode(b, op: str) -> int:  # type: ignore[no-untyped-def]
        if op != "CUSTOM":
            return TFLiteModelBuilder._write_opcode(b, op)
        code = schema_module("OperatorCode")
        name = b.CreateString("Convolution2DTransposeBias")
        code.Start(b)
        code.AddDeprecatedBuiltinCode(b, builtin_operator_code("CUSTOM"))
        code.AddBuiltinCode(b, builtin_operator_code("CUSTOM"))
        code.AddCustomCode(b, name)
        code.AddVersion(b, 1)
        return code.End(b)


def test_a_custom_op_is_refused_by_its_code() -> None:
    builder = _CustomOpBuilder()
    x = builder.add_tensor("x", (1, 4), "float32")
    y = builder.add_tensor("y", (1, 4), "float32")
    builder.add_operator("CUSTOM", [x], [y])
    builder.set_inputs([x])
    builder.set_outputs([y])
    with pytest.raises(ModelFormatError, match=r"seg\.tflite: edgeact cannot read TFLite builtin\(s\) CUSTOM "
                                               r"Convolution2DTransposeBias x1 yet \(a custom op"):
        convert(builder.build(), "seg.tflite")


class _TransposeConvBuilder(TFLiteModelBuilder):
    """edgeact's writer plus TRANSPOSE_CONV's options table (edgeact writes no TRANSPOSE_CONV itself)."""

    def add_operator(self, op: str, inputs: list[int], outputs: list[int], **options: object) -> None:
        if op != "TRANSPOSE_CONV":
            super().add_operator(op, inputs, outputs, **options)
            return
        self._operators.append(writer_module._Operator(op, tuple(inputs), tuple(outputs), dict(options)))

    @staticmethod
    def _write_options(b, op):  # type: ignore[no-untyped-def]
        if op.op != "TRANSPOSE_CONV":
            return TFLiteModelBuilder._write_options(b, op)
        table = schema_module("TransposeConvOptions")
        table.Start(b)
        table.AddPadding(b, op.options["padding"])
        table.AddStrideW(b, op.options["stride"])
        table.AddStrideH(b, op.options["stride"])
        return builtin_options_code("TransposeConvOptions"), table.End(b)


@pytest.mark.parametrize("padding, size, stride, kernel, longer", [
    (SAME, 4, 2, 3, 0), (VALID, 4, 2, 3, 0), (SAME, 5, 2, 4, 0), (VALID, 3, 1, 2, 0), (VALID, 4, 2, 3, 1)])
def test_transpose_conv_matches_litert(padding: int, size: int, stride: int, kernel: int, longer: int) -> None:
    """SAME with an odd total of padding (its odd pixel at the end, as TFLite puts it), and an output one pixel
    longer than the input reaches."""
    rng = np.random.default_rng(9)
    out = (size * stride if padding == SAME else (size - 1) * stride + kernel) + longer
    builder = _TransposeConvBuilder()
    x = builder.add_tensor("x", (1, size, size, 3), "float32")
    shape = builder.add_constant("shape", np.asarray([1, out, out, 5], np.int32))
    weights = builder.add_constant("w", rng.normal(size=(5, kernel, kernel, 3)).astype(np.float32))
    bias = builder.add_constant("b", rng.normal(size=(5,)).astype(np.float32))
    y = builder.add_tensor("y", (1, out, out, 5), "float32")
    builder.add_operator("TRANSPOSE_CONV", [shape, weights, x, bias], [y], padding=padding, stride=stride)
    builder.set_inputs([x])
    builder.set_outputs([y])
    payload = builder.build()
    feed = rng.uniform(-2, 2, size=(1, size, size, 3)).astype(np.float32)
    (expected,) = run_litert(payload, [feed], LiteRTKernels.REFERENCE)
    (got,) = _run_onnx(convert(payload, "deconv.tflite"), [feed])
    _assert_close(got, expected, f"TRANSPOSE_CONV padding {padding}")
