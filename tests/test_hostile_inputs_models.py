"""A PyTorch factory MODEL runs Python code, and says so; what is not a model factory is refused before it runs.

Issue 12, item 1: ``edgeact quantize os:abort`` ended in SIGABRT, any ``module:callable`` was called unchecked. Each
test runs the real CLI; a refusal that broke would abort the test process, delete the victim folder or leave the
marker file behind.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgeact.cli import main

FACTORIES = textwrap.dedent("""
    import functools
    import shutil
    import sys
    from os import abort as stolen_abort

    import torch

    def mark(what):
        with open("MARKER", "a") as handle:
            handle.write(what + "\\n")

    def not_a_module():
        mark("not_a_module")
        return {"weights": [1, 2, 3]}

    def raises():
        mark("raises")
        raise RuntimeError("checkpoint corrupt")

    def exits():
        mark("exits")
        sys.exit(7)

    class NotAModule:
        def __init__(self):
            mark("NotAModule")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.fc = torch.nn.Linear(16, 4)

        def forward(self, x):
            return torch.tanh(self.fc(x))

    wipe = functools.partial(shutil.rmtree, "victim")
    callable_object = type("Caller", (), {"__call__": lambda self: mark("callable_object")})()
    weights = [1, 2, 3]
""")


@pytest.fixture()
def workspace(tmp_path: Path, monkeypatch) -> Path:  # type: ignore[no-untyped-def]
    (tmp_path / "factories.py").write_text(FACTORIES)
    (tmp_path / "broken_syntax.py").write_text("def build(:\n    return None\n")
    (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit(3)\n")
    (tmp_path / "raises_on_import.py").write_text("raise ValueError('no GPU here')\n")
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "keep.txt").write_text("precious")
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(0).normal(0, 1.5, (16, 16)).astype(np.float32))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("factories", "exits_on_import", "raises_on_import"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return tmp_path


def quantize(model: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["quantize", model, "--calib", "calib.npz", "-o", "out", "--format", "onnx-qdq"])


def assert_refused(result, code: int, *expected: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == code, result.output
    for text in expected:
        assert text in result.output, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("model", ["os:abort", "builtins:exit", "subprocess:call", "os.path:join", "shutil:rmtree",
                                   "antigravity:fly"])
def test_stdlib_callable_is_refused_before_it_is_called(workspace: Path, model: str) -> None:
    """Before the fix os:abort killed this process with SIGABRT; now nothing of the stdlib is imported or called."""
    result = quantize(model)
    assert_refused(result, 1, repr(model), "standard library", "not a model factory")
    assert (workspace / "victim" / "keep.txt").read_text() == "precious"
    assert not (workspace / "out").exists()


@pytest.mark.parametrize("model", ["factories.py:stolen_abort", "factories:stolen_abort", "factories.py:wipe"])
def test_stdlib_callable_reexported_by_a_user_file_is_refused(workspace: Path, model: str) -> None:
    """``from os import abort`` / a partial of shutil.rmtree in the user's file: judged by where it was defined."""
    result = quantize(model)
    assert_refused(result, 1, repr(model), "standard library", "refused without calling it")
    assert (workspace / "victim" / "keep.txt").read_text() == "precious"


def test_stdlib_file_is_refused_before_it_is_executed(workspace: Path) -> None:
    import shutil

    result = quantize(f"{shutil.__file__}:rmtree")
    assert_refused(result, 1, "part of Python's standard library")
    assert (workspace / "victim").is_dir()


@pytest.mark.parametrize(
    "model, expected",
    [
        ("factories.py:NotAModule", "class factories.NotAModule is not a torch.nn.Module subclass"),
        ("factories.py:callable_object", "not a Python function"),
        ("factories.py:weights", "an object of type list (not callable)"),
    ],
)
def test_what_is_not_a_factory_is_refused_before_it_is_called(workspace: Path, model: str, expected: str) -> None:
    result = quantize(model)
    assert_refused(result, 1, repr(model), expected)
    assert not (workspace / "MARKER").exists()


@pytest.mark.parametrize(
    "model, expected",
    [
        ("factories.py:not_a_module", "the factory returned a builtins.dict, not a torch.nn.Module"),
        ("factories:not_a_module", "the factory returned a builtins.dict, not a torch.nn.Module"),
        ("factories.py:raises", "the factory raised RuntimeError: checkpoint corrupt"),
        ("factories.py:exits", "the factory raised SystemExit: 7"),
    ],
)
def test_a_factory_that_fails_is_a_clear_error_naming_it(workspace: Path, model: str, expected: str) -> None:
    result = quantize(model)
    assert_refused(result, 1, repr(model), expected)
    assert (workspace / "MARKER").read_text().strip() == model.rpartition(":")[2]  # called once: it is a factory
    assert not (workspace / "out").exists()


@pytest.mark.parametrize(
    "model, code, expected",
    [
        ("missing_file.py:build", 1, "no such file missing_file.py"),
        ("broken_syntax.py:build", 1, "importing broken_syntax.py failed: SyntaxError: invalid syntax"),
        ("factories.py:no_such_factory", 1, "factories.py has no callable 'no_such_factory'"),
        ("factories:no_such_factory", 1, "factories has no callable 'no_such_factory'"),
        ("exits_on_import.py:build", 1, "importing exits_on_import.py failed: SystemExit: 3"),
        ("raises_on_import:build", 1, "importing module 'raises_on_import' failed: ValueError: no GPU here"),
        ("no_such_module:build", 1, "cannot import module 'no_such_module'"),
        ("some/dir:build", 2, "expected path/to/file.py:factory or package.module:factory"),
        ("factories.py:", 2, "expected path/to/file.py:factory or package.module:factory"),
    ],
)
def test_a_factory_that_cannot_be_loaded_is_a_clear_error(workspace: Path, model: str, code: int,
                                                         expected: str) -> None:
    assert_refused(quantize(model), code, repr(model), expected)


def test_a_module_subclass_is_a_factory(workspace: Path) -> None:
    result = quantize("factories.py:Net")
    assert result.exit_code == 0, result.output
    assert (workspace / "out" / "net.int8.qdq.onnx").is_file()


@pytest.mark.parametrize("command", ["quantize", "calibrate"])
def test_help_says_a_factory_model_runs_python_code(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "imports and runs that Python code" in text or "runs Python code" in text
    assert "torch.nn.Module" in text


def test_readme_says_a_factory_model_runs_python_code() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "MODEL imports and runs that Python code" in " ".join(readme.split())


def test_a_factory_file_imports_its_sibling_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As `python net.py` would: the file's folder is on sys.path while it is imported (and only then)."""
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "edgeact_test_blocks.py").write_text(textwrap.dedent("""
        import torch
        def body():
            return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh())
    """))
    (folder / "edgeact_test_net.py").write_text(
        "from edgeact_test_blocks import body\ndef build():\n    return body()\n")
    calib = tmp_path / "c.npz"
    np.savez(calib, x=np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32))
    before = list(sys.path)
    result = CliRunner().invoke(main, ["quantize", f"{folder / 'edgeact_test_net.py'}:build", "--calib", str(calib),
                                       "--format", "onnx-qdq", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert sys.path == before
    monkeypatch.chdir(folder)  # the module form finds modules in the current folder, as `python -m` does
    sys.modules.pop("edgeact_test_net", None)
    result = CliRunner().invoke(main, ["quantize", "edgeact_test_net:build", "--calib", str(calib),
                                       "--format", "onnx-qdq", "-o", str(tmp_path / "out2")])
    assert result.exit_code == 0, result.output
    assert sys.path == before


def test_quantize_target_takes_a_profile_file(tmp_path: Path) -> None:
    """The README says --target takes a profile .toml; the option used to accept only built-in names."""
    examples = Path(__file__).resolve().parents[1] / "examples" / "digits"
    profile = tmp_path / "board.toml"
    profile.write_text((Path(__file__).resolve().parents[1] / "edgeact" / "device_profiles" / "tflm.toml").read_text())
    args = ["quantize", str(examples / "mlp_tanh.onnx"), "--calib", str(examples / "mlp_tanh.calib.npz"),
            "--format", "tflite", "-o", str(tmp_path / "out"), "--target"]
    result = CliRunner().invoke(main, [*args, str(profile)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "mlp_tanh.int8.tflite").is_file()
    refused = CliRunner().invoke(main, [*args, "../board"])
    assert refused.exit_code == 2 and "ending in .toml" in refused.output
