"""Cross-layer equalization (Nagel et al., "Data-Free Quantization", 2019): rescale the channels of the tensor
between two convolutions so that each channel's weights span the same range in both.

A pair is a Conv ``P`` whose output reaches a Conv ``C`` only through ops that commute with a positive per-channel
scale (ReLU, PReLU, LeakyReLU, max and average pooling, zero padding; each value read by that one op and no graph
output). Dividing ``P``'s output channel ``i`` (its filters and bias) by ``s_i`` and multiplying ``C``'s input channel
``i`` by ``s_i`` leaves ``C``'s output unchanged. With ``s_i = sqrt(r1_i / r2_i)`` (``r1_i``: the largest |weight|
of ``P``'s filter ``i``, ``r2_i``: of ``C``'s input channel ``i``) both become ``sqrt(r1_i * r2_i)``: one channel
that dominated the per-tensor int8 grid of the tensor between them (a depthwise channel 100x wider than the rest)
no longer does. Channels are only narrowed (``s_i`` below 1 is taken as 1): widening one could blow up a bias that
dominates a near-zero filter. Only pairs whose scales span 8x or more are taken (:data:`MIN_IMBALANCE`); they are
swept until the scales settle, since a Conv can end one pair and start the next.

Data-free: the scales come from the weights only, so ``calibrate``, ``quantize``, ``sensitivity`` and the profiler
all see the same equalized model, and statistics of separate calibration runs still merge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_ir as ir

# ops between P and C that commute with a positive per-channel scale of their input
PASS_THROUGH = frozenset({"Relu", "PRelu", "LeakyRelu", "MaxPool", "AveragePool", "Pad"})
# A pair whose channel scales span less than 8x (3 of int8's 8 bits) is left alone: it gains little on the tensor
# between and pays on the next layer's per-channel weights (MTCNN's O-Net: spans of 2x, prob SQNR -3 dB equalized;
# BlazeFace's last depthwise pair: 26x, regressor SQNR 16.7 -> 24.6 dB from that pair alone)
MIN_IMBALANCE = 8.0
MAX_SWEEPS = 16
SETTLED = 1e-3  # stop when no scale moves by more than this (relative)


@dataclass
class Pair:
    producer: ir.Node
    consumer: ir.Node
    between: ir.Value  # the tensor whose channels are rescaled (P's output)


def _weights(node: ir.Node, index: int) -> np.ndarray | None:
    """A constant input only ``node`` reads, that no feed overrides and no graph output shows (so it may change)."""
    value = node.inputs[index] if len(node.inputs) > index else None
    if (value is None or value.const_value is None or len(value.uses()) != 1 or value.is_graph_input()
            or value.is_graph_output()):
        return None
    return value.const_value.numpy()


def _fixed(value: ir.Value | None) -> np.ndarray | None:
    """A constant no feed overrides."""
    return None if value is None or value.const_value is None or value.is_graph_input() else value.const_value.numpy()


def _group(node: ir.Node) -> int:
    attribute = node.attributes.get("group")
    return int(attribute.value) if attribute is not None else 1


def _conv(node: ir.Node) -> bool:
    """A plain or depthwise float Conv with constant 4-D weights (and bias) used by it alone."""
    if node.op_type != "Conv" or node.domain != "":
        return False
    weights = _weights(node, 1)
    if weights is None or weights.ndim != 4 or weights.dtype != np.float32:
        return False
    if len(node.inputs) > 2 and node.inputs[2] is not None and _weights(node, 2) is None:
        return False
    return True


def _reads_channels_apart(conv: ir.Node) -> bool:
    """A plain Conv (group 1) or a depthwise one (each filter reads one input channel): input channel ``i`` maps to
    weights that can be scaled by ``s_i`` (a grouped Conv's filters read several channels each)."""
    return _group(conv) == 1 or conv.inputs[1].const_value.numpy().shape[1] == 1


def _passes(node: ir.Node) -> bool:
    if node.op_type not in PASS_THROUGH or node.domain != "":
        return False
    if node.op_type == "Pad":
        return _pads_spatially(node)
    if node.op_type == "PRelu":
        slope = node.inputs[1]
        return slope is not None and slope.const_value is not None
    return True


def _pads_spatially(node: ir.Node) -> bool:
    """A constant-mode Pad with zero fill whose constant pads leave the batch and channel axes alone (a pad that
    moves channels would pair scale s_i with another channel)."""
    mode = node.attributes.get("mode")
    if mode is not None and mode.value != "constant":
        return False
    inputs = [*node.inputs, None, None, None]
    if inputs[2] is not None and ((fill := _fixed(inputs[2])) is None or np.any(fill)):
        return False
    pads = _fixed(inputs[1])
    rank = node.inputs[0].shape.rank() if node.inputs[0].shape is not None else None
    if pads is None or rank is None:
        return False
    pads = pads.reshape(-1)
    count = len(pads) // 2
    axes = np.arange(count) if inputs[3] is None else _fixed(inputs[3])
    if axes is None:
        return False
    moved = {int(axis) % rank for axis, before, after in zip(axes.reshape(-1), pads[:count], pads[count:],
                                                             strict=True) if before or after}
    return not moved & {0, 1}


def find_pairs(graph: ir.Graph) -> list[Pair]:
    """Every (P, C) pair of the main graph, in graph order."""
    pairs = []
    for node in graph:
        if not _conv(node):
            continue
        value = node.outputs[0]
        while not value.is_graph_output() and len(value.uses()) == 1:
            user = value.uses()[0].node
            if value.uses()[0].idx != 0:
                break
            if _conv(user) and _reads_channels_apart(user) and _input_channels(user) == _weights(node, 1).shape[0]:
                pairs.append(Pair(node, user, node.outputs[0]))
                break
            if not _passes(user):
                break
            value = user.outputs[0]
    return pairs


def _input_channels(conv: ir.Node) -> int:
    weights = conv.inputs[1].const_value.numpy()
    return weights.shape[1] * _group(conv)


def _consumer_ranges(weights: np.ndarray, group: int) -> np.ndarray:
    """The largest |weight| reading each input channel of a plain (group 1) or depthwise Conv."""
    if group == 1:
        return np.abs(weights).max(axis=(0, 2, 3))
    multiplier = weights.shape[0] // group
    return np.abs(weights).reshape(group, multiplier, -1).max(axis=(1, 2))


def _scale_consumer(weights: np.ndarray, group: int, scale: np.ndarray) -> np.ndarray:
    if group == 1:
        return weights * scale[None, :, None, None]
    return weights * np.repeat(scale, weights.shape[0] // group)[:, None, None, None]


def _replace(node: ir.Node, index: int, array: np.ndarray) -> None:
    value = node.inputs[index]
    value.const_value = ir.tensor(array.astype(np.float32), name=value.name)


def _scales(pair: Pair) -> np.ndarray:
    """``s_i = sqrt(r1_i / r2_i)`` per channel (1 where a channel has no weights on either side)."""
    first, second = _weights(pair.producer, 1), _weights(pair.consumer, 1)
    r1 = np.abs(first).reshape(first.shape[0], -1).max(axis=1).astype(np.float64)
    r2 = _consumer_ranges(second, _group(pair.consumer)).astype(np.float64)
    usable = (r1 > 0) & (r2 > 0)
    scale = np.ones_like(r1)
    scale[usable] = np.sqrt(r1[usable] / r2[usable])
    return scale


def _narrowing(scale: np.ndarray) -> np.ndarray:
    """The scales applied: a channel is only ever narrowed (s_i >= 1), never widened, so a channel whose bias
    dominates a near-zero filter (a BatchNorm that switched it off) is not blown up by 1/s_i."""
    return np.maximum(scale, 1.0)


def imbalance(pair: Pair) -> float:
    """How far apart the pair's channels are: the largest scale over the smallest."""
    scale = _scales(pair)
    return float(scale.max() / scale.min()) if scale.size else 1.0


def _equalize(pair: Pair) -> float:
    """Rescale one pair; returns the largest relative change of a scale."""
    first, second = _weights(pair.producer, 1), _weights(pair.consumer, 1)
    group = _group(pair.consumer)
    scale = _narrowing(_scales(pair))
    _replace(pair.producer, 1, first / scale[:, None, None, None])
    if len(pair.producer.inputs) > 2 and pair.producer.inputs[2] is not None:
        _replace(pair.producer, 2, _weights(pair.producer, 2) / scale)
    _replace(pair.consumer, 1, _scale_consumer(second, group, scale))
    return float(np.max(np.abs(scale - 1.0))) if scale.size else 0.0


def equalize(graph: ir.Graph) -> int:
    """Equalize the imbalanced pairs of ``graph`` in place; returns how many there were."""
    pairs = [pair for pair in find_pairs(graph) if imbalance(pair) >= MIN_IMBALANCE]
    for _ in range(MAX_SWEEPS if pairs else 0):
        if max(_equalize(pair) for pair in pairs) <= SETTLED:
            break
    return len(pairs)
