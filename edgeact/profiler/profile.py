"""The profile-device job: the int8 model on the device's backend and the float baseline on the same data, compared
per output, per layer and per activation, with the device's hazards, latency and size."""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeact import __version__
from edgeact.activations import REGISTRY
from edgeact.calibration.data import CalibrationData, InputSpec
from edgeact.calibration.engine import input_specs
from edgeact.documents.calibration_record import ActivationCore, RecordCore
from edgeact.documents.profile_report import (
    REPORT_SCHEMA,
    ActivationReport,
    Delegate,
    Device,
    Fingerprint,
    Hazard,
    Latency,
    LayerReport,
    OutputReport,
    ProfileReport,
    SignatureEntry,
)
from edgeact.documents.typed_json import build, from_json
from edgeact.errors import DocumentError, EdgeactError, ModelFormatError, UsageError
from edgeact.graph import load_onnx, view_of
from edgeact.graph.importer import load_onnx_bytes, model_bytes
from edgeact.graph.observe import dequantized_tensors, layer_subgraphs, with_float_outputs
from edgeact.graph.tflite_import import metadata, read_tflite
from edgeact.graph.view import GraphView
from edgeact.hardware.profiles import DeviceProfile, activation_verdict, load_profile
from edgeact.profiler.backends import latency_ms, run_device
from edgeact.profiler.metrics import code_agreement, output_metrics
from edgeact.profiler.provenance import ModelProvenance, onnx_provenance, tflite_provenance
from edgeact.runtimes.backends import backend_class, backend_for, emulator_for
from edgeact.runtimes.emulator import run_op
from edgeact.runtimes.onnxruntime import ort_session, run_ort
from edgeact.tflite.graph import LoweredGraph, LoweredTensor

LATENCY_RUNS = 50
TABLE_SIZE = 256  # an int8 activation table: one output code per input code
INT16_SIZES = {"table": 513, "reference": 65536}  # an int16 table's interpolation knots; f at every int16 code
EMULATED_SAMPLES = 64  # per-layer numbers and emulator agreement use the first samples
# the activation builtins whose int8 kernel the device profiles describe (registry entries' ``tflite.checked``)
ACTIVATION_BUILTINS = frozenset(a.tflite.op for a in REGISTRY.values() if a.tflite is not None and a.tflite.checked)


Signature = dict[str, list[dict[str, Any]]]  # {"inputs": [...], "outputs": [...]}: name, dtype, shape


def signature_entry(name: str, dtype: str | None, shape: tuple[int | str | None, ...] | None) -> dict[str, Any]:
    """One input or output: symbolic dims as their names, unnamed dynamic dims as ``?``, an unknown shape null."""
    dims = None if shape is None else [d if isinstance(d, int) else str(d) if d else "?" for d in shape]
    return {"name": name, "dtype": dtype, "shape": dims}


def view_signature(view: GraphView) -> Signature:
    """The inputs and outputs of an ONNX model's view."""
    def entries(names: tuple[str, ...]) -> list[dict[str, Any]]:
        return [signature_entry(n, view.values[n].dtype, view.values[n].shape) if n in view.values
                else signature_entry(n, None, None) for n in names]
    return {"inputs": entries(view.inputs), "outputs": entries(view.outputs)}


@dataclass
class Int8Model:
    """The int8 model as profile-device reads it: its bytes and its lowered graph (.tflite) or view (.onnx)."""

    path: Path
    payload: bytes
    graph: LoweredGraph | None
    view: GraphView | None
    inputs: list[str]
    outputs: list[str]
    provenance: ModelProvenance  # what the file says its tensors are, and its calibration record

    def signature(self) -> Signature:
        if self.view is not None:
            return view_signature(self.view)
        tensors = self.graph.tensors

        def real_type(tensor: LoweredTensor) -> str:  # int8 codes on a grid (--io int8) carry float32 values
            return "float32" if tensor.codes_grid is not None else tensor.dtype
        return {side: [signature_entry(tensors[i].name, real_type(tensors[i]), tuple(tensors[i].shape))
                       for i in indices]
                for side, indices in (("inputs", self.graph.inputs), ("outputs", self.graph.outputs))}


def _read_int8(path: Path, profile: DeviceProfile) -> Int8Model:
    """Read and check the int8 model (errors name the file): the device's format, parseable, with outputs."""
    if not path.is_file():
        raise ModelFormatError(f"{path}: no such model file")
    suffix = path.suffix.lstrip(".")
    if suffix != profile.model_format:
        raise UsageError(f"device {profile.name} runs .{profile.model_format} models; {path} is a .{suffix} file")
    try:
        payload = path.read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    if suffix == "tflite":
        graph = read_tflite(payload, str(path))
        model = Int8Model(path, payload, graph, None, [graph.tensors[i].name for i in graph.inputs],
                          [graph.tensors[i].name for i in graph.outputs],
                          tflite_provenance(graph, _tflite_metadata(payload, path), path))
    else:
        loaded = load_onnx_bytes(payload, str(path))
        session = ort_session(payload, f"int8 model {path}")
        model = Int8Model(path, payload, None, view_of(loaded), [i.name for i in session.get_inputs()],
                          [o.name for o in session.get_outputs()], onnx_provenance(dict(loaded.metadata_props), path))
    if not model.outputs:
        raise ModelFormatError(f"{path}: the model has no outputs; there is nothing to compare")
    if model.graph is not None and not any(t.dtype in ("int8", "int16") for t in model.graph.tensors):
        raise UsageError(f"{path} holds no int8 or int16 tensor: it is a float model. Give the int8 .tflite edgeact "
                         "wrote as MODEL, and this float model as --baseline")
    return model


def _check_runnable(profile: DeviceProfile, graph: LoweredGraph | None, path: Path) -> None:
    """Refuse a model with ops or tensor types the device does not run (before running anything)."""
    if graph is None or "*" in profile.ops:
        return
    ops = sorted({op.op for op in graph.ops} - set(profile.ops))
    dtypes = sorted({t.dtype for t in graph.tensors} - set(profile.dtypes))
    wide = sorted({op.op for op in graph.ops if not profile.runs_int16(op.op) and any(
        graph.tensors[i].dtype == "int16" for i in (*op.inputs, *op.outputs) if i >= 0)})
    if ops or dtypes or wide:
        parts = (f"ops {ops}" if ops else "", f"tensor types {dtypes}" if dtypes else "",
                 f"16x8 (int16) ops {wide} (not in its profile's int16_ops)" if wide else "")
        raise UsageError(f"device {profile.name} cannot run {path}: " + "; ".join(part for part in parts if part))


def _tflite_metadata(payload: bytes, path: Path) -> dict[str, str]:
    """The .tflite's named metadata (read_tflite already took the model)."""
    try:
        return metadata(payload, str(path))
    except Exception:  # noqa: BLE001 - flatbuffers raises plain errors on a damaged metadata table
        return {}


def _carried(graph: LoweredGraph) -> list[int]:
    """The int8 tensors that carry an ONNX value (their provenance says which), not constants."""
    return [index for index, t in enumerate(graph.tensors)
            if t.source is not None and t.quant is not None and t.data is None]


def _dequantize(graph: LoweredGraph, index: int, values: np.ndarray) -> np.ndarray:
    quant = graph.tensors[index].quant
    return quant.scale * (values.astype(np.float64) - quant.zero_point)


def _output_step(graph: LoweredGraph | None, index: int) -> float | None:
    if graph is None:
        return None
    grid = graph.tensors[index].codes_grid
    if grid is not None:  # an output of int8 codes (--io int8)
        return grid.scale
    producer = next((op for op in graph.ops if index in op.outputs), None)
    if producer is not None and producer.op == "DEQUANTIZE":
        return graph.tensors[producer.inputs[0]].quant.scale
    return None


NAMES_SHOWN = 6  # nodes a hazard line names before it counts the rest


def _hazards(profile: DeviceProfile, graph: LoweredGraph | None) -> list[dict[str, str]]:
    """What the device computes differently from what the model says, or in float."""
    found = []
    for op in graph.ops if graph is not None else ():
        if op.op in ACTIVATION_BUILTINS and graph.tensors[op.outputs[0]].quant is not None:
            in_q, out_q = graph.tensors[op.inputs[0]].quant, graph.tensors[op.outputs[0]].quant
            verdict = activation_verdict(profile, op.op, in_q, out_q)
            if verdict.status not in ("exact", "within_lsb"):
                found.append({"op": op.op, "tensor": graph.tensors[op.outputs[0]].name, "status": verdict.status,
                              "reason": verdict.reason})
    islands = _float_islands(graph)
    if islands:
        ops = sum(len(members) for members in islands.values())
        names = list(islands)
        shown = ", ".join(names[:NAMES_SHOWN]) + (f" (and {len(names) - NAMES_SHOWN} more)"
                                                  if len(names) > NAMES_SHOWN else "")
        found.append({"op": f"{ops} ops", "tensor": shown, "status": "float",
                      "reason": "run in float32 between DEQUANTIZE and QUANTIZE, as the plan decided (the "
                                "calibration record's fallbacks and float islands say why, node by node)"})
    if backend_class(profile).capabilities.u8s8_saturation_without_vnni and not _has_vnni():
        found.append({"op": "MatMul/Conv", "tensor": "", "status": "u8s8_saturation_risk",
                      "reason": "x86 without VNNI: onnxruntime's u8s8 int8 GEMMs can saturate (use reduce_range)"})
    return found


def _float_islands(graph: LoweredGraph | None) -> dict[str, list[str]]:
    """Float ops grouped by the ONNX node they lower (the model's provenance)."""
    islands: dict[str, list[str]] = {}
    for op in graph.ops if graph is not None else ():
        if graph.tensors[op.outputs[0]].dtype == "float32" and op.op != "DEQUANTIZE":
            islands.setdefault(op.node, []).append(op.op)
    return islands


def _has_vnni() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return True
    return "avx512_vnni" in flags or "avx_vnni" in flags or "x86" not in flags and "flags" not in flags


def _activation_problem(index: int, act: ActivationCore) -> str | None:
    """What makes one (well-typed) record activation unusable for the report and its plots, or None."""
    from edgeact.activations import activation

    where = f"activations[{index}]"
    for key, grid in (("input_grid", act.input_grid), ("output_grid", act.output_grid)):
        if not (math.isfinite(grid.scale) and grid.scale > 0):
            return f"{where}.{key}.scale is {grid.scale!r}, expected a finite number > 0"
    wide = act.input_grid.dtype == "int16"
    for key, values in (("table", act.table), ("reference", act.reference)):
        expected = INT16_SIZES[key] if wide else TABLE_SIZE
        if values is not None and len(values) != expected:
            return (f"{where}.{key} has {len(values)} entries, expected {expected} "
                    f"({'an int16 table' if wide else 'one per int8 code'})")
    values = {"error.rms_error": act.error.rms_error, "error.rms_floor": act.error.rms_floor,
              "saturation_rate": act.saturation_rate or 0.0}
    for key, value in values.items():
        if not (math.isfinite(value) and value >= 0):
            return f"{where}.{key} is {value!r}, expected a finite number >= 0"
    if act.reference is None:
        try:
            activation(act.function, **act.params)
        except EdgeactError as exc:
            return f"{where}: {exc}"
    return None


def _record_problem(data: object, model: Int8Model, hashed: bool) -> tuple[RecordCore | None, str | None]:
    """The record read (:class:`RecordCore`), or what makes it unusable for ``model`` (``hashed``: the model
    carries the record's sha256, so the record is its own whatever the files are called now)."""
    try:
        record = from_json(RecordCore, data)
    except DocumentError as exc:
        return None, str(exc)
    problem = next((p for i, act in enumerate(record.activations) if (p := _activation_problem(i, act))), None)
    if problem is None and not hashed and model.path.name not in record.files.values():
        problem = f"it describes {sorted(record.files.values())}, not {model.path.name}"
    return (None, problem) if problem is not None else (record, None)


def _calibration_record(model: Int8Model, warnings: list[str]) -> tuple[Path, RecordCore] | None:
    """The calibration record the model names (older files: the one beside it by name), if it is readable and
    the model's own (else a warning)."""
    path = model.provenance.record
    if path is None or not path.is_file():
        return None
    ignored = "its activations are not reported"
    try:
        text = path.read_bytes()
    except OSError as exc:
        warnings.append(f"{path}: cannot read the calibration record ({exc.strerror or exc}); {ignored}")
        return None
    carried = model.provenance.record_sha256
    hashed = model.graph is not None or carried is not None  # a .tflite always carries it
    if hashed and carried != hashlib.sha256(text).hexdigest():
        warnings.append(f"{path}: not the calibration record {model.path.name} was written with (the sha256 the "
                        f"model carries differs); {ignored}")
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        warnings.append(f"{path}: not a readable calibration record (not JSON: {exc}); {ignored}")
        return None
    record, problem = _record_problem(data, model, hashed)
    if record is None:
        warnings.append(f"{path}: not a usable calibration record ({problem}); {ignored}")
        return None
    return path, record


def _data_specs(view: GraphView, model: Int8Model) -> list[InputSpec]:
    """What the evaluation data must hold: the int8 model's own input shapes (a .tflite, or an ONNX model whose
    dims were fixed for a static target, takes only those), the baseline's names, dtypes and batch axes."""
    if model.graph is not None:
        shapes = {model.graph.tensors[i].name: model.graph.tensors[i].shape for i in model.graph.inputs}
    else:
        shapes = {name: model.view.values[name].shape for name in model.view.inputs}
    return [InputSpec(spec.name, spec.dtype, tuple(shapes.get(spec.name) or spec.shape), spec.batch_axis)
            for spec in input_specs(view)]


def _samples(data: CalibrationData, inputs: list[str], limit: int | None) -> list[list[np.ndarray]]:
    samples = []
    for feeds in data.samples():
        samples.append([feeds[name] for name in inputs])
        if limit is not None and len(samples) >= limit:
            break
    return samples


def _dims_fit(int8: list[int | str] | None, float_: list[int | str] | None) -> bool:
    """Same rank and no two different fixed dims (the int8 model may fix what the float model leaves symbolic)."""
    if int8 is None or float_ is None:
        return True
    return len(int8) == len(float_) and all(
        not (isinstance(a, int) and isinstance(b, int)) or a == b for a, b in zip(int8, float_, strict=True))


def signature_problems(int8: Signature, float_: Signature) -> list[str]:
    """How the int8 model's inputs and outputs differ from the float model's (dtypes, ranks, fixed dims)."""
    problems = []
    for side in ("inputs", "outputs"):
        theirs = {entry["name"]: entry for entry in float_[side]}
        for mine in int8[side]:
            other = theirs.get(mine["name"])
            if other is None:
                continue
            if mine["dtype"] and other["dtype"] and mine["dtype"] != other["dtype"]:
                problems.append(f"{side[:-1]} {mine['name']!r} is {other['dtype']} in the baseline, {mine['dtype']} "
                                "in the int8 model")
            elif not _dims_fit(mine["shape"], other["shape"]):
                problems.append(f"{side[:-1]} {mine['name']!r} has shape {other['shape']} in the baseline, "
                                f"{mine['shape']} in the int8 model")
    return problems


def _baseline(path: Path, model: Int8Model):  # type: ignore[no-untyped-def]
    """The float model, checked against the int8 one: names, dtypes, ranks and fixed dims of inputs and outputs."""
    if path.suffix not in (".onnx", ".tflite"):
        raise UsageError(f"the baseline must be the float32 .onnx or .tflite model; got {path}")
    loaded = load_onnx(path) if path.suffix == ".onnx" else _tflite_baseline(path)
    view = view_of(loaded)
    if not view.outputs:
        raise ModelFormatError(f"{path}: the baseline has no outputs; there is nothing to compare")
    if sorted(view.inputs) != sorted(model.inputs) or sorted(view.outputs) != sorted(model.outputs):
        raise UsageError(
            f"baseline {path} has inputs {list(view.inputs)} and outputs {list(view.outputs)}; the int8 model has "
            f"inputs {model.inputs} and outputs {model.outputs}"
        )
    signature = view_signature(view)
    problems = signature_problems(model.signature(), signature)
    if problems:
        raise UsageError(f"baseline {path} is not the float model of {model.path}: " + "; ".join(problems))
    return loaded, view, signature


def _tflite_baseline(path: Path):  # type: ignore[no-untyped-def]
    """A float .tflite baseline in its ONNX form (checked against LiteRT on seeded inputs, as quantize does)."""
    from edgeact.pipeline.prepare import load_model, resolve_model, verify_conversion

    try:
        source = resolve_model(path)
    except ModelFormatError as exc:
        raise ModelFormatError(f"--baseline: {exc}") from exc
    verify_conversion(source, None)
    return load_model(source.loadable, source.name)[0]


def _float_fingerprint(path: Path, shapes: dict[str, tuple[int | None, ...]] | None = None) -> str:
    """The hash quantize records as ``model_sha256``: the float model as edgeact prepares it (canonicalised, with
    the input dims a static target fixed)."""
    from edgeact.pipeline.prepare import Prepared

    return Prepared.load(path, str(path), shapes).fingerprint


def _fingerprint(path: Path, signature: Signature, warnings: list[str]) -> Fingerprint:
    """The report's model fingerprint: the float model's hash (see :func:`_float_fingerprint`) and signature."""
    try:
        digest = _float_fingerprint(path)
    except EdgeactError as exc:
        warnings.append(f"cannot fingerprint the baseline ({exc}); the gate cannot check which model this is")
        digest = None
    return Fingerprint(float_model_sha256=digest, inputs=[SignatureEntry(**e) for e in signature["inputs"]],
                       outputs=[SignatureEntry(**e) for e in signature["outputs"]])


def _reference_model(path: Path, loaded, record: tuple[Path, RecordCore] | None, view: GraphView):  # type: ignore[no-untyped-def]
    """The float model the int8 one was made from, as quantize prepared it (canonical: equalized, fused, unrolled
    at the record's static shapes), so the tensors the int8 model carries have their float counterparts; the
    baseline as loaded where it cannot be prepared so."""
    from edgeact.pipeline.prepare import Prepared

    try:
        fixed = _fixed_dims(record[1], view) if record is not None else None
        return Prepared.load(path, str(path), fixed).model
    except EdgeactError:
        return loaded


def _fixed_dims(record: RecordCore, view: GraphView) -> dict[str, tuple[int | None, ...]] | None:
    """The input dims the quantize run fixed before canonicalising (for a static target), or None."""
    from edgeact.pipeline.shapes import StaticShapes

    static = record.static_shapes
    specs = input_specs(view)
    if not static or {s.name: len(s.shape) for s in specs} != {n: len(d) for n, d in static.input_shapes.items()}:
        return None
    shapes = {name: tuple(dims) for name, dims in static.input_shapes.items()}
    fixed = StaticShapes(shapes, "", static.batch_stays_dynamic).fixed_dims(specs)
    return fixed if any(size is not None for dims in fixed.values() for size in dims) else None


def _check_record_model(found: tuple[Path, RecordCore], baseline: Path, view: GraphView, digest: str | None,
                        warnings: list[str]) -> None:
    """Warn when the calibration record names another float model than the baseline."""
    path, record = found
    if digest is None:
        return
    try:
        fixed = _fixed_dims(record, view)
        prepared = digest if fixed is None else _float_fingerprint(baseline, fixed)
    except EdgeactError:
        prepared = None  # the record's shapes do not fit the baseline: another model
    if prepared != record.model_sha256:
        got = f"sha256 {prepared[:12]} as edgeact prepares it" if prepared else "its inputs do not fit the record's"
        warnings.append(
            f"{path.name} says the int8 model was quantized from float model {record.model!r} "
            f"(model_sha256 {record.model_sha256[:12]}), which is not the baseline {baseline.name} ({got}): the "
            "numbers compare the int8 model with another model")


def _op_agreement(graph: LoweredGraph, tensors: list[dict[int, np.ndarray]], rules,  # type: ignore[no-untyped-def]
                  progress: bool = False) -> dict[int, dict]:
    """Each op re-run by the emulator on the device's own inputs, against the device's output: device mismatch
    without propagation."""
    from tqdm import tqdm

    agreement: dict[int, dict] = {}
    for op in tqdm(graph.ops, desc="per-layer check", unit="op", leave=False, disable=None if progress else True):
        index = op.outputs[0]
        if graph.tensors[index].dtype not in ("int8", "int16"):
            continue
        device, mine = [], []
        for values in tensors:
            device.append(values[index])
            mine.append(run_op(graph, op, [values[i] if i >= 0 else None for i in op.inputs], rules)[0])
        agreement[index] = code_agreement(np.concatenate(device), np.concatenate(mine))
    return agreement


def _layers(graph: LoweredGraph, reference: dict[str, np.ndarray], tensors: list[dict[int, np.ndarray]],
            agreement: dict[int, dict] | None) -> list[dict[str, Any]]:
    from edgeact.metrics import sqnr_db

    layers = []
    for index in _carried(graph):
        name = graph.tensors[index].source
        if name not in reference:
            continue
        values = np.concatenate([_dequantize(graph, index, t[index]) for t in tensors])
        if graph.tensors[index].layout == "nhwc":
            values = np.transpose(values, (0, 3, 1, 2))
        entry = {"tensor": name, "device_tensor": graph.tensors[index].name, "device_dtype": graph.tensors[index].dtype,
                 "sqnr_db": sqnr_db(reference[name][: len(values)], values.reshape(
                     reference[name][: len(values)].shape))}
        if agreement is not None and index in agreement:
            entry.update(agreement[index])
        entry["index"] = index
        layers.append(entry)
    _added_error(graph, layers)
    return sorted(layers, key=lambda e: e["sqnr_db"])


def _added_error(graph: LoweredGraph, layers: list[dict[str, Any]]) -> None:
    """``sqnr_drop_db``: how much SQNR a layer loses against the layers that feed it (its own share of the error;
    errors from upstream show in every later layer's SQNR, but only here in the drop)."""
    by_index = {layer["index"]: layer for layer in layers}
    producers = {out: op for op in graph.ops for out in op.outputs}

    def feeding(index: int, seen: set[int]) -> list[int]:
        op = producers.get(index)
        found: list[int] = []
        for source in op.inputs if op is not None else ():
            if source < 0 or source in seen:
                continue
            seen.add(source)
            found += [source] if source in by_index else feeding(source, seen)
        return found

    for layer in layers:
        sources = feeding(layer["index"], set())
        upstream = min((by_index[s]["sqnr_db"] for s in sources), default=None)
        layer["sqnr_drop_db"] = None if upstream is None else upstream - layer["sqnr_db"]
    for layer in layers:
        del layer["index"]


def _onnx_profile(payload: bytes, samples: list[list[np.ndarray]], inputs: list[str], outputs: list[str],
                  expected: dict[str, np.ndarray], per_layer: bool,
                  provenance: ModelProvenance) -> tuple[dict[str, dict], list[dict[str, Any]]]:
    """An int8 ONNX model on onnxruntime against the ONNX reference evaluator (the emulator for ONNX): output
    agreement in output steps over the whole model and, per layer, each layer re-run by the reference evaluator on
    onnxruntime's own dequantized inputs (device mismatch without propagation) plus SQNR against the float model."""
    from edgeact.runtimes.onnx_reference import reference_session, run_reference

    scales = dequantized_tensors(payload)
    layers_of = layer_subgraphs(payload) if per_layer else {}
    needed = sorted({name for sub in layers_of.values() for name in sub[1]} | set(layers_of)) if per_layer else []
    needed = [name for name in needed if name not in outputs and name not in inputs]
    device = ort_session(with_float_outputs(payload, needed), "int8 ONNX model")
    emulator = reference_session(payload)
    got: dict[str, list] = {}
    mine: dict[str, list] = {}
    for sample in samples[:EMULATED_SAMPLES]:
        feeds = dict(zip(inputs, sample, strict=True))
        for name, value in {**feeds, **run_ort(device, feeds, outputs + needed)}.items():
            got.setdefault(name, []).append(value)
        for name, value in run_reference(emulator, feeds, outputs).items():
            mine.setdefault(name, []).append(value)
    agreement = {name: code_agreement(np.rint(np.concatenate(got[name]) / scales.get(name, 1.0)),
                                      np.rint(np.concatenate(mine[name]) / scales.get(name, 1.0)))
                 for name in outputs}
    layers = [_onnx_layer(name, provenance.value_of(name) or name, sub, got, expected)
              for name, sub in layers_of.items()]
    return agreement, sorted(layers, key=lambda e: (e["sqnr_db"] is None, e["sqnr_db"] or 0.0))


def _onnx_layer(name: str, base: str, sub: tuple, got: dict[str, list],
                expected: dict[str, np.ndarray]) -> dict[str, Any]:
    """Layer ``base`` of an ONNX model, carried by DequantizeLinear output ``name``."""
    from edgeact.metrics import sqnr_db
    from edgeact.numerics import QParams, quantize
    from edgeact.numerics.rounding import Rounding
    from edgeact.runtimes.onnx_reference import reference_session, run_reference

    model, sub_inputs, scale, zero_point, codes = sub
    grid = QParams(scale, zero_point, codes)
    session = reference_session(model)
    output = session.output_names[0]
    device_codes, emulated_codes = [], []
    for sample in range(len(got[name])):
        feeds = {i: got[i][sample] for i in sub_inputs}
        emulated_codes.append(quantize(run_reference(session, feeds, [output])[output], grid, Rounding.HALF_TO_EVEN))
        device_codes.append(np.rint(got[name][sample] / np.float32(scale)) + zero_point)
    values = np.concatenate(got[name])
    entry = {"tensor": base, "source": "device", "sqnr_drop_db": None,
             **code_agreement(np.concatenate(device_codes), np.concatenate(emulated_codes))}
    entry["sqnr_db"] = sqnr_db(expected[base][: len(values)], values) if base in expected else None
    return entry


def _reference(base, canonical, model: Int8Model, samples: list[list[np.ndarray]], per_layer: bool,  # type: ignore[no-untyped-def]
               progress: bool) -> dict[str, np.ndarray]:
    """The float model's outputs on every sample, from the baseline as it is (a bug in edgeact's own preparation
    cannot hide there); per layer, every tensor the int8 model carries, from the ``canonical`` model it was made
    from (equalized, fused: the tensors it quantized)."""
    from tqdm import tqdm

    if model.graph is not None:
        carried = {model.graph.tensors[index].source for index in _carried(model.graph)}
    else:
        carried = {value for name in dequantized_tensors(model.payload) if (value := model.provenance.value_of(name))}
    layer_names = sorted((carried & set(view_of(canonical).values)) - set(model.outputs)) if per_layer else []
    runs = [(ort_session(model_bytes(base), "float baseline"), model.outputs)]
    if layer_names:
        runs.append((ort_session(with_float_outputs(model_bytes(canonical), layer_names), "float baseline as "
                                 "edgeact prepares it"), layer_names))
    reference: dict[str, list] = {}
    for sample in tqdm(samples, desc="float baseline", unit="sample", disable=None if progress else True, leave=False):
        feeds = dict(zip(model.inputs, sample, strict=True))
        for session, names in runs:
            for name, value in run_ort(session, feeds, names).items():
                reference.setdefault(name, []).append(value)
    return {name: np.concatenate(values) for name, values in reference.items()}


def _compare(profile: DeviceProfile, model: Int8Model, samples: list[list[np.ndarray]],
             expected: dict[str, np.ndarray], per_layer: bool,
             progress: bool = False) -> tuple[dict[str, dict], list[dict[str, Any]]]:
    """Per output and (``per_layer``) per layer: the device's int8 run against the float reference and the
    emulator."""
    graph = model.graph
    source = str(model.path)
    device_run = run_device(profile, model.payload, graph, samples, keep_tensors=per_layer, source=source,
                            progress=progress)
    emulator = emulator_for(profile, model.payload, graph, source) if graph is not None else None
    emulated_outputs, emulated = (emulator.run_with_intermediates(samples[:EMULATED_SAMPLES]) if emulator is not None
                                  else (None, None))
    report_outputs = {}
    for position, name in enumerate(model.outputs):
        got = np.concatenate([run[position] for run in device_run.outputs])
        index = graph.outputs[position] if graph is not None else -1
        entry = output_metrics(expected[name], got, _output_step(graph, index))
        if emulated is not None:
            mine = np.concatenate([outputs[position] for outputs in emulated_outputs])
            step = _output_step(graph, index) or 1.0
            entry["emulator"] = code_agreement(np.rint(got[: len(mine)] / step), np.rint(mine / step))
        report_outputs[name] = entry
    layers = []
    if graph is None:  # an int8 ONNX model: onnxruntime against the ONNX reference evaluator
        agreement, layers = _onnx_profile(model.payload, samples, model.inputs, model.outputs, expected, per_layer,
                                          model.provenance)
        for name, entry in report_outputs.items():
            entry["emulator"] = agreement[name]
    if per_layer and graph is not None:
        if device_run.tensors is not None:  # the device shows its tensors: per-op agreement on its own inputs
            observed = device_run.tensors[:EMULATED_SAMPLES]
            layers = _layers(graph, expected, observed, _op_agreement(graph, observed, emulator.rules, progress))
        else:
            layers = _layers(graph, expected, emulated, None)
        for layer in layers:
            layer["source"] = "device" if device_run.tensors is not None else "emulator"
    return report_outputs, layers


def _latency(profile: DeviceProfile, model: Int8Model, samples: list[list[np.ndarray]], runs: int | None,
             warnings: list[str]) -> dict[str, float] | None:
    if not backend_class(profile).capabilities.timed:
        if runs is not None:
            warnings.append(f"--latency-runs is ignored: device {profile.name} is emulated here (no timing)")
        return None
    if not samples:
        return None
    return latency_ms(profile, model.payload, samples[0], runs or LATENCY_RUNS, source=str(model.path))


def profile_device(
    model: str | Path, device: str | Path, baseline: str | Path, data: str | Path, *, per_layer: bool = False,
    max_samples: int | None = None, latency_runs: int | None = None, skip_bad_samples: bool = False,
    progress: bool = False, max_array_bytes: int | None = None,
) -> ProfileReport:
    """Run the int8 ``model`` on ``device`` and the float ``baseline`` on ``data``; the report.

    ``latency_runs``: timed runs (default 50; a warning on an emulated device, which has no timing).
    ``skip_bad_samples``: samples with NaN/Inf are skipped and listed in ``bad_samples`` instead of refused.
    ``max_array_bytes``: the largest array a data file may declare (default $EDGEACT_MAX_ARRAY_BYTES, else 4 GiB)."""
    profile = load_profile(device)
    int8 = _read_int8(Path(model), profile)
    _check_runnable(profile, int8.graph, int8.path)
    baseline = Path(baseline)
    base, view, signature = _baseline(baseline, int8)
    evaluation = CalibrationData(data, _data_specs(view, int8), skip_bad_samples=skip_bad_samples,
                                 max_array_bytes=max_array_bytes)
    samples = _samples(evaluation, int8.inputs, max_samples)
    warnings: list[str] = list(int8.provenance.warnings)
    fingerprint = _fingerprint(baseline, signature, warnings)
    record = _calibration_record(int8, warnings)
    if record is not None:
        _check_record_model(record, baseline, view, fingerprint.float_model_sha256, warnings)
    canonical = _reference_model(baseline, base, record, view)
    outputs, layers = _compare(profile, int8, samples, _reference(base, canonical, int8, samples, per_layer, progress),
                               per_layer, progress)
    _mark_activation_inputs(layers, record[1] if record is not None else None)
    latency = _latency(profile, int8, samples, latency_runs, warnings)
    return ProfileReport(
        schema_version=REPORT_SCHEMA, edgeact_version=__version__, model=int8.path.name, baseline=baseline.name,
        fingerprint=fingerprint, device=Device(name=profile.name, backend=profile.backend,
                                               description=profile.description),
        samples=len(samples), bad_samples=list(evaluation.summary.bad_samples),
        outputs={name: build(OutputReport, entry) for name, entry in outputs.items()},
        layers=[build(LayerReport, layer) for layer in layers],
        activations=_activations(record[1] if record is not None else None),
        hazards=[Hazard(**hazard) for hazard in _hazards(profile, int8.graph)], float_ops=_float_islands(int8.graph),
        latency_ms=build(Latency, latency) if latency is not None else None, model_size_bytes=len(int8.payload),
        warnings=warnings, delegate=_delegate(profile, int8),
    )


def _mark_activation_inputs(layers: list[dict[str, Any]], record: RecordCore | None) -> None:
    """A layer that is an activation's input had its grid chosen for the error after the activation (a GELU's
    input clipped where it barely changes the output): name the activation and give its output's SQNR, by which
    the layer is judged."""
    if record is None:
        return
    sqnr = {layer["tensor"]: layer.get("sqnr_db") for layer in layers}
    feeding = {a.input: a for a in record.activations if a.input is not None}
    for layer in layers:
        act = feeding.get(layer["tensor"])
        if act is not None:
            layer["feeds_activation"] = act.node
            layer["after_activation_sqnr_db"] = sqnr.get(act.output) if act.output is not None else None


def _delegate(profile: DeviceProfile, model: Int8Model) -> Delegate | None:
    """How the device's delegate split the model (None: the device runs none)."""
    if not backend_class(profile).capabilities.delegate:
        return None
    partitions, outside = backend_for(profile, model.payload, model.graph, str(model.path)).partitions()
    return Delegate(partitions=partitions, outside=dict(Counter(outside)))


def _activations(record: RecordCore | None) -> list[ActivationReport]:
    """The record's activations as the report shows them."""
    if record is None:
        return []
    return [ActivationReport(node=a.node, function=a.function, params=a.params, saturation_rate=a.saturation_rate,
                             rms_error=a.error.rms_error, rms_floor=a.error.rms_floor, input_grid=a.input_grid,
                             output_grid=a.output_grid, table=a.table, expression=a.expression, reference=a.reference)
            for a in record.activations]
