"""Calibration memory against sample count: peak RSS of `edgeact calibrate` at N and 10 N samples.

    make bench      # or: .venv/bin/python -m bench.calibration_memory

Each run is a fresh process (peak RSS from getrusage); the data is a folder of .npz shards of 64 samples, which
edgeact streams one file and one batch at a time, keeping only fixed-size histograms per tensor.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx

from examples import onnx_models

SHARD = 64


def _child(model: str, data: str) -> None:
    import edgeact

    stats = edgeact.calibrate(model, data, batch_size=16)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{stats.samples} {peak_mb:.1f}")


def measure(model: Path, folder: Path, shards: int) -> tuple[int, float]:
    for index in range(shards):
        shard = folder / f"shard{index:04d}.npz"
        if not shard.exists():
            np.savez(shard, **onnx_models.sample_inputs(onnx.load(model), SHARD, seed=index))
    out = subprocess.run([sys.executable, "-m", "bench.calibration_memory", "--child", str(model), str(folder)],
                         check=True, capture_output=True, text=True).stdout.split()
    return int(out[0]), float(out[1])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = folder / "transformer.onnx"
        onnx.save(onnx_models.transformer_block("erf"), model)
        data = folder / "data"
        data.mkdir()
        print("| samples | peak RSS (MB) |")
        print("|--------:|--------------:|")
        for shards in (4, 40):
            samples, peak = measure(model, data, shards)
            print(f"| {samples:7d} | {peak:13.1f} |")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3])
    else:
        main()
