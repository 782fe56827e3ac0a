"""``edgeact drift``: new data against a model's calibration; exit 3 when it no longer fits (recalibrate)."""

from __future__ import annotations

from pathlib import Path

import click

from edgeact.cli_gate import EXIT_REGRESSION
from edgeact.cli_quantize import InputShape
from edgeact.cli_support import GreedyOption, run_api

DRIFT_EPILOG = """\b
Examples:
  edgeact drift model.onnx --record out/model.calibration.json --data today/ --calib calib/
  edgeact drift model.onnx --record out/model.calibration.json --data today/ --stats calib.stats.json \\
          --metrics /var/lib/node_exporter/textfile/edgeact.prom --json drift.json

\b
Per planned tensor: the share of the new values beyond its grid (against calibration's share: a grid chosen to
clip, as an activation's input often is, is not a finding by itself) and the PSI of its histogram over the
calibration data's deciles; per activation: the share of inputs where it saturates; NaN/Inf counts.
Exit codes: 0 fits, 3 a threshold crossed (recalibrate), 1 unusable input, 2 usage.
"""


@click.command(epilog=DRIFT_EPILOG)
@click.argument("model")
@click.option("--record", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The calibration record quantize wrote for MODEL (its grids and saturation rates).")
@click.option("--data", required=True, type=click.Path(path_type=Path), help="New data: an .npz or folder of them.")
@click.option("--calib", type=click.Path(path_type=Path), help="The calibration data (streamed again).")
@click.option("--stats", cls=GreedyOption, multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Or its saved statistics (edgeact calibrate --stats-out), merged; takes several.")
@click.option("--input-shape", "input_shapes", multiple=True, type=InputShape(),
              help="NAME=DIMS, as given to quantize (its record's fingerprint depends on them).")
@click.option("--max-clipped-increase", type=click.FloatRange(0, 1), default=0.01, show_default=True,
              help="Share of a tensor's values beyond its grid, above calibration's.")
@click.option("--max-saturation-increase", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="Share of an activation's inputs where it saturates, above calibration's.")
@click.option("--max-psi", type=click.FloatRange(min=0), default=0.25, show_default=True,
              help="Population stability index of a tensor's histogram (0.1 moderate, 0.25 major shift).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the report as JSON.")
@click.option("--metrics", "metrics_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write OpenMetrics text (edgeact_clipped_ratio{tensor=...}, edgeact_drift_psi, "
                   "edgeact_saturation_ratio{activation=...}, edgeact_nonfinite_total, edgeact_drifted).")
def drift(model: str, record: Path, data: Path, calib: Path | None, stats: tuple[Path, ...],
          input_shapes: tuple[tuple[str, tuple], ...], max_clipped_increase: float, max_saturation_increase: float,
          max_psi: float, json_path: Path | None, metrics_path: Path | None) -> None:
    """Does new DATA still fit MODEL's calibrated grids? Exit 3 when a threshold is crossed."""
    from edgeact import api
    from edgeact.analysis.drift import worst

    if calib is None and not stats:
        raise click.UsageError("give the calibration data (--calib) or its saved statistics (--stats)")
    report = run_api(lambda: api.drift(
        model, data, record, calib=calib, stats=stats, input_shapes=dict(input_shapes) or None, json_path=json_path,
        metrics_path=metrics_path, progress=True, max_clipped_increase=max_clipped_increase,
        max_saturation_increase=max_saturation_increase, max_psi=max_psi))
    click.echo(f"{report.model}: {report.samples} new samples against its calibration; "
               f"{len(report.tensors)} tensors, {len(report.activations)} activations checked")
    for entry in worst(report):
        click.echo(f"  {entry.tensor}: {entry.clipped:.2%} beyond its grid (calibration "
                   f"{entry.calibration_clipped:.2%}), PSI {entry.psi:.3f}, NaN/Inf {entry.nonfinite}")
    for finding in report.findings:
        click.echo(f"  drift: {finding}")
    click.echo("  verdict: " + ("DRIFTED: recalibrate (edgeact quantize ... --calib with data like this)"
                                if report.drifted else "fits the calibration"))
    for label, path in (("json", json_path), ("metrics", metrics_path)):
        if path is not None:
            click.echo(f"  {label:<8} {path}")
    if report.drifted:
        raise SystemExit(EXIT_REGRESSION)
