"""Stage 5, ``evaluate``: run every exported form and the float model on the same samples; SQNR per output.

Every .tflite is first loaded and invoked once on its target (a file that fails to load is never written); the
int8 forms run on onnxruntime (ONNX) or the target device's backend (TFLite: its runtime, or the emulator).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from edgeact.calibration.data import CalibrationData
from edgeact.documents.calibration_record import Evaluation
from edgeact.errors import EdgeactError
from edgeact.exporters.tflite.targets import target as target_profile
from edgeact.graph.importer import model_bytes
from edgeact.metrics import SqnrSum
from edgeact.pipeline.calibrate import first_batches
from edgeact.pipeline.export import Artifact, export
from edgeact.pipeline.prepare import Prepared
from edgeact.planning.plan import QuantPlan
from edgeact.reports.layers import layer_errors
from edgeact.runtimes.backends import OnnxRuntimeBackend, Runner, backend_for, check_runs, named_runner

EVAL_SAMPLES = 64
LOW_SQNR_DB = 20.0  # below this output SQNR (about 10% rms error) int8 is likely to cost task accuracy: say so
LOSS_SAMPLES, LOSS_BATCH = 16, 1  # calibration samples the tensors' losses are measured on, one at a time
WORST_SHOWN = 3  # tensors a low-SQNR warning names
MIN_NAMED_LOSS_DB = 1.0  # a tensor losing less than this against its inputs is not named


def _ort_runner(payload: bytes, what: str) -> Runner:
    return named_runner(OnnxRuntimeBackend(payload, what))


def _tflite_runner(payload: bytes, target: str, inputs: Sequence[str], outputs: Sequence[str]) -> Runner:
    """Runs one sample (a feed with a batch of 1) through a .tflite model on the target device's backend (its
    runtime, or the emulator under its rules, on the graph read back from the bytes)."""
    return named_runner(backend_for(target_profile(target), payload), inputs, outputs)


def _check_runs(artifact: Artifact, target: str) -> None:
    """Load and invoke once on zeros in the target's runtime: never write a file that fails when loaded."""
    check_runs(target_profile(target), artifact.payload, artifact.lowering.graph)


def loadable(artifacts: dict[str, Artifact], target: str) -> list[str]:
    """Check every .tflite on ``target``: an int8 one that fails is an error; a float32 one that fails is dropped
    from ``artifacts`` with the warning returned."""
    warnings = []
    if "tflite" in artifacts:
        _check_runs(artifacts["tflite"], target)
    if "fp32-tflite" in artifacts:
        try:
            _check_runs(artifacts["fp32-tflite"], target)
        except EdgeactError as exc:
            warnings.append(f"float32 .tflite not written: {exc}")
            del artifacts["fp32-tflite"]
    return warnings


def _runners(prepared: Prepared, artifacts: dict[str, Artifact], target: str) -> dict[str, Runner]:
    """How to run each int8 form (the float32 .tflite is a baseline, not evaluated)."""
    view = prepared.view
    return {form: (_tflite_runner(artifact.payload, target, view.inputs, view.outputs) if form == "tflite"
                   else _ort_runner(artifact.payload, form))
            for form, artifact in artifacts.items() if form != "fp32-tflite"}


def evaluate(prepared: Prepared, artifacts: dict[str, Artifact], data: CalibrationData | None,
             target: str = "litert") -> Evaluation:
    """Stage 5: SQNR (dB) of each int8 form against the float model, per graph output, on up to
    ``EVAL_SAMPLES`` samples of ``data`` (one at a time: every form sees the same feeds)."""
    if data is None:
        return Evaluation()
    runners = _runners(prepared, artifacts, target)
    reference = _ort_runner(model_bytes(prepared.model), f"float model {prepared.source}")
    sums: dict[str, dict[str, SqnrSum]] = {form: {} for form in runners}
    seen = 0
    for feeds in data.samples():  # one sample at a time, nothing kept but the sums
        expected = reference(feeds)
        for form, runner in runners.items():
            for name, value in runner(feeds).items():
                sums[form].setdefault(name, SqnrSum()).add(expected[name], value)
        seen += 1
        if seen >= EVAL_SAMPLES:
            break
    forms = {form: {name: total.db for name, total in outputs.items()} for form, outputs in sums.items()}
    return Evaluation(samples=seen, forms=forms)


def is_low(evaluation: Evaluation) -> bool:
    """Whether some form's worst output is below ``LOW_SQNR_DB`` against fp32."""
    return any(outputs and min(outputs.values()) < LOW_SQNR_DB for outputs in evaluation.forms.values())


@dataclass(frozen=True)
class TensorLoss:
    tensor: str
    sqnr_db: float  # the int8 tensor against the float one
    drop_db: float  # what it loses against the planned tensors its producer reads (its own share of the error)


def worst_tensors(prepared: Prepared, plan: QuantPlan, artifacts: dict[str, Artifact],
                  data: CalibrationData | None) -> list[TensorLoss]:
    """The planned tensors that lose most SQNR against the tensors their producer reads (QDQ model against the
    float model, on the first ``LOSS_SAMPLES`` calibration samples), most first."""
    if data is None:
        return []
    qdq = artifacts["onnx-qdq"].payload if "onnx-qdq" in artifacts else export(prepared, plan, "onnx-qdq").payload
    batches = first_batches(data, LOSS_SAMPLES, LOSS_BATCH, prepared)
    measured = {e.tensor: e.sqnr_db for e in layer_errors(prepared.model, plan, qdq, batches, (), {})}
    losses = []
    for name, db in measured.items():
        producer = prepared.view.producer(name)
        upstream = [measured[i] for i in (producer.inputs if producer is not None else ()) if i in measured]
        if upstream and math.isfinite(db) and min(upstream) - db >= MIN_NAMED_LOSS_DB:
            losses.append(TensorLoss(name, db, min(upstream) - db))
    return sorted(losses, key=lambda loss: -loss.drop_db)[:WORST_SHOWN]


def low_sqnr_warnings(evaluation: Evaluation, model: str, worst: Sequence[TensorLoss] = ()) -> list[str]:
    """A warning for each form whose worst output is below ``LOW_SQNR_DB`` against fp32, naming the tensors that
    lose most (``worst``), with what to do next."""
    named = ""
    if worst:
        named = "; the tensors that lose most: " + ", ".join(
            f"{loss.tensor!r} ({loss.drop_db:.1f} dB lost, {loss.sqnr_db:.1f} dB)" for loss in worst)
    warnings = []
    for form, outputs in evaluation.forms.items():
        if not outputs:
            continue
        name, db = min(outputs.items(), key=lambda item: item[1])
        if db < LOW_SQNR_DB:
            warnings.append(
                f"{form}: output {name!r} is {db:.1f} dB SQNR against fp32 on {evaluation.samples} calibration "
                f"samples (below {LOW_SQNR_DB:.0f} dB: int8 may cost task accuracy){named}; `edgeact sensitivity "
                f"{model} --calib ...` ranks the tensor groups that cost most, and `--budget sqnr>=30` (or your task "
                "metric) keeps the fewest of them wider")
    return warnings
