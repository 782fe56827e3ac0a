"""``edgeact profile-device``: parse, call :func:`edgeact.profiler.profile.profile_device`, write and print."""

from __future__ import annotations

from pathlib import Path

import click

from edgeact.cli_support import max_array_bytes_option, run_api

PROFILE_EPILOG = """\b
Examples:
  edgeact profile-device out/model.int8.tflite --device tflm --baseline model.onnx --data eval.npz
  edgeact profile-device out/model.int8.tflite --device litert-reference --baseline model.onnx \\
          --data eval.npz --per-layer --json report.json --html report.html
  edgeact profile-device out/model.int8.qdq.onnx --device onnxruntime-cpu --baseline model.onnx --data eval.npz
  edgeact profile-device out/detector.int8.tflite --device litert --baseline detector.tflite --data eval/
  edgeact profile-device out/model.int8.tflite --device my_board.toml --baseline model.onnx --data eval.npz

\b
Built-in devices: litert-xnnpack, litert-reference, tflm, onnxruntime-cpu (real runtimes here);
cmsis-nn, npu-table (run by edgeact's integer emulator under their rules). A device profile is a TOML file
(see edgeact/device_profiles/).
"""


@click.command("profile-device", epilog=PROFILE_EPILOG)
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--device", required=True,
              help="A built-in device profile name (litert = litert-xnnpack), or a profile .toml path.")
@click.option("--baseline", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The float32 model the int8 model came from: .onnx, or the float .tflite it was quantized from "
                   "(inputs and outputs must match).")
@click.option("--data", required=True, type=click.Path(path_type=Path),
              help="Evaluation data: an .npz keyed by the model's inputs, or a folder of them.")
@click.option("--skip-bad-samples", is_flag=True,
              help="Skip samples with NaN/Inf (listed in the report) instead of refusing the data.")
@click.option("--per-layer", is_flag=True, help="Compare every int8 tensor with the float model's.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the JSON report.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the HTML report.")
@click.option("--model-explorer", "model_explorer", type=click.Path(dir_okay=False, path_type=Path),
              help="With --per-layer: write Model Explorer node data beside PATH (PATH.sqnr_db.json, "
                   ".sqnr_drop_db.json, .device_agreement.json, .precision_bits.json) and print the command that "
                   "overlays them on the .tflite.")
@click.option("--metrics", "metrics_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the numbers as OpenMetrics text (edgeact_sqnr_db{output=...}, edgeact_nonfinite_total, "
                   "edgeact_saturation_ratio{activation=...}, ...) for Prometheus or a textfile collector.")
@click.option("--max-samples", type=click.IntRange(min=1), help="Use at most this many samples.")
@click.option("--latency-runs", type=click.IntRange(min=1),
              help="Timed runs (after a warm-up) for the latency median and p95 (default 50; emulated devices "
                   "have no timing).")
@click.option("--gate", "gate_baseline", type=click.Path(dir_okay=False, path_type=Path),
              help="Then gate the report against this baseline (exit 3 on a regression); needs --json.")
@max_array_bytes_option
def profile_device(model: Path, device: str, baseline: Path, data: Path, skip_bad_samples: bool, per_layer: bool,
                   json_path: Path | None, html_path: Path | None, model_explorer: Path | None,
                   metrics_path: Path | None, max_samples: int | None,
                   latency_runs: int | None, gate_baseline: Path | None, max_array_bytes: int | None) -> None:
    """Run MODEL (int8) on a device's runtime and the float baseline on the same data, and explain the error."""
    from edgeact.cli_gate import check_destinations, run_gate
    from edgeact.gating import load_report, thresholds_from
    from edgeact.profiler.profile import profile_device as profile
    from edgeact.profiler.report import summary_text, write_reports
    from edgeact.reports.model_explorer import QUANTITIES, node_data_paths

    if model_explorer is not None and not per_layer:
        raise click.UsageError("--model-explorer overlays per-layer numbers: add --per-layer")
    if gate_baseline is not None and json_path is None:
        raise click.UsageError("--gate needs --json (the report the gate reads and keeps)")
    overlay_paths = node_data_paths(model_explorer, list(QUANTITIES)) if model_explorer is not None else {}
    check_destinations({"--json": json_path, "--html": html_path, "--metrics": metrics_path,
                        **{f"--model-explorer ({q})": p for q, p in overlay_paths.items()}},
                       [model, baseline, data, gate_baseline])
    if gate_baseline is not None:  # a baseline or settings the gate cannot use fail now, not after the run
        base = run_api(lambda: load_report(gate_baseline, "baseline"))
        thresholds = run_api(lambda: thresholds_from(None, per_layer=per_layer or None))
    report = run_api(lambda: profile(model, device, baseline, data, per_layer=per_layer, max_samples=max_samples,
                                     latency_runs=latency_runs, skip_bad_samples=skip_bad_samples, progress=True,
                                     max_array_bytes=max_array_bytes))
    click.echo(summary_text(report))
    overlays = run_api(lambda: write_reports(report, json_path, html_path, metrics_path, model_explorer))
    if json_path is not None:
        click.echo(f"  report      {json_path}")
    if html_path is not None:
        click.echo(f"  html        {html_path}")
    if metrics_path is not None:
        click.echo(f"  metrics     {metrics_path}")
    if overlays:
        click.echo(f"  model explorer: model-explorer {model} --node_data_paths={','.join(map(str, overlays))}")
    if gate_baseline is not None:
        run_gate(json_path, gate_baseline, base, thresholds, None, None, False)
