"""``edgeact gate``: a profile-device report against a committed baseline; exit 3 on a quality regression."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from edgeact.cli_support import run_api

EXIT_REGRESSION = 3

GATE_EPILOG = """\b
Examples:
  edgeact gate report.json --baseline baselines/model.json
  edgeact gate report.json --baseline baselines/model.json --max-sqnr-drop 0.3 --per-layer \\
          --junit gate.xml --markdown gate.md
  edgeact gate report.json --baseline baselines/model.json --update-baseline

\b
Defaults (override in [tool.edgeact.gate] of pyproject.toml, a --config TOML, or flags):
  max_sqnr_drop 0.5 dB per output; top-1 agreement >= the baseline's minus 1 point; per layer (--per-layer)
  max_layer_sqnr_drop 1.0 dB; activation RMS error +5% and saturation +5 points at most; latency only with
  --max-latency-ratio. A report of another device, schema or float model (its fingerprint) is refused unless
  --allow-mismatch. Exit codes: 0 pass, 3 regression, 1 unusable report/baseline, 2 usage.
"""


def check_destinations(outputs: dict[str, Path | None], inputs: list[Path | None]) -> None:
    """Before any work: no output replaces an input or another output, and every output's folder takes a file."""
    from edgeact.gating import config_file
    from edgeact.io import check_outputs, check_writable

    run_api(lambda: check_outputs(outputs, [*inputs, config_file(None)]))
    run_api(lambda: check_writable(outputs))


def run_gate(report_path: Path, baseline_path: Path, base: dict[str, Any], thresholds: Any, junit: Path | None,
             markdown_path: Path | None, allow_mismatch: bool, metrics: Path | None = None) -> None:
    """Shared by ``gate`` and ``profile-device --gate`` (``base`` and ``thresholds`` already loaded): print, write,
    and exit 3 on a regression."""
    from edgeact.gating import gate, load_report, markdown, write_gate_outputs
    from edgeact.io import same_file

    if same_file(report_path, baseline_path):
        click.echo(f"warning: {report_path} is the baseline itself: the gate compares it with itself and passes",
                   err=True)
    report = run_api(lambda: load_report(report_path, "report"))
    result = run_api(lambda: gate(report, base, thresholds, allow_mismatch, (str(report_path), str(baseline_path))))
    summary = markdown(result, report)
    click.echo(summary)
    run_api(lambda: write_gate_outputs(result, report, junit, markdown_path, f"edgeact gate {report['model']}",
                                       metrics))
    if not result.passed:
        raise SystemExit(EXIT_REGRESSION)


def _update(report: Path, baseline: Path, ignored: list[str]) -> None:
    from edgeact.gating import update_baseline

    if ignored:
        click.echo(f"warning: {', '.join(ignored)} ignored with --update-baseline (nothing is gated)", err=True)
    if run_api(lambda: update_baseline(report, baseline)):
        click.echo(f"baseline {baseline} updated from {report}")
    else:
        click.echo(f"{report} already is the baseline {baseline}; nothing to update")


@click.command(epilog=GATE_EPILOG)
@click.argument("report", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--baseline", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The committed baseline report (JSON from profile-device).")
@click.option("--max-sqnr-drop", type=click.FloatRange(min=0), help="dB an output's SQNR may lose.")
@click.option("--min-top1-agreement", type=click.FloatRange(0, 1), help="Lowest top-1 agreement (0..1).")
@click.option("--max-latency-ratio", type=click.FloatRange(min=0, min_open=True),
              help="Gate latency: largest median ratio to the baseline.")
@click.option("--per-layer", is_flag=True, default=None, help="Also gate every layer's SQNR.")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path),
              help="A TOML file with gate settings (default: [tool.edgeact.gate] of ./pyproject.toml).")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML (a case per check).")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the summary as markdown (for a CI comment).")
@click.option("--metrics", type=click.Path(dir_okay=False, path_type=Path),
              help="Write OpenMetrics text (edgeact_sqnr_db{output=...}, edgeact_gate_passed, ...) for Prometheus.")
@click.option("--update-baseline", is_flag=True, help="Replace the baseline with this report (atomically), exit 0.")
@click.option("--allow-mismatch", is_flag=True,
              help="Compare a report from another device, schema or float model anyway.")
def gate(report: Path, baseline: Path, max_sqnr_drop: float | None, min_top1_agreement: float | None,
         max_latency_ratio: float | None, per_layer: bool | None, config: Path | None, junit: Path | None,
         markdown_path: Path | None, metrics: Path | None, update_baseline: bool, allow_mismatch: bool) -> None:
    """Fail (exit 3) when REPORT's quantization quality regressed against the committed baseline."""
    from edgeact.gating import load_report, thresholds_from

    overrides = {"max_sqnr_drop": max_sqnr_drop, "min_top1_agreement": min_top1_agreement,
                 "max_latency_ratio": max_latency_ratio, "per_layer": per_layer}
    if update_baseline:
        given = {"--junit": junit, "--markdown": markdown_path, "--metrics": metrics, "--config": config,
                 "--allow-mismatch":
                 allow_mismatch or None, **{f"--{k.replace('_', '-')}": v for k, v in overrides.items()}}
        _update(report, baseline, [flag for flag, value in given.items() if value is not None])
        return
    outputs = {"--junit": junit, "--markdown": markdown_path, "--metrics": metrics}
    check_destinations(outputs, [report, baseline, config])
    base = run_api(lambda: load_report(baseline, "baseline"))
    thresholds = run_api(lambda: thresholds_from(config, **overrides))
    run_gate(report, baseline, base, thresholds, junit, markdown_path, allow_mismatch, metrics)
