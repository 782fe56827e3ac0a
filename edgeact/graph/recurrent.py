"""Unroll ONNX LSTM and GRU (static sequence length) into MatMul + gate activations, so every gate's sigmoid and
tanh becomes a table with its own calibrated grids. Every value of a cell but its output h carries ``CELL_KEY``
(the cell type) in its in-memory ``meta``: the plan gives a cell's gates and state a wider precision than int8.
State inputs (initial_h, initial_c) and outputs (Y, Y_h, Y_c) keep their names and meaning, so streaming use
(feeding the state back) still works.

Supported: direction forward, reverse or bidirectional (each direction its own cells, Y and the final states
concatenated along the direction axis as ONNX specifies), layout 0 or 1, default activations, no peepholes, no clip,
no input_forget, no sequence_lens. Anything else is left as the ONNX op (a reported float fallback).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

CELL_KEY = "edgeact.recurrent_cell"  # Value.meta (in memory, never serialised: the model's fingerprint and the
# exported files do not change): the cell type (LSTM, GRU) whose gates or state the value holds


class _Builder:
    """Creates nodes and constants for one replaced node; ``nodes`` are inserted in order."""

    def __init__(self, graph: ir.Graph, prefix: str) -> None:
        self.graph, self.prefix, self.nodes, self.count = graph, prefix, [], 0

    def name(self, label: str) -> str:
        self.count += 1
        return f"{self.prefix}/{label}_{self.count}"

    def const(self, array: np.ndarray, label: str) -> ir.Value:
        name = self.name(label)
        tensor = ir.tensor(np.array(array, order="C"), name=name)  # np.array keeps 0-d arrays 0-d
        value = ir.Value(name=name, type=ir.TensorType(tensor.dtype), shape=tensor.shape, const_value=tensor)
        self.graph.register_initializer(value)
        return value

    def op(self, op_type: str, *inputs: ir.Value, outputs: int = 1, cell: str = "",  # type: ignore[no-untyped-def]
           **attributes) -> ir.Value | list[ir.Value]:
        """A new node; ``cell`` (LSTM, GRU) tags its outputs as a cell's gates or state (not its output h)."""
        node = ir.node(op_type, list(inputs), attributes=attributes, num_outputs=outputs, name=self.name(op_type))
        for index, value in enumerate(node.outputs):
            value.name = f"{node.name}_out{index}"
            value.dtype = ir.DataType.FLOAT  # every value of an unrolled cell is float32
            if cell:
                value.meta[CELL_KEY] = cell
        self.nodes.append(node)
        return list(node.outputs) if outputs > 1 else node.outputs[0]


def _supported(node: ir.Node) -> bool:
    a = node.attributes
    activations = a.get_strings("activations", None)
    defaults = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}[node.op_type]
    inputs = list(node.inputs) + [None] * 8
    return (
        a.get_string("direction", "forward") in ("forward", "reverse", "bidirectional")
        and (activations is None or list(activations) == defaults)
        and a.get_float("clip", None) is None
        and not a.get_int("input_forget", 0)
        and inputs[4] is None  # sequence_lens
        and (node.op_type == "GRU" or inputs[7] is None)  # peepholes
        and all(v is None or v.const_value is not None for v in inputs[1:4])
        and node.inputs[0].shape is not None
        and isinstance(node.inputs[0].shape[1 if a.get_int("layout", 0) else 0], int)
    )


def _constant(value: ir.Value | None) -> np.ndarray | None:
    return None if value is None else value.const_value.numpy()


def _is_zeros(value: ir.Value) -> bool:
    """A state made by ConstantOfShape(0) (torch's default zero state for a dynamic batch) or a zero constant."""
    if value.const_value is not None:
        return not value.const_value.numpy().any()
    producer = value.producer()
    if producer is None or producer.op_type != "ConstantOfShape":
        return False
    fill = producer.attributes.get("value")
    return fill is None or not fill.value.numpy().any()


def _initial_state(b: _Builder, value: ir.Value | None, layout: int, direction: int) -> ir.Value | None:
    """initial_h / initial_c of one direction as [batch, hidden]; None when absent or zero (the first step drops
    its terms)."""
    if value is None or _is_zeros(value):
        return None
    return b.op("Gather", value, b.const(np.array(direction, np.int64), "direction"), axis=1 if layout else 0)


def _steps(b: _Builder, x: ir.Value, length: int, layout: int, reverse: bool) -> list[ir.Value]:
    order = range(length - 1, -1, -1) if reverse else range(length)
    return [b.op("Gather", x, b.const(np.array(t, np.int64), "t"), axis=1 if layout else 0) for t in order]


def _lstm_cell(b: _Builder, x_t, h, c, w, r, bias, hidden: int):  # type: ignore[no-untyped-def]
    """One step; every value but the new h is tagged as the cell's gates or state."""
    def op(*args, **attributes):  # type: ignore[no-untyped-def]
        return b.op(*args, cell="LSTM", **attributes)

    gates = op("Add", op("MatMul", x_t, w), bias)
    if h is not None:
        gates = op("Add", gates, op("MatMul", h, r))
    i, o, f, g = op("Split", gates, b.const(np.array([hidden] * 4, np.int64), "split"), axis=-1, outputs=4)
    i, o, g = op("Sigmoid", i), op("Sigmoid", o), op("Tanh", g)
    update = op("Mul", i, g)
    c = update if c is None else op("Add", op("Mul", op("Sigmoid", f), c), update)
    return b.op("Mul", o, op("Tanh", c)), c


def _gru_cell(b: _Builder, x_t, h, w, w_bias, recurrent_weights, recurrent_biases, split,  # type: ignore[no-untyped-def]
              linear_before_reset: bool):
    """One step; every value but the new h is tagged as the cell's gates or state."""
    def op(*args, **attributes):  # type: ignore[no-untyped-def]
        return b.op(*args, cell="GRU", **attributes)

    xz, xr, xh = op("Split", op("Add", op("MatMul", x_t, w), w_bias), split, axis=-1, outputs=3)
    (rz_w, rr_w, rh_w), (rz_b, rr_b, rh_b) = recurrent_weights, recurrent_biases

    def recurrent_term(weight, bias):  # type: ignore[no-untyped-def]
        return bias if h is None else op("Add", op("MatMul", h, weight), bias)

    z = op("Sigmoid", op("Add", xz, recurrent_term(rz_w, rz_b)))
    reset = op("Sigmoid", op("Add", xr, recurrent_term(rr_w, rr_b)))
    if linear_before_reset:
        recurrent = op("Mul", reset, recurrent_term(rh_w, rh_b))
    elif h is None:
        recurrent = rh_b
    else:
        recurrent = op("Add", op("MatMul", op("Mul", reset, h), rh_w), rh_b)
    candidate = op("Tanh", op("Add", xh, recurrent))
    # h' = (1 - z) * candidate + z * h  ==  candidate - z * (candidate - h)
    difference = candidate if h is None else op("Sub", candidate, h)
    return b.op("Sub", candidate, op("Mul", z, difference))


def _direction(b: _Builder, node: ir.Node, d: int, reverse: bool,
               length: int) -> tuple[list[ir.Value], ir.Value, ir.Value | None]:
    """One direction's cells: its outputs in time order and its final h (and c)."""
    a = node.attributes
    layout, hidden = a.get_int("layout", 0), a.get_int("hidden_size")
    inputs = list(node.inputs) + [None] * 8
    x = inputs[0]
    w, r = _constant(inputs[1])[d], _constant(inputs[2])[d]
    bias = _constant(inputs[3])
    bias = bias[d] if bias is not None else np.zeros(2 * w.shape[0], np.float32)
    h = _initial_state(b, inputs[5], layout, d)
    outputs = []
    c = None
    if node.op_type == "LSTM":
        c = _initial_state(b, inputs[6], layout, d)
        w_t, r_t = b.const(w.T.copy(), "W"), b.const(r.T.copy(), "R")
        gate_bias = b.const((bias[: 4 * hidden] + bias[4 * hidden :]).astype(np.float32), "B")
        for x_t in _steps(b, x, length, layout, reverse):
            h, c = _lstm_cell(b, x_t, h, c, w_t, r_t, gate_bias, hidden)
            outputs.append(h)
    else:
        w_t, w_bias = b.const(w.T.copy(), "W"), b.const(bias[: 3 * hidden].astype(np.float32), "Wb")
        weights = [b.const(part.copy(), "R") for part in np.split(r.T, 3, axis=1)]
        biases = [b.const(part.astype(np.float32), "Rb") for part in np.split(bias[3 * hidden :], 3)]
        split = b.const(np.array([hidden] * 3, np.int64), "split")
        for x_t in _steps(b, x, length, layout, reverse):
            h = _gru_cell(b, x_t, h, w_t, w_bias, weights, biases, split, bool(a.get_int("linear_before_reset", 0)))
            outputs.append(h)
    if reverse:
        outputs.reverse()
    return outputs, h, c


def _joined(b: _Builder, parts: list[ir.Value], axis: int) -> ir.Value:
    return b.op("Concat", *parts, axis=axis) if len(parts) > 1 else parts[0]


def unroll(graph: ir.Graph, node: ir.Node) -> bool:
    """Replace one LSTM/GRU node by its unrolled cells; False (and no change) when it is not supported."""
    if not _supported(node):
        return False
    a = node.attributes
    layout = a.get_int("layout", 0)
    direction = a.get_string("direction", "forward")
    length = node.inputs[0].shape[1 if layout else 0]
    b = _Builder(graph, node.name or node.op_type)
    reverses = {"forward": [False], "reverse": [True], "bidirectional": [False, True]}[direction]
    runs = [_direction(b, node, d, reverse, length) for d, reverse in enumerate(reverses)]
    sequence_axis, direction_axis = (1, 2) if layout else (0, 1)
    axes = b.const(np.array([sequence_axis, direction_axis], np.int64), "axes")
    steps = [_joined(b, [b.op("Unsqueeze", run[0][t], axes) for run in runs], direction_axis) for t in range(length)]
    y_all = _joined(b, steps, sequence_axis)
    state_axis = 1 if layout else 0
    state_axes = b.const(np.array([state_axis], np.int64), "axes")
    finals = [y_all, _joined(b, [b.op("Unsqueeze", run[1], state_axes) for run in runs], state_axis)]
    if runs[0][2] is not None:
        finals.append(_joined(b, [b.op("Unsqueeze", run[2], state_axes) for run in runs], state_axis))
    old, new = [], []
    for value, replacement in zip(node.outputs, finals, strict=False):
        if value is not None and value.name and (value.uses() or value.is_graph_output()):
            old.append(value)
            new.append(replacement)
    ir.convenience.replace_nodes_and_values(graph, node, [node], b.nodes, old, new)
    return True
