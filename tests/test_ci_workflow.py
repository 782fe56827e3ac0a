"""The GitHub Actions workflow is real: it validates against GitHub's workflow schema (check-jsonschema's vendored
copy, offline) and its steps, run here for one model of its matrix, quantize, profile on TFLite Micro and pass
the gate against the committed baseline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "edgeact-gate.yml"


def _check(path: Path) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                           str(path)], capture_output=True, text=True)


def test_the_workflow_matches_githubs_schema_and_a_broken_one_does_not(tmp_path: Path) -> None:
    assert _check(WORKFLOW).returncode == 0, _check(WORKFLOW).stdout
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on: ubuntu-latest", "runs_on: ubuntu-latest"))
    assert _check(broken).returncode != 0  # the check can fail


def test_its_steps_run_for_one_model_and_pass_the_gate(tmp_path: Path) -> None:
    job = YAML(typ="safe").load(WORKFLOW.read_text())["jobs"]["gate"]
    model = job["strategy"]["matrix"]["model"][0]
    summary = tmp_path / "summary.md"
    env = {**os.environ, "OUT": str(tmp_path / "out"), "MODEL": model, "GITHUB_STEP_SUMMARY": str(summary),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    scripts = [step["run"] for step in job["steps"] if "run" in step and "pip install" not in step["run"]]
    assert len(scripts) == 3  # quantize, profile + gate, JUnit + summary
    for script in scripts:
        done = subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=ROOT, env=env, capture_output=True,
                              text=True)
        assert done.returncode == 0, f"{script}\n{done.stdout}\n{done.stderr}"
    assert (tmp_path / "out" / f"{model}.junit.xml").is_file()
    assert "passed" in summary.read_text()
