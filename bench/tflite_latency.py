"""int8 vs float32 .tflite latency on LiteRT with XNNPACK, 1 and 2 threads (median of interleaved runs).

    make bench      # or: .venv/bin/python -m bench.tflite_latency

Each example model is quantized by edgeact (target litert) with its float32 baseline; the two interpreters run
alternately (int8, fp32, int8, ...) so that machine noise hits both alike; the table shows the median per run.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

import edgeact
from edgeact.runtimes.litert import litert_interpreter
from examples import onnx_models

MODELS = {
    "MLP, tanh": onnx_models.mlp_tanh,
    "transformer block, GELU": lambda: onnx_models.transformer_block("erf"),
    "SiLU conv net": onnx_models.silu_convnet,
    "detector head": onnx_models.detector_head,
}
WARMUP, RUNS = 20, 300


def _ready(payload: bytes, threads: int, feeds: list[np.ndarray]):  # type: ignore[no-untyped-def]
    interpreter = litert_interpreter(payload, "xnnpack", threads)
    for detail, value in zip(interpreter.get_input_details(), feeds, strict=True):
        interpreter.set_tensor(detail["index"], np.asarray(value, dtype=detail["dtype"]))
    return interpreter


def interleaved_medians(payloads: dict[str, bytes], threads: int, feeds: list[np.ndarray]) -> dict[str, float]:
    interpreters = {name: _ready(payload, threads, feeds) for name, payload in payloads.items()}
    times: dict[str, list[float]] = {name: [] for name in payloads}
    for run in range(WARMUP + RUNS):
        for name, interpreter in interpreters.items():
            start = time.perf_counter()
            interpreter.invoke()
            if run >= WARMUP:
                times[name].append(time.perf_counter() - start)
    return {name: 1e6 * statistics.median(values) for name, values in times.items()}


def main() -> None:
    print("| model                     | threads | int8 µs | fp32 µs | int8 / fp32 |")
    print("|---------------------------|--------:|--------:|--------:|------------:|")
    for label, build in MODELS.items():
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            model = build()
            onnx.save(model, folder / "m.onnx")
            data = onnx_models.sample_inputs(model, 32, seed=1)
            np.savez(folder / "calib.npz", **data)
            result = edgeact.quantize(folder / "m.onnx", folder / "calib.npz", output_dir=folder,
                                      formats=["tflite"], float_tflite=True)
            payloads = {kind: result.paths[form].read_bytes() for kind, form in
                        (("int8", "tflite"), ("fp32", "fp32-tflite"))}
            feeds = [data[value.name][:1] for value in model.graph.input]
            for threads in (1, 2):
                medians = interleaved_medians(payloads, threads, feeds)
                print(f"| {label:<26}| {threads:7d} | {medians['int8']:7.1f} | {medians['fp32']:7.1f} |"
                      f" {medians['int8'] / medians['fp32']:11.2f} |")


if __name__ == "__main__":
    main()
