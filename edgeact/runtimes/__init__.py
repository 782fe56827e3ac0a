"""Runtimes edgeact runs models on: onnxruntime, LiteRT (XNNPACK, builtin, reference kernels), TFLite Micro and
edgeact's integer emulator, each behind the one protocol of :mod:`edgeact.runtimes.backends`."""

from __future__ import annotations

import time
from collections.abc import Callable

UNNAMED_MODEL = "the .tflite model"  # how errors name a model whose file the caller did not give


def timed_runs(invoke: Callable[[], object], runs: int, warmup: int) -> list[float]:
    """Milliseconds of each of ``runs`` calls of ``invoke`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        invoke()
        times.append(1e3 * (time.perf_counter() - start))
    return times
