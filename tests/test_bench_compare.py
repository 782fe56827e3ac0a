"""bench.compare reports a peer's failure as a result instead of hiding it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.compare import _quality, _spawn, summary


def test_a_crashing_quantizer_is_a_row_not_an_exception(tmp_path: Path) -> None:
    row = _spawn({"tool": "ort", "model": str(tmp_path / "missing.onnx"), "calib": str(tmp_path / "missing.npz"),
                  "out": str(tmp_path), "method": "MinMax", "activation": "QInt8"})
    assert row["error"].startswith("crashed:")


def test_a_model_that_will_not_load_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    row = _quality(str(broken), np.zeros((1, 4), np.float32), np.zeros((1, 4), np.float32), None)
    assert row["error"].startswith("onnxruntime cannot run it")


def test_summary_keeps_failed_peers_out_of_the_best_row() -> None:
    results = [{"name": "m", "float_accuracy": 90.0, "rows": {
        "edgeact auto": {"sqnr_db": 30.0, "accuracy": 89.5},
        "onnxruntime MinMax QInt8": {"error": "crashed: boom"},
        "onnxruntime Entropy QUInt8": {"sqnr_db": 28.0, "accuracy": 89.0},
    }, "latency": {}}]
    assert "| m | 90.0 | 89.5 (30.0) | 89.0 (28.0), Entropy QUInt8 |" in summary(results)
