"""The profile-device report (``edgeact profile-device --json``), typed: what profile-device builds, the JSON, HTML
and terminal writers render, and the gate reads. docs/schema/profile-report.schema.json is generated from it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from edgeact.documents.calibration_record import ActivationMap
from edgeact.documents.typed_json import Between, from_json, spec, to_json

REPORT_SCHEMA = 2  # 2: "fingerprint" (the float model's hash and signature), "warnings", "bad_samples"
READABLE_SCHEMAS = (1, 2)  # 1: no fingerprint (the gate warns that it cannot check the model)
SQNR = Between(-math.inf, math.inf, finite=False)  # dB: Infinity when exact, never NaN
SHARE = Between(0, 1)


@dataclass(frozen=True, kw_only=True)
class Device:
    """The device profile the int8 model ran on."""

    name: str = spec("the device profile's name (a built-in one, or the name in a profile file)")
    backend: str = spec("what ran it: a runtime (litert-xnnpack, litert-reference, tflm, onnxruntime) or emulator")
    description: str = spec("the profile's description")


@dataclass(frozen=True, kw_only=True)
class SignatureEntry:
    """One input or output of the float model."""

    name: str = spec()
    dtype: str | None = spec("numpy dtype name; null when the model does not say")
    shape: list[int | str] | None = spec("dims: fixed sizes, symbolic names, '?' for unnamed dynamic ones; null "
                                         "when unknown")


@dataclass(frozen=True, kw_only=True)
class Fingerprint:
    """Which float model the numbers compare against (the gate refuses a baseline of another model)."""

    float_model_sha256: str | None = spec("sha256 of the float model as edgeact prepares it (what quantize records "
                                          "as model_sha256); null when it could not be computed")
    inputs: list[SignatureEntry] = spec()
    outputs: list[SignatureEntry] = spec()


@dataclass(frozen=True, kw_only=True)
class CodeAgreement:
    """The device's int8 codes against edgeact's emulator (or the ONNX reference evaluator) on the same inputs."""

    equal_codes: float = spec("share of identical codes", between=SHARE)
    max_lsb: int = spec("largest difference, in output steps")


@dataclass(frozen=True, kw_only=True)
class ErrorHistogram:
    """int8 minus float32 over every output value, in 41 bins."""

    unit: str = spec("'output steps' (the int8 output grid's scale) or 'output units'")
    edges: list[float] = spec("42 bin edges")
    counts: list[int] = spec("41 counts")


@dataclass(frozen=True, kw_only=True)
class OutputReport:
    """One graph output: the device's int8 result against the float model's."""

    sqnr_db: float = spec("signal-to-quantization-noise ratio; Infinity when exact", between=SQNR)
    cosine: float = spec("cosine similarity")
    max_abs_error: float | None = spec("largest |int8 - float32| over finite values; null when none is finite")
    max_abs_error_lsb: float | None = spec("max_abs_error in output steps; null without an int8 output grid")
    nan_count: int = spec("NaN values in the device's output")
    inf_count: int = spec("Inf values in the device's output")
    top1_agreement: float | None = spec("share of samples whose argmax agrees (2-D outputs with more than one "
                                        "column); null otherwise", between=SHARE)
    error_histogram: ErrorHistogram = spec()
    emulator: CodeAgreement | None = spec("agreement with edgeact's emulator or the ONNX reference evaluator",
                                          optional=True)


@dataclass(frozen=True, kw_only=True)
class LayerReport:
    """One int8 tensor of the model against the same tensor of the float model (``--per-layer``)."""

    tensor: str = spec("the ONNX value the int8 tensor carries")
    device_tensor: str | None = spec("the tensor's name in the .tflite (what Model Explorer shows); absent for an "
                                     "ONNX model", optional=True)
    device_dtype: str | None = spec("its type in the .tflite (int8, int16); absent for an ONNX model", optional=True)
    sqnr_db: float | None = spec("SQNR against the float model's tensor; null when the float model has none",
                                 between=SQNR)
    sqnr_drop_db: float | None = spec("SQNR lost against the layers that feed it (its own share of the error); "
                                      "null for a first layer")
    source: str = spec("whose tensors: 'device' (the runtime shows them) or 'emulator'")
    equal_codes: float | None = spec("share of codes equal to the emulator's re-run of this op on the device's "
                                     "own inputs", between=SHARE, optional=True)
    max_lsb: int | None = spec("largest difference from that re-run, in steps", optional=True)
    feeds_activation: str | None = spec("the activation this tensor is the input of: its grid was chosen for the "
                                        "error after that activation (inputs it saturates are clipped on purpose), "
                                        "so judge it by after_activation_sqnr_db", optional=True)
    after_activation_sqnr_db: float | None = spec("SQNR of that activation's output tensor", between=SQNR,
                                                  optional=True)


@dataclass(frozen=True, kw_only=True)
class ActivationReport(ActivationMap):
    """One activation's nonlinear quantization map, from the calibration record written with the model."""

    rms_error: float = spec("RMS error of the int8 table against f", between=Between(0))
    rms_floor: float = spec("the int8 error floor for these grids")


@dataclass(frozen=True, kw_only=True)
class Hazard:
    """Something the device does differently from what the model says, or does not do in int8."""

    op: str = spec()
    tensor: str = spec()
    status: str = spec("the device's verdict: wrong_silently, float, u8s8_saturation_risk, ...")
    reason: str = spec()


@dataclass(frozen=True, kw_only=True)
class Latency:
    """Single-sample runs after a warm-up."""

    median: float = spec("milliseconds", between=Between(0))
    p95: float = spec("milliseconds")
    runs: int = spec()
    threads: int = spec()


@dataclass(frozen=True, kw_only=True)
class Delegate:
    """How the device's delegate (LiteRT's XNNPACK) split the model."""

    partitions: int = spec("partitions the delegate runs (1: the whole model, where every op is delegated)")
    outside: dict[str, int] = spec("ops LiteRT's own kernels run outside the partitions, by builtin name", rest=True)


@dataclass(frozen=True, kw_only=True)
class ProfileReport:
    """An int8 model run on a device's runtime against its float model on the same data (profile-device)."""

    schema_version: int = spec("the report schema (the gate reads 1 and 2)", const=REPORT_SCHEMA)
    edgeact_version: str = spec()
    model: str = spec("the int8 model's file name")
    baseline: str = spec("the float model's file name")
    fingerprint: Fingerprint | None = spec(since=2)
    device: Device = spec()
    samples: int = spec("samples compared")
    bad_samples: list[str] = spec("samples skipped for NaN/Inf (--skip-bad-samples)", since=2,
                                  default_factory=list)
    outputs: dict[str, OutputReport] = spec("by output name")
    layers: list[LayerReport] = spec("worst SQNR first; empty without --per-layer")
    activations: list[ActivationReport] = spec("from the calibration record beside the model; empty without one")
    hazards: list[Hazard] = spec()
    float_ops: dict[str, list[str]] = spec("ops run in float32, by the ONNX node they lower")
    latency_ms: Latency | None = spec("null on an emulated device")
    delegate: Delegate | None = spec("where the device runs a delegate: its partitions and the ops outside them; "
                                     "absent elsewhere and in older reports", optional=True)
    model_size_bytes: int = spec()
    warnings: list[str] = spec(since=2, default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return to_json(self)

    @classmethod
    def from_json(cls, data: Any) -> ProfileReport:
        """A parsed report (schema 1 or 2) checked field by field (:class:`~edgeact.errors.DocumentError`)."""
        return from_json(cls, data)

    def __getitem__(self, key: str) -> Any:
        """The JSON form's field ``key``: read access for callers written against the report as a dict."""
        return self.to_json()[key]
