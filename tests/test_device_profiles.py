"""Device profile files: validated on load, errors name the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeact.errors import DeviceProfileError, UsageError
from edgeact.hardware import load_profile

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
    from edgeact.hardware.profiles import builtin_profiles

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
        (GOOD.replace('dtypes = ["int8", "float32"]', 'dtypes = ["int8", "float32"]\nint16_ops = ["CONV_2D"]'),
         "int16_ops names ['CONV_2D'], which its ops do not hold"),
        (GOOD.replace('dtypes = ["int8", "float32"]', 'dtypes = ["int8", "float32"]\nint16_ops = ["TANH"]'),
         "int16_ops needs dtypes ['int16', 'int64']"),
    ],
)
def test_bad_profiles_name_key_and_file(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DeviceProfileError) as error:
        load_profile(path)
    assert message in str(error.value) and str(path) in str(error.value)


def test_the_litert_alias_names_the_same_profile_everywhere() -> None:
    """``litert`` (quantize's default target) is litert-xnnpack for profile-device and drift too."""
    assert load_profile("litert") == load_profile("litert-xnnpack")
    assert load_profile("litert").name == "litert-xnnpack"


def test_unknown_builtin_profile() -> None:
    with pytest.raises(DeviceProfileError, match="no built-in device profile 'esp32'"):
        load_profile("esp32")


def test_the_emulator_rules_come_from_the_profile(tmp_path: Path) -> None:
    """The profiles are the emulator's only source of rules (tests/test_tflite_export.py checks them bit for bit
    against each runtime): a user profile's rounding, arithmetic and table conventions are the ones it runs."""
    from edgeact.numerics.requantize import RequantRounding
    from edgeact.runtimes.emulator import rules_for
    from edgeact.runtimes.emulator.kernels import ARITHMETIC

    text = (GOOD.replace('"*" = "double"', '"*" = "single"\nMUL = "float_rne"')
            .replace('arithmetic = "reference"', 'arithmetic = "xnnpack"')
            .replace("output_zero_point = 0", 'output_zero_point = 0\nconventions = ["ideal"]'))
    rules = rules_for(load_profile(write(tmp_path, text)))
    assert rules.rounding("CONV_2D") == RequantRounding.SINGLE and rules.rounding("MUL") == RequantRounding.FLOAT32_RNE
    assert rules.kernels is ARITHMETIC["xnnpack"] and rules.conventions == {"TANH": "ideal"}
    tflm = rules_for(load_profile("tflm"))
    assert tflm.kernels is ARITHMETIC["tflm"] and tflm.conventions == {}
    assert rules_for(load_profile("litert-reference")).kernels == {}


def test_profile_arithmetic_names_are_the_op_tables() -> None:
    """A profile's ``arithmetic`` may name exactly the arithmetics some builtin of edgeact.ops declares kernels for
    (plus the reference), and the XNNPACK one covers the ops XNNPACK (or LiteRT's optimized kernel behind it)
    computes its own way."""
    from edgeact.hardware.profiles import ARITHMETIC as NAMES
    from edgeact.runtimes.emulator.kernels import ARITHMETIC

    assert sorted(NAMES) == sorted(ARITHMETIC)
    assert sorted(ARITHMETIC["xnnpack"]) == ["ADD", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MEAN", "MUL",
                                             "QUANTIZE", "SOFTMAX", "SUB"]
    assert sorted(ARITHMETIC["tflm"]) == ["FULLY_CONNECTED", "MUL", "PRELU", "SOFTMAX"]


# Issue 13: profiles name op sets (edgeact/device_profiles/op_sets.toml) instead of repeating one op list.

def with_ops(tmp_path: Path, ops: str) -> Path:
    return write(tmp_path, GOOD.replace('ops = ["TANH", "QUANTIZE", "DEQUANTIZE"]', f"ops = {ops}"))


def test_profiles_name_op_sets(tmp_path: Path) -> None:
    from edgeact.hardware.profiles import op_sets

    sets = op_sets()
    assert set(sets["litert"]) == set(sets["tflite-micro"]) | {"GELU", "POW"}
    assert load_profile("tflm").ops == sets["tflite-micro"] and load_profile("cmsis-nn").ops == sets["tflite-micro"]
    for name in ("litert-reference", "litert-xnnpack", "npu-table"):
        assert load_profile(name).ops == sets["litert"]
    tflm, litert = load_profile("tflm"), load_profile("litert-xnnpack")
    assert not tflm.runs_op("GELU") and litert.runs_op("GELU") and load_profile("onnxruntime-cpu").runs_op("Gelu")
    mine = load_profile(with_ops(tmp_path, '["@tflite-micro", "GELU", "-SIN"]'))
    assert mine.runs_op("GELU") and not mine.runs_op("SIN") and mine.runs_op("TANH")
    assert load_profile(with_ops(tmp_path, '["@litert", "-POW"]')).ops == tuple(o for o in sets["litert"] if o != "POW")
    assert load_profile(with_ops(tmp_path, '["ADD", "ADD", "MUL"]')).ops == ("ADD", "MUL")  # the explicit form


@pytest.mark.parametrize("ops, message", [
    ('["@tflm-ops"]', "ops names op set '@tflm-ops'; known sets: @tflite-micro, @litert"),
    ('["@tflite-micro", "-POW"]', "ops removes '-POW', which none of its op sets holds"),
    ('["@"]', "ops names op set '@'"),
])
def test_bad_op_set_references_name_the_file(tmp_path: Path, ops: str, message: str) -> None:
    path = with_ops(tmp_path, ops)
    with pytest.raises(DeviceProfileError) as error:
        load_profile(path)
    assert message in str(error.value) and str(path) in str(error.value)


def test_the_op_sets_file_is_not_a_profile() -> None:
    from edgeact.hardware.profiles import OP_SETS, builtin_profiles

    assert OP_SETS.removesuffix(".toml") not in builtin_profiles()
    with pytest.raises(UsageError):
        load_profile(OP_SETS.removesuffix(".toml"))


# Issue 12, item 2: a built-in name is a name, never a path (``--device ../../x/evil`` loaded x/evil.toml).

EVIL = GOOD.replace('name = "mcu"', 'name = "evil-outside-the-package"')


def profile_device(device: str | Path):  # type: ignore[no-untyped-def]
    """The real CLI; the profile is loaded before the (absent) model, baseline and data are looked at."""
    from click.testing import CliRunner

    from edgeact.cli import main

    return CliRunner().invoke(main, ["profile-device", "model.int8.tflite", "--device", str(device),
                                     "--baseline", "model.onnx", "--data", "eval.npz"])


def assert_clean(result, code: int, *expected: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == code, result.output
    for text in expected:
        assert text in result.output, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_device_name_cannot_climb_out_of_the_profile_folder(tmp_path: Path) -> None:
    import os
    from importlib import resources

    (tmp_path / "evil.toml").write_text(EVIL)
    folder = Path(str(resources.files("edgeact").joinpath("device_profiles")))
    relative = os.path.relpath(tmp_path / "evil", folder)
    assert relative.startswith("..") and (folder / f"{relative}.toml").resolve() == (tmp_path / "evil.toml")
    result = profile_device(relative)
    assert_clean(result, 2, "neither a built-in name", "tflm", "must end in .toml")
    assert "evil-outside-the-package" not in result.output and "no such model file" not in result.output
    with pytest.raises(UsageError):
        load_profile(relative)


@pytest.mark.parametrize("name", ["../tflm", "a/b", "TFLM", "tflm/", "-tflm", "", "tflm.toml/..", "..", "/etc/passwd"])
def test_a_name_that_is_neither_builtin_nor_toml_is_a_usage_error(name: str) -> None:
    with pytest.raises(UsageError, match="built-in name .*cmsis-nn.*tflm.* must end in .toml"):
        load_profile(name)


def test_tflite_target_is_a_name_or_a_toml_file(tmp_path: Path) -> None:
    import os
    from importlib import resources

    from edgeact.exporters.tflite.targets import target

    (tmp_path / "evil.toml").write_text(EVIL)
    folder = Path(str(resources.files("edgeact").joinpath("device_profiles")))
    with pytest.raises(UsageError, match="unknown TFLite target .* must end in .toml|ends in .toml"):
        target(os.path.relpath(tmp_path / "evil", folder))
    assert target(str(tmp_path / "evil.toml")).name == "evil-outside-the-package"
    assert target("litert").name == "litert-xnnpack"
    with pytest.raises(DeviceProfileError, match="threads"):  # a broken file says what is wrong, not "unknown"
        target(str(write(tmp_path, GOOD.replace("threads = 1", "threads = 0"))))


# Issue 12, item 9: every field of a profile file is checked; wrong types are errors naming the file and the key.

TANH_TABLE = '[activations.TANH]\nkernel = "fixed_output"\noutput_scale = 0.0078125\noutput_zero_point = 0\n'
BAD_FIELDS = [
    (GOOD.replace(TANH_TABLE, '[activations]\nTANH = "fixed_output"\n'), "'activations.TANH' must be a table"),
    ('activations = ["TANH"]\n' + GOOD.replace(TANH_TABLE, ""), "key 'activations' must be a table"),
    (GOOD.replace('"*" = "double"', '"*" = ["double"]'), "requantization.* is ['double']"),
    (GOOD.replace('"*" = "double"', '"*" = 1'), "requantization.* is 1"),
    (GOOD.replace('[requantization]\n"*" = "double"', 'requantization = "double"'), "key 'requantization'"),
    (GOOD.replace("output_scale = 0.0078125\n", ""), "missing key 'activations.TANH.output_scale'"),
    (GOOD.replace("output_zero_point = 0\n", ""), "missing key 'activations.TANH.output_zero_point'"),
    (GOOD.replace("threads = 1", "threads = -5"), "key 'threads' is -5"),
    (GOOD.replace("threads = 1", "threads = 0"), "key 'threads' is 0"),
    (GOOD.replace("threads = 1", "threads = 1.5"), "key 'threads' must be int"),
    (GOOD.replace("threads = 1", "threads = true"), "key 'threads' must be int"),
    (GOOD.replace("threads = 1", "threads = 10000000000000000000"), "key 'threads' is 10000000000000000000"),
    (GOOD.replace("threads = 1", "threads = 100000000"), "key 'threads' is 100000000"),
    (GOOD.replace("output_scale = 0.0078125", 'output_scale = "1/128"'), "activations.TANH.output_scale' must be"),
    (GOOD.replace("output_scale = 0.0078125", "output_scale = nan"), "activations.TANH.output_scale' must be"),
    (GOOD.replace("output_scale = 0.0078125", "output_scale = inf"), "activations.TANH.output_scale' must be"),
    (GOOD.replace("output_scale = 0.0078125", "output_scale = -0.5"), "activations.TANH.output_scale' is -0.5"),
    (GOOD.replace("output_scale = 0.0078125", "output_scale = 0"), "activations.TANH.output_scale' is 0"),
    (GOOD.replace("output_zero_point = 0", "output_zero_point = 300"), "activations.TANH.output_zero_point' is 300"),
    (GOOD.replace("output_zero_point = 0", "output_zero_point = 0.5"), "activations.TANH.output_zero_point' must"),
    (GOOD.replace("output_zero_point = 0", "output_zero_point = 0\nfoo = 1"), "unknown key 'activations.TANH.foo'"),
    (GOOD.replace("output_zero_point = 0", 'output_zero_point = 0\nrefuses_other_output = "all"'),
     "activations.TANH.refuses_other_output is 'all'"),
    (GOOD.replace("output_zero_point = 0", "output_zero_point = 0\nmax_lsb_error = -1"),
     "activations.TANH.max_lsb_error' is -1"),
    (GOOD.replace("output_zero_point = 0", 'output_zero_point = 0\nconventions = "litert"'),
     "activations.TANH.conventions' must be list"),
    (GOOD.replace("output_zero_point = 0", 'output_zero_point = 0\nconventions = ["magic"]'),
     "activations.TANH.conventions' must be a list of strings from ideal, litert, xnnpack"),
    (GOOD.replace("output_zero_point = 0", "output_zero_point = 0\n[activations.TANH.nested]\nx = 1"),
     "unknown key 'activations.TANH.nested'"),
    (GOOD.replace('kernel = "fixed_output"', "kernel = 3"), "activations.TANH.kernel' must be str"),
    (GOOD.replace("per_channel = true", "per_channel = 1"), "key 'per_channel' must be bool"),
    (GOOD.replace('name = "mcu"', "name = 5"), "key 'name' must be str"),
    (GOOD.replace('description = "test"', 'description = ["x"]'), "key 'description' must be str"),
    (GOOD.replace('backend = "tflm"', "backend = [1]"), "key 'backend' must be str"),
    (GOOD.replace('ops = ["TANH", "QUANTIZE", "DEQUANTIZE"]', 'ops = "TANH"'), "key 'ops' must be list"),
    (GOOD.replace('ops = ["TANH", "QUANTIZE", "DEQUANTIZE"]', "ops = [1, 2]"), "key 'ops' must be a list of strings"),
    (GOOD.replace('dtypes = ["int8", "float32"]', "dtypes = [true]"), "key 'dtypes' must be a list of strings"),
    (GOOD.replace("schema_version = 2", 'schema_version = "2"'), "schema_version '2' is not supported"),
    (GOOD.replace("schema_version = 2", "schema_version = 2.0"), "key 'schema_version' must be int"),
    (GOOD + "extra = 1\n", "unknown key 'activations.TANH.extra'"),
    ("extra = 1\n" + GOOD, "unknown key 'extra'"),
    (GOOD.replace("threads = 1", "threads = 1\nthreads = 2"), "not valid TOML"),
    ("\x00", "not valid TOML"),
]


@pytest.mark.parametrize("text,message", BAD_FIELDS)
def test_every_field_is_checked_with_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    """Before: TypeError / KeyError / AttributeError tracebacks, or a profile with threads = -5 accepted."""
    path = write(tmp_path, text)
    with pytest.raises(DeviceProfileError) as error:
        load_profile(path)
    assert message in str(error.value) and str(path) in str(error.value)
    assert_clean(profile_device(path), 1, message, str(path))


def test_unreadable_profile_files_are_clear_errors(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(GOOD.replace('"test"', '"caf\xe9"').encode("latin-1"))
    (tmp_path / "folder.toml").mkdir()
    for path, message in ((latin1, "not UTF-8"), (tmp_path / "missing.toml", "No such file"),
                          (tmp_path / "folder.toml", "cannot read device profile")):
        with pytest.raises(DeviceProfileError, match=message):
            load_profile(path)
        assert_clean(profile_device(path), 1, str(path), message)


def test_every_builtin_profile_passes_the_field_checks() -> None:
    from edgeact.hardware.profiles import builtin_profiles

    for name in builtin_profiles():
        profile = load_profile(name)
        assert 1 <= profile.threads and profile.requantization["*"]
        for kernel in profile.activations.values():
            if kernel.kernel in ("fixed_output", "exact_at_output"):
                assert kernel.output_scale > 0 and -128 <= kernel.output_zero_point <= 127
