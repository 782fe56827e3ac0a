"""PyTorch in, ONNX bytes out: nn.Module, ``file.py:factory`` / ``package.module:factory``, TorchScript ``.pt``,
ExportedProgram ``.pt2``. The only module besides the graph importers and exporters that imports torch.

Export uses torch.onnx: the TorchScript exporter (opset 17, dynamic batch) first — on torch 2.13 it exports the
example models (LSTM as one ONNX LSTM, GELU in its erf form) exactly — and the dynamo exporter (opset 18) for
ExportedPrograms or when the TorchScript exporter fails.
"""

from __future__ import annotations

import inspect
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeact.errors import ModelFormatError, UsageError
from edgeact.user_code import describe, qualified, user_attribute

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
    factory, _ = user_attribute(reference, "factory")
    _check_factory(reference, factory)
    try:
        result = factory()
    except (Exception, SystemExit) as exc:
        raise ModelFormatError(f"{reference!r}: the factory raised {describe(exc)}") from exc
    if not isinstance(result, _torch().nn.Module):
        raise ModelFormatError(
            f"{reference!r}: the factory returned a {type(result).__module__}.{type(result).__qualname__}, "
            "not a torch.nn.Module"
        )
    return result


def _check_factory(reference: str, factory: Any) -> None:
    """Refuse, before calling it, a callable that is not a function or an nn.Module subclass."""
    if inspect.isclass(factory):
        if not issubclass(factory, _torch().nn.Module):
            raise ModelFormatError(f"{reference!r}: class {qualified(factory)} is not a torch.nn.Module subclass")
    elif not inspect.isfunction(factory):
        what = "not callable" if not callable(factory) else "not a Python function"
        raise ModelFormatError(
            f"{reference!r}: an object of type {type(factory).__name__} ({what}); a model factory is a function "
            "returning an nn.Module, or an nn.Module subclass"
        )


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
