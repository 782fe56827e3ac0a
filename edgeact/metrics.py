"""Error metrics between a float reference and a quantized result."""

from __future__ import annotations

import math

import numpy as np


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB (inf when identical)."""
    reference = np.asarray(reference, dtype=np.float64)
    noise = float(np.sum((reference - np.asarray(test, dtype=np.float64)) ** 2))
    signal = float(np.sum(reference**2))
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(signal / noise) if signal > 0 else -math.inf


def top1_agreement(reference: dict[str, np.ndarray], result: dict[str, np.ndarray]) -> float:
    """Share (0..1) of samples whose arg-max over the last axis of the first output equals the reference's."""
    name = next(iter(reference))
    expected, got = np.asarray(reference[name]), np.asarray(result[name])
    return float(np.mean(expected.argmax(axis=-1) == got.argmax(axis=-1)))


def mean_cosine(reference: dict[str, np.ndarray], result: dict[str, np.ndarray]) -> float:
    """Mean over samples (axis 0) of the cosine similarity between the first output and the reference's."""
    name = next(iter(reference))
    expected = np.asarray(reference[name], dtype=np.float64).reshape(len(reference[name]), -1)
    got = np.asarray(result[name], dtype=np.float64).reshape(len(result[name]), -1)
    norms = np.linalg.norm(expected, axis=1) * np.linalg.norm(got, axis=1)
    cosines = np.where(norms > 0, np.sum(expected * got, axis=1) / np.where(norms > 0, norms, 1.0), 1.0)
    return float(np.mean(cosines))


# task metrics by name (higher is better): outputs of every sample, concatenated on axis 0, by output name
TASK_METRICS = {"top1": top1_agreement, "cosine": mean_cosine}
