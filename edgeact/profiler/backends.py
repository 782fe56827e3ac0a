"""Run an int8 model the way a device profile says: a real runtime (LiteRT with XNNPACK or reference kernels,
TFLite Micro, onnxruntime), or edgeact's emulator for targets with no runtime here. Returns outputs and, where the
backend can show them, every intermediate tensor."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgeact.devices.profiles import DeviceProfile
from edgeact.errors import ModelFormatError
from edgeact.exporters.tflite.graph import LoweredGraph
from edgeact.runtimes import UNNAMED_MODEL, timed_runs
from edgeact.runtimes.emulator import Rules, emulate, rules_for
from edgeact.runtimes.litert import litert_interpreter, run_litert_many, run_litert_tensors
from edgeact.runtimes.onnxruntime import ort_session, run_ort
from edgeact.runtimes.tflm import run_tflm_many, tflm_latency

Sample = list[np.ndarray]
@dataclass
class DeviceRun:
    outputs: list[list[np.ndarray]]  # per sample, per graph output
    tensors: list[dict[int, np.ndarray]] | None  # per sample, every tensor (None: the backend hides them)


def run_device(profile: DeviceProfile, payload: bytes, graph: LoweredGraph | None, samples: list[Sample],
               output_names: list[str], keep_tensors: bool, source: str = UNNAMED_MODEL) -> DeviceRun:
    """Run every sample on ``profile``'s backend (errors name ``source``, the model's file)."""
    backend = profile.backend
    if backend == "onnxruntime":
        session = ort_session(payload, "int8 ONNX model")
        names = [i.name for i in session.get_inputs()]
        return DeviceRun([list(run_ort(session, dict(zip(names, s, strict=True)), output_names).values())
                          for s in samples], None)
    if backend == "emulator":
        rules = rules_for(profile)
        tensors = [emulate_model(graph, sample, rules, source) for sample in samples]
        return DeviceRun([[t[i] for i in graph.outputs] for t in tensors], tensors)
    if backend == "litert-reference" and keep_tensors:
        tensors = [run_litert_tensors(payload, sample, "reference", source) for sample in samples]
        return DeviceRun([[t[i] for i in graph.outputs] for t in tensors], tensors)
    if backend == "tflm":
        return DeviceRun(run_tflm_many(payload, samples, source), None)
    kernels = "xnnpack" if backend == "litert-xnnpack" else "reference"
    return DeviceRun(run_litert_many(payload, samples, kernels, source), None)


def emulate_model(graph: LoweredGraph, sample: Sample, rules: Rules, source: str) -> dict[int, np.ndarray]:
    """The emulator on a model read from a file: a graph it cannot run (shapes or parameters that disagree, which
    the flatbuffer verifier does not check) is an error naming the file, not a crash."""
    try:
        return emulate(graph, sample, rules)
    except (ValueError, IndexError, TypeError) as exc:
        raise ModelFormatError(f"{source}: edgeact's integer emulator cannot run it ({exc}); its tensor shapes or "
                               "operator parameters disagree") from exc


def latency_ms(profile: DeviceProfile, payload: bytes, sample: Sample, runs: int = 50,
               warmup: int = 5, source: str = UNNAMED_MODEL) -> dict[str, float] | None:
    """Median and p95 of single-sample runs after a warm-up (None for emulated devices)."""
    times = _timings(profile, payload, sample, runs, warmup, source)
    if times is None:
        return None
    ordered = sorted(times)
    return {"median": statistics.median(times), "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
            "runs": runs, "threads": profile.threads}


def _timings(profile: DeviceProfile, payload: bytes, sample: Sample, runs: int, warmup: int,
             source: str) -> list[float] | None:
    """Milliseconds per run; TFLite Micro times itself in its child process (no pipe round trip in the numbers)."""
    if profile.backend == "tflm":
        return tflm_latency(payload, sample, runs, warmup, source)
    invoke = _invoker(profile, payload, sample, source)
    return None if invoke is None else timed_runs(invoke, runs, warmup)


def _invoker(profile: DeviceProfile, payload: bytes, sample: Sample, source: str) -> Callable[[], object] | None:
    if profile.backend == "onnxruntime":
        session = ort_session(payload, "int8 ONNX model")
        feeds = dict(zip([i.name for i in session.get_inputs()], sample, strict=True))
        return lambda: session.run(None, feeds)
    if profile.backend in ("litert-xnnpack", "litert-reference"):
        kernels = "xnnpack" if profile.backend == "litert-xnnpack" else "reference"
        interpreter = litert_interpreter(payload, kernels, profile.threads, source=source)
        for detail, value in zip(interpreter.get_input_details(), sample, strict=True):
            interpreter.set_tensor(detail["index"], np.asarray(value, dtype=detail["dtype"]))
        return interpreter.invoke
    return None
