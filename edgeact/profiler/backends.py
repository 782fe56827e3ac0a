"""Run an int8 model the way a device profile says: a real runtime (LiteRT with XNNPACK or reference kernels,
TFLite Micro, onnxruntime), or edgeact's emulator for targets with no runtime here. Returns outputs and, where the
backend can show them, every intermediate tensor."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgeact.devices.profiles import DeviceProfile
from edgeact.exporters.tflite.graph import LoweredGraph
from edgeact.runtimes.emulator import emulate, rules_for
from edgeact.runtimes.litert import litert_interpreter, run_litert_many, run_litert_tensors
from edgeact.runtimes.onnxruntime import ort_session, run_ort
from edgeact.runtimes.tflm import run_tflm_many, tflm_invoker

Sample = list[np.ndarray]


@dataclass
class DeviceRun:
    outputs: list[list[np.ndarray]]  # per sample, per graph output
    tensors: list[dict[int, np.ndarray]] | None  # per sample, every tensor (None: the backend hides them)


def run_device(profile: DeviceProfile, payload: bytes, graph: LoweredGraph | None, samples: list[Sample],
               output_names: list[str], keep_tensors: bool) -> DeviceRun:
    """Run every sample on ``profile``'s backend."""
    backend = profile.backend
    if backend == "onnxruntime":
        session = ort_session(payload, "int8 ONNX model")
        names = [i.name for i in session.get_inputs()]
        return DeviceRun([list(run_ort(session, dict(zip(names, s, strict=True)), output_names).values())
                          for s in samples], None)
    if backend == "emulator":
        rules = rules_for(profile)
        tensors = [emulate(graph, sample, rules) for sample in samples]
        return DeviceRun([[t[i] for i in graph.outputs] for t in tensors], tensors)
    if backend == "litert-reference" and keep_tensors:
        tensors = [run_litert_tensors(payload, sample, "reference") for sample in samples]
        return DeviceRun([[t[i] for i in graph.outputs] for t in tensors], tensors)
    if backend == "tflm":
        return DeviceRun(run_tflm_many(payload, samples), None)
    kernels = "xnnpack" if backend == "litert-xnnpack" else "reference"
    return DeviceRun(run_litert_many(payload, samples, kernels), None)


def latency_ms(profile: DeviceProfile, payload: bytes, sample: Sample, runs: int = 50,
               warmup: int = 5) -> dict[str, float] | None:
    """Median and p95 of single-sample runs after a warm-up (None for emulated devices)."""
    invoke = _invoker(profile, payload, sample)
    if invoke is None:
        return None
    for _ in range(warmup):
        invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        invoke()
        times.append(1e3 * (time.perf_counter() - start))
    ordered = sorted(times)
    return {"median": statistics.median(times), "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
            "runs": runs, "threads": profile.threads}


def _invoker(profile: DeviceProfile, payload: bytes, sample: Sample) -> Callable[[], object] | None:
    if profile.backend == "onnxruntime":
        session = ort_session(payload, "int8 ONNX model")
        feeds = dict(zip([i.name for i in session.get_inputs()], sample, strict=True))
        return lambda: session.run(None, feeds)
    if profile.backend in ("litert-xnnpack", "litert-reference"):
        kernels = "xnnpack" if profile.backend == "litert-xnnpack" else "reference"
        interpreter = litert_interpreter(payload, kernels, profile.threads)
        for detail, value in zip(interpreter.get_input_details(), sample, strict=True):
            interpreter.set_tensor(detail["index"], np.asarray(value, dtype=detail["dtype"]))
        return interpreter.invoke
    if profile.backend == "tflm":
        return tflm_invoker(payload, sample)
    return None
