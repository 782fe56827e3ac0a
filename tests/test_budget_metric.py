"""--budget with the user's own task metric (issue 14, item 3: "or a Python callable through the API"): a callable
through the API, ``path/to/file.py:function`` on the command line; the written model meets it when measured here
with the test's own function on onnxruntime; a metric that raises or returns junk, a budget that does not name the
metric given, and code from the standard library are clear errors with their exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edgeact
from edgeact.errors import UsageError, UserCodeError
from edgeact.runtimes.onnxruntime import ort_session, run_ort
from tests.test_sensitivity import _outlier_model

ROOT = Path(__file__).parents[1]
METRIC_FILE = '''
import numpy as np

def closeness(reference, result):
    """1 - the largest absolute error over the largest reference magnitude (first output)."""
    name = next(iter(reference))
    return 1.0 - float(np.max(np.abs(reference[name] - result[name])) / np.max(np.abs(reference[name])))

def close_enough(reference, result):  # a name with an underscore, as most are
    return closeness(reference, result)

def broken(reference, result):
    raise ValueError("no labels here")

def junk(reference, result):
    return "high"

NOT_A_FUNCTION = 3
'''


def closeness(reference: dict[str, np.ndarray], result: dict[str, np.ndarray]) -> float:
    name = next(iter(reference))
    return 1.0 - float(np.max(np.abs(reference[name] - result[name])) / np.max(np.abs(reference[name])))


def _closeness_of(model: Path, qdq: Path, data: Path, count: int = 16) -> float:
    feeds = {"x": np.load(data)["x"][:count]}
    return closeness(run_ort(ort_session(model.read_bytes()), feeds), run_ort(ort_session(qdq.read_bytes()), feeds))


def test_a_callable_metric_budget_is_met_by_the_written_model(tmp_path: Path) -> None:
    model, data = _outlier_model(tmp_path)
    plain = edgeact.quantize(model, data, formats=["onnx-qdq"], output_dir=tmp_path / "plain")
    budgeted = edgeact.quantize(model, data, formats=["onnx-qdq"], output_dir=tmp_path / "budget",
                                budget="closeness>=0.95", metric=closeness, budget_samples=48)
    assert _closeness_of(model, plain.paths["onnx-qdq"], data, 48) < 0.95  # the planted outlier ruins full int8
    assert _closeness_of(model, budgeted.paths["onnx-qdq"], data, 48) >= 0.95
    budget = budgeted.record["budget"]
    assert budget["budget"] == "closeness>=0.95" and budget["met"] and budget["promotions"]
    # groups are ranked by trials on the first 16 samples; the choice is measured on all 48
    assert budget["samples"] == 48 and budget["ranked_samples"] == 16
    assert budget["full_int8"] < 0.95 <= budget["achieved"]


def test_a_budget_may_call_the_user_metric_metric(tmp_path: Path) -> None:
    model, data = _outlier_model(tmp_path)
    result = edgeact.quantize(model, data, formats=["onnx-qdq"], output_dir=tmp_path, budget="metric>=0.95",
                              metric=closeness)
    assert result.record["budget"]["met"] and result.record["budget"]["budget"] == "metric>=0.95"


@pytest.mark.parametrize("spec", ["sqnr>=30", "top1>=0.9", "other>=0.9"])
def test_a_budget_that_does_not_name_the_metric_given_is_a_usage_error(tmp_path: Path, spec: str) -> None:
    model, data = _outlier_model(tmp_path)
    with pytest.raises(UsageError, match="closeness"):
        edgeact.quantize(model, data, formats=["onnx-qdq"], output_dir=tmp_path / "out", budget=spec,
                         metric=closeness)
    assert not (tmp_path / "out").exists()


def test_a_metric_that_raises_or_returns_junk_is_named(tmp_path: Path) -> None:
    model, data = _outlier_model(tmp_path)

    def broken(reference: dict, result: dict) -> float:
        raise ValueError("no labels here")

    with pytest.raises(UserCodeError, match="the metric broken raised ValueError: no labels here"):
        edgeact.quantize(model, data, formats=["onnx-qdq"], output_dir=tmp_path / "a", budget="broken>=0.9",
                         metric=broken)
    with pytest.raises(UserCodeError, match="returned nan; expected a finite number"):
        edgeact.quantize(model, data, formats=["onnx-qdq"], output_dir=tmp_path / "b", budget="metric>=0.9",
                         metric=lambda reference, result: float("nan"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeact.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_cli_metric_from_a_file(tmp_path: Path) -> None:
    model, data = _outlier_model(tmp_path)
    (tmp_path / "my_metrics.py").write_text(METRIC_FILE)
    run = _cli("quantize", str(model), "--calib", str(data), "--format", "onnx-qdq", "-o", str(tmp_path / "out"),
               "--metric", "my_metrics.py:close_enough", "--budget", "close_enough>=0.95", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "budget close_enough>=0.95: met" in run.stdout
    assert _closeness_of(model, tmp_path / "out" / "outlier.int8.qdq.onnx", data) >= 0.95
    report = tmp_path / "sens.json"
    run = _cli("sensitivity", str(model), "--calib", str(data), "--metric", "my_metrics:closeness", "--json",
               str(report), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    document = json.loads(report.read_text())
    assert document["metric"] == "closeness" and document["full_int8"]["metric"] < 0.95


@pytest.mark.parametrize(("metric", "budget", "code", "message"), [
    ("my_metrics.py:broken", "broken>=0.9", 1, "the metric broken raised ValueError: no labels here"),
    ("my_metrics.py:junk", "junk>=0.9", 1, "the metric junk returned 'high'; expected a finite number"),
    ("my_metrics.py:NOT_A_FUNCTION", "metric>=0.9", 1, "not a callable"),
    ("my_metrics.py:missing", "missing>=0.9", 1, "my_metrics.py has no callable 'missing'"),
    ("nowhere.py:closeness", "closeness>=0.9", 1, "no such file nowhere.py"),
    ("os:getcwd", "getcwd>=0.9", 1, "standard library"),
    ("my_metrics.py:closeness", "sqnr>=30", 2, "does not measure the --metric given (closeness)"),
    ("accuracy", "accuracy>=0.9", 2, "unknown metric 'accuracy'"),
])
def test_cli_metric_errors(tmp_path: Path, metric: str, budget: str, code: int, message: str) -> None:
    model, data = _outlier_model(tmp_path)
    (tmp_path / "my_metrics.py").write_text(METRIC_FILE)
    run = _cli("quantize", str(model), "--calib", str(data), "--format", "onnx-qdq", "-o", str(tmp_path / "out"),
               "--metric", metric, "--budget", budget, cwd=tmp_path)
    assert run.returncode == code, (run.stdout, run.stderr)
    assert message in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "out").exists()
