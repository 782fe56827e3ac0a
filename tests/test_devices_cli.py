"""``edgeact devices`` and ``edgeact.devices()``: every built-in profile, its runtime and what it runs in int16,
checked against the profile files themselves."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from click.testing import CliRunner

import edgeact
from edgeact.cli import main

PROFILES = Path(edgeact.__file__).parent / "device_profiles"


def _profiles() -> dict[str, dict]:
    return {path.stem: tomllib.loads(path.read_text()) for path in PROFILES.glob("*.toml") if path.stem != "op_sets"}


def test_the_table_lists_every_profile_file_with_its_runtime_and_int16_support() -> None:
    result = CliRunner().invoke(main, ["devices"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["device", "format", "runtime"]
    for name, facts in _profiles().items():
        line = next(line for line in lines[1:] if line.split()[0] == name)
        assert facts["model_format"] in line.split() and facts["backend"] in line.split()
        if facts["model_format"] == "tflite" and facts.get("int16_ops") and not facts["int16_activations"]:
            assert "off its fast path" in line  # LiteRT's XNNPACK: LiteRT runs 16x8, its delegate does not
        if not facts.get("int16_ops") and facts["model_format"] == "tflite":
            assert "16x8" not in line
    assert any(line.startswith("litert-xnnpack (--target litert) ") for line in lines)  # quantize's shorthand


def test_json_has_the_same_profiles_as_the_api() -> None:
    result = CliRunner().invoke(main, ["devices", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert sorted(d["name"] for d in listed) == sorted(_profiles()) == [d.name for d in edgeact.devices()]
    onnx = [d for d in listed if d["model_format"] == "onnx"]
    assert [d["int16"] for d in onnx] == ["int16 Q/DQ"] and onnx[0]["ops"] is None  # it runs every op type
