"""Small ONNX models built in code, spelled as real exporters write them (torch, jax2tf), seeded; used by the
examples, the tests and the benchmarks. Nothing is downloaded."""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class GraphBuilder:
    """A tiny helper: add nodes by op name, constants by value; names are generated in order."""

    def __init__(self, seed: int = 0) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.rng = np.random.default_rng(seed)
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count}"

    def const(self, value, prefix: str = "c", dtype=np.float32) -> str:
        name = self.name(prefix)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, *inputs: str, outputs: int = 1, **attrs) -> str | list[str]:
        names = [self.name(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=self.name(op_type), **attrs))
        return names[0] if outputs == 1 else names

    def weight(self, *shape: int, scale: float | None = None) -> str:
        fan_in = shape[0] if len(shape) == 2 else int(np.prod(shape[1:]))
        std = scale if scale is not None else 1.0 / math.sqrt(fan_in)
        return self.const(self.rng.normal(0.0, std, size=shape), "w")

    def linear(self, x: str, n_in: int, n_out: int, bias_scale: float = 0.1, gain: float | None = None) -> str:
        """MatMul + Add, as torch exports nn.Linear on 3-D inputs."""
        product = self.op("MatMul", x, self.weight(n_in, n_out, scale=gain))
        return self.op("Add", product, self.const(self.rng.normal(0, bias_scale, n_out), "b"))

    # -- activations as exporters write them ----------------------------------------------------------------------
    def gelu_erf_torch(self, x: str) -> str:
        erf = self.op("Erf", self.op("Div", x, self.const(1.4142135381698608)))
        return self.op("Mul", self.op("Mul", x, self.op("Add", erf, self.const(1.0))), self.const(0.5))

    def gelu_tanh_jax2tf(self, x: str) -> str:
        cube = self.op("Mul", self.op("Mul", x, x), x)
        inner = self.op("Add", x, self.op("Mul", self.const(0.044715), cube))
        tanh = self.op("Tanh", self.op("Mul", self.const(math.sqrt(2 / math.pi)), inner))
        return self.op("Mul", x, self.op("Mul", self.op("Add", self.const(1.0), tanh), self.const(0.5)))

    def gelu_tanh_torch(self, x: str) -> str:
        cube = self.op("Pow", x, self.const(3.0))
        inner = self.op("Add", x, self.op("Mul", cube, self.const(0.044715)))
        tanh = self.op("Tanh", self.op("Mul", inner, self.const(math.sqrt(2 / math.pi))))
        return self.op("Mul", self.op("Mul", x, self.const(0.5)), self.op("Add", tanh, self.const(1.0)))

    def layer_norm(self, x: str, width: int) -> str:
        mean = self.op("ReduceMean", x, axes=[-1], keepdims=1)
        centred = self.op("Sub", x, mean)
        variance = self.op("ReduceMean", self.op("Pow", centred, self.const(2.0)), axes=[-1], keepdims=1)
        std = self.op("Sqrt", self.op("Add", variance, self.const(1e-5)))
        normalised = self.op("Div", centred, std)
        return self.op("Add", self.op("Mul", normalised, self.const(np.ones(width))), self.const(np.zeros(width)))

    def model(self, inputs, outputs, opset: int = 13) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, "edgeact_test", inputs, outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="edgeact-tests")
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def tensor(name: str, shape, dtype=TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def mlp_tanh(seed: int = 0, gain: float = 3.0) -> onnx.ModelProto:
    """x[N,16] -> Linear 32 -> tanh -> Linear 32 -> tanh -> Linear 4; ``gain`` widens the pre-activations so the
    tanh units saturate often, as in trained classifiers and recurrent gates."""
    g = GraphBuilder(seed)
    h = g.op("Tanh", g.linear("x", 16, 32, bias_scale=0.0, gain=gain / 4))
    h = g.op("Tanh", g.linear(h, 32, 32, bias_scale=0.0, gain=gain / math.sqrt(32)))
    g.nodes.append(helper.make_node("Identity", [g.linear(h, 32, 4)], ["y"], name="out"))
    return g.model([tensor("x", ["N", 16])], [tensor("y", ["N", 4])])


def transformer_block(
    gelu: str = "erf", seed: int = 0, width: int = 32, seq: int = 8, masked: bool = False
) -> onnx.ModelProto:
    """Pre-LN self-attention + MLP block; GELU spelled as torch ('erf', 'tanh') or jax2tf ('tanh_jax') writes it."""
    g = GraphBuilder(seed)
    x = "x"
    h = g.layer_norm(x, width)
    q, k, v = (g.linear(h, width, width) for _ in range(3))
    scores = g.op("Div", g.op("MatMul", q, g.op("Transpose", k, perm=[0, 2, 1])), g.const(math.sqrt(width)))
    if masked:
        scores = g.op("Add", scores, "mask")
    attention = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
    x = g.op("Add", x, g.linear(attention, width, width))
    h = g.linear(g.layer_norm(x, width), width, 4 * width)
    h = {"erf": g.gelu_erf_torch, "tanh": g.gelu_tanh_torch, "tanh_jax": g.gelu_tanh_jax2tf}[gelu](h)
    g.nodes.append(helper.make_node("Add", [x, g.linear(h, 4 * width, width)], ["y"], name="residual_out"))
    inputs = [tensor("x", ["N", seq, width])]
    if masked:
        inputs.append(tensor("mask", ["N", seq, seq]))
    return g.model(inputs, [tensor("y", ["N", seq, width])])


def silu_convnet(seed: int = 0) -> onnx.ModelProto:
    """Conv(3->8) SiLU Conv(8->16) SiLU GlobalAveragePool Flatten Gemm(16->5)."""
    g = GraphBuilder(seed)
    h = g.op("Conv", "x", g.weight(8, 3, 3, 3), g.const(g.rng.normal(0, 0.1, 8)), pads=[1, 1, 1, 1])
    h = g.op("Mul", h, g.op("Sigmoid", h))
    h = g.op("Conv", h, g.weight(16, 8, 3, 3), g.const(g.rng.normal(0, 0.1, 16)), pads=[1, 1, 1, 1], strides=[2, 2])
    h = g.op("Mul", g.op("Sigmoid", h), h)
    h = g.op("Flatten", g.op("GlobalAveragePool", h))
    g.nodes.append(helper.make_node("Gemm", [h, g.weight(5, 16), g.const(np.zeros(5))], ["y"], transB=1, name="head"))
    return g.model([tensor("x", ["N", 3, 16, 16])], [tensor("y", ["N", 5])])


def detector_head(seed: int = 0) -> onnx.ModelProto:
    """Features -> boxes in pixels (0..640) and sigmoid scores (0..1), concatenated into one output."""
    g = GraphBuilder(seed)
    h = g.op("Relu", g.linear("x", 16, 32))
    boxes = g.op("Mul", g.op("Sigmoid", g.linear(h, 32, 4)), g.const(640.0))
    scores = g.op("Sigmoid", g.linear(h, 32, 3))
    g.nodes.append(helper.make_node("Concat", [boxes, scores], ["y"], axis=-1, name="concat_out"))
    return g.model([tensor("x", ["N", 16])], [tensor("y", ["N", 7])])


def token_classifier(seed: int = 0, vocab: int = 50, width: int = 16) -> onnx.ModelProto:
    """int64 token ids -> embedding Gather -> mean over tokens -> Linear -> tanh -> Linear."""
    g = GraphBuilder(seed)
    table = g.const(g.rng.normal(0, 1, (vocab, width)), "embedding")
    h = g.op("ReduceMean", g.op("Gather", table, "ids", axis=0), axes=[1], keepdims=0)
    h = g.op("Tanh", g.linear(h, width, width))
    g.nodes.append(helper.make_node("Identity", [g.linear(h, width, 3)], ["y"], name="out"))
    return g.model([tensor("ids", ["N", 6], TensorProto.INT64)], [tensor("y", ["N", 3])])


def sample_inputs(model: onnx.ModelProto, count: int, seed: int = 0, scale: float = 1.5) -> dict[str, np.ndarray]:
    """Seeded data for a builder model: N(0, scale) floats, causal 0/-1e4 masks, token ids."""
    rng = np.random.default_rng(seed)
    data = {}
    for value in model.graph.input:
        dims = [d.dim_value or count for d in value.type.tensor_type.shape.dim]
        dims[0] = count
        if value.name == "mask":
            causal = np.triu(np.full(dims[1:], -1.0e4, dtype=np.float32), k=1)
            data["mask"] = np.broadcast_to(causal, dims).copy()
        elif value.type.tensor_type.elem_type == TensorProto.INT64:
            data[value.name] = rng.integers(0, 50, size=dims).astype(np.int64)
        else:
            data[value.name] = (rng.normal(0.0, scale, size=dims)).astype(np.float32)
    return data
