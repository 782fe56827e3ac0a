"""edgeact vs onnxruntime.quantization.quantize_static on the example models (same calibration data).

    make bench      # or: .venv/bin/python -m bench.quantize_vs_ort

Output SQNR (dB) against fp32 on 64 held-out samples, both run in onnxruntime; ORT is QDQ, per-channel, MinMax,
S8S8. The detector row measures the scores slice of the concatenated output (boxes are in pixels).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

import edgeact
from bench.ort_baseline import ort_quantize_static, run
from edgeact.metrics import sqnr_db
from examples import onnx_models

MODELS = {
    "MLP, tanh (saturating)": (onnx_models.mlp_tanh, slice(None)),
    "transformer block, erf-GELU (torch)": (lambda: onnx_models.transformer_block("erf"), slice(None)),
    "transformer block, tanh-GELU (torch)": (lambda: onnx_models.transformer_block("tanh"), slice(None)),
    "transformer block, tanh-GELU (jax2tf)": (lambda: onnx_models.transformer_block("tanh_jax"), slice(None)),
    "attention + additive mask (-1e4)": (lambda: onnx_models.transformer_block("erf", masked=True), slice(None)),
    "SiLU conv net": (onnx_models.silu_convnet, slice(None)),
    "detector head: scores after concat": (onnx_models.detector_head, np.s_[:, 4:]),
    "token ids -> embedding -> tanh": (onnx_models.token_classifier, slice(None)),
}


def measure(name: str, model: onnx.ModelProto, part, folder: Path) -> tuple[float, float, float, float]:
    path = folder / "model.onnx"
    onnx.save(model, path)
    calib = onnx_models.sample_inputs(model, 128, seed=1)
    np.savez(folder / "calib.npz", **calib)
    start = time.perf_counter()
    result = edgeact.quantize(path, folder / "calib.npz", output_dir=folder)
    seconds = time.perf_counter() - start
    baseline = ort_quantize_static(path, calib, folder / "ort.onnx")
    held_out = onnx_models.sample_inputs(model, 64, seed=2)
    reference = run(path, held_out)[part]
    ours = [sqnr_db(reference, run(result.paths[f], held_out)[part]) for f in ("onnx-qdq", "onnx-table")]
    return ours[0], ours[1], sqnr_db(reference, run(baseline, held_out)[part]), seconds


def main() -> None:
    print(f"| {'model':<40}| edgeact qdq | edgeact table | onnxruntime | gain | quantize s |")
    print(f"|{'-' * 41}|------------:|--------------:|------------:|-----:|-----------:|")
    for name, (build, part) in MODELS.items():
        with tempfile.TemporaryDirectory() as folder:
            qdq, table, ort_db, seconds = measure(name, build(), part, Path(folder))
        gain = table - ort_db
        print(f"| {name:<40}| {qdq:11.1f} | {table:13.1f} | {ort_db:11.1f} | {gain:+4.1f} | {seconds:10.2f} |")


if __name__ == "__main__":
    main()
