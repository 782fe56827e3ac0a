"""Static input shapes: what a static target (TFLite) is built for, checked once, and every value's shape under them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeact.calibration.data import CalibrationData, InputSpec
from edgeact.calibration.engine import input_specs
from edgeact.errors import UsageError
from edgeact.graph import view_of
from edgeact.graph.observe import shape_probe_model
from edgeact.runtimes.onnxruntime import ort_session, run_ort


@dataclass(frozen=True)
class StaticShapes:
    """The input shapes a static target (TFLite) is built for, and where they came from."""

    shapes: dict[str, tuple[int, ...]]
    source: str  # "--input-shape", "the first calibration feed" or "the model"
    batch_axes: dict[str, int | None] = field(default_factory=dict)  # dynamic batch axes (the ONNX outputs keep)

    def record(self) -> dict[str, Any]:
        return {"input_shapes": {name: list(shape) for name, shape in self.shapes.items()}, "shapes_from": self.source,
                "batch_stays_dynamic": {name: axis for name, axis in self.batch_axes.items() if axis is not None}}

    def fixed_dims(self, specs: list[InputSpec]) -> dict[str, tuple[int | None, ...]]:
        """The model's dynamic dims that every output fixes: all but each input's batch axis (None: left as is)."""
        model_dims = {spec.name: spec.shape for spec in specs}
        return {name: tuple(None if axis == self.batch_axes.get(name) or isinstance(model_dims[name][axis], int)
                            else size for axis, size in enumerate(shape))
                for name, shape in self.shapes.items()}


def static_input_shapes(source: str, specs: list[InputSpec], input_shapes: dict[str, tuple[int, ...]] | None,
                        data: CalibrationData | None, batch_of_one: bool = True) -> StaticShapes:
    """Static input shapes (for a TFLite export, ``batch_of_one``): ``input_shapes`` (checked against the model),
    else the first calibration feed, else the model's own dims with a dynamic batch set to 1; a dynamic dim with
    none of these is an error raised before any work."""
    axes = {spec.name: spec.batch_axis if spec.batch is None else None for spec in specs}  # dynamic batch axes
    if input_shapes:
        checked = checked_shapes(source, specs, input_shapes)
        batched = {name: shape[axes[name]] for name, shape in checked.items() if axes[name] is not None}
        if batch_of_one and any(size != 1 for size in batched.values()):
            raise UsageError(f"{source}: a .tflite is built for a batch of 1; --input-shape sets the batch axis to "
                             f"{batched} (use 1 there)")
        return StaticShapes(checked, "--input-shape", axes)
    if data is not None:
        feed = data.first_feed()
        return StaticShapes({spec.name: tuple(int(d) for d in feed[spec.name].shape) for spec in specs},
                            "the first calibration feed", axes)
    _refuse_dynamic_dims(source, specs)
    return StaticShapes({spec.name: tuple(d if isinstance(d, int) else 1 for d in spec.shape) for spec in specs},
                        "the model", axes)


def _refuse_dynamic_dims(source: str, specs: list[InputSpec]) -> None:
    dynamic = {spec.name: [axis for axis, dim in enumerate(spec.shape) if not isinstance(dim, int)
                           and axis != spec.batch_axis] for spec in specs}
    dynamic = {name: axes for name, axes in dynamic.items() if axes}
    if dynamic:
        example = next(iter(dynamic))
        raise UsageError(
            f"{source}: TFLite needs static shapes, and input(s) {', '.join(map(repr, dynamic))} have dynamic dims "
            f"(axes {dynamic[example]} of {example!r}); give --input-shape {example}=1x... or calibration data "
            "(--calib) whose first feed fixes them")


def checked_shapes(source: str, specs: list[InputSpec],
                   input_shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """``--input-shape`` values checked against the model's inputs (names, ranks, fixed dims); all inputs given."""
    by_name = {spec.name: spec for spec in specs}
    unknown = sorted(set(input_shapes) - set(by_name))
    missing = sorted(set(by_name) - set(input_shapes))
    if unknown or missing:
        raise UsageError(f"{source}: --input-shape names must be the model's inputs {sorted(by_name)}; "
                         f"unknown {unknown}, missing {missing}")
    for name, shape in input_shapes.items():
        want = by_name[name].shape
        fixed_ok = all(not isinstance(w, int) or w == g for w, g in zip(want, shape, strict=False))
        if len(shape) != len(want) or not fixed_ok:
            raise UsageError(f"{source}: --input-shape {name}={'x'.join(map(str, shape))} does not fit the model's "
                             f"input shape {list(want)}")
    return {name: tuple(shape) for name, shape in input_shapes.items()}


def static_shapes(model: Any, batch: int = 1) -> dict[str, tuple[int, ...]]:
    """Every value's shape in ``model`` (an onnx-ir model, or anything with ``.model``) with dynamic input dims fixed
    to ``batch`` (one onnxruntime run on zeros)."""
    model = getattr(model, "model", model)
    feeds = {}
    for spec in input_specs(view_of(model)):
        shape = tuple(d if isinstance(d, int) else batch for d in spec.shape)
        feeds[spec.name] = np.zeros(shape, dtype=spec.dtype)
    probe, names = shape_probe_model(model)
    outputs = run_ort(ort_session(probe, "shape probe"), feeds, names)
    shapes = {name: tuple(int(d) for d in value.shape) for name, value in outputs.items()}
    shapes.update({name: tuple(value.shape) for name, value in feeds.items()})
    return shapes
