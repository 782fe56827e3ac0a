"""`edgeact gate`: pass on an equal report, exit 3 naming what regressed, JUnit XML and markdown, baselines,
configuration, and clear errors for unusable inputs."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner

from edgeact.cli import main

BASELINE = Path(__file__).parents[1] / "examples" / "digits" / "baselines" / "transformer_gelu.tflm.json"


def invoke(*args: object):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture()
def report() -> dict:
    return json.loads(BASELINE.read_text())


def _write(tmp_path: Path, report: dict, name: str = "report.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(report))
    return path


def test_equal_report_passes(tmp_path: Path, report: dict) -> None:
    result = invoke("gate", _write(tmp_path, report), "--baseline", BASELINE, "--per-layer")
    assert result.exit_code == 0, result.output
    assert "passed" in result.output


def test_one_layer_3db_worse_fails_with_exit_3_naming_it(tmp_path: Path, report: dict) -> None:
    worse = copy.deepcopy(report)
    layer = worse["layers"][3]
    layer["sqnr_db"] -= 3.0
    path = _write(tmp_path, worse)
    result = invoke("gate", path, "--baseline", BASELINE, "--per-layer", "--junit", tmp_path / "gate.xml",
                    "--markdown", tmp_path / "gate.md")
    assert result.exit_code == 3, result.output
    assert f"layer {layer['tensor']}: SQNR | **FAIL**" in result.output
    suite = ElementTree.parse(tmp_path / "gate.xml").getroot()
    cases = suite.findall("testcase")
    failures = [case for case in cases if case.find("failure") is not None]
    assert int(suite.get("tests")) == len(cases) > len(report["layers"])
    assert int(suite.get("failures")) == len(failures) == 1
    assert failures[0].get("name") == f"layer {layer['tensor']}: SQNR"
    assert "**FAIL**" in (tmp_path / "gate.md").read_text()
    assert invoke("gate", path, "--baseline", BASELINE).exit_code == 0  # layers are gated only with --per-layer


def test_output_sqnr_and_top1_thresholds(tmp_path: Path, report: dict) -> None:
    worse = copy.deepcopy(report)
    worse["outputs"]["logits"]["sqnr_db"] -= 0.4
    path = _write(tmp_path, worse)
    assert invoke("gate", path, "--baseline", BASELINE).exit_code == 0
    assert invoke("gate", path, "--baseline", BASELINE, "--max-sqnr-drop", "0.3").exit_code == 3
    assert invoke("gate", path, "--baseline", BASELINE, "--min-top1-agreement", "1.0").exit_code == 3


def test_settings_from_pyproject(tmp_path: Path, report: dict, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    worse = copy.deepcopy(report)
    worse["outputs"]["logits"]["sqnr_db"] -= 0.4
    path = _write(tmp_path, worse)
    (tmp_path / "pyproject.toml").write_text("[tool.edgeact.gate]\nmax_sqnr_drop = 0.2\n")
    monkeypatch.chdir(tmp_path)
    assert invoke("gate", path, "--baseline", BASELINE).exit_code == 3
    assert invoke("gate", path, "--baseline", BASELINE, "--max-sqnr-drop", "1").exit_code == 0  # flags win
    (tmp_path / "pyproject.toml").write_text("[tool.edgeact.gate]\nmax_sqnr_dorp = 0.2\n")
    result = invoke("gate", path, "--baseline", BASELINE)
    assert result.exit_code == 2 and "unknown gate setting(s) ['max_sqnr_dorp']" in result.output


def test_update_baseline_writes_the_report(tmp_path: Path, report: dict) -> None:
    path = _write(tmp_path, report)
    target = tmp_path / "baseline.json"
    assert invoke("gate", path, "--baseline", target, "--update-baseline").exit_code == 0
    assert json.loads(target.read_text()) == report


@pytest.mark.parametrize("case, expected", [
    ("corrupt", "not a profile-device report"),
    ("other-device", "device 'litert-xnnpack' vs baseline 'tflm'"),
    ("other-schema", "has report schema 99 (this edgeact reads 1, 2)"),
])
def test_unusable_inputs_are_refused(tmp_path: Path, report: dict, case: str, expected: str) -> None:
    if case == "corrupt":
        path = tmp_path / "report.json"
        path.write_text('{"outputs": ')
    else:
        changed = copy.deepcopy(report)
        if case == "other-device":
            changed["device"]["name"] = "litert-xnnpack"
        else:
            changed["schema_version"] = 99
        path = _write(tmp_path, changed)
    result = invoke("gate", path, "--baseline", BASELINE, "--junit", tmp_path / "gate.xml")
    assert result.exit_code == 1 and expected in result.output
    assert not (tmp_path / "gate.xml").exists()
    if case == "other-device":
        assert invoke("gate", path, "--baseline", BASELINE, "--allow-mismatch").exit_code == 0
