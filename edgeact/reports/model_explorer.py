"""Per-layer numbers as Model Explorer node data (google-ai-edge/model-explorer's GraphNodeData JSON: ``results``
keyed by a node's output tensor name, each ``{"value": number}``, and a colour ``gradient``), one file per quantity,
to overlay on the .tflite: ``model-explorer model.int8.tflite --node_data_paths=a.json,b.json``."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

RED, YELLOW, GREEN = "#d73027", "#fee08b", "#1a9850"
LOW_IS_BAD = [{"stop": 0, "bgColor": RED}, {"stop": 0.5, "bgColor": YELLOW}, {"stop": 1, "bgColor": GREEN}]
HIGH_IS_BAD = [{"stop": 0, "bgColor": GREEN}, {"stop": 0.5, "bgColor": YELLOW}, {"stop": 1, "bgColor": RED}]
PRECISION = [{"value": 8, "bgColor": "#91bfdb"}, {"value": 16, "bgColor": "#fc8d59"}]  # int8 blue, int16 orange
SQNR_CAP = 200.0  # an exact tensor (infinite SQNR) is shown as this many dB: node data values are finite numbers
BITS = {"int8": 8, "uint8": 8, "int16": 16}


def _sqnr(layer: Any) -> float | None:
    return None if layer.sqnr_db is None else min(layer.sqnr_db, SQNR_CAP)


QUANTITIES: dict[str, tuple[Callable[[Any], float | None], dict[str, Any]]] = {
    "sqnr_db": (_sqnr, {"gradient": LOW_IS_BAD}),
    "sqnr_drop_db": (lambda layer: layer.sqnr_drop_db, {"gradient": HIGH_IS_BAD}),
    "device_agreement": (lambda layer: layer.equal_codes, {"gradient": LOW_IS_BAD}),
    "precision_bits": (lambda layer: BITS.get(layer.device_dtype or ""), {"thresholds": PRECISION}),
}


def node_data(report: Any) -> dict[str, dict[str, Any]]:
    """Quantity -> its GraphNodeData (only quantities some layer has), keyed by the device's tensor names (the
    ONNX value names for an ONNX model)."""
    documents = {}
    for quantity, (value_of, colours) in QUANTITIES.items():
        results = {}
        for layer in report.layers:
            value = value_of(layer)
            if value is not None and math.isfinite(value):
                results[layer.device_tensor or layer.tensor] = {"value": round(float(value), 4)}
        if results:
            documents[quantity] = {"results": dict(sorted(results.items())), **colours}
    return documents


def node_data_paths(prefix: Path, quantities: list[str]) -> dict[str, Path]:
    """``out/model.json`` -> ``out/model.sqnr_db.json``, ``out/model.sqnr_drop_db.json``, ..."""
    stem = prefix.name.removesuffix(".json")
    return {quantity: prefix.with_name(f"{stem}.{quantity}.json") for quantity in quantities}


def node_data_texts(report: Any, prefix: Path) -> dict[Path, str]:
    """Every node-data file for ``report`` under ``prefix``, as text."""
    documents = node_data(report)
    paths = node_data_paths(prefix, list(documents))
    return {paths[q]: json.dumps(document, indent=1) + "\n" for q, document in documents.items()}
