"""Models exported by torch.onnx (TorchScript and dynamo exporters) fuse as the patterns promise and quantize."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import edgeact
from bench.ort_baseline import run
from edgeact.graph import canonicalise, load_onnx
from edgeact.metrics import sqnr_db


class Block(torch.nn.Module):
    def __init__(self, approximate: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(8, 16)
        self.gelu = torch.nn.GELU(approximate=approximate)
        self.norm = torch.nn.LayerNorm(16)
        self.silu = torch.nn.SiLU()
        self.hardswish = torch.nn.Hardswish()
        self.head = torch.nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.hardswish(self.silu(self.norm(self.gelu(self.linear(x))))))


def _export(approximate: str, dynamo: bool, path: Path) -> None:
    example = (torch.randn(2, 4, 8),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(Block(approximate), example, path, dynamo=True, opset_version=18,
                              input_names=["x"], output_names=["y"], verbose=False)
        else:
            torch.onnx.export(Block(approximate), example, path, dynamo=False, opset_version=17,
                              input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "N"}})


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("approximate, gelu", [("none", "gelu"), ("tanh", "gelu_tanh")])
def test_torch_export_fuses_and_quantizes(approximate: str, gelu: str, dynamo: bool, tmp_path: Path) -> None:
    path = tmp_path / "block.onnx"
    _export(approximate, dynamo, path)
    model = load_onnx(path)
    canonicalise(model)
    assert [n.op_type for n in model.graph] == ["Linear", gelu, "LayerNormalization", "silu", "HardSwish", "Linear"]
    batch = 2 if dynamo else 64  # the dynamo export fixes the batch axis at the example's size
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "calib.npz", x=rng.normal(0, 1.5, (batch * 32 if dynamo else 64, 4, 8)).astype(np.float32))
    result = edgeact.quantize(path, tmp_path / "calib.npz", output_dir=tmp_path / "out")
    assert sorted(a["function"] for a in result.record["activations"]) == sorted([gelu, "silu", "hardswish"])
    held_out = {"x": rng.normal(0, 1.5, (batch, 4, 8)).astype(np.float32)}
    assert sqnr_db(run(path, held_out), run(result.paths["onnx-table"], held_out)) > 25.0
