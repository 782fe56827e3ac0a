"""Models derived for running: the float model with extra outputs for the tensors calibration observes."""

from __future__ import annotations

import hashlib

import onnx
import onnx_ir as ir

from edgeact.graph.importer import model_bytes


def observation_model(model: ir.Model, names: list[str]) -> bytes:
    """``model`` serialised with every tensor in ``names`` added as a float graph output."""
    proto = onnx.load_model_from_string(model_bytes(model))
    present = {output.name for output in proto.graph.output}
    for name in names:
        if name not in present:
            proto.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return proto.SerializeToString(deterministic=True)


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
