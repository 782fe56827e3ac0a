"""An unrolled LSTM/GRU's gates and cell state: int8 error there compounds step after step. They get int16 grids
where the target runs the cell's ops in 16x8 (as TFLite's integer LSTM keeps them), stay float where its fast path
takes no int16 (LiteRT's XNNPACK delegate), and int8 on request; the cell's output h stays int8 either way."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

import edgeact
from edgeact.graph import canonicalise, load_onnx
from edgeact.graph.importer import model_bytes
from edgeact.graph.view import view_of
from edgeact.metrics import sqnr_db
from edgeact.planning.target_forms import recurrent_cell_precision, target_profile

ROOT = Path(__file__).resolve().parent.parent
STEPS, FEATURES, HIDDEN = 24, 8, 32


class Tagger(torch.nn.Module):
    """A sequence tagger: a recurrent layer read at every step, then a linear head."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.rnn = getattr(torch.nn, kind)(FEATURES, HIDDEN, batch_first=True)
        self.head = torch.nn.Linear(HIDDEN, 4)
        with torch.no_grad():  # a long memory, as trained sequence models have: the forget (LSTM) / update (GRU)
            self.rnn.bias_ih_l0[HIDDEN: 2 * HIDDEN] += 3.0  # gate near 1, so the state sums many steps
            self.rnn.weight_ih_l0 *= 2.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0])


def _model(kind: str, folder: Path) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """The exported tagger, its calibration data and a held-out feed (a slowly drifting signal, so the state
    carries information across steps)."""
    path = folder / f"{kind}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Tagger(kind), (torch.randn(1, STEPS, FEATURES),), path, dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["tags"])
    rng = np.random.default_rng(1)

    def signal(count: int) -> np.ndarray:
        return np.cumsum(rng.normal(0, 0.4, (count, 1, STEPS, FEATURES)), axis=2).astype(np.float32)

    np.savez(folder / "calib.npz", x=signal(64))
    return path, folder / "calib.npz", {"x": signal(16)}


def _held_out_sqnr(result: edgeact.QuantizeResult, path: Path, held_out: dict[str, np.ndarray]) -> float:
    session_fp32 = ort.InferenceSession(str(path))
    session_int8 = ort.InferenceSession(str(result.paths["onnx-qdq"]))
    ref = np.concatenate([session_fp32.run(None, {"x": x})[0] for x in held_out["x"]])
    got = np.concatenate([session_int8.run(None, {"x": x})[0] for x in held_out["x"]])
    return sqnr_db(ref, got)


def test_the_unroller_tags_every_cell_value_but_its_output_h(tmp_path: Path) -> None:
    path, _, _ = _model("LSTM", tmp_path)
    model = load_onnx(path)
    canonicalise(model)
    view = view_of(model)
    cell_nodes = [n for n in view.nodes if any(view.values[o].cell for o in n.outputs)]
    assert {view.values[o].cell for n in cell_nodes for o in n.outputs} == {"LSTM"}
    # per step: x.W + b (fused Linear), h.R, their sum, Split, 3 sigmoids, 2 tanh, i*g, f*c, c; the first step has
    # no h.R, sum, sigmoid(f), f*c or c = f*c + i*g (h and c start at zero)
    assert len(cell_nodes) == 12 * STEPS - 5, sorted(n.op_type for n in cell_nodes)
    outputs_h = [n for n in view.nodes if n.op_type == "Mul" and n not in cell_nodes]
    assert len(outputs_h) == STEPS  # h = o * tanh(c): untagged, it keeps an int8 grid
    # the tags live in memory only: the model's fingerprint (baselines, saved statistics) is what it was before
    assert b"recurrent_cell" not in model_bytes(model)


def test_the_target_profile_decides_int16_or_float() -> None:
    assert recurrent_cell_precision(target_profile("litert-reference"))[0] == "int16"
    precision, why = recurrent_cell_precision(target_profile("litert"))  # XNNPACK delegates no int16 op
    assert precision == "float" and "litert-xnnpack" in why
    assert recurrent_cell_precision(target_profile("tflm"))[0] == "float"  # no int16 GATHER for the gate tables
    assert recurrent_cell_precision(target_profile("litert"), "int8") == ("int8", "--recurrent-cells int8")


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_int16_and_float_cells_beat_int8_cells_and_h_stays_int8(kind: str, tmp_path: Path) -> None:
    path, calib, held_out = _model(kind, tmp_path)
    runs = {}
    for label, target, cells in (("int8", "litert", "int8"), ("float", "litert", "auto"),
                                 ("int16", "litert-reference", "auto")):
        runs[label] = edgeact.quantize(path, calib, output_dir=tmp_path / label, formats=["onnx-qdq", "tflite"],
                                       target=target, recurrent_cells=cells)
    view = view_of(_canonical(path))
    tagged = {name for name, value in view.values.items() if value.cell}
    records = {label: result.record for label, result in runs.items()}

    assert not any(t["dtype"] == "int16" for t in records["int8"]["tensors"].values())
    assert not any("recurrent cell" in f["reason"] for f in records["int8"]["fallbacks"])

    kept = [f for f in records["float"]["fallbacks"] if "recurrent cell" in f["reason"]]
    assert all("float there" in f["reason"] for f in kept)
    in_cells = {n.name for n in view.nodes if set(n.outputs) & tagged or {i for i in n.inputs if i in tagged} ==
                {i for i in n.inputs if i and view.values[i].constant is None}}
    assert {f["node"] for f in kept} == in_cells  # the gates, the state and h made from them: float

    wide = {name for name, t in records["int16"]["tensors"].items() if t["dtype"] == "int16"}
    assert tagged & set(records["int16"]["tensors"]) <= wide  # every cell value with a grid is int16
    h_values = {n.outputs[0] for n in view.nodes if n.outputs[0] not in tagged and set(n.inputs) & tagged
                and n.op_type in ("Mul", "Sub")}
    assert h_values and all(records["int16"]["tensors"][h]["dtype"] == "int8" for h in h_values)

    sqnr = {label: _held_out_sqnr(result, path, held_out) for label, result in runs.items()}
    assert sqnr["float"] > sqnr["int8"] + 3.0 and sqnr["int16"] > sqnr["int8"] + 3.0, sqnr


def _canonical(path: Path):  # type: ignore[no-untyped-def]
    model = load_onnx(path)
    canonicalise(model)
    return model


def test_an_int16_cell_runs_on_litert_bit_exact_with_the_emulator(tmp_path: Path) -> None:
    path, calib, held_out = _model("LSTM", tmp_path)
    result = edgeact.quantize(path, calib, output_dir=tmp_path / "out", formats=["tflite"], target="litert-reference")
    np.savez(tmp_path / "eval.npz", x=held_out["x"][:4])
    report = tmp_path / "report.json"
    run = subprocess.run([sys.executable, "-m", "edgeact.cli", "profile-device", str(result.paths["tflite"]),
                          "--device", "litert-reference", "--baseline", str(path), "--data", str(tmp_path / "eval.npz"),
                          "--json", str(report)], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    outputs = json.loads(report.read_text())["outputs"]
    assert outputs["tags"]["emulator"]["equal_codes"] == 1.0


def test_the_cli_names_the_choice_once_and_int8_cells_on_request(tmp_path: Path) -> None:
    """The summary folds the cell's float nodes into one line with their shared reason (the record lists each);
    --recurrent-cells int8 keeps every cell int8."""
    path, calib, _ = _model("LSTM", tmp_path)

    def quantize(*extra: str) -> tuple[subprocess.CompletedProcess, dict]:  # type: ignore[type-arg]
        out = tmp_path / ("out" + "".join(extra).replace("-", ""))
        run = subprocess.run([sys.executable, "-m", "edgeact.cli", "quantize", str(path), "--calib", str(calib),
                              "--format", "onnx-qdq", "-o", str(out), *extra], capture_output=True, text=True, cwd=ROOT)
        assert run.returncode == 0, run.stderr
        return run, json.loads((out / "LSTM.calibration.json").read_text())

    run, record = quantize()
    kept = [f for f in record["fallbacks"] if "recurrent cell" in f["reason"]]
    lines = [line for line in run.stdout.splitlines() if "recurrent cell" in line]
    assert len(kept) > 200 and len(lines) == 1 and f"float  {len(kept)} nodes" in lines[0]
    assert record["options"]["recurrent_cells"] == "auto"
    run, record = quantize("--recurrent-cells", "int8")
    assert not any("recurrent cell" in f["reason"] for f in record["fallbacks"]) and "recurrent cell" not in run.stdout


def test_sensitivity_ranks_the_groups_of_the_plan_quantize_makes_for_the_cells(tmp_path: Path) -> None:
    """With float cells (the default on litert) the cells hold no int8 group to rank; int8 cells are ranked too."""
    path, calib, _ = _model("GRU", tmp_path)
    default = edgeact.sensitivity(path, calib, samples=4)
    int8 = edgeact.sensitivity(path, calib, samples=4, recurrent_cells="int8")
    assert len(int8.groups) > len(default.groups) + STEPS
    assert int8.full_int8.sqnr_db < default.full_int8.sqnr_db
