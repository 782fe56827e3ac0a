"""onnxruntime.quantization.quantize_static as a baseline: same data, QDQ, per-channel, MinMax, S8S8."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

from edgeact.metrics import sqnr_db


class _Reader(CalibrationDataReader):
    def __init__(self, data: dict[str, np.ndarray]) -> None:
        count = len(next(iter(data.values())))
        self.rows = iter([{k: v[i : i + 1] for k, v in data.items()} for i in range(count)])

    def get_next(self):
        return next(self.rows, None)


def ort_quantize_static(
    model_path: Path, data: dict[str, np.ndarray], out: Path, method: str = "MinMax", activation: str = "QInt8"
) -> Path:
    """QDQ, per-channel int8 weights; ``method`` MinMax | Percentile | Entropy, ``activation`` QInt8 | QUInt8."""
    quantize_static(
        str(model_path), str(out), _Reader(data), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=getattr(QuantType, activation), weight_type=QuantType.QInt8,
        calibrate_method=getattr(CalibrationMethod, method),
    )
    return out


def run(model_path: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def output_sqnr(float_path: Path, int8_path: Path, feeds: dict[str, np.ndarray]) -> float:
    return sqnr_db(run(float_path, feeds), run(int8_path, feeds))
