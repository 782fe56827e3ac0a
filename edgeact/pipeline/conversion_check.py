"""A converted model is checked before it is used: the float .tflite on LiteRT's reference kernels and its ONNX
form on onnxruntime, on the same feed, must give the same outputs (to float rounding)."""

from __future__ import annotations

import numpy as np

from edgeact.errors import ModelFormatError, RuntimeUnavailableError
from edgeact.runtimes.litert import LiteRTKernels, run_litert
from edgeact.runtimes.onnxruntime import ort_session, run_ort

RELATIVE_TOLERANCE = 1e-3  # of each output's largest magnitude (at least 1): float kernels differ by ulps, a
# wrong layout or padding by whole values
SEED = 0


def _seeded_feeds(session) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(SEED)
    return {i.name: rng.uniform(-1.0, 1.0, size=[d if isinstance(d, int) else 1 for d in i.shape]).astype(np.float32)
            for i in session.get_inputs()}


def _litert_outputs(tflite: bytes, inputs: list[np.ndarray], source: str) -> list[np.ndarray]:
    """LiteRT's reference kernels, or its builtin ones for a model with an op the reference resolver lacks (ELU)."""
    try:
        return run_litert(tflite, inputs, LiteRTKernels.REFERENCE, source=source)
    except RuntimeUnavailableError:
        return run_litert(tflite, inputs, LiteRTKernels.BUILTIN, source=source)


def check_tflite_conversion(tflite: bytes, onnx: bytes, feeds: dict[str, np.ndarray] | None, source: str) -> float:
    """The largest output difference between ``tflite`` on LiteRT and ``onnx`` on onnxruntime for ``feeds`` (seeded
    values when None); a difference beyond the tolerance is an error naming the output."""
    session = ort_session(onnx, f"ONNX form of {source}")
    feeds = feeds or _seeded_feeds(session)
    names = [i.name for i in session.get_inputs()]
    missing = sorted(set(names) - set(feeds))
    if missing:
        raise ModelFormatError(f"{source}: the feed for checking the conversion lacks input(s) {missing}")
    converted = run_ort(session, {name: feeds[name] for name in names})
    reference = _litert_outputs(tflite, [feeds[name] for name in names], source)
    worst = 0.0
    for (name, got), expected in zip(converted.items(), reference, strict=True):
        difference = float(np.max(np.abs(got.astype(np.float64) - expected))) if expected.size else 0.0
        scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
        if not difference <= RELATIVE_TOLERANCE * scale:
            raise ModelFormatError(
                f"{source}: edgeact's ONNX form of this model differs from LiteRT on output {name!r} (max |difference| "
                f"{difference:.3g}, largest |output| {scale:.3g}); this is a bug in edgeact's TFLite reader: please "
                "report it with the model")
        worst = max(worst, difference)
    return worst
