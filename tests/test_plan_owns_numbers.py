"""The plan owns every number: every quantized tensor of the written .tflite, onnx-qdq and onnx-table files has
its grid (scale, zero point) and, for constants, its codes (sha256 of the integer values) in the calibration
record the planner wrote, for the output format that file is; and each activation's form in the record (builtin /
table) is the form the file has. The files are parsed with the ``tflite`` and ``onnx`` packages, hashed here."""

from __future__ import annotations

import hashlib
import importlib
import itertools
import json
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import edgeact
from edgeact.documents.provenance import PROVENANCE_KEY
from edgeact.graph.tflite_import import metadata
from examples import onnx_models
from tests.test_op_quantizers import CASES, case_model

DIGITS = Path(__file__).resolve().parents[1] / "examples" / "digits"
FORMATS = ["onnx-qdq", "onnx-table", "tflite"]
ALL_TARGETS = ["litert", "tflm", "litert-reference", "cmsis-nn", "npu-table"]
OP_CASES = ("Conv (no bias: the TFLite kernels get a zero one)", "MaxPool (explicit pads that are not SAME)",
            "MatMul (constant weight)", "Div (constant divisor)", "Conv (depthwise, group = channels)",
            "PRelu (per-channel slope after a Conv)", "Sigmoid", "Gather (activation data)")
GridKey = tuple[tuple[float, ...], tuple[int, ...]]
CodesKey = tuple[GridKey, str]


def _gemm_with_row_bias() -> onnx.ModelProto:
    """Gemm whose bias is [1, 8] (broadcast): ONNX keeps it float, TFLite's FULLY_CONNECTED takes it int32."""
    rng = np.random.default_rng(3)
    weight = numpy_helper.from_array(rng.normal(0, 0.25, (16, 8)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.normal(0, 0.1, (1, 8)).astype(np.float32), "b")
    graph = helper.make_graph([helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="gemm")], "row_bias",
                              [onnx_models.tensor("x", ["N", 16])], [onnx_models.tensor("y", ["N", 8])],
                              [weight, bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


BUILDERS = {
    "transformer_erf": (lambda: onnx_models.transformer_block("erf"), ALL_TARGETS),  # Div by a constant, GELU
    "mlp_tanh": (onnx_models.mlp_tanh, ALL_TARGETS),
    "detector_head": (onnx_models.detector_head, ["litert", "npu-table"]),
    "gemm_row_bias": (_gemm_with_row_bias, ["litert", "tflm"]),
    **{f"case: {case['op']}": (lambda case=case: case_model(case), ["litert", "tflm"])
       for case in CASES if case["op"] in OP_CASES},
}
RUNS = ([(f"digits/{name}", target) for name in ("mlp_tanh", "transformer_gelu", "cnn_silu", "lstm")
         for target in ("litert", "tflm")]
        + [(name, target) for name, (_, targets) in BUILDERS.items() for target in targets])


def _sha(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values).astype(values.dtype.newbyteorder("<")).tobytes()).hexdigest()


def _key(scales, zero_points) -> GridKey:  # type: ignore[no-untyped-def]
    scales = np.asarray(scales, dtype=np.float32).reshape(-1)
    zero_points = np.asarray(zero_points, dtype=np.int64).reshape(-1)
    if zero_points.size == 1 and scales.size > 1:
        zero_points = np.repeat(zero_points, scales.size)
    return tuple(float(s) for s in scales), tuple(int(z) for z in zero_points)


def _record_grid(entry: dict) -> GridKey:
    if "scales" in entry:
        return _key(entry["scales"], [0] * len(entry["scales"]))
    return _key([entry["scale"]], [entry["zero_point"]])


class RecordNumbers:
    """The grids and codes the record holds, and for each (grid, codes) the formats that store them."""

    def __init__(self, record: dict) -> None:
        self.own: dict[str, GridKey] = {name: _record_grid(e) for name, e in record["tensors"].items()}
        self.grids: set[GridKey] = set(self.own.values())
        self.codes: dict[CodesKey, set[str]] = {}
        for act in record["activations"]:
            self.grids |= {_record_grid(act["input_grid"]), _record_grid(act["output_grid"])}
            table = np.asarray(act["table"], dtype=np.int8)
            formats = {f for f, form in act["form"].items() if form["form"] == "table"}
            self._add((_record_grid(act["output_grid"]), _sha(table)), formats)
        for constant in record["constants"]:
            assert constant["codes"]["count"] >= 1, constant
            self.grids.add(_record_grid(constant))
            self._add((_record_grid(constant), constant["codes"]["sha256"]), set(constant["formats"]))
        self.islands = {a["output"] for a in record["activations"] if a["form"]["tflite"]["form"] == "float"}
        self.forms = {f: Counter((a["form"][f]["form"], a["form"][f].get("op")) for a in record["activations"]
                                 if f in a["form"]) for f in FORMATS}

    def _add(self, key: CodesKey, formats: set[str]) -> None:
        self.codes.setdefault(key, set()).update(formats)

    def has_codes(self, grid: GridKey, candidates: list[str], form: str) -> bool:
        return any(form in self.codes.get((grid, sha), set()) for sha in candidates)


# ---- .tflite ---------------------------------------------------------------------------------------------------
def _enum_names(module: str) -> dict[int, str]:
    cls = getattr(importlib.import_module(f"tflite.{module}"), module)
    return {value: name for name, value in vars(cls).items() if not name.startswith("_")}


OPS, TYPES = _enum_names("BuiltinOperator"), _enum_names("TensorType")
NUMPY = {"INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64}


def _tflite_tensors(payload: bytes):  # type: ignore[no-untyped-def]
    """(index, type name, grid or None, constant values or None) of every tensor of subgraph 0; and the ops."""
    flat = importlib.import_module("tflite.Model").Model.GetRootAsModel(payload, 0)
    graph = flat.Subgraphs(0)
    tensors = []
    for i in range(graph.TensorsLength()):
        tensor = graph.Tensors(i)
        kind, quant = TYPES[tensor.Type()], tensor.Quantization()
        grid = (_key(quant.ScaleAsNumpy(), quant.ZeroPointAsNumpy())
                if quant is not None and quant.ScaleLength() else None)
        data = flat.Buffers(tensor.Buffer()).DataAsNumpy() if tensor.Buffer() else 0
        values = None
        if not isinstance(data, int) and kind in NUMPY:
            values = np.frombuffer(data.tobytes(), dtype=np.dtype(NUMPY[kind]).newbyteorder("<"))
            values = values.reshape(tuple(tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ())
        tensors.append((kind, grid, values))
    ops = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = flat.OperatorCodes(op.OpcodeIndex())
        ops.append((OPS[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())], list(op.InputsAsNumpy()),
                    list(op.OutputsAsNumpy())))
    return tensors, ops


def _layouts(values: np.ndarray) -> list[str]:
    """sha256 of the values in every axis order (TFLite stores weights OHWI / [out, in] / NHWC operands)."""
    return sorted({_sha(np.transpose(values, perm)) for perm in itertools.permutations(range(values.ndim))})


def check_tflite(payload: bytes, numbers: RecordNumbers) -> None:
    tensors, ops = _tflite_tensors(payload)
    for index, (kind, grid, values) in enumerate(tensors):
        if kind in ("INT8", "INT16"):
            assert grid is not None, f"tensor {index}: {kind} without a grid"
        if grid is None:
            continue
        assert grid in numbers.grids, f"tflite tensor {index} ({kind}): grid {grid} is not in the record"
        if values is not None:
            assert numbers.has_codes(grid, _layouts(values), "tflite"), \
                f"tflite constant {index} ({kind}, {values.shape}): its codes on {grid} are not in the record"
    _check_own_tflite_grids(payload, tensors, numbers)
    carried = {int(index): value for index, value in json.loads(metadata(payload)[PROVENANCE_KEY])["values"].items()}
    forms: Counter = Counter()
    for op, inputs, outputs in ops:
        if op == "QUANTIZE" and tensors[inputs[0]][0] == "FLOAT32" and carried.get(outputs[0]) in numbers.islands:
            forms[("float", None)] += 1  # a float island: the activation's float op(s), quantized onto its grid
        if op in ("TANH", "LOGISTIC", "GELU") and tensors[inputs[0]][0] == "INT8":
            forms[("builtin", op)] += 1
        elif op == "GATHER" and tensors[inputs[0]][2] is not None and tensors[inputs[0]][2].size == 256 \
                and tensors[inputs[0]][0] == "INT8" and tensors[inputs[1]][0] == "INT32":
            table = tensors[inputs[0]]
            forms[("table", None)] += numbers.has_codes(table[1], [_sha(table[2])], "tflite")
    assert forms == numbers.forms["tflite"]


def _check_own_tflite_grids(payload: bytes, tensors: list, numbers: RecordNumbers) -> None:
    """Each int8 tensor that carries a planned ONNX value (by the file's provenance, not its name) has that value's
    own grid: not merely some grid of the record."""
    provenance = json.loads(metadata(payload)[PROVENANCE_KEY])
    checked = 0
    for index, value in provenance["values"].items():
        kind, grid, _ = tensors[int(index)]
        if kind == "INT8" and grid is not None and value in numbers.own:
            assert grid == numbers.own[value], f"tflite tensor {index} carries {value!r} on {grid}, planned " \
                                               f"{numbers.own[value]}"
            checked += 1
    assert checked, "no int8 tensor of the .tflite carries a planned value"


# ---- ONNX ------------------------------------------------------------------------------------------------------
def _as_planned(values: np.ndarray, unsigned: bool) -> np.ndarray:
    """Codes as the record holds them: uint8 activation codes (the record's ``onnx_codes``) are int8 codes + 128."""
    if values.dtype == np.uint8:
        assert unsigned, "uint8 codes in an ONNX form whose record says int8 activations"
        return (values.astype(np.int16) - 128).astype(np.int8)
    return values


def check_onnx(payload: bytes, numbers: RecordNumbers, form: str, unsigned: bool = False) -> None:
    graph = onnx.load_from_string(payload).graph
    init = {t.name: _as_planned(numpy_helper.to_array(t), unsigned) for t in graph.initializer}
    accounted: set[str] = set()
    tables = 0
    for node in graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            scale, zero = init[node.input[1]], init[node.input[2]]
            grid = _key(scale, zero)
            assert grid in numbers.grids, f"{form} {node.name}: grid {grid} is not in the record"
            accounted.add(node.input[2])
            if node.op_type == "DequantizeLinear" and node.input[0] in init:
                assert numbers.has_codes(grid, [_sha(init[node.input[0]])], form), \
                    f"{form} {node.name}: codes of {node.input[0]!r} on {grid} are not in the record"
                accounted.add(node.input[0])
        elif node.op_type == "Gather" and init.get(node.input[0], np.zeros(0)).dtype == np.int8:
            stored = init[node.input[0]]
            # Gather by the signed input code (negative codes wrap), or by the uint8 code (in code order)
            table = stored if unsigned else stored[np.arange(-128, 128) % 256]
            assert any(numbers.has_codes(g, [_sha(table)], form) for g in numbers.grids), \
                f"{form} {node.name}: table {node.input[0]!r} is not in the record"
            accounted.add(node.input[0])
            tables += 1
    _check_own_onnx_grids(payload, init, numbers, form)
    integer = {name for name, values in init.items() if values.dtype in (np.int8, np.uint8, np.int16, np.int32)}
    assert integer <= accounted, f"{form}: integer initializers the record does not know: {integer - accounted}"
    assert tables == sum(n for (kind, _), n in numbers.forms[form].items() if kind == "table")


def _check_own_onnx_grids(payload: bytes, init: dict, numbers: RecordNumbers, form: str) -> None:
    """Each DequantizeLinear that restores a planned value (by the model's provenance) uses that value's grid."""
    model = onnx.load_from_string(payload)
    restores = json.loads({p.key: p.value for p in model.metadata_props}[PROVENANCE_KEY])["dequantized"]
    checked = 0
    for node in model.graph.node:
        value = restores.get(node.output[0])
        if node.op_type == "DequantizeLinear" and value in numbers.own:
            grid = _key(init[node.input[1]], init[node.input[2]])
            assert grid == numbers.own[value], f"{form} {node.name} restores {value!r} on {grid}, planned " \
                                               f"{numbers.own[value]}"
            checked += 1
    assert checked, f"{form}: no DequantizeLinear restores a planned value"


# ---- the runs --------------------------------------------------------------------------------------------------
def _inputs(name: str, folder: Path) -> tuple[Path, Path]:
    if name.startswith("digits/"):
        stem = name.removeprefix("digits/")
        return DIGITS / f"{stem}.onnx", DIGITS / f"{stem}.calib.npz"
    model = BUILDERS[name][0]()
    onnx.save(model, folder / "model.onnx")
    if name.startswith("case: "):
        shape = next(c["input"] for c in CASES if c["op"] == name.removeprefix("case: "))
        data = {"x": np.random.default_rng(1).normal(0, 1.5, (64, *shape)).astype(np.float32)}
    else:
        data = onnx_models.sample_inputs(model, 32)
    np.savez(folder / "calib.npz", **data)
    return folder / "model.onnx", folder / "calib.npz"


@pytest.mark.parametrize(("name", "target"), RUNS, ids=[f"{n}-{t}" for n, t in RUNS])
def test_every_quantized_tensor_is_in_the_record(name: str, target: str, tmp_path: Path) -> None:
    model, calib = _inputs(name, tmp_path)
    result = edgeact.quantize(model, calib, formats=FORMATS, target=target, output_dir=tmp_path / "out")
    assert result.record["plan_target"] == target
    numbers = RecordNumbers(result.record)
    check_tflite(result.paths["tflite"].read_bytes(), numbers)
    unsigned = result.record["onnx_codes"]["activations"] == "uint8"
    assert unsigned  # onnxruntime-cpu's profile asks for uint8 activations (its fused int8 kernels take them)
    for form in ("onnx-qdq", "onnx-table"):
        check_onnx(result.paths[form].read_bytes(), numbers, form, unsigned)


def test_the_runs_cover_every_planned_kind_of_number(tmp_path: Path) -> None:
    """The models above hold every kind of constant and form the checks are about (else they prove less)."""
    seen: set[tuple] = set()
    for name, target in [("transformer_erf", "litert"), ("mlp_tanh", "tflm"), ("mlp_tanh", "litert"),
                         ("gemm_row_bias", "litert"),
                         ("case: MaxPool (explicit pads that are not SAME)", "litert"),
                         ("case: Conv (no bias: the TFLite kernels get a zero one)", "litert")]:
        folder = tmp_path / f"{len(seen)}_{target}"
        folder.mkdir()
        record = edgeact.quantize(*_inputs(name, folder), formats=FORMATS, target=target,
                                  output_dir=folder / "out").record
        seen |= {(c["role"], tuple(c["formats"])) for c in record["constants"]}
        seen |= {("form", a["form"]["tflite"]["form"]) for a in record["activations"]}
    tflite_only = ("tflite",)
    assert {("reciprocal", tflite_only), ("pad_fill", tflite_only), ("bias", tflite_only),
            ("bias", tuple(FORMATS)), ("weight", tuple(FORMATS)), ("form", "builtin"), ("form", "table"),
            ("form", "float")} <= seen


def test_an_activation_kept_float_is_float_in_the_record_and_in_the_tflite(tmp_path: Path) -> None:
    model, calib = _inputs("mlp_tanh", tmp_path)
    result = edgeact.quantize(model, calib, formats=FORMATS, target="litert", exclude=["Tanh"],
                              output_dir=tmp_path / "out")
    kept = [f for f in result.record["fallbacks"] if f["op_type"] == "Tanh"]
    assert len(kept) == 2 and not result.record["activations"]
    assert all(f["form"][form]["form"] == "float" for f in kept for form in FORMATS)
    tensors, ops = _tflite_tensors(result.paths["tflite"].read_bytes())
    assert [tensors[inputs[0]][0] for op, inputs, _ in ops if op == "TANH"] == ["FLOAT32", "FLOAT32"]


@pytest.mark.parametrize("name", ["transformer_erf", "digits/lstm", "case: MaxPool (explicit pads that are not SAME)"])
def test_signed_onnx_activation_codes_are_the_record_numbers_too(name: str, tmp_path: Path) -> None:
    """--onnx-activations int8 writes the planned int8 codes themselves (tables rolled to the signed index)."""
    model, calib = _inputs(name, tmp_path)
    result = edgeact.quantize(model, calib, formats=FORMATS, onnx_activations="int8", output_dir=tmp_path / "out")
    assert result.record["onnx_codes"]["activations"] == "int8"
    assert result.record["options"]["onnx_activations"] == "int8"
    for form in ("onnx-qdq", "onnx-table"):
        check_onnx(result.paths[form].read_bytes(), RecordNumbers(result.record), form, unsigned=False)
