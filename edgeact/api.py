"""The Python API behind ``edgeact calibrate`` and ``edgeact quantize`` (the CLI only parses and calls these)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeact import __version__
from edgeact.calibration.data import CalibrationData, InputSpec
from edgeact.calibration.npz import read_npz
from edgeact.domain import EDGEACT_DOMAIN
from edgeact.calibration.engine import CalibrationStats, collect_stats, input_specs, observed_tensors
from edgeact.errors import CalibrationDataError, EdgeactError, ModelFormatError, QuantizationRangeError, UsageError
from edgeact.exporters.onnx import FORMATS as ONNX_FORMATS
from edgeact.exporters.onnx import export_onnx
from edgeact.exporters.tflite.model import TFLiteLowering, lower_tflite
from edgeact.graph import canonicalise, load_onnx, view_of
from edgeact.graph.passes import FixInputShapes, specialise_shapes
from edgeact.graph.importer import UPGRADED_FROM, load_onnx_bytes, model_bytes
from edgeact.graph.observe import fingerprint, observation_model, shape_probe_model
from edgeact.io import OutputSet, check_creatable_folder, check_outputs, check_writable
from edgeact.metrics import sqnr_db
from edgeact.planning.plan import PlanOptions, QuantPlan, make_plan
from edgeact.planning.record import plan_dict
from edgeact.runtimes.onnxruntime import ort_session, run_ort

EVAL_SAMPLES = 64
FORMATS = (*ONNX_FORMATS, "tflite")
DEFAULT_FORMATS = ONNX_FORMATS
SUFFIXES = {
    "onnx-qdq": ".int8.qdq.onnx", "onnx-table": ".int8.table.onnx", "tflite": ".int8.tflite",
    "fp32-tflite": ".fp32.tflite",
}


@dataclass
class CanonicalModel:
    """A loaded, canonicalised float model and what the passes did to it."""

    source: str
    model: Any  # onnx_ir.Model
    passes: list[str]
    fingerprint: str
    opset: dict[str, int] = field(default_factory=dict)  # {"opset": N} and, when upgraded, {"upgraded_from": M}

    @classmethod
    def load(cls, model: str | Path | bytes, name: str = "<model bytes>",
             shapes: dict[str, tuple[int | None, ...]] | None = None) -> CanonicalModel:
        """Load and canonicalise ``model``; with ``shapes``, its input dims are fixed to them first (None keeps a
        dim), so static-only rewrites such as unrolling a recurrent layer and folding shape arithmetic apply."""
        return cls.from_model(*_load(model, name), shapes)

    @classmethod
    def from_model(cls, loaded: Any, source: str,
                   shapes: dict[str, tuple[int | None, ...]] | None = None) -> CanonicalModel:
        _check_float_model(loaded, source)
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

    def input_shapes(self) -> str:
        """The inputs as NAME=DIMS (symbolic dims by name), for messages."""
        return ", ".join(f"{spec.name}={'x'.join(str(d) for d in spec.shape)}"
                         for spec in input_specs(view_of(self.model)))


QUANTIZED_OPS = frozenset({
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger",
    "MatMulInteger", "QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu", "QLinearConcat",
    "QLinearAveragePool", "QLinearGlobalAveragePool", "QGemm", "QAttention",
})


def _check_float_model(model: Any, source: str) -> None:
    """edgeact quantizes float models: a model that already holds quantized ops (or edgeact's tables) is refused."""
    found = sorted({node.op_type for node in model.graph.all_nodes()
                    if node.op_type in QUANTIZED_OPS or node.domain == EDGEACT_DOMAIN})
    if found:
        raise ModelFormatError(
            f"{source}: already quantized (it holds {', '.join(found)}); edgeact quantizes float32 models: give the "
            "float model this one came from")


def _load(model: str | Path | bytes, name: str) -> tuple[Any, str]:
    """The imported (not yet canonical) model and its name for messages."""
    if isinstance(model, bytes):
        return load_onnx_bytes(model, name), name
    return load_onnx(model), str(model)


@dataclass
class QuantizeResult:
    """What :func:`quantize` wrote: ``paths`` by format (plus ``record``) and the calibration record."""

    paths: dict[str, Path]
    record: dict[str, Any]
    plan: QuantPlan = field(repr=False)
    plots: list[Path] = field(default_factory=list)


def _calibration_data(canonical: CanonicalModel, calib: str | Path, skip_bad_samples: bool,
                      fixed_by: str | None = None, max_array_bytes: int | None = None) -> CalibrationData:
    try:
        return CalibrationData(calib, input_specs(view_of(canonical.model)), skip_bad_samples=skip_bad_samples,
                               max_array_bytes=max_array_bytes)
    except CalibrationDataError as exc:
        if fixed_by is None:
            raise
        raise CalibrationDataError(f"{exc} (the model's input shapes are fixed by {fixed_by} for a static target "
                                   "such as TFLite; every feed must have them)") from exc


def calibrate(
    model: str | Path | bytes | Any,
    calib: str | Path,
    *,
    batch_size: int = 8,
    skip_bad_samples: bool = False,
    stats_out: str | Path | None = None,
    progress: bool = False,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    max_array_bytes: int | None = None,
) -> CalibrationStats:
    """Stream ``calib`` through the float model and return (and optionally save) per-tensor statistics.

    ``model`` is what :func:`quantize` takes (ONNX or PyTorch; PyTorch is exported with the first calibration
    sample as example inputs). ``input_shapes`` fixes the model's dynamic dims first, as :func:`quantize` does for
    a TFLite export (statistics merge only into a quantize run on the same static model). ``max_array_bytes``: the
    largest array a data file may declare (default $EDGEACT_MAX_ARRAY_BYTES, else 4 GiB)."""
    if stats_out is not None:
        check_outputs({"--stats-out": stats_out}, _user_files(model, calib))
        check_writable({"--stats-out": stats_out})  # before any work
    if isinstance(model, CanonicalModel):
        canonical = model
    else:
        source = resolve_model(model, calib, input_shapes=input_shapes, max_array_bytes=max_array_bytes)
        loaded, name = _load(source.loadable, source.name)
        shapes = _checked_shapes(name, input_specs(view_of(loaded)), input_shapes) if input_shapes else None
        canonical = CanonicalModel.from_model(loaded, name, shapes)
    data = _calibration_data(canonical, calib, skip_bad_samples, max_array_bytes=max_array_bytes)
    stats = _stream(canonical, data, batch_size, progress)
    if stats_out is not None:
        stats.save(stats_out)
    return stats


def _stream(canonical: CanonicalModel, data: CalibrationData, batch_size: int, progress: bool) -> CalibrationStats:
    tensors = observed_tensors(view_of(canonical.model))
    session = ort_session(observation_model(canonical.model, tensors), f"float model {canonical.source}")
    return collect_stats(session, data, tensors, canonical.fingerprint, batch_size=batch_size, progress=progress)


def static_shapes(model: CanonicalModel | Any, batch: int = 1) -> dict[str, tuple[int, ...]]:
    """Every value's shape with dynamic input dims fixed to ``batch`` (one onnxruntime run on zeros)."""
    model = model.model if isinstance(model, CanonicalModel) else model
    feeds = {}
    for spec in input_specs(view_of(model)):
        shape = tuple(d if isinstance(d, int) else batch for d in spec.shape)
        feeds[spec.name] = np.zeros(shape, dtype=spec.dtype)
    probe, names = shape_probe_model(model)
    outputs = run_ort(ort_session(probe, "shape probe"), feeds, names)
    shapes = {name: tuple(int(d) for d in value.shape) for name, value in outputs.items()}
    shapes.update({name: tuple(value.shape) for name, value in feeds.items()})
    return shapes


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
        checked = _checked_shapes(source, specs, input_shapes)
        batched = {name: shape[axes[name]] for name, shape in checked.items() if axes[name] is not None}
        if batch_of_one and any(size != 1 for size in batched.values()):
            raise UsageError(f"{source}: a .tflite is built for a batch of 1; --input-shape sets the batch axis to "
                             f"{batched} (use 1 there)")
        return StaticShapes(checked, "--input-shape", axes)
    if data is not None:
        feed = data.first_feed()
        return StaticShapes({spec.name: tuple(int(d) for d in feed[spec.name].shape) for spec in specs},
                            "the first calibration feed", axes)
    dynamic = {spec.name: [axis for axis, dim in enumerate(spec.shape) if not isinstance(dim, int)
                           and axis != spec.batch_axis] for spec in specs}
    dynamic = {name: axes for name, axes in dynamic.items() if axes}
    if dynamic:
        example = next(iter(dynamic))
        raise UsageError(
            f"{source}: TFLite needs static shapes, and input(s) {', '.join(map(repr, dynamic))} have dynamic dims "
            f"(axes {dynamic[example]} of {example!r}); give --input-shape {example}=1x... or calibration data "
            "(--calib) whose first feed fixes them")
    return StaticShapes({spec.name: tuple(d if isinstance(d, int) else 1 for d in spec.shape) for spec in specs},
                        "the model", axes)


def _checked_shapes(source: str, specs: list[InputSpec],
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


def merged_stats(paths: Iterable[str | Path]) -> CalibrationStats:
    """Statistics files (one per calibration shard) merged into one."""
    loaded = [(str(p), CalibrationStats.load(p)) for p in paths]
    if not loaded:
        raise UsageError("no statistics files given")
    total = loaded[0][1]
    for name, stats in loaded[1:]:
        total = total.merge(stats, name)
    return total


@dataclass(frozen=True)
class ModelSource:
    """Where a model came from: a name for messages, a stem for output files, what to load, how it was made."""

    name: str
    stem: str
    loadable: str | Path | bytes
    frontend: dict[str, str]
    path: Path | None = None  # the user's file, never to be overwritten


def resolve_model(
    model: Any, calib: str | Path | None = None, example_inputs: dict[str, np.ndarray] | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None, max_array_bytes: int | None = None,
) -> ModelSource:
    """An ONNX path, ONNX bytes or ModelProto, or a PyTorch model (exported to ONNX here)."""
    from edgeact.frontends import torch as torch_frontend

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


def _user_files(model: Any, *others: str | Path | None) -> list[Path]:
    """The user's files among a run's inputs (a model path, the file of ``file.py:factory``, data, stats)."""
    files = []
    for item in (model, *others):
        if not isinstance(item, (str, Path)):
            continue
        path = Path(item)
        if not path.exists() and ":" in str(item):
            path = Path(str(item).rsplit(":", 1)[0])
        if path.is_file():
            files.append(path)
    return files


def _output_paths(
    source: ModelSource, output_dir: str | Path | None, formats: Sequence[str], float_tflite: bool,
    inputs: Sequence[Path] = (),
) -> dict[str, Path]:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise UsageError(f"unknown format(s) {unknown}; choose from {', '.join(FORMATS)}")
    stem = source.stem
    folder = Path(output_dir) if output_dir is not None else Path(".")
    paths = {form: folder / f"{stem}{SUFFIXES[form]}" for form in [*formats] + (["fp32-tflite"] * float_tflite)}
    paths["record"] = folder / f"{stem}.calibration.json"
    check_outputs({f"output ({form})": path for form, path in paths.items()}, [source.path, *inputs])
    check_creatable_folder(folder)
    return paths


Runner = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def _ort_runner(payload: bytes, what: str) -> Runner:
    session = ort_session(payload, what)
    return lambda feeds: run_ort(session, feeds)


def _tflite_runner(payload: bytes, target: str, inputs: Sequence[str], outputs: Sequence[str]) -> Runner:
    """Runs one sample (a feed with a batch of 1) through a .tflite model on the target device's backend (its
    runtime, or the emulator under its rules)."""
    from edgeact.exporters.tflite.targets import target as target_profile
    from edgeact.graph.tflite_import import read_tflite
    from edgeact.profiler.backends import run_device

    profile = target_profile(target)
    graph = read_tflite(payload) if profile.backend == "emulator" else None

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = run_device(profile, payload, graph, [[feeds[name] for name in inputs]], list(outputs),
                             keep_tensors=False).outputs
        return {name: results[0][i] for i, name in enumerate(outputs)}

    return run


def _evaluate(canonical: CanonicalModel, runners: dict[str, Runner], data: CalibrationData | None) -> dict[str, Any]:
    """SQNR (dB) of each int8 form against the float model, per graph output, on calibration samples."""
    if data is None:
        return {}
    reference = _ort_runner(model_bytes(canonical.model), f"float model {canonical.source}")
    expected: dict[str, list] = {}
    results: dict[str, dict[str, list]] = {form: {} for form in runners}
    seen = 0
    for feeds in data.samples():  # one sample at a time: every form sees the same feeds, outputs line up
        for name, value in reference(feeds).items():
            expected.setdefault(name, []).append(value)
        for form, runner in runners.items():
            for name, value in runner(feeds).items():
                results[form].setdefault(name, []).append(value)
        seen += 1
        if seen >= EVAL_SAMPLES:
            break
    report: dict[str, Any] = {"samples": seen}
    for form, outputs in results.items():
        report[form] = {
            name: sqnr_db(np.concatenate(expected[name]), np.concatenate(values)) for name, values in outputs.items()
        }
    return report


@dataclass
class _TFLiteOutputs:
    int8: TFLiteLowering | None
    fp32: TFLiteLowering | None
    warnings: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        if self.int8 is None and self.fp32 is None:
            return {}
        lowered = self.int8 or self.fp32
        entry: dict[str, Any] = {"target": lowered.target}
        if self.int8 is not None:
            entry.update(table_ops=list(self.int8.table_ops), builtin_ops=list(self.int8.builtin_ops))
        return {"tflite": entry}


def _prepare(source: ModelSource, calib: str | Path | None, skip_bad_samples: bool,
             input_shapes: dict[str, tuple[int, ...]] | None, static: bool, max_array_bytes: int | None = None,
             ) -> tuple[CanonicalModel, CalibrationData | None, StaticShapes | None]:
    """Load the model and check the data; a static target (or --input-shape) fixes the model's input shapes
    before canonicalisation, and the data is then checked against those shapes."""
    loaded, name = _load(source.loadable, source.name)
    specs = input_specs(view_of(loaded))
    data = (CalibrationData(calib, specs, skip_bad_samples=skip_bad_samples, max_array_bytes=max_array_bytes)
            if calib is not None else None)
    shapes = static_input_shapes(name, specs, input_shapes, data, static) if static or input_shapes else None
    fixed = shapes.fixed_dims(specs) if shapes else None
    canonical = CanonicalModel.from_model(loaded, name, fixed)
    if data is not None and fixed and any(size is not None for dims in fixed.values() for size in dims):
        data = _calibration_data(canonical, calib, skip_bad_samples, shapes.source,  # every feed must fit them
                                 max_array_bytes)
    return canonical, data, shapes


def _lower_tflite(canonical: CanonicalModel, plan: QuantPlan, formats: Sequence[str], target: str,
                  float_tflite: bool, shapes: StaticShapes | None) -> _TFLiteOutputs:
    """The int8 (and float32) TFLite graphs of the model fixed to ``shapes`` (batch included); a float32 model
    that cannot be built is a warning."""
    if "tflite" not in formats and not float_tflite:
        return _TFLiteOutputs(None, None)
    static = specialise_shapes(canonical.model, shapes.shapes) if shapes is not None else canonical.model
    view, probed = view_of(static), static_shapes(static)
    outputs = _TFLiteOutputs(lower_tflite(view, plan, probed, target) if "tflite" in formats else None, None)
    if float_tflite:
        try:
            outputs.fp32 = lower_tflite(view, None, probed, target)
        except EdgeactError as exc:
            outputs.warnings.append(f"float32 .tflite not written: {exc}")
    return outputs


def quantize(
    model: str | Path | bytes | Any,
    calib: str | Path | None = None,
    *,
    stats: Sequence[str | Path] = (),
    method: str = "auto",
    formats: Sequence[str] = DEFAULT_FORMATS,
    target: str = "litert",
    float_tflite: bool = False,
    per_tensor: bool = False,
    exclude: Iterable[str] = (),
    output_dir: str | Path | None = None,
    batch_size: int = 8,
    skip_bad_samples: bool = False,
    plots: bool = False,
    progress: bool = False,
    example_inputs: dict[str, np.ndarray] | None = None,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    max_array_bytes: int | None = None,
) -> QuantizeResult:
    """Quantize a model to int8 and write the requested forms and the calibration record.

    ``model``: an ONNX path, serialised bytes or ``onnx.ModelProto``; or PyTorch — an nn.Module, a TorchScript
    ``.pt``, an ExportedProgram ``.pt2``, or ``path/file.py:factory`` / ``package.module:factory`` — exported with
    torch.onnx using ``example_inputs`` (name -> array, forward's argument order), ``input_shapes``, or the first
    calibration sample.

    Statistics come from ``calib`` (an .npz or folder of .npz), from saved ``stats`` files (merged), or both.
    ``formats``: onnx-qdq, onnx-table, tflite (int8 for the ``target`` device profile: litert, tflm, ...);
    ``float_tflite`` adds the
    float32 .tflite baseline. With ``plots``, each activation's nonlinear quantization map is drawn to
    OUTDIR/<name>.plots/<node>.png. ``max_array_bytes``: the largest array a data file may declare (default
    $EDGEACT_MAX_ARRAY_BYTES, else 4 GiB).
    """
    options = PlanOptions(method=method, per_tensor=per_tensor, exclude=frozenset(exclude))
    if calib is None and not stats:
        raise UsageError("give calibration data (--calib) or saved statistics (--stats)")
    source = resolve_model(model, calib, example_inputs, input_shapes, max_array_bytes)
    paths = _output_paths(source, output_dir, list(formats), float_tflite, _user_files(model, calib, *stats))
    canonical, data, shapes = _prepare(source, calib, skip_bad_samples, input_shapes,
                                       "tflite" in formats or float_tflite, max_array_bytes)
    total = _statistics(canonical, data, stats, source.name, batch_size, progress)
    plan = _plan(canonical, total, options)
    payloads = {form: export_onnx(canonical.model, plan, form) for form in formats if form in ONNX_FORMATS}
    tflite = _lower_tflite(canonical, plan, formats, target, float_tflite, shapes)
    runners = _runners(canonical, payloads, tflite, target)
    if tflite.fp32 is None:
        paths.pop("fp32-tflite", None)
    record = {
        "edgeact_version": __version__,
        "model": Path(source.name).name if source.path is not None else source.name,
        "frontend": source.frontend,
        "model_sha256": canonical.fingerprint,
        "options": {
            "method": method, "formats": list(formats), "per_tensor": per_tensor, "exclude": sorted(options.exclude),
            "batch_size": batch_size, "skip_bad_samples": skip_bad_samples, "target": target,
            "float_tflite": float_tflite,
        },
        "opset": canonical.opset,
        "passes": canonical.passes,
        "calibration": {"samples": total.samples, "bad_samples": total.bad_samples},
        **plan_dict(plan),
        **tflite.record(),
        **({"static_shapes": shapes.record()} if shapes is not None else {}),
        "warnings": tflite.warnings,
        "evaluation": _evaluate(canonical, runners, data),
        "files": {form: path.name for form, path in paths.items() if form != "record"},
    }
    draw = (lambda outputs: _plot_activation_maps(plan, total, paths["record"], outputs)) if plots else None
    drawn = _write_outputs(paths, payloads, tflite, record, draw)
    return QuantizeResult(paths, record, plan, drawn)


def _runners(canonical: CanonicalModel, payloads: dict[str, bytes], tflite: _TFLiteOutputs,
             target: str) -> dict[str, Runner]:
    """How to run each int8 form for the evaluation; every .tflite is first loaded and invoked on the target."""
    runners = {form: _ort_runner(payload, form) for form, payload in payloads.items()}
    view = view_of(canonical.model)
    if tflite.int8 is not None:
        payload = tflite.int8.to_bytes({})
        _check_runs(payload, target, tflite.int8, "int8 .tflite")
        runners["tflite"] = _tflite_runner(payload, target, view.inputs, view.outputs)
    if tflite.fp32 is not None:
        try:
            _check_runs(tflite.fp32.to_bytes({}), target, tflite.fp32, "float32 .tflite")
        except EdgeactError as exc:
            tflite.warnings.append(f"float32 .tflite not written: {exc}")
            tflite.fp32 = None
    return runners


def _write_outputs(paths: dict[str, Path], payloads: dict[str, bytes], tflite: _TFLiteOutputs,
                   record: dict[str, Any], plots: Callable[[OutputSet], list[Path]] | None) -> list[Path]:
    """Every file of the run as one set (all staged, then renamed; the record last so that it marks a complete set).

    .tflite metadata carries the record's hash. Returns the plots drawn.
    """
    text = json.dumps(record, indent=1, sort_keys=True, default=float) + "\n"
    metadata = {"edgeact_version": __version__.encode(),
                "calibration_record_sha256": hashlib.sha256(text.encode()).hexdigest().encode()}
    if tflite.int8 is not None:
        payloads["tflite"] = tflite.int8.to_bytes(metadata)
    if tflite.fp32 is not None:
        payloads["fp32-tflite"] = tflite.fp32.to_bytes(metadata)
    created = _missing_folders(paths["record"].parent, _plots_folder(paths["record"]) if plots else None)
    try:
        for folder in reversed(created):
            _make_folder(folder)
        with OutputSet() as outputs:
            for form, payload in payloads.items():
                outputs.add_bytes(paths[form], payload)
            drawn = plots(outputs) if plots is not None else []
            outputs.add_text(paths["record"], text)
            outputs.commit()
    except BaseException:
        for folder in created:  # deepest first; only the ones this run made, and only when still empty
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    return drawn


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir()
    except OSError as exc:
        raise EdgeactError(f"output folder {folder} cannot be created ({exc.strerror or exc})") from exc


def _missing_folders(*folders: Path | None) -> list[Path]:
    """The folders (and parents) that do not exist yet, deepest first."""
    missing: list[Path] = []
    for folder in folders:
        for path in (folder, *folder.parents) if folder is not None else ():
            if not path.exists() and path not in missing:
                missing.append(path)
    return sorted(missing, key=lambda p: -len(p.parts))


def _check_runs(payload: bytes, target: str, lowered: TFLiteLowering, what: str) -> None:
    """Load and invoke once on zeros in the target's runtime: never write a file that fails when loaded."""
    feeds = {}
    for index in lowered.graph.inputs:
        tensor = lowered.graph.tensors[index]
        feeds[tensor.name] = np.zeros(tensor.shape, dtype=tensor.dtype)
    names = [lowered.graph.tensors[i].name for i in lowered.graph.outputs]
    _tflite_runner(payload, target, list(feeds), names)(feeds)


def _statistics(canonical: CanonicalModel, data: CalibrationData | None, stats: Sequence[str | Path], source: str,
                batch_size: int, progress: bool) -> CalibrationStats:
    """Saved statistics (merged) and/or statistics streamed from ``data``."""
    collected = [merged_stats(stats)] if stats else []
    if collected and collected[0].model_fingerprint != canonical.fingerprint:
        raise CalibrationDataError(
            f"{', '.join(map(str, stats))}: statistics collected on a different model than {source} as this run "
            f"prepares it (its input shapes: {canonical.input_shapes()}); statistics for a TFLite export or an "
            "--input-shape run come from 'edgeact calibrate ... --input-shape' with the same shapes")
    if data is not None:
        collected.append(_stream(canonical, data, batch_size, progress))
    return collected[0] if len(collected) == 1 else collected[0].merge(collected[1], "calibration data")


def _plan(canonical: CanonicalModel, stats: CalibrationStats, options: PlanOptions) -> QuantPlan:
    """The plan; a range that cannot become a grid is reported with the model's name."""
    try:
        return make_plan(view_of(canonical.model), stats.tensors, options)
    except QuantizationRangeError as exc:
        raise QuantizationRangeError(f"{canonical.source}: {exc}") from exc


def _plot_activation_maps(plan: QuantPlan, stats: CalibrationStats, record_path: Path,
                          outputs: OutputSet) -> list[Path]:
    """Each activation's nonlinear quantization map, staged in ``outputs`` (OUTDIR/<name>.plots/<node>.png)."""
    from edgeact.reports.plots import plot_activation_map

    folder = _plots_folder(record_path)
    drawn = []
    for act in plan.activations:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in act.node)
        drawn.append(plot_activation_map(act.node, act.function, act.table, act.error, stats.tensors[act.input],
                                         folder / f"{safe}.png", outputs.add))
    return drawn


def _plots_folder(record_path: Path) -> Path:
    return record_path.with_name(record_path.name.removesuffix(".calibration.json") + ".plots")
