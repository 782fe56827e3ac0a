"""Accuracy of the digits examples: float, edgeact int8 (ONNX QDQ, ONNX table, TFLite on LiteRT and TFLite Micro)
and onnxruntime.quantization.quantize_static on the same calibration data.

    python -m examples.digits_eval [NAME ...]        # prints one table row per example
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

import edgeact
from bench.ort_baseline import ort_quantize_static, run
from edgeact.runtimes.litert import run_litert_many
from edgeact.runtimes.tflm import run_tflm_many
from examples.train_digits import FOLDER, MODELS


def _tflite_logits(payload: bytes, x: np.ndarray, runtime: str) -> np.ndarray:
    runner = run_tflm_many if runtime == "tflm" else run_litert_many
    return np.concatenate([outputs[0] for outputs in runner(payload, [[x[i : i + 1]] for i in range(len(x))])])


def evaluate(name: str, folder: Path = FOLDER, work: Path | None = None) -> dict[str, float]:
    """Top-1 accuracy (%) of every form of example ``name`` on its 500 eval digits."""
    work = work or Path(tempfile.mkdtemp(prefix=f"edgeact-{name}-"))
    model, calib = folder / f"{name}.onnx", folder / f"{name}.calib.npz"
    x = np.load(folder / f"{name}.eval.npz")["x"]
    labels = np.load(folder / "labels.npz")["labels"]
    results = {}
    for target in ("litert", "tflm"):
        formats = ["onnx-qdq", "onnx-table", "tflite"] if target == "litert" else ["tflite"]
        result = edgeact.quantize(model, calib, output_dir=work / target, formats=formats, target=target)
        if target == "litert":
            for form in ("onnx-qdq", "onnx-table"):
                results[f"edgeact {form}"] = run(result.paths[form], {"x": x})
        results[f"edgeact tflite {target}"] = _tflite_logits(result.paths["tflite"].read_bytes(), x, target)
    results["float"] = run(model, {"x": x})
    baseline = ort_quantize_static(model, dict(np.load(calib)), work / "ort.int8.onnx")
    results["onnxruntime int8"] = run(baseline, {"x": x})
    return {form: 100.0 * float((logits.argmax(axis=1) == labels).mean()) for form, logits in results.items()}


COLUMNS = ("float", "edgeact onnx-qdq", "edgeact onnx-table", "edgeact tflite litert", "edgeact tflite tflm",
           "onnxruntime int8")


def main(names: list[str]) -> None:
    print("| example          | " + " | ".join(COLUMNS) + " |")
    print("|------------------|" + "|".join("-" * (len(c) + 1) + ":" for c in COLUMNS) + "|")
    for name in names or list(MODELS):
        scores = evaluate(name)
        print(f"| {name:<16} | " + " | ".join(f"{scores[c]:{len(c)}.1f}" for c in COLUMNS) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
