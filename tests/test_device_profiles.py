"""Device profile files: validated on load, errors name the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeact.devices import load_profile
from edgeact.errors import DeviceProfileError

GOOD = """
schema_version = 2
name = "mcu"
description = "test"
backend = "tflm"
model_format = "tflite"
arithmetic = "reference"
per_channel = true
int16_activations = false
threads = 1
ops = ["TANH", "QUANTIZE", "DEQUANTIZE"]
dtypes = ["int8", "float32"]
[requantization]
"*" = "double"
[activations.TANH]
kernel = "fixed_output"
output_scale = 0.0078125
output_zero_point = 0
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "device.toml"
    path.write_text(text)
    return path


def test_builtin_and_file_profiles_load(tmp_path: Path) -> None:
    from edgeact.devices.profiles import builtin_profiles

    assert builtin_profiles() == ["cmsis-nn", "litert-reference", "litert-xnnpack", "npu-table", "onnxruntime-cpu",
                                  "tflm"]
    for name in builtin_profiles():
        assert load_profile(name).name == name
    assert load_profile("tflm").activations["GELU"].kernel == "missing"
    assert load_profile(write(tmp_path, GOOD)).activations["TANH"].output_scale == 0.0078125


@pytest.mark.parametrize(
    "text,message",
    [
        (GOOD.replace("threads", "thread"), "unknown key 'thread'"),
        (GOOD.replace('backend = "tflm"', 'backend = "gpu"'), "backend is 'gpu'"),
        (GOOD.replace('"*" = "double"', '"*" = "sometimes"'), "requantization.* is 'sometimes'"),
        (GOOD.replace("threads = 1", 'threads = "1"'), "key 'threads' must be int"),
        (GOOD.replace('name = "mcu"\n', ""), "missing key 'name'"),
        (GOOD.replace("schema_version = 2", "schema_version = 9"), "schema_version 9"),
        (GOOD.replace("output_zero_point = 0", 'output_zero_point = "0"'), "activations.TANH.output_zero_point"),
        (GOOD.replace('kernel = "fixed_output"', 'kernel = "magic"'), "activations.TANH.kernel"),
        ("name = [", "not valid TOML"),
    ],
)
def test_bad_profiles_name_key_and_file(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DeviceProfileError) as error:
        load_profile(path)
    assert message in str(error.value) and str(path) in str(error.value)


def test_unknown_builtin_profile() -> None:
    with pytest.raises(DeviceProfileError, match="no built-in device profile 'esp32'"):
        load_profile("esp32")


def test_profiles_state_the_rules_the_emulator_was_verified_with() -> None:
    """The emulator constants the runtime tests check bit for bit are the ones the TOML profiles derive."""
    from edgeact.runtimes.emulator import LITERT_REFERENCE, LITERT_XNNPACK, TFLM_REFERENCE, rules_for

    for name, rules in (("litert-reference", LITERT_REFERENCE), ("tflm", TFLM_REFERENCE),
                        ("litert-xnnpack", LITERT_XNNPACK)):
        derived = rules_for(load_profile(name))
        assert derived.roundings == rules.roundings and derived.kernels == rules.kernels, name
