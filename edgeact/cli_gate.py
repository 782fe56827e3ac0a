"""``edgeact gate``: a profile-device report against a committed baseline; exit 3 on a quality regression."""

from __future__ import annotations

import shutil
from pathlib import Path

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
  --max-latency-ratio. Exit codes: 0 pass, 3 regression, 1 unusable report/baseline, 2 usage.
"""


def run_gate(report_path: Path, baseline: Path, overrides: dict, config: Path | None, junit: Path | None,
             markdown_path: Path | None, allow_mismatch: bool) -> None:
    """Shared by ``gate`` and ``profile-device --gate``: print, write, and exit 3 on a regression."""
    from edgeact.gate import gate, load_report, markdown, thresholds_from, write_junit
    from edgeact.io import atomic_write

    report = run_api(lambda: load_report(report_path, "report"))
    base = run_api(lambda: load_report(baseline, "baseline"))
    thresholds = run_api(lambda: thresholds_from(config, **overrides))
    result = run_api(lambda: gate(report, base, thresholds, allow_mismatch))
    summary = markdown(result, report)
    click.echo(summary)
    if junit is not None:
        run_api(lambda: write_junit(result, junit, f"edgeact gate {report['model']}"))
    if markdown_path is not None:
        run_api(lambda: atomic_write(markdown_path, lambda tmp: tmp.write_text(summary)))
    if not result.passed:
        raise SystemExit(EXIT_REGRESSION)


@click.command(epilog=GATE_EPILOG)
@click.argument("report", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--baseline", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The committed baseline report (JSON from profile-device).")
@click.option("--max-sqnr-drop", type=float, help="dB an output's SQNR may lose.")
@click.option("--min-top1-agreement", type=click.FloatRange(0, 1), help="Lowest top-1 agreement (0..1).")
@click.option("--max-latency-ratio", type=click.FloatRange(min=0, min_open=True),
              help="Gate latency: largest median ratio to the baseline.")
@click.option("--per-layer", is_flag=True, default=None, help="Also gate every layer's SQNR.")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path),
              help="A TOML file with gate settings (default: [tool.edgeact.gate] of ./pyproject.toml).")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML (a case per check).")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the summary as markdown (for a CI comment).")
@click.option("--update-baseline", is_flag=True, help="Replace the baseline with this report (atomically), exit 0.")
@click.option("--allow-mismatch", is_flag=True, help="Compare a report from another device or schema anyway.")
def gate(report: Path, baseline: Path, max_sqnr_drop: float | None, min_top1_agreement: float | None,
         max_latency_ratio: float | None, per_layer: bool | None, config: Path | None, junit: Path | None,
         markdown_path: Path | None, update_baseline: bool, allow_mismatch: bool) -> None:
    """Fail (exit 3) when REPORT's quantization quality regressed against the committed baseline."""
    if update_baseline:
        from edgeact.gate import load_report
        from edgeact.io import atomic_write

        run_api(lambda: load_report(report, "report"))
        run_api(lambda: atomic_write(baseline, lambda tmp: shutil.copyfile(report, tmp)))
        click.echo(f"baseline {baseline} updated from {report}")
        return
    overrides = {"max_sqnr_drop": max_sqnr_drop, "min_top1_agreement": min_top1_agreement,
                 "max_latency_ratio": max_latency_ratio, "per_layer": per_layer}
    run_gate(report, baseline, overrides, config, junit, markdown_path, allow_mismatch)
