"""``edgeact calibrate`` and ``edgeact quantize``: parse, call :mod:`edgeact.api`, print a summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from edgeact import api
from edgeact.analysis.sensitivity import SAMPLES
from edgeact.api import BIAS_SAMPLES, DEFAULT_FORMATS, FORMATS
from edgeact.calibration.ranges import METHODS
from edgeact.cli_support import GreedyOption, max_array_bytes_option, recurrent_cells_option, run_api, warn_ignored
from edgeact.documents.calibration_record import CalibrationRecordDocument
from edgeact.documents.typed_json import to_json
from edgeact.exporters.tflite.targets import tflite_targets


class FormatList(click.ParamType):
    """Comma-separated export formats."""

    name = "FORMATS"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        forms = tuple(part.strip() for part in str(value).split(",") if part.strip())
        unknown = [f for f in forms if f not in FORMATS]
        if unknown or not forms:
            self.fail(f"unknown format(s) {unknown or value!r}; choose from {', '.join(FORMATS)}", param, ctx)
        return forms


class TargetName(click.ParamType):
    """A built-in TFLite target name, or a device profile ``.toml`` path (checked by the API)."""

    name = "NAME|PROFILE.toml"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if text not in tflite_targets() and not text.endswith(".toml"):
            self.fail(f"{text!r} is not one of {', '.join(tflite_targets())}, nor a profile file ending in .toml",
                      param, ctx)
        return text


class InputShape(click.ParamType):
    """``name=1x3x32x32``: an example input shape for exporting a PyTorch model."""

    name = "NAME=DIMS"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, tuple]:
        if isinstance(value, tuple):
            return value
        name, sep, dims = str(value).partition("=")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
            if not sep or not name or any(d <= 0 for d in shape):
                raise ValueError
        except ValueError:
            self.fail(f"expected NAME=DIMS such as x=1x3x32x32, got {value!r}", param, ctx)
        return name, shape



CALIBRATE_EPILOG = """\b
Examples:
  edgeact calibrate model.onnx --calib shard0.npz --stats-out shard0.stats.json
  edgeact calibrate model.onnx --calib calib_dir/ --stats-out all.stats.json --batch-size 32

\b
Data: an .npz keyed by the model's input names (samples on axis 0), or a folder of them.
The statistics are histograms in fixed memory; merge shards with 'edgeact quantize --stats a.json b.json'.
"""

QUANTIZE_EPILOG = """\b
Examples:
  edgeact quantize model.onnx --calib calib.npz -o out/
  edgeact quantize model.onnx --stats shard0.json shard1.json --format onnx-table
  edgeact quantize model.onnx --calib calib.npz --method percentile --exclude Softmax attn/out
  edgeact quantize model.onnx --calib calib.npz --format tflite --target tflm --float-tflite
  edgeact quantize face_detector.tflite --calib faces/ -o out/       # float .tflite in, int8 .tflite out (NHWC data)
  edgeact quantize my_models.py:build_net --calib calib.npz          # PyTorch: factory returning an nn.Module
  edgeact quantize net.pt2 --input-shape x=1x3x32x32 --calib calib.npz  # ExportedProgram (or TorchScript .pt)
  edgeact quantize det.onnx --calib feeds/ --format tflite --input-shape images=1x3x416x416  # dynamic H/W
  edgeact quantize model.onnx --calib calib.npz --budget sqnr>=30     # fewest int16/float groups for 30 dB
  edgeact quantize clf.onnx --calib calib.npz --eval eval.npz --budget top1>=0.99
  edgeact quantize ocr.onnx --calib c/ --eval e/ --budget-samples 100 --metric my_metrics.py:text --budget text>=0.98
  edgeact quantize model.onnx --calib calib.npz --budget int8>=0.9    # 90% of MAC ops int8, the rest where it pays
  edgeact quantize model.onnx --calib calib.npz --int16 LayerNormalization Softmax   # A16W8 for those ops

\b
Writes OUTDIR/<name>.int8.qdq.onnx, OUTDIR/<name>.int8.table.onnx and OUTDIR/<name>.calibration.json
(for a .tflite MODEL, or with --format tflite: OUTDIR/<name>.int8.tflite; with --float-tflite:
OUTDIR/<name>.fp32.tflite).
\b
Models: ONNX opsets 13-21 (7-12 are upgraded), float TFLite (float16 weights too; README: "Float TFLite in"
        lists the builtins read), or PyTorch. Any single-input chain of elementwise ops
        (an unknown GELU/SiLU/hardswish spelling, exp, log(clip(x))) becomes one exact int8 table.
        A file.py:factory / package.module:factory MODEL imports and runs that Python code (the factory is called
        and must return a torch.nn.Module; standard library callables are refused): only name code you trust.
Data:   an .npz keyed by input names, or a folder of them (a folder of complete feeds is taken as it is);
        batch axes come from the model's dims (a state [2, N, 128] batches on axis 1).
Methods: auto (the input range that minimises the error after the activation(s) reading a grid, MSE elsewhere),
         minmax, percentile (99.99), entropy (KL), mse.
Formats: onnx-qdq   QuantizeLinear/DequantizeLinear around standard ops (onnxruntime, TensorRT, QNN, OpenVINO)
         onnx-table every activation as an int8 Gather table (exactly edgeact's table on any ONNX runtime)
         tflite     int8 .tflite without TensorFlow: builtins where the target computes edgeact's table exactly,
                    else CAST -> ADD -> GATHER tables; float DEQUANTIZE/QUANTIZE islands for float-only ops
"""


@click.command(epilog=CALIBRATE_EPILOG)
@click.argument("model", type=str)
@click.option("--calib", required=True, type=click.Path(path_type=Path), help="Calibration .npz or folder of .npz.")
@click.option("--stats-out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the statistics (JSON).")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1),
              help="Samples per onnxruntime run (when the model's batch axis is dynamic).")
@click.option("--skip-bad-samples", is_flag=True, help="Skip samples with NaN/Inf instead of refusing the data.")
@click.option("--input-shape", "input_shapes", multiple=True, type=InputShape(),
              help="Fix dynamic dims NAME=1x3x32x32 first, as 'quantize --input-shape' (or a TFLite export) does; "
                   "needed for statistics that merge into such a run.")
@max_array_bytes_option
def calibrate(model: str, calib: Path, stats_out: Path, batch_size: int, skip_bad_samples: bool,
              input_shapes: tuple[tuple[str, tuple], ...], max_array_bytes: int | None) -> None:
    """Collect MODEL's tensor statistics over calibration data (one shard), for merging later.

    MODEL is taken as 'edgeact quantize' takes it: a file.py:factory / package.module:factory MODEL imports and runs
    that Python code (the factory must return a torch.nn.Module).
    """
    stats = run_api(lambda: api.calibrate(model, calib, batch_size=batch_size, skip_bad_samples=skip_bad_samples,
                                          stats_out=stats_out, progress=True, input_shapes=dict(input_shapes) or None,
                                          max_array_bytes=max_array_bytes))
    click.echo(f"{len(stats.tensors)} tensors observed over {stats.samples} samples"
               + (f" ({len(stats.bad_samples)} bad samples skipped)" if stats.bad_samples else ""))
    click.echo(f"statistics written to {stats_out}")


@click.command(epilog=QUANTIZE_EPILOG)
@click.argument("model", type=str)
@click.option("--input-shape", "input_shapes", multiple=True, type=InputShape(),
              help="Static input shape NAME=1x3x32x32 (repeatable): fixes the model's dynamic dims (all but the "
                   "batch) for every output, so a TFLite export is possible; PyTorch models take it as their example "
                   "input. With --format tflite and no --input-shape, the first calibration feed fixes them.")
@click.option("--calib", type=click.Path(path_type=Path), help="Calibration .npz or folder of .npz.")
@click.option("--stats", cls=GreedyOption, multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Saved statistics to merge (from 'edgeact calibrate'); takes several files.")
@click.option("--method", type=click.Choice(list(METHODS)), default="auto", show_default=True,
              help="How tensor ranges are chosen.")
@click.option("--format", "formats", type=FormatList(), default=None,
              help=f"Comma-separated output forms: {', '.join(FORMATS)}.  [default: tflite for a .tflite MODEL, "
                   f"else {','.join(DEFAULT_FORMATS)}]")
@click.option("--target", type=TargetName(), default="litert", show_default=True,
              help=f"TFLite target device: {', '.join(tflite_targets())} (litert = litert-xnnpack), or a device "
                   "profile .toml; builtins only where its profile says they compute edgeact's table exactly, "
                   "tables elsewhere.")
@click.option("--float-tflite", is_flag=True, help="Also write the float32 .tflite baseline (<name>.fp32.tflite).")
@click.option("--per-tensor", is_flag=True, help="One weight scale per tensor instead of per output channel.")
@click.option("--exclude", cls=GreedyOption, multiple=True,
              help="Node names or op types to keep float; takes several.")
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder for the outputs.")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1),
              help="Samples per onnxruntime run (when the model's batch axis is dynamic).")
@click.option("--skip-bad-samples", is_flag=True, help="Skip samples with NaN/Inf instead of refusing the data.")
@click.option("--plots", is_flag=True,
              help="Draw each activation's nonlinear quantization map to OUTDIR/<name>.plots/<node>.png.")
@click.option("--json", "as_json", is_flag=True, help="Print the calibration record's summary as JSON.")
@click.option("--budget", metavar="MEASURE>=N",
              help="Error budget: promote (to int16 or float, see --promote) the fewest, most sensitive tensor groups "
                   "so that it holds, e.g. "
                   "sqnr>=30 (output SQNR, dB), top1>=0.99, cosine>=0.995 (see 'edgeact sensitivity'); or "
                   "int8>=0.9: keep at least that share of MAC ops int8 and promote the most sensitive groups "
                   "within the rest.")
@click.option("--metric", metavar="NAME|FILE.py:FUNC",
              help="The task metric --budget NAME>=X measures: top1, cosine, or your Python function as "
                   "path/to/file.py:function or package.module:function (imported and run): f(reference, result) -> "
                   "float, higher is better, each a dict of output name -> that output of every sample stacked on "
                   "axis 0; --budget then names the function (or 'metric'), e.g. --budget text>=0.98.")
@click.option("--eval", "eval_data", type=click.Path(path_type=Path),
              help="Data --budget is measured on (default: the calibration data).")
@click.option("--budget-samples", default=SAMPLES, show_default=True, type=click.IntRange(min=1),
              help="Samples --budget is measured on (groups are ranked by trials on the first 16 of them; give a "
                   "task metric that needs many samples to resolve, like 98% text agreement, 64 or more).")
@click.option("--promote", type=click.Choice(["auto", "int16", "float"]), default="auto", show_default=True,
              help="What --budget promotes a group to: int16 (A16W8: int16 grid, int8 weights, every node still "
                   "quantized; a .tflite runs it as 16x8, and a group whose ops the target has no 16x8 kernel for "
                   "goes float, saying why), float, or auto (int16; float for a .tflite target that runs no 16x8 op or "
                   "whose fast path takes none, as LiteRT's default XNNPACK).")
@click.option("--int16", "int16", cls=GreedyOption, multiple=True,
              help="Node names, op types or activations to run with int16 activations (A16W8; TFLite: 16x8 "
                   "kernels): every value they read or write gets an int16 grid; takes several.")
@click.option("--bias-correction/--no-bias-correction", default=False, show_default=True,
              help="Fold each quantized Conv/Gemm's mean int8-vs-float output error, measured level by level on the "
                   "first --bias-samples calibration samples, into its bias (the record's bias_correction says what "
                   "moved). Raises output SQNR on the zoo, but moved detector scores (more false detections) and "
                   "cost OCR text agreement: check your task metric.")
@click.option("--bias-samples", default=BIAS_SAMPLES, show_default=True, type=click.IntRange(min=1),
              help="Calibration samples bias correction measures on (fewer: faster, noisier).")
@click.option("--onnx-activations", type=click.Choice(["auto", "uint8", "int8"]), default="auto", show_default=True,
              help="Integer type of 8-bit activation codes in the ONNX forms (the grids are the same: a uint8 code is "
                   "the int8 code + 128). auto: what onnxruntime's CPU kernels run fast, uint8 activations with int8 "
                   "weights (QLinearConv, QLinearMatMul, ...); with int8 most ops run dequantize -> float -> quantize. "
                   "int8: for runtimes that want signed activations (TensorRT).")
@click.option("--io", "io", type=click.Choice(["float", "int8"]), default="float", show_default=True,
              help="Inputs and outputs of the .tflite: float (float32, quantized inside the model) or int8 (each one "
                   "on an int8 grid takes and gives int8 codes, as MCU and NPU pipelines feed them; the record's "
                   "tflite.io and the summary give each grid: code = round(x / scale) + zero_point, ties away from "
                   "zero, clamped to [-128, 127]). An input or output without an int8 grid stays float32, with a "
                   "warning saying why.")
@recurrent_cells_option
@max_array_bytes_option
@click.pass_context
def quantize(ctx: click.Context, model: str, input_shapes: tuple[tuple[str, tuple], ...], calib: Path | None,
             stats: tuple[Path, ...], method: str, formats: tuple[str, ...],
             target: str, float_tflite: bool, per_tensor: bool, exclude: tuple[str, ...], output_dir: Path,
             batch_size: int, skip_bad_samples: bool, plots: bool, as_json: bool, budget: str | None,
             eval_data: Path | None, budget_samples: int, promote: str, int16: tuple[str, ...],
             bias_correction: bool, bias_samples: int, onnx_activations: str, io: str, recurrent_cells: str,
             max_array_bytes: int | None, metric: str | None) -> None:
    """Quantize MODEL (ONNX, float TFLite, or PyTorch) to int8 with exact activation tables, and write the
    calibration record.

    MODEL is an .onnx file, a float32 (or float16-weight) .tflite, a TorchScript .pt / ExportedProgram .pt2, or a
    PyTorch factory path/to/file.py:factory or package.module:factory. A .tflite is read into the same graph (its
    NHWC inputs and outputs keep their layout: give data as the .tflite takes it) and checked against LiteRT before
    it is calibrated. A factory MODEL runs Python code: edgeact imports that file or module and calls the factory,
    which must return a torch.nn.Module.
    """
    if calib is None and not stats:
        raise click.UsageError("give calibration data with --calib, or saved statistics with --stats")
    formats = formats or api.default_formats(model)
    writes_tflite = "tflite" in formats or float_tflite
    warn_ignored(ctx, {
        "target": "" if writes_tflite else "it chooses the TFLite target; add --format tflite (or --float-tflite)",
        "batch_size": "" if calib else "it applies to --calib data; saved --stats are merged as they are",
        "skip_bad_samples": "" if calib else "it applies to --calib data; saved --stats are merged as they are",
        "max_array_bytes": "" if calib else "it applies to --calib data; saved --stats are merged as they are",
        "eval_data": "" if budget else "it is the data --budget is measured on; add --budget",
        "budget_samples": "" if budget else "it applies to --budget",
        "promote": "" if budget else "it applies to --budget",
        "metric": "" if budget else "it is what --budget measures; add --budget",
        "bias_correction": "" if calib or not bias_correction else "it measures on --calib samples; saved --stats "
                           "hold none",
        "bias_samples": "" if calib and bias_correction else "it applies to bias correction on --calib samples",
        "onnx_activations": "" if any(f.startswith("onnx") for f in formats) else "it applies to the ONNX forms",
        "io": "" if "tflite" in formats else "it applies to the int8 .tflite; add --format tflite",
    })
    result = run_api(lambda: api.quantize(
        model, calib, stats=stats, method=method, formats=formats, target=target, float_tflite=float_tflite,
        per_tensor=per_tensor, exclude=exclude,
        output_dir=output_dir, batch_size=batch_size, skip_bad_samples=skip_bad_samples, plots=plots,
        input_shapes=dict(input_shapes) or None, max_array_bytes=max_array_bytes, budget=budget,
        eval_data=eval_data, budget_samples=budget_samples, promote=promote, int16=int16,
        bias_correction=bias_correction, bias_samples=bias_samples, metric=metric, onnx_activations=onnx_activations,
        io=io, recurrent_cells=recurrent_cells, progress=not as_json))
    if as_json:
        click.echo(json.dumps(summary_dict(result.document), sort_keys=True))
        return
    click.echo(summary_text(result.document))
    for label, path in result.paths.items():
        click.echo(f"  {label:<11} {path}")
    if result.plots:
        click.echo(f"  plots       {len(result.plots)} in {result.plots[0].parent}")


def summary_dict(record: CalibrationRecordDocument) -> dict[str, Any]:
    """The ``--json`` summary: counts, fallbacks, hazards, the evaluation and the files."""
    return {
        "quantized_nodes": len(record.quantized_nodes),
        "fallbacks": [{"node": f.node, "op_type": f.op_type, "reason": f.reason} for f in record.fallbacks],
        "hazards": record.hazards,
        "evaluation": to_json(record.evaluation),
        "files": record.files,
    }


def summary_text(record: CalibrationRecordDocument) -> str:
    """What a quantize run did, for the terminal: counts, warnings, fallbacks, the worst activations, the lowering,
    static shapes and SQNR per form."""
    calibration = record.calibration
    wide = sum(1 for tensor in record.tensors.values() if tensor.dtype == "int16")
    lines = [
        f"{record.model}: {len(record.quantized_nodes)} ops "
        + (f"quantized ({wide} tensors on int16 grids: A16W8)" if wide else "int8")
        + f", {len(record.fallbacks)} kept float"
        + (f", {len(record.integer_nodes)} shape/integer ops" if record.integer_nodes else "") + "; "
        f"{calibration.samples} calibration samples"
        + (f" ({len(calibration.bad_samples)} skipped)" if calibration.bad_samples else ""),
    ]
    if "upgraded_from" in record.opset:
        lines.append(f"  opset  upgraded from {record.opset['upgraded_from']} to {record.opset['opset']} "
                     "(onnx.version_converter)")
    lines += [f"  warning {warning}" for warning in record.warnings]
    promoted = {node for p in record.budget.promotions for node in p.nodes} if record.budget else set()
    lines += _fallback_lines([f for f in record.fallbacks if f.node not in promoted])
    lines += _budget_lines(record) + _bias_lines(record)
    lines += [f"  hazard {hazard}" for hazard in record.hazards]  # what no fallback says (a fallback has its reason)
    return "\n".join(lines + _activation_lines(record) + _output_lines(record))


SHOWN_PER_REASON = 3  # nodes named on the terminal per fallback reason; the record lists every one


def _fallback_lines(fallbacks: list) -> list[str]:
    """One line per float node, or one per reason that many nodes share (an unrolled LSTM's cells)."""
    by_reason: dict[str, list] = {}
    for fallback in fallbacks:
        by_reason.setdefault(fallback.reason, []).append(fallback)
    lines = []
    for reason, nodes in by_reason.items():
        if len(nodes) <= SHOWN_PER_REASON:
            lines += [f"  float  {f.node} ({f.op_type}): {reason}" for f in nodes]
            continue
        named = ", ".join(f"{f.node} ({f.op_type})" for f in nodes[:SHOWN_PER_REASON])
        lines.append(f"  float  {len(nodes)} nodes ({named}, ... : the record's fallbacks list all): {reason}")
    return lines


def _bias_lines(record: CalibrationRecordDocument) -> list[str]:
    corrected = record.bias_correction
    if corrected is None or record.options.bias_correction is False:
        return []
    if not corrected.applied:
        return [f"  bias correction not applied: {corrected.why}"]
    sqnr = corrected.worst_output_sqnr_db
    measured = (f", worst output SQNR {sqnr.before:.1f} -> {sqnr.after:.1f} dB (onnx-qdq arithmetic, on those "
                "samples)" if sqnr is not None else "")
    lines = [f"  bias correction: {len(corrected.biases or [])} biases in {corrected.levels} levels on "
             f"{corrected.samples} calibration samples{measured}"]
    if sqnr is not None and sqnr.after < sqnr.before:
        lines.append("  warning bias correction lowered the worst output's SQNR on its samples; check your task "
                     "metric, or quantize without --bias-correction")
    return lines


def _budget_lines(record: CalibrationRecordDocument) -> list[str]:
    budget = record.budget
    if budget is None:
        return []
    share = budget.int8_share
    wide = f", 16x8 {share.int16_mac_ops}" if share.int16_mac_ops else ""
    kinds = sorted({p.precision for p in budget.promotions})
    measure = "{:.0%}" if budget.budget.startswith("int8>=") else "{:.4g}"  # a share of MAC ops, or a measure
    lines = [f"  budget {budget.budget}: {'met' if budget.met else 'NOT met'} ({measure.format(budget.full_int8)} "
             f"with every group int8 -> {measure.format(budget.achieved)}; {budget.samples} samples), "
             f"{len(budget.promotions)} group(s) promoted"
             f"{' to ' + '/'.join(kinds) if kinds else ''}; int8 MAC ops {share.int8_mac_ops}/{share.mac_ops} "
             f"({share.share:.0%}){wide}"]
    lines += [f"  budget note: {budget.note}"] if budget.note else []
    sqnr = budget.output_sqnr_db
    lines += [f"  budget worst output SQNR {sqnr.full_int8:.1f} dB with every group int8 -> {sqnr.achieved:.1f} dB "
              "(before bias correction)"] if sqnr else []
    lines += [f"  budget {p.precision:<5} group {p.group} (recovers {p.recovered:.3g} alone): {', '.join(p.nodes[:4])}"
              + (f" +{len(p.nodes) - 4} more" if len(p.nodes) > 4 else "")
              + (f" ({p.why})" if p.why else "")
              for p in budget.promotions[:10]]
    if len(budget.promotions) > 10:
        lines.append(f"  budget ... {len(budget.promotions) - 10} more groups (see the record's budget)")
    return lines


def _activation_lines(record: CalibrationRecordDocument) -> list[str]:
    worst = sorted(record.activations, key=lambda a: -a.error.rms_error / max(a.error.rms_floor, 1e-30))
    lines = []
    if worst:
        lines.append(f"  {'activation':<28}{'function':<12}{'input range':>20}{'rms err':>10}{'floor':>10}{'sat.':>8}")
    for act in worst[:8]:
        sat = "-" if act.saturation_rate is None else f"{act.saturation_rate:.1%}"
        span = f"[{act.input_range.lo:.3g}, {act.input_range.hi:.3g}]"
        lines.append(f"  {act.node[:27]:<28}{act.function:<12}{span:>20}"
                     f"{act.error.rms_error:>10.3g}{act.error.rms_floor:>10.3g}{sat:>8}")
    chains = [act for act in record.activations if act.expression is not None]
    lines += [f"  chain  {act.node}: f(x) = {act.expression[:90]}" for act in chains[:4]]
    if len(chains) > 4:
        lines.append(f"  chain  ... {len(chains) - 4} more fused elementwise chains (see the record)")
    return lines


def _output_lines(record: CalibrationRecordDocument) -> list[str]:
    lines = []
    if record.tflite is not None:
        tables, builtins = len(record.tflite.table_ops or []), len(record.tflite.builtin_ops or [])
        islands = len(record.tflite.island_ops or [])
        lines.append(f"  tflite ({record.tflite.target}): {tables} activations as GATHER tables, "
                     f"{builtins} as exact builtins" + (f", {islands} as float islands inside the delegate (same "
                                                       "grids; their int8 form would split it)" if islands else ""))
        coded = {name: io for name, io in (record.tflite.io or {}).items() if io.dtype == "int8"}
        for name, io in coded.items():
            offset = f"{'-' if io.zero_point < 0 else '+'} {abs(io.zero_point)}"
            lines.append(f"  tflite int8 {io.role} {name}: code = round(x / {io.scale:.6g}) {offset} "
                         "(ties away from zero, clamped to [-128, 127])")
    if record.static_shapes is not None:
        static = record.static_shapes
        shapes = ", ".join(f"{n}={'x'.join(map(str, s))}" for n, s in static.input_shapes.items())
        batch = ", ".join(f"{n} axis {a}" for n, a in static.batch_stays_dynamic.items())
        lines.append(f"  static input shapes {shapes} (from {static.shapes_from}); ONNX outputs keep "
                     + (f"a dynamic batch ({batch})" if batch else "these shapes"))
    evaluation = record.evaluation
    for form in record.files:
        if form in evaluation.forms:
            scores = ", ".join(f"{name} {db:.1f} dB" for name, db in evaluation.forms[form].items())
            lines.append(f"  SQNR vs fp32 ({form}, {evaluation.samples} calibration samples): {scores}")
    return lines
