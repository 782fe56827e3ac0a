"""The calibration record (``<stem>.calibration.json``, written by ``edgeact quantize``), typed.

:class:`CalibrationRecordDocument` describes every field a record holds; docs/schema/calibration-record.schema.json
is generated from it. Readers take what they need through the ``...Core`` classes it extends (profile-device reads a
:class:`RecordCore`), so a record from an edgeact that wrote fewer fields still reads where they are not needed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeact.documents.typed_json import Between, from_json, spec
from edgeact.errors import DocumentError

SHARE = Between(0, 1)
ANY_NUMBER = Between(-math.inf, math.inf, finite=False)  # dB or a metric: Infinity when exact


RECORD_SCHEMA = 2


@dataclass(frozen=True, kw_only=True)
class Grid:
    """A per-tensor grid: real = scale * (code - zero_point)."""

    dtype: str = spec("int8, int16 or int32")
    scale: float = spec()
    zero_point: int = spec()


@dataclass(frozen=True, kw_only=True)
class ChannelGrid:
    """A symmetric per-channel grid (weights, biases): zero point 0, one scale per slice along ``axis``."""

    dtype: str = spec("int8 or int32")
    axis: int = spec()
    scales: list[float] = spec()


@dataclass(frozen=True, kw_only=True)
class ErrorCore:
    """An activation table's error, as reports show it."""

    rms_error: float = spec("RMS error of the table against f over the input range")
    rms_floor: float = spec("sqrt((s_out^2 + E[f'^2] s_in^2) / 12): the int8 floor for these grids")


@dataclass(frozen=True, kw_only=True)
class TableError(ErrorCore):
    """An activation table's error against f, next to its bounds (edgeact.numerics.floor.TableError)."""

    per_code_max_error: float = spec()
    per_code_rms_error: float = spec()
    per_code_bound: float = spec("s_out/2 + clamp error at the codes")
    max_abs_error: float = spec("end to end: x -> quantize -> table -> dequantize, vs f(x)")
    bound: float = spec("s_out/2 + max|f'| s_in/2 + clamp error")
    clamp_error: float = spec()
    interpolation_bound: float = spec("int16 interpolated tables; 0 for int8")
    evaluation_bound: float = spec("float32 conventions; 0 for ideal")
    max_slope: float = spec()


@dataclass(frozen=True, kw_only=True)
class ChosenRange:
    """The clip range chosen for a tensor and why."""

    lo: float = spec()
    hi: float = spec()
    method: str = spec()
    why: str = spec()


@dataclass(frozen=True, kw_only=True)
class ActivationForm:
    """How one output format computes an activation, and why."""

    form: str = spec("builtin, table or float")
    reason: str = spec()
    op: str | None = spec("the builtin (TFLite TANH, LOGISTIC, GELU)", optional=True)
    options: dict[str, Any] | None = spec("the builtin's options", optional=True)


@dataclass(frozen=True, kw_only=True)
class ActivationMap:
    """One activation's nonlinear quantization map: its function, grids and table (the record and the profile
    report both carry it)."""

    node: str = spec()
    function: str = spec("the activation (gelu, tanh, ...) or a fused elementwise chain's name")
    params: dict[str, float] = spec("the function's parameters")
    saturation_rate: float | None = spec("share of calibration inputs beyond the saturation bounds", between=SHARE)
    input_grid: Grid = spec()
    output_grid: Grid = spec()
    table: list[int] = spec("the output code for each input code, from the lowest (int16: 513 knots read by "
                            "interpolation, or, when table_sampled, every 128th code of an exact table and the last)")
    table_sampled: bool | None = spec("an exact int16 table (one output code per input code, 65,536 in the model) "
                                      "shown by 513 samples", optional=True)
    expression: str | None = spec("a fused chain's formula", optional=True)
    reference: list[float] | None = spec("a fused chain's f at every input code", optional=True)


@dataclass(frozen=True, kw_only=True)
class ActivationCore(ActivationMap):
    """One activation's nonlinear quantization map, as reports draw it."""

    error: ErrorCore = spec()
    input: str | None = spec("the pre-activation tensor (its grid chosen for the error after the activation)",
                             optional=True)
    output: str | None = spec("the activation's output tensor", optional=True)


@dataclass(frozen=True, kw_only=True)
class RecordActivation(ActivationCore):
    """One activation: its grids, table, error and form per output format."""

    input: str = spec("the pre-activation tensor")
    output: str = spec()
    input_range: ChosenRange = spec()
    error: TableError = spec()
    form: dict[str, ActivationForm] = spec("by output format")


@dataclass(frozen=True, kw_only=True)
class StaticShapes:
    """The input shapes a static target (TFLite) fixed before canonicalisation."""

    input_shapes: dict[str, list[int]] = spec()
    shapes_from: str = spec("--input-shape, or the first calibration feed")
    batch_stays_dynamic: dict[str, int] = spec("input -> its batch axis, left dynamic in the ONNX forms")


@dataclass(frozen=True, kw_only=True)
class RecordCore:
    """What profile-device reads from a record: the float model, the files, static shapes, the activations."""

    model_sha256: str = spec("sha256 of the float model as edgeact prepares it")
    activations: list[ActivationCore] = spec()
    model: str = spec("the float model's file (or source) name")
    files: dict[str, str] = spec("format -> the file written (in the record's folder)")
    static_shapes: StaticShapes | None = spec(optional=True)


@dataclass(frozen=True, kw_only=True)
class PlannedTensor(Grid):
    """A planned activation tensor's grid, the range chosen for it (or the tensor whose grid it shares)."""

    range: list[float] | None = spec("[lo, hi]", optional=True)
    method: str | None = spec(optional=True)
    why: str | None = spec(optional=True)
    shares_grid_with: str | None = spec(optional=True)
    int16_why: str | None = spec("why the group's grid is int16 (--int16, a --budget promotion)", optional=True)


@dataclass(frozen=True, kw_only=True)
class Codes:
    """A constant's integer codes, hashed."""

    sha256: str = spec("of the values in C order, little-endian")
    count: int = spec()
    dtype: str = spec()
    shape: list[int] = spec()


@dataclass(frozen=True, kw_only=True)
class ConstantFields:
    """Where a planned constant goes and which formats store its codes."""

    node: str = spec()
    input: str = spec("the constant's name")
    input_index: int = spec()
    role: str = spec("weight, bias, operand, ...")
    codes: Codes = spec()
    formats: list[str] = spec()
    why: str | None = spec(optional=True)


@dataclass(frozen=True, kw_only=True)
class TensorConstant(ConstantFields, Grid):
    """A constant on a per-tensor grid."""


@dataclass(frozen=True, kw_only=True)
class ChannelConstant(ConstantFields, ChannelGrid):
    """A constant on a per-channel grid."""


@dataclass(frozen=True, kw_only=True)
class NodeOp:
    """A node and its op type."""

    node: str = spec()
    op_type: str = spec()


@dataclass(frozen=True, kw_only=True)
class QuantizedNode(NodeOp):
    """A node computed in int8."""

    domain: str | None = spec("the op's domain when not ONNX's (ai.edgeact fused structures)", optional=True)


@dataclass(frozen=True, kw_only=True)
class Fallback(NodeOp):
    """A node left in float, and why."""

    reason: str = spec()
    form: dict[str, ActivationForm] | None = spec("an activation's float form per output format", optional=True)


@dataclass(frozen=True, kw_only=True)
class Options:
    """The quantize options of the run."""

    method: str = spec()
    formats: list[str] = spec()
    per_tensor: bool = spec()
    exclude: list[str] = spec()
    batch_size: int = spec()
    skip_bad_samples: bool = spec()
    target: str = spec()
    float_tflite: bool = spec()
    int16: list[str] | None = spec("--int16: nodes, op types or activations run with int16 activations",
                                   optional=True)
    bias_correction: bool | None = spec("whether quantized biases were corrected for the mean output error "
                                        "(--no-bias-correction turns it off); absent in older records", optional=True)
    io: str | None = spec("--io: float or int8 inputs and outputs of the .tflite; absent in older records",
                          optional=True)
    onnx_activations: str | None = spec("--onnx-activations: auto (the ONNX device's profile decides), int8 or "
                                        "uint8; absent in older records", optional=True)
    recurrent_cells: str | None = spec("--recurrent-cells: auto (the target's profile decides), int16, float or "
                                       "int8; absent in older records", optional=True)


@dataclass(frozen=True, kw_only=True)
class OnnxCodes:
    """How the ONNX forms hold 8-bit activation codes (the grids are the plan's either way)."""

    activations: str = spec("int8, or uint8: the same grid with zero point + 128 and every code + 128")
    why: str = spec()


@dataclass(frozen=True, kw_only=True)
class BudgetPromotion:
    """One tensor group promoted (to int16, or left float) to meet the budget."""

    group: str = spec("the group's first value (edgeact sensitivity names groups the same way)")
    precision: str = spec("what it was promoted to: int16 (A16W8: int16 grid, int8 weights) or float")
    nodes: list[str] = spec("the nodes it affects: for float, those writing and reading its values, which run float")
    recovered: float = spec("what leaving this group alone float recovered, in the budget's measure",
                            between=ANY_NUMBER)
    why: str | None = spec("why it went float although int16 was asked for (the target has no 16x8 kernel for "
                           "one of its nodes)", optional=True)


@dataclass(frozen=True, kw_only=True)
class Int8Share:
    """MAC-carrying ops (a weight input: Conv, MatMul, Gemm, ...) and how many of them the plan makes int8 (every
    value they read and write on an int8 grid) or 16x8 (some on an int16 grid, weights int8)."""

    mac_ops: int = spec()
    int8_mac_ops: int = spec()
    int16_mac_ops: int = spec()
    share: float = spec(between=SHARE)


@dataclass(frozen=True, kw_only=True)
class OutputSqnr:
    full_int8: float = spec("worst output SQNR (dB) with every group int8", between=ANY_NUMBER)
    achieved: float = spec("worst output SQNR (dB) of the plan written", between=ANY_NUMBER)


@dataclass(frozen=True, kw_only=True)
class BudgetRecord:
    """``quantize --budget``: the fewest, most sensitive tensor groups promoted (int16, or float) so that the budget
    holds."""

    budget: str = spec("the budget, MEASURE>=NUMBER (sqnr in dB, a task metric, or int8: the share of MAC ops "
                       "left int8)")
    met: bool = spec("whether the plan written meets it on the budget's samples")
    precision: str = spec("what groups were promoted to: int16 (A16W8) or float")
    note: str | None = spec("why the promotion differs from the one asked for", optional=True)
    samples: int = spec("samples the budget was measured on")
    ranked_samples: int | None = spec("samples each group's sensitivity trial ran on (the ranking the budget "
                                      "promotes in; at most the budget's samples)", optional=True)
    full_int8: float = spec("the measure with every group int8", between=ANY_NUMBER)
    achieved: float = spec("the measure of the plan written (onnx-qdq arithmetic)",
                           between=ANY_NUMBER)
    promotions: list[BudgetPromotion] = spec("groups promoted, most sensitive first")
    output_sqnr_db: OutputSqnr | None = spec("int8>=X budgets: the worst output SQNR before and after the "
                                             "promotions (before bias correction)", optional=True)
    int8_share: Int8Share = spec()
    evaluations: int = spec("mixes of int8 and float groups measured to choose")
    seconds: float | None = spec("time the choice took; written by earlier versions only (a record is "
                                 "byte-identical across runs)", optional=True)


@dataclass(frozen=True, kw_only=True)
class CorrectedBias:
    """One bias moved by the mean int8-vs-float error of the layer(s) it feeds."""

    constant: str = spec("the model's bias tensor")
    nodes: list[str] = spec("the nodes it feeds (several for an unrolled recurrent layer's steps)")
    level: int = spec("its correction pass: one more than the deepest corrected layer upstream")
    max_shift: float = spec("largest change of one channel's bias (float units)", between=ANY_NUMBER)
    rms_shift: float = spec("root mean square change over its channels", between=ANY_NUMBER)
    output_rms: float = spec("root mean square of the float layer output, for scale", between=ANY_NUMBER)


@dataclass(frozen=True, kw_only=True)
class SkippedBias:
    constant: str = spec()
    why: str = spec()


@dataclass(frozen=True, kw_only=True)
class WorstOutputSqnr:
    before: float = spec("worst output SQNR (dB) of the onnx-qdq arithmetic before correction", between=ANY_NUMBER)
    after: float = spec("the same after correction", between=ANY_NUMBER)


@dataclass(frozen=True, kw_only=True)
class BiasCorrectionRecord:
    """Empirical bias correction: each quantized bias minus its layer's mean int8-vs-float output error per channel
    on calibration samples, corrected level by level so each layer sees the corrected layers before it."""

    applied: bool = spec("whether the plan written carries corrected biases")
    why: str | None = spec("why not, when not applied", optional=True)
    samples: int | None = spec("calibration samples measured on", optional=True)
    levels: int | None = spec("sequential correction passes", optional=True)
    worst_output_sqnr_db: WorstOutputSqnr | None = spec(optional=True)
    biases: list[CorrectedBias] | None = spec("biases corrected, by level", optional=True)
    skipped: list[SkippedBias] = spec("quantized biases left as they were, with why")


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """The calibration data seen."""

    samples: int = spec()
    bad_samples: list[str] = spec("samples skipped for NaN/Inf")


@dataclass(frozen=True, kw_only=True)
class TFLiteIo:
    """One graph input or output of the int8 .tflite."""

    role: str = spec("input or output")
    dtype: str = spec("float32, or int8 (--io int8: feed/read codes on this grid), or an integer input's type")
    scale: float | None = spec("real = scale * (code - zero_point), for int8 codes", optional=True)
    zero_point: int | None = spec(optional=True)


@dataclass(frozen=True, kw_only=True)
class TFLiteLowering:
    """How the .tflite lowered the activations."""

    target: str = spec("the device profile")
    table_ops: list[str] | None = spec("activation nodes lowered as CAST -> ADD -> GATHER tables", optional=True)
    builtin_ops: list[str] | None = spec("activation nodes lowered as exact builtins", optional=True)
    island_ops: list[str] | None = spec("activation nodes lowered as float islands (DEQUANTIZE -> the float op -> "
                                        "QUANTIZE onto the planned grids) inside the target's fast path; absent in "
                                        "older records", optional=True)
    io: dict[str, TFLiteIo] | None = spec("each graph input and output by name: its type, and the grid of int8 "
                                          "codes; absent in older records", optional=True)


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """SQNR (dB) of each int8 form against the float model, per output, on calibration samples (empty without
    calibration data)."""

    samples: int | None = spec(optional=True)
    forms: dict[str, dict[str, float]] = spec("form -> output -> SQNR dB", rest=True)


@dataclass(frozen=True, kw_only=True)
class CalibrationRecordDocument(RecordCore):
    """Every decision of an ``edgeact quantize`` run: the model, the options, the plan (grids, tables, constants,
    fallbacks, hazards), the lowering, the evaluation and the files written."""

    schema_version: int | None = spec(f"the record schema ({RECORD_SCHEMA}: activation forms per format, every "
                                      "constant's grid and codes); absent in records written before it",
                                      optional=True)

    activations: list[RecordActivation] = spec()
    edgeact_version: str = spec()
    frontend: dict[str, str] = spec("kind (onnx, pytorch ...) and, for PyTorch, the exporter and source")
    options: Options = spec()
    opset: dict[str, int] = spec("opset, and upgraded_from when the import upgraded it")
    passes: list[str] = spec("canonicalisation passes that changed the model")
    calibration: Calibration = spec()
    plan_target: str = spec("the device profile the plan's activation forms were decided for")
    tflite_io: str | None = spec("the .tflite's float inputs and outputs: float (float32, QUANTIZE/DEQUANTIZE inside "
                                 "the model) or int8 (those on an int8 grid take and give its codes: see tflite.io); "
                                 "absent in older records", optional=True)
    tflite_islands: dict[str, str] | None = spec("quantized nodes (not activations: their forms say) the .tflite runs "
                                                 "as float islands on their planned grids, and why; absent in older "
                                                 "records", optional=True)
    onnx_codes: OnnxCodes | None = spec("the code type of 8-bit activations in the ONNX forms; absent in older "
                                        "records (int8)", optional=True)
    tensors: dict[str, PlannedTensor] = spec()
    constants: list[TensorConstant | ChannelConstant] = spec()
    quantized_nodes: list[QuantizedNode] = spec()
    fallbacks: list[Fallback] = spec()
    integer_nodes: list[NodeOp] = spec()
    hazards: list[str] = spec()
    tflite: TFLiteLowering | None = spec(optional=True)
    warnings: list[str] = spec()
    evaluation: Evaluation = spec()
    budget: BudgetRecord | None = spec("present when quantize ran with --budget", optional=True)
    bias_correction: BiasCorrectionRecord | None = spec("the bias correction stage; absent in older records",
                                                        optional=True)


def read_record(path: str | Path) -> CalibrationRecordDocument:
    """A calibration record file, checked field by field; an error names the file and the field."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise DocumentError(f"{path}: cannot read the calibration record ({exc.strerror})") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DocumentError(f"{path}: not a calibration record (not JSON: {exc})") from exc
    try:
        return from_json(CalibrationRecordDocument, data)
    except DocumentError as exc:
        raise DocumentError(f"{path}: not a usable calibration record ({exc})") from exc
