"""Error metrics between a float reference and a quantized result."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from edgeact.errors import UsageError, UserCodeError
from edgeact.user_code import split_reference, user_attribute


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB (inf when identical)."""
    return SqnrSum().add(reference, test).db


class SqnrSum:
    """SQNR over samples added one at a time: the sums of reference² and (reference − test)², in float64, so that
    no sample is kept (an evaluation over a large output — an 18385-class head — holds one sample at a time)."""

    def __init__(self) -> None:
        self.signal = 0.0
        self.noise = 0.0

    def add(self, reference: np.ndarray, test: np.ndarray) -> SqnrSum:
        reference = np.asarray(reference, dtype=np.float64)
        self.noise += float(np.sum((reference - np.asarray(test, dtype=np.float64)) ** 2))
        self.signal += float(np.sum(reference**2))
        return self

    @property
    def db(self) -> float:
        if self.noise == 0.0:
            return math.inf
        return 10.0 * math.log10(self.signal / self.noise) if self.signal > 0 else -math.inf


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
Metric = Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], float]


def resolve_metric(metric: str | Metric) -> tuple[Metric, str]:
    """(the metric, its name) for a built-in name (top1, cosine), a callable, or the user's
    ``path/to/file.py:function`` / ``package.module:function``: ``f(reference, result) -> float``, higher is
    better, each a dict of output name -> that output of every sample, concatenated on axis 0."""
    if callable(metric):
        return metric, getattr(metric, "__name__", type(metric).__name__)
    if metric in TASK_METRICS:
        return TASK_METRICS[metric], metric
    if ":" not in metric:
        raise UsageError(f"unknown metric {metric!r} (--metric); known: {', '.join(TASK_METRICS)}, or a Python "
                         "function as path/to/file.py:function or package.module:function")
    found, _ = user_attribute(metric, "metric")
    if not callable(found):
        raise UserCodeError(f"{metric!r}: a {type(found).__name__}, not a callable f(reference, result) -> float")
    return found, split_reference(metric, "metric")[1]
