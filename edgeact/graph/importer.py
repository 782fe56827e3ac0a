"""Read an ONNX file safely: parse, external data confined to the model's folder, opset, checker, shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
import onnx_ir as ir
from google.protobuf.message import DecodeError
from onnx import external_data_helper, inliner, version_converter

from edgeact.errors import ModelFormatError

SUPPORTED_OPSETS = range(13, 22)  # default-domain opsets 13..21
UPGRADABLE_OPSETS = range(7, 13)  # older models are upgraded to SUPPORTED_OPSETS.start by onnx.version_converter
UPGRADED_FROM = "edgeact.upgraded_from_opset"  # key in ir.Model.meta: the opset a model was upgraded from
IR_VERSION_OUT = 10  # function overloads need IR 10; onnxruntime 1.31 reads up to 13


def _parse(path: Path) -> onnx.ModelProto:
    if path.is_dir():
        raise ModelFormatError(f"{path}: is a folder, expected a model file (.onnx)")
    if not path.is_file():
        raise ModelFormatError(f"{path}: no such model file")
    try:
        model = onnx.load_model(str(path), format="protobuf", load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, OSError) as exc:
        raise ModelFormatError(f"{path}: not an ONNX model (protobuf parse failed: {exc})") from exc
    return model


def _load_external_data(model: onnx.ModelProto, path: Path) -> None:
    folder = path.parent.resolve()
    for tensor in external_data_helper._get_all_tensors(model):
        if not external_data_helper.uses_external_data(tensor):
            continue
        info = external_data_helper.ExternalDataInfo(tensor)
        location = (folder / info.location).resolve()
        if not location.is_relative_to(folder):
            raise ModelFormatError(
                f"{path}: tensor {tensor.name!r} stores its data at {info.location!r}, outside the model's folder "
                f"{folder}; refusing to read it"
            )
        if not location.is_file():
            raise ModelFormatError(f"{path}: tensor {tensor.name!r}: external data file {location} is missing")
    try:
        external_data_helper.load_external_data_for_model(model, str(folder))
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"{path}: cannot read external data: {exc}") from exc


def default_opset(model: onnx.ModelProto) -> int:
    """The model's default-domain (ai.onnx) opset."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise ModelFormatError("model imports no ai.onnx opset")


def load_onnx(path: str | Path) -> ir.Model:
    """Parse, check and shape-infer ``path``; the result is an onnx-ir model (errors name the file)."""
    path = Path(path)
    model = _parse(path)
    _load_external_data(model, path)
    return _checked(model, path)


def load_onnx_bytes(payload: bytes, name: str = "<model bytes>") -> ir.Model:
    """As :func:`load_onnx` for a serialised model held in memory (no external data)."""
    try:
        model = onnx.load_model_from_string(payload)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ModelFormatError(f"{name}: not an ONNX model (protobuf parse failed: {exc})") from exc
    return _checked(model, Path(name))


def _invalid_text(message: Any, where: str = "model") -> str | None:
    """Where a text field of ``message`` holds bytes that are not UTF-8 (protobuf then returns ``bytes``)."""
    for field, value in message.ListFields():
        if field.type not in (field.TYPE_STRING, field.TYPE_MESSAGE):
            continue
        repeated = not isinstance(value, (str, bytes)) and not hasattr(value, "ListFields")
        items = list(value) if repeated else [value]
        if field.type == field.TYPE_STRING:
            for index, item in enumerate(items):
                if isinstance(item, bytes):
                    return f"{where}.{field.name}{f'[{index}]' if repeated else ''} = {item[:40]!r}"
            continue
        for index, item in enumerate(items):
            name = getattr(item, "name", "") if isinstance(getattr(item, "name", ""), str) else ""
            label = f"{where}.{field.name}" + (f"[{name!r}]" if name else f"[{index}]" if repeated else "")
            if found := _invalid_text(item, label):
                return found
    return None


def _checked(model: onnx.ModelProto, path: Path) -> ir.Model:
    if not model.HasField("graph") or not model.graph.node:
        raise ModelFormatError(f"{path}: not an ONNX model (no graph nodes; truncated or a different format)")
    if found := _invalid_text(model):
        raise ModelFormatError(f"{path}: not a valid ONNX model: a name or text is not UTF-8 ({found})")
    if not model.graph.output:
        raise ModelFormatError(f"{path}: the graph declares no outputs; nothing to quantize or compare")
    initializers = {tensor.name for tensor in model.graph.initializer}
    if not [value for value in model.graph.input if value.name not in initializers]:
        raise ModelFormatError(f"{path}: the graph declares no inputs (only constants); nothing to calibrate")
    _check(model, path)
    opset = default_opset(model)
    if opset in UPGRADABLE_OPSETS:
        model = _upgraded(model, opset, path)
    elif opset not in SUPPORTED_OPSETS:
        raise ModelFormatError(_opset_message(opset, path))
    try:
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except onnx.shape_inference.InferenceError as exc:
        raise ModelFormatError(f"{path}: shape inference failed: {exc}") from exc
    loaded = ir.from_proto(model)
    if opset in UPGRADABLE_OPSETS:
        loaded.meta[UPGRADED_FROM] = opset
    return loaded


def _check(model: onnx.ModelProto, path: Path) -> None:
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise ModelFormatError(f"{path}: onnx.checker rejects the model: {first_line}") from exc


def _opset_message(opset: int, path: Path) -> str:
    low, high = UPGRADABLE_OPSETS.start, SUPPORTED_OPSETS.stop - 1
    if opset > high:
        return (f"{path}: ai.onnx opset {opset} is newer than edgeact knows (it reads opsets {low}-{high}); "
                f"re-export the model at opset {high} or lower (torch.onnx.export(..., opset_version={high}), "
                f"tf2onnx --opset {high}) or convert it with onnx.version_converter.convert_version(model, {high})")
    return (f"{path}: ai.onnx opset {opset} is too old for edgeact (it reads opsets {low}-{high}, upgrading "
            f"{low}-{UPGRADABLE_OPSETS.stop - 1} to {SUPPORTED_OPSETS.start}); re-export the model at a newer opset")


def _upgraded(model: onnx.ModelProto, opset: int, path: Path) -> onnx.ModelProto:
    """``model`` converted to the oldest opset edgeact reads, checked again (model-local functions are inlined
    first: the converter drops them)."""
    if model.functions:
        model = inliner.inline_local_functions(model)
    try:
        upgraded = version_converter.convert_version(model, SUPPORTED_OPSETS.start)
    except (RuntimeError, ValueError, IndexError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFormatError(
            f"{path}: opset {opset} could not be upgraded to {SUPPORTED_OPSETS.start} by onnx.version_converter "
            f"({first_line}); re-export the model at opset {SUPPORTED_OPSETS.start} or newer"
        ) from exc
    _check(upgraded, path)
    return upgraded


def model_bytes(model: ir.Model) -> bytes:
    """Serialise an onnx-ir model (IR version raised to what local-function overloads need)."""
    proto = ir.to_proto(model)
    proto.ir_version = max(IR_VERSION_OUT, min(proto.ir_version, IR_VERSION_OUT))
    return proto.SerializeToString(deterministic=True)


def check_bytes(payload: bytes, what: str) -> None:
    """onnx.checker on serialised bytes; a failure is a bug in edgeact's output, named by ``what``."""
    try:
        onnx.checker.check_model(onnx.load_model_from_string(payload))
    except onnx.checker.ValidationError as exc:
        raise ModelFormatError(f"{what}: edgeact produced a model onnx.checker rejects: {exc}") from exc
