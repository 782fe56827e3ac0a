"""``edgeact sensitivity``: parse, call :func:`edgeact.api.sensitivity`, print the ranked groups."""

from __future__ import annotations

from pathlib import Path

import click

from edgeact import api
from edgeact.analysis.render import json_text, summary_text
from edgeact.analysis.sensitivity import SAMPLES, SEGMENTS
from edgeact.calibration.ranges import METHODS
from edgeact.cli_quantize import InputShape, TargetName
from edgeact.cli_support import GreedyOption, recurrent_cells_option, run_api
from edgeact.metrics import TASK_METRICS

SENSITIVITY_EPILOG = """\b
Examples:
  edgeact sensitivity model.onnx --calib calib.npz
  edgeact sensitivity model.onnx --calib calib.npz --eval eval.npz --metric top1 --html sens.html --json sens.json
  edgeact sensitivity det.onnx --calib feeds/ --samples 64 --top 30
\b
What it measures: the plan 'edgeact quantize' would make (same --method/--target/--exclude), split into tensor
groups (the values sharing one grid, with the weights and biases of the nodes writing them). For each group:
  only int8    the outputs' SQNR vs float with just this group int8 (what it costs on its own)
  float gains  the SQNR gained when every group but this one is int8 (what leaving it float recovers)
Groups are ranked by what leaving them float recovers (by --metric when given). Trials use the onnx-qdq form's
arithmetic on onnxruntime, reuse cached activations and rerun only the graph downstream of their group.
Metrics (higher is better): top1 (arg-max agreement of the first output, 0..1), cosine (mean cosine similarity of
the first output); or your own function: --metric path/to/file.py:function (the Python API takes any callable).
"""


@click.command(epilog=SENSITIVITY_EPILOG)
@click.argument("model", type=str)
@click.option("--calib", type=click.Path(path_type=Path), help="Calibration .npz or folder of .npz.")
@click.option("--stats", cls=GreedyOption, multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Saved statistics (edgeact calibrate --stats-out) instead of or besides --calib.")
@click.option("--eval", "eval_data", type=click.Path(path_type=Path),
              help="Data the trials run on (default: the calibration data).")
@click.option("--samples", default=SAMPLES, show_default=True, type=click.IntRange(min=1),
              help="Samples every trial runs.")
@click.option("--metric", metavar="NAME|FILE.py:FUNC",
              help=f"Task metric to rank by, besides SQNR: {', '.join(sorted(TASK_METRICS))}, or your Python function "
                   "as path/to/file.py:function or package.module:function (imported and run), f(reference, result) "
                   "-> float, higher is better.")
@click.option("--method", type=click.Choice(list(METHODS)), default="auto", show_default=True,
              help="Calibration method of the plan (as for quantize).")
@click.option("--target", type=TargetName(), default="litert", show_default=True,
              help="Device profile the plan is made for (as for quantize).")
@click.option("--per-tensor", is_flag=True, help="One weight scale per tensor instead of per output channel.")
@click.option("--exclude", cls=GreedyOption, multiple=True, help="Node names or op types to keep float.")
@click.option("--input-shape", "input_shapes", multiple=True, type=InputShape(),
              help="Fix a dynamic input's shape, e.g. images=1x3x320x320 (repeatable).")
@click.option("--segments", default=SEGMENTS, show_default=True, type=click.IntRange(min=1),
              help="Pieces the model is cut into: a trial reruns only those from its group's first one.")
@click.option("--top", default=15, show_default=True, type=click.IntRange(min=1), help="Groups printed.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the report as JSON.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report as a self-contained HTML page with a bar chart.")
@click.option("--print-json", is_flag=True, help="Print the whole report as JSON instead of the table.")
@click.option("--alternative", type=click.Choice(["float", "int16"]), default="float", show_default=True,
              help="What a group becomes when promoted: float, or int16 (A16W8: int16 grid, weights still int8).")
@recurrent_cells_option
def sensitivity(model: str, calib: Path | None, stats: tuple[Path, ...], eval_data: Path | None, samples: int,
                metric: str | None, method: str, target: str, per_tensor: bool, exclude: tuple[str, ...],
                input_shapes: tuple[tuple[str, tuple], ...], segments: int, top: int, json_path: Path | None,
                html_path: Path | None, print_json: bool, alternative: str, recurrent_cells: str) -> None:
    """Rank MODEL's tensor groups by how much their int8 quantization costs at the outputs."""
    if calib is None and not stats:
        raise click.UsageError("give calibration data with --calib, or saved statistics with --stats")
    report = run_api(lambda: api.sensitivity(
        model, calib, eval_data=eval_data, stats=stats, samples=samples, metric=metric, method=method,
        target=target, per_tensor=per_tensor, exclude=exclude, input_shapes=dict(input_shapes) or None,
        segments=segments, json_path=json_path, html_path=html_path, progress=not print_json,
        alternative=alternative, recurrent_cells=recurrent_cells))
    click.echo(json_text(report) if print_json else summary_text(report, top))
    for label, path in (("json", json_path), ("html", html_path)):
        if path is not None and not print_json:
            click.echo(f"  {label:<5} {path}")
