"""The profile-device report: JSON (schema-versioned), a terminal summary and a self-contained HTML page with
embedded plots (per-layer SQNR, per-output error, activation saturation); the schema walker that reads reports back
(and calibration records) with errors naming the field; output destinations checked before a run."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeact.io import OutputSet, atomic_write_text

REPORT_SCHEMA = 2  # 2: "fingerprint" (the float model's hash and signature), "warnings", "bad_samples"
READABLE_SCHEMAS = (1, 2)  # 1: no fingerprint (the gate warns that it cannot check the model)


@dataclass(frozen=True)
class Nullable:
    """A schema node that may also be JSON null."""

    spec: Any


@dataclass(frozen=True)
class Between:
    """A schema node: a number in [lo, hi], finite unless ``finite`` is False (NaN never)."""

    lo: float
    hi: float = math.inf
    finite: bool = True


_EXPECTED = {float: "a number", int: "an integer", str: "a string", bool: "true or false"}


def _number(value: Any) -> float | None:
    """``value`` as a float when it is a JSON number a float can hold (not a boolean, not 10**400)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def json_kind(value: Any) -> str:
    """What a parsed JSON value is, for messages."""
    if value is None:
        return "null"
    for kind, name in ((bool, "a boolean"), ((int, float), "a number"), (str, "a string"), (list, "a list"),
                       (dict, "an object")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _huge_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and _number(value) is None


def _leaf_ok(value: Any, kinds: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in kinds
    if float in kinds and _number(value) is not None:
        return True
    return any(isinstance(value, kind) for kind in kinds if kind is not float)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def schema_problem(value: Any, spec: Any, where: str = "") -> str | None:
    """The first place ``value`` (parsed JSON) breaks ``spec``, as ``outputs.y.sqnr_db is a string, expected a
    number``; None when it follows it.

    ``spec``: a type (``float`` any number, ``int``, ``str``, ``bool``) or a tuple of them; ``[spec]`` a list of
    items; a dict an object (a key ending in ``?`` may be absent, the key ``*`` stands for every key);
    :class:`Nullable` also allows null."""
    if isinstance(spec, Nullable):
        return None if value is None else schema_problem(value, spec.spec, where)
    if isinstance(spec, Between):
        number = _number(value)
        if number is None:
            kind = "an integer too large for a float" if _huge_int(value) else json_kind(value)
            return f"{where or 'the top level'} is {kind}, expected a number"
        if not (spec.lo <= number <= spec.hi and (math.isfinite(number) or not spec.finite)):
            kind = "a finite number" if spec.finite else "a number (not NaN)"
            return f"{where or 'the top level'} is {value!r}, expected {kind} in [{spec.lo:g}, {spec.hi:g}]"
        return None
    if isinstance(spec, list):
        if not isinstance(value, list):
            return f"{where or 'the top level'} is {json_kind(value)}, expected a list"
        return next((p for i, item in enumerate(value) if (p := schema_problem(item, spec[0], f"{where}[{i}]"))), None)
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return f"{where or 'the top level'} is {json_kind(value)}, expected an object"
        if "*" in spec:
            return next((p for key, item in value.items() if (p := schema_problem(item, spec["*"], _join(where, key)))),
                        None)
        for key, sub in spec.items():
            name = key.removesuffix("?")
            if name not in value:
                if key.endswith("?"):
                    continue
                return f"{_join(where, name)} is missing"
            if problem := schema_problem(value[name], sub, _join(where, name)):
                return problem
        return None
    kinds = spec if isinstance(spec, tuple) else (spec,)
    if _leaf_ok(value, kinds):
        return None
    if _huge_int(value):
        return f"{where or 'the top level'} is an integer too large for a float, expected a number"
    return f"{where or 'the top level'} is {json_kind(value)}, expected {' or '.join(_EXPECTED[k] for k in kinds)}"


def json_text(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=1, sort_keys=True, default=float) + "\n"


def write_json(report: dict[str, Any], path: str | Path) -> Path:
    return atomic_write_text(path, json_text(report))


def write_reports(report: dict[str, Any], json_path: Path | None, html_path: Path | None) -> None:
    """The JSON and HTML reports as one set: both appear, or neither (the JSON, which a gate reads, last)."""
    with OutputSet() as outputs:
        if html_path is not None:
            outputs.add_text(html_path, html_page(report))
        if json_path is not None:
            outputs.add_text(json_path, json_text(report))
        outputs.commit()


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def summary_text(report: dict[str, Any]) -> str:
    device = report["device"]
    lines = [f"{report['model']} on {device['name']} ({device['backend']}), {report['samples']} samples, "
             f"baseline {report['baseline']}, {report['model_size_bytes']:,} bytes"]
    bad = report.get("bad_samples") or []
    if bad:
        shown = ", ".join(bad[:5]) + (", ..." if len(bad) > 5 else "")
        lines.append(f"  skipped {len(bad)} sample(s) with NaN/Inf: {shown}")
    for name, o in report["outputs"].items():
        agreement = o.get("emulator")
        emulator = (f", emulator agreement {agreement['equal_codes']:.2%} (max {agreement['max_lsb']} LSB)"
                    if agreement else "")
        top1 = f", top-1 agreement {o['top1_agreement']:.1%}" if o["top1_agreement"] is not None else ""
        lines.append(f"  output {name}: SQNR {_fmt(o['sqnr_db'], 4)} dB, cosine {_fmt(o['cosine'], 5)}, max |err| "
                     f"{_fmt(o['max_abs_error'])} ({_fmt(o['max_abs_error_lsb'])} LSB){top1}{emulator}; "
                     f"NaN {o['nan_count']}, Inf {o['inf_count']}")
    drops = [layer for layer in report["layers"] if layer.get("sqnr_drop_db") is not None]
    for layer in sorted(drops, key=lambda e: -e["sqnr_drop_db"])[:5]:
        lines.append(f"  layer {layer['tensor']}: SQNR {_fmt(layer['sqnr_db'], 4)} dB, loses "
                     f"{_fmt(layer['sqnr_drop_db'], 3)} dB against its inputs ({layer['source']})")
    for act in report["activations"]:
        sat = "-" if act["saturation_rate"] is None else f"{act['saturation_rate']:.1%}"
        lines.append(f"  activation {act['node']} ({act['function']}): rms error {_fmt(act['rms_error'])} vs floor "
                     f"{_fmt(act['rms_floor'])}, saturation {sat}")
    for hazard in report["hazards"]:
        lines.append(f"  hazard [{hazard['status']}] {hazard['op']} {hazard['tensor']}: {hazard['reason']}")
    if report["latency_ms"]:
        lat = report["latency_ms"]
        lines.append(f"  latency: median {lat['median']:.3f} ms, p95 {lat['p95']:.3f} ms ({lat['runs']} runs, "
                     f"{lat['threads']} thread(s))")
    lines += [f"  warning: {warning}" for warning in report.get("warnings", [])]
    return "\n".join(lines)


def _png(figure) -> str:  # type: ignore[no-untyped-def]
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode()


def _plots(report: dict[str, Any]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = []
    measured = [layer for layer in report["layers"] if layer["sqnr_db"] is not None]
    if measured:
        figure, axis = plt.subplots(figsize=(9, max(2.5, 0.3 * len(measured))))
        layers = list(reversed(measured))
        axis.barh([layer["tensor"][-40:] for layer in layers], [layer["sqnr_db"] for layer in layers],
                  color="tab:blue")
        axis.set_xlabel("SQNR vs float32 (dB)")
        axis.set_title("per-layer SQNR (int8 tensor vs the float model's)")
        figure.tight_layout()
        plots.append(("Per-layer SQNR", _png(figure)))
        plt.close(figure)
    for name, output in report["outputs"].items():
        histogram = output.get("error_histogram")
        if histogram:
            figure, axis = plt.subplots(figsize=(9, 3))
            edges = histogram["edges"]
            axis.stairs(histogram["counts"], edges, fill=True, color="tab:purple")
            axis.set_xlabel(f"int8 - float32 ({histogram['unit']})")
            axis.set_ylabel("count")
            axis.set_title(f"error histogram of output {name}")
            figure.tight_layout()
            plots.append((f"Error histogram: {name}", _png(figure)))
            plt.close(figure)
    for act in report["activations"][:8]:
        plots.append((f"Transfer curve: {act['node']}", _transfer_png(act)))
    if report["activations"]:
        figure, axis = plt.subplots(figsize=(9, 3))
        acts = report["activations"]
        axis.bar(range(len(acts)), [a["saturation_rate"] or 0.0 for a in acts], color="tab:red")
        axis.set_xticks(range(len(acts)), [a["function"] for a in acts], rotation=90, fontsize=7)
        axis.set_ylabel("saturation rate")
        axis.set_title("activation saturation (calibration data)")
        figure.tight_layout()
        plots.append(("Activation saturation", _png(figure)))
        plt.close(figure)
    return plots


def _transfer_png(act: dict[str, Any]) -> str:
    """f(x) in float64 against the int8 table the model carries, over the table's input grid."""
    import matplotlib.pyplot as plt
    import numpy as np

    from edgeact.activations import activation

    in_grid, out_grid = act["input_grid"], act["output_grid"]
    codes = np.arange(-128, 128)
    x = in_grid["scale"] * (codes - in_grid["zero_point"])
    y = out_grid["scale"] * (np.asarray(act["table"]) - out_grid["zero_point"])
    figure, axis = plt.subplots(figsize=(9, 3))
    if "reference" in act:  # a fused elementwise chain: f as the record holds it, at every input code
        axis.plot(x, act["reference"], color="black", lw=1.2, label=f"{act.get('expression', act['function'])}")
    else:
        dense = np.linspace(x[0], x[-1], 2049)
        function = activation(act["function"], **act["params"])
        axis.plot(dense, function(dense), color="black", lw=1.2, label=f"{act['function']} (float64)")
    axis.step(x, y, where="mid", color="tab:orange", lw=1.0, label="int8 table")
    axis.set_xlabel("input")
    axis.legend(loc="best", fontsize=8)
    axis.set_title(f"{act['node']}: fp32 vs int8 transfer")
    figure.tight_layout()
    data = _png(figure)
    plt.close(figure)
    return data


def write_html(report: dict[str, Any], path: str | Path) -> Path:
    return atomic_write_text(path, html_page(report))


def html_page(report: dict[str, Any]) -> str:
    """The self-contained HTML report (tables, plots as data URLs, the JSON report embedded)."""
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{_fmt(o['sqnr_db'], 4)}</td><td>{_fmt(o['cosine'], 5)}</td>"
        f"<td>{_fmt(o['max_abs_error'])}</td><td>{_fmt(o['max_abs_error_lsb'])}</td>"
        f"<td>{_fmt(o['top1_agreement'])}</td></tr>" for name, o in report["outputs"].items())
    hazards = "".join(f"<li><b>{html.escape(h['status'])}</b> {html.escape(h['op'])} {html.escape(h['tensor'])}: "
                      f"{html.escape(h['reason'])}</li>" for h in report["hazards"]) or "<li>none</li>"
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in report.get("warnings", []))
    warnings = f"<h2>Warnings</h2><ul>{warnings}</ul>" if warnings else ""
    images = "".join(f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>"
                     for title, data in _plots(report))
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>edgeact profile: {html.escape(report['model'])}
</title><style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #ccc;padding:4px 8px}}
table{{border-collapse:collapse}}</style></head><body>
<h1>{html.escape(report['model'])} on {html.escape(report['device']['name'])}</h1>
<p>{html.escape(report['device']['description'])}; {report['samples']} samples; baseline
{html.escape(report['baseline'])}; {report['model_size_bytes']:,} bytes; edgeact {report['edgeact_version']}</p>
<h2>Outputs</h2><table><tr><th>output</th><th>SQNR dB</th><th>cosine</th><th>max |err|</th><th>max |err| LSB</th>
<th>top-1 agreement</th></tr>{rows}</table>
{warnings}<h2>Hazards</h2><ul>{hazards}</ul>{images}
<script type="application/json" id="report">{html.escape(json.dumps(report, default=float))}</script>
</body></html>
"""
    return page
