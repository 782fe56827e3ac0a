"""Every declarative op case (tests/cases/op_quantizers.toml) exported to TFLite for LiteRT and TFLite Micro, in
int8 and in 16x8 (every op of the case on int16 grids): the model runs, equals edgeact's integer emulator bit for bit
on each runtime's kernels, and keeps the ONNX QDQ model's SQNR (within 0.5 dB)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

import edgeact
from bench.ort_baseline import run
from edgeact.exporters.tflite.lower import UnsupportedOpError
from edgeact.graph.tflite_import import read_tflite
from edgeact.hardware import load_profile
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
    _check_case(case, target, tmp_path, int16=())


@pytest.mark.parametrize("target", list(RUNNERS))
@pytest.mark.parametrize("case", CASES, ids=[c["op"] for c in CASES])
def test_op_case_in_16x8_tflite(case: dict, target: str, tmp_path: Path) -> None:
    """Every op of the case on int16 grids (--int16 with each planned op type): the 16x8 .tflite runs and equals
    the emulator bit for bit; a case the target has no 16x8 kernels for (``refused_16x8``: target -> the builtin the
    refusal names) is refused by name."""
    if "tflite" in case:
        pytest.skip(case["tflite"])
    int16 = tuple(sorted({name.split("::")[-1] for name in case["int8"]}))  # the planned op types
    if TARGETS[target] in case.get("refused_16x8", {}):
        with pytest.raises(UnsupportedOpError, match=case["refused_16x8"][TARGETS[target]]):
            _check_case(case, target, tmp_path, int16)
        return
    graph = _check_case(case, target, tmp_path, int16)
    if "no_int16" not in case:
        assert any(t.dtype == "int16" for t in graph.tensors), "no int16 tensor written"


def _check_case(case: dict, target: str, tmp_path: Path, int16: tuple[str, ...]):  # type: ignore[no-untyped-def]
    path = tmp_path / "case.onnx"
    onnx.save(case_model(case), path)
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "calib.npz", x=rng.normal(0, 1.5, (64, *case["input"])).astype(np.float32))
    result = edgeact.quantize(path, tmp_path / "calib.npz", output_dir=tmp_path / "out",
                              formats=["onnx-qdq", "tflite"], target=TARGETS[target], int16=int16)
    payload = result.paths["tflite"].read_bytes()
    graph = read_tflite(payload, "case.tflite")  # the file as written, read back: the reader is tested too
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
    assert sqnr_db(reference, np.concatenate(outputs)) >= min(onnx_db - 0.5, 60.0)  # (16x8 reaches 80 dB)
    return graph
