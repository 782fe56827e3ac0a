"""The sensitivity report as terminal text, JSON and a self-contained HTML page (a bar chart of what leaving each
group float recovers, and the ranked table)."""

from __future__ import annotations

import html
import json
import math

from edgeact.documents.sensitivity_report import GroupSensitivity, SensitivityReport
from edgeact.documents.typed_json import to_json
from edgeact.reports.embed import script_json


def _db(value: float | None) -> str:
    if value is None:
        return "—"
    return "exact" if math.isinf(value) and value > 0 else f"{value:.1f}"


def _metric(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def json_text(report: SensitivityReport) -> str:
    return json.dumps(to_json(report), indent=1, sort_keys=True) + "\n"


def summary_text(report: SensitivityReport, top: int = 15) -> str:
    """The headline and the ``top`` groups whose return to float recovers most."""
    full = report.full_int8
    metric = f", {report.metric} {_metric(full.metric)}" if report.metric else ""
    other = report.alternative or "float"
    lines = [f"{report.model}: {len(report.groups)} tensor groups, {report.samples} samples, {report.trials} trials "
             f"in {report.seconds:.1f} s ({report.segments} segments)",
             f"  full int8 (onnx-qdq arithmetic): output SQNR {_db(full.sqnr_db)} dB{metric}",
             f"  {'rank':>4}  {'group':<44} {'only int8':>10} {other + ' gains':>12}"
             + (f" {report.metric + ' gain':>12}" if report.metric else "")]
    for entry in report.groups[:top]:
        name = entry.group if len(entry.group) <= 44 else "…" + entry.group[-43:]
        line = f"  {entry.rank:>4}  {name:<44} {_db(entry.only_int8.sqnr_db):>7} dB {_db(entry.recovered_db):>9} dB"
        if report.metric:
            line += f" {_metric(entry.recovered_metric):>12}"
        lines.append(line)
    if len(report.groups) > top:
        lines.append(f"  ... {len(report.groups) - top} more in the JSON/HTML report")
    lines.append(f"  only int8: output SQNR with just this group int8 (the rest {other}); {other} gains: SQNR gained "
                 f"by making just this group {other}")
    return "\n".join(lines)


def _bars(groups: list[GroupSensitivity]) -> str:
    """Inline SVG: one bar per group, length = dB recovered by leaving it float (capped at the largest finite)."""
    finite = [g.recovered_db for g in groups if math.isfinite(g.recovered_db)]
    largest = max([abs(v) for v in finite] + [1e-9])
    row, width, label = 18, 420, 360
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label + width + 80}" height="{row * len(groups) + 10}"'
             ' font-family="sans-serif" font-size="11">']
    for number, entry in enumerate(groups):
        value = entry.recovered_db if math.isfinite(entry.recovered_db) else largest
        length = max(1.0, abs(value) / largest * width)
        y = number * row + 4
        colour = "#c0392b" if value >= 0 else "#7f8c8d"
        name = entry.group if len(entry.group) <= 58 else "…" + entry.group[-57:]
        parts.append(f'<text x="{label - 6}" y="{y + 12}" text-anchor="end">{html.escape(name)}</text>'
                     f'<rect x="{label}" y="{y}" width="{length:.1f}" height="{row - 5}" fill="{colour}"/>'
                     f'<text x="{label + length + 4:.1f}" y="{y + 12}">{_db(entry.recovered_db)} dB</text>')
    parts.append("</svg>")
    return "".join(parts)


def html_page(report: SensitivityReport, top: int = 40) -> str:
    """A self-contained page: headline, bar chart of the ``top`` groups, the full ranked table, the JSON."""
    full = report.full_int8
    rows = "".join(
        f"<tr><td>{e.rank}</td><td>{html.escape(e.group)}</td><td>{len(e.values)}</td><td>{e.constants}</td>"
        f"<td>{_db(e.only_int8.sqnr_db)}</td><td>{_db(e.all_but_this.sqnr_db)}</td><td>{_db(e.recovered_db)}</td>"
        + (f"<td>{_metric(e.recovered_metric)}</td>" if report.metric else "") + "</tr>"
        for e in report.groups)
    metric_head = f"<th>{html.escape(report.metric)} gain</th>" if report.metric else ""
    embedded = script_json(to_json(report))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>edgeact sensitivity: {html.escape(report.model)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:2px 6px;font-size:12px}}</style></head><body>
<h1>Sensitivity: {html.escape(report.model)}</h1>
<p>Full int8 (onnx-qdq arithmetic): output SQNR <b>{_db(full.sqnr_db)} dB</b>
{f"; {html.escape(report.metric)} <b>{_metric(full.metric)}</b>" if report.metric else ""}.
{len(report.groups)} tensor groups, {report.samples} samples, {report.trials} trials in {report.seconds:.1f} s.</p>
<h2>SQNR gained by making one group {report.alternative or "float"} (top {min(top, len(report.groups))})</h2>
{_bars(report.groups[:top])}
<h2>Every group</h2>
<table><tr><th>rank</th><th>group</th><th>values</th><th>constants</th><th>only int8 dB</th>
<th>all but this dB</th><th>{report.alternative or "float"} gains dB</th>{metric_head}</tr>{rows}</table>
<script type="application/json" id="edgeact-sensitivity">{embedded}</script>
</body></html>
"""
