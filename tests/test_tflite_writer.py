"""The TFLite writer: models load in LiteRT with what was written, and writing is deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from edgeact.activations import activation
from edgeact.errors import ModelFormatError
from edgeact.exporters.tflite.single_op import activation_builtin_model, table_lowering_model
from edgeact.exporters.tflite.writer import TFLiteModelBuilder
from edgeact.numerics import QParams, lut_for, per_channel_symmetric
from edgeact.runtimes.litert import litert_interpreter


def per_channel_model() -> bytes:
    weights = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    wq = per_channel_symmetric(weights, axis=0)
    codes = np.round(weights / np.array(wq.scales)[:, None]).astype(np.int8)
    model = TFLiteModelBuilder(description="per-channel")
    x = model.add_tensor("x", (1, 3), "int8", quant=QParams(0.02, 3))
    w = model.add_constant("w", codes, quant=wq)
    bias = model.add_constant("b", np.zeros(4, dtype=np.int32))
    y = model.add_tensor("y", (1, 4), "int8", quant=QParams(0.05, -2))
    model.add_operator("FULLY_CONNECTED", [x, w, bias], [y])
    model.set_inputs([x])
    model.set_outputs([y])
    model.add_metadata("edgeact_version", b"0.1.0")
    return model.build()


def test_quantization_parameters_round_trip_through_litert() -> None:
    interpreter = litert_interpreter(per_channel_model(), "reference")
    details = {d["name"]: d for d in interpreter.get_tensor_details()}
    assert details["x"]["quantization"] == (pytest.approx(0.02), 3)
    w = details["w"]["quantization_parameters"]
    assert len(w["scales"]) == 4 and w["quantized_dimension"] == 0 and not np.any(w["zero_points"])


def test_signature_carries_input_and_output_names() -> None:
    interpreter = litert_interpreter(per_channel_model(), "reference")
    signature = interpreter.get_signature_list()["serving_default"]
    assert signature == {"inputs": ["x"], "outputs": ["y"]}


def test_operator_codes_above_127_use_the_extended_field() -> None:
    model = activation_builtin_model("GELU", QParams(0.05, 0), QParams(0.02, -100), approximate=True)
    ops = litert_interpreter(model, "reference")._get_ops_details()  # noqa: SLF001
    assert [op["op_name"] for op in ops] == ["GELU"]


def test_writing_is_deterministic() -> None:
    table = lut_for(activation("silu"), QParams(0.05, 10), QParams(0.02, -90))
    assert table_lowering_model(table) == table_lowering_model(table)
    assert per_channel_model() == per_channel_model()


def test_bad_graphs_are_refused_with_the_tensor_named() -> None:
    model = TFLiteModelBuilder()
    model.add_tensor("x", (2,), "int8")
    with pytest.raises(ModelFormatError, match="'x' is used twice"):
        model.add_tensor("x", (2,), "int8")
    with pytest.raises(ModelFormatError, match="tensor 'c'"):
        model.add_tensor("c", (3,), "int8", data=np.zeros(2, dtype=np.int8))
    with pytest.raises(ModelFormatError, match="needs at least one input"):
        model.build()
    with pytest.raises(ModelFormatError, match="unknown option"):
        model.add_operator("TANH", [0], [0], approximate=True)
