"""Write the demo's float models and calibration data (seeded, deterministic) into a folder.

    python -m examples.make_onnx_examples out/demo/models

Writes <name>.onnx and <name>.calib.npz (128 samples) for a masked attention block with erf-GELU (as torch exports
it), a tanh MLP and a detector head whose boxes and scores share one output.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx

from examples import onnx_models

EXAMPLES = {
    "attention_gelu": lambda: onnx_models.transformer_block("erf", masked=True),
    "mlp_tanh": onnx_models.mlp_tanh,
    "detector_head": onnx_models.detector_head,
}


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, build in EXAMPLES.items():
        model = build()
        onnx.save(model, folder / f"{name}.onnx")
        np.savez(folder / f"{name}.calib.npz", **onnx_models.sample_inputs(model, 128, seed=1))
        print(f"wrote {folder / name}.onnx and {name}.calib.npz")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "out/demo/models"))
