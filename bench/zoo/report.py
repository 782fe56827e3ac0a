"""bench/zoo/results.md and results.json from the per-model results (fixed formatting, zoo order, sorted keys)."""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.zoo.metrics import LABELS
from edgeact.io import atomic_write

REPO = Path(__file__).resolve().parents[2]
EDGEACT_COLUMNS = ("onnx-qdq", "onnx-table", "tflite", "tflm")
LATENCY_COLUMNS = ("onnxruntime edgeact-qdq/fp32", "onnxruntime ort-best/fp32", "litert edgeact-int8/fp32-tflite")


def machine() -> dict[str, Any]:
    """Date, CPU, core count, Python and runtime versions, the repo commit."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                    if line.startswith("model name")), cpu)
    commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True,
                            text=True, check=False).stdout.strip()
    versions = {name: _version(name) for name in ("edgeact", "onnxruntime", "onnx", "ai-edge-litert", "tflite-micro",
                                                  "torch", "numpy")}
    return {"date": datetime.date.today().isoformat(), "cpu": cpu, "cores": os.cpu_count(),
            "python": platform.python_version(), "commit": commit, "versions": versions}


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _clean(value: Any) -> Any:
    """JSON-safe: inf/nan as strings, numpy scalars as floats, floats rounded to 4 decimals."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float):
        return str(value) if math.isinf(value) or math.isnan(value) else round(value, 4)
    return value


def write_json(path: Path, header: dict[str, Any], results: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps(_clean({**header, "models": results}), indent=1, sort_keys=True) + "\n")


# --- formatting ----------------------------------------------------------------------------------------------------


def num(value: Any, digits: int = 1) -> str:
    """A number for the table ('inf', '—' for missing)."""
    if value is None:
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    return f"{value:.{digits}f}"


def headline(result: dict[str, Any], form: dict[str, Any] | None) -> str:
    """The task metric of one form: its number, '✗' if it failed, '—' if not written."""
    if not form:
        return "—"
    if "metrics" not in form:
        return "✗"
    value = form["metrics"].get(result["headline"])
    return num(value, 0 if result["headline"] == "decision_flips" else 1)


def source(result: dict[str, Any]) -> str:
    """Exporter and opset of the published model (or of the front door's export)."""
    info = result.get("source") or {}
    opset = (info.get("opsets") or {}).get("ai.onnx", "?")
    if result["member"].endswith(".pt"):
        record = (result.get("edgeact") or {}).get("record") or {}
        exporter = ((record.get("frontend") or {}).get("exporter")) or "torch.onnx"
        return f"PyTorch state_dict → edgeact front door ({exporter}); baselines: torch.onnx, opset {opset}"
    producer = info.get("producer", "?")
    if "builtins" in info:  # a float .tflite: edgeact reads it; onnxruntime's baseline quantizes edgeact's ONNX form
        return f"{producer} (float), {sum(info['builtins'].values())} ops; ORT baseline on edgeact's ONNX form"
    if producer == "(blank)" and "Paddle" in info.get("graph_name", ""):
        producer = "PaddlePaddle (paddle2onnx, producer field blank)"
    return f"{producer}, opset {opset}"


def forms_written(result: dict[str, Any]) -> str:
    """Which forms edgeact wrote ('failed' when it exited non-zero without writing)."""
    written = [f for f in ("onnx-qdq", "onnx-table", "tflite", "fp32-tflite", "tflm") if f in result.get("forms", {})]
    failed = [run for run in ("edgeact", "edgeact_tflm") if (result.get(run) or {}).get("returncode")]
    text = ", ".join(written) if written else "none"
    return text + (" (" + ", ".join(f.replace("_", " ") + " failed" for f in failed) + ")" if failed else "")


def sqnr_cell(result: dict[str, Any]) -> str:
    forms = result.get("forms", {})
    cells = [num((forms.get(f) or {}).get("sqnr_db", {}).get("min")) for f in EDGEACT_COLUMNS]
    best = _best(result)
    cells.append(num((best or {}).get("sqnr_db", {}).get("min")))
    return " / ".join(cells)


def _best(result: dict[str, Any]) -> dict[str, Any] | None:
    ort = result.get("ort") or {}
    return ort.get("configs", {}).get(ort.get("best")) if ort.get("best") else None


def best_cell(result: dict[str, Any]) -> str:
    ort = result.get("ort") or {}
    if not ort.get("best"):
        return "✗" if ort.get("configs") else "—"
    return f"{ort['best']}: {headline(result, _best(result))}"


def latency_cell(result: dict[str, Any], label: str) -> str:
    entry = (result.get("latency") or {}).get(label)
    if not entry:
        return "—"
    return "✗" if "ratio" not in entry else f"{entry['ratio']:.2f}×"


SPEED_INTRO = ("int8 time / fp32 time (below 1: the int8 model is faster), interleaved runs, median of 20 after 3 "
               "warm-up rounds, first evaluation feed: edgeact's onnx-qdq and onnxruntime's own quantize_static model "
               "(MinMax calibration and uint8 activations, its defaults, with per-channel int8 weights) against the "
               "fp32 ONNX model on onnxruntime CPU; edgeact's int8 .tflite against its fp32 .tflite on LiteRT with "
               "XNNPACK.")
SPEED_COLUMNS = (("ORT edgeact qdq", "onnxruntime edgeact-qdq/fp32"),
                 ("ORT quantize_static (MinMax/QUInt8)", "onnxruntime ort-quint8/fp32"),
                 ("LiteRT+XNNPACK edgeact int8", "litert edgeact-int8/fp32-tflite"))


def speed_table(results: list[dict[str, Any]]) -> list[str]:
    """int8 time / fp32 time per model on onnxruntime and LiteRT, 1 and 2 threads (below 1: int8 is faster)."""
    head = "| model | " + " | ".join(f"{name} {t}t" for name, _ in SPEED_COLUMNS for t in (1, 2)) + " |"
    rows = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in results:
        cells = [latency_cell(r, label + ("" if t == 1 else f" {t}t")) for _, label in SPEED_COLUMNS for t in (1, 2)]
        rows.append(f"| {r['name']} | " + " | ".join(cells) + " |")
    return rows


def table(results: list[dict[str, Any]]) -> list[str]:
    """The summary table, one row per model."""
    head = ("| model | source | edgeact forms written | task metric (vs fp32) | edgeact qdq | table | tflite LiteRT | "
            "TFLM | best onnxruntime config | output SQNR dB qdq / table / tflite / TFLM / ORT best | quantize s | "
            "peak MB | ORT qdq/fp32 | ORT best/fp32 | LiteRT int8/fp32 |")
    rows = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in results:
        forms, run = r.get("forms", {}), r.get("edgeact") or {}
        cells = [r["name"], source(r), forms_written(r), LABELS.get(r["headline"], r["headline"]),
                 *(headline(r, forms.get(f)) for f in EDGEACT_COLUMNS), best_cell(r), sqnr_cell(r),
                 num(run.get("wall_s")), num(run.get("peak_rss_mb"), 0),
                 *(latency_cell(r, label) for label in LATENCY_COLUMNS)]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


README_BEGIN, README_END = "<!-- zoo table: written by make zoo -->", "<!-- end of zoo table -->"


def readme_table(header: dict[str, Any], results: list[dict[str, Any]]) -> list[str]:
    """The README's compact table (bench/zoo/results.md has every number)."""
    head = ("| model | task metric vs fp32 | edgeact qdq | edgeact table | edgeact tflite | edgeact TFLM | "
            "best onnxruntime | edgeact qdq with --bias-correction | "
            "worst-output SQNR dB, edgeact qdq / ORT best / with --bias-correction | quantize s, peak MB | "
            "int8/fp32 time ORT (edgeact, ORT best) | int8/fp32 time LiteRT |")
    rows = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in results:
        forms, run, best = r.get("forms", {}), r.get("edgeact") or {}, _best(r)
        plain = (r.get("bias_correction") or {}).get("forms", {}).get("onnx-qdq")
        sqnr = f"{num((forms.get('onnx-qdq') or {}).get('sqnr_db', {}).get('min'))} / " \
               f"{num((best or {}).get('sqnr_db', {}).get('min'))} / {num((plain or {}).get('sqnr_db', {}).get('min'))}"
        cells = [r["name"], LABELS.get(r["headline"], r["headline"]),
                 *(headline(r, forms.get(f)) for f in EDGEACT_COLUMNS), best_cell(r), headline(r, plain), sqnr,
                 f"{num(run.get('wall_s'), 0)} s, {num(run.get('peak_rss_mb'), 0)} MB",
                 f"{latency_cell(r, LATENCY_COLUMNS[0])}, {latency_cell(r, LATENCY_COLUMNS[1])}",
                 latency_cell(r, LATENCY_COLUMNS[2])]
        rows.append("| " + " | ".join(cells) + " |")
    rows += ["", "Speed: " + SPEED_INTRO, "", *speed_table(results)]
    rows += ["", "`edgeact quantize --budget` on the same models (the fewest, most sensitive tensor groups promoted: "
             "int16, 16x8 in the .tflite, or float where the target has no 16x8 kernel for them; task metric on the "
             "evaluation set):", "", *budget_table(results)]
    rows += ["", "`edgeact sensitivity` against one calibration pass of the same model and data:", "",
             *sensitivity_table(results)]
    rows.append("")
    rows.append(f"`make zoo` on {header.get('date', '?')}, {header.get('cpu', '?')}, "
                f"commit {header.get('commit', '?')}.")
    return rows


def sync_readme(readme: Path, header: dict[str, Any], results: list[dict[str, Any]]) -> bool:
    """Replace the table between the README's zoo markers; False when the markers are missing."""
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        return False
    before, rest = text.split(README_BEGIN, 1)
    after = rest.split(README_END, 1)[1]
    body = "\n".join(readme_table(header, results))
    atomic_write(readme, lambda tmp: tmp.write_text(f"{before}{README_BEGIN}\n{body}\n{README_END}{after}"))
    return True


def _metric_table(rows: dict[str, dict[str, Any]], extra: tuple[str, ...] = ()) -> list[str]:
    """One line per form or config: runtime, size, every task metric, worst and per-output SQNR, error."""
    keys = sorted({k for row in rows.values() for k in row.get("metrics", {})})
    head = ["", "runtime", "MB", *keys, "SQNR min dB", "SQNR per output dB", "samples", *extra, "error"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in rows.items():
        per_output = ", ".join(f"{k} {num(v)}" for k, v in row.get("sqnr_db", {}).items() if k != "min")
        cells = [name, row.get("runtime", ""), num(row.get("size_mb"), 2),
                 *(num(row.get("metrics", {}).get(k), 2) for k in keys), num(row.get("sqnr_db", {}).get("min")),
                 per_output or "—", str(row.get("samples", "—")), *(num(row.get(e)) for e in extra),
                 _escape(row.get("error", ""))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _edgeact_run(title: str, run: dict[str, Any]) -> list[str]:
    if not run:
        return []
    lines = [f"**{title}**: `{run.get('command', '')}`", "",
             f"- exit code {run.get('returncode')}, {num(run.get('wall_s'))} s wall, peak RSS "
             f"{num(run.get('peak_rss_mb'), 0)} MB; wrote: {', '.join(run.get('written', [])) or 'nothing'}"]
    record = run.get("record") or {}
    if record:
        lines.append(f"- record: {record.get('int8_nodes')} int8 nodes, {len(record.get('float_nodes', []))} kept "
                     f"float, {record.get('hazards')} hazards; front end {record.get('frontend')}")
        lines += [f"  - float: {_escape(f)}" for f in record.get("float_nodes", [])[:8]]
    lines += [f"- edgeact said: `{_escape(w)}`" for w in run.get("warnings", [])]
    if run.get("returncode"):
        lines += [f"- **error**: `{run.get('error', '')}`", "", "```", run.get("stderr_tail", ""), "```"]
    return [*lines, ""]


def details(result: dict[str, Any]) -> list[str]:
    """The per-model section."""
    info = result.get("source") or {}
    fp32 = ", ".join(f"{k} {num(v, 2)}" for k, v in sorted((result.get("fp32") or {}).items()))
    lines = [f"### {result['name']}", "",
             f"- {result['task']}; `{result['package']}`, wheel member `{result['member']}`",
             f"- model: {source(result)}; " + (
                 f"builtins {info['builtins']}, {info.get('size_mb')} MB" if "builtins" in info else
                 f"producer `{info.get('producer')}`, graph `{info.get('graph_name')}`, "
                 f"opsets {info.get('opsets')}, IR {info.get('ir_version')}, {info.get('size_mb')} MB"),
             f"- data: {result['samples']['calib']} calibration feeds, {result['samples']['eval']} evaluation feeds",
             f"- fp32 on the evaluation set: {fp32}", ""]
    lines += _edgeact_run("edgeact", result.get("edgeact") or {})
    lines += _edgeact_run("edgeact, TFLite Micro", result.get("edgeact_tflm") or {})
    if result.get("forms"):
        lines += ["edgeact forms:", "", *_metric_table(result["forms"], ("eval_s",)), ""]
    ort = result.get("ort") or {}
    if ort.get("configs") or ort.get("prepare"):
        lines += [f"onnxruntime quantize_static (QDQ, per-channel QInt8 weights); preparation: "
                  f"{'; '.join(ort.get('prepare', [])) or 'none'}; best: {ort.get('best') or 'none'}", ""]
        lines += [*_metric_table(ort.get("configs", {}), ("quantize_s",)), ""]
    if result.get("latency"):
        lines += ["latency (interleaved, median of 20 after 3 warm-up rounds, first evaluation feed; 2t: two threads):",
                  "",
                  "| pair | fp32 ms | int8 ms | int8/fp32 | error |", "|---|---|---|---|---|"]
        lines += [f"| {k} | {num(v.get('fp32_ms'), 2)} | {num(v.get('int8_ms'), 2)} | {num(v.get('ratio'), 2)} | "
                  f"{_escape(v.get('error', ''))} |" for k, v in result["latency"].items()]
        lines.append("")
    if result["errors"]:
        lines += ["errors:", "", *(f"- {e['step']}: `{_escape(e['error'])}`" for e in result["errors"]), ""]
    return lines


def sensitivity_table(results: list[dict[str, Any]]) -> list[str]:
    """``edgeact sensitivity`` per model: groups, trials, its wall time against one calibration pass, the top group."""
    rows = ["| model | tensor groups | trials (samples) | full int8 SQNR dB | sensitivity s | calibrate s | ratio | "
            "group whose float recovers most (only-int8 dB, recovered dB) |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        run = r.get("sensitivity") or {}
        found = run.get("report") or {}
        top = (found.get("top") or [{}])[0]
        group = (f"`{_escape(top['group'])}` ({', '.join(top['producers'][:1]) or 'input'}): "
                 f"{num(top['only_int8_db'])}, {num(top['recovered_db'])}") if top else run.get("error") or "—"
        trials = f"{found.get('trials', '—')} ({found.get('samples', '—')})"
        rows.append(f"| {r['name']} | {found.get('groups', '—')} | {trials} | {num(found.get('full_int8_sqnr_db'))} | "
                    f"{num(run.get('wall_s'))} | "
                    f"{num(run.get('calibrate_wall_s'))} | {num(run.get('ratio'))}× | {group} |")
    return rows


def budget_table(results: list[dict[str, Any]]) -> list[str]:
    """``quantize --budget`` per model: the task metric and output SQNR it reaches, the groups it promoted (int16,
    float) and the MAC ops left int8 (and run 16x8)."""
    rows = ["| model | budget | its measure on the budget's samples: full int8 → written | task metric: full int8 "
            "qdq → budget qdq / tflite | output SQNR dB: full int8 → budget qdq / tflite | groups promoted: int16 / "
            "float | MAC ops int8 / 16x8 | quantize s |",
            "|---|---|---|---|---|---|---|---|"]
    for r in results:
        budget = r.get("budget") or {}
        section, forms, full = budget.get("record") or {}, budget.get("forms") or {}, r.get("forms", {})
        share = section.get("int8_share") or {}
        metric = (f"{headline(r, full.get('onnx-qdq'))} → {headline(r, forms.get('onnx-qdq'))} / "
                  f"{headline(r, forms.get('tflite'))}")
        sqnr = " / ".join(num((forms.get(f) or {}).get("sqnr_db", {}).get("min")) for f in ("onnx-qdq", "tflite"))
        sqnr = f"{num((full.get('onnx-qdq') or {}).get('sqnr_db', {}).get('min'))} → {sqnr}"
        promotions = section.get("promotions", []) if section else None
        kept = (f"{sum(p.get('precision') == 'int16' for p in promotions)} / "
                f"{sum(p.get('precision') == 'float' for p in promotions)}" if promotions is not None else "—")
        macs = (f"{share.get('int8_mac_ops')}/{share.get('mac_ops')} / {share.get('int16_mac_ops', 0)}" if share
                else "—")
        measure = (f"{section['full_int8']:.3g} → {section['achieved']:.3g} ({section.get('samples')} samples)"
                   if "achieved" in section else "—")
        rows.append(f"| {r['name']} | {budget.get('budget', '—')}{'' if section.get('met', True) else ' (not met)'} | "
                    f"{measure} | {metric} | {sqnr} | {kept} | {macs} | {num(budget.get('wall_s'))} |")
    return rows


def write_markdown(path: Path, header: dict[str, Any], results: list[dict[str, Any]]) -> None:
    """results.md: header, summary table, every failure, per-model details."""
    mode = "quick" if header["quick"] else "full"
    lines = ["# edgeact model zoo", "",
             f"{header['date']} · {header['cpu']} ({header['cores']} cores) · Python {header['python']} · commit "
             f"{header['commit']} · {mode} run · "
             + ", ".join(f"{k} {v}" for k, v in sorted(header["versions"].items())), "",
             "Each model is quantized by `edgeact quantize` with default options (method auto, target litert) and by "
             "onnxruntime `quantize_static`; task metrics compare each int8 form with the fp32 model on the same "
             "evaluation images (see bench/zoo/README.md for every metric's definition). ✗ = failed, — = not "
             "produced. Latency ratios: int8 time / fp32 time, one thread.", "", *table(results), ""]
    lines += ["## Speed", "", SPEED_INTRO, "", *speed_table(results), ""]
    lines += ["## Sensitivity analysis", "",
              "`edgeact sensitivity` (default options: 16 calibration samples per trial, 12 segments) against one "
              "calibration pass (`edgeact calibrate`) of the same model and data, both as whole commands (wall time; "
              "sensitivity includes its own calibration and plan). Target: at most 10×.", "",
              *sensitivity_table(results), "",
              "## quantize --budget", "",
              "`edgeact quantize --budget` (onnx-qdq and tflite) with each model's task metric at issue 14's bar "
              "(`bench/zoo/budget_metrics.py`, given as `--metric`: top-1 agreement ≥ 0.99, decoded text ≥ 0.98, "
              "detectors min(kept / 98%, score SQNR / 25 dB) ≥ 1, O-Net decisions ≥ 0.99): the fewest, most "
              "sensitive tensor groups promoted (int16, 16x8 in the .tflite; float where the target has no 16x8 "
              "kernel for them) so that the measure on 64 calibration samples (groups ranked on the first 16) "
              "reaches it; every form then scored on the evaluation set like the full int8 ones.", "",
              *budget_table(results), ""]
    failures = [(r["name"], e) for r in results for e in r["errors"]]
    lines += ["## Failures", ""] + ([f"- **{n}** — {e['step']}: `{_escape(e['error'])}`" for n, e in failures]
                                    or ["none"]) + [""]
    lines += ["## Models", ""]
    for result in results:
        lines += details(result)
    path.write_text("\n".join(lines).rstrip() + "\n")
