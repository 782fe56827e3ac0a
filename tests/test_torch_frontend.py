"""PyTorch front door: nn.Module, file.py:factory, package.module:factory, TorchScript .pt, ExportedProgram .pt2;
the same int8 quality as starting from the ONNX export; clear errors and nothing written on bad input."""

from __future__ import annotations

import json
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import edgeact
from bench.ort_baseline import run
from edgeact.cli import main
from edgeact.errors import UsageError
from edgeact.metrics import sqnr_db

NETS = textwrap.dedent("""
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.l1, self.l2 = torch.nn.Linear(16, 32), torch.nn.Linear(32, 4)

        def forward(self, x):
            return self.l2(torch.tanh(self.l1(x) * 2.0))

    def build():
        return Net()

    def broken():
        raise RuntimeError("weights file missing")

    class Raises(torch.nn.Module):
        def forward(self, x):
            raise ValueError("forward is not implemented")

    def raises():
        return Raises()
""")


@pytest.fixture()
def workspace(tmp_path: Path, monkeypatch) -> Path:  # type: ignore[no-untyped-def]
    (tmp_path / "nets.py").write_text(NETS)
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(0).normal(0, 1.5, (64, 16)).astype(np.float32))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def invoke(*args: object):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, [str(a) for a in args])


def _net():  # type: ignore[no-untyped-def]
    sys.modules.pop("nets", None)
    import nets

    return nets.Net()


def test_factory_file_gives_the_same_int8_model_as_its_onnx_export(workspace: Path) -> None:
    from_torch = invoke("quantize", "nets.py:build", "--calib", "calib.npz", "-o", "torch", "--format", "onnx-qdq")
    assert from_torch.exit_code == 0, from_torch.output
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_net(), (torch.zeros(1, 16),), "net.onnx", dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["output"], dynamic_axes={"x": {0: "N"}, "output": {0: "N"}})
    from_onnx = edgeact.quantize("net.onnx", "calib.npz", output_dir="onnx", formats=["onnx-qdq"])
    x = {"x": np.random.default_rng(1).normal(0, 1.5, (32, 16)).astype(np.float32)}
    reference = run(Path("net.onnx"), x)
    torch_db = sqnr_db(reference, run(workspace / "torch" / "net.int8.qdq.onnx", x))
    onnx_db = sqnr_db(reference, run(from_onnx.paths["onnx-qdq"], x))
    assert abs(torch_db - onnx_db) < 0.01 and torch_db > 30
    record = json.loads((workspace / "torch" / "net.calibration.json").read_text())
    assert record["frontend"]["kind"] == "pytorch factory" and "torchscript" in record["frontend"]["exporter"]


@pytest.mark.parametrize("kind", ["module", "package", "torchscript", "exported_program"])
def test_every_pytorch_form_quantizes(workspace: Path, kind: str) -> None:
    net = _net().eval()
    example = (torch.zeros(1, 16),)
    if kind == "module":
        model = net
    elif kind == "package":
        model = "nets:build"
    elif kind == "torchscript":
        torch.jit.trace(net, example).save("net.pt")
        model = "net.pt"
    else:
        torch.export.save(torch.export.export(net, example), "net.pt2")
        model = "net.pt2"
    result = edgeact.quantize(model, "calib.npz", output_dir="out", formats=["onnx-table", "tflite"])
    x = np.random.default_rng(1).normal(0, 1.5, (8, 16)).astype(np.float32)
    with torch.no_grad():
        reference = net(torch.from_numpy(x)).numpy()
    rows = [run(result.paths["onnx-table"], {"x": x[i : i + 1]}) for i in range(len(x))]  # .pt2: batch fixed at 1
    assert sqnr_db(reference, np.concatenate(rows)) > 30


def test_input_shape_option_exports_without_calibration_for_the_example(workspace: Path) -> None:
    result = invoke("quantize", "nets.py:build", "--input-shape", "x=1x16", "--calib", "calib.npz", "-o", "out")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "model, extra, expected, code",
    [
        ("nets.py:missing", [], "has no callable 'missing'", 1),
        ("nowhere.py:build", [], "no such file", 1),
        ("nets.py:broken", [], "the factory raised RuntimeError: weights file missing", 1),
        ("nets.py:raises", [], "forward raised ValueError", 1),
        ("nets.py:build", ["--input-shape", "x=1x15"], "forward raised RuntimeError on inputs x=[1, 15]", 1),
        ("nets.py:build", ["--input-shape", "x=1xfoo"], "expected NAME=DIMS", 2),
    ],
)
def test_bad_pytorch_input_is_refused_by_name(workspace: Path, model: str, extra: list, expected: str,
                                             code: int) -> None:
    result = invoke("quantize", model, *extra, "--calib", "calib.npz", "-o", "out")
    assert result.exit_code == code, result.output
    assert expected in result.output
    assert not (workspace / "out").exists()


def test_without_torch_the_message_names_the_extra(workspace: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(UsageError, match=r"pip install 'edgeact\[torch\]'"):
        edgeact.quantize("nets.py:build", "calib.npz", output_dir="out")
    assert not (workspace / "out").exists()


def test_calibrate_shards_of_a_pytorch_model_merge_into_quantize(workspace: Path) -> None:
    np.savez("shard.npz", x=np.random.default_rng(5).normal(0, 1.5, (16, 16)).astype(np.float32))
    assert invoke("calibrate", "nets.py:build", "--calib", "shard.npz", "--stats-out", "s.json").exit_code == 0
    result = invoke("quantize", "nets.py:build", "--calib", "calib.npz", "--stats", "s.json", "-o", "out")
    assert result.exit_code == 0, result.output
    assert json.loads((workspace / "out" / "net.calibration.json").read_text())["calibration"]["samples"] == 80
