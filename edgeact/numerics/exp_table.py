"""LiteRT's optimized int8 SOFTMAX table (optimized_ops::PopulateSoftmaxLookupTable), built with the C library's
expf as LiteRT builds it."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from edgeact.numerics.libm import expf


@lru_cache(maxsize=64)
def softmax_exp_table(input_scale: float, beta: float) -> np.ndarray:
    """float32 ``expf((-input_scale * beta) * d)`` for input differences d = 0..255, all in float32."""
    scale = -np.float32(input_scale) * np.float32(beta)
    table = expf(scale * np.arange(256, dtype=np.float32))
    table.setflags(write=False)
    return table
