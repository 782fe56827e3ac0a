"""`edgeact sensitivity` against one calibration pass of the same model and data (the issue's target: at most 10x on
a 300-op model), in one process, on a 12-block transformer built here (505 ONNX ops) and the digits examples.

    make bench      # or: .venv/bin/python -m bench.sensitivity_speed

Calibration: ``edgeact.calibrate`` over every calibration sample. Sensitivity: ``edgeact.sensitivity`` with its
defaults (16 samples per trial, 12 segments), which also prepares, calibrates and plans.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

import edgeact
from examples.onnx_models import GraphBuilder, sample_inputs, tensor

DIGITS = Path(__file__).resolve().parents[1] / "examples" / "digits"


def deep_transformer(blocks: int = 12, width: int = 32, seq: int = 16, seed: int = 0) -> onnx.ModelProto:
    """``blocks`` pre-LN attention + GELU MLP blocks, as torch writes them."""
    g = GraphBuilder(seed)
    x = "x"
    for _ in range(blocks):
        h = g.layer_norm(x, width)
        q, k, v = (g.linear(h, width, width) for _ in range(3))
        scores = g.op("Div", g.op("MatMul", q, g.op("Transpose", k, perm=[0, 2, 1])), g.const(math.sqrt(width)))
        x = g.op("Add", x, g.linear(g.op("MatMul", g.op("Softmax", scores, axis=-1), v), width, width))
        h = g.gelu_erf_torch(g.linear(g.layer_norm(x, width), width, 4 * width))
        x = g.op("Add", x, g.linear(h, 4 * width, width))
    g.nodes.append(helper.make_node("Identity", [x], ["y"], name="out"))
    return g.model([tensor("x", ["N", seq, width])], [tensor("y", ["N", seq, width])])


def measure(name: str, model: Path, calib: Path) -> str:
    ops = len(onnx.load(model).graph.node)
    start = time.perf_counter()
    edgeact.calibrate(model, calib)
    calibrate_s = time.perf_counter() - start
    start = time.perf_counter()
    report = edgeact.sensitivity(model, calib)
    sensitivity_s = time.perf_counter() - start
    return (f"| {name:<28}| {ops:>4} | {len(report.groups):>6} | {report.trials:>6} | {calibrate_s:>11.2f} | "
            f"{sensitivity_s:>13.2f} | {sensitivity_s / calibrate_s:>5.1f}× |")


def main() -> None:
    print("| model                       |  ops | groups | trials | calibrate s | sensitivity s | ratio |")
    print("|-----------------------------|-----:|-------:|-------:|------------:|--------------:|------:|")
    with tempfile.TemporaryDirectory() as folder:
        model = deep_transformer()
        path, data = Path(folder) / "deep.onnx", Path(folder) / "deep.npz"
        onnx.save(model, path)
        np.savez(data, **sample_inputs(model, 512, seed=1))
        print(measure("12-block transformer", path, data), flush=True)
    for name in ("mlp_tanh", "transformer_gelu", "cnn_silu", "lstm"):
        print(measure(f"digits {name}", DIGITS / f"{name}.onnx", DIGITS / f"{name}.calib.npz"), flush=True)


if __name__ == "__main__":
    main()
