"""TFLite Micro's fixed-output activations, measured on its real interpreter, and the verdict function."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ALL_INT8_CODES, random_grid

from edgeact.activations import activation
from edgeact.errors import RuntimeUnavailableError
from edgeact.exporters.tflite.single_op import activation_builtin_model
from edgeact.hardware import activation_verdict, load_profile
from edgeact.numerics import QParams, lut_for
from edgeact.runtimes.tflm import run_tflm

TFLM = load_profile("tflm")
OPS = {"TANH": ("tanh", {}), "LOGISTIC": ("sigmoid", {}), "GELU": ("gelu", {"approximate": False}),
       "HARD_SWISH": ("hardswish", {})}


def tflm_max_lsb_error(op: str, in_q: QParams, out_q: QParams) -> int | None:
    """Largest code difference between TFLM's builtin and the exact table; None if TFLM refuses."""
    function, options = OPS[op]
    try:
        got = run_tflm(activation_builtin_model(op, in_q, out_q, **options), [ALL_INT8_CODES])[0]
    except RuntimeUnavailableError:
        return None
    exact = lut_for(activation(function), in_q, out_q).values
    return int(np.abs(got.astype(np.int64) - exact).max())


def test_tflm_tanh_ignores_a_non_standard_output_scale() -> None:
    in_q = QParams(0.03, 0)
    assert tflm_max_lsb_error("TANH", in_q, QParams(1 / 128, 0)) == 0
    wrong = tflm_max_lsb_error("TANH", in_q, QParams(1 / 100, 0))
    assert wrong is not None and wrong >= 10, "TFLM ran the model and produced codes for scale 1/128"


def grids() -> list[tuple[str, QParams, QParams]]:
    rng = np.random.default_rng(11)
    cases = []
    for _ in range(6):
        in_q = random_grid(rng, 0.005, 0.2)
        cases += [
            ("TANH", in_q, QParams(1 / 128, 0)),
            ("TANH", in_q, random_grid(rng, 0.003, 0.05)),
            ("LOGISTIC", in_q, QParams(1 / 256, -128)),
            ("LOGISTIC", in_q, QParams(float(rng.uniform(0.002, 0.01)), -128)),
            ("LOGISTIC", in_q, random_grid(rng, 0.002, 0.01)),
            ("GELU", in_q, random_grid(rng, 0.005, 0.05)),
            ("HARD_SWISH", in_q, random_grid(rng, 0.005, 0.05)),
        ]
    return cases


@pytest.mark.parametrize("op,in_q,out_q", grids())
def test_verdict_matches_what_tflm_does(op: str, in_q: QParams, out_q: QParams) -> None:
    verdict = activation_verdict(TFLM, op, in_q, out_q)
    measured = tflm_max_lsb_error(op, in_q, out_q)
    if verdict.status in ("refused", "missing"):
        assert measured is None, verdict
    elif verdict.status == "exact":
        assert measured == 0, verdict
    elif verdict.status == "within_lsb":
        assert measured is not None and measured <= TFLM.activations[op].max_lsb_error
    else:
        assert verdict.status == "wrong_silently" and not verdict.correct
        assert measured is not None and measured > 1, (op, in_q, out_q, measured)
    assert verdict.correct == (verdict.status in ("exact", "within_lsb"))
