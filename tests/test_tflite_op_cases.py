"""Every declarative op case (tests/cases/op_quantizers.toml) exported to TFLite for LiteRT and TFLite Micro:
the int8 model runs, equals edgeact's integer emulator bit for bit on the reference kernels, and keeps the ONNX
int8 model's SQNR (within 0.5 dB)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

import edgeact
from bench.ort_baseline import run
from edgeact.api import CanonicalModel, static_shapes
from edgeact.devices import load_profile
from edgeact.exporters.tflite.model import lower_tflite
from edgeact.graph import view_of
from edgeact.metrics import sqnr_db
from edgeact.runtimes.emulator import emulate, rules_for
from edgeact.runtimes.litert import run_litert
from edgeact.runtimes.tflm import run_tflm
from tests.test_op_quantizers import CASES, case_model

# The emulator's rules come from the device profiles only: these tests check the profiles' facts bit for bit.
LITERT_REFERENCE, LITERT_XNNPACK, TFLM_REFERENCE = (
    rules_for(load_profile(name)) for name in ("litert-reference", "litert-xnnpack", "tflm"))

RUNNERS = {
    "litert": (lambda model, feeds: run_litert(model, feeds, "reference"), LITERT_REFERENCE),
    "xnnpack": (lambda model, feeds: run_litert(model, feeds, "xnnpack"), LITERT_XNNPACK),
    "tflm": (run_tflm, TFLM_REFERENCE),
}
TARGETS = {"litert": "litert", "xnnpack": "litert", "tflm": "tflm"}


@pytest.mark.parametrize("target", list(RUNNERS))
@pytest.mark.parametrize("case", CASES, ids=[c["op"] for c in CASES])
def test_op_case_in_tflite(case: dict, target: str, tmp_path: Path) -> None:
    if "tflite" in case:
        pytest.skip(case["tflite"])
    path = tmp_path / "case.onnx"
    onnx.save(case_model(case), path)
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "calib.npz", x=rng.normal(0, 1.5, (64, *case["input"])).astype(np.float32))
    result = edgeact.quantize(path, tmp_path / "calib.npz", output_dir=tmp_path / "out",
                              formats=["onnx-qdq", "tflite"], target=TARGETS[target])
    payload = result.paths["tflite"].read_bytes()
    canonical = CanonicalModel.load(path)
    graph = lower_tflite(view_of(canonical.model), result.plan, static_shapes(canonical), TARGETS[target]).graph
    runner, roundings = RUNNERS[target]
    held_out = np.random.default_rng(2).normal(0, 1.5, (64, *case["input"])).astype(np.float32)
    float_output = next(op for op in graph.ops if graph.outputs[0] in op.outputs).op != "DEQUANTIZE"
    outputs = []
    for row in range(len(held_out)):
        got = runner(payload, [held_out[row : row + 1]])[0]
        emulated = emulate(graph, [held_out[row : row + 1]], roundings)[graph.outputs[0]]
        if float_output:  # float kernels (LayerNorm's float island) agree to rounding, not bit for bit
            np.testing.assert_allclose(got, emulated, rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(got, emulated)
        outputs.append(got)
    reference = run(path, {"x": held_out})
    onnx_db = sqnr_db(reference, run(result.paths["onnx-qdq"], {"x": held_out}))
    assert sqnr_db(reference, np.concatenate(outputs)) >= onnx_db - 0.5
