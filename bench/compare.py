"""edgeact against onnxruntime.quantization.quantize_static, side by side, on the digits examples (or any ONNX model
with calibration and eval data):

    make bench                                            # the four digits examples -> bench/results.md
    .venv/bin/python -m bench.compare --model m.onnx --calib calib.npz --eval eval.npz [--labels labels.npz]

For every model: output SQNR and (with labels) top-1 accuracy against fp32 on the eval data; quantization wall time
and peak memory (each quantizer runs in a fresh process); int8 vs fp32 latency on onnxruntime and on LiteRT (1 and
2 threads, median of interleaved runs). onnxruntime runs MinMax, Percentile and Entropy calibration with QInt8 and
QUInt8 activations (QDQ, per-channel int8 weights). A quantizer that crashes or writes a model that will not load
is a result: its row says so.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgeact.io import atomic_write

ORT_METHODS = ("MinMax", "Percentile", "Entropy")
ORT_ACTIVATIONS = ("QInt8", "QUInt8")
LATENCY_RUNS = 200


# ---- child processes: one quantizer each, time and peak memory measured there -----------------------------------
def _child(spec: dict) -> dict:
    start = time.perf_counter()
    if spec["tool"] == "edgeact":
        import edgeact

        result = edgeact.quantize(spec["model"], spec["calib"], output_dir=spec["out"], float_tflite=True,
                                  formats=["onnx-qdq", "tflite"])
        outputs = {"onnx": str(result.paths["onnx-qdq"]), "tflite": str(result.paths["tflite"]),
                   "fp32_tflite": str(result.paths["fp32-tflite"])}
    else:
        from bench.ort_baseline import ort_quantize_static

        out = Path(spec["out"]) / f"ort_{spec['method']}_{spec['activation']}.onnx"
        ort_quantize_static(Path(spec["model"]), dict(np.load(spec["calib"])), out, spec["method"], spec["activation"])
        outputs = {"onnx": str(out)}
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": time.perf_counter() - start, "peak_mb": peak_mb, "outputs": outputs}


def _spawn(spec: dict) -> dict:
    process = subprocess.run([sys.executable, "-m", "bench.compare", "--child", json.dumps(spec)],
                             capture_output=True, text=True, check=False)
    if process.returncode != 0:
        tail = (process.stderr.strip().splitlines() or ["no message"])[-1]
        return {"error": f"crashed: {tail[:160]}"}
    return json.loads(process.stdout.strip().splitlines()[-1])


# ---- evaluation in this process -------------------------------------------------------------------------------------
def _ort(path: str, threads: int = 2):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _quality(path: str, x: np.ndarray, reference: np.ndarray, labels: np.ndarray | None) -> dict:
    from edgeact.metrics import sqnr_db

    try:
        session = _ort(path)
        logits = session.run(None, {session.get_inputs()[0].name: x})[0]
    except Exception as exc:  # a model the runtime will not load is a result
        return {"error": f"onnxruntime cannot run it: {str(exc).splitlines()[0][:120]}"}
    accuracy = 100.0 * float((logits.argmax(1) == labels).mean()) if labels is not None else None
    return {"sqnr_db": sqnr_db(reference, logits), "accuracy": accuracy}


def _interleaved(invokers: dict) -> dict[str, float]:
    for invoke in invokers.values():
        for _ in range(10):
            invoke()
    times: dict[str, list[float]] = {name: [] for name in invokers}
    for _ in range(LATENCY_RUNS):
        for name, invoke in invokers.items():
            start = time.perf_counter()
            invoke()
            times[name].append(time.perf_counter() - start)
    return {name: 1e6 * statistics.median(values) for name, values in times.items()}


def _latency(float_model: str, int8: dict, x: np.ndarray) -> dict:
    from edgeact.runtimes.litert import litert_interpreter

    sample = x[:1]
    rows = {}
    for threads in (1, 2):
        sessions = {"fp32": _ort(float_model, threads), "int8": _ort(int8["onnx"], threads)}
        name = sessions["fp32"].get_inputs()[0].name
        rows[f"onnxruntime {threads}t"] = _interleaved(
            {k: (lambda s=s: s.run(None, {name: sample})) for k, s in sessions.items()})
        interpreters = {}
        for kind, path in (("fp32", int8["fp32_tflite"]), ("int8", int8["tflite"])):
            interpreter = litert_interpreter(Path(path).read_bytes(), "xnnpack", threads)
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], sample.astype(np.float32))
            interpreters[kind] = interpreter.invoke
        rows[f"LiteRT+XNNPACK {threads}t"] = _interleaved(interpreters)
    return rows


def compare(name: str, model: Path, calib: Path, eval_path: Path, labels: Path | None, work: Path) -> dict:
    x = np.load(eval_path)["x"]
    label_values = np.load(labels)["labels"] if labels is not None else None
    reference = _ort(str(model)).run(None, {_ort(str(model)).get_inputs()[0].name: x})[0]
    float_accuracy = 100.0 * float((reference.argmax(1) == label_values).mean()) if labels is not None else None
    rows = {}
    base = {"model": str(model), "calib": str(calib), "out": str(work)}
    edgeact_run = _spawn({**base, "tool": "edgeact"})
    rows["edgeact auto"] = {**edgeact_run, **(_quality(edgeact_run["outputs"]["onnx"], x, reference, label_values)
                                              if "error" not in edgeact_run else {})}
    for method in ORT_METHODS:
        for activation in ORT_ACTIVATIONS:
            run = _spawn({**base, "tool": "ort", "method": method, "activation": activation})
            quality = _quality(run["outputs"]["onnx"], x, reference, label_values) if "error" not in run else {}
            rows[f"onnxruntime {method} {activation}"] = {**run, **quality}
    latency = _latency(str(model), edgeact_run["outputs"], x) if "error" not in edgeact_run else {}
    return {"name": name, "float_accuracy": float_accuracy, "rows": rows, "latency": latency}


# ---- results.md -----------------------------------------------------------------------------------------------------
def machine() -> str:
    import ai_edge_litert
    import onnxruntime

    import edgeact

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    cores = len([line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("processor")])
    return (f"{cpu}, {cores} cores, {platform.system()} {platform.machine()}, Python {platform.python_version()}; "
            f"edgeact {edgeact.__version__}, onnxruntime {onnxruntime.__version__}, "
            f"ai-edge-litert {getattr(ai_edge_litert, '__version__', '?')}")


def _cell(value, fmt: str) -> str:  # type: ignore[no-untyped-def]
    return "-" if value is None else format(value, fmt)


def markdown(results: list[dict]) -> str:
    lines = ["# edgeact vs onnxruntime.quantization", "", f"Machine: {machine()}.", "",
             "Generated by `make bench` (`python -m bench.compare`); do not edit by hand.", "",
             "`quantize s` and `peak MB` are measured in a fresh process per quantizer: edgeact's includes its "
             "TFLite exports and their load check; peak memory is mostly the imported libraries.",
             "onnxruntime's static quantizer leaves LSTM (and Tanh/Gelu) in float, so on the LSTM its SQNR measures a "
             "mostly float model; edgeact's runs every gate as an int8 table.", ""]
    for result in results:
        lines += [f"## {result['name']} (float accuracy {_cell(result['float_accuracy'], '.1f')}%)", "",
                  "| quantizer | SQNR dB | accuracy % | quantize s | peak MB | note |", "|---|---:|---:|---:|---:|---|"]
        for label, row in result["rows"].items():
            lines.append(f"| {label} | {_cell(row.get('sqnr_db'), '.1f')} | {_cell(row.get('accuracy'), '.1f')} | "
                         f"{_cell(row.get('seconds'), '.2f')} | {_cell(row.get('peak_mb'), '.0f')} | "
                         f"{row.get('error', '')} |")
        lines += ["", "| runtime | fp32 µs | int8 µs | int8 / fp32 |", "|---|---:|---:|---:|"]
        for runtime, timing in result["latency"].items():
            lines.append(f"| {runtime} | {timing['fp32']:.1f} | {timing['int8']:.1f} | "
                         f"{timing['int8'] / timing['fp32']:.2f} |")
        lines.append("")
    return "\n".join(lines)


def summary(results: list[dict]) -> str:
    """The README's table: edgeact next to the best onnxruntime configuration, per model."""
    lines = ["| model | float % | edgeact % (SQNR dB) | best onnxruntime % (SQNR dB), configuration |",
             "|---|---:|---:|---|"]
    for result in results:
        mine = result["rows"]["edgeact auto"]
        theirs = [(label, row) for label, row in result["rows"].items() if label != "edgeact auto" and "sqnr_db" in row]
        label, best = max(theirs, key=lambda item: item[1]["sqnr_db"])
        configuration = label.removeprefix("onnxruntime ")
        lines.append(f"| {result['name']} | {_cell(result['float_accuracy'], '.1f')} | "
                     f"{_cell(mine.get('accuracy'), '.1f')} ({_cell(mine.get('sqnr_db'), '.1f')}) | "
                     f"{_cell(best.get('accuracy'), '.1f')} ({best['sqnr_db']:.1f}), {configuration} |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--calib", type=Path)
    parser.add_argument("--eval", type=Path)
    parser.add_argument("--labels", type=Path)
    parser.add_argument("--results", type=Path, default=Path("bench/results.md"))
    args = parser.parse_args(argv)
    if args.model is not None:
        jobs = [(args.model.stem, args.model, args.calib, args.eval, args.labels)]
    else:
        from examples.train_digits import FOLDER, MODELS

        jobs = [(name, FOLDER / f"{name}.onnx", FOLDER / f"{name}.calib.npz", FOLDER / f"{name}.eval.npz",
                 FOLDER / "labels.npz") for name in MODELS]
    results = []
    with tempfile.TemporaryDirectory() as work:
        for name, model, calib, eval_path, labels in jobs:
            folder = Path(work) / name
            folder.mkdir()
            results.append(compare(name, model, calib, eval_path, labels, folder))
            print(f"benchmarked {name}", file=sys.stderr)
    text = markdown(results)
    atomic_write(args.results, lambda tmp: tmp.write_text(text))
    print(summary(results))
    print(f"\nfull results: {args.results}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(_child(json.loads(sys.argv[2]))))
    else:
        main(sys.argv[1:])
