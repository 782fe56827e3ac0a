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
