"""Run .tflite models on TFLite Micro through the ``tflite-micro`` package's Python interpreter.

TFLite Micro trusts the model it is given: every model is verified first (:mod:`edgeact.runtimes.tflite_verify`),
and the interpreter itself runs in edgeact's child process (:mod:`edgeact.runtimes.isolation`), so that a crash in
its C++ is reported as an error naming the model. The child does all the runs of a call (and the timed loop for
latency) and sends back only the outputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeact.errors import RuntimeUnavailableError
from edgeact.runtimes import UNNAMED_MODEL, timed_runs
from edgeact.runtimes.isolation import run_isolated
from edgeact.runtimes.tflite_verify import verify_tflite

MIN_ARENA_BYTES = 64 * 1024
RUNTIME = "TFLite Micro"
def run_tflm(model: bytes, inputs: list[np.ndarray], source: str = UNNAMED_MODEL) -> list[np.ndarray]:
    """Run ``model`` once on TFLite Micro's reference kernels and return its outputs (errors name ``source``)."""
    return run_tflm_many(model, [inputs], source)[0]


def run_tflm_many(model: bytes, samples: list[list[np.ndarray]], source: str = UNNAMED_MODEL) -> list[list[np.ndarray]]:
    """Run ``model`` once per sample with one interpreter (its arena is reused between runs)."""
    verify_tflite(model, source)
    return run_isolated(RUNTIME, source, _run_many, bytes(model), samples, source)


def tflm_latency(model: bytes, sample: list[np.ndarray], runs: int, warmup: int,
                 source: str = UNNAMED_MODEL) -> list[float]:
    """Milliseconds of each of ``runs`` inferences on ``sample`` after ``warmup`` untimed ones (timed in the
    child, around the interpreter's invoke only)."""
    verify_tflite(model, source)
    return run_isolated(RUNTIME, source, _latency, bytes(model), sample, runs, warmup, source)


# ---- in the child process ----------------------------------------------------------------------------------------
def _runtime_module() -> Any:
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise RuntimeUnavailableError("TFLite Micro is not installed: pip install tflite-micro") from None
    return runtime


def _interpreter(model: bytes, source: str) -> Any:
    runtime = _runtime_module()
    try:
        return runtime.Interpreter.from_bytes(model, arena_size=max(MIN_ARENA_BYTES, 16 * len(model)))
    except RuntimeError as exc:
        raise RuntimeUnavailableError(f"TFLite Micro refused {source}: {exc}") from exc


def _set_inputs(interpreter: Any, sample: list[np.ndarray]) -> None:
    for index, value in enumerate(sample):
        dtype = interpreter.get_input_details(index)["dtype"]
        interpreter.set_input(np.ascontiguousarray(value, dtype=dtype), index)


def _output_count(model: bytes) -> int:
    from edgeact.tflite.schema import schema_module

    return schema_module("Model").Model.GetRootAsModel(model, 0).Subgraphs(0).OutputsLength()


def _run_many(model: bytes, samples: list[list[np.ndarray]], source: str) -> list[list[np.ndarray]]:
    interpreter, outputs = _interpreter(model, source), _output_count(model)
    results = []
    try:
        for sample in samples:
            _set_inputs(interpreter, sample)
            interpreter.invoke()
            results.append([np.array(interpreter.get_output(i)) for i in range(outputs)])
    except RuntimeError as exc:
        raise RuntimeUnavailableError(f"TFLite Micro failed to run {source}: {exc}") from exc
    return results


def _latency(model: bytes, sample: list[np.ndarray], runs: int, warmup: int, source: str) -> list[float]:
    interpreter = _interpreter(model, source)
    try:
        _set_inputs(interpreter, sample)
        return timed_runs(interpreter.invoke, runs, warmup)
    except RuntimeError as exc:
        raise RuntimeUnavailableError(f"TFLite Micro failed to run {source}: {exc}") from exc
