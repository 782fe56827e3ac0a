"""The digits examples (trained by examples/train_digits.py, committed): every int8 form edgeact writes classifies
the 500 eval digits within 1 point of float; onnxruntime.quantization's accuracy is computed beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from examples.digits_eval import evaluate
from examples.train_digits import MODELS

INT8_FORMS = ("edgeact onnx-qdq", "edgeact onnx-table", "edgeact tflite litert", "edgeact tflite tflm")


@pytest.mark.parametrize("name", list(MODELS))
def test_int8_accuracy_within_one_point_of_float(name: str, tmp_path: Path) -> None:
    scores = evaluate(name, work=tmp_path)
    for form in INT8_FORMS:
        message = f"{name} {form}: {scores[form]:.1f}% vs float {scores['float']:.1f}%"
        assert scores[form] >= scores["float"] - 1.0, message
    assert 0.0 < scores["onnxruntime int8"] <= 100.0
