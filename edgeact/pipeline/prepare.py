"""Stage 1, ``prepare``: a model (ONNX path/bytes/ModelProto, or PyTorch) in, a :class:`Prepared` float model out.

Import (checks, opset upgrade), the refusal of already-quantized models, static input shapes for a static target
(fixed before the passes, so static-only rewrites apply), canonicalisation passes, and the model's fingerprint:
computed once, and handed to every later stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from edgeact.calibration.data import CalibrationData
from edgeact.calibration.engine import input_specs
from edgeact.calibration.npz import read_npz
from edgeact.domain import EDGEACT_DOMAIN
from edgeact.errors import CalibrationDataError, ModelFormatError, UsageError
from edgeact.graph import canonicalise, load_onnx, view_of
from edgeact.graph.importer import UPGRADED_FROM, load_onnx_bytes
from edgeact.graph.observe import fingerprint
from edgeact.graph.passes import FixInputShapes, specialise_shapes
from edgeact.graph.view import GraphView
from edgeact.pipeline.shapes import StaticShapes, checked_shapes, static_input_shapes, static_shapes

QUANTIZED_OPS = frozenset({
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger",
    "MatMulInteger", "QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu", "QLinearConcat",
    "QLinearAveragePool", "QLinearGlobalAveragePool", "QGemm", "QAttention",
})


@dataclass(frozen=True)
class ModelSource:
    """Where a model came from: a name for messages, a stem for output files, what to load, how it was made."""

    name: str
    stem: str
    loadable: str | Path | bytes
    frontend: dict[str, str]
    path: Path | None = None  # the user's file, never to be overwritten
    tflite: bytes | None = None  # a float .tflite whose ONNX form ``loadable`` is: checked by verify_conversion


@dataclass
class Prepared:
    """A loaded, canonicalised float model, what the passes did to it, and (for a static target) its input shapes.

    ``data``: the calibration data checked against the model as prepared (its fixed input shapes), when given."""

    source: str
    model: Any  # onnx_ir.Model, canonical
    passes: list[str]
    fingerprint: str
    opset: dict[str, int] = field(default_factory=dict)  # {"opset": N} and, when upgraded, {"upgraded_from": M}
    origin: ModelSource | None = None
    shapes: StaticShapes | None = None
    data: CalibrationData | None = None

    @classmethod
    def load(cls, model: str | Path | bytes, name: str = "<model bytes>",
             shapes: dict[str, tuple[int | None, ...]] | None = None) -> Prepared:
        """Load and canonicalise ``model``; with ``shapes``, its input dims are fixed to them first (None keeps a
        dim), so static-only rewrites such as unrolling a recurrent layer and folding shape arithmetic apply."""
        return cls.from_model(*load_model(model, name), shapes)

    @classmethod
    def from_model(cls, loaded: Any, source: str,
                   shapes: dict[str, tuple[int | None, ...]] | None = None) -> Prepared:
        check_float_model(loaded, source)
        opset = {"opset": loaded.opset_imports.get("", 0)}
        if UPGRADED_FROM in loaded.meta:
            opset["upgraded_from"] = int(loaded.meta[UPGRADED_FROM])
        fixed = []
        if shapes and any(size is not None for shape in shapes.values() for size in shape):
            try:
                loaded = FixInputShapes(shapes)(loaded).model
            except ModelFormatError as exc:
                raise ModelFormatError(f"{source}: {exc}") from exc
            fixed = [FixInputShapes.name]
        passes = fixed + canonicalise(loaded)
        return cls(source, loaded, passes, fingerprint(loaded), opset)

    @cached_property
    def view(self) -> GraphView:
        """The plain graph view the planner and exporters read (built once)."""
        return view_of(self.model)

    @cached_property
    def static(self) -> tuple[GraphView, dict[str, tuple[int, ...]]]:
        """The model specialised to its static input shapes (batch included, as a static target runs it): its view
        and every value's shape (built once, for every TFLite form)."""
        model = specialise_shapes(self.model, self.shapes.shapes) if self.shapes is not None else self.model
        return view_of(model), static_shapes(model)

    def input_shapes(self) -> str:
        """The inputs as NAME=DIMS (symbolic dims by name), for messages."""
        return ", ".join(f"{spec.name}={'x'.join(str(d) for d in spec.shape)}" for spec in input_specs(self.view))


def check_float_model(model: Any, source: str) -> None:
    """edgeact quantizes float models: a model that already holds quantized ops (or edgeact's tables) is refused."""
    found = sorted({node.op_type for node in model.graph.all_nodes()
                    if node.op_type in QUANTIZED_OPS or node.domain == EDGEACT_DOMAIN})
    if found:
        raise ModelFormatError(
            f"{source}: already quantized (it holds {', '.join(found)}); edgeact quantizes float32 models: give the "
            "float model this one came from")


def load_model(model: str | Path | bytes, name: str) -> tuple[Any, str]:
    """The imported (not yet canonical) model and its name for messages (a float .tflite through its ONNX form)."""
    from edgeact.frontends import tflite as tflite_frontend

    if tflite_frontend.is_tflite_source(model):
        payload = model if isinstance(model, bytes) else tflite_frontend.read_payload(Path(model))
        source = name if isinstance(model, bytes) else str(model)
        return load_onnx_bytes(tflite_frontend.convert(payload, source).onnx, source), source
    if isinstance(model, bytes):
        return load_onnx_bytes(model, name), name
    return load_onnx(model), str(model)


def resolve_model(
    model: Any, calib: str | Path | None = None, example_inputs: dict[str, np.ndarray] | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None, max_array_bytes: int | None = None,
) -> ModelSource:
    """An ONNX path, ONNX bytes or ModelProto, a float .tflite (converted to ONNX here and checked against LiteRT),
    or a PyTorch model (exported to ONNX here)."""
    from edgeact.frontends import tflite as tflite_frontend
    from edgeact.frontends import torch as torch_frontend

    if isinstance(model, ModelSource):
        return model
    if tflite_frontend.is_tflite_source(model):
        return _tflite_source(model)
    if hasattr(model, "SerializeToString") and not torch_frontend.is_torch_source(model):  # an onnx.ModelProto
        model = model.SerializeToString()
    if isinstance(model, bytes):
        return ModelSource("<model bytes>", "model", model, {"kind": "onnx"})
    if torch_frontend.is_torch_source(model):
        example = example_inputs or _example_inputs(calib, input_shapes, max_array_bytes)
        exported = torch_frontend.export(model, example)
        frontend = {"kind": f"pytorch {exported.kind}", "exporter": f"torch.onnx ({exported.exporter})",
                    "source": str(model) if isinstance(model, (str, Path)) else type(model).__name__}
        return ModelSource(frontend["source"], exported.name, exported.onnx, frontend,
                           Path(model) if isinstance(model, (str, Path)) and Path(model).is_file() else None)
    path = Path(model)
    return ModelSource(str(model), path.name.removesuffix(".onnx"), path, {"kind": "onnx"}, path)


def _tflite_source(model: str | Path | bytes) -> ModelSource:
    """A float .tflite as ONNX (checked against LiteRT by :func:`verify_conversion` once the data is)."""
    from edgeact.frontends import tflite as tflite_frontend

    path = None if isinstance(model, bytes) else Path(model)
    payload = model if path is None else tflite_frontend.read_payload(path)
    source = "<tflite bytes>" if path is None else str(path)
    converted = tflite_frontend.convert(payload, source)
    builtins = ", ".join(f"{op} x{count}" for op, count in converted.builtins.items())
    frontend = {"kind": "tflite", "converter": f"edgeact tflite frontend (ONNX opset {tflite_frontend.ONNX_OPSET})",
                "source": source, "builtins": builtins, "float16_weights": str(converted.float16_weights)}
    return ModelSource(source, converted.name, converted.onnx, frontend, path, payload)


def verify_conversion(source: ModelSource | None, data: CalibrationData | None) -> None:
    """A converted float .tflite and its ONNX form run on the first sample of ``data`` (already checked: names,
    shapes, dtypes, NaN; seeded values without data) on LiteRT and onnxruntime; they must agree. The record's
    ``frontend`` says how closely."""
    if source is None or source.tflite is None or "checked_against" in source.frontend:
        return
    from edgeact.pipeline.conversion_check import check_tflite_conversion

    feeds = next(data.batches(1), None) if data is not None else None
    difference = check_tflite_conversion(source.tflite, bytes(source.loadable), feeds, source.name)
    where = "the first calibration sample" if feeds is not None else "seeded inputs"
    source.frontend["checked_against"] = (f"LiteRT reference kernels on {where}: max |output difference| "
                                          f"{difference:.3g}")


def _example_inputs(
    calib: str | Path | None, input_shapes: dict[str, tuple[int, ...]] | None, max_array_bytes: int | None = None
) -> dict[str, np.ndarray]:
    """Example inputs for a PyTorch export: seeded values of ``input_shapes``, else the first calibration sample."""
    if input_shapes:
        rng = np.random.default_rng(0)
        return {name: rng.normal(size=shape).astype(np.float32) for name, shape in input_shapes.items()}
    if calib is None:
        raise UsageError("a PyTorch model needs --input-shape NAME=1x3x32x32 or --calib data to export it")
    path = Path(calib)
    files = sorted(path.glob("*.npz")) if path.is_dir() else [path]
    if not files or not files[0].is_file():
        raise CalibrationDataError(f"{path}: no calibration .npz to take example inputs from")
    arrays = read_npz(files[0], max_array_bytes=max_array_bytes)
    return {name: np.ascontiguousarray(array[:1]) for name, array in arrays.items()}


def prepare(
    model: Any, calib: str | Path | None = None, *, input_shapes: dict[str, tuple[int, ...]] | None = None,
    static: bool = False, example_inputs: dict[str, np.ndarray] | None = None, skip_bad_samples: bool = False,
    max_array_bytes: int | None = None,
) -> Prepared:
    """Stage 1: load, check and canonicalise ``model`` (what :func:`edgeact.quantize` takes, or a ModelSource).

    ``static`` (a TFLite target) or ``input_shapes`` fix the model's dynamic input dims (all but a dynamic batch)
    first: from ``input_shapes``, else the first feed of ``calib``, else the model's own dims. ``calib`` is checked
    against the prepared model (names, dtypes, shapes) and attached as ``data``."""
    source = resolve_model(model, calib, example_inputs, input_shapes, max_array_bytes)
    loaded, name = load_model(source.loadable, source.name)
    specs = input_specs(view_of(loaded))
    data = (CalibrationData(calib, specs, skip_bad_samples=skip_bad_samples, max_array_bytes=max_array_bytes)
            if calib is not None else None)
    shapes = static_input_shapes(name, specs, input_shapes, data, static) if static or input_shapes else None
    fixed = shapes.fixed_dims(specs) if shapes else None
    prepared = Prepared.from_model(loaded, name, fixed)
    prepared.origin, prepared.shapes = source, shapes
    if data is not None and fixed and any(size is not None for dims in fixed.values() for size in dims):
        data = _data_for(prepared, calib, skip_bad_samples, max_array_bytes, shapes.source)  # every feed must fit
    prepared.data = data
    verify_conversion(source, data)
    return prepared


def _data_for(prepared: Prepared, calib: str | Path, skip_bad_samples: bool, max_array_bytes: int | None,
              fixed_by: str) -> CalibrationData:
    try:
        return CalibrationData(calib, input_specs(prepared.view), skip_bad_samples=skip_bad_samples,
                               max_array_bytes=max_array_bytes)
    except CalibrationDataError as exc:
        raise CalibrationDataError(f"{exc} (the model's input shapes are fixed by {fixed_by} for a static target "
                                   "such as TFLite; every feed must have them)") from exc


def prepare_for_calibration(model: Any, calib: str | Path, input_shapes: dict[str, tuple[int, ...]] | None,
                            max_array_bytes: int | None) -> Prepared:
    """The model as ``edgeact calibrate`` prepares it: ``input_shapes`` (checked) fix its dims, data not attached."""
    source = resolve_model(model, calib, input_shapes=input_shapes, max_array_bytes=max_array_bytes)
    loaded, name = load_model(source.loadable, source.name)
    shapes = checked_shapes(name, input_specs(view_of(loaded)), input_shapes) if input_shapes else None
    prepared = Prepared.from_model(loaded, name, shapes)
    prepared.origin = source
    return prepared
