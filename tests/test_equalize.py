"""Cross-layer equalization (edgeact/graph/equalize.py, pass ``equalize-channels``): which Conv pairs it takes, that
the float model computes the same after it, that the weights end up balanced as DFQ says, and that int8 gains
where one channel dominated the tensor between two convolutions."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

import edgeact
from edgeact.graph import passes
from edgeact.graph.equalize import find_pairs
from edgeact.graph.importer import load_onnx_bytes, model_bytes
from edgeact.metrics import sqnr_db


def _conv_chain(between: list[str], consumer_group: str = "plain", second_use: bool = False,
                wide_channel: float = 60.0) -> onnx.ModelProto:
    """x[N,3,8,8] -> Conv(3->4, channel 0's filter ``wide_channel``x the others) -> ``between`` ops -> Conv(4->?)
    (``plain``: 4->5, reading channel 0 ``wide_channel``x weaker, as a trained net balances it; ``depthwise``:
    group 4, multiplier 2; ``grouped``: group 2) -> y."""
    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32)
    w1[0] *= wide_channel
    b1 = rng.normal(0, 0.1, 4).astype(np.float32)
    shapes = {"plain": ((5, 4, 1, 1), 1), "depthwise": ((8, 1, 3, 3), 4), "grouped": ((4, 2, 1, 1), 2)}
    w2_shape, group = shapes[consumer_group]
    w2 = rng.normal(0, 0.3, w2_shape).astype(np.float32)
    if consumer_group == "plain":  # the next layer reads the wide channel weakly: every channel matters alike in y
        w2[:, 0] /= wide_channel
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"))]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["t0"], pads=[1, 1, 1, 1], name="first")]
    value = "t0"
    for index, op in enumerate(between):
        out = f"t{index + 1}"
        if op == "PRelu":
            inits.append(numpy_helper.from_array(np.full((4, 1, 1), 0.2, np.float32), f"slope{index}"))
            nodes.append(helper.make_node("PRelu", [value, f"slope{index}"], [out], name=f"between{index}"))
        elif op == "MaxPool":
            nodes.append(helper.make_node("MaxPool", [value], [out], kernel_shape=[2, 2], strides=[2, 2],
                                          name=f"between{index}"))
        else:
            nodes.append(helper.make_node(op, [value], [out], name=f"between{index}"))
        value = out
    pads = [1, 1, 1, 1] if consumer_group == "depthwise" else [0, 0, 0, 0]
    nodes.append(helper.make_node("Conv", [value, "w2"], ["y"], group=group, pads=pads, name="second"))
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)]
    if second_use:
        outputs.append(helper.make_tensor_value_info("t0", TensorProto.FLOAT, [None] * 4))
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                              outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _pairs(model: onnx.ModelProto) -> int:
    return len(find_pairs(load_onnx_bytes(model.SerializeToString()).graph))


@pytest.mark.parametrize("between, group, expected", [
    ([], "plain", 1), (["Relu"], "plain", 1), (["PRelu", "MaxPool"], "plain", 1), (["Relu"], "depthwise", 1),
    (["Sigmoid"], "plain", 0),  # not positively homogeneous: sigmoid(x / s) != sigmoid(x) / s
    (["Relu"], "grouped", 0),  # a grouped filter reads two channels at once
])
def test_which_pairs_are_taken(between: list[str], group: str, expected: int) -> None:
    assert _pairs(_conv_chain(between, group)) == expected


def test_a_tensor_read_twice_is_left_alone() -> None:
    assert _pairs(_conv_chain(["Relu"], second_use=True)) == 0


def _run(model_bytes_: bytes, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(model_bytes_, providers=["CPUExecutionProvider"])
    return session.run(["y"], {"x": x})[0]


@pytest.mark.parametrize("between, group", [(["Relu"], "plain"), (["PRelu", "MaxPool"], "plain"),
                                            (["Relu"], "depthwise")])
def test_the_float_model_is_unchanged_and_the_weights_balanced(between: list[str], group: str) -> None:
    original = _conv_chain(between, group)
    model = load_onnx_bytes(original.SerializeToString())
    ran = passes.canonicalise(model)
    assert "equalize-channels" in ran
    x = np.random.default_rng(1).normal(size=(1, 3, 8, 8)).astype(np.float32)
    expected, got = _run(original.SerializeToString(), x), _run(model_bytes(model), x)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * float(np.abs(expected).max()))
    weights = {i.name: numpy_helper.to_array(i) for i in original.graph.initializer}
    first = np.abs(weights["w1"]).reshape(4, -1).max(axis=1)
    second = (np.abs(weights["w2"]).max(axis=(0, 2, 3)) if group == "plain"
              else np.abs(weights["w2"]).reshape(4, 2, -1).max(axis=(1, 2)))
    # DFQ: where the first layer's channel is the wider, both ranges become the geometric mean; a narrower one is
    # never widened (its scale would be below 1)
    narrowed = first > second
    expected_first = np.where(narrowed, np.sqrt(first * second), first)
    expected_second = np.where(narrowed, np.sqrt(first * second), second)
    conv_first, conv_second = (next(n for n in model.graph if n.name == name) for name in ("first", "second"))
    now_first = np.abs(conv_first.inputs[1].const_value.numpy()).reshape(4, -1).max(axis=1)
    w2_now = conv_second.inputs[1].const_value.numpy()
    now_second = (np.abs(w2_now).max(axis=(0, 2, 3)) if group == "plain"
                  else np.abs(w2_now).reshape(4, 2, -1).max(axis=(1, 2)))
    np.testing.assert_allclose(now_first, expected_first, rtol=1e-4)
    np.testing.assert_allclose(now_second, expected_second, rtol=1e-4)
    assert narrowed[0]  # the wide channel


def test_int8_gains_where_one_channel_dominated(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The wide channel (60x) sets the per-tensor grid of the tensor between the convolutions: without
    equalization the other channels get a few codes. The same quantize, with and without the pass."""
    model = _conv_chain(["Relu"], "plain")
    onnx.save(model, tmp_path / "chain.onnx")
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "calib.npz", x=rng.normal(size=(64, 3, 8, 8)).astype(np.float32))
    x = rng.normal(size=(32, 3, 8, 8)).astype(np.float32)
    expected = _run(model.SerializeToString(), x)

    def int8_sqnr(folder: str) -> float:
        result = edgeact.quantize(tmp_path / "chain.onnx", tmp_path / "calib.npz", output_dir=tmp_path / folder,
                                  formats=["onnx-qdq"])
        return sqnr_db(expected, _run(result.paths["onnx-qdq"].read_bytes(), x))

    equalized = int8_sqnr("with")
    monkeypatch.setattr(passes, "CANONICALISATION",
                        tuple(p for p in passes.CANONICALISATION if p is not passes.EqualizeChannels))
    plain = int8_sqnr("without")
    assert equalized > plain + 6, (equalized, plain)


def test_balanced_channels_are_left_alone() -> None:
    """Channels whose scales span less than 8x gain little: the pass changes nothing (and says so)."""
    original = _conv_chain(["Relu"], wide_channel=1.5)
    assert _pairs(original) == 1
    model = load_onnx_bytes(original.SerializeToString())
    assert "equalize-channels" not in passes.canonicalise(model)
    first = next(n for n in model.graph if n.name == "first").inputs[1].const_value.numpy()
    expected = next(numpy_helper.to_array(i) for i in original.graph.initializer if i.name == "w1")
    np.testing.assert_array_equal(first, expected)


def test_shared_weights_are_left_alone() -> None:
    """A weight initializer two nodes read cannot be rescaled for one of them."""
    model = load_onnx_bytes(_conv_chain(["Relu"]).SerializeToString())
    second = next(n for n in model.graph if n.name == "second")
    extra = ir.node("Conv", [second.inputs[0], second.inputs[1]], name="third")
    model.graph.append(extra)
    model.graph.outputs.append(extra.outputs[0])
    assert find_pairs(model.graph) == []


def _with_pad(pads: list[int], axes: list[int] | None = None) -> onnx.ModelProto:
    """The chain with a Pad between the ReLU and the second Conv (opset 18 when ``axes`` is given)."""
    model = _conv_chain(["Relu"], "plain")
    graph = model.graph
    second = next(n for n in graph.node if n.name == "second")
    graph.initializer.append(numpy_helper.from_array(np.asarray(pads, np.int64), "pads"))
    inputs = [second.input[0], "pads"]
    if axes is not None:
        graph.initializer.append(numpy_helper.from_array(np.asarray(axes, np.int64), "axes"))
        inputs += ["", "axes"]
        del model.opset_import[:]
        model.opset_import.append(helper.make_opsetid("", 18))
    graph.node.insert(len(graph.node) - 1, helper.make_node("Pad", inputs, ["padded"], name="pad"))
    second.input[0] = "padded"
    return model


@pytest.mark.parametrize("pads, axes, expected", [
    ([0, 0, 1, 1, 0, 0, 1, 1], None, 1),  # spatial: channels stay where they are
    ([0, 1, 0, 0, 0, -1, 0, 0], None, 0),  # one channel in front, one cropped behind: channel i moves to i + 1
    ([1, -1], [1], 0),  # the same, through axes
])
def test_a_pad_that_moves_channels_is_not_crossed(pads: list[int], axes: list[int] | None, expected: int) -> None:
    assert _pairs(_with_pad(pads, axes)) == expected


def test_a_weight_a_graph_output_shows_is_left_alone() -> None:
    model = _conv_chain(["Relu"])
    model.graph.output.append(helper.make_tensor_value_info("w1", TensorProto.FLOAT, [4, 3, 3, 3]))
    assert _pairs(model) == 0


def test_a_channel_switched_off_by_its_batchnorm_is_not_widened() -> None:
    """A near-zero filter with a normal bias (what folding a BatchNorm with gamma ~ 0 gives): widening it by 1/s
    would make its constant bias the widest channel between the convolutions. Channels are only narrowed."""
    model = _conv_chain(["Relu"], "plain")
    weights = {i.name: i for i in model.graph.initializer}
    w1, b1 = numpy_helper.to_array(weights["w1"]).copy(), numpy_helper.to_array(weights["b1"]).copy()
    w1[1] *= 1e-5
    b1[1] = 1.0
    weights["w1"].CopyFrom(numpy_helper.from_array(w1, "w1"))
    weights["b1"].CopyFrom(numpy_helper.from_array(b1, "b1"))
    prepared = load_onnx_bytes(model.SerializeToString())
    passes.canonicalise(prepared)
    bias = next(n for n in prepared.graph if n.name == "first").inputs[2].const_value.numpy()
    assert abs(bias[1]) <= 1.0 + 1e-6 and np.all(np.abs(bias) <= np.abs(b1) + 1e-6), bias


def test_the_profile_compares_the_tensor_between_a_pair_like_for_like(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Per layer, the int8 tensor between an equalized pair is compared with the equalized float tensor (the raw
    baseline's would differ by the scales); the outputs, with the baseline as it is."""
    model = _conv_chain(["Relu"], "plain")
    onnx.save(model, tmp_path / "chain.onnx")
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "calib.npz", x=rng.normal(size=(64, 3, 8, 8)).astype(np.float32))
    np.savez(tmp_path / "eval.npz", x=rng.normal(size=(16, 3, 8, 8)).astype(np.float32))
    result = edgeact.quantize(tmp_path / "chain.onnx", tmp_path / "calib.npz", output_dir=tmp_path / "out",
                              formats=["tflite"])
    report = edgeact.profile_device(result.paths["tflite"], "litert-reference", tmp_path / "chain.onnx",
                                    tmp_path / "eval.npz", per_layer=True)
    layers = {layer.tensor: layer for layer in report.layers}
    assert layers["t1"].sqnr_db > 25, layers["t1"]
    assert report.outputs["y"].sqnr_db > 25
