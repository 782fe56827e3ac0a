"""Malformed .tflite files (issue 12, item 3): every one is refused with an error naming the file before a runtime
reads it, a runtime that crashes anyway (TFLite Micro, in its child process) is an error, and the CLI never dies.

Mutants are drawn with a fixed seed from int8 models edgeact writes; their byte positions (offsets, vtables, buffer
data) are found with the ``tflite`` bindings, not with the verifier under test."""

from __future__ import annotations

import faulthandler
import importlib
import importlib.util
import math
import operator
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from flatbuffers.number_types import UOffsetTFlags
from onnx import helper

import edgeact
from edgeact.cli import main
from edgeact.errors import ModelFormatError, RuntimeUnavailableError
from edgeact.exporters.tflite.single_op import activation_builtin_model
from edgeact.exporters.tflite.writer import serialise
from edgeact.hardware import load_profile
from edgeact.numerics import QParams
from edgeact.profiler.backends import latency_ms
from edgeact.runtimes.isolation import run_isolated
from edgeact.runtimes.litert import litert_interpreter
from edgeact.runtimes.tflite_layout import OPTIONS_TABLES, TABLES, UNIONS
from edgeact.runtimes.tflite_verify import verify_tflite
from edgeact.runtimes.tflm import run_tflm, run_tflm_many
from edgeact.tflite.graph import LoweredGraph
from examples import onnx_models

SEED = 1212
DIGITS = Path(__file__).parents[1] / "examples" / "digits"
FUZZED = ("mlp_tanh", "transformer_gelu", "cnn_silu")  # each quantized for TFLite Micro and fuzzed
MUTANTS_PER_MODEL = 60
MODES = ("offset", "two_bytes", "bit_flip", "truncate", "append")
HUGE = (0x7FFFFFFF, 0xFFFFFFFF, 0x80000000)
FAST = ("--max-samples", "2", "--latency-runs", "1")
INT8 = 9  # TensorType.INT8: one byte a value


def model_of(payload: bytes):  # type: ignore[no-untyped-def]
    return importlib.import_module("tflite.Model").Model.GetRootAsModel(payload, 0)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """int8 (and float32) .tflite files edgeact writes for TFLite Micro and LiteRT."""
    folder = tmp_path_factory.mktemp("written")
    paths = {}
    for name in (*FUZZED, "lstm"):
        result = edgeact.quantize(DIGITS / f"{name}.onnx", DIGITS / f"{name}.calib.npz", output_dir=folder / "tflm",
                                  formats=["tflite"], target="tflm")
        paths[f"{name}/tflm"] = result.paths["tflite"]
    for name in ("mlp_tanh", "cnn_silu"):
        result = edgeact.quantize(DIGITS / f"{name}.onnx", DIGITS / f"{name}.calib.npz", output_dir=folder / "litert",
                                  formats=["tflite"], float_tflite=True)
        paths[f"{name}/litert"], paths[f"{name}/fp32"] = result.paths["tflite"], result.paths["fp32-tflite"]
    return paths


def invoke(*args: object):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, [str(a) for a in args])


def profile_args(model: Path, name: str, device: str = "tflm") -> list[object]:
    return ["profile-device", model, "--device", device, "--baseline", DIGITS / f"{name}.onnx",
            "--data", DIGITS / f"{name}.eval.npz", *FAST]


# ---- where the bytes are, read with the tflite bindings ----------------------------------------------------------
def _pointer_slots(payload: bytes) -> list[int]:
    """Positions of every offset the reader follows: the root offset, each table's vtable offset, each pointer
    field of the main tables, and each pointer's target (a vector's length or a sub-table's vtable offset)."""
    model, slots = model_of(payload), [0]

    def table(obj, fields: tuple[int, ...]) -> None:  # type: ignore[no-untyped-def]
        tab = obj._tab
        slots.append(tab.Pos)
        for field in fields:
            at = tab.Offset(field)
            if at:
                slots.extend([tab.Pos + at, tab.Pos + at + tab.Get(UOffsetTFlags, tab.Pos + at)])

    table(model, (6, 8, 10, 12, 16, 18))
    for g in (model.Subgraphs(i) for i in range(model.SubgraphsLength())):
        table(g, (4, 6, 8, 10, 12))
        for t in range(g.TensorsLength()):
            table(g.Tensors(t), (4, 10, 12))
        for o in range(g.OperatorsLength()):
            table(g.Operators(o), (6, 8, 12))
    for b in range(model.BuffersLength()):
        table(model.Buffers(b), (4,))
    return sorted(set(slots))


def _structure_bytes(payload: bytes) -> np.ndarray:
    """Positions outside the buffers' data (tables, vectors, strings, padding)."""
    model, keep = model_of(payload), np.ones(len(payload), bool)
    for buffer in (model.Buffers(i) for i in range(model.BuffersLength())):
        if buffer.DataLength():
            start = buffer._tab.Vector(buffer._tab.Offset(4))
            keep[start : start + buffer.DataLength()] = False
    return np.flatnonzero(keep[:-1])


def mutate(payload: bytes, mode: str, rng: np.random.Generator) -> bytes:
    data = bytearray(payload)
    if mode == "offset":
        at = int(rng.choice(_pointer_slots(payload)))
        data[at : at + 4] = int(rng.choice([*HUGE, len(payload)])).to_bytes(4, "little")
    elif mode in ("two_bytes", "bit_flip"):
        at = int(rng.choice(_structure_bytes(payload)))
        if mode == "bit_flip":
            data[at] ^= 1 << int(rng.integers(8))
        else:
            data[at : at + 2] = rng.integers(0, 256, 2, dtype=np.uint8).tobytes()
    elif mode == "truncate":
        del data[int(rng.integers(0, len(data))):]
    else:
        data += rng.integers(0, 256, int(rng.integers(1, 300)), dtype=np.uint8).tobytes()
    return bytes(data)


def assert_clean(result, path: Path) -> None:  # type: ignore[no-untyped-def]
    """Exit 0, or one ``Error:`` line; never a crash or a traceback. A file the verifier refuses is exit 1 and
    named; past the verifier, profile-device's own checks may call a mismatch with the baseline a usage error."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code in (0, 1, 2) and "Traceback" not in result.output, result.output
    if result.exit_code:
        assert result.output.strip().splitlines()[-1].startswith("Error:"), result.output
    if "not a valid .tflite" in result.output:
        assert result.exit_code == 1 and f"{path}: not a valid .tflite" in result.output


# ---- the verifier ------------------------------------------------------------------------------------------------
def test_every_tflite_edgeact_writes_passes_verification(written) -> None:
    for path in written.values():
        verify_tflite(path.read_bytes(), str(path))
    for shape in ((256,), (1, 8, 8, 4)):
        verify_tflite(activation_builtin_model("TANH", QParams(0.05, 3), QParams(1 / 128, 0), shape=shape), "tanh")


def test_a_converter_written_tflite_passes_verification() -> None:
    spec = importlib.util.find_spec("tflite_micro")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("tflite-micro is not installed")
    sine = Path(spec.submodule_search_locations[0]) / "python" / "tflite_micro" / "sine_float.tflite"
    if not sine.is_file():
        pytest.skip("tflite-micro ships no sine_float.tflite")
    verify_tflite(sine.read_bytes(), str(sine))


@pytest.mark.parametrize("payload, problem", [
    (b"", "0 bytes is too short"), (b"\x08\0\0\0TFL", "7 bytes is too short"),
    (b"\x08\0\0\0ONNX\0\0\0\0", "file identifier is b'ONNX', not b'TFL3'"),
    (b"\xf0\xff\xff\x7fTFL3\0\0\0\0", "model: table at byte 2147483632 is misaligned or outside"),
])
def test_short_or_foreign_files_are_refused_by_name(payload: bytes, problem: str) -> None:
    with pytest.raises(ModelFormatError, match=re.escape(f"junk.tflite: not a valid .tflite: {problem}")):
        verify_tflite(payload, "junk.tflite")


def _vector_at(tab, field: int) -> int:  # type: ignore[no-untyped-def]
    """Position of the first element of a table's vector field."""
    return tab.Vector(tab.Offset(field))


def two_byte_reproduction(payload: bytes) -> tuple[bytes, str]:
    """The issue's file: 2 bytes changed in an operator's output index (the high bytes: a huge tensor index)."""
    graph = model_of(payload).Subgraphs(0)
    op = graph.Operators(1)
    at = _vector_at(op._tab, 8)
    data = bytearray(payload)
    data[at + 2 : at + 4] = b"\x55\x51"
    index = int.from_bytes(data[at : at + 4], "little", signed=True)
    return bytes(data), f"subgraph 0 operator 1 output 0 names tensor {index} of {graph.TensorsLength()}"


def test_the_two_byte_reproduction_crashes_the_bare_runtime_and_is_refused(written, tmp_path: Path) -> None:
    bad, problem = two_byte_reproduction(written["mlp_tanh/tflm"].read_bytes())
    path = tmp_path / "model.int8.tflite"
    path.write_bytes(bad)
    bare = subprocess.run([sys.executable, "-c", BARE_TFLM, str(path)], capture_output=True, text=True, timeout=120)
    assert bare.returncode < 0, f"tflite-micro no longer crashes on this file: {bare.returncode} {bare.stdout}"
    with pytest.raises(ModelFormatError, match=re.escape(f"{path}: not a valid .tflite: {problem}")):
        verify_tflite(bad, str(path))
    with pytest.raises(ModelFormatError, match=re.escape(problem)):
        run_tflm(bad, [np.zeros((1, 64), np.float32)])


BARE_TFLM = """
import sys, numpy as np
from tflite_micro.python.tflite_micro import runtime
interpreter = runtime.Interpreter.from_bytes(open(sys.argv[1], "rb").read(), arena_size=1 << 20)
interpreter.set_input(np.zeros(interpreter.get_input_details(0)["shape"], np.float32), 0)
interpreter.invoke()
"""


def _write_at(payload: bytes, at: int, value: int, size: int = 4) -> bytes:
    return payload[:at] + value.to_bytes(size, "little", signed=True) + payload[at + size :]


def test_indices_and_sizes_are_checked_against_the_model(written) -> None:
    """Values that keep the flatbuffer intact but name things that do not exist, each with its own message."""
    payload = written["mlp_tanh/tflm"].read_bytes()
    model = model_of(payload)
    graph = model.Subgraphs(0)
    count, codes = graph.TensorsLength(), model.OperatorCodesLength()
    o = next(i for i in range(graph.OperatorsLength()) if graph.Operators(i).InputsLength() >= 2)
    op = graph.Operators(o)._tab
    cases = [
        (_write_at(payload, _vector_at(op, 6) + 4, count), f"subgraph 0 operator {o} input 1 names tensor {count} of "
         f"{count}"),
        (_write_at(payload, _vector_at(op, 6), -2), f"subgraph 0 operator {o} input 0 names tensor -2 of {count}"),
        (_write_at(payload, op.Pos + op.Offset(4), codes), f"subgraph 0 operator {o} names operator code {codes} of "
         f"{codes}"),
        (_write_at(payload, _vector_at(graph._tab, 8), count), f"subgraph 0 output 0 names tensor {count} of {count}"),
    ]
    weights = next(t for t in range(count) if graph.Tensors(t).Type() == INT8
                   and model.Buffers(graph.Tensors(t).Buffer()).DataLength())
    tensor = graph.Tensors(weights)
    cases.append((_write_at(payload, tensor._tab.Pos + tensor._tab.Offset(8), model.BuffersLength()),
                  f"subgraph 0 tensor {weights} names buffer {model.BuffersLength()} of {model.BuffersLength()}"))
    shape, stored = [int(d) for d in tensor.ShapeAsNumpy()], model.Buffers(tensor.Buffer()).DataLength()
    grown = [shape[0] + 1, *shape[1:]]
    cases.append((_write_at(payload, _vector_at(tensor._tab, 4), grown[0]),
                  f"subgraph 0 tensor {weights} of shape {grown} and type INT8 needs {math.prod(grown)} bytes; its "
                  f"buffer {tensor.Buffer()} holds {stored}"))
    for bad, problem in cases:
        with pytest.raises(ModelFormatError, match=re.escape(f"m.tflite: not a valid .tflite: {problem}")):
            verify_tflite(bad, "m.tflite")


def test_quantization_must_fit_the_tensor(written) -> None:
    """Zero points agree with the scales in number and fit the tensor's type (LiteRT crashed on one that did not)."""
    payload = written["mlp_tanh/tflm"].read_bytes()
    graph = model_of(payload).Subgraphs(0)
    index = next(t for t in range(graph.TensorsLength()) if graph.Tensors(t).Type() == INT8
                 and graph.Tensors(t).Quantization() is not None
                 and graph.Tensors(t).Quantization().ZeroPointLength() == 1)
    zero_points = _vector_at(graph.Tensors(index).Quantization()._tab, 10)
    with pytest.raises(ModelFormatError, match=f"tensor {index} has 1 scales and 2 zero points"):
        verify_tflite(_write_at(payload, zero_points - 4, 2), "m.tflite")
    with pytest.raises(ModelFormatError, match=re.escape(f"tensor {index} of type INT8 has zero point -9081216 outside "
                                                         "[-128, 127]")):
        verify_tflite(_write_at(payload, zero_points, -9081216, size=8), "m.tflite")


# ---- fuzzing through the CLI -------------------------------------------------------------------------------------
def mutants(written) -> list[tuple[str, str, bytes]]:  # type: ignore[no-untyped-def]
    rng, found = np.random.default_rng(SEED), []
    for name in FUZZED:
        payload = written[f"{name}/tflm"].read_bytes()
        found += [(name, MODES[k % len(MODES)], mutate(payload, MODES[k % len(MODES)], rng))
                  for k in range(MUTANTS_PER_MODEL)]
    return found


def test_mutated_files_never_kill_profile_device(written, tmp_path: Path) -> None:
    outcomes = {"refused": 0, "ran": 0, "other": 0}
    for k, (name, mode, payload) in enumerate(mutants(written)):
        path = tmp_path / f"{name}.{mode}.{k}.int8.tflite"
        path.write_bytes(payload)
        result = invoke(*profile_args(path, name))
        assert_clean(result, path)
        if mode == "offset":  # an offset past the end is never a valid file
            assert result.exit_code == 1 and f"{path}: not a valid .tflite" in result.output, result.output
        refused = "not a valid .tflite" in result.output
        outcomes["refused" if refused else "ran" if result.exit_code == 0 else "other"] += 1
        path.unlink()
    assert outcomes["refused"] >= MUTANTS_PER_MODEL * len(FUZZED) // len(MODES), outcomes


def test_mutated_files_never_kill_the_edgeact_process(written, tmp_path: Path) -> None:
    """A few mutants, the issue's reproduction and a file that crashes TFLite Micro, each through a real process."""
    chosen = {}
    for k, (name, mode, payload) in enumerate(mutants(written)):
        if name == "mlp_tanh" and mode not in {m for _, m in chosen.values()}:
            chosen[tmp_path / f"{mode}.{k}.int8.tflite"] = (payload, mode)
    reproduction = tmp_path / "model.int8.tflite"
    chosen[reproduction] = (two_byte_reproduction(written["mlp_tanh/tflm"].read_bytes())[0], "reproduction")
    crash, baseline, data = crashing_model(tmp_path)
    commands = {path: [str(a) for a in profile_args(path, "mlp_tanh")] for path in chosen}
    commands[crash] = ["profile-device", str(crash), "--device", "tflm", "--baseline", str(baseline), "--data",
                       str(data), *FAST]
    processes = {}
    for path, args in commands.items():
        if path in chosen:
            path.write_bytes(chosen[path][0])
        processes[path] = subprocess.Popen([sys.executable, "-m", "edgeact.cli", *args], stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT, text=True)
    outputs = {path: process.communicate(timeout=300)[0] for path, process in processes.items()}
    for path, output in outputs.items():
        code = processes[path].returncode
        assert code in (0, 1, 2) and "Traceback" not in output, (path.name, code, output)
    assert processes[reproduction].returncode == 1, outputs[reproduction]
    assert f"{reproduction}: not a valid .tflite: subgraph 0 operator 1 output 0" in outputs[reproduction]
    assert processes[crash].returncode == 1 and "TFLite Micro crashed (signal" in outputs[crash], outputs[crash]


# ---- a runtime that crashes after verification ---------------------------------------------------------------
def crashing_model(folder: Path) -> tuple[Path, Path, Path]:
    """y = x + 1 with the 1 a float32 constant fed to an int8 ADD: a well-formed file that TFLite Micro does not
    refuse but dies on (SIGABRT), with its float baseline and data."""
    graph = LoweredGraph()
    x = graph.tensor("x", (1, 4), "float32")
    xq = graph.tensor("x/int8", (1, 4), "int8", QParams(0.05, 0))
    one = graph.tensor("one", (1, 4), "float32", data=np.ones((1, 4), np.float32))
    yq = graph.tensor("y/int8", (1, 4), "int8", QParams(0.05, 0))
    y = graph.tensor("y", (1, 4), "float32")
    graph.op("QUANTIZE", [x], [xq], "q")
    graph.op("ADD", [xq, one], [yq], "add")
    graph.op("DEQUANTIZE", [yq], [y], "dq")
    graph.inputs, graph.outputs = [x], [y]
    model = folder / "crash.int8.tflite"
    model.write_bytes(serialise(graph, {}, "crash"))
    one_node = helper.make_node("Constant", [], ["one"], value=helper.make_tensor("v", onnx.TensorProto.FLOAT,
                                                                                  [1, 4], [1.0] * 4))
    baseline = helper.make_model(
        helper.make_graph([one_node, helper.make_node("Add", ["x", "one"], ["y"])], "g",
                          [onnx_models.tensor("x", [1, 4])], [onnx_models.tensor("y", [1, 4])]),
        opset_imports=[helper.make_opsetid("", 13)])
    baseline.ir_version = 8
    onnx.save(baseline, folder / "crash.onnx")
    np.savez(folder / "crash.npz", x=np.random.default_rng(0).normal(0, 1, (8, 4)).astype(np.float32))
    return model, folder / "crash.onnx", folder / "crash.npz"


def test_a_crash_inside_tflite_micro_is_an_error_naming_the_model(tmp_path: Path) -> None:
    model, baseline, data = crashing_model(tmp_path)
    payload = model.read_bytes()
    verify_tflite(payload, str(model))  # nothing wrong with the file itself
    with pytest.raises(RuntimeUnavailableError, match=re.escape("TFLite Micro crashed (signal ") + r"\d+ SIG\w+\) on "
                       + re.escape(str(model))):
        run_tflm(payload, [np.zeros((1, 4), np.float32)], str(model))
    good = activation_builtin_model("TANH", QParams(0.05, 0), QParams(1 / 128, 0))
    codes = np.arange(-128, 128, dtype=np.int8)
    out = run_tflm(good, [codes])[0]  # a new child takes the next model
    assert out.dtype == np.int8 and out.shape == (256,) and out[0] == -128 and out[-1] == 127  # tanh(+-6.4)
    result = invoke("profile-device", model, "--device", "tflm", "--baseline", baseline, "--data", data, *FAST)
    assert result.exit_code == 1 and "TFLite Micro crashed (signal" in result.output, result.output


# ---- the child-process mechanism itself ------------------------------------------------------------------------
def test_the_child_returns_results_and_errors_and_survives_its_own_death() -> None:
    child = run_isolated("Runtime", "m.tflite", os.getpid)
    assert child != os.getpid()
    assert run_isolated("Runtime", "m.tflite", math.factorial, 25) == math.factorial(25)
    with pytest.raises(RuntimeUnavailableError, match=r"^Runtime failed on m\.tflite: ZeroDivisionError"):
        run_isolated("Runtime", "m.tflite", operator.truediv, 1, 0)
    with pytest.raises(ModelFormatError, match=r"^junk\.tflite: not a valid \.tflite"):
        run_isolated("Runtime", "m.tflite", verify_tflite, b"junk", "junk.tflite")
    assert run_isolated("Runtime", "m.tflite", os.getpid) == child  # errors do not cost the child
    with pytest.raises(RuntimeUnavailableError, match=r"^Runtime crashed \(signal 11 SIGSEGV\) on m\.tflite$"):
        run_isolated("Runtime", "m.tflite", faulthandler._sigsegv)
    with pytest.raises(RuntimeUnavailableError, match=r"^Runtime ended unexpectedly \(exit code 3\) on m\.tflite$"):
        run_isolated("Runtime", "m.tflite", os._exit, 3)
    replacement = run_isolated("Runtime", "m.tflite", os.getpid)
    assert replacement not in (child, os.getpid())


def test_tflite_micro_latency_is_timed_inside_the_child(written) -> None:
    payload = written["mlp_tanh/tflm"].read_bytes()
    sample = [np.zeros((1, 64), np.float32)]
    timing = latency_ms(load_profile("tflm"), payload, sample, runs=20, warmup=2)
    assert timing is not None and timing["runs"] == 20 and 0 < timing["median"] <= timing["p95"]
    start = time.perf_counter()
    run_tflm_many(payload, [sample])
    round_trip_ms = 1e3 * (time.perf_counter() - start)
    assert timing["median"] < round_trip_ms  # one invoke, without the pipe and the interpreter's set-up


# ---- LiteRT gets the same verification ----------------------------------------------------------------------------
@pytest.mark.parametrize("device", ["litert-reference", "litert-xnnpack"])
def test_litert_devices_refuse_a_corrupted_file_by_name(written, tmp_path: Path, device: str) -> None:
    payload = written["mlp_tanh/litert"].read_bytes()
    bad = tmp_path / "model.int8.tflite"
    bad.write_bytes(_write_at(payload, 0, len(payload)))
    result = invoke(*profile_args(bad, "mlp_tanh", device))
    assert result.exit_code == 1 and f"{bad}: not a valid .tflite: model: table at byte {len(payload)}" in result.output
    truncated = payload[: len(payload) // 2]
    with pytest.raises(ModelFormatError, match=re.escape("lite.tflite: not a valid .tflite")):
        litert_interpreter(truncated, device.removeprefix("litert-"), source="lite.tflite")


# ---- the layout table against flatc's own bindings ----------------------------------------------------------------
WIDTHS = {"Bool": 1, "Int8": 1, "Uint8": 1, "Int16": 2, "Uint16": 2, "Int32": 4, "Uint32": 4, "Float32": 4,
          "Int64": 8, "Uint64": 8, "Float64": 8}


def bindings_layout(source: str) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Each table's field kinds (by field id) and each union's members, read from flatc's generated Python."""
    classes = dict(re.findall(r"\nclass (\w+)\(object\):\n(.*?)(?=\nclass |\Z)", source, re.S))
    tables: dict[str, list[str]] = {}
    for name, body in classes.items():
        if "def Init(self, buf, pos)" not in body:  # enums and the object API's classes
            continue
        kinds: dict[int, str] = {}
        for method in re.split(r"\n    # \w+\n", body):
            slot = re.search(r"self\._tab\.Offset\((\d+)\)", method)
            kind = _kind(method, classes.get(f"{name}T", ""))
            if slot and kind:
                kinds.setdefault((int(slot.group(1)) - 4) // 2, kind)
        tables[name] = [kinds.get(i, "-") for i in range(max(kinds, default=-1) + 1)]
    unions = {}
    for union, body in re.findall(r"\ndef (\w+)Creator\(unionType, table\):(.*?)(?=\ndef |\nclass |\Z)", source, re.S):
        codes = dict((v, int(c)) for v, c in re.findall(r"\n    (\w+) = (\d+)", classes[union]))
        members = {codes[tag]: table for tag, table in re.findall(rf"{union}\.(\w+):\s+return (\w+)T\.", body)}
        unions[union] = ["-", *[members.get(i, "-") for i in range(1, max(members) + 1)]]
    return tables, unions


def _kind(method: str, object_api: str) -> str | None:
    """A field's kind in tflite_layout's notation, from its accessor (None: not the field's main accessor)."""
    if "self._tab.Union(" in method:
        accessor = re.search(r"def (\w+)\(self", method).group(1)
        return "U:" + re.search(rf"(\w+)Creator\(self\.\w+Type, \w+\.{accessor}\(\)\)", object_api).group(1)
    cls = re.search(r"obj = (\w+)\(\)", method)
    if "self._tab.Vector(o)" in method:
        if "Indirect(x)" in method:
            return "[" + cls.group(1)
        if "self._tab.String(a" in method:
            return "[str"
        width = re.search(r"number_types\.(\w+)Flags, a \+", method)
        return f"[{WIDTHS[width.group(1)]}" if width else None
    if "Indirect(o + self._tab.Pos)" in method:
        return cls.group(1)
    if "self._tab.String(o + self._tab.Pos)" in method:
        return "str"
    scalar = re.search(r"return (?:bool\()?self\._tab\.Get\(flatbuffers\.number_types\.(\w+)Flags, o \+", method)
    return str(WIDTHS[scalar.group(1)]) if scalar else None


@pytest.mark.parametrize("package, path", [
    ("tflite_micro", "tensorflow/lite/micro/python/schema_py_generated.py"),
    ("ai_edge_litert", "schema_py_generated.py"),
])
def test_the_layout_is_the_schema_of_the_installed_runtimes(package: str, path: str) -> None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{package} is not installed")
    tables, unions = bindings_layout((Path(spec.submodule_search_locations[0]) / path).read_text())
    ours = {name: [item.split(":", 1)[1] for item in spec.split()] for name, spec in TABLES.items()}
    ours |= {name: spec.split() for name, spec in OPTIONS_TABLES.items()}
    assert ours == tables
    assert {name: spec.split() for name, spec in UNIONS.items()} == unions


def test_a_shape_that_disagrees_with_its_operator_is_an_error_on_the_emulator(written, tmp_path: Path) -> None:
    """A verified file whose activation tensor claims another shape: the emulator used to raise an internal error."""
    payload = written["mlp_tanh/tflm"].read_bytes()
    graph = model_of(payload).Subgraphs(0)
    model = model_of(payload)
    index = next(t for t in range(graph.TensorsLength()) if t not in graph.InputsAsNumpy()
                 and not model.Buffers(graph.Tensors(t).Buffer()).DataLength()
                 and graph.Tensors(t).ShapeLength() == 2 and graph.Tensors(t).ShapeAsNumpy()[1] > 1)
    tensor = graph.Tensors(index)
    wide = int(tensor.ShapeAsNumpy()[1]) * 3
    path = tmp_path / "m.int8.tflite"
    path.write_bytes(_write_at(payload, _vector_at(tensor._tab, 4) + 4, wide))
    verify_tflite(path.read_bytes(), str(path))  # structurally fine: only running it shows the disagreement
    result = invoke(*profile_args(path, "mlp_tanh", device="cmsis-nn"))
    assert result.exit_code == 1, result.output
    assert str(path) in result.output and "internal error" not in result.output and "Traceback" not in result.output
