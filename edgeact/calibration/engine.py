"""Run the float model over calibration data and keep only streaming stats (memory independent of samples)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeact import __version__
from edgeact.calibration.data import CalibrationData, InputSpec, with_batch_axes
from edgeact.calibration.observers import MAX_COUNT, TensorStats, json_field, json_int
from edgeact.errors import CalibrationDataError, ModelFormatError
from edgeact.graph.view import GraphView
from edgeact.io import atomic_write
from edgeact.runtimes.onnxruntime import run_ort

STATS_FORMAT = "edgeact-calibration-stats/1"


@dataclass
class CalibrationStats:
    """Per-tensor stats of one model over some samples; mergeable across shards."""

    model_fingerprint: str
    tensors: dict[str, TensorStats]
    samples: int = 0
    bad_samples: list[str] = field(default_factory=list)

    def merge(self, other: CalibrationStats, other_name: str = "stats") -> CalibrationStats:
        if other.model_fingerprint != self.model_fingerprint:
            raise CalibrationDataError(f"{other_name}: statistics were collected on a different model")
        names = sorted(set(self.tensors) | set(other.tensors))
        merged = {n: self.tensors.get(n, TensorStats()).merge(other.tensors.get(n, TensorStats())) for n in names}
        return CalibrationStats(
            self.model_fingerprint, merged, self.samples + other.samples, self.bad_samples + other.bad_samples
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": STATS_FORMAT,
            "edgeact_version": __version__,
            "model_sha256": self.model_fingerprint,
            "samples": self.samples,
            "bad_samples": self.bad_samples,
            "tensors": {name: self.tensors[name].as_dict() for name in sorted(self.tensors)},
        }

    def save(self, path: str | Path) -> Path:
        text = json.dumps(self.as_dict(), indent=1, sort_keys=True)
        return atomic_write(path, lambda tmp: tmp.write_text(text + "\n"))

    @classmethod
    def load(cls, path: str | Path) -> CalibrationStats:
        """A statistics file, every field checked: errors name the file, the tensor and the field."""
        data = _read_json(Path(path))
        if not isinstance(data, dict):
            found = _KINDS.get(type(data), type(data).__name__)
            raise CalibrationDataError(f"{path}: not an edgeact statistics file (a JSON {found}, not an object)")
        if data.get("format") != STATS_FORMAT:
            raise CalibrationDataError(f"{path}: not an edgeact statistics file (field 'format' is "
                                       f"{data.get('format')!r}, expected {STATS_FORMAT!r})")
        fingerprint = _typed(data, "model_sha256", str, path)
        bad_samples = _typed(data, "bad_samples", list, path)
        tensors = _typed(data, "tensors", dict, path)
        if not all(isinstance(entry, str) for entry in bad_samples):
            raise CalibrationDataError(f"{path}: field 'bad_samples' must list sample names (strings)")
        samples = json_int(data, "samples", str(path), 0, MAX_COUNT)
        loaded = {name: TensorStats.from_dict(entry, f"{path}: tensor {name!r}") for name, entry in tensors.items()}
        return cls(fingerprint, loaded, samples, list(bad_samples))


_KINDS = {str: "string", list: "list", dict: "JSON object", type(None): "null", bool: "boolean", int: "number",
          float: "number"}


def _typed(data: dict[str, Any], key: str, kind: type, path: str | Path) -> Any:
    value = json_field(data, key, str(path))
    if not isinstance(value, kind):
        found = _KINDS.get(type(value), type(value).__name__)
        raise CalibrationDataError(f"{path}: field {key!r} must be a {_KINDS[kind]}, got {found}")
    return value


def _read_json(path: Path) -> Any:
    """The JSON value in ``path``; unreadable or malformed files as CalibrationDataError."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise CalibrationDataError(f"{path}: cannot read statistics file ({exc.strerror or exc})") from exc
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # bad JSON or encoding, an int too long, nesting too deep
        raise CalibrationDataError(f"{path}: not an edgeact statistics file (not valid JSON: {exc})") from exc


def input_specs(view: GraphView) -> list[InputSpec]:
    """What the calibration data must hold: the model's inputs with dtype, shape and batch axis."""
    specs = []
    for name in view.inputs:
        value = view.values[name]
        if value.dtype is None or value.shape is None:
            raise ModelFormatError(f"model input {name!r} has no dtype or shape")
        specs.append(InputSpec(name, value.dtype, value.shape))
    return with_batch_axes(specs, {name: view.values[name].shape for name in view.outputs if name in view.values})


def observed_tensors(view: GraphView) -> list[str]:
    """Every float tensor that is not a constant: graph inputs and node outputs of the main graph."""
    names = [n for n in view.inputs if view.values[n].is_float]
    for node in view.nodes:
        names += [o for o in node.outputs if o and view.values[o].is_float and view.values[o].constant is None]
    return list(dict.fromkeys(names))


def collect_stats(
    session, data: CalibrationData, tensors: list[str], fingerprint: str, *, batch_size: int = 8, progress: bool = True
) -> CalibrationStats:
    """Stream ``data`` through ``session`` (a float model that outputs ``tensors``), observing each tensor."""
    from tqdm import tqdm

    stats = {name: TensorStats() for name in tensors}
    batches = data.batches(batch_size)
    total = math.ceil(data.summary.samples / max(1, batch_size))
    bar = tqdm(batches, total=total, desc="calibrating", unit="batch", disable=None if progress else True, leave=False)
    for feeds in bar:  # the bar shows on a terminal only
        for name, values in run_ort(session, feeds, tensors).items():
            stats[name].observe(values)
    return CalibrationStats(fingerprint, stats, data.summary.samples, list(data.summary.bad_samples))
