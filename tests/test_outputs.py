"""Outputs never replace inputs, appear as a complete set or not at all, and get the user's umask mode.

Issue 12 items 4, 5 and 8; each test reproduces the original failure (rc, message, files left, inputs' sha256).
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgeact.cli import main
from edgeact.errors import EdgeactError, UsageError
from edgeact.io import OutputSet, atomic_write, atomic_write_bytes, check_outputs, clean_stale_temps

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "digits"
MODEL = EXAMPLES / "mlp_tanh.onnx"
CALIB = EXAMPLES / "mlp_tanh.calib.npz"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, [str(a) for a in args])


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith("."))


@pytest.fixture(scope="module")
def stats_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Statistics saved under the name quantize gives its record: the trap of item 4."""
    out = tmp_path_factory.mktemp("stats") / "o"
    out.mkdir()
    path = out / "mlp_tanh.calibration.json"
    assert _run("calibrate", MODEL, "--calib", CALIB, "--stats-out", path).exit_code == 0
    return path


def test_quantize_refuses_a_record_path_that_is_a_stats_input(stats_file: Path) -> None:
    before = _sha(stats_file)
    result = _run("quantize", MODEL, "--stats", stats_file, "-o", stats_file.parent)
    assert result.exit_code == 2, result.output
    assert "would overwrite the input" in result.output and str(stats_file.name) in result.output
    assert _sha(stats_file) == before
    assert sorted(p.name for p in stats_file.parent.iterdir()) == [stats_file.name]


def test_quantize_refuses_a_hard_link_to_an_input(stats_file: Path, tmp_path: Path) -> None:
    link = tmp_path / "shard.json"
    os.link(stats_file, link)
    before = _sha(stats_file)
    result = _run("quantize", MODEL, "--stats", link, "-o", stats_file.parent)
    assert result.exit_code == 2, result.output
    assert "would overwrite the input" in result.output and "Traceback" not in result.output
    assert _sha(stats_file) == before


def test_quantize_refuses_a_symlinked_output_folder_onto_the_model(tmp_path: Path) -> None:
    model = tmp_path / "m" / "mlp_tanh.int8.qdq.onnx"  # a model named like an output, quantized into its folder
    model.parent.mkdir()
    model.write_bytes(MODEL.read_bytes())
    (tmp_path / "alias").symlink_to(model.parent)
    before = _sha(model)
    result = _run("quantize", model, "--calib", CALIB, "-o", tmp_path / "alias")
    assert result.exit_code in (0, 2)  # its outputs are named mlp_tanh.int8.qdq.int8.*: no clash, or refused
    assert _sha(model) == before


def test_calibrate_refuses_stats_out_onto_its_data(tmp_path: Path) -> None:
    data = tmp_path / "calib.npz"
    data.write_bytes(CALIB.read_bytes())
    before = _sha(data)
    result = _run("calibrate", MODEL, "--calib", data, "--stats-out", data)
    assert result.exit_code == 2 and "would overwrite the input" in result.output
    assert _sha(data) == before


def test_check_outputs_refuses_two_outputs_on_one_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="are the same file"):
        check_outputs({"--json": tmp_path / "r.json", "--html": tmp_path / "." / "r.json"}, [])


def _limited_file_size(limit: int):  # type: ignore[no-untyped-def]
    def apply() -> None:  # in the child: a real EFBIG from the kernel on any write past ``limit`` bytes
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_failed_write_leaves_no_file_of_the_set(tmp_path: Path) -> None:
    """The QDQ/table/record fit under the limit, the plots do not: before, three files stayed and no plots."""
    out = tmp_path / "out"
    sizes = {}
    full = _run("quantize", MODEL, "--calib", CALIB, "--format", "onnx-qdq,onnx-table", "--plots",
                "-o", tmp_path / "ok")
    assert full.exit_code == 0, full.output
    for path in (tmp_path / "ok").rglob("*.*"):
        sizes[path.suffix] = max(sizes.get(path.suffix, 0), path.stat().st_size)
    limit = max(sizes[".onnx"], sizes[".json"]) + 1024
    assert sizes[".png"] > limit  # the failure has to come after the model files were written
    result = subprocess.run(
        [sys.executable, "-m", "edgeact.cli", "quantize", str(MODEL), "--calib", str(CALIB),
         "--format", "onnx-qdq,onnx-table", "--plots", "-o", str(out)],
        capture_output=True, text=True, preexec_fn=_limited_file_size(limit), timeout=300,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "cannot write it" in result.stderr
    assert ".png" in result.stderr  # names the path
    assert not out.exists() or list(out.rglob("*")) == []


def test_interrupted_write_removes_its_temp_file(tmp_path: Path) -> None:
    def interrupted(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "a.onnx", interrupted)
    assert list(tmp_path.iterdir()) == []


def test_output_set_commits_all_or_nothing(tmp_path: Path) -> None:
    with pytest.raises(EdgeactError, match="b.bin"):
        with OutputSet() as outputs:
            outputs.add_bytes(tmp_path / "a.bin", b"a")
            outputs.add(tmp_path / "b.bin", lambda tmp: (_ for _ in ()).throw(OSError(28, "No space left on device")))
            outputs.commit()
    assert list(tmp_path.iterdir()) == []
    with OutputSet() as outputs:
        outputs.add_bytes(tmp_path / "a.bin", b"a")
        outputs.add_text(tmp_path / "record.json", "{}")
        assert list(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == []
        outputs.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "record.json"]


def test_stale_temp_files_of_a_killed_run_are_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".m.int8.qdq.onnx.edgeact-{dead.pid}-abc123.tmp"
    alive = tmp_path / f".m.int8.qdq.onnx.edgeact-{os.getppid()}-abc123.tmp"  # a live process's: kept
    foreign = tmp_path / ".m.onnx.swp"  # not our naming: kept
    for path in (stale, alive, foreign):
        path.write_bytes(b"x")
    atomic_write_bytes(tmp_path / "m.int8.qdq.onnx", b"model")
    assert not stale.exists() and alive.exists() and foreign.exists()
    assert clean_stale_temps(tmp_path) == []


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_outputs_get_the_umask_mode(tmp_path: Path, umask: int) -> None:
    """Before, every output kept mkstemp's 0600 whatever the umask."""
    old = os.umask(umask)
    try:
        result = _run("quantize", MODEL, "--calib", CALIB, "--format", "onnx-qdq", "-o", tmp_path)
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    for path in tmp_path.iterdir():
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


def test_sigterm_exits_without_traceback_or_partial_files(tmp_path: Path) -> None:
    data = tmp_path / "calib"
    data.mkdir()
    for index in range(400):  # a few seconds of calibration: the signal arrives mid-run
        os.link(EXAMPLES / "transformer_gelu.calib.npz", data / f"shard{index:03d}.npz")
    out = tmp_path / "out"
    child = subprocess.Popen(
        [sys.executable, "-m", "edgeact.cli", "quantize", str(EXAMPLES / "transformer_gelu.onnx"),
         "--calib", str(data), "--format", "onnx-qdq,onnx-table", "--plots", "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(2.0)
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode in (143, -signal.SIGTERM), stderr  # -15: it came before the CLI started
    assert "Traceback" not in stderr
    assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_profile_reports_appear_together_or_not_at_all(tmp_path: Path) -> None:
    """The HTML (plots inside) is larger than the JSON: a write limit between them used to leave the JSON alone."""
    assert _run("quantize", MODEL, "--calib", CALIB, "--format", "onnx-qdq", "-o", tmp_path).exit_code == 0
    int8 = tmp_path / "mlp_tanh.int8.qdq.onnx"
    args = ["profile-device", str(int8), "--device", "onnxruntime-cpu", "--baseline", str(MODEL),
            "--data", str(EXAMPLES / "mlp_tanh.eval.npz"), "--per-layer", "--latency-runs", "2"]
    full = _run(*args, "--json", tmp_path / "ok.json", "--html", tmp_path / "ok.html")
    assert full.exit_code == 0, full.output
    json_size, html_size = (tmp_path / "ok.json").stat().st_size, (tmp_path / "ok.html").stat().st_size
    assert html_size > json_size + 4096
    out = tmp_path / "reports"
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "edgeact.cli", *args, "--json", str(out / "r.json"), "--html", str(out / "r.html")],
        capture_output=True, text=True, preexec_fn=_limited_file_size(json_size + 2048), timeout=300,
    )
    assert result.returncode == 1, result.stderr
    assert "r.html" in result.stderr and "Traceback" not in result.stderr
    assert list(out.iterdir()) == []


def test_json_embedded_in_html_survives_json_parse() -> None:
    """No HTML entities (the element's text is read raw), nothing that closes the element, no NaN/Infinity."""
    from edgeact.reports.embed import script_json
    data = {"name": 'a "quoted" </script><!-- & tag', "db": float("inf"), "nan": float("nan"),
            "list": [1.5, -float("inf")]}
    text = script_json(data)
    assert "</" not in text and "<!--" not in text and "&quot;" not in text
    parsed = json.loads(text, parse_constant=lambda token: (_ for _ in ()).throw(AssertionError(token)))
    assert parsed == {"name": data["name"], "db": None, "nan": None, "list": [1.5, None]}


def test_runtime_chatter_is_silent_by_default_and_shown_with_verbose(tmp_path: Path) -> None:
    digits = Path(__file__).resolve().parents[1] / "examples" / "digits"
    args = ["quantize", str(digits / "mlp_tanh.onnx"), "--calib", str(digits / "mlp_tanh.calib.npz"), "--format",
            "tflite"]
    quiet = subprocess.run([sys.executable, "-m", "edgeact.cli", *args, "-o", str(tmp_path / "q")],
                           capture_output=True, text=True)
    loud = subprocess.run([sys.executable, "-m", "edgeact.cli", "--verbose", *args, "-o", str(tmp_path / "v")],
                          capture_output=True, text=True)
    assert quiet.returncode == 0 and loud.returncode == 0, quiet.stderr + loud.stderr
    assert "XNNPACK delegate" not in quiet.stderr + quiet.stdout
    assert "INFO: Created TensorFlow Lite XNNPACK delegate" in loud.stderr


def test_captured_native_output_is_kept_and_stderr_restored(capfd) -> None:  # type: ignore[no-untyped-def]
    from edgeact.runtimes.native_output import native_stderr
    with native_stderr() as printed:
        os.write(2, b"ERROR: a native refusal\n")
    os.write(2, b"after\n")
    assert printed.text == "ERROR: a native refusal"
    assert capfd.readouterr().err == "after\n"
