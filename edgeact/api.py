"""The Python API behind ``edgeact calibrate`` and ``edgeact quantize`` (the CLI only parses and calls these).

:func:`quantize` composes the stages of :mod:`edgeact.pipeline`, each usable on its own::

    prepared = prepare(model, calib, static=True)              # import, upgrade, passes, static shapes: once
    stats = statistics(prepared, prepared.data)                # calibrate (streamed) and/or merge saved stats
    decided = plan(prepared, stats, PlanOptions(target="tflm"))  # every grid, code, table and activation form
    decided, corrections = correct_biases(prepared, decided)  # biases corrected on the first calibration samples
    tflite = export(prepared, decided, "tflite", target="tflm")  # an Artifact in memory; export again: same plan
    qdq = export(prepared, decided, "onnx-qdq")
    scores = evaluate(prepared, {"tflite": tflite, "onnx-qdq": qdq}, prepared.data, "tflm")
    write(paths, artifacts, record)                            # one set of files, the record last

:func:`sensitivity` measures each tensor group of a plan (``edgeact sensitivity``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

import numpy as np

from edgeact.analysis.budget import PRECISIONS, Budget, TargetCheck, measure_plan, parse_budget, plan_to_budget
from edgeact.analysis.drift import DriftReport, DriftThresholds, drift_families, plan_cuts
from edgeact.analysis.drift import drift as drift_report
from edgeact.analysis.render import html_page, json_text
from edgeact.analysis.sensitivity import SAMPLES, SEGMENTS, analyse, int16_alternative, trials_for
from edgeact.calibration.engine import CalibrationStats
from edgeact.documents.calibration_record import CalibrationRecordDocument, read_record
from edgeact.documents.profile_report import ProfileReport
from edgeact.documents.sensitivity_report import SensitivityReport
from edgeact.errors import CalibrationDataError, QuantizationRangeError, UsageError
from edgeact.gating import GateResult
from edgeact.hardware.catalog import DeviceSummary, device_summaries
from edgeact.io import OutputSet, check_outputs, check_writable
from edgeact.metrics import Metric, resolve_metric
from edgeact.pipeline import bias_correction
from edgeact.pipeline.bias_correction import SAMPLES as BIAS_SAMPLES
from edgeact.pipeline.calibrate import bucket_counts, calibration_data, first_batches, merged_stats, statistics, stream
from edgeact.pipeline.evaluate import EVAL_SAMPLES, evaluate, is_low, loadable, low_sqnr_warnings, worst_tensors
from edgeact.pipeline.export import (
    DEFAULT_FORMATS,
    FORMATS,
    SUFFIXES,
    Artifact,
    default_formats,
    export,
    export_forms,
    tflite_check,
    tflite_record,
)
from edgeact.pipeline.prepare import (
    ModelSource,
    Prepared,
    prepare,
    prepare_for_calibration,
    resolve_model,
    verify_conversion,
)
from edgeact.pipeline.record import CalibrationRecord
from edgeact.pipeline.shapes import StaticShapes, static_input_shapes, static_shapes
from edgeact.pipeline.write import file_contents, output_paths, user_files, write
from edgeact.planning.plan import PlanOptions, QuantPlan, make_plan
from edgeact.planning.record import plan_dict
from edgeact.planning.target_forms import ALIASES, target_profile
from edgeact.reports.model_explorer import QUANTITIES, node_data_paths
from edgeact.reports.openmetrics import document as metrics_document

CanonicalModel = Prepared  # the name earlier releases used

__all__ = [
    "DEFAULT_FORMATS", "EVAL_SAMPLES", "FORMATS", "SUFFIXES", "Artifact", "CalibrationRecord", "CanonicalModel",
    "ModelSource", "PlanOptions", "Prepared", "QuantizeResult", "StaticShapes", "calibrate", "evaluate", "export",
    "make_plan", "merged_stats", "plan", "prepare", "quantize", "resolve_model", "static_input_shapes",
    "static_shapes", "statistics", "sensitivity", "write", "devices", "profile_device", "gate", "drift",
]


@dataclass
class QuantizeResult:
    """What :func:`quantize` made: ``paths`` by format (plus ``record``) of the files it wrote — none without an
    ``output_dir``: then ``files`` holds each form's bytes (and the record's JSON as ``record``) — and the
    calibration record."""

    paths: dict[str, Path]
    record: dict[str, Any]
    plan: QuantPlan = field(repr=False)
    plots: list[Path] = field(default_factory=list)
    document: CalibrationRecordDocument | None = field(default=None, repr=False)  # the record, typed
    files: dict[str, bytes] = field(default_factory=dict, repr=False)  # in memory, when nothing was written


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
    sample as example inputs), or a :class:`Prepared` model. ``input_shapes`` fixes the model's dynamic dims first,
    as :func:`quantize` does for a TFLite export (statistics merge only into a quantize run on the same static
    model). ``max_array_bytes``: the largest array a data file may declare (default $EDGEACT_MAX_ARRAY_BYTES, else
    4 GiB)."""
    if stats_out is not None:
        check_outputs({"--stats-out": stats_out}, user_files(model, calib))
        check_writable({"--stats-out": stats_out})  # before any work
    prepared = (model if isinstance(model, Prepared)
                else prepare_for_calibration(model, calib, input_shapes, max_array_bytes))
    data = calibration_data(prepared, calib, skip_bad_samples, max_array_bytes)
    verify_conversion(prepared.origin, data)
    stats = stream(prepared, data, batch_size, progress)
    if stats_out is not None:
        stats.save(stats_out)
    return stats


def plan(prepared: Prepared, stats: CalibrationStats, options: PlanOptions | None = None) -> QuantPlan:
    """Stage 3: the plan (every grid, table, fallback); a range that cannot become a grid names the model."""
    try:
        return make_plan(prepared.view, stats.tensors, options or PlanOptions())
    except QuantizationRangeError as exc:
        raise QuantizationRangeError(f"{prepared.source}: {exc}") from exc


def quantize(
    model: str | Path | bytes | Any,
    calib: str | Path | None = None,
    *,
    stats: Sequence[str | Path] = (),
    method: str = "auto",
    formats: Sequence[str] | None = None,
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
    budget: str | None = None,
    eval_data: str | Path | None = None,
    budget_samples: int = SAMPLES,
    int16: Iterable[str] = (),
    promote: str = "auto",
    bias_correction: bool = False,
    bias_samples: int = BIAS_SAMPLES,
    metric: str | Metric | None = None,
    onnx_activations: str = "auto",
    io: str = "float",
    recurrent_cells: str = "auto",
) -> QuantizeResult:
    """Quantize a model to int8 and write the requested forms and the calibration record.

    ``model``: an ONNX path, serialised bytes or ``onnx.ModelProto``; a float ``.tflite`` path or its bytes (read
    into the same graph, checked against LiteRT on the first calibration sample); or PyTorch — an nn.Module, a
    TorchScript ``.pt``, an ExportedProgram ``.pt2``, or ``path/file.py:factory`` / ``package.module:factory`` —
    exported with torch.onnx using ``example_inputs`` (name -> array, forward's argument order), ``input_shapes``, or
    the first calibration sample.

    ``output_dir``: where the files go (created if needed; an existing file that is an input is never replaced);
    without it nothing is written and ``QuantizeResult.files`` holds every form's bytes and the record's JSON.

    Statistics come from ``calib`` (an .npz or folder of .npz), from saved ``stats`` files (merged), or both.
    ``formats``: onnx-qdq, onnx-table, tflite (int8 for the ``target`` device profile: litert, tflm, ...); by
    default tflite for a .tflite model, else onnx-qdq and onnx-table;
    ``float_tflite`` adds the float32 .tflite baseline. With ``plots``, each activation's nonlinear quantization
    map is drawn to OUTDIR/<name>.plots/<node>.png. ``max_array_bytes``: the largest array a data file may declare
    (default $EDGEACT_MAX_ARRAY_BYTES, else 4 GiB). ``budget`` (``sqnr>=30``, ``top1>=0.99``, ``cosine>=0.995``):
    leave float the fewest, most sensitive tensor groups that meet it, measured on ``budget_samples`` samples of
    ``eval_data`` (default: the calibration data); the record's ``budget`` says which and why. ``promote``: what a
    budget promotes a group to — ``int16`` (A16W8: int16 grid, int8 weights; a .tflite target runs it as 16x8 where
    its profile lists the kernels, and a group it cannot run goes float), ``float``, or ``auto`` (int16, but float for
    a .tflite target that runs no 16x8 op or whose fast path takes none, as LiteRT's XNNPACK delegate). ``int16``:
    node names, op types or activations whose values get int16 grids. ``metric``: the task metric a ``budget``
    NAME>=X measures when NAME is its name (or ``metric``): a callable ``f(reference, result) -> float``, higher is
    better, each a dict of output name -> that output of the samples concatenated on axis 0, or
    ``path/to/file.py:function`` / ``package.module:function`` naming one.
    ``bias_correction``: fold each quantized layer's mean output error, measured
    level by level on the first ``bias_samples`` calibration samples, into its bias (the record's
    ``bias_correction`` says what moved and the SQNR before/after). ``onnx_activations``: the code type of 8-bit
    activations in the ONNX forms — ``auto`` (what onnxruntime's CPU kernels run fast: uint8, with int8 weights),
    ``int8`` (e.g. for TensorRT) or ``uint8``; the grids are the same either way. ``io``: the .tflite's float inputs
    and outputs — ``float`` (float32; QUANTIZE/DEQUANTIZE inside the model) or ``int8`` (each on an int8 grid takes
    and gives int8 codes: the record's ``tflite.io`` has the grids), as MCU and NPU pipelines want.
    ``recurrent_cells``: the precision of an unrolled LSTM/GRU's gates and state (its output h stays int8) —
    ``auto`` (int16 where the target runs the cell's ops on int16, as TFLite's integer LSTM does; else float),
    ``int16``, ``float`` or ``int8``.
    """
    formats = default_formats(model) if formats is None else formats
    options = PlanOptions(method=method, per_tensor=per_tensor, exclude=frozenset(exclude), target=target,
                          int16=frozenset(int16), onnx_activations=onnx_activations, io=io,
                          recurrent_cells=recurrent_cells)
    precision = promotion_precision(promote, formats, bool(options.int16), target)
    if plots and output_dir is None:
        raise UsageError("plots are drawn into OUTDIR/<name>.plots: give output_dir (without it nothing is written)")
    if bias_samples < 1:
        raise UsageError(f"bias_samples={bias_samples}: bias correction needs at least one sample "
                         "(turn it off with bias_correction=False)")
    if calib is None and not stats:
        raise UsageError("give calibration data (--calib) or saved statistics (--stats)")
    wanted = parse_budget(budget, *_metric_of(metric)) if budget is not None else None
    source = resolve_model(model, calib, example_inputs, input_shapes, max_array_bytes)
    paths = output_paths(source, output_dir, list(formats), float_tflite, user_files(model, calib, *stats))
    prepared = prepare(source, calib, input_shapes=input_shapes, static="tflite" in formats or float_tflite,
                       skip_bad_samples=skip_bad_samples, max_array_bytes=max_array_bytes)
    total = statistics(prepared, prepared.data, stats, batch_size, progress)
    check = tflite_check(prepared, target) if "tflite" in formats else None
    decided, budget_record = _planned(prepared, total, options, wanted, eval_data, budget_samples, batch_size,
                                      progress, precision, check)
    decided, bias_record = _bias_corrected(prepared, decided, bias_samples if bias_correction else 0, batch_size,
                                           progress, (wanted, budget_record, eval_data, budget_samples))
    artifacts, warnings = export_forms(prepared, decided, list(formats), target, float_tflite)
    warnings += loadable(artifacts, target)
    paths = {form: path for form, path in paths.items() if form in artifacts or form == "record"}
    evaluation = evaluate(prepared, artifacts, prepared.data, target)
    record = CalibrationRecord(
        model=Path(source.name).name if source.path is not None else source.name, frontend=source.frontend,
        model_sha256=prepared.fingerprint, opset=prepared.opset, passes=prepared.passes,
        options={"method": method, "formats": list(formats), "per_tensor": per_tensor,
                 "exclude": sorted(options.exclude), "batch_size": batch_size, "skip_bad_samples": skip_bad_samples,
                 "target": target, "float_tflite": float_tflite, "bias_correction": bias_correction,
                 "onnx_activations": onnx_activations, "io": io, "recurrent_cells": recurrent_cells,
                 **({"int16": sorted(options.int16)} if options.int16 else {})},
        calibration={"samples": total.samples, "bad_samples": total.bad_samples}, plan=plan_dict(decided),
        tflite=tflite_record(artifacts).get("tflite"),
        static_shapes=prepared.shapes.record() if prepared.shapes is not None else None,
        warnings=warnings + (low_sqnr_warnings(evaluation, Path(source.name).name,
                                               worst_tensors(prepared, decided, artifacts, prepared.data))
                             if wanted is None and is_low(evaluation) else []),
        evaluation=evaluation,
        files={form: path.name for form, path in paths.items() if form != "record"}, budget=budget_record,
        bias_correction=bias_record,
    )
    if output_dir is None:  # nothing written: the files are returned
        text, contents = file_contents(paths, artifacts, record)
        return QuantizeResult({}, record.as_dict(), decided, [], record.document(),
                              {**contents, "record": text.encode()})
    drawn = write(paths, artifacts, record, (decided, total) if plots else None)
    return QuantizeResult(paths, record.as_dict(), decided, drawn, record.document())



def _planned(prepared: Prepared, stats: CalibrationStats, options: PlanOptions, budget: Budget | None,
             eval_data: str | Path | None, samples: int, batch_size: int,
             progress: bool, precision: str, check: TargetCheck | None = None
             ) -> tuple[QuantPlan, dict[str, Any] | None]:
    """Stage 3, with ``budget``: the plan with the fewest groups promoted to ``precision`` that meet it (and the
    record of why); ``check``: an int16 promotion the target cannot run goes float."""
    if budget is None:
        return plan(prepared, stats, options), None
    data = calibration_data(prepared, eval_data) if eval_data is not None else prepared.data
    if data is None:
        raise UsageError("--budget needs samples to measure on: give --eval (or --calib) data")
    batches = first_batches(data, samples, batch_size, prepared)
    return plan_to_budget(prepared, stats.tensors, options, budget, batches, precision=precision, progress=progress,
                          target_check=check)


def correct_biases(prepared: Prepared, decided: QuantPlan, samples: int = BIAS_SAMPLES, batch_size: int = 8,
                   progress: bool = False) -> tuple[QuantPlan, dict[str, Any]]:
    """Stage 3b: ``decided`` with each quantized bias minus its layer's mean int8-vs-float output error on the first
    ``samples`` calibration samples (level by level), and the record of what moved; unchanged without samples."""
    batches = first_batches(prepared.data, samples, batch_size, prepared) if prepared.data is not None else []
    return bias_correction.correct_biases(prepared, decided, batches, progress)


def _bias_corrected(prepared: Prepared, decided: QuantPlan, samples: int, batch_size: int, progress: bool,
                    budgeted: tuple[Budget | None, dict[str, Any] | None, str | Path | None, int],
                    ) -> tuple[QuantPlan, dict[str, Any]]:
    """Stage 3b: ``decided`` with its biases corrected on the first ``samples`` calibration samples (when there
    are samples). Under a budget the corrected plan is measured again, and kept only if the budget still holds."""
    if not samples:
        return decided, {"applied": False, "why": "off (--bias-correction turns it on)", "skipped": []}
    corrected, record = correct_biases(prepared, decided, samples, batch_size, progress)
    budget, budget_record, eval_data, budget_samples = budgeted
    if budget is None or budget_record is None or not record["applied"] or not budget.on_outputs:
        return corrected, record
    data = calibration_data(prepared, eval_data) if eval_data is not None else prepared.data
    value = budget.value(measure_plan(prepared, corrected, first_batches(data, budget_samples, batch_size, prepared),
                                      budget))
    if value >= budget.threshold or (not budget_record["met"] and value >= budget_record["achieved"]):
        budget_record.update(achieved=value, met=value >= budget.threshold)
        return corrected, record
    why = (f"left out: with it {budget.measure} measured {value:.4g}, below --budget {budget.text} (without it "
           f"{budget_record['achieved']:.4g})")
    return decided, {"applied": False, "why": why, "samples": record["samples"], "skipped": record["skipped"]}


def promotion_precision(promote: str, formats: Sequence[str], int16_requested: bool, target: str = "litert") -> str:
    """What ``--budget`` promotes to: ``auto`` is ``int16`` unless a .tflite is written for a target that runs no
    16x8 op (its profile's ``int16_ops``) or whose fast path takes none (``int16_activations`` false: LiteRT's
    XNNPACK delegate), then ``float``. A request no form can carry is a usage error, before any work."""
    if promote not in ("auto", *PRECISIONS):
        raise UsageError(f"unknown promotion {promote!r}; choose from auto, {', '.join(PRECISIONS)}")
    profile = target_profile(target) if "tflite" in formats else None
    tflite = profile is not None and not profile.int16_ops
    if tflite and (promote == "int16" or int16_requested):
        asked = "--promote int16" if promote == "int16" else "--int16"
        raise UsageError(f"{asked} makes int16 grids, and target {target} runs no 16x8 op (its profile lists no "
                         "int16_ops); write --format onnx-qdq,onnx-table, pick a target that does (litert, tflm), "
                         "or promote to float (--promote float)")
    if promote == "auto":  # float where the .tflite target's fast path takes no int16 (XNNPACK) or none runs
        return "float" if profile is not None and (tflite or not profile.int16_activations) else "int16"
    return promote


def profile_device(
    model: str | Path, device: str | Path, baseline: str | Path, data: str | Path, *, per_layer: bool = False,
    max_samples: int | None = None, latency_runs: int | None = None, skip_bad_samples: bool = False,
    json_path: str | Path | None = None, html_path: str | Path | None = None, metrics_path: str | Path | None = None,
    model_explorer: str | Path | None = None, progress: bool = False, max_array_bytes: int | None = None,
) -> ProfileReport:
    """``edgeact profile-device``: run the int8 ``model`` (.tflite or ONNX) on ``device`` (a name from
    :func:`devices`, or a profile ``.toml``) and the float ``baseline`` on ``data``; per output SQNR, cosine, max
    error, top-1 and emulator agreement, per layer with ``per_layer``, hazards, latency. ``json_path`` /
    ``html_path`` / ``metrics_path`` (OpenMetrics text) write the reports, ``model_explorer`` (with ``per_layer``)
    Model Explorer node data beside that path (all or none appear; inputs are never overwritten).

    >>> report = profile_device("out/model.int8.tflite", "tflm", "model.onnx", "eval.npz")  # doctest: +SKIP
    >>> {name: output.sqnr_db for name, output in report.outputs.items()}  # doctest: +SKIP
    {'logits': 41.9}
    """
    from edgeact.profiler.profile import profile_device as run_profile
    from edgeact.profiler.report import write_reports

    if model_explorer is not None and not per_layer:
        raise UsageError("model_explorer overlays per-layer numbers: pass per_layer=True")
    overlays = node_data_paths(Path(model_explorer), list(QUANTITIES)) if model_explorer is not None else {}
    destinations = {"--json": json_path, "--html": html_path, "--metrics": metrics_path,
                    **{f"--model-explorer ({q})": p for q, p in overlays.items()}}
    check_outputs(destinations, user_files(model, baseline, data))
    check_writable(destinations)
    report = run_profile(model, device, baseline, data, per_layer=per_layer, max_samples=max_samples,
                         latency_runs=latency_runs, skip_bad_samples=skip_bad_samples, progress=progress,
                         max_array_bytes=max_array_bytes)
    write_reports(report, *(Path(p) if p else None for p in (json_path, html_path, metrics_path, model_explorer)))
    return report


def gate(report: ProfileReport | str | Path, baseline: ProfileReport | str | Path, *,
         config: str | Path | None = None, allow_mismatch: bool = False, metrics_path: str | Path | None = None,
         **thresholds: Any) -> GateResult:
    """``edgeact gate``: every check of ``report`` against ``baseline`` (each a :func:`profile_device` result or a
    report's JSON path). ``thresholds``: ``max_sqnr_drop``, ``min_top1_agreement``, ``max_latency_ratio``,
    ``per_layer``, ``max_layer_sqnr_drop``, ``max_activation_error_growth``, ``max_saturation_increase`` (over
    ``[tool.edgeact.gate]`` of ./pyproject.toml, or the ``config`` TOML). A report of another device, schema or
    float model is refused (:class:`~edgeact.errors.GateInputError`) unless ``allow_mismatch``. ``metrics_path``:
    also write the report's numbers and the verdict as OpenMetrics text.

    >>> result = gate("report.json", "baselines/model.json", max_sqnr_drop=0.3)  # doctest: +SKIP
    >>> result.passed, [check.message for check in result.failures]  # doctest: +SKIP
    (True, [])
    """
    from edgeact.gating import gate as run_gate
    from edgeact.gating import load_report, thresholds_from, write_gate_outputs

    if metrics_path is not None:  # never onto the report, the baseline or the settings
        check_outputs({"metrics_path": metrics_path}, user_files(*(x for x in (report, baseline, config)
                                                                  if isinstance(x, str | Path))))
        check_writable({"metrics_path": metrics_path})

    def loaded(given: ProfileReport | str | Path, role: str) -> ProfileReport:
        return load_report(given, role) if isinstance(given, str | Path) else given

    labels = tuple(str(given) if isinstance(given, str | Path) else f"the {role}"
                   for given, role in ((report, "report"), (baseline, "baseline")))
    checked = loaded(report, "report")
    result = run_gate(checked, loaded(baseline, "baseline"), thresholds_from(config, **thresholds), allow_mismatch,
                      labels)  # type: ignore[arg-type]
    if metrics_path is not None:
        write_gate_outputs(result, checked, None, None, "", Path(metrics_path))
    return result


def drift(
    model: str | Path | bytes | Any,
    data: str | Path,
    record: str | Path,
    *,
    calib: str | Path | None = None,
    stats: Sequence[str | Path] = (),
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    batch_size: int = 8,
    json_path: str | Path | None = None,
    metrics_path: str | Path | None = None,
    progress: bool = False,
    **thresholds: float,
) -> DriftReport:
    """``edgeact drift``: does ``data`` (new inputs: an .npz or a folder of them) still fit the grids the calibration
    ``record`` holds for the float ``model``? Its statistics, by the same observers, against the calibration
    statistics (``stats`` files from ``edgeact calibrate --stats-out``, or ``calib`` streamed again): per tensor the
    share of values beyond its grid and a PSI over the calibration data's deciles, per activation its saturation
    rate, NaN/Inf counts. The new data is counted exactly; ``calib`` is too, while ``stats`` give the calibration
    shares (and the PSI) read off histograms.
    ``thresholds``: ``max_clipped_increase`` (0.01), ``max_saturation_increase`` (0.05), ``max_psi`` (0.25),
    ``max_nonfinite`` (0). ``report.drifted`` says whether one was crossed, ``report.findings`` which.

    >>> report = drift("model.onnx", "today/", "out/model.calibration.json", calib="calib/")  # doctest: +SKIP
    >>> report.drifted, report.findings[:1]  # doctest: +SKIP
    (False, [])
    """
    limits = DriftThresholds(**_drift_limits(thresholds))
    if calib is None and not stats:
        raise UsageError("drift compares with the calibration statistics: give calib= (the calibration data) or "
                         "stats= (files from edgeact calibrate --stats-out)")
    destinations = {"--json": json_path, "--metrics": metrics_path}
    check_outputs(destinations, user_files(model, data, record, calib, *stats))
    check_writable(destinations)
    document = read_record(record)
    prepared = prepare(model, data, input_shapes=input_shapes, static=document.static_shapes is not None,
                       skip_bad_samples=True)  # a NaN/Inf sample is a finding, not a refusal
    if prepared.fingerprint != document.model_sha256:
        raise CalibrationDataError(
            f"{record}: made for another model than {prepared.source} as edgeact prepares it (model_sha256 "
            f"{document.model_sha256[:12]}, this model {prepared.fingerprint[:12]}; the same --input-shape as "
            "quantize's, if it had one)")
    calib_data = calibration_data(prepared, calib) if calib is not None else None
    calibration = statistics(prepared, calib_data, stats, batch_size, progress)  # its deciles cut the counts
    cuts = plan_cuts(document, calibration, prepared.view)
    edges = {name: cut.edges for name, cut in cuts.items()}
    new = bucket_counts(prepared, prepared.data, edges, batch_size, progress)
    before = bucket_counts(prepared, calib_data, edges, batch_size, progress) if calib_data is not None else None
    new_stats = statistics(prepared, prepared.data, batch_size=batch_size) if before is None else None
    summary = prepared.data.summary
    report = drift_report(document, calibration, cuts, new, before, summary.samples, limits, summary.bad_samples,
                          new_stats)
    written = OutputSet()
    if json_path is not None:
        written.add_text(json_path, json.dumps(report.to_json(), indent=1, sort_keys=True) + "\n")
    if metrics_path is not None:
        written.add_text(metrics_path, metrics_document(drift_families(report)))
    written.commit()
    return report


def _drift_limits(given: dict[str, float]) -> dict[str, float]:
    known = {f.name for f in dataclass_fields(DriftThresholds)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise UsageError(f"unknown drift threshold(s) {unknown}; known: {', '.join(sorted(known))}")
    for name, value in given.items():
        share = name in ("max_clipped_increase", "max_saturation_increase")
        count = name == "max_nonfinite"
        if (not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or value < 0
                or (share and value > 1) or (count and value != int(value))):
            kind = "a share in [0, 1]" if share else "a whole number >= 0" if count else "a number >= 0"
            raise UsageError(f"--{name.replace('_', '-')} must be {kind}, got {value!r}")
    return given


def devices() -> list[DeviceSummary]:
    """The built-in device profiles (``edgeact devices``): name and the names ``--target`` also takes for it, the
    runtime and model format, the emulator's arithmetic, what it runs on int16 activations, and whether its fast
    path takes float islands. A profile of your own is a ``.toml`` path wherever a device name goes.

    >>> [d.name for d in devices() if d.model_format == "onnx"]
    ['onnxruntime-cpu']
    """
    return device_summaries(ALIASES)


def _metric_of(metric: str | Metric | None) -> tuple[Metric | None, str | None]:
    if metric is None:
        return None, None
    return resolve_metric(metric)


def sensitivity(
    model: str | Path | bytes | Any,
    calib: str | Path | None = None,
    *,
    eval_data: str | Path | None = None,
    stats: Sequence[str | Path] = (),
    samples: int = SAMPLES,
    metric: str | Metric | None = None,
    method: str = "auto",
    target: str = "litert",
    per_tensor: bool = False,
    exclude: Iterable[str] = (),
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    batch_size: int = 8,
    segments: int = SEGMENTS,
    json_path: str | Path | None = None,
    html_path: str | Path | None = None,
    progress: bool = False,
    alternative: str = "float",
    recurrent_cells: str = "auto",
) -> SensitivityReport:
    """Per tensor group of the int8 plan ``quantize`` would make: output SQNR (and ``metric``: ``top1``,
    ``cosine`` or a callable ``f(reference, result) -> float``, higher is better, on outputs concatenated over
    samples) with only that group int8, and with every group but it int8. Trials run on the first ``samples`` of
    ``eval_data`` (default: the calibration data) and rerun only the graph downstream of their group.
    ``alternative``: what a group becomes when promoted — ``float``, or ``int16`` (A16W8: an int16 grid, weights
    still int8; the other groups then sit on int16 grids in the "only this group int8" trials).
    ``recurrent_cells``: as for :func:`quantize` (an unrolled LSTM/GRU's gates and state: int16, float or int8).
    ``json_path`` / ``html_path``: write the report (both or neither appear)."""
    if alternative not in PRECISIONS:
        raise UsageError(f"unknown alternative {alternative!r}; choose from {', '.join(PRECISIONS)}")
    chosen, metric_name = _metric_of(metric)
    outputs = {"--json": json_path, "--html": html_path}
    check_outputs(outputs, user_files(model, calib, eval_data, *stats))
    check_writable(outputs)
    options = PlanOptions(method=method, per_tensor=per_tensor, exclude=frozenset(exclude), target=target,
                          recurrent_cells=recurrent_cells)
    prepared = prepare(model, calib, input_shapes=input_shapes)
    total = statistics(prepared, prepared.data, stats, batch_size, progress)
    decided = plan(prepared, total, options)
    data = calibration_data(prepared, eval_data) if eval_data is not None else prepared.data
    if data is None:
        raise UsageError("give evaluation data (--eval) or calibration data (--calib) to run the trials on")
    batches = first_batches(data, samples, batch_size, prepared)
    wide = int16_alternative(prepared.view, total.tensors, options, decided) if alternative == "int16" else None
    report = analyse(prepared, decided, batches, metric=chosen, metric_name=metric_name, segments=segments,
                     method=method, progress=progress, alternative=alternative,
                     trials=trials_for(prepared, decided, batches, segments, alternative=wide))
    written = OutputSet()
    if html_path is not None:
        written.add_text(html_path, html_page(report))
    if json_path is not None:
        written.add_text(json_path, json_text(report))
    written.commit()
    return report
