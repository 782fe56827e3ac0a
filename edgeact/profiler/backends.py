"""Run an int8 model the way a device profile says, on its backend (:mod:`edgeact.runtimes.backends`): outputs and,
where the backend can show them, every intermediate tensor; latency where it can be timed."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np

from edgeact.hardware.profiles import DeviceProfile
from edgeact.runtimes import UNNAMED_MODEL
from edgeact.runtimes.backends import Sample, backend_for
from edgeact.tflite.graph import LoweredGraph


@dataclass
class DeviceRun:
    outputs: list[list[np.ndarray]]  # per sample, per graph output
    tensors: list[dict[int, np.ndarray]] | None  # per sample, every tensor (None: the backend hides them)


PROGRESS_CHUNK = 64  # samples per backend call when a progress bar is shown


def run_device(profile: DeviceProfile, payload: bytes, graph: LoweredGraph | None, samples: list[Sample],
               output_names: list[str] | None = None, keep_tensors: bool = False,
               source: str = UNNAMED_MODEL, progress: bool = False) -> DeviceRun:
    """Run every sample on ``profile``'s backend (errors name ``source``, the model's file); ``keep_tensors``: also
    every intermediate tensor, where the backend shows them. Outputs come in the model's order (``output_names`` is
    not needed any more: kept for callers that still pass it). ``progress``: a bar (chunks of samples per call)."""
    from tqdm import tqdm

    backend = backend_for(profile, payload, graph, source)
    keep = keep_tensors and backend.capabilities.intermediates
    chunks = [samples] if not progress else [samples[i:i + PROGRESS_CHUNK]
                                            for i in range(0, len(samples), PROGRESS_CHUNK)]
    outputs: list[list[np.ndarray]] = []
    tensors: list[dict[int, np.ndarray]] = []
    with tqdm(total=len(samples), desc=f"int8 on {profile.name}", unit="sample", leave=False,
              disable=None if progress else True) as bar:
        for chunk in chunks:
            if keep:
                got, seen = backend.run_with_intermediates(chunk)
                tensors += seen
            else:
                got = backend.run(chunk)
            outputs += got
            bar.update(len(chunk))
    return DeviceRun(outputs, tensors if keep else None)


def latency_ms(profile: DeviceProfile, payload: bytes, sample: Sample, runs: int = 50,
               warmup: int = 5, source: str = UNNAMED_MODEL) -> dict[str, float] | None:
    """Median and p95 of single-sample runs after a warm-up (None where the backend cannot be timed: emulated)."""
    backend = backend_for(profile, payload, source=source)
    if not backend.capabilities.timed:
        return None
    times = backend.latency(sample, runs, warmup)
    ordered = sorted(times)
    return {"median": statistics.median(times), "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
            "runs": runs, "threads": profile.threads}
