"""What the tensors and ops of an int8 model stand for, read from the provenance edgeact writes into its models
(:mod:`edgeact.documents.provenance`): for a .tflite, each tensor's ONNX value and layout and each op's ONNX node
(filled into the lowered graph); for an ONNX model, the value each DequantizeLinear output restores; for both, the
calibration record's file name. Files written before that metadata existed are read by
:func:`guess_from_legacy_names`, the only place that looks into names."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from edgeact.documents.provenance import (
    PROVENANCE_KEY,
    RECORD_KEY,
    RECORD_SHA256_KEY,
    OnnxProvenance,
    TFLiteProvenance,
)
from edgeact.documents.typed_json import from_json
from edgeact.errors import DocumentError
from edgeact.tflite.graph import LoweredGraph


@dataclass
class ModelProvenance:
    """What an int8 model file says about itself (beyond the tensors of a .tflite, which it fills in)."""

    record: Path | None  # the calibration record that describes the model (None: the file names none)
    record_sha256: str | None = None  # the record's sha256 the file carries
    dequantized: dict[str, str] | None = None  # ONNX: DequantizeLinear output -> value (None: names decide)
    warnings: list[str] = field(default_factory=list)

    def value_of(self, dequantized: str) -> str | None:
        """The planned ONNX value a DequantizeLinear output of an ONNX model restores (None: none)."""
        if self.dequantized is not None:
            return self.dequantized.get(dequantized)
        return guess_from_legacy_names(dequantized, "onnx dequantized").value


class Guess(NamedTuple):
    value: str | None
    layout: str = "nchw"


def guess_from_legacy_names(name: str, kind: str) -> Guess:
    """ONLY for files written before edgeact put provenance into its models (no ``edgeact_provenance`` or
    ``calibration_record`` metadata): what the exporters' naming conventions of that time say about ``name``.

    ``kind``: ``tflite tensor`` (``v/int8`` carries ONNX value ``v``, ``v/int8_nhwc`` carries it channels-last),
    ``tflite op output`` (a tensor ``<node>/<step>`` comes from ONNX node ``<node>``), ``onnx dequantized``
    (``v_dequantized`` restores ``v``; another name is a graph output restoring itself), ``model file``
    (``<stem>.int8.<form>`` is described by ``<stem>.calibration.json``)."""
    if kind == "tflite tensor":
        for suffix, layout in (("/int8_nhwc", "nhwc"), ("/int8", "nchw")):
            if name.endswith(suffix):
                return Guess(name[: -len(suffix)], layout)
        return Guess(None)
    if kind == "tflite op output":
        return Guess(name.rsplit("/", 1)[0] if "/" in name.strip("/") else name)
    if kind == "onnx dequantized":
        return Guess(name.removesuffix("_dequantized"))
    if kind == "model file":
        return Guess(f"{name.split('.int8.')[0]}.calibration.json")
    raise ValueError(f"unknown kind of name {kind!r}")


def tflite_provenance(graph: LoweredGraph, metadata: dict[str, str], path: Path) -> ModelProvenance:
    """Fill ``graph`` (read from ``path``) with its tensors' ONNX values and layouts and its ops' ONNX nodes from
    the file's ``metadata``; the model's calibration record. Unreadable provenance is a warning (no tensor is
    then mapped)."""
    warnings: list[str] = []
    found = ModelProvenance(_record(metadata.get(RECORD_KEY), path, warnings), metadata.get(RECORD_SHA256_KEY),
                            None, warnings)
    text = metadata.get(PROVENANCE_KEY)
    if text is None:
        _legacy_tflite(graph)
        return found
    try:
        _apply(graph, from_json(TFLiteProvenance, json.loads(text)))
    except (ValueError, RecursionError, DocumentError) as exc:
        found.warnings.append(f"{path}: its {PROVENANCE_KEY} metadata is not readable ({exc}); its tensors are "
                              "not compared with the float model's")
    return found


def onnx_dequantized(metadata: dict[str, str]) -> dict[str, str] | None:
    """DequantizeLinear output -> the value it restores, from an ONNX model's ``metadata_props`` (None: the model
    predates provenance); unreadable metadata raises ValueError or :class:`DocumentError`."""
    text = metadata.get(PROVENANCE_KEY)
    return None if text is None else from_json(OnnxProvenance, json.loads(text)).dequantized


def onnx_provenance(metadata: dict[str, str], path: Path) -> ModelProvenance:
    """An int8 ONNX model's provenance from its ``metadata_props``."""
    warnings: list[str] = []
    found = ModelProvenance(_record(metadata.get(RECORD_KEY), path, warnings), metadata.get(RECORD_SHA256_KEY),
                            None, warnings)
    try:
        found.dequantized = onnx_dequantized(metadata)
    except (ValueError, RecursionError, DocumentError) as exc:
        found.dequantized = {}
        warnings.append(f"{path}: its {PROVENANCE_KEY} metadata is not readable ({exc}); its tensors are not "
                        "compared with the float model's")
    return found


def _record(name: str | None, path: Path, warnings: list[str]) -> Path | None:
    """The calibration record's path beside the model: the file the model names, else (older files) the name's."""
    if name is None:
        return path.with_name(guess_from_legacy_names(path.name, "model file").value)
    if not name or Path(name).name != name or name in (".", ".."):
        warnings.append(f"{path}: names calibration record {name!r}, which is not a file name; its activations "
                        "are not reported")
        return None
    return path.with_name(name)


def _apply(graph: LoweredGraph, provenance: TFLiteProvenance) -> None:
    """Set sources, layouts and nodes; an index outside the graph is an error (nothing set)."""
    tensors, ops = len(graph.tensors), len(graph.ops)
    values = {}
    for key, value in provenance.values.items():
        if not key.isdigit() or int(key) >= tensors:
            raise DocumentError(f"values.{key} is not a tensor index (the model has {tensors} tensors)")
        values[int(key)] = value
    nodes = {index: node for node, indices in provenance.nodes.items() for index in indices}
    outside = [i for i in provenance.nhwc if not 0 <= i < tensors] + [i for i in nodes if not 0 <= i < ops]
    if outside:
        raise DocumentError(f"indices {sorted(outside)} are outside the model ({tensors} tensors, {ops} ops)")
    for index, value in values.items():
        graph.tensors[index].source = value
        graph.tensors[index].layout = "nhwc" if index in provenance.nhwc else "nchw"
    for index, node in nodes.items():
        graph.ops[index].node = node


def _legacy_tflite(graph: LoweredGraph) -> None:
    for tensor in graph.tensors:
        tensor.source, tensor.layout = guess_from_legacy_names(tensor.name, "tflite tensor")
    for op in graph.ops:
        if op.outputs and op.outputs[0] >= 0:
            op.node = guess_from_legacy_names(graph.tensors[op.outputs[0]].name, "tflite op output").value or op.node
