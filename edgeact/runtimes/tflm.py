"""Run .tflite models on TFLite Micro through the ``tflite-micro`` package's Python interpreter."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeact.errors import RuntimeUnavailableError

MIN_ARENA_BYTES = 64 * 1024


def _runtime_module() -> Any:
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise RuntimeUnavailableError("TFLite Micro is not installed: pip install tflite-micro") from None
    return runtime


def _output_count(runtime: Any, model: bytes) -> int:
    return len(runtime.convert_bytearray_to_object(bytearray(model)).subgraphs[0].outputs)


def run_tflm(model: bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run ``model`` once on TFLite Micro's reference kernels and return its outputs."""
    return run_tflm_many(model, [inputs])[0]


def tflm_invoker(model: bytes, sample: list[np.ndarray]):  # type: ignore[no-untyped-def]
    """An interpreter loaded once with ``sample`` set: calling the result runs one inference (for timing)."""
    runtime = _runtime_module()
    try:
        interpreter = runtime.Interpreter.from_bytes(bytes(model), arena_size=max(MIN_ARENA_BYTES, 16 * len(model)))
        for index, value in enumerate(sample):
            dtype = interpreter.get_input_details(index)["dtype"]
            interpreter.set_input(np.ascontiguousarray(value, dtype=dtype), index)
    except RuntimeError as exc:
        raise RuntimeUnavailableError(f"TFLite Micro refused the model: {exc}") from exc
    return interpreter.invoke


def run_tflm_many(model: bytes, samples: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    """Run ``model`` once per sample with one interpreter (its arena is reused between runs)."""
    runtime = _runtime_module()
    try:
        interpreter = runtime.Interpreter.from_bytes(
            bytes(model), arena_size=max(MIN_ARENA_BYTES, 16 * len(model))
        )
        outputs = _output_count(runtime, model)
        results = []
        for sample in samples:
            for index, value in enumerate(sample):
                dtype = interpreter.get_input_details(index)["dtype"]
                interpreter.set_input(np.ascontiguousarray(value, dtype=dtype), index)
            interpreter.invoke()
            results.append([np.array(interpreter.get_output(i)) for i in range(outputs)])
        return results
    except RuntimeError as exc:
        raise RuntimeUnavailableError(f"TFLite Micro refused the model: {exc}") from exc
