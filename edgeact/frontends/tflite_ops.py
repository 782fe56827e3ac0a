"""How each TFLite builtin is written in ONNX: one converter per builtin, registered in :data:`CONVERTERS`.

TFLite stores rank-4 activations channels-last (NHWC); ONNX's Conv, pooling, Resize and DepthToSpace read NCHW. A
:class:`Builder` keeps every tensor in one or both layouts and converts once, on demand (a Transpose, or for a
constant its data): convolution-like ops ask for NCHW, shape ops (RESHAPE, FULLY_CONNECTED, SOFTMAX, ...) for the
TFLite layout, elementwise ops take their inputs in the layout they already have. The model's inputs and outputs
keep the .tflite's layout, so its data feeds the ONNX model unchanged. Adding a builtin is one function and one row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeact.errors import ModelFormatError
from edgeact.tflite.graph import LoweredGraph, LoweredOp

NATIVE, NCHW = "native", "nchw"  # the .tflite's own layout; channels-first (rank-4 tensors only)
TO_NCHW, TO_NHWC = (0, 3, 1, 2), (0, 2, 3, 1)
# TFLite's fusedActivationFunction codes -> the ONNX op (and attributes) applied after the op
FUSED = {1: ("Relu", {}), 2: ("Clip", {"min": -1.0, "max": 1.0}), 3: ("Clip", {"min": 0.0, "max": 6.0}),
         4: ("Tanh", {})}
INT64 = np.iinfo(np.int64)
ONNX_DTYPES = {"float32": TensorProto.FLOAT, "int32": TensorProto.INT32, "int64": TensorProto.INT64,
               "bool": TensorProto.BOOL}


@dataclass
class Builder:
    """The ONNX graph being written from a lowered TFLite graph ``graph`` (read from ``source``)."""

    graph: LoweredGraph
    source: str
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)
    forms: dict[tuple[int, str], str] = field(default_factory=dict)  # (tensor, layout) -> ONNX value name
    folded: dict[int, np.ndarray] = field(default_factory=dict)  # tensors computed here (float16 weights)
    names: set[str] = field(default_factory=set)

    # ---- names and constants ------------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        """A value name not used yet, ``base`` when free."""
        name, suffix = base, 1
        while name in self.names:
            suffix += 1
            name = f"{base}_{suffix}"
        self.names.add(name)
        return name

    def label(self, index: int) -> str:
        return self.graph.tensors[index].name or f"tensor{index}"

    def data(self, index: int) -> np.ndarray | None:
        """Tensor ``index``'s constant value (float16 weights as float32), or None for an activation."""
        if index in self.folded:
            return self.folded[index]
        data = self.graph.tensors[index].data
        if data is None:
            return None
        return data.astype(np.float32) if data.dtype == np.float16 else data

    def constant(self, name: str, value: Any, dtype: Any = None) -> str:
        array = np.asarray(value, dtype=dtype)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        name = self.fresh(name)
        self.initializers.append(numpy_helper.from_array(np.array(array, order="C"), name))  # keeps 0-d 0-d
        return name

    def shape(self, index: int) -> tuple[int, ...]:
        return self.graph.tensors[index].shape

    def rank(self, index: int) -> int:
        return len(self.shape(index))

    # ---- values in a layout -------------------------------------------------------------------------------
    def layouts(self, index: int) -> set[str]:
        return {layout for (i, layout) in self.forms if i == index}

    def get(self, index: int, layout: str = NATIVE) -> str:
        """The ONNX value of tensor ``index`` in ``layout``, converting once from a form that exists."""
        if (index, layout) in self.forms:
            return self.forms[(index, layout)]
        value = self.data(index)
        label = self.label(index)
        if value is not None:
            data = np.transpose(value, TO_NCHW) if layout == NCHW else value
            self.forms[(index, layout)] = self.constant(label + ("/nchw" if layout == NCHW else ""), data)
        elif layout == NCHW:
            self.forms[(index, NCHW)] = self.node("Transpose", [self.get(index)], label + "/nchw", perm=TO_NCHW)
        elif (index, NCHW) in self.forms:
            self.forms[(index, NATIVE)] = self.node("Transpose", [self.forms[(index, NCHW)]], label, perm=TO_NHWC)
        else:
            raise ModelFormatError(f"{self.source}: tensor {index} ({label!r}) is read before any op writes it")
        return self.forms[(index, layout)]

    def preferred(self, index: int) -> str:
        """The layout an elementwise op reads ``index`` in: NCHW where that form exists already."""
        return NCHW if (index, NCHW) in self.forms else NATIVE

    # ---- nodes --------------------------------------------------------------------------------------------
    def node(self, op_type: str, inputs: list[str], output: str, **attributes: Any) -> str:
        """Add a node with one output named from ``output``; returns the output's name."""
        name = self.fresh(output)
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=f"{name}/{op_type}", **attributes))
        return name

    def emit(self, op: LoweredOp, op_type: str, inputs: list[str], layout: str, **attributes: Any) -> None:
        """Write ``op``'s (single) output as ``op_type`` in ``layout``, then its fused activation, if any."""
        out = op.outputs[0]
        fused = int(op.options.get("fusedActivationFunction", 0) or 0)
        if fused and fused not in FUSED:
            raise ModelFormatError(f"{self.source}: {op.op} ({op.node}) has fused activation code {fused}, which "
                                   "edgeact cannot convert")
        label = self.label(out) + ("/nchw" if layout == NCHW and out in self.graph.outputs else "")
        value = self.node(op_type, inputs, label + ("/pre_activation" if fused else ""), **attributes)
        if fused:
            activation, extra = FUSED[fused]
            extra_inputs = []
            if activation == "Clip":
                extra_inputs = [self.constant(f"{label}/min", np.float32(extra["min"])),
                                self.constant(f"{label}/max", np.float32(extra["max"]))]
            value = self.node(activation, [value, *extra_inputs], label)
        self.forms[(out, layout)] = value

    def same_layout(self, indices: list[int]) -> str:
        """NCHW when every operand is rank 4 (or a constant that broadcasts) and one is NCHW already."""
        variable = [i for i in indices if self.data(i) is None]
        if any(self.preferred(i) == NCHW for i in variable) and all(
                self.rank(i) == 4 for i in variable) and all(self.rank(i) <= 4 for i in indices):
            return NCHW
        return NATIVE

    def operand(self, index: int, layout: str) -> str:
        """Tensor ``index`` read by an elementwise op in ``layout``: a constant of lower rank broadcasts against
        the TFLite layout, so it is padded to rank 4 before it is transposed."""
        value = self.data(index)
        if layout == NCHW and value is not None and value.ndim < 4:
            padded = value.reshape((1,) * (4 - value.ndim) + value.shape)
            return self.constant(self.label(index) + "/nchw", np.transpose(padded, TO_NCHW))
        return self.get(index, layout)


# ---- padding ------------------------------------------------------------------------------------------------------
def same_pads(in_size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite's SAME padding along one axis (the odd pixel at the end)."""
    out = -(-in_size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - in_size, 0)
    return total // 2, total - total // 2


def spatial_pads(b: Builder, op: LoweredOp, kernel: tuple[int, int], dilation: tuple[int, int] = (1, 1)
                 ) -> list[int]:
    """ONNX ``pads`` [top, left, bottom, right] for ``op``'s padding option (0 SAME, 1 VALID)."""
    if int(op.options.get("padding", 1)) != 0:
        return [0, 0, 0, 0]
    _, height, width, _ = b.shape(op.inputs[0])
    stride = (int(op.options.get("strideH", 1)), int(op.options.get("strideW", 1)))
    top, bottom = same_pads(height, kernel[0], stride[0], dilation[0])
    left, right = same_pads(width, kernel[1], stride[1], dilation[1])
    return [top, left, bottom, right]


# ---- converters ---------------------------------------------------------------------------------------------------
def conv_2d(b: Builder, op: LoweredOp) -> None:
    weights = b.data(op.inputs[1])  # [O, H, W, I]
    if weights is None:
        raise ModelFormatError(f"{b.source}: CONV_2D ({op.node}) has non-constant weights")
    dilation = (int(op.options.get("dilationHFactor", 1)), int(op.options.get("dilationWFactor", 1)))
    group = b.shape(op.inputs[0])[3] // weights.shape[3]
    inputs = [b.get(op.inputs[0], NCHW), b.constant(b.label(op.inputs[1]) + "/oihw", np.transpose(weights, TO_NCHW))]
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        inputs.append(b.get(op.inputs[2]))
    b.emit(op, "Conv", inputs, NCHW, kernel_shape=list(weights.shape[1:3]),
           strides=[int(op.options.get("strideH", 1)), int(op.options.get("strideW", 1))],
           dilations=list(dilation), pads=spatial_pads(b, op, weights.shape[1:3], dilation), group=group)


def depthwise_conv_2d(b: Builder, op: LoweredOp) -> None:
    weights = b.data(op.inputs[1])  # [1, H, W, C * multiplier]
    if weights is None:
        raise ModelFormatError(f"{b.source}: DEPTHWISE_CONV_2D ({op.node}) has non-constant weights")
    dilation = (int(op.options.get("dilationHFactor", 1)), int(op.options.get("dilationWFactor", 1)))
    oihw = np.transpose(weights, (3, 0, 1, 2))
    inputs = [b.get(op.inputs[0], NCHW), b.constant(b.label(op.inputs[1]) + "/oihw", oihw)]
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        inputs.append(b.get(op.inputs[2]))
    b.emit(op, "Conv", inputs, NCHW, kernel_shape=list(weights.shape[1:3]),
           strides=[int(op.options.get("strideH", 1)), int(op.options.get("strideW", 1))],
           dilations=list(dilation), pads=spatial_pads(b, op, weights.shape[1:3], dilation),
           group=b.shape(op.inputs[0])[3])


def transpose_conv(b: Builder, op: LoweredOp) -> None:
    weights = b.data(op.inputs[1])  # [O, H, W, I]
    if weights is None:
        raise ModelFormatError(f"{b.source}: TRANSPOSE_CONV ({op.node}) has non-constant weights")
    _, height, width, _ = b.shape(op.inputs[2])
    _, out_h, out_w, _ = b.shape(op.outputs[0])
    stride = (int(op.options.get("strideH", 1)), int(op.options.get("strideW", 1)))
    pads, extra = [], []
    for size, out, kernel, step in ((height, out_h, weights.shape[1], stride[0]),
                                    (width, out_w, weights.shape[2], stride[1])):
        total = (size - 1) * step + kernel - out  # TFLite: the odd pixel of padding at the end
        pads.append((max(total, 0) // 2, max(total, 0) - max(total, 0) // 2))
        extra.append(max(-total, 0))  # an output longer than the input reaches: zeros + bias at the end
    inputs = [b.get(op.inputs[2], NCHW), b.constant(b.label(op.inputs[1]) + "/iohw",
                                                    np.transpose(weights, (3, 0, 1, 2)))]
    if len(op.inputs) > 3 and op.inputs[3] >= 0:
        inputs.append(b.get(op.inputs[3]))
    # explicit pads, no output_shape: given output_shape, ONNX puts the odd pixel of padding at the start
    b.emit(op, "ConvTranspose", inputs, NCHW, kernel_shape=list(weights.shape[1:3]), strides=list(stride),
           pads=[pads[0][0], pads[1][0], pads[0][1], pads[1][1]], output_padding=extra)


def pool_2d(op_type: str) -> Callable[[Builder, LoweredOp], None]:
    def convert(b: Builder, op: LoweredOp) -> None:
        kernel = (int(op.options.get("filterHeight", 1)), int(op.options.get("filterWidth", 1)))
        extra = {"count_include_pad": 0} if op_type == "AveragePool" else {}
        b.emit(op, op_type, [b.get(op.inputs[0], NCHW)], NCHW, kernel_shape=list(kernel),
               strides=[int(op.options.get("strideH", 1)), int(op.options.get("strideW", 1))],
               pads=spatial_pads(b, op, kernel), **extra)
    return convert


def binary(op_type: str) -> Callable[[Builder, LoweredOp], None]:
    def convert(b: Builder, op: LoweredOp) -> None:
        layout = b.same_layout(list(op.inputs))
        b.emit(op, op_type, [b.operand(i, layout) for i in op.inputs], layout)
    return convert


def squared_difference(b: Builder, op: LoweredOp) -> None:
    layout = b.same_layout(list(op.inputs))
    difference = b.node("Sub", [b.operand(i, layout) for i in op.inputs], b.label(op.outputs[0]) + "/difference")
    b.emit(op, "Mul", [difference, difference], layout)


def unary(op_type: str, **attributes: Any) -> Callable[[Builder, LoweredOp], None]:
    def convert(b: Builder, op: LoweredOp) -> None:
        layout = b.preferred(op.inputs[0])
        b.emit(op, op_type, [b.get(op.inputs[0], layout)], layout, **attributes)
    return convert


def clip(low: float, high: float) -> Callable[[Builder, LoweredOp], None]:
    def convert(b: Builder, op: LoweredOp) -> None:
        layout = b.preferred(op.inputs[0])
        label = b.label(op.outputs[0])
        b.emit(op, "Clip", [b.get(op.inputs[0], layout), b.constant(f"{label}/min", np.float32(low)),
                            b.constant(f"{label}/max", np.float32(high))], layout)
    return convert


def leaky_relu(b: Builder, op: LoweredOp) -> None:
    layout = b.preferred(op.inputs[0])
    b.emit(op, "LeakyRelu", [b.get(op.inputs[0], layout)], layout, alpha=float(op.options.get("alpha", 0.2)))


def gelu(b: Builder, op: LoweredOp) -> None:
    layout = b.preferred(op.inputs[0])
    b.emit(op, "Gelu", [b.get(op.inputs[0], layout)], layout,
           approximate="tanh" if op.options.get("approximate") else "none")


def prelu(b: Builder, op: LoweredOp) -> None:
    layout = b.same_layout(list(op.inputs))
    b.emit(op, "PRelu", [b.operand(i, layout) for i in op.inputs], layout)


def dequantize(b: Builder, op: LoweredOp) -> None:
    """float16 weights -> float32, folded into a constant; anything else is a quantized model."""
    tensor = b.graph.tensors[op.inputs[0]]
    if tensor.dtype != "float16" or tensor.data is None:
        raise ModelFormatError(
            f"{b.source}: already quantized (DEQUANTIZE of a {tensor.dtype} tensor {tensor.name!r}); edgeact "
            "quantizes float32 models (float16 weights are fine): give the float model this one came from")
    b.folded[op.outputs[0]] = tensor.data.astype(np.float32)


def pad(b: Builder, op: LoweredOp) -> None:
    paddings = b.data(op.inputs[1])
    if paddings is None:
        raise ModelFormatError(f"{b.source}: {op.op} ({op.node}) has non-constant paddings")
    layout = b.preferred(op.inputs[0]) if b.rank(op.inputs[0]) == 4 else NATIVE
    rows = paddings[list(TO_NCHW)] if layout == NCHW else paddings
    inputs = [b.get(op.inputs[0], layout), b.constant(b.label(op.outputs[0]) + "/pads",
                                                      np.concatenate([rows[:, 0], rows[:, 1]]), np.int64)]
    if op.op == "PADV2" and len(op.inputs) > 2:
        inputs.append(b.get(op.inputs[2]))
    b.emit(op, "Pad", inputs, layout)


def concatenation(b: Builder, op: LoweredOp) -> None:
    axis = int(op.options.get("axis", 0)) % b.rank(op.outputs[0])
    layout = b.same_layout(list(op.inputs))
    if layout == NCHW:
        axis = TO_NCHW.index(axis)
    b.emit(op, "Concat", [b.operand(i, layout) if b.data(i) is None else b.get(i, layout) for i in op.inputs],
           layout, axis=axis)


def reshape(b: Builder, op: LoweredOp) -> None:
    """RESHAPE, SQUEEZE, EXPAND_DIMS: to the output tensor's static shape."""
    shape = b.constant(b.label(op.outputs[0]) + "/shape", b.shape(op.outputs[0]), np.int64)
    b.emit(op, "Reshape", [b.get(op.inputs[0]), shape], NATIVE)


def fully_connected(b: Builder, op: LoweredOp) -> None:
    weights = b.data(op.inputs[1])  # [O, I]
    x = b.get(op.inputs[0])
    label = b.label(op.outputs[0])
    if weights is None or weights.ndim != 2:
        raise ModelFormatError(f"{b.source}: FULLY_CONNECTED ({op.node}) needs constant 2-D weights")
    if b.rank(op.inputs[0]) != 2 or b.shape(op.inputs[0])[-1] != weights.shape[1]:
        x = b.node("Reshape", [x, b.constant(f"{label}/rows", [-1, weights.shape[1]], np.int64)], f"{label}/rows")
    inputs = [x, b.get(op.inputs[1])]
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        inputs.append(b.get(op.inputs[2]))
    if b.rank(op.outputs[0]) == 2:
        b.emit(op, "Gemm", inputs, NATIVE, transB=1)
        return
    flat = b.node("Gemm", inputs, f"{label}/flat", transB=1)  # the fused activation follows the Reshape
    b.emit(op, "Reshape", [flat, b.constant(f"{label}/shape", b.shape(op.outputs[0]), np.int64)], NATIVE)


def batch_matmul(b: Builder, op: LoweredOp) -> None:
    inputs = []
    for index, flag in zip(op.inputs[:2], ("adjX", "adjY"), strict=True):
        value = b.get(index)
        if op.options.get(flag):
            perm = list(range(b.rank(index)))
            perm[-2:] = perm[-1], perm[-2]
            value = b.node("Transpose", [value], b.label(index) + "/adjoint", perm=perm)
        inputs.append(value)
    b.emit(op, "MatMul", inputs, NATIVE)


def mean(b: Builder, op: LoweredOp) -> None:
    axes = b.data(op.inputs[1])
    if axes is None:
        raise ModelFormatError(f"{b.source}: MEAN ({op.node}) has non-constant axes")
    rank = b.rank(op.inputs[0])
    axes = sorted({int(a) % rank for a in np.ravel(axes)})
    keep = bool(op.options.get("keepDims", False))
    layout = b.preferred(op.inputs[0]) if rank == 4 and keep else NATIVE
    mapped = [TO_NCHW.index(a) for a in axes] if layout == NCHW else axes
    b.emit(op, "ReduceMean", [b.get(op.inputs[0], layout),
                              b.constant(b.label(op.outputs[0]) + "/axes", mapped, np.int64)], layout,
           keepdims=int(keep))


def softmax(b: Builder, op: LoweredOp) -> None:
    beta = float(op.options.get("beta", 1.0))
    layout = b.preferred(op.inputs[0]) if b.rank(op.inputs[0]) == 4 else NATIVE
    x = b.get(op.inputs[0], layout)
    if beta != 1.0:
        label = b.label(op.outputs[0])
        x = b.node("Mul", [x, b.constant(f"{label}/beta", np.float32(beta))], f"{label}/scaled")
    b.emit(op, "Softmax", [x], layout, axis=1 if layout == NCHW else -1)


def resize(mode: str) -> Callable[[Builder, LoweredOp], None]:
    def convert(b: Builder, op: LoweredOp) -> None:
        align, half = bool(op.options.get("alignCorners")), bool(op.options.get("halfPixelCenters"))
        if mode == "nearest":
            transform, nearest = (("align_corners", "round_prefer_ceil") if align else
                                  ("tf_half_pixel_for_nn", "floor") if half else ("asymmetric", "floor"))
            extra = {"nearest_mode": nearest}
        else:
            transform = "align_corners" if align else "half_pixel" if half else "asymmetric"
            extra = {}
        n, height, width, c = b.shape(op.outputs[0])
        sizes = b.constant(b.label(op.outputs[0]) + "/sizes", [n, c, height, width], np.int64)
        b.emit(op, "Resize", [b.get(op.inputs[0], NCHW), "", "", sizes], NCHW, mode=mode,
               coordinate_transformation_mode=transform, **extra)
    return convert


def depth_space(op_type: str) -> Callable[[Builder, LoweredOp], None]:
    def convert(b: Builder, op: LoweredOp) -> None:
        extra = {"mode": "DCR"} if op_type == "DepthToSpace" else {}
        b.emit(op, op_type, [b.get(op.inputs[0], NCHW)], NCHW, blocksize=int(op.options.get("blockSize", 2)),
               **extra)
    return convert


def transpose(b: Builder, op: LoweredOp) -> None:
    perm = b.data(op.inputs[1])
    if perm is None:
        raise ModelFormatError(f"{b.source}: TRANSPOSE ({op.node}) has a non-constant permutation")
    b.emit(op, "Transpose", [b.get(op.inputs[0])], NATIVE, perm=[int(p) for p in np.ravel(perm)])


def strided_slice(b: Builder, op: LoweredOp) -> None:
    begin, end, strides = (b.data(i) for i in op.inputs[1:4])
    if begin is None or end is None or strides is None:
        raise ModelFormatError(f"{b.source}: STRIDED_SLICE ({op.node}) has non-constant begin/end/strides")
    if op.options.get("ellipsisMask") or op.options.get("newAxisMask"):
        raise ModelFormatError(f"{b.source}: STRIDED_SLICE ({op.node}) with an ellipsis or new-axis mask")
    begin_mask, end_mask = int(op.options.get("beginMask", 0)), int(op.options.get("endMask", 0))
    shape = b.shape(op.inputs[0])
    starts, ends = [], []
    for axis, (start, stop, step) in enumerate(zip(np.ravel(begin), np.ravel(end), np.ravel(strides), strict=True)):
        # a masked bound is the far end in the step's direction (ONNX clamps it); -int64.min would overflow
        first, last = (INT64.min, INT64.max) if step > 0 else (INT64.max, INT64.min)
        starts.append(first if begin_mask >> axis & 1 else int(start))
        ends.append(last if end_mask >> axis & 1 else int(stop))
        if op.options.get("shrinkAxisMask", 0) >> axis & 1:
            ends[-1] = int(start) + 1 if int(start) != -1 else shape[axis]
    label = b.label(op.outputs[0])
    count = len(starts)
    sliced = b.node("Slice", [b.get(op.inputs[0]), b.constant(f"{label}/starts", starts, np.int64),
                              b.constant(f"{label}/ends", ends, np.int64),
                              b.constant(f"{label}/axes", list(range(count)), np.int64),
                              b.constant(f"{label}/steps", np.ravel(strides), np.int64)], f"{label}/slice")
    b.emit(op, "Reshape", [sliced, b.constant(f"{label}/shape", b.shape(op.outputs[0]), np.int64)], NATIVE)


def slice_(b: Builder, op: LoweredOp) -> None:
    begin, size = b.data(op.inputs[1]), b.data(op.inputs[2])
    if begin is None or size is None:
        raise ModelFormatError(f"{b.source}: SLICE ({op.node}) has non-constant begin/size")
    shape = b.shape(op.inputs[0])
    ends = [dim if int(s) == -1 else int(a) + int(s) for a, s, dim in zip(np.ravel(begin), np.ravel(size), shape,
                                                                             strict=True)]
    label = b.label(op.outputs[0])
    b.emit(op, "Slice", [b.get(op.inputs[0]), b.constant(f"{label}/starts", np.ravel(begin), np.int64),
                         b.constant(f"{label}/ends", ends, np.int64)], NATIVE)


def split(b: Builder, op: LoweredOp) -> None:
    """SPLIT (axis, x) and SPLIT_V (x, sizes, axis): outputs in the TFLite layout."""
    x, axis_index = (op.inputs[1], op.inputs[0]) if op.op == "SPLIT" else (op.inputs[0], op.inputs[2])
    axis = int(np.ravel(b.data(axis_index))[0]) % b.rank(x)
    sizes = [b.shape(out)[axis] for out in op.outputs]
    names = [b.fresh(b.label(out)) for out in op.outputs]
    b.nodes.append(helper.make_node("Split", [b.get(x), b.constant(f"{names[0]}/sizes", sizes, np.int64)], names,
                                    name=f"{names[0]}/Split", axis=axis))
    for out, name in zip(op.outputs, names, strict=True):
        b.forms[(out, NATIVE)] = name


def gather(b: Builder, op: LoweredOp) -> None:
    b.emit(op, "Gather", [b.get(op.inputs[0]), b.get(op.inputs[1])], NATIVE, axis=int(op.options.get("axis", 0)))


def cast(b: Builder, op: LoweredOp) -> None:
    dtype = b.graph.tensors[op.outputs[0]].dtype
    if dtype not in ONNX_DTYPES:
        raise ModelFormatError(f"{b.source}: CAST ({op.node}) to {dtype}, which edgeact cannot convert")
    layout = b.preferred(op.inputs[0])
    b.emit(op, "Cast", [b.get(op.inputs[0], layout)], layout, to=ONNX_DTYPES[dtype])


CONVERTERS: dict[str, Callable[[Builder, LoweredOp], None]] = {
    "CONV_2D": conv_2d, "DEPTHWISE_CONV_2D": depthwise_conv_2d, "TRANSPOSE_CONV": transpose_conv,
    "MAX_POOL_2D": pool_2d("MaxPool"), "AVERAGE_POOL_2D": pool_2d("AveragePool"),
    "FULLY_CONNECTED": fully_connected, "BATCH_MATMUL": batch_matmul,
    "ADD": binary("Add"), "SUB": binary("Sub"), "MUL": binary("Mul"), "DIV": binary("Div"),
    "MAXIMUM": binary("Max"), "MINIMUM": binary("Min"), "POW": binary("Pow"),
    "SQUARED_DIFFERENCE": squared_difference,
    "RELU": unary("Relu"), "RELU6": clip(0.0, 6.0), "RELU_N1_TO_1": clip(-1.0, 1.0), "RELU_0_TO_1": clip(0.0, 1.0),
    "LOGISTIC": unary("Sigmoid"), "TANH": unary("Tanh"), "HARD_SWISH": unary("HardSwish"), "ELU": unary("Elu"),
    "EXP": unary("Exp"), "LOG": unary("Log"), "SQRT": unary("Sqrt"), "ABS": unary("Abs"), "NEG": unary("Neg"),
    "RSQRT": lambda b, op: _rsqrt(b, op), "LEAKY_RELU": leaky_relu, "GELU": gelu, "PRELU": prelu,
    "DEQUANTIZE": dequantize, "PAD": pad, "PADV2": pad, "CONCATENATION": concatenation,
    "RESHAPE": reshape, "SQUEEZE": reshape, "EXPAND_DIMS": reshape, "MEAN": mean, "SOFTMAX": softmax,
    "RESIZE_BILINEAR": resize("linear"), "RESIZE_NEAREST_NEIGHBOR": resize("nearest"),
    "DEPTH_TO_SPACE": depth_space("DepthToSpace"), "SPACE_TO_DEPTH": depth_space("SpaceToDepth"),
    "TRANSPOSE": transpose, "STRIDED_SLICE": strided_slice, "SLICE": slice_, "SPLIT": split, "SPLIT_V": split,
    "GATHER": gather, "CAST": cast,
}


def _rsqrt(b: Builder, op: LoweredOp) -> None:
    layout = b.preferred(op.inputs[0])
    root = b.node("Sqrt", [b.get(op.inputs[0], layout)], b.label(op.outputs[0]) + "/sqrt")
    b.emit(op, "Reciprocal", [root], layout)


# options of the builtins converted here that edgeact itself never writes (the reader's table has the others)
IMPORT_OPTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "TRANSPOSE_CONV": ("TransposeConvOptions", {"padding": 1, "strideW": 1, "strideH": 1,
                                                "fusedActivationFunction": 0}),
}
