"""Hostile calibration data and statistics files: each is refused with exit code 1 (2 for a bad limit) and a
message naming the file and the member, tensor or field, never a traceback, an internal error or a huge allocation;
the inputs are left unchanged. A corrupt calibration record beside an int8 model is named, not a crash."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from numpy.lib import format as npy_format

import edgeact
from edgeact.calibration.data import CalibrationData, InputSpec
from edgeact.calibration.observers import TensorStats
from edgeact.cli import main
from edgeact.errors import CalibrationDataError

DIGITS = Path(__file__).parents[1] / "examples" / "digits"
MODEL, CALIB = DIGITS / "mlp_tanh.onnx", DIGITS / "mlp_tanh.calib.npz"  # one input x [N, 64] float32
SPECS = [InputSpec("x", "float32", ("N", 64), 0)]
COMMANDS = ("calibrate", "quantize", "profile-device")


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("int8")
    return edgeact.quantize(MODEL, CALIB, output_dir=folder, formats=["onnx-qdq"]).paths["onnx-qdq"]


@pytest.fixture(scope="module")
def good_stats(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = tmp_path_factory.mktemp("stats") / "good.json"
    result = CliRunner().invoke(main, ["calibrate", str(MODEL), "--calib", str(CALIB), "--stats-out", str(path)])
    assert result.exit_code == 0, result.output
    return json.loads(path.read_text())


def _sha(paths: list[Path]) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.is_file()}


def run(command: str, data: Path, tmp_path: Path, int8: Path | None = None, *extra: object) -> Result:
    """One CLI command on ``data`` (calibration data, or a statistics file for ``quantize-stats``)."""
    args = {
        "calibrate": ["calibrate", MODEL, "--calib", data, "--stats-out", tmp_path / "s.json"],
        "quantize": ["quantize", MODEL, "--calib", data, "-o", tmp_path / "out"],
        "quantize-stats": ["quantize", MODEL, "--stats", data, "-o", tmp_path / "out"],
        "profile-device": ["profile-device", int8, "--device", "onnxruntime-cpu", "--baseline", MODEL, "--data", data,
                           "--latency-runs", 1, "--json", tmp_path / "report.json"],
    }[command]
    inputs = [MODEL, data] + ([int8] if int8 else [])
    before = _sha(inputs)
    result = CliRunner().invoke(main, [str(a) for a in [*args, *extra]])
    assert _sha(inputs) == before, "an input was modified"
    return result


def assert_refused(result: Result, *names: str, code: int = 1) -> None:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    for text in ("Traceback", "internal error", "<tensor>"):
        assert text not in result.output, result.output
    for name in names:
        assert name in result.output, (name, result.output)


def npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    buffer = io.BytesIO()
    npy_format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return path


# --- calibration / evaluation data -----------------------------------------------------------------------------


def _with_peak_memory(call):  # type: ignore[no-untyped-def]
    """``call()``'s result and the peak of Python-traced memory while it ran."""
    tracemalloc.start()
    try:
        return call(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("command", COMMANDS)
def test_header_declaring_more_data_than_the_member_holds_is_corrupt_not_allocated(
        command: str, tmp_path: Path, int8_model: Path) -> None:
    """A 40 GB array declared over 1 MB of zeros: refused from the header, without allocating it."""
    bomb = write_zip(tmp_path / "bomb.npz", {"x.npy": npy_header((100_000, 100_000)) + bytes(1 << 20)})
    assert bomb.stat().st_size < 10_000
    result, peak = _with_peak_memory(lambda: run(command, bomb, tmp_path, int8_model))
    assert_refused(result, str(bomb), "'x.npy'", "corrupt", "[100000, 100000]")
    assert peak < 64 * 2**20, peak


@pytest.mark.parametrize("command", COMMANDS)
def test_array_over_the_limit_is_refused_before_it_is_inflated(
        command: str, tmp_path: Path, int8_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A genuine 64 MiB array of zeros (a ~64 KiB file) under a 16 MiB limit set by $EDGEACT_MAX_ARRAY_BYTES."""
    data = tmp_path / "zeros.npz"
    np.savez_compressed(data, x=np.zeros((2**18, 64), np.float32))
    assert data.stat().st_size < 2**20
    monkeypatch.setenv("EDGEACT_MAX_ARRAY_BYTES", "16MiB")
    result, peak = _with_peak_memory(lambda: run(command, data, tmp_path, int8_model))
    assert_refused(result, str(data), "'x.npy'", "over the limit", "EDGEACT_MAX_ARRAY_BYTES")
    assert peak < 16 * 2**20, peak


def test_the_limit_is_raised_by_the_environment_and_the_keyword(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "calib.npz"
    np.savez(data, x=np.ones((100, 64), np.float32))  # 25600 bytes
    with pytest.raises(CalibrationDataError, match="over the limit"):
        CalibrationData(data, SPECS, max_array_bytes=25_599)
    assert CalibrationData(data, SPECS, max_array_bytes=25_600).summary.samples == 100
    monkeypatch.setenv("EDGEACT_MAX_ARRAY_BYTES", "25599")
    with pytest.raises(CalibrationDataError, match="over the limit"):
        CalibrationData(data, SPECS)
    assert CalibrationData(data, SPECS, max_array_bytes=10**9).summary.samples == 100  # the keyword wins
    monkeypatch.setenv("EDGEACT_MAX_ARRAY_BYTES", "1 GiB")
    assert CalibrationData(data, SPECS).summary.samples == 100


def test_an_unreadable_limit_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEACT_MAX_ARRAY_BYTES", "lots")
    assert_refused(run("calibrate", CALIB, tmp_path), "EDGEACT_MAX_ARRAY_BYTES", "'lots'", code=2)


def _bad_file(case: str, path: Path) -> Path:
    """``path`` made into one kind of broken calibration file."""
    if case == "zero-samples":
        np.savez(path, x=np.zeros((0, 64), np.float32))
    elif case == "not-a-zip":
        path.write_bytes(b"these are not the arrays you are looking for\n")
    elif case == "truncated":
        path.write_bytes(CALIB.read_bytes()[: CALIB.stat().st_size // 2])
    elif case == "member-not-npy":
        write_zip(path, {"x.npy": b"just some bytes"})
    elif case == "member-not-named-npy":
        write_zip(path, {"x.npy": CALIB_X_NPY, "notes.txt": b"hello"})
    elif case == "object-array":
        np.savez(path, x=np.array([{"x": 1}] * 4, dtype=object))
    elif case == "plain-npy":  # a header declaring 25.6 TB and no data
        path = path.with_suffix(".npy")
        path.write_bytes(npy_header((100_000_000_000, 64)))
    elif case in ("corrupt-deflate", "bad-crc"):  # damaged compressed data in an intact archive
        np.savez_compressed(path, x=np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32))
        raw = bytearray(path.read_bytes())
        if case == "corrupt-deflate":
            raw[60:200] = b"\xff" * 140  # the deflate block headers: zlib.error
        else:
            raw[2000:2100] = bytes(100)  # inside the data: a CRC mismatch
        path.write_bytes(bytes(raw))
    elif case == "unparsable-header":  # numpy falls back to its Python 2 header filter, which cannot tokenize it
        header = npy_header((64, 64)).replace(b"(64, 64), }", b"(64, 64, }  ")
        write_zip(path, {"x.npy": header + bytes(64 * 64 * 4)})
    elif case == "negative-dim":
        write_zip(path, {"x.npy": npy_header((4, 64)).replace(b"(4, 64)", b"(-4, 64)")})
    return path


def _calib_x_npy() -> bytes:
    with zipfile.ZipFile(CALIB) as archive:
        return archive.read("x.npy")


CALIB_X_NPY = _calib_x_npy()
BAD_FILES = {  # case: what the message must name besides the file
    "zero-samples": ("input 'x'", "no samples"),
    "not-a-zip": ("not a readable .npz",),
    "truncated": ("not a readable .npz",),
    "member-not-npy": ("'x.npy'", "not a .npy array"),
    "member-not-named-npy": ("'notes.txt'", "not a .npy array"),
    "object-array": ("'x.npy'", "pickled data is refused"),
    "plain-npy": ("is a .npy file",),
    "negative-dim": ("'x.npy'", "negative"),
    "unparsable-header": ("'x.npy'", "not a .npy array"),
    "corrupt-deflate": ("'x.npy'", "cannot be read"),
    "bad-crc": ("'x.npy'", "cannot be read"),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_broken_data_file_is_refused_naming_file_and_member(case: str, command: str, tmp_path: Path,
                                                             int8_model: Path) -> None:
    data = _bad_file(case, tmp_path / "bad.npz")
    assert_refused(run(command, data, tmp_path, int8_model), str(data), *BAD_FILES[case])


@pytest.mark.parametrize("command", ["calibrate", "profile-device"])
def test_nan_hint_reads_for_every_command(command: str, tmp_path: Path, int8_model: Path) -> None:
    x = np.random.default_rng(0).normal(size=(8, 64)).astype(np.float32)
    x[3, 5] = np.nan
    np.savez(data := tmp_path / "nan.npz", x=x)
    assert_refused(run(command, data, tmp_path, int8_model), str(data), "sample 3",
                   "or pass --skip-bad-samples to skip such samples")


@pytest.mark.parametrize("layout", ["big-endian", "fortran-order", "compressed"])
def test_valid_but_unusual_files_are_read_as_their_values(layout: str, tmp_path: Path) -> None:
    """Big-endian data used to reach onnxruntime as it was stored, which reads it as native floats."""
    expected = np.arange(3 * 64, dtype=np.float32).reshape(3, 64) / 7
    stored = {"big-endian": expected.astype(">f4"), "fortran-order": np.asfortranarray(expected)}.get(layout, expected)
    (np.savez_compressed if layout == "compressed" else np.savez)(data := tmp_path / "x.npz", x=stored)
    feed = next(CalibrationData(data, SPECS).batches(8))["x"]
    assert feed.dtype == np.float32 and feed.dtype.isnative
    np.testing.assert_array_equal(feed, expected)


# --- memory stays bounded ----------------------------------------------------------------------------------------


def _peak(work: Callable[[], None]) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _consume(path: Path) -> None:
    for _ in CalibrationData(path, SPECS).batches(64):
        pass


def test_a_folder_streams_one_file_at_a_time(tmp_path: Path) -> None:
    """Peak memory is one file's arrays, however many files the folder holds."""
    file_bytes = 2**15 * 64 * 4  # 8 MiB per file
    peaks = []
    for files in (2, 6):
        folder = tmp_path / f"shards{files}"
        folder.mkdir()
        for index in range(files):
            np.savez(folder / f"{index}.npz", x=np.full((2**15, 64), index, np.float32))
        peaks.append(_peak(lambda folder=folder: _consume(folder)))
    assert max(peaks) < 1.4 * file_bytes, peaks


def test_checking_values_needs_no_full_size_mask(tmp_path: Path) -> None:
    array_bytes = 2**17 * 64 * 4  # 32 MiB
    np.savez(data := tmp_path / "big.npz", x=np.ones((2**17, 64), np.float32))
    assert _peak(lambda: CalibrationData(data, SPECS)) < 1.15 * array_bytes


# --- statistics files (edgeact calibrate --stats-out, merged by quantize --stats) -------------------------------

TENSOR = "/net/net.0/Gemm_output_0"  # feeds the first tanh: its range decides a grid


def _set(key: str, value: object) -> Callable[[dict], None]:
    return lambda stats: stats["tensors"][TENSOR].__setitem__(key, value)


def _drop(key: str) -> Callable[[dict], None]:
    return lambda stats: stats["tensors"][TENSOR].pop(key)


TAMPERED = {  # case: (change, the field the message must name; None: a top-level field)
    "3-bin histogram": (_set("counts", [1, 2, 3]), "'counts'"),
    "negative samples": (lambda s: s.__setitem__("samples", -5), "'samples'"),
    "NaN min": (_set("min", math.nan), "'min'"),
    "NaN max": (_set("max", math.nan), "'max'"),
    "infinite max": (_set("max", math.inf), "'max'"),
    "min above max": (lambda s: s["tensors"][TENSOR].update(min=3.0, max=-3.0), "'min'"),
    "count as text": (_set("count", "many"), "'count'"),
    "negative count": (_set("count", -3), "'count'"),
    "nonfinite above count": (_set("nonfinite", 10**9), "'nonfinite'"),
    "fractional bins": (_set("counts", [0.5, 0.5]), "'counts'"),
    "bins as text": (_set("counts", "abc"), "'counts'"),
    "too many bins": (_set("counts", [1] * 5000), "'counts'"),
    "huge bin width": (_set("bin_width_log2", 5000), "'bin_width_log2'"),
    "min outside the bins": (_set("first_bin", 10**6), "'first_bin'"),
    "missing min": (_drop("min"), "'min'"),
    "missing counts": (_drop("counts"), "'counts'"),
    "tensor not an object": (lambda s: s["tensors"].__setitem__(TENSOR, [1, 2]), None),
    "tensors null": (lambda s: s.__setitem__("tensors", None), "'tensors'"),
    "missing samples": (lambda s: s.pop("samples"), "'samples'"),
    "bad_samples text": (lambda s: s.__setitem__("bad_samples", "none"), "'bad_samples'"),
}


def test_untampered_statistics_are_accepted(good_stats: dict, tmp_path: Path) -> None:
    (path := tmp_path / "good.json").write_text(json.dumps(good_stats))
    result = run("quantize-stats", path, tmp_path)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("case", list(TAMPERED))
def test_tampered_statistics_are_refused_naming_file_tensor_and_field(case: str, good_stats: dict,
                                                                      tmp_path: Path) -> None:
    change, field = TAMPERED[case]
    stats = copy.deepcopy(good_stats)
    change(stats)
    (path := tmp_path / "tampered.json").write_text(json.dumps(stats))  # NaN and Infinity as Python writes them
    in_tensor = case not in ("negative samples", "tensors null", "missing samples", "bad_samples text")
    names = [str(path)] + ([f"tensor {TENSOR!r}"] if in_tensor else []) + ([field] if field else [])
    assert_refused(run("quantize-stats", path, tmp_path), *names)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("text", [b"{", b"[1]", b"\xff\xfe", b"[" * 100_000, b'{"samples": 1' + b"0" * 5000 + b"}"])
def test_statistics_that_are_not_json_are_refused(text: bytes, tmp_path: Path) -> None:
    (path := tmp_path / "broken.json").write_bytes(text)
    assert_refused(run("quantize-stats", path, tmp_path), str(path), "not an edgeact statistics file")


# --- streaming observers on extreme but finite data ---------------------------------------------------------------


@pytest.mark.parametrize("values", [[5e-324, 1e-323], [5e-324], [-1e308, 1e308], [-1e308, 0.0, 1.5]])
def test_observer_takes_extreme_finite_values(values: list[float]) -> None:
    stats = TensorStats()
    stats.observe(np.array(values))
    assert (stats.min, stats.max) == (min(values), max(values))
    assert stats.finite_count == len(values)
    assert min(values) <= stats.quantile(0.5) <= max(values)
    again = TensorStats.from_dict(stats.as_dict())
    assert again.as_dict() == stats.as_dict()


def test_merging_a_shard_of_only_nonfinite_values_keeps_its_count() -> None:
    finite, nonfinite = TensorStats(), TensorStats()
    finite.observe(np.array([1.0, 2.0]))
    nonfinite.observe(np.array([np.nan, np.inf, -np.inf]))
    for merged in (finite.merge(nonfinite), nonfinite.merge(finite)):
        assert (merged.count, merged.nonfinite, merged.finite_count) == (5, 3, 2)


# --- the calibration record beside an int8 model (read by profile-device) ---------------------------------------


def _damage_record(record: dict, case: str) -> str:
    if case == "not json":
        return '{"activations": [{"node": 3'
    activation = record["activations"][0]
    if case == "short table":
        activation["table"] = [0, 1, 2]
    elif case == "NaN scale":
        activation["input_grid"]["scale"] = math.nan
    elif case == "missing error":
        activation.pop("error")
    elif case == "activations not a list":
        record["activations"] = {"tanh": activation}
    return json.dumps(record)


@pytest.mark.parametrize("case", ["not json", "missing error", "activations not a list", "short table", "NaN scale"])
def test_a_corrupt_record_beside_the_model_is_named_not_a_crash(case: str, int8_model: Path, tmp_path: Path) -> None:
    """profile-device reads the ``<stem>.calibration.json`` beside an int8 ONNX model (no hash binds them) for its
    report and its HTML transfer curves."""
    folder = tmp_path / "model"
    folder.mkdir()
    model = folder / int8_model.name
    model.write_bytes(int8_model.read_bytes())
    record = folder / "mlp_tanh.calibration.json"
    record.write_text(_damage_record(json.loads(int8_model.with_name(record.name).read_text()), case))
    before = _sha([record])
    result = run("profile-device", CALIB, tmp_path, model, "--html", tmp_path / "report.html")
    assert result.exit_code in (0, 1), result.output  # the profiler warns and reports without activations
    assert_refused(result, str(record), code=result.exit_code)
    assert _sha([record]) == before
    if result.exit_code == 0:
        assert json.loads((tmp_path / "report.json").read_text())["activations"] == []


@pytest.mark.parametrize("command", ["calibrate", "quantize", "profile-device"])
def test_every_data_command_takes_the_limit_as_an_option(command: str, tmp_path: Path, int8_model: Path) -> None:
    data = tmp_path / "calib.npz"
    np.savez(data, x=np.ones((100, 64), np.float32))  # 25600 bytes
    assert_refused(run(command, data, tmp_path, int8_model, "--max-array-bytes", "25599"), "over the limit",
                   "--max-array-bytes")
    result = run(command, data, tmp_path, int8_model, "--max-array-bytes", "25KiB")
    assert result.exit_code == 0, result.output
    assert_refused(run(command, data, tmp_path, int8_model, "--max-array-bytes", "lots"), "--max-array-bytes", code=2)
