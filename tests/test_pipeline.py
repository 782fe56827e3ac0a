"""The staged API: each stage on its own gives what `quantize` writes; a plan exports to several forms."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import edgeact
from edgeact import api
from edgeact.documents.typed_json import to_json
from edgeact.errors import UsageError
from edgeact.planning.target_forms import retarget

DIGITS = Path(__file__).resolve().parents[1] / "examples" / "digits"
MODEL, CALIB = DIGITS / "transformer_gelu.onnx", DIGITS / "transformer_gelu.calib.npz"


def _sha(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def test_stages_by_hand_give_the_files_quantize_writes(tmp_path: Path) -> None:
    written = edgeact.quantize(MODEL, CALIB, formats=["onnx-qdq", "tflite"], target="tflm", output_dir=tmp_path,
                               bias_correction=True)
    prepared = api.prepare(MODEL, CALIB, static=True)
    stats = api.statistics(prepared, prepared.data)
    decided = api.plan(prepared, stats, api.PlanOptions(target="tflm"))
    decided, corrections = api.correct_biases(prepared, decided)
    assert corrections == written.record["bias_correction"]
    qdq = api.export(prepared, decided, "onnx-qdq")
    tflite = api.export(prepared, decided, "tflite", target="tflm")
    assert _sha(qdq.payload) == _sha(written.paths["onnx-qdq"].read_bytes())
    scores = api.evaluate(prepared, {"onnx-qdq": qdq, "tflite": tflite}, prepared.data, "tflm")
    assert to_json(scores) == written.record["evaluation"]
    assert set(scores.forms) == {"onnx-qdq", "tflite"} and scores.samples == written.record["evaluation"]["samples"]
    assert tflite.lowering is not None and tflite.lowering.target == "tflm"


def test_prepare_builds_the_view_once() -> None:
    prepared = api.prepare(MODEL, CALIB)
    assert prepared.view is prepared.view
    assert prepared.data is not None and prepared.shapes is None


def test_a_plan_exports_only_to_its_target_unless_retargeted() -> None:
    prepared = api.prepare(MODEL, CALIB, static=True)
    decided = api.plan(prepared, api.statistics(prepared, prepared.data), api.PlanOptions(target="litert"))
    with pytest.raises(UsageError, match="made for target 'litert', not 'tflm'"):
        api.export(prepared, decided, "tflite", target="tflm")
    moved = retarget(decided, "tflm")
    assert moved is not decided and decided.target == "litert" and moved.target == "tflm"
    assert api.export(prepared, moved, "tflite", target="tflm").lowering.target == "tflm"
    api.export(prepared, decided, "tflite", target="litert-xnnpack")  # an alias of litert: the same profile
