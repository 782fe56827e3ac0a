"""The profile-device report's renderings: JSON (schema-versioned, :class:`ProfileReport`), a terminal summary and a
self-contained HTML page with embedded plots (per-layer SQNR, per-output error, activation saturation), written as
one set."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from edgeact.documents.profile_report import (
    READABLE_SCHEMAS,
    REPORT_SCHEMA,
    ActivationReport,
    ErrorHistogram,
    ProfileReport,
)
from edgeact.io import OutputSet, atomic_write_text
from edgeact.reports.embed import script_json
from edgeact.reports.model_explorer import node_data_texts
from edgeact.reports.openmetrics import document, profile_families

__all__ = ["READABLE_SCHEMAS", "REPORT_SCHEMA", "ProfileReport", "html_page", "json_text", "summary_text",
           "write_html", "write_json", "write_reports"]


def json_text(report: ProfileReport) -> str:
    return json.dumps(report.to_json(), indent=1, sort_keys=True, default=float) + "\n"


def write_json(report: ProfileReport, path: str | Path) -> Path:
    return atomic_write_text(path, json_text(report))


def write_reports(report: ProfileReport, json_path: Path | None, html_path: Path | None,
                  metrics_path: Path | None = None, model_explorer: Path | None = None) -> list[Path]:
    """The JSON, HTML, OpenMetrics and Model Explorer node-data files as one set: all appear, or none (the JSON,
    which a gate reads, last). Returns the node-data files."""
    overlays = node_data_texts(report, model_explorer) if model_explorer is not None else {}
    with OutputSet() as outputs:
        for path, text in overlays.items():
            outputs.add_text(path, text)
        if metrics_path is not None:
            outputs.add_text(metrics_path, document(profile_families(report)))
        if html_path is not None:
            outputs.add_text(html_path, html_page(report))
        if json_path is not None:
            outputs.add_text(json_path, json_text(report))
        outputs.commit()
    return list(overlays)


def _fmt(value: object, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def summary_text(report: ProfileReport) -> str:
    device = report.device
    lines = [f"{report.model} on {device.name} ({device.backend}), {report.samples} samples, "
             f"baseline {report.baseline}, {report.model_size_bytes:,} bytes"]
    bad = report.bad_samples
    if bad:
        shown = ", ".join(bad[:5]) + (", ..." if len(bad) > 5 else "")
        lines.append(f"  skipped {len(bad)} sample(s) with NaN/Inf: {shown}")
    for name, o in report.outputs.items():
        agreement = o.emulator
        emulator = (f", emulator agreement {agreement.equal_codes:.2%} (max {agreement.max_lsb} LSB)"
                    if agreement else "")
        top1 = f", top-1 agreement {o.top1_agreement:.1%}" if o.top1_agreement is not None else ""
        lines.append(f"  output {name}: SQNR {_fmt(o.sqnr_db, 4)} dB, cosine {_fmt(o.cosine, 5)}, max |err| "
                     f"{_fmt(o.max_abs_error)} ({_fmt(o.max_abs_error_lsb)} LSB){top1}{emulator}; "
                     f"NaN {o.nan_count}, Inf {o.inf_count}")
    lines += _layer_lines(report)
    for act in report.activations:
        sat = "-" if act.saturation_rate is None else f"{act.saturation_rate:.1%}"
        lines.append(f"  activation {act.node} ({act.function}): rms error {_fmt(act.rms_error)} vs floor "
                     f"{_fmt(act.rms_floor)}, saturation {sat}")
    for hazard in report.hazards:
        lines.append(f"  hazard [{hazard.status}] {hazard.op} {hazard.tensor}: {hazard.reason}")
    if report.delegate is not None:
        outside = ", ".join(f"{op} x{count}" for op, count in sorted(report.delegate.outside.items()))
        lines.append(f"  delegate: {report.delegate.partitions} partition(s); outside it: {outside or 'nothing'}")
    if report.latency_ms:
        lat = report.latency_ms
        lines.append(f"  latency: median {lat.median:.3f} ms, p95 {lat.p95:.3f} ms ({lat.runs} runs, "
                     f"{lat.threads} thread(s))")
    lines += [f"  warning: {warning}" for warning in report.warnings]
    return "\n".join(lines)


SHOWN_LAYERS = 5


def _layer_lines(report: ProfileReport) -> list[str]:
    """The layers that lose most against their inputs; where the backend gives no drop (onnxruntime), the layers
    with the lowest SQNR. The JSON and HTML reports have every layer."""
    judged = [layer for layer in report.layers if layer.feeds_activation is None]  # activation inputs: see below
    drops = [layer for layer in judged if layer.sqnr_drop_db is not None]
    if drops:
        lines = [f"  layer {layer.tensor}: SQNR {_fmt(layer.sqnr_db, 4)} dB, loses {_fmt(layer.sqnr_drop_db, 3)} dB "
                 f"against its inputs ({layer.source})" for layer in sorted(drops, key=lambda e: -e.sqnr_drop_db)[
                 :SHOWN_LAYERS]]
    else:
        measured = sorted((layer for layer in judged if layer.sqnr_db is not None), key=lambda e: e.sqnr_db)
        lines = [f"  layer {layer.tensor}: SQNR {_fmt(layer.sqnr_db, 4)} dB ({layer.source}; lowest first)"
                 for layer in measured[:SHOWN_LAYERS]]
    inputs = [layer for layer in report.layers if layer.feeds_activation is not None and layer.sqnr_db is not None]
    if inputs:
        lowest = min(inputs, key=lambda e: e.sqnr_db)
        lines.append(f"  {len(inputs)} activation input(s) not ranked: their grids are chosen for the error after "
                     f"the activation (lowest: {lowest.tensor} {_fmt(lowest.sqnr_db, 4)} dB, after "
                     f"{lowest.feeds_activation} {_fmt(lowest.after_activation_sqnr_db, 4)} dB)")
    return lines


def _png(figure) -> str:  # type: ignore[no-untyped-def]
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode()


def _plots(report: ProfileReport) -> list[tuple[str, str]]:
    """(title, base64 PNG) of every plot of the report."""
    import matplotlib

    matplotlib.use("Agg")
    plots = _layer_plot(report)
    for name, output in report.outputs.items():
        plots += [(f"Error histogram: {name}", _histogram_png(name, output.error_histogram))]
    plots += [(f"Transfer curve: {act.node}", _transfer_png(act)) for act in report.activations[:8]]
    if report.activations:
        plots.append(("Activation saturation", _saturation_png(report.activations)))
    return plots


def _layer_plot(report: ProfileReport) -> list[tuple[str, str]]:
    import matplotlib.pyplot as plt

    measured = [layer for layer in report.layers if layer.sqnr_db is not None]
    if not measured:
        return []
    figure, axis = plt.subplots(figsize=(9, max(2.5, 0.3 * len(measured))))
    layers = list(reversed(measured))
    colours = ["tab:gray" if layer.feeds_activation else "tab:blue" for layer in layers]
    labels = [layer.tensor[-40:] + (" (act. input)" if layer.feeds_activation else "") for layer in layers]
    axis.barh(labels, [layer.sqnr_db for layer in layers], color=colours)
    axis.set_xlabel("SQNR vs float32 (dB)\ngrey: an activation's input, its grid chosen for the error after it",
                    fontsize=9)
    axis.set_title("per-layer SQNR (int8 tensor vs the float model's)")
    return [("Per-layer SQNR", _png_closed(figure))]


def _histogram_png(name: str, histogram: ErrorHistogram) -> str:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 3))
    axis.stairs(histogram.counts, histogram.edges, fill=True, color="tab:purple")
    axis.set_xlabel(f"int8 - float32 ({histogram.unit})")
    axis.set_ylabel("count")
    axis.set_title(f"error histogram of output {name}")
    return _png_closed(figure)


def _saturation_png(acts: list[ActivationReport]) -> str:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, max(2.5, 0.28 * len(acts) + 1.0)))  # one row per activation
    labels = [f"{a.function}: {a.node[-36:]}" for a in reversed(acts)]
    axis.barh(labels, [a.saturation_rate or 0.0 for a in reversed(acts)], color="tab:red")
    axis.tick_params(axis="y", labelsize=7)
    axis.set_xlabel("saturation rate (share of calibration inputs beyond the saturation bounds)")
    axis.set_title("activation saturation")
    return _png_closed(figure)


def _png_closed(figure) -> str:  # type: ignore[no-untyped-def]
    """The figure laid out, as a base64 PNG; the figure is closed."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    data = _png(figure)
    plt.close(figure)
    return data


def _transfer_png(act: ActivationReport) -> str:
    """f(x) in float64 against the table the model carries (int8: one code per input code; int16: its 513 knots, or
    513 samples of an exact table), over the table's input grid."""
    import matplotlib.pyplot as plt
    import numpy as np

    from edgeact.activations import activation

    in_grid, out_grid = act.input_grid, act.output_grid
    wide = in_grid.dtype == "int16"
    codes = np.arange(-32768, 32768) if wide else np.arange(-128, 128)
    x = in_grid.scale * (codes - in_grid.zero_point)
    knots = np.linspace(x[0], x[-1], len(act.table)) if wide else x
    y = out_grid.scale * (np.asarray(act.table) - out_grid.zero_point)
    figure, axis = plt.subplots(figsize=(9, 3))
    if act.reference is not None:  # a fused elementwise chain: f as the record holds it, at every input code
        axis.plot(x, act.reference, color="black", lw=1.2, label=f"{act.expression or act.function}")
    else:
        dense = np.linspace(x[0], x[-1], 2049)
        function = activation(act.function, **act.params)
        axis.plot(dense, function(dense), color="black", lw=1.2, label=f"{act.function} (float64)")
    axis.step(knots, y, where="mid", color="tab:orange", lw=1.0,
              label=("int16 table (513 samples of 65,536 codes)" if act.table_sampled else "int16 table (513 knots)")
              if wide else "int8 table")
    axis.set_xlabel("input")
    axis.legend(loc="best", fontsize=8)
    axis.set_title(f"{act.node}: fp32 vs int8 transfer")
    return _png_closed(figure)


def write_html(report: ProfileReport, path: str | Path) -> Path:
    return atomic_write_text(path, html_page(report))


def _agreement(agreement: Any) -> str:
    return "-" if agreement is None else f"{agreement.equal_codes:.2%} (max {agreement.max_lsb} LSB)"


def _latency_html(report: ProfileReport) -> str:
    lat = report.latency_ms
    if lat is None:
        return "<p>Latency: not measured (an emulated device has no timing).</p>"
    return (f"<p>Latency: median <b>{lat.median:.3f} ms</b>, p95 {lat.p95:.3f} ms ({lat.runs} runs, "
            f"{lat.threads} thread(s)).</p>")


def _bad_samples_html(report: ProfileReport) -> str:
    if not report.bad_samples:
        return ""
    shown = html.escape(", ".join(report.bad_samples))
    return f"<p>Skipped {len(report.bad_samples)} sample(s) with NaN/Inf: {shown}</p>"


def _table_html(title: str, headers: list[str], rows: list[list[str]]) -> str:
    """An HTML section: a heading and a table (cells already escaped); nothing without rows."""
    if not rows:
        return ""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<h2>{title}</h2><table><tr>{head}</tr>{body}</table>"


def _activations_html(report: ProfileReport) -> str:
    rows = [[html.escape(a.node), html.escape(a.function), _fmt(a.rms_error), _fmt(a.rms_floor),
             _fmt(a.rms_error / a.rms_floor if a.rms_floor else None),
             "-" if a.saturation_rate is None else f"{a.saturation_rate:.1%}"] for a in report.activations]
    return _table_html("Activations", ["node", "function", "RMS error", "int8 floor", "error / floor", "saturation"],
                       rows)


def _layers_html(report: ProfileReport) -> str:
    rows = [[html.escape(layer.tensor), _fmt(layer.sqnr_db, 4), _fmt(layer.sqnr_drop_db, 3),
             "-" if layer.equal_codes is None else f"{layer.equal_codes:.2%}", html.escape(layer.source),
             _after(layer)] for layer in report.layers]
    return _table_html("Layers", ["tensor", "SQNR dB", "loses vs inputs dB", "device = emulator", "source", "note"],
                       rows)


def _after(layer: Any) -> str:
    if layer.feeds_activation is None:
        return ""
    return (f"input of {html.escape(layer.feeds_activation)}, its grid chosen for the error after it: "
            f"{_fmt(layer.after_activation_sqnr_db, 4)} dB there")


def html_page(report: ProfileReport) -> str:
    """The self-contained HTML report (tables, plots as data URLs, the JSON report embedded)."""
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{_fmt(o.sqnr_db, 4)}</td><td>{_fmt(o.cosine, 5)}</td>"
        f"<td>{_fmt(o.max_abs_error)}</td><td>{_fmt(o.max_abs_error_lsb)}</td>"
        f"<td>{_fmt(o.top1_agreement)}</td><td>{_agreement(o.emulator)}</td><td>{o.nan_count}</td>"
        f"<td>{o.inf_count}</td></tr>" for name, o in report.outputs.items())
    hazards = "".join(f"<li><b>{html.escape(h.status)}</b> {html.escape(h.op)} {html.escape(h.tensor)}: "
                      f"{html.escape(h.reason)}</li>" for h in report.hazards) or "<li>none</li>"
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in report.warnings)
    warnings = f"<h2>Warnings</h2><ul>{warnings}</ul>" if warnings else ""
    delegate = ""
    if report.delegate is not None:
        outside = ", ".join(f"{html.escape(op)} &times;{n}" for op, n in sorted(report.delegate.outside.items()))
        delegate = (f"<h2>Delegate</h2><p>{report.delegate.partitions} partition(s); run outside it by the "
                    f"runtime's own kernels: {outside or 'nothing'}</p>")
    images = "".join(f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>"
                     for title, data in _plots(report))
    device, model = report.device, html.escape(report.model)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>edgeact profile: {model}
</title><style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #ccc;padding:4px 8px}}
table{{border-collapse:collapse}}</style></head><body>
<h1>{model} on {html.escape(device.name)}</h1>
<p>{html.escape(device.description)}; {report.samples} samples; baseline
{html.escape(report.baseline)}; {report.model_size_bytes:,} bytes; edgeact {report.edgeact_version}</p>
<h2>Outputs</h2><table><tr><th>output</th><th>SQNR dB</th><th>cosine</th><th>max |err|</th><th>max |err| LSB</th>
<th>top-1 agreement</th><th>emulator agreement</th><th>NaN</th><th>Inf</th></tr>{rows}</table>
{_latency_html(report)}{_bad_samples_html(report)}{warnings}{delegate}<h2>Hazards</h2><ul>{hazards}</ul>
{_activations_html(report)}{_layers_html(report)}{images}
<script type="application/json" id="report">{script_json(report.to_json())}</script>
</body></html>
"""
    return page
