"""Hostile-but-fair inputs for every command: each gets a clear message, never a traceback or an "internal error".

One table of cases (an id, the command line, the names a refusal must mention, the exit codes allowed) runs through
the real CLI in-process. Every case checks: exit code 0, 1 or 2 (3 only for a gate regression the case expects), no
"Traceback" and no "internal error" in the output, a non-zero exit names the offending file or option, no input file
changed (sha256), and no hidden temp file left behind. Cases marked REFUSE are inputs no command can use: they must
exit 1 or 2; DONE cases are fair controls that must work. The inputs are built once per module from the bundled
examples/digits models and data (object.npz would, if unpickled, create a hidden marker file: the hidden-file check
catches it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner, Result
from onnx import TensorProto, helper, numpy_helper

from edgeact.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "digits"

OK = frozenset({0, 1, 2})  # any clean outcome: done, refused, usage error
REFUSE = frozenset({1, 2})  # unusable input: must be refused
DONE = frozenset({0})  # controls: a fair run that must work
REGRESSION = frozenset({3})


@dataclass(frozen=True)
class World:
    """The folder tree the cases run in: ``inputs`` (every file a case reads) and one output folder per case."""

    root: Path
    inputs: Path

    def resolve(self, token: str, out: Path) -> str:
        """``@name`` is a file under the inputs folder, ``{out}`` the case's output folder; the rest is literal."""
        if token.startswith("@"):
            return str(self.inputs / token[1:])
        return token.replace("{out}", str(out))


Builder = Callable[[World, Path], list[str]]


@dataclass(frozen=True)
class Case:
    id: str
    args: Builder
    blame: tuple[str, ...]  # a non-zero exit must name at least one of these (a file name or an option)
    codes: frozenset[int] = OK
    env: dict[str, str] | None = None  # environment variables for the run


def cmd(*tokens: str) -> Builder:
    """The command line as data: tokens, with ``@input`` and ``{out}`` resolved when the case runs."""
    return lambda world, out: [world.resolve(token, out) for token in tokens]


def case(id: str, line: str | tuple[str, ...], blame: str | tuple[str, ...], codes: frozenset[int] = OK,
         env: dict[str, str] | None = None) -> Case:
    tokens = tuple(line.split()) if isinstance(line, str) else line
    return Case(id, cmd(*tokens), (blame,) if isinstance(blame, str) else blame, codes, env)


# Common command prefixes (the mlp_tanh example: one input x [N, 64], one output logits).
Q = "quantize @mlp_tanh.onnx --format onnx-qdq -o {out}"
QC = Q + " --calib @calib.npz"
SENS = "sensitivity @mlp_tanh.onnx --samples 8"
CAL = "calibrate @mlp_tanh.onnx --stats-out {out}/s.json"
CALC = CAL + " --calib @calib.npz"
PROF = "profile-device @q/mlp_tanh.int8.qdq.onnx --latency-runs 2 --json {out}/r.json"
PROFD = PROF + " --device onnxruntime-cpu"
PROFDB = PROFD + " --baseline @mlp_tanh.onnx"
PROFALL = PROFDB + " --data @eval.npz"
GATE = "gate @report.json --baseline @baseline.json"
LUT = "lut tanh --in-scale 0.03125 --in-zero-point 0"


def _link_to_calib(world: World, out: Path) -> list[str]:
    """--stats-out is a symbolic link to the calibration data: writing it must not write through the link."""
    (out / "link.json").symlink_to(world.inputs / "calib.npz")
    return ["calibrate", str(world.inputs / "mlp_tanh.onnx"), "--calib", str(world.inputs / "calib.npz"),
            "--stats-out", str(out / "link.json")]


CASES: list[Case] = [
    # ---- quantize: the model is not a usable ONNX model
    case("quantize-control", QC, "mlp_tanh", DONE),
    case("quantize-model-empty-file", "quantize @empty.onnx --calib @calib.npz -o {out}", "empty.onnx", REFUSE),
    case("quantize-model-truncated", "quantize @truncated.onnx --calib @calib.npz -o {out}", "truncated.onnx",
         REFUSE),
    case("quantize-model-garbage-bytes", "quantize @garbage.onnx --calib @calib.npz -o {out}", "garbage.onnx",
         REFUSE),
    case("quantize-model-is-json", "quantize @json.onnx --calib @calib.npz -o {out}", "json.onnx", REFUSE),
    case("quantize-model-is-folder", "quantize @models --calib @calib.npz -o {out}", "models", REFUSE),
    case("quantize-model-folder-named-onnx", "quantize @folder.onnx --calib @calib.npz -o {out}", "folder.onnx",
         REFUSE),
    case("quantize-model-missing", "quantize @missing.onnx --calib @calib.npz -o {out}", "missing.onnx", REFUSE),
    case("quantize-model-no-outputs", "quantize @no_outputs.onnx --calib @calib.npz -o {out}", "no_outputs", REFUSE),
    case("quantize-model-no-inputs", "quantize @no_inputs.onnx --calib @calib.npz -o {out}", "no_inputs"),
    case("quantize-model-int64-input", "quantize @int64_input.onnx --calib @int64_calib.npz -o {out}",
         ("int64_input", "int64")),
    case("quantize-model-int64-input-float-data", "quantize @int64_input.onnx --calib @calib4.npz -o {out}",
         ("int64_input", "calib4.npz", "int64")),
    case("quantize-model-rank0-input", "quantize @rank0_input.onnx --calib @rank0_calib.npz -o {out}",
         ("rank0_input", "rank0_calib.npz")),
    case("quantize-model-opset-99", "quantize @opset99.onnx --calib @calib.npz -o {out}", "opset99.onnx", REFUSE),
    case("quantize-model-opset-5", "quantize @opset5.onnx --calib @calib.npz -o {out}", "opset5.onnx"),
    case("quantize-model-custom-op", "quantize @custom_op.onnx --calib @calib4.npz -o {out}",
         ("custom_op", "Frobnicate"), REFUSE),
    case("quantize-model-weight-shape-mismatch", "quantize @bad_weights.onnx --calib @calib.npz -o {out}",
         "bad_weights", REFUSE),
    case("quantize-model-cycle", "quantize @cycle.onnx --calib @calib4.npz -o {out}", "cycle.onnx", REFUSE),
    case("quantize-model-external-data-missing", "quantize @external.onnx --calib @calib4.npz -o {out}",
         ("external.onnx", "missing_weights.bin"), REFUSE),
    case("quantize-model-non-utf8-node-name", "quantize @utf8_node_name.onnx --calib @calib.npz -o {out}",
         "utf8_node_name.onnx"),
    case("quantize-model-non-utf8-tensor-name", "quantize @utf8_tensor_name.onnx --calib @calib.npz -o {out}",
         "utf8_tensor_name.onnx"),
    case("quantize-model-non-utf8-doc-string", "quantize @utf8_doc_string.onnx --calib @calib.npz -o {out}",
         "utf8_doc_string.onnx"),
    case("quantize-model-non-utf8-input-name", "quantize @utf8_input_name.onnx --calib @calib.npz -o {out}",
         ("utf8_input_name.onnx", "calib.npz")),
    case("quantize-model-is-tflite", "quantize @q/mlp_tanh.int8.tflite --calib @calib.npz -o {out}",
         "mlp_tanh.int8.tflite", REFUSE),
    case("quantize-model-already-int8", "quantize @q/mlp_tanh.int8.qdq.onnx --calib @calib.npz -o {out}",
         "mlp_tanh.int8.qdq.onnx"),
    case("quantize-model-garbage-torchscript", "quantize @garbage.pt --calib @calib.npz -o {out}", "garbage.pt",
         REFUSE),
    case("quantize-model-missing-factory-file", "quantize @missing_factory.py:build --calib @calib.npz -o {out}",
         "missing_factory.py", REFUSE),
    # ---- quantize: calibration data
    case("quantize-calib-wrong-input-name", Q + " --calib @wrong_name.npz", "wrong_name.npz", REFUSE),
    case("quantize-calib-float64", Q + " --calib @f64.npz", "f64.npz"),
    case("quantize-calib-int32", Q + " --calib @i32.npz", "i32.npz"),
    case("quantize-calib-bool", Q + " --calib @bool.npz", "bool.npz"),
    case("quantize-calib-complex", Q + " --calib @complex.npz", "complex.npz", REFUSE),
    case("quantize-calib-object-pickle", Q + " --calib @object.npz", "object.npz", REFUSE),
    case("quantize-calib-strings", Q + " --calib @strings.npz", "strings.npz", REFUSE),
    case("quantize-calib-rank1", Q + " --calib @rank1.npz", "rank1.npz", REFUSE),
    case("quantize-calib-rank3", Q + " --calib @rank3.npz", "rank3.npz", REFUSE),
    case("quantize-calib-wrong-width", Q + " --calib @width63.npz", "width63.npz", REFUSE),
    case("quantize-calib-scalar", Q + " --calib @scalar.npz", "scalar.npz", REFUSE),
    case("quantize-calib-zero-samples", Q + " --calib @zero_samples.npz", "zero_samples.npz", REFUSE),
    case("quantize-calib-nan", Q + " --calib @nan.npz", "nan.npz", REFUSE),
    case("quantize-calib-inf", Q + " --calib @inf.npz", "inf.npz", REFUSE),
    case("quantize-calib-nan-skipped", Q + " --calib @nan.npz --skip-bad-samples", "nan.npz"),
    case("quantize-calib-all-nan-skipped", Q + " --calib @all_nan.npz --skip-bad-samples", "all_nan.npz", REFUSE),
    case("quantize-calib-all-zeros", Q + " --calib @zeros.npz", "zeros.npz"),
    case("quantize-calib-huge-values", Q + " --calib @huge.npz", "huge.npz"),
    case("quantize-calib-one-sample", Q + " --calib @one_sample.npz", "one_sample.npz"),
    case("quantize-calib-float16", Q + " --calib @f16.npz", "f16.npz"),
    case("quantize-calib-other-model", Q + " --calib @cnn_calib.npz", "cnn_calib.npz", REFUSE),
    case("quantize-calib-mixed-folder", Q + " --calib @mixed", ("mixed", "other_name.npz")),
    case("quantize-calib-mixed-widths-folder", Q + " --calib @mixed_widths", ("mixed_widths", "narrow.npz")),
    case("quantize-calib-empty-folder", Q + " --calib @empty_dir", "empty_dir", REFUSE),
    case("quantize-calib-folder-without-npz", Q + " --calib @no_npz_dir", "no_npz_dir", REFUSE),
    case("quantize-calib-not-a-zip", Q + " --calib @not_zip.npz", "not_zip.npz", REFUSE),
    case("quantize-calib-empty-file", Q + " --calib @empty.npz", "empty.npz", REFUSE),
    case("quantize-calib-zip-without-members", Q + " --calib @no_members.npz", "no_members.npz", REFUSE),
    case("quantize-calib-member-garbage-npy", Q + " --calib @garbage_member.npz", "garbage_member.npz", REFUSE),
    case("quantize-calib-member-not-npy", Q + " --calib @txt_member.npz", "txt_member.npz", REFUSE),
    case("quantize-calib-truncated-npz", Q + " --calib @truncated.npz", "truncated.npz", REFUSE),
    case("quantize-calib-lying-npy-header", Q + " --calib @lying_header.npz", "lying_header.npz", REFUSE),
    case("quantize-calib-unparsable-npy-header", Q + " --calib @bad_header.npz", "bad_header.npz", REFUSE),
    case("quantize-calib-over-the-size-limit", QC, ("calib.npz", "EDGEACT_MAX_ARRAY_BYTES"), REFUSE,
         env={"EDGEACT_MAX_ARRAY_BYTES": "1KiB"}),
    case("quantize-size-limit-not-a-size", QC, "EDGEACT_MAX_ARRAY_BYTES", REFUSE,
         env={"EDGEACT_MAX_ARRAY_BYTES": "lots"}),
    case("quantize-calib-npy-not-npz", Q + " --calib @calib.npy", "calib.npy"),
    case("quantize-calib-missing", Q + " --calib @missing.npz", "missing.npz", REFUSE),
    # ---- quantize: options
    case("quantize-no-calib-no-stats", Q, ("--calib", "--stats"), REFUSE),
    case("quantize-batch-size-huge", QC + " --batch-size 1000000000", "--batch-size"),
    case("quantize-batch-size-zero", QC + " --batch-size 0", "--batch-size", REFUSE),
    case("quantize-exclude-odd-names", (*QC.split(), "--exclude", "", "no/such node", "../..", "*", "Tanh"),
         "--exclude"),
    case("quantize-exclude-every-op", QC + " --exclude Gemm Tanh", "--exclude"),
    case("quantize-format-unknown", QC + " --format onnx-qdq,bogus", ("--format", "bogus"), REFUSE),
    case("quantize-format-duplicate", QC + " --format onnx-qdq,onnx-qdq", "--format"),
    case("quantize-format-empty", (*QC.split(), "--format", ""), "--format", REFUSE),
    case("quantize-format-only-commas", QC + " --format ,,,", "--format", REFUSE),
    case("quantize-target-garbage-profile", QC + " --format tflite --target @garbage_profile.toml",
         "garbage_profile.toml", REFUSE),
    case("quantize-target-profile-of-onnxruntime", QC + " --format tflite --target @ort_profile.toml",
         "ort_profile.toml"),
    case("quantize-input-shape-zero", QC + " --format tflite --input-shape x=0x64", "--input-shape", REFUSE),
    case("quantize-input-shape-negative", QC + " --format tflite --input-shape x=1x-64", "--input-shape", REFUSE),
    case("quantize-input-shape-wrong-name", QC + " --format tflite --input-shape y=1x64", "--input-shape",
         REFUSE),
    case("quantize-input-shape-wrong-rank", QC + " --format tflite --input-shape x=1x64x1", "--input-shape",
         REFUSE),
    case("quantize-input-shape-conflicts", QC + " --format tflite --input-shape x=1x63", "--input-shape",
         REFUSE),
    case("quantize-input-shape-garbage", QC + " --input-shape x=axb", "--input-shape", REFUSE),
    case("quantize-stats-control", Q + " --stats @stats.json", "stats.json", DONE),
    case("quantize-stats-not-json", Q + " --stats @not_json.json", "not_json.json", REFUSE),
    case("quantize-stats-empty-object", Q + " --stats @empty_object.json", "empty_object.json", REFUSE),
    case("quantize-stats-json-list", Q + " --stats @list.json", "list.json", REFUSE),
    case("quantize-stats-truncated", Q + " --stats @truncated_stats.json", "truncated_stats.json", REFUSE),
    case("quantize-stats-min-above-max", Q + " --stats @tampered_stats.json", "tampered_stats.json", REFUSE),
    case("quantize-stats-of-another-model", Q + " --stats @cnn_stats.json", "cnn_stats.json", REFUSE),
    case("quantize-stats-only-tflite", Q + " --stats @stats.json --format tflite", "stats.json"),
    case("quantize-output-dir-is-file", "quantize @mlp_tanh.onnx --calib @calib.npz -o @a_file.txt", "a_file.txt",
         REFUSE),
    case("quantize-output-dir-under-file", "quantize @mlp_tanh.onnx --calib @calib.npz -o @a_file.txt/sub",
         "a_file.txt", REFUSE),
    case("quantize-output-name-taken-by-folder",
         "quantize @mlp_tanh.onnx --calib @calib.npz --format onnx-qdq -o @occupied", "mlp_tanh.int8.qdq.onnx",
         REFUSE),
    case("quantize-record-would-replace-stats",
         "quantize @mlp_tanh.onnx --stats @rec/mlp_tanh.calibration.json --format onnx-qdq -o @rec",
         "mlp_tanh.calibration.json", REFUSE),
    # ---- calibrate
    case("calibrate-control", CALC, "mlp_tanh", DONE),
    case("calibrate-stats-out-is-folder", "calibrate @mlp_tanh.onnx --calib @calib.npz --stats-out @models",
         ("models", "--stats-out"), REFUSE),
    case("calibrate-stats-out-under-file", "calibrate @mlp_tanh.onnx --calib @calib.npz --stats-out @a_file.txt/s.json",
         "a_file.txt", REFUSE),
    case("calibrate-stats-out-is-the-calib", "calibrate @mlp_tanh.onnx --calib @calib.npz --stats-out @calib.npz",
         ("calib.npz", "--stats-out"), REFUSE),
    Case("calibrate-stats-out-link-to-the-calib", lambda world, out: _link_to_calib(world, out),
         ("link.json", "calib.npz", "--stats-out")),
    case("calibrate-batch-size-huge", CALC + " --batch-size 1000000000", "--batch-size"),
    case("calibrate-nan-skipped", CAL + " --calib @nan.npz --skip-bad-samples", "nan.npz"),
    case("calibrate-zero-samples", CAL + " --calib @zero_samples.npz", "zero_samples.npz", REFUSE),
    case("calibrate-object-pickle", CAL + " --calib @object.npz", "object.npz", REFUSE),
    case("calibrate-input-shape-wrong-name", CALC + " --input-shape y=1x64", "--input-shape", REFUSE),
    case("calibrate-model-no-outputs", "calibrate @no_outputs.onnx --calib @calib.npz --stats-out {out}/s.json",
         "no_outputs", REFUSE),
    case("calibrate-model-rank0-scalar-data",
         "calibrate @rank0_input.onnx --calib @scalar4.npz --stats-out {out}/s.json", ("rank0_input", "scalar4.npz")),
    # ---- sensitivity, and quantize --budget
    case("sensitivity-control", SENS + " --calib @calib.npz --json {out}/s.json --html {out}/s.html", "mlp_tanh",
         DONE),
    case("sensitivity-model-garbage", "sensitivity @garbage.onnx --calib @calib.npz", "garbage.onnx", REFUSE),
    case("sensitivity-no-data", SENS, "--calib", REFUSE),
    case("sensitivity-calib-nan", SENS + " --calib @nan.npz", "nan.npz", REFUSE),
    case("sensitivity-eval-other-model", SENS + " --calib @calib.npz --eval @cnn_calib.npz", "cnn_calib.npz",
         REFUSE),
    case("sensitivity-eval-empty-folder", SENS + " --calib @calib.npz --eval @empty_dir", "empty_dir", REFUSE),
    case("sensitivity-json-is-the-model", SENS + " --calib @calib.npz --json @mlp_tanh.onnx", "mlp_tanh.onnx",
         REFUSE),
    case("sensitivity-json-in-missing-folder", SENS + " --calib @calib.npz --json {out}/no/such/dir/s.json",
         "s.json", REFUSE),
    case("sensitivity-unknown-metric", SENS + " --calib @calib.npz --metric f1", "--metric", REFUSE),
    case("sensitivity-zero-samples", SENS + " --calib @calib.npz --samples 0", "--samples", REFUSE),
    case("quantize-budget-control", QC + " --budget sqnr>=20", "mlp_tanh", DONE),
    case("quantize-budget-malformed", QC + " --budget sqnr=20", "--budget", REFUSE),
    case("quantize-budget-unknown-measure", QC + " --budget f1>=0.9", "--budget", REFUSE),
    case("quantize-budget-eval-other-model", QC + " --budget top1>=0.99 --eval @cnn_calib.npz", "cnn_calib.npz",
         REFUSE),
    # ---- profile-device
    case("profile-control", PROFALL, "mlp_tanh", DONE),
    case("profile-device-unknown", PROF + " --device no-such-board --baseline @mlp_tanh.onnx --data @eval.npz",
         ("no-such-board", "--device"), REFUSE),
    case("profile-device-garbage-toml",
         PROF + " --device @garbage_profile.toml --baseline @mlp_tanh.onnx --data @eval.npz", "garbage_profile.toml",
         REFUSE),
    case("profile-device-toml-missing-fields",
         PROF + " --device @half_profile.toml --baseline @mlp_tanh.onnx --data @eval.npz", "half_profile.toml",
         REFUSE),
    case("profile-device-is-folder", PROF + " --device @models --baseline @mlp_tanh.onnx --data @eval.npz",
         ("models", "--device"), REFUSE),
    case("profile-device-toml-wrong-type",
         PROF + " --device @threads_text.toml --baseline @mlp_tanh.onnx --data @eval.npz", "threads_text.toml",
         REFUSE),
    case("profile-device-toml-empty", PROF + " --device @empty.toml --baseline @mlp_tanh.onnx --data @eval.npz",
         "empty.toml", REFUSE),
    case("profile-tflite-truncated", "profile-device @truncated.tflite --device tflm --baseline @mlp_tanh.onnx "
         "--data @eval.npz --latency-runs 2", "truncated.tflite", REFUSE),
    case("profile-tflite-garbage", "profile-device @garbage.tflite --device litert-reference --baseline @mlp_tanh.onnx "
         "--data @eval.npz --latency-runs 2", "garbage.tflite", REFUSE),
    case("profile-tflite-is-onnx", "profile-device @onnx_inside.tflite --device litert-xnnpack "
         "--baseline @mlp_tanh.onnx --data @eval.npz --latency-runs 2", "onnx_inside.tflite", REFUSE),
    case("profile-tflite-empty", "profile-device @empty.tflite --device cmsis-nn --baseline @mlp_tanh.onnx "
         "--data @eval.npz --latency-runs 2", "empty.tflite", REFUSE),
    case("profile-html-and-json-same-file", PROFALL + " --html {out}/r.json", ("--html", "--json")),
    case("profile-tflite-on-onnxruntime",
         "profile-device @q/mlp_tanh.int8.tflite --device onnxruntime-cpu --baseline @mlp_tanh.onnx --data @eval.npz "
         "--latency-runs 2", ("mlp_tanh.int8.tflite", "onnxruntime-cpu"), REFUSE),
    case("profile-onnx-on-tflm", PROF + " --device tflm --baseline @mlp_tanh.onnx --data @eval.npz",
         ("mlp_tanh.int8.qdq.onnx", "tflm"), REFUSE),
    case("profile-baseline-is-npz", PROFD + " --baseline @calib.npz --data @eval.npz", "calib.npz", REFUSE),
    case("profile-baseline-is-json", PROFD + " --baseline @json.onnx --data @eval.npz", "json.onnx", REFUSE),
    case("profile-baseline-of-another-model", PROFD + " --baseline @cnn_silu.onnx --data @eval.npz",
         "cnn_silu.onnx", REFUSE),
    case("profile-model-empty", "profile-device @empty.onnx --device onnxruntime-cpu --baseline @mlp_tanh.onnx "
         "--data @eval.npz", "empty.onnx", REFUSE),
    case("profile-model-is-the-float-model", "profile-device @mlp_tanh.onnx --device onnxruntime-cpu "
         "--baseline @mlp_tanh.onnx --data @eval.npz --latency-runs 2", "mlp_tanh.onnx"),
    case("profile-data-of-another-model", PROFDB + " --data @cnn_eval.npz", "cnn_eval.npz", REFUSE),
    case("profile-data-wrong-input-name", PROFDB + " --data @wrong_name.npz", "wrong_name.npz", REFUSE),
    case("profile-data-zero-samples", PROFDB + " --data @zero_samples.npz", "zero_samples.npz", REFUSE),
    case("profile-data-nan", PROFDB + " --data @nan.npz", "nan.npz"),
    case("profile-data-nan-skipped", PROFDB + " --data @nan.npz --skip-bad-samples", "nan.npz"),
    case("profile-data-int32", PROFDB + " --data @i32.npz", "i32.npz"),
    case("profile-data-not-a-zip", PROFDB + " --data @not_zip.npz", "not_zip.npz", REFUSE),
    case("profile-max-samples-zero", PROFALL + " --max-samples 0", "--max-samples", REFUSE),
    case("profile-json-would-replace-baseline",
         "profile-device @q/mlp_tanh.int8.qdq.onnx --device onnxruntime-cpu --baseline @mlp_tanh.onnx "
         "--data @eval.npz --latency-runs 2 --json @mlp_tanh.onnx", ("mlp_tanh.onnx", "--json"), REFUSE),
    case("profile-json-under-file",
         "profile-device @q/mlp_tanh.int8.qdq.onnx --device onnxruntime-cpu --baseline @mlp_tanh.onnx "
         "--data @eval.npz --latency-runs 2 --json @a_file.txt/r.json", "a_file.txt", REFUSE),
    case("profile-gate-without-json",
         "profile-device @q/mlp_tanh.int8.qdq.onnx --device onnxruntime-cpu --baseline @mlp_tanh.onnx "
         "--data @eval.npz --latency-runs 2 --gate @baseline.json", ("--gate", "--json"), REFUSE),
    case("profile-gate-garbage-baseline", PROFALL + " --gate @not_json.json", "not_json.json", REFUSE),
    # ---- gate
    case("gate-control", GATE, "report.json", DONE),
    case("gate-regression", "gate @regressed.json --baseline @baseline.json", "logits", REGRESSION),
    case("gate-report-nan-sqnr", "gate @nan_sqnr.json --baseline @baseline.json", ("nan_sqnr.json", "logits"),
         frozenset({1, 3})),
    case("gate-report-not-json", "gate @not_json.json --baseline @baseline.json", "not_json.json", REFUSE),
    case("gate-report-empty-file", "gate @empty.json --baseline @baseline.json", "empty.json", REFUSE),
    case("gate-report-json-list", "gate @list.json --baseline @baseline.json", "list.json", REFUSE),
    case("gate-report-empty-object", "gate @empty_object.json --baseline @baseline.json", "empty_object.json",
         REFUSE),
    case("gate-report-missing-outputs", "gate @no_outputs.json --baseline @baseline.json", "no_outputs.json",
         REFUSE),
    case("gate-report-sqnr-is-text", "gate @text_sqnr.json --baseline @baseline.json", "text_sqnr.json", REFUSE),
    case("gate-report-sqnr-huge-integer", "gate @huge_int_sqnr.json --baseline @baseline.json", "huge_int_sqnr.json",
         REFUSE),
    case("gate-baseline-top1-out-of-range", "gate @report.json --baseline @top1_negative.json", "top1_negative.json",
         REFUSE),
    case("gate-report-negative-rms-error", "gate @negative_rms.json --baseline @baseline.json", "negative_rms.json",
         REFUSE),
    case("gate-report-deep-nesting", "gate @deep.json --baseline @baseline.json", "deep.json", REFUSE),
    case("gate-report-binary", "gate @garbage.onnx --baseline @baseline.json", "garbage.onnx", REFUSE),
    case("gate-report-is-stats", "gate @stats.json --baseline @baseline.json", "stats.json", REFUSE),
    case("gate-baseline-other-device", "gate @report.json --baseline @other_device.json", "tflm", REFUSE),
    case("gate-baseline-bundled-tflm", "gate @report.json --baseline @bundled_tflm.json", "tflm", REFUSE),
    case("gate-baseline-other-model", "gate @report.json --baseline @other_model.json", ("sha256", "float model"),
         REFUSE),
    case("gate-config-garbage-toml", GATE + " --config @garbage_profile.toml", "garbage_profile.toml", REFUSE),
    case("gate-config-wrong-type", GATE + " --config @config_text.toml", ("config_text.toml", "max_sqnr_drop"),
         REFUSE),
    case("gate-config-unknown-key", GATE + " --config @config_unknown.toml", ("config_unknown.toml", "max_sqrn_drop"),
         REFUSE),
    case("gate-config-negative", GATE + " --config @config_negative.toml", ("config_negative.toml", "max_sqnr_drop"),
         REFUSE),
    case("gate-config-missing", GATE + " --config @missing.toml", "missing.toml", REFUSE),
    case("gate-max-sqnr-drop-nan", GATE + " --max-sqnr-drop nan", "--max-sqnr-drop", REFUSE),
    case("gate-max-sqnr-drop-negative", GATE + " --max-sqnr-drop -1", "--max-sqnr-drop", REFUSE),
    case("gate-junit-under-file", GATE + " --junit @a_file.txt/gate.xml", "a_file.txt", REFUSE),
    case("gate-markdown-is-folder", GATE + " --markdown @models", ("models", "--markdown"), REFUSE),
    case("gate-junit-would-replace-report", GATE + " --junit @report.json", ("report.json", "--junit"), REFUSE),
    case("gate-update-baseline-from-garbage", "gate @not_json.json --baseline @baseline.json --update-baseline",
         "not_json.json", REFUSE),
    case("gate-update-baseline-from-itself", "gate @baseline.json --baseline @baseline.json --update-baseline",
         "baseline.json"),
    # ---- lut
    case("lut-control", LUT + " --out-scale 0.0078125", "tanh", DONE),
    case("lut-in-zero-point-out-of-range", "lut tanh --in-scale 0.03 --in-zero-point 200", "--in-zero-point",
         REFUSE),
    case("lut-16-bit-zero-point-out-of-range", "lut tanh --bits 16 --in-scale 0.0001 --in-zero-point 40000",
         "--in-zero-point", REFUSE),
    case("lut-out-zero-point-out-of-range", LUT + " --out-scale 0.0078125 --out-zero-point 300", "--out-zero-point",
         REFUSE),
    case("lut-16-bit-litert", "lut tanh --bits 16 --convention litert --in-scale 0.000122 --in-zero-point 0",
         ("--bits", "--convention", "litert")),
    case("lut-16-bit-xnnpack", "lut sigmoid --bits 16 --convention xnnpack --in-scale 0.000122 --in-zero-point 0",
         ("--bits", "--convention", "xnnpack")),
    case("lut-unknown-function", "lut frobnicate --in-scale 0.03 --in-zero-point 0", "frobnicate", REFUSE),
    case("lut-param-without-equals", "lut leaky_relu --param alpha --in-scale 0.05 --in-zero-point 0", "--param",
         REFUSE),
    case("lut-param-not-a-number", "lut leaky_relu --param alpha=abc --in-scale 0.05 --in-zero-point 0", "--param",
         REFUSE),
    case("lut-param-unknown-for-function", LUT + " --param alpha=0.2", ("--param", "alpha")),
    case("lut-param-nan", "lut leaky_relu --param alpha=nan --in-scale 0.05 --in-zero-point 0", ("--param", "alpha"),
         REFUSE),
    case("lut-param-inf", "lut elu --param alpha=inf --in-scale 0.05 --in-zero-point 0", ("--param", "alpha"),
         REFUSE),
    case("lut-in-scale-zero", "lut tanh --in-scale 0 --in-zero-point 0", "--in-scale", REFUSE),
    case("lut-in-scale-nan", "lut tanh --in-scale nan --in-zero-point 0", "--in-scale", REFUSE),
    case("lut-in-scale-huge", "lut gelu --in-scale 1e300 --in-zero-point 0", "--in-scale"),
    case("lut-in-scale-subnormal", "lut silu --in-scale 1e-320 --in-zero-point 0", "--in-scale"),
    case("lut-out-scale-zero", LUT + " --out-scale 0", "--out-scale", REFUSE),
    case("lut-auto-scale-of-a-constant", "lut leaky_relu --param alpha=0 --in-scale 0.1 --in-zero-point 127",
         ("--out-scale", "leaky_relu")),
    case("lut-plot-under-file", LUT + " --plot @a_file.txt/p.png", "a_file.txt", REFUSE),
    case("lut-convention-unknown", LUT + " --convention bogus", "--convention", REFUSE),
]


# ---- building the inputs


class _OpensAFile:
    """Unpickling this creates a file: an object .npz must never be unpickled (the marker would show up as a hidden
    file, which the test checks for)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (self.path, "w")


def _tiny_model(name: str, nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto],
                outputs: list[onnx.ValueInfoProto], initializers: list[onnx.TensorProto] | None = None,
                opsets: list[onnx.OperatorSetIdProto] | None = None) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=initializers or [])
    return helper.make_model(graph, opset_imports=opsets or [helper.make_opsetid("", 17)], ir_version=8)


def _npz_with_member(path: Path, member: str, data: bytes) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, data)


def _npy_bytes(header: str, data: bytes) -> bytes:
    """A version 1.0 .npy file with this header text, verbatim (valid or not)."""
    text = header + " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin-1") + data


PLACEHOLDER = "EDGEACT_PLACEHOLDER"


def _save_with_invalid_utf8(model: onnx.ModelProto, path: Path) -> None:
    """Save ``model`` with every PLACEHOLDER string made invalid UTF-8 (ONNX strings must be UTF-8)."""
    raw, placeholder = model.SerializeToString(), PLACEHOLDER.encode()
    invalid = placeholder[:8] + b"\xcd\xcd" + placeholder[10:]  # same length: the protobuf framing stays valid
    assert placeholder in raw and len(invalid) == len(placeholder)
    path.write_bytes(raw.replace(placeholder, invalid))


def _rename(model: onnx.ModelProto, old: str, new: str) -> onnx.ModelProto:
    """A copy of ``model`` with tensor ``old`` renamed ``new`` everywhere it appears."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for value in [*copy.graph.input, *copy.graph.output, *copy.graph.initializer]:
        if value.name == old:
            value.name = new
    for node in copy.graph.node:
        for names in (node.input, node.output):
            for index, name in enumerate(names):
                if name == old:
                    names[index] = new
    return copy


def _build_models(d: Path) -> None:
    mlp = onnx.load(d / "mlp_tanh.onnx")
    x4 = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y4 = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])

    (d / "empty.onnx").write_bytes(b"")
    raw = (d / "mlp_tanh.onnx").read_bytes()
    (d / "truncated.onnx").write_bytes(raw[: len(raw) // 2])
    (d / "garbage.onnx").write_bytes(np.random.default_rng(0).bytes(4096))
    (d / "garbage.pt").write_bytes(np.random.default_rng(1).bytes(512))
    (d / "json.onnx").write_text(json.dumps({"model": "mlp_tanh", "layers": [64, 32, 10]}))
    (d / "models").mkdir()
    shutil.copy(d / "mlp_tanh.onnx", d / "models" / "mlp_tanh.onnx")
    (d / "folder.onnx").mkdir()

    no_outputs = onnx.ModelProto()
    no_outputs.CopyFrom(mlp)
    del no_outputs.graph.output[:]
    onnx.save(no_outputs, d / "no_outputs.onnx")
    for version in (99, 5):
        changed = onnx.ModelProto()
        changed.CopyFrom(mlp)
        changed.opset_import[0].version = version
        onnx.save(changed, d / f"opset{version}.onnx")

    constant = numpy_helper.from_array(np.linspace(-2, 2, 4, dtype=np.float32).reshape(1, 4), "c")
    onnx.save(_tiny_model("no_inputs", [helper.make_node("Constant", [], ["k"], value=constant),
                                        helper.make_node("Tanh", ["k"], ["y"])], [],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])]), d / "no_inputs.onnx")
    onnx.save(_tiny_model("int64_input", [helper.make_node("Cast", ["x"], ["f"], to=TensorProto.FLOAT),
                                          helper.make_node("Tanh", ["f"], ["y"])],
                          [helper.make_tensor_value_info("x", TensorProto.INT64, ["N", 4])], [y4]),
              d / "int64_input.onnx")
    onnx.save(_tiny_model("rank0_input", [helper.make_node("Tanh", ["x"], ["y"])],
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])]), d / "rank0_input.onnx")
    onnx.save(_tiny_model("custom_op", [helper.make_node("Frobnicate", ["x"], ["y"], domain="com.acme")], [x4], [y4],
                          opsets=[helper.make_opsetid("", 17), helper.make_opsetid("com.acme", 1)]),
              d / "custom_op.onnx")
    weights = numpy_helper.from_array(np.ones((63, 8), np.float32), "w")
    onnx.save(_tiny_model("bad_weights", [helper.make_node("MatMul", ["x", "w"], ["h"]),
                                          helper.make_node("Tanh", ["h"], ["y"])],
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])], [weights]),
              d / "bad_weights.onnx")
    onnx.save(_tiny_model("cycle", [helper.make_node("Tanh", ["b"], ["a"]), helper.make_node("Add", ["x", "a"], ["b"]),
                                    helper.make_node("Tanh", ["b"], ["y"])], [x4], [y4]), d / "cycle.onnx")
    named = onnx.ModelProto()
    named.CopyFrom(mlp)
    named.graph.node[1].name = PLACEHOLDER
    _save_with_invalid_utf8(named, d / "utf8_node_name.onnx")
    _save_with_invalid_utf8(_rename(mlp, mlp.graph.node[-1].input[1], PLACEHOLDER), d / "utf8_tensor_name.onnx")
    _save_with_invalid_utf8(_rename(mlp, "x", PLACEHOLDER), d / "utf8_input_name.onnx")
    documented = onnx.ModelProto()
    documented.CopyFrom(mlp)
    documented.doc_string = PLACEHOLDER
    _save_with_invalid_utf8(documented, d / "utf8_doc_string.onnx")

    external = onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 4],
                                data_location=onnx.TensorProto.EXTERNAL)
    for key, value in (("location", "missing_weights.bin"), ("offset", "0"), ("length", "64")):
        external.external_data.add(key=key, value=value)
    onnx.save(_tiny_model("external", [helper.make_node("MatMul", ["x", "w"], ["h"]),
                                       helper.make_node("Tanh", ["h"], ["y"])], [x4], [y4], [external]),
              d / "external.onnx")


def _build_data(d: Path, root: Path) -> None:
    rng = np.random.default_rng(7)
    x = np.load(d / "calib.npz")["x"]
    np.savez(d / "wrong_name.npz", input=x)
    np.savez(d / "f64.npz", x=x.astype(np.float64))
    np.savez(d / "f16.npz", x=x.astype(np.float16))
    np.savez(d / "i32.npz", x=np.round(x * 10).astype(np.int32))
    np.savez(d / "bool.npz", x=x > 0)
    np.savez(d / "complex.npz", x=x.astype(np.complex64))
    np.savez(d / "object.npz", x=np.array([_OpensAFile(root / ".unpickled")] * 4, dtype=object))
    np.savez(d / "strings.npz", x=np.array([["a"] * 64] * 4))
    np.savez(d / "rank1.npz", x=x.reshape(-1))
    np.savez(d / "rank3.npz", x=x[..., None])
    np.savez(d / "width63.npz", x=x[:, :63])
    np.savez(d / "scalar.npz", x=np.float32(1.5))
    np.savez(d / "zero_samples.npz", x=x[:0])
    np.savez(d / "nan.npz", x=np.where(np.arange(len(x))[:, None] == 3, np.nan, x).astype(np.float32))
    np.savez(d / "inf.npz", x=np.where(np.arange(len(x))[:, None] == 5, np.inf, x).astype(np.float32))
    np.savez(d / "all_nan.npz", x=np.full_like(x, np.nan))
    np.savez(d / "zeros.npz", x=np.zeros_like(x))
    np.savez(d / "huge.npz", x=(x * 1e30).astype(np.float32))
    np.savez(d / "one_sample.npz", x=x[:1])
    np.save(d / "calib.npy", x)
    np.savez(d / "calib4.npz", x=rng.normal(0, 1, (16, 4)).astype(np.float32))
    np.savez(d / "int64_calib.npz", x=rng.integers(-3, 4, (16, 4)).astype(np.int64))
    np.savez(d / "rank0_calib.npz", x=rng.normal(0, 1, 16).astype(np.float32))
    np.savez(d / "scalar4.npz", x=np.float32(0.5))
    (d / "mixed").mkdir()
    np.savez(d / "mixed" / "a.npz", x=x[:8])
    np.savez(d / "mixed" / "other_name.npz", input=x[8:16])
    (d / "mixed" / "notes.txt").write_text("calibration shards\n")
    (d / "mixed_widths").mkdir()
    np.savez(d / "mixed_widths" / "a.npz", x=x[:8])
    np.savez(d / "mixed_widths" / "narrow.npz", x=x[8:16, :32])
    (d / "empty_dir").mkdir()
    (d / "no_npz_dir").mkdir()
    (d / "no_npz_dir" / "readme.txt").write_text("no data here\n")
    (d / "not_zip.npz").write_text("x = [1, 2, 3]\n")
    (d / "empty.npz").write_bytes(b"")
    np.savez(d / "no_members.npz")
    _npz_with_member(d / "garbage_member.npz", "x.npy", np.random.default_rng(2).bytes(300))
    _npz_with_member(d / "txt_member.npz", "x.txt", b"1 2 3\n")
    raw = (d / "calib.npz").read_bytes()
    (d / "truncated.npz").write_bytes(raw[: len(raw) // 2])
    _npz_with_member(d / "bad_header.npz", "x.npy",
                     _npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (64, 64, }", x.tobytes()))
    header = {"descr": "<f4", "fortran_order": False, "shape": (2**40, 64)}
    with zipfile.ZipFile(d / "lying_header.npz", "w") as archive, archive.open("x.npy", "w") as member:
        np.lib.format.write_array_header_1_0(member, header)
        member.write(np.zeros(64, np.float32).tobytes())


def _build_reports(d: Path) -> None:
    report = json.loads((d / "report.json").read_text())
    shutil.copy(d / "report.json", d / "baseline.json")
    shutil.copy(EXAMPLES / "baselines" / "mlp_tanh.tflm.json", d / "bundled_tflm.json")

    def variant(name: str, change: Callable[[dict], None]) -> None:
        data = json.loads(json.dumps(report))
        change(data)
        (d / name).write_text(json.dumps(data))

    def regress(data: dict) -> None:
        for output in data["outputs"].values():
            output["sqnr_db"] -= 30.0
            output["top1_agreement"] = 0.5

    variant("regressed.json", regress)
    variant("nan_sqnr.json", lambda data: [o.update(sqnr_db=float("nan")) for o in data["outputs"].values()])
    variant("text_sqnr.json", lambda data: [o.update(sqnr_db="high") for o in data["outputs"].values()])
    variant("no_outputs.json", lambda data: data.pop("outputs"))
    variant("huge_int_sqnr.json", lambda data: [o.update(sqnr_db=10**400) for o in data["outputs"].values()])
    variant("top1_negative.json", lambda data: [o.update(top1_agreement=-1.0) for o in data["outputs"].values()])
    variant("negative_rms.json", lambda data: [a.update(rms_error=-1.0) for a in data["activations"]])
    variant("other_device.json", lambda data: data["device"].update(name="tflm"))
    variant("other_model.json", lambda data: data["fingerprint"].update(float_model_sha256="0" * 64))
    (d / "not_json.json").write_text("report: yes\n")
    (d / "empty.json").write_text("")
    (d / "list.json").write_text("[]")
    (d / "empty_object.json").write_text("{}")
    (d / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (d / "garbage_profile.toml").write_text("this is = = not [toml\n")
    (d / "half_profile.toml").write_text('name = "half"\n')
    (d / "empty.toml").write_text("")
    profile = (EXAMPLES.parents[1] / "edgeact" / "device_profiles" / "onnxruntime-cpu.toml").read_text()
    (d / "ort_profile.toml").write_text(profile)
    assert "threads = 2" in profile
    (d / "threads_text.toml").write_text(profile.replace("threads = 2", 'threads = "two"'))
    (d / "config_text.toml").write_text('max_sqnr_drop = "lots"\n')
    (d / "config_unknown.toml").write_text("max_sqrn_drop = 1.0\n")
    (d / "config_negative.toml").write_text("max_sqnr_drop = -1.0\n")


def _run_ok(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, f"setup: edgeact {' '.join(args)} failed:\n{result.output}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("hostile")
    d = root / "inputs"
    d.mkdir()
    for name in ("mlp_tanh.onnx", "cnn_silu.onnx"):
        shutil.copy(EXAMPLES / name, d / name)
    for kind in ("calib", "eval"):  # 64 samples keep every run short
        np.savez(d / f"{kind}.npz", x=np.load(EXAMPLES / f"mlp_tanh.{kind}.npz")["x"][:64])
        np.savez(d / f"cnn_{kind}.npz", x=np.load(EXAMPLES / f"cnn_silu.{kind}.npz")["x"][:64])
    _run_ok(["quantize", str(d / "mlp_tanh.onnx"), "--calib", str(d / "calib.npz"),
             "--format", "onnx-qdq,onnx-table,tflite", "-o", str(d / "q")])
    _run_ok(["calibrate", str(d / "mlp_tanh.onnx"), "--calib", str(d / "calib.npz"), "--stats-out",
             str(d / "stats.json")])
    _run_ok(["calibrate", str(d / "cnn_silu.onnx"), "--calib", str(d / "cnn_calib.npz"), "--stats-out",
             str(d / "cnn_stats.json")])
    _run_ok(["profile-device", str(d / "q" / "mlp_tanh.int8.qdq.onnx"), "--device", "onnxruntime-cpu", "--baseline",
             str(d / "mlp_tanh.onnx"), "--data", str(d / "eval.npz"), "--latency-runs", "2", "--json",
             str(d / "report.json")])
    stats = (d / "stats.json").read_text()
    (d / "truncated_stats.json").write_text(stats[: len(stats) // 2])
    tampered = json.loads(stats)
    for tensor in tampered["tensors"].values():
        tensor["min"], tensor["max"] = tensor["max"] + 1.0, tensor["min"] - 1.0
    (d / "tampered_stats.json").write_text(json.dumps(tampered))
    tflite = (d / "q" / "mlp_tanh.int8.tflite").read_bytes()
    (d / "truncated.tflite").write_bytes(tflite[: len(tflite) // 2])
    (d / "garbage.tflite").write_bytes(np.random.default_rng(3).bytes(4096))
    (d / "empty.tflite").write_bytes(b"")
    shutil.copy(d / "mlp_tanh.onnx", d / "onnx_inside.tflite")
    (d / "rec").mkdir()
    (d / "rec" / "mlp_tanh.calibration.json").write_text(stats)
    (d / "occupied" / "mlp_tanh.int8.qdq.onnx").mkdir(parents=True)
    (d / "occupied" / "mlp_tanh.int8.qdq.onnx" / "keep.txt").write_text("precious\n")
    (d / "a_file.txt").write_text("not a folder\n")
    _build_models(d)
    _build_data(d, root)
    _build_reports(d)
    (root / "out").mkdir()
    return World(root, d)


# ---- the test


def _digests(folder: Path) -> dict[str, str]:
    found = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            path = Path(dirpath) / name
            found[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _hidden(folder: Path) -> set[str]:
    return {str(Path(dirpath, name).relative_to(folder)) for dirpath, dirs, files in os.walk(folder)
            for name in [*dirs, *files] if name.startswith(".")}


def _transcript(args: list[str], result: Result) -> str:
    return f"$ edgeact {' '.join(args)}\n-> exit {result.exit_code}\n{result.output}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_gets_a_clear_message(case: Case, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    out = world.root / "out" / case.id
    out.mkdir()
    monkeypatch.chdir(out)  # no ./pyproject.toml gate settings; anything written relative lands where it is checked
    args = case.args(world, out)
    inputs_before, hidden_before = _digests(world.inputs), _hidden(world.root)

    result = CliRunner().invoke(main, args, env=case.env)

    shown = _transcript(args, result)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else repr(result.exception)
        pytest.fail(f"an exception escaped the CLI:\n{shown}\n{trace}")
    assert result.exit_code in case.codes, shown
    assert "Traceback" not in result.output, shown
    assert "internal error" not in result.output, shown
    if result.exit_code != 0:
        assert any(name in result.output for name in case.blame), f"the message names none of {case.blame}:\n{shown}"
    inputs_after = _digests(world.inputs)
    changed = sorted(name for name, digest in inputs_before.items() if inputs_after.get(name) != digest)
    assert not changed, f"input files changed or vanished: {changed}\n{shown}"
    left = sorted(_hidden(world.root) - hidden_before)
    assert not left, f"hidden files left behind: {left}\n{shown}"


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
