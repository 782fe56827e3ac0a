"""LSTM and GRU as torch.onnx exports them (TorchScript and dynamo exporters): unrolled into MatMul + gate tables,
float-identical, quantized with every gate as a table, and with the state inputs/outputs still working."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import edgeact
from edgeact.graph import canonicalise, load_onnx
from edgeact.graph.importer import model_bytes
from edgeact.graph.tflite_import import read_tflite
from edgeact.metrics import sqnr_db

STEPS, BATCH, FEATURES, HIDDEN = 8, 2, 8, 16


class Recurrent(torch.nn.Module):
    def __init__(self, kind: str, directions: int = 1) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.rnn = getattr(torch.nn, kind)(FEATURES, HIDDEN, batch_first=True, bidirectional=directions == 2)
        self.head = torch.nn.Linear(HIDDEN * directions, 3)

    def forward(self, x: torch.Tensor, h0: torch.Tensor):  # type: ignore[no-untyped-def]
        if isinstance(self.rnn, torch.nn.LSTM):
            y, (h, c) = self.rnn(x, (h0, h0))
            return self.head(y[:, -1]), h, c
        y, h = self.rnn(x, h0)
        return self.head(y[:, -1]), h


def _export(kind: str, dynamo: bool, path: Path, directions: int = 1) -> list[str]:
    outputs = ["y", "h", "c"] if kind == "LSTM" else ["y", "h"]
    example = (torch.randn(BATCH, STEPS, FEATURES), torch.zeros(directions, BATCH, HIDDEN))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Recurrent(kind, directions), example, path, dynamo=dynamo, opset_version=18 if dynamo else 17,
                          input_names=["x", "h0"], output_names=outputs, verbose=False)
    return outputs


def _feeds(count: int, seed: int, directions: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(0, 1, (count, BATCH, STEPS, FEATURES)).astype(np.float32),
            "h0": rng.normal(0, 0.5, (count, directions, BATCH, HIDDEN)).astype(np.float32)}


@pytest.mark.parametrize("dynamo,directions", [(False, 1), (True, 1), (False, 2)],
                         ids=["torchscript", "dynamo", "bidirectional"])
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_recurrent_unrolls_and_quantizes(kind: str, dynamo: bool, directions: int, tmp_path: Path) -> None:
    path = tmp_path / f"{kind}.onnx"
    outputs = _export(kind, dynamo, path, directions)
    model = load_onnx(path)
    assert "unroll-recurrent" in canonicalise(model)
    assert not {n.op_type for n in model.graph} & {"LSTM", "GRU"}
    sample = {name: values[0] for name, values in _feeds(1, 3, directions).items()}
    original = ort.InferenceSession(str(path)).run(None, sample)
    unrolled = ort.InferenceSession(model_bytes(model)).run(None, sample)
    for a, b in zip(original, unrolled, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    np.savez(tmp_path / "calib.npz", **_feeds(64, 1, directions))  # stacked: each entry one whole (x, h0) input
    held_out = _feeds(1, 2, directions)
    x, h0 = held_out["x"][0], held_out["h0"][0]
    result = edgeact.quantize(path, tmp_path / "calib.npz", output_dir=tmp_path / "out",  # cells int8: their tables
                              formats=["onnx-table", "onnx-qdq", "tflite"], recurrent_cells="int8")
    for form in ("onnx-table", "onnx-qdq"):  # every step's MatMul shares one int8 copy of the input weights
        weights = [t for t in onnx.load(result.paths[form]).graph.initializer
                   if t.data_type == onnx.TensorProto.INT8 and list(t.dims)[:1] == [FEATURES]]
        assert len(weights) == directions, (form, [t.name for t in weights])
    lowered = read_tflite(result.paths["tflite"].read_bytes())
    stored = [t for t in lowered.tensors if t.data is not None and t.dtype == "int8" and FEATURES in t.shape
              and t.data.size >= FEATURES * HIDDEN]
    assert len(stored) == directions, [(t.name, t.shape) for t in stored]
    gates = [a["function"] for a in result.record["activations"]]
    per_step = {"LSTM": 5, "GRU": 3}[kind]  # LSTM: i, o, f, g, tanh(c); GRU: z, r, candidate
    assert len(gates) == per_step * STEPS * directions and set(gates) == {"sigmoid", "tanh"}
    int8 = ort.InferenceSession(str(result.paths["onnx-table"])).run(None, {"x": x, "h0": h0})
    float_ = ort.InferenceSession(str(path)).run(None, {"x": x, "h0": h0})
    for name, a, b in zip(outputs, float_, int8, strict=True):  # the state outputs too: streaming keeps working
        assert sqnr_db(a, b) > 25.0, name


def test_a_dynamic_sequence_length_unrolls_once_a_static_shape_fixes_it(tmp_path: Path) -> None:
    """A seq-first LSTM with dynamic T and N (torch.onnx dynamic_axes): T comes from the first calibration feed for
    TFLite, N stays the batch (it is in every input and output, T is not in h0), so the LSTM unrolls."""
    class SeqFirst(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.rnn = torch.nn.LSTM(FEATURES, HIDDEN)

        def forward(self, x: torch.Tensor, h0: torch.Tensor):  # type: ignore[no-untyped-def]
            y, (h, _) = self.rnn(x, (h0, h0))
            return y, h

    path = tmp_path / "seq_first.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(SeqFirst(), (torch.randn(STEPS, BATCH, FEATURES), torch.zeros(1, BATCH, HIDDEN)), path,
                          dynamo=False, opset_version=17, input_names=["x", "h0"], output_names=["y", "h"],
                          dynamic_axes={"x": {0: "T", 1: "N"}, "h0": {1: "N"}, "y": {0: "T", 2: "N"}, "h": {1: "N"}})
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "calib.npz", x=rng.normal(0, 1, (6, 1, FEATURES)).astype(np.float32),
             h0=rng.normal(0, 0.5, (1, 1, HIDDEN)).astype(np.float32))
    result = edgeact.quantize(path, tmp_path / "calib.npz", output_dir=tmp_path / "o", formats=["onnx-qdq", "tflite"],
                              recurrent_cells="int8")  # gate tables, as the count below expects
    assert "unroll-recurrent" in result.record["passes"] and result.record["fallbacks"] == []
    assert result.record["static_shapes"]["batch_stays_dynamic"] == {"x": 1, "h0": 1}
    assert len(result.record["activations"]) == 5 * 6  # five gate tables per step, six steps
    assert all(db > 20.0 for db in result.record["evaluation"]["tflite"].values())
