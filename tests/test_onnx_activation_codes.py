"""uint8 activation codes in the ONNX forms (onnxruntime-cpu's profile: its int8 kernels are fused from QDQ only for
uint8 activations with int8 weights).

- Same grids: the uint8 form and the int8 form compute the same values, bit for bit, where onnxruntime runs both
  as written (QDQ fusion off: dequantize -> float op -> quantize).
- Fused: onnxruntime's optimizer turns every quantized Conv/Gemm/MatMul of the uint8 form into an integer kernel
  (QLinearConv, QGemm, QLinearMatMul, MatMulIntegerToFloat) and no Conv/Gemm/MatMul stays float; with int8 codes
  more values run dequantize -> float -> quantize (the reason for the choice).
- The fused kernels accumulate exactly in int32 where the unfused form sums float32 products: the outputs agree
  within a few output steps.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import edgeact
from edgeact.errors import DeviceProfileError
from edgeact.hardware import load_profile
from edgeact.numerics import QParams, as_codes, dequantize, quantize

DIGITS = Path(__file__).resolve().parents[1] / "examples" / "digits"
MODELS = ["cnn_silu", "mlp_tanh", "lstm", "transformer_gelu"]
MAC_OPS = {"Conv", "Gemm", "MatMul"}
INTEGER_KERNELS = {"QLinearConv", "QGemm", "QLinearMatMul", "MatMulIntegerToFloat", "ConvInteger", "MatMulInteger"}


@pytest.fixture(scope="module")
def forms(tmp_path_factory) -> dict[tuple[str, str], bytes]:  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("codes")
    written = {}
    for name in MODELS:
        for codes in ("auto", "int8"):
            result = edgeact.quantize(DIGITS / f"{name}.onnx", DIGITS / f"{name}.calib.npz",
                                      formats=["onnx-qdq", "onnx-table"], onnx_activations=codes,
                                      recurrent_cells="int8",  # the LSTM's cells int8 too: every MAC op integer
                                      output_dir=out / f"{name}_{codes}")
            written[name, codes] = result.paths["onnx-qdq"].read_bytes()
            written[name, f"{codes} table"] = result.paths["onnx-table"].read_bytes()
    return written


def _session(payload: bytes, fused: bool, optimized: Path | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    if not fused:
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(payload, options, providers=["CPUExecutionProvider"])


def _feeds(name: str, session: ort.InferenceSession) -> dict[str, np.ndarray]:
    data = np.load(DIGITS / f"{name}.eval.npz")
    return {i.name: data[i.name][:32] for i in session.get_inputs()}


def _kernels(payload: bytes, folder: Path) -> Counter:
    _session(payload, fused=True, optimized=folder / "optimized.onnx")
    return Counter(node.op_type for node in onnx.load(folder / "optimized.onnx").graph.node)


@pytest.mark.parametrize("form", ["", " table"])
@pytest.mark.parametrize("name", MODELS)
def test_uint8_codes_compute_what_int8_codes_compute(forms, name: str, form: str) -> None:
    """onnx-qdq and onnx-table (Cast -> Gather indexed by the uint8 code, not the rolled signed one)."""
    unsigned = _session(forms[name, "auto" + form], fused=False)
    signed = _session(forms[name, "int8" + form], fused=False)
    feeds = _feeds(name, unsigned)
    for a, b in zip(unsigned.run(None, feeds), signed.run(None, feeds), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", MODELS)
def test_onnxruntime_runs_every_mac_op_of_the_uint8_form_as_an_integer_kernel(forms, name: str, tmp_path) -> None:
    unsigned = _kernels(forms[name, "auto"], tmp_path)
    assert not MAC_OPS & set(unsigned), f"{name}: float MAC ops left after onnxruntime's QDQ fusion: {unsigned}"
    assert INTEGER_KERNELS & set(unsigned)
    signed = _kernels(forms[name, "int8"], tmp_path)  # more values go dequantize -> float -> quantize
    assert unsigned["DequantizeLinear"] <= signed["DequantizeLinear"], (unsigned, signed)
    if name in ("cnn_silu", "lstm"):  # int8 activations: no QLinearConv, no QLinearMul/Add/Sigmoid on this build
        assert unsigned["DequantizeLinear"] < signed["DequantizeLinear"], (unsigned, signed)


@pytest.mark.parametrize("name", MODELS)
def test_fused_kernels_stay_within_a_few_output_steps(forms, name: str) -> None:
    fused, written = _session(forms[name, "auto"], fused=True), _session(forms[name, "auto"], fused=False)
    feeds = _feeds(name, fused)
    model = onnx.load_from_string(forms[name, "auto"])
    init = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    for output, a, b in zip(model.graph.output, fused.run(None, feeds), written.run(None, feeds), strict=True):
        restore = next(n for n in model.graph.node if n.output[0] == output.name)
        step = float(init[restore.input[1]])
        assert np.max(np.abs(a - b)) <= 4 * step + 1e-6, (name, output.name, np.max(np.abs(a - b)) / step)


def test_a_uint8_grid_is_the_int8_grid_shifted_by_128() -> None:
    grid = QParams(0.0371, -17)
    shifted = as_codes(grid, "uint8")
    assert (shifted.zero_point, shifted.dtype) == (111, "uint8")
    x = np.linspace(-9.0, 9.0, 4001)
    np.testing.assert_array_equal(quantize(x, shifted), quantize(x, grid) + 128)
    np.testing.assert_array_equal(dequantize(quantize(x, shifted), shifted), dequantize(quantize(x, grid), grid))
    int16 = QParams(0.001, 0, "int16")
    assert as_codes(int16, "uint8") is int16 and as_codes(grid, "int8") is grid


def test_a_tflite_profile_cannot_ask_for_uint8_activations(tmp_path: Path) -> None:
    text = (Path(edgeact.__file__).parent / "device_profiles" / "litert-reference.toml").read_text()
    path = tmp_path / "mine.toml"
    path.write_text(text.replace("schema_version = 2", 'schema_version = 2\nactivation_codes = "uint8"'))
    with pytest.raises(DeviceProfileError, match=r"mine\.toml: activation_codes 'uint8' needs model_format"):
        load_profile(path)
    assert load_profile("onnxruntime-cpu").activation_codes == "uint8"
