"""What the profiler measures between a float reference and an int8 result (one home for those formulas)."""

from __future__ import annotations

import numpy as np

from edgeact.metrics import sqnr_db


def cosine(reference: np.ndarray, test: np.ndarray) -> float:
    a, b = np.asarray(reference, np.float64).ravel(), np.asarray(test, np.float64).ravel()
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / norm) if norm > 0 else float(np.array_equal(a, b))


def output_metrics(reference: np.ndarray, test: np.ndarray, step: float | None) -> dict[str, float | None]:
    """SQNR, cosine, max |error| (also in output steps), NaN/Inf counts and, for classifier-like outputs, top-1
    agreement."""
    error = np.abs(np.asarray(reference, np.float64) - np.asarray(test, np.float64))
    finite = np.isfinite(error)
    metrics: dict[str, float | None] = {
        "sqnr_db": sqnr_db(reference, test),
        "cosine": cosine(reference, test),
        "max_abs_error": float(error[finite].max()) if finite.any() else None,
        "max_abs_error_lsb": float(error[finite].max() / step) if step and finite.any() else None,
        "nan_count": int(np.isnan(test).sum()),
        "inf_count": int(np.isinf(test).sum()),
        "top1_agreement": None,
    }
    if reference.ndim == 2 and reference.shape[1] > 1:
        metrics["top1_agreement"] = float((reference.argmax(1) == test.argmax(1)).mean())
    signed = (np.asarray(test, np.float64) - np.asarray(reference, np.float64))[finite]
    counts, edges = np.histogram(signed / step if step else signed, bins=41)
    metrics["error_histogram"] = {"unit": "output steps" if step else "output units", "edges": edges.tolist(),
                                  "counts": counts.tolist()}
    return metrics


def code_agreement(device: np.ndarray, emulated: np.ndarray) -> dict[str, float]:
    """Share of identical int8 codes and the largest difference in steps."""
    a, b = (np.nan_to_num(np.clip(np.asarray(v, dtype=np.float64), -2.0**62, 2.0**62)).astype(np.int64)
            for v in (device, emulated))
    b = b.reshape(np.shape(a))
    return {"equal_codes": float((a == b).mean()), "max_lsb": int(np.abs(a - b).max()) if a.size else 0}
