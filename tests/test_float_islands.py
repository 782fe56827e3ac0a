"""Float islands: on a device whose fast path (LiteRT's XNNPACK delegate) runs no GATHER and no int8 GELU, an
activation is planned as DEQUANTIZE -> its float form -> QUANTIZE onto the planned grids, which stays inside the
delegate, instead of a table that splits it (the profile's ``splits_fast_path`` and ``float_island_ops``).

- The profile's facts are LiteRT's: every float_island_op is delegated by XNNPACK, and a GATHER table is not.
- The plan chooses the island only where the profile says so (litert-xnnpack), never for tflm or litert-reference,
  and records why; the .tflite holds the islands the record lists.
- An island computes what the table computes: on the digits models the island .tflite and the table .tflite (same
  grids, both on XNNPACK) give the same logits but for float32 rounding at ties, and the emulator stays bit-exact
  with LiteRT.
- The whole int8 model runs in fewer XNNPACK partitions than with tables.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from onnx import helper as onnx_helper

import edgeact
from edgeact.activations import REGISTRY
from edgeact.hardware import load_profile
from edgeact.profiler.profile import profile_device
from edgeact.profiler.report import html_page, summary_text
from edgeact.runtimes.litert import delegated_op_names, run_litert_many
from tests.test_float_forms import _float_lowering

DIGITS = Path(__file__).resolve().parents[1] / "examples" / "digits"
XNNPACK = load_profile("litert-xnnpack")
MODELS = ["cnn_silu", "transformer_gelu", "lstm"]


def _partitions(payload: bytes) -> int:
    return Counter(delegated_op_names(payload))["DELEGATE"]


@pytest.mark.parametrize("name", [n for n, a in REGISTRY.items() if XNNPACK.runs_float_island(
    tuple(s.op for s in a.float_steps()))])
def test_xnnpack_delegates_each_float_form_the_profile_calls_an_island(name: str) -> None:
    payload = _float_lowering(name).to_bytes({})
    assert _partitions(payload) == 1, f"{name}: XNNPACK did not take {delegated_op_names(payload)}"


def _tables_profile(folder: Path) -> Path:
    """litert-xnnpack as it was before float islands: its GATHER tables and int8 GELU said to stay inside."""
    text = (Path(edgeact.__file__).parent / "device_profiles" / "litert-xnnpack.toml").read_text()
    path = folder / "xnnpack-tables.toml"
    path.write_text(text.replace("splits_fast_path = true", "splits_fast_path = false"))
    return path


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[tuple[str, str], edgeact.QuantizeResult]:  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("islands")
    targets = {"litert": "litert", "tables": str(_tables_profile(out)), "litert-reference": "litert-reference",
               "tflm": "tflm"}
    return {(name, key): edgeact.quantize(DIGITS / f"{name}.onnx", DIGITS / f"{name}.calib.npz", formats=["tflite"],
                                          target=target, output_dir=out / f"{name}_{key}",
                                          recurrent_cells="int8")  # the LSTM's gates as int8 tables or islands
            for name in MODELS for key, target in targets.items()}


@pytest.mark.parametrize("name", MODELS)
def test_the_plan_chooses_islands_only_where_the_profile_says(written, name: str) -> None:
    islands = written[name, "litert"].record["tflite"]["island_ops"]
    assert islands, f"{name}: no activation became a float island on litert-xnnpack"
    floats = [a for a in written[name, "litert"].record["activations"] if a["form"]["tflite"]["form"] == "float"]
    assert sorted(a["node"] for a in floats) == sorted(islands)
    assert all("would split litert-xnnpack's fast path" in a["form"]["tflite"]["reason"] for a in floats)
    for target in ("tables", "litert-reference", "tflm"):
        record = written[name, target].record
        assert not record["tflite"]["island_ops"]
        assert all(a["form"]["tflite"]["form"] != "float" for a in record["activations"])
    assert written[name, "tables"].record["tensors"] == written[name, "litert"].record["tensors"]  # same grids


@pytest.mark.parametrize("name", MODELS)
def test_an_island_computes_what_the_table_computes(written, name: str) -> None:
    """Same grids, same runtime (XNNPACK): the island .tflite and the table .tflite give the same logits, and the
    same SQNR."""
    data = np.load(DIGITS / f"{name}.eval.npz")
    samples = [[data[key][i : i + 1] for key in data.files] for i in range(64)]
    step = written[name, "litert"].record["tensors"]["logits"]["scale"]
    island, table = (np.concatenate([out[0] for out in run_litert_many(
        written[name, key].paths["tflite"].read_bytes(), samples)]) for key in ("litert", "tables"))
    assert step > 0
    np.testing.assert_array_equal(island, table)
    record, tables = written[name, "litert"].record["evaluation"], written[name, "tables"].record["evaluation"]
    assert record["tflite"]["logits"] == tables["tflite"]["logits"]


@pytest.mark.parametrize("name", MODELS)
def test_islands_keep_the_model_in_fewer_partitions_and_the_emulator_bit_exact(written, name: str) -> None:
    path = written[name, "litert"].paths["tflite"]
    assert _partitions(path.read_bytes()) < _partitions(written[name, "tables"].paths["tflite"].read_bytes())
    report = profile_device(path, "litert-xnnpack", DIGITS / f"{name}.onnx", DIGITS / f"{name}.eval.npz",
                            max_samples=32)
    assert all(entry["emulator"]["equal_codes"] == 1.0 for entry in report["outputs"].values()), report["outputs"]
    # profile-device says how XNNPACK split each model, and what ran outside it
    assert report.delegate.partitions == _partitions(path.read_bytes())
    tables = profile_device(written[name, "tables"].paths["tflite"], "litert-xnnpack", DIGITS / f"{name}.onnx",
                            DIGITS / f"{name}.eval.npz", max_samples=4)
    assert tables.delegate.partitions > report.delegate.partitions
    left_out = {op: n - report.delegate.outside.get(op, 0) for op, n in tables.delegate.outside.items()}
    assert left_out.get("GATHER", 0) > 0 or left_out.get("GELU", 0) > 0, (tables.delegate, report.delegate)
    on_micro = profile_device(written[name, "tflm"].paths["tflite"], "tflm", DIGITS / f"{name}.onnx",
                              DIGITS / f"{name}.eval.npz", max_samples=4) if name != "transformer_gelu" else None
    assert on_micro is None or on_micro.delegate is None
    assert f"<h2>Delegate</h2><p>{report.delegate.partitions} partition(s)" in html_page(report)
    assert f"delegate: {tables.delegate.partitions} partition(s); outside it: " in summary_text(tables)


def _chain_model():  # type: ignore[no-untyped-def]
    """Linear -> a fused elementwise chain of Sub, Relu, Div, Max, Min, Add and Mul on constants -> Linear."""
    from examples.onnx_models import GraphBuilder, tensor

    g = GraphBuilder(3)
    h = g.op("Relu", g.op("Sub", g.linear("x", 16, 32), g.const(0.1)))
    h = g.op("Min", g.op("Max", g.op("Div", h, g.const(3.0)), g.const(-0.5)), g.const(2.0))
    h = g.op("Add", g.op("Mul", h, g.const(1.5)), g.const(-0.2))
    g.nodes.append(onnx_helper.make_node("Identity", [g.linear(h, 32, 4)], ["y"], name="out"))
    return g.model([tensor("x", ["N", 16])], [tensor("y", ["N", 4])])


def test_a_fused_chain_is_an_island_made_of_its_own_ops(tmp_path: Path) -> None:
    """A chain's float form is its ops (SUB, RELU, DIV, MAXIMUM, MINIMUM, MUL, ADD): XNNPACK takes them all, so the
    chain is an island and the whole int8 model is one partition; the emulator stays bit-exact."""
    import onnx

    from examples.onnx_models import sample_inputs

    model = _chain_model()
    onnx.save(model, tmp_path / "chain.onnx")
    np.savez(tmp_path / "calib.npz", **sample_inputs(model, 64))
    np.savez(tmp_path / "eval.npz", **sample_inputs(model, 32, seed=5))
    result = edgeact.quantize(tmp_path / "chain.onnx", tmp_path / "calib.npz", formats=["tflite"],
                              output_dir=tmp_path / "out")
    (chain,) = result.record["activations"]
    assert chain["function"] == "elementwise" and chain["form"]["tflite"]["form"] == "float", chain["form"]
    ops = Counter(delegated_op_names(result.paths["tflite"].read_bytes()))
    assert ops["DELEGATE"] == 1 and {"DIV", "SUB", "RELU", "MAXIMUM", "MINIMUM"} <= set(ops), ops
    report = profile_device(result.paths["tflite"], "litert-xnnpack", tmp_path / "chain.onnx", tmp_path / "eval.npz")
    assert report["outputs"]["y"]["emulator"]["equal_codes"] == 1.0 and report["outputs"]["y"]["sqnr_db"] > 25


def test_every_float_island_op_is_checked_on_litert() -> None:
    """Each op the profile lists is exercised above: a registry activation's float form, the chain's ops, or an
    int8 op the fast path does not run (PRELU)."""
    registry = {op for a in REGISTRY.values() for op in a.float_builtins() if XNNPACK.runs_float_island(
        a.float_builtins())}
    chain = {"SUB", "RELU", "DIV", "MAXIMUM", "MINIMUM", "MUL", "ADD"}
    assert set(XNNPACK.float_island_ops) <= registry | chain | {"DEQUANTIZE", "QUANTIZE"} | {"PRELU"}
    assert set(XNNPACK.int8_off_fast_path) == {"PRELU"}  # the op test above covers each


def _single_activation(nodes: list, opset: int):  # type: ignore[no-untyped-def]
    graph = onnx_helper.make_graph(nodes, "one", [onnx_helper.make_tensor_value_info("x", 1, [1, 256])],
                                   [onnx_helper.make_tensor_value_info("y", 1, [1, 256])])
    return onnx_helper.make_model(graph, opset_imports=[onnx_helper.make_opsetid("", opset)])


SINGLE = {  # an activation alone (int8 I/O feeds every input code): as the ONNX exporters of real models write them
    "sigmoid": ([onnx_helper.make_node("Sigmoid", ["x"], ["y"])], 17),
    "silu": ([onnx_helper.make_node("Sigmoid", ["x"], ["s"]), onnx_helper.make_node("Mul", ["x", "s"], ["y"])], 17),
    "gelu": ([onnx_helper.make_node("Gelu", ["x"], ["y"])], 20),
    "hardswish": ([onnx_helper.make_node("HardSwish", ["x"], ["y"])], 17),
    "elu": ([onnx_helper.make_node("Elu", ["x"], ["y"])], 17),
    "chain": ([onnx_helper.make_node("Mul", ["x", "a"], ["m"]), onnx_helper.make_node("HardSwish", ["m"], ["h"]),
               onnx_helper.make_node("Add", ["h", "b"], ["y"])], 17),
}


@pytest.mark.parametrize("spread", [1.0, 3.0, 8.0])
@pytest.mark.parametrize("name", list(SINGLE))
def test_an_island_on_xnnpack_gives_the_planned_table_at_every_input_code(name: str, spread: float,
                                                                           tmp_path: Path) -> None:
    """The island's codes are the exact table's, code for code, on LiteRT's XNNPACK delegate (int8 I/O feeds all
    256 input codes): the plan may promise the table's error for it."""
    import onnx

    nodes, opset = SINGLE[name]
    model = _single_activation(nodes, opset)
    if name == "chain":
        model.graph.initializer.extend([onnx.numpy_helper.from_array(np.array(0.7, np.float32), "a"),
                                        onnx.numpy_helper.from_array(np.array(-0.2, np.float32), "b")])
    onnx.save(model, tmp_path / "m.onnx")
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(0).normal(0, spread, (64, 1, 256)).astype(np.float32))
    result = edgeact.quantize(tmp_path / "m.onnx", tmp_path / "calib.npz", formats=["tflite"], io="int8",
                              output_dir=tmp_path / "out")
    (activation,) = result.record["activations"]
    assert activation["form"]["tflite"]["form"] == "float", activation["form"]
    codes = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    got = run_litert_many(result.paths["tflite"].read_bytes(), [[codes]])[0][0].reshape(-1)
    np.testing.assert_array_equal(got, np.asarray(activation["table"], dtype=np.int8))


def _prelu_model():  # type: ignore[no-untyped-def]
    """Conv -> PRelu (per-channel slope) -> Conv -> PRelu -> Gemm, as MTCNN writes it."""
    from examples.onnx_models import GraphBuilder, tensor

    g = GraphBuilder(5)
    h = g.op("Conv", "x", g.weight(8, 3, 3, 3), g.const(g.rng.normal(0, 0.1, 8)), pads=[1, 1, 1, 1])
    h = g.op("PRelu", h, g.const(np.full((8, 1, 1), 0.25)))
    h = g.op("Conv", h, g.weight(8, 8, 3, 3), g.const(g.rng.normal(0, 0.1, 8)), pads=[1, 1, 1, 1], strides=[2, 2])
    h = g.op("Flatten", g.op("PRelu", h, g.const(g.rng.uniform(0.1, 0.4, (8, 1, 1)))))
    g.nodes.append(onnx_helper.make_node("Gemm", [h, g.weight(4, 8 * 8 * 8), g.const(np.zeros(4))], ["y"],
                                         transB=1, name="head"))
    return g.model([tensor("x", ["N", 3, 16, 16])], [tensor("y", ["N", 4])])


def test_an_op_xnnpack_does_not_run_in_int8_is_an_island(tmp_path: Path) -> None:
    """int8 PRELU is not delegated: on litert-xnnpack each PRelu runs DEQUANTIZE -> PRELU -> QUANTIZE between its
    planned grids and the model is one partition; TFLite Micro keeps the int8 PRELU. Same grids, no accuracy lost."""
    import onnx

    from examples.onnx_models import sample_inputs

    model = _prelu_model()
    onnx.save(model, tmp_path / "prelu.onnx")
    np.savez(tmp_path / "calib.npz", **sample_inputs(model, 64))
    np.savez(tmp_path / "eval.npz", **sample_inputs(model, 32, seed=7))
    results = {target: edgeact.quantize(tmp_path / "prelu.onnx", tmp_path / "calib.npz", formats=["tflite"],
                                        target=target, output_dir=tmp_path / target) for target in ("litert", "tflm")}
    islands = results["litert"].record["tflite_islands"]
    prelus = [n["node"] for n in results["litert"].record["quantized_nodes"] if n["op_type"] == "PRelu"]
    assert sorted(islands) == sorted(prelus) and len(prelus) == 2
    assert all("int8 PRELU would split litert-xnnpack's fast path" in why for why in islands.values())
    assert not results["tflm"].record["tflite_islands"]
    assert results["litert"].record["tensors"] == results["tflm"].record["tensors"]
    payload = results["litert"].paths["tflite"].read_bytes()
    assert _partitions(payload) == 1 < _partitions(results["tflm"].paths["tflite"].read_bytes())
    report = profile_device(results["litert"].paths["tflite"], "litert-xnnpack", tmp_path / "prelu.onnx",
                            tmp_path / "eval.npz")
    assert report["outputs"]["y"]["emulator"]["equal_codes"] == 1.0 and report.delegate.partitions == 1
    table = profile_device(results["tflm"].paths["tflite"], "litert-xnnpack", tmp_path / "prelu.onnx",
                           tmp_path / "eval.npz")
    assert report["outputs"]["y"]["sqnr_db"] >= table["outputs"]["y"]["sqnr_db"] - 0.3
