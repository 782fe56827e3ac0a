"""`edgeact lut` through click's CliRunner: every mode, and bad arguments -> exit 2 naming the parameter."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgeact.cli import main

BASE = ["--in-scale", "0.03125", "--in-zero-point", "0"]


def invoke(*args: str):  # noqa: ANN201
    return CliRunner().invoke(main, list(args))


def test_summary_shows_error_next_to_floor() -> None:
    result = invoke("lut", "tanh", *BASE, "--out-scale", "0.0078125")
    assert result.exit_code == 0, result.output
    assert "end to end, max" in result.output and "floor/bound" in result.output
    assert "saturation" in result.output


def test_json_record_is_complete_and_consistent() -> None:
    result = invoke("lut", "tanh", *BASE, "--out-scale", "0.0078125", "--out-zero-point", "0", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    for key in ("function", "convention", "in_scale", "in_zero_point", "out_scale", "out_zero_point", "table",
                "max_abs_error", "rms_error", "bound"):
        assert key in record
    assert len(record["table"]) == 256 and all(-128 <= v <= 127 for v in record["table"])
    assert record["max_abs_error"] <= record["bound"]
    # independent check of a few entries: tanh of the dequantized code, rounded half away, clamped
    for code in (-128, -5, 0, 3, 127):
        y = math.tanh(0.03125 * code) * 128
        expected = max(-128, min(127, int(math.floor(abs(y) + 0.5)) * (1 if y >= 0 else -1)))
        assert record["table"][code + 128] == expected


@pytest.mark.parametrize("convention", ["ideal", "litert", "xnnpack"])
def test_each_convention(convention: str) -> None:
    result = invoke("lut", "sigmoid", *BASE, "--out-scale", "0.00390625", "--out-zero-point", "-128",
                    "--convention", convention, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["convention"] == convention


def test_auto_output_grid_covers_the_function() -> None:
    record = json.loads(invoke("lut", "gelu", "--in-scale", "0.05", "--in-zero-point", "-20", "--json").output)
    assert record["out_grid"] == "auto"
    lo, hi = record["output_range"]
    assert lo <= -0.16 and hi >= 0.05 * (127 + 20) * 0.99  # GELU's dip and its top end fit
    assert record["clamp_error"] < record["out_scale"]


def test_int16_mode() -> None:
    result = invoke("lut", "tanh", "--bits", "16", "--in-scale", "0.000122", "--in-zero-point", "0", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["bits"] == 16 and len(record["table"]) == 513
    assert record["max_abs_error"] <= record["bound"]


def test_activation_parameter() -> None:
    record = json.loads(invoke("lut", "leaky_relu", "--param", "alpha=0.2", *BASE, "--json").output)
    assert record["params"] == {"alpha": 0.2}


def test_plot_is_written(tmp_path: Path) -> None:
    target = tmp_path / "gelu.png"
    result = invoke("lut", "gelu", *BASE, "--plot", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["gelu.png"]  # no temp file left behind


@pytest.mark.parametrize(
    "args,names",
    [
        (["lut", "swish2", *BASE], ["FUNCTION", "known:", "gelu", "tanh"]),
        (["lut", "tanh", "--in-scale", "0", "--in-zero-point", "0"], ["--in-scale", "> 0"]),
        (["lut", "tanh", "--in-scale", "nan", "--in-zero-point", "0"], ["--in-scale"]),
        (["lut", "tanh", "--in-scale", "inf", "--in-zero-point", "0"], ["--in-scale"]),
        (["lut", "tanh", *BASE, "--out-scale", "-1"], ["--out-scale"]),
        (["lut", "tanh", "--in-scale", "0.1", "--in-zero-point", "128"], ["--in-zero-point", "[-128, 127]"]),
        (["lut", "tanh", *BASE, "--out-scale", "0.01", "--out-zero-point", "-129"], ["--out-zero-point"]),
        (["lut", "tanh", "--bits", "16", "--in-scale", "1e-4", "--in-zero-point", "40000"], ["--in-zero-point"]),
        (["lut", "tanh", "--bits", "16", "--in-scale", "1e-4", "--in-zero-point", "0", "--convention", "xnnpack"],
         ["--convention", "int16"]),
        (["lut", "elu", *BASE, "--param", "beta=1"], ["parameter 'beta'"]),
        (["lut", "elu", *BASE, "--param", "alpha"], ["--param", "KEY=VALUE"]),
    ],
)
def test_bad_arguments_exit_2_and_name_the_parameter(args: list[str], names: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    for name in names:
        assert name in result.output


def test_plot_into_missing_folder_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    result = invoke("lut", "tanh", *BASE, "--plot", str(tmp_path / "nope" / "x.png"))
    assert result.exit_code == 1
    assert "does not exist" in result.output
    assert not (tmp_path / "nope").exists()


def test_help_teaches_with_examples() -> None:
    result = invoke("lut", "--help")
    assert result.exit_code == 0 and "Examples:" in result.output and "xnnpack" in result.output
    assert "lut" in invoke("--help").output


@pytest.mark.parametrize(("args", "named"), [
    (["tanh", "--in-scale", "1e-320", "--in-zero-point", "0"], "--in-scale"),  # a float64 subnormal: 0 in float32
    (["tanh", "--in-scale", "1e300", "--in-zero-point", "0"], "--in-scale"),
    (["tanh", "--in-scale", "0.05", "--in-zero-point", "0", "--out-scale", "1e-300", "--out-zero-point", "0"],
     "--out-scale"),
    (["leaky_relu", "--param", "alpha=nan", "--in-scale", "0.05", "--in-zero-point", "0"], "'alpha'"),
    (["elu", "--param", "alpha=inf", "--in-scale", "0.05", "--in-zero-point", "0"], "'alpha'"),
])
def test_unusable_numbers_name_their_parameter(args: list[str], named: str) -> None:
    """Before: 'scale must be finite and > 0, got 0.0' for 1e-320, and a table of NaN for alpha=nan."""
    result = invoke("lut", *args)
    assert result.exit_code == 2, result.output
    assert named in result.output and "nan" not in result.output.split("got")[0]
    assert "Traceback" not in result.output
