"""Dogfooding the gate: quantize every digits example for TFLite Micro, profile it there (per layer), and gate the
report against the baseline committed in examples/digits/baselines/. `make test` runs this, so a change that
worsens int8 quality fails our own CI with exit code 3.

    python -m examples.gate_examples            # gate (exit 3 on a regression)
    python -m examples.gate_examples --update   # rewrite the baselines from this commit's reports
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import edgeact
from edgeact.profiler.profile import profile_device
from edgeact.profiler.report import write_json
from examples.train_digits import FOLDER, MODELS

BASELINES = FOLDER / "baselines"
DEVICE = "tflm"


def report_for(name: str, work: Path) -> Path:
    model, calib = FOLDER / f"{name}.onnx", FOLDER / f"{name}.calib.npz"
    result = edgeact.quantize(model, calib, output_dir=work / name, formats=["tflite"], target=DEVICE)
    report = profile_device(result.paths["tflite"], DEVICE, model, FOLDER / f"{name}.eval.npz", per_layer=True,
                            latency_runs=10)
    return write_json(report, work / f"{name}.{DEVICE}.json")


def main(update: bool, work: Path = Path("out/gate")) -> int:
    work.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in MODELS:
        report = report_for(name, work)
        baseline = BASELINES / f"{name}.{DEVICE}.json"
        command = [sys.executable, "-m", "edgeact.cli", "gate", str(report), "--baseline", str(baseline),
                   "--per-layer", "--junit", str(work / f"{name}.junit.xml")]
        if update:
            command.append("--update-baseline")
        code = subprocess.run(command, check=False).returncode
        if code:
            failed.append((name, code))
    if failed:
        print(f"gate failed: {failed}")
        return max(code for _, code in failed)
    return 0


if __name__ == "__main__":
    sys.exit(main("--update" in sys.argv[1:]))
