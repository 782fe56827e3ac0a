"""PyTorch in, ONNX bytes out: nn.Module, ``file.py:factory`` / ``package.module:factory``, TorchScript ``.pt``,
ExportedProgram ``.pt2``. The only module besides the graph importers and exporters that imports torch.

Export uses torch.onnx: the TorchScript exporter (opset 17, dynamic batch) first — on torch 2.13 it exports the
example models (LSTM as one ONNX LSTM, GELU in its erf form) exactly — and the dynamo exporter (opset 18) for
ExportedPrograms or when the TorchScript exporter fails.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import io
import sys
import sysconfig
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from edgeact.errors import ModelFormatError, UsageError

TORCH_HINT = "PyTorch models need torch: pip install 'edgeact[torch]'"
TORCH_SUFFIXES = (".pt", ".pt2", ".pth")


@dataclass(frozen=True)
class TorchExport:
    onnx: bytes
    name: str  # stem for output files
    kind: str  # module | factory | torchscript | exported_program
    exporter: str  # torchscript | dynamo


def is_torch_source(model: Any) -> bool:
    """A PyTorch model (an nn.Module, a .pt/.pt2 file, or a ``path.py:factory`` / ``module:factory`` reference)."""
    if isinstance(model, (str, Path)):
        text = str(model)
        return text.endswith(TORCH_SUFFIXES) or (":" in text and not text.endswith(".onnx") and not Path(text).exists())
    return hasattr(model, "forward") and hasattr(model, "parameters")


def _torch():  # type: ignore[no-untyped-def]
    try:
        import torch
    except ImportError:
        raise UsageError(TORCH_HINT) from None
    return torch


def _factory(reference: str) -> Any:
    """Import ``file.py:factory`` / ``package.module:factory`` and call it: this runs the user's Python code, as the
    CLI help says. A stdlib or builtin callable, or anything but a function or an nn.Module class, is refused
    before it is called; what the factory raises or returns other than an nn.Module is a clear error."""
    target, _, function = reference.rpartition(":")
    if not target or not function.isidentifier():
        raise UsageError(f"{reference!r}: expected path/to/file.py:factory or package.module:factory")
    module = _file_module(reference, Path(target)) if target.endswith(".py") else _package_module(reference, target)
    try:
        factory = getattr(module, function, None)
    except Exception as exc:
        raise ModelFormatError(f"{reference!r}: reading {function!r} from {target} raised {_describe(exc)}") from exc
    if factory is None:
        raise ModelFormatError(f"{reference!r}: {target} has no callable {function!r}")
    _check_factory(reference, factory, module)
    try:
        result = factory()
    except (Exception, SystemExit) as exc:
        raise ModelFormatError(f"{reference!r}: the factory raised {_describe(exc)}") from exc
    if not isinstance(result, _torch().nn.Module):
        raise ModelFormatError(
            f"{reference!r}: the factory returned a {type(result).__module__}.{type(result).__qualname__}, "
            "not a torch.nn.Module"
        )
    return result


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _file_module(reference: str, path: Path) -> ModuleType:
    """Execute the user's ``file.py`` (never one of the standard library's) as a module."""
    if not path.is_file():
        raise ModelFormatError(f"{reference!r}: no such file {path}")
    if _stdlib_file(str(path)):
        raise ModelFormatError(f"{reference!r}: {path} is part of Python's standard library, not a model factory")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ModelFormatError(f"{reference!r}: {path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        with _on_sys_path(path.resolve().parent):  # as `python file.py`: its sibling modules import
            spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        raise ModelFormatError(f"{reference!r}: importing {path} failed: {_describe(exc)}") from exc
    return module


@contextlib.contextmanager
def _on_sys_path(folder: Path) -> Iterator[None]:
    """``folder`` first on ``sys.path`` for the duration of an import."""
    entry = str(folder)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        sys.path.remove(entry)


def _package_module(reference: str, target: str) -> ModuleType:
    """Import ``package.module`` (never a standard library or builtin module: refused before the import)."""
    if not all(part.isidentifier() for part in target.split(".")):
        raise UsageError(f"{reference!r}: expected path/to/file.py:factory or package.module:factory")
    if _stdlib_name(target):
        raise ModelFormatError(f"{reference!r}: {target} is a Python standard library module, not a model factory")
    try:
        with _on_sys_path(Path.cwd()):  # as `python -m`: modules in the current folder import
            module = importlib.import_module(target)
    except ImportError as exc:
        raise ModelFormatError(f"{reference!r}: cannot import module {target!r} ({exc})") from exc
    except (Exception, SystemExit) as exc:
        raise ModelFormatError(f"{reference!r}: importing module {target!r} failed: {_describe(exc)}") from exc
    if _stdlib_file(getattr(module, "__file__", None) or ""):
        raise ModelFormatError(f"{reference!r}: {target} is a Python standard library module, not a model factory")
    return module


def _check_factory(reference: str, factory: Any, module: ModuleType) -> None:
    """Refuse, before calling it, a callable from the stdlib/builtins or one that is not a function or an
    nn.Module subclass."""
    if _from_stdlib(factory, module):
        raise ModelFormatError(
            f"{reference!r}: {_qualified(factory)} comes from Python's standard library or builtins, not a model "
            "factory; refused without calling it"
        )
    if inspect.isclass(factory):
        if not issubclass(factory, _torch().nn.Module):
            raise ModelFormatError(f"{reference!r}: class {_qualified(factory)} is not a torch.nn.Module subclass")
    elif not inspect.isfunction(factory):
        what = "not callable" if not callable(factory) else "not a Python function"
        raise ModelFormatError(
            f"{reference!r}: an object of type {type(factory).__name__} ({what}); a model factory is a function "
            "returning an nn.Module, or an nn.Module subclass"
        )


def _qualified(obj: Any) -> str:
    return f"{getattr(obj, '__module__', None) or '?'}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def _from_stdlib(obj: Any, module: ModuleType) -> bool:
    """Whether ``obj`` was defined in the standard library or builtins (by its module's name and file)."""
    name = getattr(obj, "__module__", None)
    if not isinstance(name, str):
        return False  # no home module: the function/class check refuses it unless it is one
    own = name == module.__name__  # defined in the module the user named (its name may shadow a stdlib name)
    if not own and _stdlib_name(name):
        return True
    files = [getattr(module if own else sys.modules.get(name), "__file__", None)]
    if inspect.isfunction(obj):
        files.append(obj.__code__.co_filename)
    return any(_stdlib_file(file) for file in files if file)


def _stdlib_name(name: str) -> bool:
    top = name.partition(".")[0]
    return top in sys.stdlib_module_names or top in sys.builtin_module_names


def _stdlib_file(file: str) -> bool:
    """Whether ``file`` is in Python's standard library folder (installed packages beside it do not count)."""
    if file.startswith("<frozen "):
        return True
    if not file or file.startswith("<"):
        return False
    path = Path(file).resolve()
    if {"site-packages", "dist-packages"} & set(path.parts):
        return False
    paths = sysconfig.get_paths()
    roots = {Path(paths[key]).resolve() for key in ("stdlib", "platstdlib") if key in paths}
    return any(path.is_relative_to(root) for root in roots)


def _load(model: Any) -> tuple[Any, str, str]:
    """(module or ExportedProgram, kind, name)."""
    torch = _torch()
    if not isinstance(model, (str, Path)):
        return model, "module", type(model).__name__.lower()
    text = str(model)
    if text.endswith(".pt2"):
        try:
            return torch.export.load(text), "exported_program", Path(text).stem
        except Exception as exc:
            raise ModelFormatError(f"{text}: not a torch.export ExportedProgram ({exc})") from exc
    if text.endswith((".pt", ".pth")):
        try:
            return torch.jit.load(text, map_location="cpu"), "torchscript", Path(text).stem
        except Exception as exc:
            raise ModelFormatError(f"{text}: not a TorchScript module ({type(exc).__name__}: {exc})") from exc
    module = _factory(text)
    return module, "factory", type(module).__name__.lower()


def _check_forward(module: Any, example: tuple, names: list[str]) -> list[str]:
    """Run forward once (a clear error if it raises); returns names for its outputs."""
    torch = _torch()
    try:
        with torch.no_grad():
            result = module(*example)
    except Exception as exc:
        shapes = ", ".join(f"{n}={list(t.shape)}" for n, t in zip(names, example, strict=True))
        raise ModelFormatError(
            f"the module's forward raised {type(exc).__name__} on inputs {shapes}: {str(exc).splitlines()[0]}"
        ) from exc
    count = len(result) if isinstance(result, (tuple, list)) else 1
    return ["output"] if count == 1 else [f"output_{i}" for i in range(count)]


def _onnx_bytes(module: Any, example: tuple, names: list[str], outputs: list[str] | None, dynamo: bool) -> bytes:
    torch = _torch()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            program = torch.onnx.export(module, example, dynamo=True, opset_version=18, input_names=names,
                                        output_names=outputs, verbose=False, optimize=True)
            return program.model_proto.SerializeToString()
        torch.onnx.export(module, example, buffer, dynamo=False, opset_version=17, input_names=names,
                          output_names=outputs, dynamic_axes={name: {0: "N"} for name in names + (outputs or [])})
    return buffer.getvalue()


def export(model: Any, example_inputs: dict[str, np.ndarray]) -> TorchExport:
    """Export a PyTorch model to ONNX with ``example_inputs`` (names in forward's argument order)."""
    torch = _torch()
    loaded, kind, name = _load(model)
    names = list(example_inputs)
    example = tuple(torch.from_numpy(np.ascontiguousarray(value)) for value in example_inputs.values())
    if kind == "exported_program":
        return TorchExport(_onnx_bytes(loaded, example, names, None, dynamo=True), name, kind, "dynamo")
    if hasattr(loaded, "eval"):
        loaded.eval()
    outputs = _check_forward(loaded, example, names)
    try:
        return TorchExport(_onnx_bytes(loaded, example, names, outputs, dynamo=False), name, kind, "torchscript")
    except Exception as first:
        if kind == "torchscript":
            raise ModelFormatError(f"torch.onnx could not export the TorchScript module: {first}") from first
        try:
            return TorchExport(_onnx_bytes(loaded, example, names, outputs, dynamo=True), name, kind, "dynamo")
        except Exception as second:
            raise ModelFormatError(
                f"torch.onnx could not export the module (TorchScript exporter: {first}; dynamo exporter: {second})"
            ) from second
