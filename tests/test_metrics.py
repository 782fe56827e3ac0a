"""SQNR summed sample by sample (what the evaluation stage keeps instead of every output) equals the SQNR of the
concatenated outputs, computed here from its definition."""

from __future__ import annotations

import math

import numpy as np

from edgeact.metrics import SqnrSum, sqnr_db


def test_sqnr_summed_over_samples_is_the_sqnr_of_all_of_them() -> None:
    rng = np.random.default_rng(3)
    references = [rng.normal(size=(1, 40, 97)).astype(np.float32) for _ in range(6)]
    tests = [r + rng.normal(scale=0.05, size=r.shape).astype(np.float32) for r in references]
    total = SqnrSum()
    for reference, test in zip(references, tests, strict=True):
        total.add(reference, test)
    everything = np.concatenate(references).astype(np.float64)
    noise = np.concatenate(tests).astype(np.float64) - everything
    expected = 10.0 * math.log10(np.sum(everything**2) / np.sum(noise**2))
    assert abs(total.db - expected) < 1e-9
    assert abs(sqnr_db(np.concatenate(references), np.concatenate(tests)) - expected) < 1e-9


def test_identical_and_silent_outputs() -> None:
    x = np.ones((2, 3), dtype=np.float32)
    assert SqnrSum().add(x, x).db == math.inf
    assert SqnrSum().add(np.zeros(3), np.ones(3)).db == -math.inf
