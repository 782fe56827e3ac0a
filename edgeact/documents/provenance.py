"""Provenance written into the int8 models, so that readers (profile-device, reports) learn what a tensor is from
data, never from its name: which ONNX value each tensor of a .tflite carries and in which layout, which ONNX node
each TFLite op lowers, which planned value each DequantizeLinear output of an ONNX model restores, and which
calibration record describes the file."""

from __future__ import annotations

import json
from dataclasses import dataclass

from edgeact.documents.typed_json import spec, to_json

PROVENANCE_KEY = "edgeact_provenance"  # .tflite metadata buffer / ONNX metadata_props key: a document below, as JSON
RECORD_KEY = "calibration_record"  # .tflite metadata / ONNX metadata_props: the record's file name, beside the model
RECORD_SHA256_KEY = "calibration_record_sha256"  # .tflite metadata: the sha256 of the record's bytes
PROVENANCE_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class TFLiteProvenance:
    """What the tensors and ops of a .tflite written by edgeact stand for."""

    version: int = spec("provenance format", const=PROVENANCE_VERSION)
    values: dict[str, str] = spec("tensor index (as a string) -> the ONNX value the tensor carries")
    nhwc: list[int] = spec("the tensors among them stored channels-last (NHWC); the others keep ONNX's axis order")
    nodes: dict[str, list[int]] = spec("ONNX node -> the indices of the TFLite ops that lower it")

    def to_bytes(self) -> bytes:
        return json.dumps(to_json(self), separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True, kw_only=True)
class OnnxProvenance:
    """What the DequantizeLinear outputs of an int8 ONNX model written by edgeact restore."""

    version: int = spec("provenance format", const=PROVENANCE_VERSION)
    dequantized: dict[str, str] = spec("DequantizeLinear output -> the planned ONNX value it carries (a graph "
                                       "output keeps its own name)")

    def to_text(self) -> str:
        return json.dumps(to_json(self), separators=(",", ":"), sort_keys=True)
