"""quantize --budget (issue 14, item 3): the fewest, most sensitive groups are left float until the budget holds,
measured independently on the exported onnx-qdq model; a budget full int8 already meets changes no byte of the
models; a malformed budget is a usage error before any work; the record says what was kept float and why."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import onnx
import pytest

import edgeact
from edgeact.errors import UsageError
from edgeact.metrics import sqnr_db
from edgeact.runtimes.onnxruntime import ort_session, run_ort
from tests.test_sensitivity import _outlier_model

ROOT = Path(__file__).parents[1]


def _sqnr_of(model: Path, qdq: Path, data: Path, count: int = 16) -> float:
    """Output SQNR of the written QDQ model against the float model on the first ``count`` samples."""
    feeds = {"x": np.load(data)["x"][:count]}
    reference = run_ort(ort_session(model.read_bytes()), feeds)["y"]
    return sqnr_db(reference, run_ort(ort_session(qdq.read_bytes()), feeds)["y"])


def test_budget_keeps_the_outlier_group_float_and_the_written_model_meets_it(tmp_path: Path) -> None:
    model, data = _outlier_model(tmp_path)
    plain = edgeact.quantize(model, data, formats=["onnx-qdq"], output_dir=tmp_path / "plain")
    budgeted = edgeact.quantize(model, data, formats=["onnx-qdq"], output_dir=tmp_path / "budget",
                                budget="sqnr>=30")
    assert _sqnr_of(model, plain.paths["onnx-qdq"], data) < 10.0  # the planted outlier ruins full int8
    assert _sqnr_of(model, budgeted.paths["onnx-qdq"], data) >= 30.0
    budget = budgeted.record["budget"]
    wide = next(n.output[0] for n in onnx.load(model).graph.node if n.op_type == "Mul")
    assert budget["met"] and budget["budget"] == "sqnr>=30" and budget["achieved"] >= 30.0 > budget["full_int8"]
    assert budget["promotions"][0]["group"] == wide
    float_nodes = {f["node"]: f["reason"] for f in budgeted.record["fallbacks"]}
    for promotion in budget["promotions"]:
        for node in promotion["nodes"]:
            assert "kept float by --budget sqnr>=30" in float_nodes[node]
    # nothing promoted that the budget did not need: giving any one promotion back breaks it
    assert len(budget["promotions"]) <= 2
    schema = json.loads((ROOT / "docs" / "schema" / "calibration-record.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(budgeted.paths["record"].read_text()))


def test_a_budget_full_int8_meets_changes_no_model_byte(tmp_path: Path) -> None:
    name = ROOT / "examples" / "digits" / "cnn_silu"
    plain = edgeact.quantize(f"{name}.onnx", f"{name}.calib.npz", formats=["onnx-qdq", "tflite"],
                             output_dir=tmp_path / "a")
    easy = edgeact.quantize(f"{name}.onnx", f"{name}.calib.npz", formats=["onnx-qdq", "tflite"],
                            output_dir=tmp_path / "b", budget="sqnr>=20")
    assert easy.record["budget"]["promotions"] == [] and easy.record["budget"]["met"]
    assert easy.record["budget"]["int8_share"]["share"] == 1.0
    assert plain.paths["onnx-qdq"].read_bytes() == easy.paths["onnx-qdq"].read_bytes()
    # the .tflite carries its record's sha256, and the record now holds the budget: nothing else differs
    hashes = [hashlib.sha256(r.paths["record"].read_bytes()).hexdigest().encode() for r in (plain, easy)]
    assert plain.paths["tflite"].read_bytes().replace(hashes[0], b"0" * 64) == \
        easy.paths["tflite"].read_bytes().replace(hashes[1], b"0" * 64)


@pytest.mark.parametrize("spec", ["sqnr>30", "f1>=0.9", "sqnr>=abc", "int8<=0.9", ""])
def test_a_malformed_budget_is_a_usage_error_before_any_work(tmp_path: Path, spec: str) -> None:
    with pytest.raises(UsageError, match="expected MEASURE>=NUMBER"):
        edgeact.quantize(tmp_path / "missing.onnx", tmp_path / "missing.npz", budget=spec)


@pytest.mark.parametrize("spec", ["int8>=1.5", "int8>=-0.1"])
def test_an_int8_share_outside_zero_to_one_is_a_usage_error(tmp_path: Path, spec: str) -> None:
    with pytest.raises(UsageError, match="fraction between 0 and 1"):
        edgeact.quantize(tmp_path / "missing.onnx", tmp_path / "missing.npz", budget=spec)


def test_an_int8_share_budget_spends_its_allowance_on_the_most_sensitive_groups(tmp_path: Path) -> None:
    """int8>=0.75 on the digits transformer (8 MAC ops): at most 2 leave int8, every promotion recovered SQNR,
    and the written model measures better than full int8 on held-out samples."""
    name = ROOT / "examples" / "digits" / "transformer_gelu"
    model, calib, held_out = Path(f"{name}.onnx"), Path(f"{name}.calib.npz"), Path(f"{name}.eval.npz")
    common = {"formats": ["onnx-qdq"], "bias_correction": False}
    plain = edgeact.quantize(model, calib, output_dir=tmp_path / "plain", **common)
    shared = edgeact.quantize(model, calib, output_dir=tmp_path / "share", budget="int8>=0.75", **common)
    budget = shared.record["budget"]
    share = budget["int8_share"]
    assert budget["met"] and budget["budget"] == "int8>=0.75" and budget["full_int8"] == 1.0
    assert share["mac_ops"] == 8 and share["int8_mac_ops"] >= 6 and budget["achieved"] == share["share"] >= 0.75
    assert budget["promotions"] and all(p["recovered"] > 0.05 for p in budget["promotions"])
    recovered = [p["recovered"] for p in budget["promotions"]]
    assert recovered == sorted(recovered, reverse=True)  # most sensitive first
    assert budget["output_sqnr_db"]["achieved"] > budget["output_sqnr_db"]["full_int8"]
    x = np.load(held_out)["x"][:64]
    reference = run_ort(ort_session(model.read_bytes()), {"x": x})["logits"]
    full, spent = (sqnr_db(reference, run_ort(ort_session(r.paths["onnx-qdq"].read_bytes()), {"x": x})["logits"])
                   for r in (plain, shared))
    assert spent > full + 1.0
    everything = edgeact.quantize(model, calib, output_dir=tmp_path / "all", budget="int8>=1", **common)
    assert everything.record["budget"]["int8_share"]["share"] == 1.0  # no MAC op to spare: only free groups
    assert everything.record["budget"]["promotions"]  # ... and there are free ones (LayerNorm, Softmax groups)
    assert all(p["precision"] == "int16" for p in everything.record["budget"]["promotions"])


def test_cli_budget_summary_and_exit_codes(tmp_path: Path) -> None:
    model, data = _outlier_model(tmp_path)
    run = subprocess.run([sys.executable, "-m", "edgeact.cli", "quantize", str(model), "--calib", str(data),
                          "--format", "onnx-qdq", "--budget", "sqnr>=30", "-o", str(tmp_path / "out")],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "budget sqnr>=30: met" in run.stdout and "budget float group" in run.stdout
    run = subprocess.run([sys.executable, "-m", "edgeact.cli", "quantize", str(model), "--calib", str(data),
                          "--budget", "accuracy>=1"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2 and "expected MEASURE>=NUMBER" in run.stderr and "Traceback" not in run.stderr


def test_a_bias_correction_that_breaks_the_budget_is_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under --budget the corrected plan is measured again: a correction that takes the measure below the budget is
    dropped (the written model is the uncorrected one) and the record says why."""
    from dataclasses import replace

    from edgeact.pipeline import bias_correction

    real = bias_correction.correct_biases

    def ruinous(prepared, plan, batches, progress=False):  # type: ignore[no-untyped-def]
        corrected, record = real(prepared, plan, batches, progress)
        wrecked = [replace(c, codes=c.codes * 0 + 2**20) if c.role == "bias" else c for c in corrected.constants]
        return replace(corrected, constants=wrecked), record

    model, data = _outlier_model(tmp_path)
    honest = edgeact.quantize(model, data, formats=["onnx-qdq"], output_dir=tmp_path / "a", budget="sqnr>=30",
                              bias_correction=False)
    monkeypatch.setattr(bias_correction, "correct_biases", ruinous)
    guarded = edgeact.quantize(model, data, formats=["onnx-qdq"], output_dir=tmp_path / "b", budget="sqnr>=30",
                               bias_correction=True)
    record = guarded.record["bias_correction"]
    assert not record["applied"] and record["why"].startswith("left out: with it sqnr measured")
    assert "biases" not in record and guarded.record["budget"]["met"]
    assert guarded.paths["onnx-qdq"].read_bytes() == honest.paths["onnx-qdq"].read_bytes()


def test_give_back_returns_every_unneeded_group_in_few_measurements() -> None:
    """Runs of promotions go back at once: of 64 promotions where only two are needed, exactly those two stay, in
    far fewer measurements than one per promotion; with every promotion needed, none goes back."""
    from edgeact.analysis.budget import _give_back

    class Needs:
        def __init__(self, needed: set[int]) -> None:
            self.needed, self.measured = needed, 0

        def holds(self, floats: frozenset[int]) -> bool:
            self.measured += 1
            return self.needed <= floats

    chosen = list(range(64))
    search = Needs({3, 41})
    assert _give_back(search, chosen) == [3, 41]  # type: ignore[arg-type]
    assert search.measured <= 36  # one per promotion: 64
    everything = Needs(set(chosen))
    assert _give_back(everything, chosen) == chosen  # type: ignore[arg-type]
    assert everything.measured <= len(chosen) + 8


def test_top_ups_double_then_bisect_to_the_fewest_extra_groups() -> None:
    """A re-made plan far short of the budget is topped up in runs of 1, 2, 4, ... groups, then the last run is
    bisected: exactly the groups needed, in few plans (a plan whose measure is its promotion count here)."""
    from edgeact.analysis.budget import Budget, Promotion, _topped_up
    from edgeact.documents.sensitivity_report import Score

    def promotion(number: int) -> Promotion:
        return Promotion(f"g{number}", (), 0.0)

    chosen, spare = [promotion(i) for i in range(3)], [promotion(i) for i in range(3, 200)]
    calls: list[int] = []

    def replan(promoted: list[Promotion]):  # type: ignore[no-untyped-def]
        calls.append(len(promoted))
        return f"plan of {len(promoted)}", Score(sqnr_db=float(len(promoted)), per_output_db={}, metric=None)

    promotions, plan, achieved, measured = _topped_up(replan, Budget("sqnr", 44.0), chosen, spare)
    assert len(promotions) == 44 and promotions[:3] == chosen and plan == "plan of 44" and achieved.sqnr_db == 44.0
    assert promotions[3:] == spare[:41] and measured == len(calls) <= 1 + 6 + 5
    met_at_once = _topped_up(replan, Budget("sqnr", 3.0), chosen, spare)
    assert met_at_once[0] == chosen and met_at_once[3] == 1
    never = _topped_up(replan, Budget("sqnr", 1000.0), chosen, spare[:20])
    assert len(never[0]) == 23 and never[2].sqnr_db == 23.0  # every spare group tried, the budget not met


def test_without_a_budget_a_low_output_sqnr_is_a_warning_that_says_what_to_do(tmp_path: Path) -> None:
    """Full int8 far from float (the planted outlier group: ~0 dB) warns, pointing at sensitivity and --budget;
    a budget (which measures and says what it did) and a model within a sane loss do not."""
    model, data = _outlier_model(tmp_path)
    result = edgeact.quantize(model, data, output_dir=tmp_path / "plain", formats=["onnx-qdq"])
    warned = [w for w in result.record["warnings"] if "dB SQNR against fp32" in w]
    assert len(warned) == 1 and "onnx-qdq: output 'y'" in warned[0] and "edgeact sensitivity outlier.onnx" in warned[0]
    narrow = [n.output[0] for n in onnx.load(model).graph.node if n.op_type == "Mul"][1]  # the outlier's victims
    assert f"the tensors that lose most: {narrow!r} (" in warned[0], warned[0]
    assert "--budget" in warned[0]
    budgeted = edgeact.quantize(model, data, output_dir=tmp_path / "budget", formats=["onnx-qdq"], budget="sqnr>=30")
    assert not any("dB SQNR against fp32" in w for w in budgeted.record["warnings"])
    digits = Path(__file__).resolve().parents[1] / "examples" / "digits"
    fine = edgeact.quantize(digits / "mlp_tanh.onnx", digits / "mlp_tanh.calib.npz", output_dir=tmp_path / "fine",
                            formats=["onnx-qdq"])
    assert not any("dB SQNR against fp32" in w for w in fine.record["warnings"])
