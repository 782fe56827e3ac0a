"""Shared helpers for the tests: every int8 code, seeded random grids, the case files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeact.numerics import QParams

CASES = Path(__file__).parent / "cases"
ALL_INT8_CODES = np.arange(-128, 128, dtype=np.int8)


def random_grid(rng: np.random.Generator, lo: float, hi: float) -> QParams:
    """An int8 grid with a log-uniform scale in [lo, hi] and a uniform zero point."""
    return QParams(float(np.exp(rng.uniform(np.log(lo), np.log(hi)))), int(rng.integers(-128, 128)))


def discriminating_grids(function: str) -> list[tuple[QParams, QParams]]:
    """Grids on which the conventions disagree (tests/cases/make_discriminating_qparams.py)."""
    data = json.loads((CASES / "discriminating_qparams.json").read_text())[function]
    return [(QParams(c["in_scale"], c["in_zero_point"]), QParams(c["out_scale"], c["out_zero_point"])) for c in data]


@pytest.fixture
def codes() -> np.ndarray:
    return ALL_INT8_CODES.copy()
