"""The `make demo` report: the digits transformer (GELU) quantized to ONNX and TFLite, then float vs int8 accuracy
on the 500 eval digits, the worst layers (per-tensor SQNR, int8 vs float) and the worst activation tables.

    python -m examples.digits_demo [OUTDIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import edgeact
from bench.ort_baseline import run
from edgeact.api import CanonicalModel
from edgeact.graph import view_of
from edgeact.reports.layers import layer_errors
from edgeact.runtimes.litert import run_litert_many
from edgeact.runtimes.tflm import run_tflm_many
from examples.train_digits import FOLDER

NAME = "transformer_gelu"


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return 100.0 * float((logits.argmax(axis=1) == labels).mean())


def main(out: Path) -> None:
    model, calib = FOLDER / f"{NAME}.onnx", FOLDER / f"{NAME}.calib.npz"
    x, labels = np.load(FOLDER / f"{NAME}.eval.npz")["x"], np.load(FOLDER / "labels.npz")["labels"]
    litert = edgeact.quantize(model, calib, output_dir=out, formats=["onnx-qdq", "onnx-table", "tflite"])
    tflm = edgeact.quantize(model, calib, output_dir=out / "tflm", formats=["tflite"], target="tflm")
    samples = [[x[i : i + 1]] for i in range(len(x))]
    scores = {
        "float32 (onnxruntime)": _accuracy(run(model, {"x": x}), labels),
        "int8 QDQ ONNX (onnxruntime)": _accuracy(run(litert.paths["onnx-qdq"], {"x": x}), labels),
        "int8 table ONNX (onnxruntime)": _accuracy(run(litert.paths["onnx-table"], {"x": x}), labels),
        "int8 .tflite (LiteRT + XNNPACK)": _accuracy(
            np.concatenate([o[0] for o in run_litert_many(litert.paths["tflite"].read_bytes(), samples)]), labels),
        "int8 .tflite (TFLite Micro)": _accuracy(
            np.concatenate([o[0] for o in run_tflm_many(tflm.paths["tflite"].read_bytes(), samples)]), labels),
    }
    print(f"\n{NAME}: accuracy on {len(labels)} eval digits")
    for label, score in scores.items():
        print(f"  {label:<34}{score:6.1f}%")
    canonical = CanonicalModel.load(model)
    view = view_of(canonical.model)
    producers = {out: node.name for node in view.nodes for out in node.outputs}
    errors = layer_errors(canonical.model, litert.plan, litert.paths["onnx-qdq"].read_bytes(), [{"x": x}],
                          view.outputs, producers)
    clipped = {act.input: act.function.name for act in litert.plan.activations}
    print("\nworst layers (SQNR of the int8 tensor vs float, eval set)")
    for error in errors[:5]:
        note = (f"; clipped on purpose for its {clipped[error.tensor]} table: what counts is the error after it"
                if error.tensor in clipped else "")
        print(f"  {error.sqnr_db:6.1f} dB  {error.tensor}  (from {error.producer or 'the graph input'}{note})")
    print("\nactivation tables (error vs the int8 floor)")
    for act in litert.record["activations"]:
        e = act["error"]
        print(f"  {act['node']}: {act['function']}, input range [{act['input_range']['lo']:.3g}, "
              f"{act['input_range']['hi']:.3g}], rms {e['rms_error']:.3g} vs floor {e['rms_floor']:.3g}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "out/demo/digits"))
