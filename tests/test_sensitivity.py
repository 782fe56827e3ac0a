"""Sensitivity analysis (issue 14, item 1): the switchable model is the float model when every switch is off and
the onnx-qdq form when every switch is on; trials that rerun only the segments downstream of their group give the
outputs a whole-model run gives; a planted outlier group ranks first; the CLI writes a report the schema accepts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import jsonschema
import numpy as np
import onnx
import pytest
from onnx import helper

import edgeact
from edgeact import api
from edgeact.analysis.trials import TrialRunner
from edgeact.exporters.onnx.switchable import switchable_model
from edgeact.graph.importer import model_bytes
from edgeact.graph.segments import cut
from edgeact.metrics import sqnr_db
from edgeact.pipeline.calibrate import first_batches
from edgeact.planning.groups import tensor_groups
from edgeact.runtimes.onnxruntime import ort_session, run_ort
from examples.onnx_models import GraphBuilder, sample_inputs, tensor

ROOT = Path(__file__).parents[1]
DIGITS = ROOT / "examples" / "digits"
MODELS = ["mlp_tanh", "transformer_gelu", "cnn_silu", "lstm"]


def _setup(name: str, segments: int = 12):  # type: ignore[no-untyped-def]
    calib = DIGITS / f"{name}.calib.npz"
    prepared = api.prepare(DIGITS / f"{name}.onnx", calib)
    decided = api.plan(prepared, api.statistics(prepared, prepared.data))
    groups = tensor_groups(prepared.view, decided)
    model = switchable_model(prepared.model, decided, groups)
    batches = first_batches(prepared.data, 16, 8, prepared)
    runner = TrialRunner(model, cut(model.payload, segments), batches, prepared.view.outputs)
    return prepared, decided, groups, runner, batches


@pytest.mark.parametrize("name", MODELS)
def test_all_off_is_the_float_model_and_all_on_is_the_qdq_form(name: str) -> None:
    prepared, decided, groups, runner, batches = _setup(name)
    float_session = ort_session(model_bytes(prepared.model))
    qdq_session = ort_session(api.export(prepared, decided, "onnx-qdq").payload)
    off, on = runner.outputs_of(runner.base(False)), runner.outputs_of(runner.base(True))
    switched_off = runner.switchable_run(frozenset())
    for batch, feeds in enumerate(batches):
        for output, value in run_ort(float_session, feeds).items():
            # baked float segments and the switchable model compute the float model's values; the kernels differ
            # (fusions stop at segment boundaries; switched weights are no constants onnxruntime can pre-pack):
            # float32 rounding, far below any int8 error
            assert sqnr_db(value, off[batch][output]) > 100.0
            assert sqnr_db(value, switched_off[batch][output]) > 100.0
        for output, value in run_ort(qdq_session, feeds).items():
            # every group int8 is the onnx-qdq form exactly (with onnxruntime's constant folding and Identity
            # elimination left on, the baked segments drift from it by ~41 dB on the transformer and the LSTM)
            np.testing.assert_array_equal(on[batch][output], value)


@pytest.mark.parametrize("name", ["transformer_gelu", "lstm"])
def test_a_trial_from_its_first_segment_equals_a_whole_model_run(name: str) -> None:
    """Cached upstream values plus the rerun segments — only what the flip reaches, every other value read from
    the cache — give exactly what running every segment whole from the graph inputs gives, bit for bit, for every
    group in both directions."""
    _, _, groups, runner, batches = _setup(name, segments=7)
    caches = {False: runner.base(False), True: runner.base(True)}
    firsts = set()
    for index in range(len(groups)):
        firsts.add(runner.acts_in(index)[0])
        for base_on, cache in caches.items():
            fast = runner.trial(cache, base_on, index)
            whole = runner.trial([dict(batch) for batch in batches], base_on, index, start=0)
            for got, expected in zip(fast, whole, strict=True):
                for output in expected:
                    np.testing.assert_array_equal(got[output], expected[output])
    assert len(firsts) > 2  # the trials really started at different segments
    assert runner.shortcuts["narrowed"] > 0, runner.shortcuts  # ... and really cut later segments down


def test_a_flipped_group_in_a_baked_run_is_the_switchable_model_with_that_switch() -> None:
    """The baked segments compute what the switchable model computes with the same switches: within float32
    rounding when everything is float; with one group int8, equal codes up to the rare rounding-boundary flip."""
    _, _, groups, runner, batches = _setup("transformer_gelu", segments=5)
    cache = runner.base(False)
    for index in range(len(groups)):
        fast, whole = runner.trial(cache, False, index), runner.switchable_run(frozenset({index}))
        for got, expected in zip(fast, whole, strict=True):
            for output in expected:
                assert sqnr_db(expected[output], got[output]) > 60.0, (index, output)


def _outlier_model(folder: Path) -> tuple[Path, Path]:
    """x -> Linear -> h; h * [1 .. 1, 1000] -> wide (one outlier channel) -> * [1 .. 1, 0.001] -> Linear -> y.
    The per-tensor grid of ``wide`` has steps of ~8 for channels of size ~1: that group alone ruins the output."""
    g = GraphBuilder(seed=5)
    h = g.linear("x", 8, 8)
    widen = np.ones(8, dtype=np.float32)
    widen[-1] = 1000.0
    wide = g.op("Mul", h, g.const(widen))
    narrow = g.op("Mul", wide, g.const(1.0 / widen))
    g.nodes.append(helper.make_node("Identity", [g.linear(g.op("Tanh", narrow), 8, 4)], ["y"], name="out"))
    model = g.model([tensor("x", ["N", 8])], [tensor("y", ["N", 4])])
    path = folder / "outlier.onnx"
    path.write_bytes(model.SerializeToString())
    np.savez(folder / "outlier.npz", **sample_inputs(model, 64, seed=2))
    return path, folder / "outlier.npz"


def test_a_planted_outlier_group_ranks_first(tmp_path: Path) -> None:
    model, data = _outlier_model(tmp_path)
    report = edgeact.sensitivity(model, data)
    wide = next(n.output[0] for n in onnx.load(model).graph.node if n.op_type == "Mul")
    first = report.groups[0]
    assert first.group == wide and first.rank == 1
    # alone it wipes out 7 of 8 channels (~0 dB); no other group comes close; leaving it float recovers the most
    assert first.only_int8.sqnr_db < 3.0 < min(g.only_int8.sqnr_db for g in report.groups[1:])
    assert report.full_int8.sqnr_db < 3.0 and first.recovered_db > 10.0
    assert report.trials == 2 * len(report.groups)


def test_two_runs_give_the_same_report() -> None:
    """Trials run their batches side by side on two threads: the report does not depend on which finishes first."""
    name = DIGITS / "lstm"
    first, second = (edgeact.sensitivity(f"{name}.onnx", f"{name}.calib.npz", samples=32) for _ in range(2))
    assert replace(first, seconds=0.0) == replace(second, seconds=0.0)


def test_task_metric_callable_and_unknown_name(tmp_path: Path) -> None:
    model, data = _outlier_model(tmp_path)
    seen = []

    def agreement(reference: dict, result: dict) -> float:
        seen.append(sorted(reference))
        return float(np.mean(reference["y"].argmax(-1) == result["y"].argmax(-1)))

    report = edgeact.sensitivity(model, data, metric=agreement, samples=16)
    assert report.metric == "agreement" and seen[0] == ["y"] and report.samples == 16
    assert report.groups[0].recovered_metric == max(g.recovered_metric for g in report.groups)
    with pytest.raises(edgeact.errors.UsageError, match="unknown metric 'f1'"):
        edgeact.sensitivity(model, data, metric="f1")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeact.cli", *args], capture_output=True, text=True, cwd=ROOT)


def test_cli_writes_a_report_the_schema_accepts(tmp_path: Path) -> None:
    name = "transformer_gelu"
    out_json, out_html = tmp_path / "s.json", tmp_path / "s.html"
    run = _cli("sensitivity", str(DIGITS / f"{name}.onnx"), "--calib", str(DIGITS / f"{name}.calib.npz"),
               "--eval", str(DIGITS / f"{name}.eval.npz"), "--metric", "top1", "--json", str(out_json),
               "--html", str(out_html), "--top", "5")
    assert run.returncode == 0, run.stderr
    assert re.search(r"full int8 \(onnx-qdq arithmetic\): output SQNR [\d.]+ dB, top1", run.stdout)
    assert len(re.findall(r"^\s+\d+\s+\S", run.stdout, flags=re.M)) == 5
    document = json.loads(out_json.read_text())
    schema = json.loads((ROOT / "docs" / "schema" / "sensitivity-report.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(document)
    assert [g["rank"] for g in document["groups"]] == list(range(1, len(document["groups"]) + 1))
    embedded = re.search(r'<script type="application/json" id="edgeact-sensitivity">(.*?)</script>',
                         out_html.read_text(), flags=re.S).group(1)
    assert json.loads(embedded) == document  # the page's JSON parses (no HTML escaping inside)


def test_cli_refuses_to_overwrite_its_input_and_bad_options(tmp_path: Path) -> None:
    model, data = _outlier_model(tmp_path)
    before = model.read_bytes()
    run = _cli("sensitivity", str(model), "--calib", str(data), "--json", str(model))
    assert run.returncode == 2 and "Traceback" not in run.stderr and str(model.name) in run.stderr
    assert model.read_bytes() == before
    run = _cli("sensitivity", str(model), "--calib", str(data), "--metric", "f1")
    assert run.returncode == 2 and "f1" in run.stderr
    run = _cli("sensitivity", str(model))
    assert run.returncode == 2 and "--calib" in run.stderr
