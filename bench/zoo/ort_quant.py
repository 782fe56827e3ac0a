"""The onnxruntime.quantization baseline: ``quantize_static`` on the same calibration feeds as edgeact.

QDQ, per-channel int8 weights, and four activation configs {MinMax, Percentile} x {QInt8, QUInt8}. Models older
than opset 13 are converted to opset 13 first (per-channel QuantizeLinear needs it; onnxruntime would otherwise only
relabel the opset), then ``quant_pre_process`` (shape inference + optimisation) runs; a step that fails is noted
and skipped. A config that fails records its error. Calibration runs one feed per pass (``CalibStridedMinMax=1``,
onnxruntime's option for any calibrator): memory stays at one feed's intermediate tensors (the layout model needs
about 1 GB per feed), and feeds of different widths can be collected; MinMax is exact under striding, Percentile
merges its histograms across passes as onnxruntime does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

CONFIGS = tuple((method, activation) for method in ("MinMax", "Percentile") for activation in ("QInt8", "QUInt8"))
MIN_OPSET = 13
STRIDE = 1  # CalibStridedMinMax: feeds per calibration pass (bounded memory; feeds of different widths work)


class FeedReader(CalibrationDataReader):
    """Calibration feeds (one complete model feed each, as in a folder of .npz), one per ``get_next``; supports
    onnxruntime's strided calibration (``__len__``, ``set_range``)."""

    def __init__(self, feeds: Sequence[dict[str, np.ndarray]]) -> None:
        self.all = list(feeds)
        self.feeds: Iterator[dict[str, np.ndarray]] = iter(self.all)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.feeds, None)

    def __len__(self) -> int:
        return len(self.all)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.feeds = iter(self.all[start_index:end_index])


def _opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def prepare(model_path: Path, folder: Path) -> tuple[Path, list[str]]:
    """The model as quantize_static gets it, and notes on what preparation did (or could not do)."""
    folder.mkdir(parents=True, exist_ok=True)
    notes, current = [], model_path
    model = onnx.load(str(model_path))
    if _opset(model) < MIN_OPSET:
        try:
            converted = onnx.version_converter.convert_version(model, MIN_OPSET)
            current = folder / "opset13.onnx"
            onnx.save(converted, str(current))
            notes.append(f"opset {_opset(model)} -> {MIN_OPSET} (onnx.version_converter)")
        except Exception as exc:  # any converter failure is reported; the original model is used
            notes.append(f"opset conversion failed: {first_line(exc)}")
    prepared = folder / "prepared.onnx"
    for skip_symbolic in (False, True):
        try:
            quant_pre_process(str(current), str(prepared), skip_symbolic_shape=skip_symbolic)
            notes.append("quant_pre_process" + (" (without symbolic shape inference)" if skip_symbolic else ""))
            return prepared, notes
        except Exception as exc:  # reported as a note; the next attempt runs
            notes.append(f"quant_pre_process{' (no symbolic shapes)' if skip_symbolic else ''} failed: "
                         f"{first_line(exc)}")
    return current, notes


def quantize(prepared: Path, feeds: Sequence[dict[str, np.ndarray]], out: Path, method: str, activation: str) -> Path:
    """One quantize_static config: QDQ, per-channel QInt8 weights, ``method`` ranges, ``activation`` type."""
    quantize_static(
        str(prepared), str(out), FeedReader(feeds), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=getattr(QuantType, activation), weight_type=QuantType.QInt8,
        calibrate_method=getattr(CalibrationMethod, method),
        extra_options={"CalibStridedMinMax": STRIDE},
    )
    return out


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message``."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0].strip() if lines else ''}".rstrip(": ")
