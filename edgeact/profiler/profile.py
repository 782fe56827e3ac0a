"""The profile-device job: the int8 model on the device's backend and the float baseline on the same data, compared
per output, per layer and per activation, with the device's hazards, latency and size."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from edgeact import __version__
from edgeact.calibration.data import CalibrationData, InputSpec
from edgeact.calibration.engine import input_specs
from edgeact.devices.profiles import DeviceProfile, activation_verdict, load_profile
from edgeact.errors import ModelFormatError, UsageError
from edgeact.exporters.tflite.graph import LoweredGraph
from edgeact.graph import load_onnx, view_of
from edgeact.graph.importer import load_onnx_bytes, model_bytes
from edgeact.graph.observe import dequantized_tensors, layer_subgraphs, with_float_outputs
from edgeact.graph.tflite_import import metadata, read_tflite
from edgeact.profiler.backends import latency_ms, run_device
from edgeact.profiler.metrics import code_agreement, output_metrics
from edgeact.runtimes.emulator import emulate, rules_for, run_op
from edgeact.runtimes.onnxruntime import ort_session, run_ort

REPORT_SCHEMA = 1
EMULATED_SAMPLES = 64  # per-layer numbers and emulator agreement use the first samples
ACTIVATION_BUILTINS = {"TANH": "tanh", "LOGISTIC": "sigmoid", "GELU": "gelu", "HARD_SWISH": "hardswish"}


def _model(path: Path, profile: DeviceProfile) -> tuple[bytes, LoweredGraph | None]:
    if not path.is_file():
        raise ModelFormatError(f"{path}: no such model file")
    suffix = path.suffix.lstrip(".")
    if suffix != profile.model_format:
        raise UsageError(f"device {profile.name} runs .{profile.model_format} models; {path} is a .{suffix} file")
    payload = path.read_bytes()
    return payload, read_tflite(payload, str(path)) if suffix == "tflite" else None


def _check_runnable(profile: DeviceProfile, graph: LoweredGraph | None, path: Path) -> None:
    """Refuse a model with ops or tensor types the device does not run (before running anything)."""
    if graph is None or "*" in profile.ops:
        return
    ops = sorted({op.op for op in graph.ops} - set(profile.ops))
    dtypes = sorted({t.dtype for t in graph.tensors} - set(profile.dtypes))
    if ops or dtypes:
        raise UsageError(
            f"device {profile.name} cannot run {path}: " + "; ".join(
                part for part in (f"ops {ops}" if ops else "", f"tensor types {dtypes}" if dtypes else "") if part)
        )


def _names(graph: LoweredGraph | None, payload: bytes) -> tuple[list[str], list[str]]:
    if graph is not None:
        return [graph.tensors[i].name for i in graph.inputs], [graph.tensors[i].name for i in graph.outputs]
    session = ort_session(payload, "int8 ONNX model")
    return [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]


def _float_name(tensor: str) -> tuple[str, bool] | None:
    """The ONNX value an int8 TFLite tensor carries (edgeact's names: ``v/int8``, ``v/int8_nhwc``)."""
    for suffix, nhwc in (("/int8_nhwc", True), ("/int8", False)):
        if tensor.endswith(suffix):
            return tensor[: -len(suffix)], nhwc
    return None


def _dequantize(graph: LoweredGraph, index: int, values: np.ndarray) -> np.ndarray:
    quant = graph.tensors[index].quant
    return quant.scale * (values.astype(np.float64) - quant.zero_point)


def _output_step(graph: LoweredGraph | None, index: int) -> float | None:
    if graph is None:
        return None
    producer = next((op for op in graph.ops if index in op.outputs), None)
    if producer is not None and producer.op == "DEQUANTIZE":
        return graph.tensors[producer.inputs[0]].quant.scale
    return None


def _hazards(profile: DeviceProfile, graph: LoweredGraph | None) -> list[dict[str, str]]:
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
        found.append({"op": f"{ops} ops", "tensor": ", ".join(islands), "status": "float",
                      "reason": "run in float32 between DEQUANTIZE and QUANTIZE (no int8 kernel for them)"})
    if profile.backend == "onnxruntime" and not _has_vnni():
        found.append({"op": "MatMul/Conv", "tensor": "", "status": "u8s8_saturation_risk",
                      "reason": "x86 without VNNI: onnxruntime's u8s8 int8 GEMMs can saturate (use reduce_range)"})
    return found


def _float_islands(graph: LoweredGraph | None) -> dict[str, list[str]]:
    """Float ops grouped by the node they lower (edgeact names their tensors ``<node>/<step>``)."""
    islands: dict[str, list[str]] = {}
    for op in graph.ops if graph is not None else ():
        if graph.tensors[op.outputs[0]].dtype == "float32" and op.op != "DEQUANTIZE":
            name = graph.tensors[op.outputs[0]].name
            islands.setdefault(name.rsplit("/", 1)[0] if "/" in name.strip("/") else name, []).append(op.op)
    return islands


def _has_vnni() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return True
    return "avx512_vnni" in flags or "avx_vnni" in flags or "x86" not in flags and "flags" not in flags


def _record_next_to(path: Path, payload: bytes, is_tflite: bool) -> dict[str, Any] | None:
    """The calibration record written beside the model, if its hash is the one the model carries."""
    stem = path.name.split(".int8.")[0]
    record = path.with_name(f"{stem}.calibration.json")
    if not record.is_file():
        return None
    text = record.read_bytes()
    if is_tflite and metadata(payload).get("calibration_record_sha256") != hashlib.sha256(text).hexdigest():
        return None
    return json.loads(text)


def _data_specs(view, graph: LoweredGraph | None, payload: bytes) -> list:  # type: ignore[no-untyped-def]
    """What the evaluation data must hold: the int8 model's own input shapes (a .tflite, or an ONNX model whose
    dims were fixed for a static target, takes only those), the baseline's names, dtypes and batch axes."""
    if graph is not None:
        shapes = {graph.tensors[i].name: graph.tensors[i].shape for i in graph.inputs}
    else:
        int8 = view_of(load_onnx_bytes(payload, "int8 model"))
        shapes = {name: int8.values[name].shape for name in int8.inputs}
    return [InputSpec(spec.name, spec.dtype, tuple(shapes.get(spec.name) or spec.shape), spec.batch_axis)
            for spec in input_specs(view)]


def _samples(data: CalibrationData, inputs: list[str], limit: int | None) -> list[list[np.ndarray]]:
    samples = []
    for feeds in data.samples():
        samples.append([feeds[name] for name in inputs])
        if limit is not None and len(samples) >= limit:
            break
    return samples


def _baseline(path: Path, inputs: list[str], outputs: list[str]):  # type: ignore[no-untyped-def]
    if path.suffix != ".onnx":
        raise UsageError(f"the baseline must be the float32 .onnx model; got {path}")
    model = load_onnx(path)
    view = view_of(model)
    if sorted(view.inputs) != sorted(inputs) or sorted(view.outputs) != sorted(outputs):
        raise UsageError(
            f"baseline {path} has inputs {list(view.inputs)} and outputs {list(view.outputs)}; the int8 model has "
            f"inputs {inputs} and outputs {outputs}"
        )
    return model, view


def _op_agreement(graph: LoweredGraph, tensors: list[dict[int, np.ndarray]], rules) -> dict[int, dict]:  # type: ignore[no-untyped-def]
    """Each op re-run by the emulator on the device's own inputs, against the device's output: device mismatch
    without propagation."""
    agreement: dict[int, dict] = {}
    for op in graph.ops:
        index = op.outputs[0]
        if graph.tensors[index].dtype != "int8":
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
    for index, tensor in enumerate(graph.tensors):
        mapped = _float_name(tensor.name)
        if mapped is None or mapped[0] not in reference or tensor.data is not None:
            continue
        name, nhwc = mapped
        values = np.concatenate([_dequantize(graph, index, t[index]) for t in tensors])
        if nhwc:
            values = np.transpose(values, (0, 3, 1, 2))
        entry = {"tensor": name, "sqnr_db": sqnr_db(reference[name][: len(values)], values.reshape(
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
                  expected: dict[str, np.ndarray], per_layer: bool) -> tuple[dict[str, dict], list[dict[str, Any]]]:
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
    layers = [_onnx_layer(name, sub, got, expected) for name, sub in layers_of.items()]
    return agreement, sorted(layers, key=lambda e: (e["sqnr_db"] is None, e["sqnr_db"] or 0.0))


def _onnx_layer(name: str, sub: tuple, got: dict[str, list], expected: dict[str, np.ndarray]) -> dict[str, Any]:
    from edgeact.metrics import sqnr_db
    from edgeact.numerics import QParams, quantize
    from edgeact.numerics.rounding import Rounding
    from edgeact.runtimes.onnx_reference import reference_session, run_reference

    model, sub_inputs, scale, zero_point = sub
    grid = QParams(scale, zero_point)
    session = reference_session(model)
    output = session.output_names[0]
    device_codes, emulated_codes = [], []
    for sample in range(len(got[name])):
        feeds = {i: got[i][sample] for i in sub_inputs}
        emulated_codes.append(quantize(run_reference(session, feeds, [output])[output], grid, Rounding.HALF_TO_EVEN))
        device_codes.append(np.rint(got[name][sample] / np.float32(scale)) + zero_point)
    base = name.removesuffix("_dequantized")
    values = np.concatenate(got[name])
    entry = {"tensor": base, "source": "device", "sqnr_drop_db": None,
             **code_agreement(np.concatenate(device_codes), np.concatenate(emulated_codes))}
    entry["sqnr_db"] = sqnr_db(expected[base][: len(values)], values) if base in expected else None
    return entry


def profile_device(
    model: str | Path, device: str | Path, baseline: str | Path, data: str | Path, *, per_layer: bool = False,
    max_samples: int | None = None, latency_runs: int = 50, progress: bool = False,
) -> dict[str, Any]:
    """Run the int8 ``model`` on ``device`` and the float ``baseline`` on ``data``; the report as a dict."""
    profile = load_profile(device)
    path = Path(model)
    payload, graph = _model(path, profile)
    _check_runnable(profile, graph, path)
    inputs, outputs = _names(graph, payload)
    base, view = _baseline(Path(baseline), inputs, outputs)
    samples = _samples(CalibrationData(data, _data_specs(view, graph, payload)), inputs, max_samples)
    if graph is not None:
        carried = {m[0] for t in graph.tensors if (m := _float_name(t.name))}
    else:
        carried = {name.removesuffix("_dequantized") for name in dequantized_tensors(payload)}
    layer_names = sorted((carried & set(view.values)) - set(outputs)) if per_layer else []
    session = ort_session(with_float_outputs(model_bytes(base), layer_names), "float baseline")
    from tqdm import tqdm

    reference: dict[str, list] = {}
    for sample in tqdm(samples, desc="float baseline", unit="sample", disable=None if progress else True, leave=False):
        for name, value in run_ort(session, dict(zip(inputs, sample, strict=True)), outputs + layer_names).items():
            reference.setdefault(name, []).append(value)
    expected = {name: np.concatenate(values) for name, values in reference.items()}
    device_run = run_device(profile, payload, graph, samples, outputs, keep_tensors=per_layer)
    emulated = ([emulate(graph, s, rules_for(profile)) for s in samples[:EMULATED_SAMPLES]]
                if graph is not None else None)
    report_outputs = {}
    for position, name in enumerate(outputs):
        got = np.concatenate([run[position] for run in device_run.outputs])
        index = graph.outputs[position] if graph is not None else -1
        entry = output_metrics(expected[name], got, _output_step(graph, index))
        if emulated is not None:
            mine = np.concatenate([e[index] for e in emulated])
            step = _output_step(graph, index) or 1.0
            entry["emulator"] = code_agreement(np.rint(got[: len(mine)] / step), np.rint(mine / step))
        report_outputs[name] = entry
    layers = []
    if graph is None:  # an int8 ONNX model: onnxruntime against the ONNX reference evaluator
        agreement, layers = _onnx_profile(payload, samples, inputs, outputs, expected, per_layer)
        for name, entry in report_outputs.items():
            entry["emulator"] = agreement[name]
    if per_layer and graph is not None:
        if device_run.tensors is not None:  # the device shows its tensors: per-op agreement on its own inputs
            observed = device_run.tensors[:EMULATED_SAMPLES]
            layers = _layers(graph, expected, observed, _op_agreement(graph, observed, rules_for(profile)))
        else:
            layers = _layers(graph, expected, emulated, None)
        for layer in layers:
            layer["source"] = "device" if device_run.tensors is not None else "emulator"
    record = _record_next_to(path, payload, graph is not None)
    return {
        "schema_version": REPORT_SCHEMA,
        "edgeact_version": __version__,
        "model": path.name,
        "baseline": Path(baseline).name,
        "device": {"name": profile.name, "backend": profile.backend, "description": profile.description},
        "samples": len(samples),
        "outputs": report_outputs,
        "layers": layers,
        "activations": _activations(record),
        "hazards": _hazards(profile, graph),
        "float_ops": _float_islands(graph),
        "latency_ms": latency_ms(profile, payload, samples[0], latency_runs) if samples else None,
        "model_size_bytes": len(payload),
    }


def _activations(record: dict[str, Any] | None) -> list[dict[str, Any]]:
    if record is None:
        return []
    return [{"node": a["node"], "function": a["function"], "params": a["params"],
             "saturation_rate": a["saturation_rate"], "rms_error": a["error"]["rms_error"],
             "rms_floor": a["error"]["rms_floor"],
             "input_grid": a["input_grid"], "output_grid": a["output_grid"], "table": a["table"],
             **{key: a[key] for key in ("expression", "reference") if key in a}}
            for a in record["activations"]]

