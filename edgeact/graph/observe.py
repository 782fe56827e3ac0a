"""Models derived for running: the float model with extra outputs for the tensors calibration observes."""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
import onnx_ir as ir

from edgeact.graph.importer import model_bytes


def observation_model(model: ir.Model, names: list[str]) -> bytes:
    """``model`` serialised with every tensor in ``names`` added as a float graph output."""
    return with_float_outputs(model_bytes(model), names)


def shape_probe_model(model: ir.Model) -> tuple[bytes, list[str]]:
    """``model`` serialised with every main-graph value as an output (typed), to read all shapes in one run."""
    proto = onnx.load_model_from_string(model_bytes(model))
    present = {output.name for output in proto.graph.output}
    names = []
    for node in model.graph:
        for value in node.outputs:
            if value.name and value.dtype is not None:
                names.append(value.name)
                if value.name not in present:
                    proto.graph.output.append(
                        onnx.helper.make_tensor_value_info(value.name, int(value.dtype), None)
                    )
    return proto.SerializeToString(deterministic=True), names


def fingerprint(model: ir.Model) -> str:
    """sha256 of the canonical model: stats from different models must not be merged."""
    return hashlib.sha256(model_bytes(model)).hexdigest()


def with_float_outputs(payload: bytes, names: list[str]) -> bytes:
    """A serialised model with extra float outputs (values already in the graph, by name)."""
    proto = onnx.load_model_from_string(payload)
    present = {output.name for output in proto.graph.output}
    for name in names:
        if name not in present:
            proto.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return proto.SerializeToString(deterministic=True)


def with_fed_initializers(payload: bytes, names: list[str]) -> bytes:
    """A serialised model whose initializers ``names`` are also graph inputs, so a feed overrides them (onnxruntime
    then neither folds nor pre-packs them)."""
    proto = onnx.load_model_from_string(payload)
    initializers = {tensor.name: tensor for tensor in proto.graph.initializer}
    present = {value.name for value in proto.graph.input}
    for name in names:
        if name in initializers and name not in present:
            tensor = initializers[name]
            proto.graph.input.append(onnx.helper.make_tensor_value_info(name, tensor.data_type, list(tensor.dims)))
    return proto.SerializeToString(deterministic=True)


def dequantized_tensors(payload: bytes) -> dict[str, float]:
    """Every per-tensor DequantizeLinear output of a serialised model and the scale it dequantizes with."""
    proto = onnx.load_model_from_string(payload)
    constants = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    scales = {}
    for node in proto.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[1] in constants and constants[node.input[1]].size == 1:
            if node.input[0] in constants:  # a quantized weight, not an activation
                continue
            scales[node.output[0]] = float(constants[node.input[1]].reshape(-1)[0])
    return scales


def layer_subgraphs(payload: bytes) -> dict[str, tuple[bytes, list[str], float, int, str]]:
    """For each quantized activation ``v`` of a QDQ/table model: the sub-model that computes the float value fed to
    its QuantizeLinear from the nearest dequantized values upstream, those input names, and the Q grid (scale, zero
    point, code type: int8, uint8 or int16). Keyed by the DequantizeLinear output that carries ``v``
    (``v_dequantized``, or the graph output)."""
    proto = onnx.load_model_from_string(payload)
    constants = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    producers = {out: node for node in proto.graph.node for out in node.output}
    dequantized = {node.output[0] for node in proto.graph.node
                   if node.op_type == "DequantizeLinear" and node.input[0] not in constants}
    graph_inputs = {i.name for i in proto.graph.input}
    extractor = onnx.utils.Extractor(proto)
    found = {}
    for node in proto.graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] in graph_inputs:
            continue
        consumer = next(
            (n for n in proto.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == node.output[0]), None
        )
        if consumer is None or node.input[1] not in constants or constants[node.input[1]].size != 1:
            continue
        inputs, stack, seen = [], [node.input[0]], set()
        while stack:
            name = stack.pop()
            if name in seen or name in constants or not name:
                continue
            seen.add(name)
            if name in dequantized or name in graph_inputs:
                inputs.append(name)
            elif name in producers:
                stack.extend(producers[name].input)
        if not inputs:
            continue
        zero = constants[node.input[2]] if len(node.input) > 2 else np.zeros(1, np.uint8)  # ONNX default: uint8
        zero_point, codes = int(zero.reshape(-1)[0]), zero.dtype.name
        try:
            sub = extractor.extract_model(sorted(inputs), [node.input[0]])
        except Exception:  # noqa: BLE001 - a layer the extractor cannot isolate is left out of the op-by-op check
            continue
        found[consumer.output[0]] = (sub.SerializeToString(), sorted(inputs),
                                     float(constants[node.input[1]].reshape(-1)[0]), zero_point, codes)
    return found
