"""Full verification of a .tflite file before any runtime or reader sees it.

The ``tflite`` bindings and the runtimes' Python wrappers trust every offset in the file: a few changed bytes make
TFLite Micro read outside the model and crash the process. :func:`verify_tflite` walks the whole flatbuffer with
the schema's layout (:mod:`edgeact.runtimes.tflite_layout`): every table, vtable, offset, vector, string and union
lies inside the buffer and is aligned, as flatbuffers' own C++ verifier demands. Then it checks what the schema
cannot say: indices of tensors, buffers, opcodes and subgraphs are in range, constant data has the size of its
tensor's shape and type, quantization vectors agree with each other and the shape. Pure Python and numpy (no
runtime, no schema package); per-table work only, so multi-MB models take milliseconds.
"""

from __future__ import annotations

import math
import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import NoReturn

import numpy as np

from edgeact.errors import ModelFormatError
from edgeact.runtimes.tflite_layout import OPTIONS_TABLES, TABLES, UNIONS

IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3
MAX_FLATBUFFER_BYTES = 2**31 - 1  # flatbuffers' limit; larger models keep their data in offset buffers after it
MAX_TENSOR_BYTES = 2**31 - 1  # TFLite Micro counts tensor bytes in an int
MAX_TABLES = 1_000_000  # flatbuffers' verifier default: bounds the work a hostile file can ask for
_CACHE_SIZE = 2  # models kept (by reference) as verified: callers load one model once per sample

# TensorType by code: name and bytes per element (None: variable size, not checked; below 1: sub-byte, packed or not)
_TYPES: tuple[tuple[str, float | None], ...] = (
    ("FLOAT32", 4), ("FLOAT16", 2), ("INT32", 4), ("UINT8", 1), ("INT64", 8), ("STRING", None), ("BOOL", 1),
    ("INT16", 2), ("COMPLEX64", 8), ("INT8", 1), ("FLOAT64", 8), ("COMPLEX128", 16), ("UINT64", 8),
    ("RESOURCE", None), ("VARIANT", None), ("UINT32", 4), ("UINT16", 2), ("INT4", 0.5), ("BFLOAT16", 2),
    ("INT2", 0.25), ("UINT4", 0.5), ("FLOAT8_E4M3FN", 1), ("FLOAT8_E5M2", 1),
)
# integer TensorType -> the range its zero points must lie in
_ZERO_POINTS: dict[str, tuple[int, int]] = {
    "INT8": (-(2**7), 2**7 - 1), "UINT8": (0, 2**8 - 1), "INT16": (-(2**15), 2**15 - 1), "UINT16": (0, 2**16 - 1),
    "INT32": (-(2**31), 2**31 - 1), "UINT32": (0, 2**32 - 1), "INT4": (-8, 7), "UINT4": (0, 15), "INT2": (-2, 1),
}
# options tables whose fields name subgraphs: (field id, is a vector)
_SUBGRAPH_FIELDS: dict[str, tuple[tuple[int, bool], ...]] = {
    "CallOptions": ((0, False),), "IfOptions": ((0, False), (1, False)), "WhileOptions": ((0, False), (1, False)),
    "CallOnceOptions": ((0, False),), "StablehloWhileOptions": ((0, False), (1, False)),
    "StablehloReduceOptions": ((1, False),), "StablehloReduceWindowOptions": ((5, False),),
    "StablehloSortOptions": ((2, False),), "StablehloScatterOptions": ((6, False),),
    "StableHLOCompositeOptions": ((1, False),), "StablehloCaseOptions": ((0, True),),
    "StablehloCustomCallOptions": ((4, True),),
}


@dataclass(frozen=True)
class _Field:
    name: str
    kind: str  # "scalar", "unknown", "str", "[str", "vector", "table", "[table", "union"
    size: int  # scalar width, vector element width, else 4 (an offset)
    ref: str = ""  # table or union name


def _field(name: str, spec: str) -> _Field:
    if spec == "-":
        return _Field(name, "unknown", 1)
    if spec.isdigit():
        return _Field(name, "scalar", int(spec))
    if spec in ("str", "[str"):
        return _Field(name, spec, 4)
    if spec.startswith("U:"):
        return _Field(name, "union", 4, spec[2:])
    if spec.startswith("[") and spec[1:].isdigit():
        return _Field(name, "vector", int(spec[1:]))
    if spec.startswith("["):
        return _Field(name, "[table", 4, spec[1:])
    return _Field(name, "table", 4, spec)


def _layout() -> dict[str, tuple[_Field, ...]]:
    layout = {name: tuple(_field(*item.split(":", 1)) for item in spec.split()) for name, spec in TABLES.items()}
    for name, spec in OPTIONS_TABLES.items():
        layout[name] = tuple(_field(f"field {i}", kind) for i, kind in enumerate(spec.split()))
    return layout


_LAYOUT = _layout()
_FIELD_IDS = {name: {f.name: i for i, f in enumerate(fields)} for name, fields in _LAYOUT.items()}
_MEMBERS = {name: spec.split() for name, spec in UNIONS.items()}
_UNKNOWN = _Field("unknown field", "unknown", 1)
_I32, _U32, _VTABLE = struct.Struct("<i"), struct.Struct("<I"), struct.Struct("<HH")
_VERIFIED: OrderedDict[bytes, None] = OrderedDict()
_VERIFIED_LOCK = threading.Lock()


class _Invalid(Exception):
    """A problem found in the walk (becomes a ModelFormatError naming the file)."""


def verify_tflite(payload: bytes, source: str) -> None:
    """Raise :class:`ModelFormatError` naming ``source`` unless ``payload`` is a well-formed .tflite model."""
    data = payload if isinstance(payload, bytes) else bytes(payload)
    with _VERIFIED_LOCK:
        if data in _VERIFIED:  # the same model is loaded once per sample by some callers
            return
    try:
        _verify(data)
    except _Invalid as exc:
        raise ModelFormatError(f"{source}: not a valid .tflite: {exc}") from None
    with _VERIFIED_LOCK:
        _VERIFIED[data] = None
        while len(_VERIFIED) > _CACHE_SIZE:
            _VERIFIED.popitem(last=False)


def _verify(data: bytes) -> None:
    if len(data) < 8:
        raise _Invalid(f"{len(data)} bytes is too short for a flatbuffer")
    if data[4:8] != IDENTIFIER:
        raise _Invalid(f"file identifier is {data[4:8]!r}, not {IDENTIFIER!r}")
    root = _U32.unpack_from(data, 0)[0]
    _Walk(data).table(root, "Model", ("model",))
    _check_model(data, _Table(data, root, "Model"))


def _where(path: tuple) -> str:
    """``(("model",), "subgraphs", 0)`` -> ``model.subgraphs[0]`` (paths are built as nested tuples, cheaply)."""
    parts: list[str] = []
    while len(path) == 3:
        path, name, index = path
        parts.append(f"{name}[{index}]" if index is not None else name)
    return ".".join([path[0], *reversed(parts)])


class _Walk:
    """The structural walk: everything the schema reaches lies inside the buffer."""

    def __init__(self, data: bytes) -> None:
        self.data, self.end, self.tables = data, min(len(data), MAX_FLATBUFFER_BYTES), 0

    def fail(self, path: tuple, problem: str) -> NoReturn:
        raise _Invalid(f"{_where(path)}: {problem}")

    def table(self, pos: int, name: str, path: tuple) -> None:
        """Verify the table at ``pos`` and everything it points to."""
        self.tables += 1
        if self.tables > MAX_TABLES:
            self.fail(path, f"more than {MAX_TABLES} tables")
        data, end = self.data, self.end
        if pos % 4 or pos + 4 > end:
            self.fail(path, f"table at byte {pos} is misaligned or outside the {end}-byte flatbuffer")
        vtable = pos - _I32.unpack_from(data, pos)[0]
        if vtable < 0 or vtable % 2 or vtable + 4 > end:
            self.fail(path, f"vtable at byte {vtable} is misaligned or outside the {end}-byte flatbuffer")
        vsize, osize = _VTABLE.unpack_from(data, vtable)
        if vsize < 4 or vsize % 2 or vtable + vsize > end:
            self.fail(path, f"vtable of {vsize} bytes at byte {vtable} is malformed or runs past the end")
        if osize < 4 or pos + osize > end:
            self.fail(path, f"table of {osize} bytes at byte {pos} is malformed or runs past the end")
        offsets = struct.unpack_from(f"<{(vsize - 4) // 2}H", data, vtable + 4)
        fields = _LAYOUT.get(name, ())
        for fid, voff in enumerate(offsets):
            if voff:
                field = fields[fid] if fid < len(fields) else _UNKNOWN
                if voff < 4 or voff + field.size > osize:
                    self.fail((path, field.name, None), f"lies outside its {osize}-byte table")
                if field.kind == "union":
                    kind = data[pos + offsets[fid - 1]] if fid > 0 and offsets[fid - 1] else 0
                    self.union(pos + voff, field, kind, (path, field.name, None))
                else:
                    self.field(pos + voff, field, (path, field.name, None))

    def field(self, at: int, field: _Field, path: tuple) -> None:
        if field.kind == "unknown":
            return
        if field.kind == "scalar":
            if at % field.size:
                self.fail(path, f"{field.size}-byte scalar at byte {at} is misaligned")
            return
        target = self.offset(at, path)
        if field.kind == "str":
            self.string(target, path)
        elif field.kind == "vector":
            self.vector(target, field.size, path)
        elif field.kind == "table":
            self.table(target, field.ref, path)
        else:
            self.vector_of_offsets(target, field, path)

    def offset(self, at: int, path: tuple) -> int:
        if at % 4:
            self.fail(path, f"offset at byte {at} is misaligned")
        target = at + _U32.unpack_from(self.data, at)[0]
        if target >= self.end:
            self.fail(path, f"points to byte {target}, past the end of the {self.end}-byte flatbuffer")
        return target

    def union(self, at: int, field: _Field, kind: int, path: tuple) -> None:
        members = _MEMBERS[field.ref]
        member = members[kind] if 0 < kind < len(members) else ""  # unknown or NONE: checked as a bare table
        self.table(self.offset(at, path), member, path)

    def vector(self, pos: int, size: int, path: tuple) -> tuple[int, int]:
        """Start and length of the vector at ``pos`` with ``size``-byte elements."""
        if pos % 4 or pos + 4 > self.end:
            self.fail(path, f"vector at byte {pos} is misaligned or outside the flatbuffer")
        length = _U32.unpack_from(self.data, pos)[0]
        if pos + 4 + length * size > self.end:
            self.fail(path, f"vector of {length} elements at byte {pos} runs past the end of the flatbuffer")
        return pos + 4, length

    def string(self, pos: int, path: tuple) -> None:
        start, length = self.vector(pos, 1, path)
        if start + length >= self.end or self.data[start + length] != 0:
            self.fail(path, f"string at byte {pos} has no terminating zero inside the flatbuffer")
        try:
            self.data[start : start + length].decode()
        except UnicodeDecodeError:
            self.fail(path, f"string at byte {pos} is not UTF-8")

    def vector_of_offsets(self, pos: int, field: _Field, path: tuple) -> None:
        start, length = self.vector(pos, 4, path)
        if not length:
            return
        targets = start + 4 * np.arange(length, dtype=np.int64) + np.frombuffer(self.data, "<u4", length, start)
        parent, name, _ = path
        outside = np.flatnonzero(targets >= self.end)
        if outside.size:
            self.fail((parent, name, int(outside[0])), f"points to byte {int(targets[outside[0]])}, past the end "
                      f"of the {self.end}-byte flatbuffer")
        for index, target in enumerate(targets.tolist()):
            if field.kind == "[str":
                self.string(target, (parent, name, index))
            else:
                self.table(target, field.ref, (parent, name, index))


class _Table:
    """Field access on a table that passed the walk."""

    __slots__ = ("data", "pos", "name", "vtable", "vsize")

    def __init__(self, data: bytes, pos: int, name: str) -> None:
        self.data, self.pos, self.name = data, pos, name
        self.vtable = pos - _I32.unpack_from(data, pos)[0]
        self.vsize = _VTABLE.unpack_from(data, self.vtable)[0]

    def _at(self, fid: int) -> int | None:
        if 4 + 2 * fid + 2 > self.vsize:
            return None
        voff = struct.unpack_from("<H", self.data, self.vtable + 4 + 2 * fid)[0]
        return self.pos + voff if voff else None

    def _target(self, field: str) -> int | None:
        at = self._at(_FIELD_IDS[self.name][field])
        return None if at is None else at + _U32.unpack_from(self.data, at)[0]

    def scalar(self, field: str, fmt: str, default: int = 0) -> int:
        return self.scalar_at(_FIELD_IDS[self.name][field], fmt, default)

    def scalar_at(self, fid: int, fmt: str, default: int = 0) -> int:
        at = self._at(fid)
        return default if at is None else struct.unpack_from(fmt, self.data, at)[0]

    def array(self, field: str, dtype: str) -> np.ndarray:
        return self.array_at(_FIELD_IDS[self.name][field], dtype)

    def array_at(self, fid: int, dtype: str) -> np.ndarray:
        at = self._at(fid)
        if at is None:
            return np.zeros(0, dtype)
        pos = at + _U32.unpack_from(self.data, at)[0]
        return np.frombuffer(self.data, dtype, _U32.unpack_from(self.data, pos)[0], pos + 4)

    def table(self, field: str) -> _Table | None:
        pos = self._target(field)
        ref = _LAYOUT[self.name][_FIELD_IDS[self.name][field]].ref
        return None if pos is None else _Table(self.data, pos, ref)

    def tables(self, field: str) -> list[_Table]:
        pos = self._target(field)
        if pos is None:
            return []
        ref = _LAYOUT[self.name][_FIELD_IDS[self.name][field]].ref
        offsets = np.frombuffer(self.data, "<u4", _U32.unpack_from(self.data, pos)[0], pos + 4)
        starts = pos + 4 + 4 * np.arange(offsets.size, dtype=np.int64) + offsets
        return [_Table(self.data, p, ref) for p in starts.tolist()]

    def union(self, field: str) -> _Table | None:
        """The union value as its member table (None if absent or of an unknown type)."""
        fid = _FIELD_IDS[self.name][field]
        kind, members = self.scalar_at(fid - 1, "<B"), _MEMBERS[_LAYOUT[self.name][fid].ref]
        at = self._at(fid)
        if at is None or not 0 < kind < len(members):
            return None
        return _Table(self.data, at + _U32.unpack_from(self.data, at)[0], members[kind])


def _indices(values: np.ndarray, low: int, count: int, what: str, names: str) -> None:
    """Every value in [low, count): else ``<what> <i> names <names> <v> of <count>``."""
    bad = np.flatnonzero((values < low) | (values >= count))
    if bad.size:
        raise _Invalid(f"{what} {int(bad[0])} names {names} {int(values[bad[0]])} of {count}")


def _index(value: int, count: int, what: str, names: str) -> None:
    if not 0 <= value < count:
        raise _Invalid(f"{what} names {names} {value} of {count}")


def _check_model(data: bytes, model: _Table) -> None:
    version = model.scalar("version", "<I")
    if version != SCHEMA_VERSION:
        raise _Invalid(f"schema version {version}, not {SCHEMA_VERSION}")
    sizes = [_buffer_size(data, i, b) for i, b in enumerate(model.tables("buffers"))]
    for index, code in enumerate(model.tables("operator_codes")):
        builtin = max(code.scalar("deprecated_builtin_code", "<b"), code.scalar("builtin_code", "<i"))
        if builtin < 0:
            raise _Invalid(f"operator code {index} is the negative builtin {builtin}")
    subgraphs = model.tables("subgraphs")
    if not subgraphs:
        raise _Invalid("no subgraph")
    opcodes = len(model.tables("operator_codes"))
    tensors = [_check_subgraph(data, s, g, sizes, opcodes, len(subgraphs)) for s, g in enumerate(subgraphs)]
    _indices(model.array("metadata_buffer", "<i4"), 0, len(sizes), "metadata_buffer entry", "buffer")
    for index, entry in enumerate(model.tables("metadata")):
        _index(entry.scalar("buffer", "<I"), len(sizes), f"metadata {index}", "buffer")
    for index, signature in enumerate(model.tables("signature_defs")):
        graph = signature.scalar("subgraph_index", "<I")
        _index(graph, len(subgraphs), f"signature {index}", "subgraph")
        for side in ("inputs", "outputs"):
            names = np.array([m.scalar("tensor_index", "<I") for m in signature.tables(side)], dtype=np.int64)
            _indices(names, 0, tensors[graph], f"signature {index} {side[:-1]}", "tensor")


def _buffer_size(data: bytes, index: int, buffer: _Table) -> int:
    """Bytes of data the buffer holds, inline or at an offset in the file."""
    inline = buffer.array("data", "u1").size
    offset, size = buffer.scalar("offset", "<Q"), buffer.scalar("size", "<Q")
    if offset <= 1:  # 0: none; 1: a placeholder the converter writes before it places the data
        return inline
    if inline:
        raise _Invalid(f"buffer {index} has both inline data and an offset")
    if offset + size > len(data):
        raise _Invalid(f"buffer {index} reaches bytes {offset}..{offset + size}, past the end of the "
                       f"{len(data)}-byte file")
    return size


def _check_subgraph(data: bytes, s: int, graph: _Table, sizes: list[int], opcodes: int, subgraphs: int) -> int:
    """Check subgraph ``s``; its tensor count."""
    tensors = graph.tables("tensors")
    for t, tensor in enumerate(tensors):
        _check_tensor(f"subgraph {s} tensor {t}", tensor, sizes)
    count = len(tensors)
    for side in ("inputs", "outputs"):
        _indices(graph.array(side, "<i4"), 0, count, f"subgraph {s} {side[:-1]}", "tensor")
    for o, op in enumerate(graph.tables("operators")):
        where = f"subgraph {s} operator {o}"
        _index(op.scalar("opcode_index", "<I"), opcodes, where, "operator code")
        _indices(op.array("inputs", "<i4"), -1, count, f"{where} input", "tensor")
        outputs = op.array("outputs", "<i4")
        if not outputs.size:
            raise _Invalid(f"{where} has no output")
        _indices(outputs, 0, count, f"{where} output", "tensor")
        _indices(op.array("intermediates", "<i4"), 0, count, f"{where} intermediate", "tensor")
        offset, size = op.scalar("large_custom_options_offset", "<Q"), op.scalar("large_custom_options_size", "<Q")
        if offset > 1 and offset + size > len(data):
            raise _Invalid(f"{where} has custom options past the end of the {len(data)}-byte file")
        for field in ("builtin_options", "builtin_options2"):
            _check_called_subgraphs(where, op.union(field), subgraphs)
    return count


def _check_called_subgraphs(where: str, options: _Table | None, subgraphs: int) -> None:
    for fid, vector in _SUBGRAPH_FIELDS.get(options.name, ()) if options is not None else ():
        values = options.array_at(fid, "<i4") if vector else np.array([options.scalar_at(fid, "<i")])
        _indices(values, 0, subgraphs, f"{where} ({options.name}) subgraph reference", "subgraph")


def _check_tensor(where: str, tensor: _Table, sizes: list[int]) -> None:
    buffer = tensor.scalar("buffer", "<I")
    _index(buffer, len(sizes), where, "buffer")
    kind = tensor.scalar("type", "<b")
    if not 0 <= kind < len(_TYPES):
        raise _Invalid(f"{where} has unknown type {kind}")
    (name, itemsize), shape = _TYPES[kind], tensor.array("shape", "<i4").tolist()
    if any(d < 0 for d in shape):
        raise _Invalid(f"{where} has shape {shape} with a negative dimension")
    stored, count = sizes[buffer], math.prod(shape)
    if count * (itemsize or 1) > MAX_TENSOR_BYTES:
        raise _Invalid(f"{where} of shape {shape} and type {name} is larger than {MAX_TENSOR_BYTES} bytes")
    if stored and itemsize is not None and tensor.table("sparsity") is None:
        allowed = {math.ceil(count * itemsize), count} if itemsize < 1 else {count * int(itemsize)}
        if stored not in allowed:
            raise _Invalid(f"{where} of shape {shape} and type {name} needs {min(allowed)} bytes; its buffer "
                           f"{buffer} holds {stored}")
    quant = tensor.table("quantization")
    if quant is not None:
        _check_quantization(where, quant, shape, name)


def _check_quantization(where: str, quant: _Table, shape: list[int], kind: str) -> None:
    scale, zero_point = quant.array("scale", "<f4"), quant.array("zero_point", "<i8")
    minima, maxima = quant.array("min", "<f4"), quant.array("max", "<f4")
    if scale.size and zero_point.size and scale.size != zero_point.size:
        raise _Invalid(f"{where} has {scale.size} scales and {zero_point.size} zero points")
    low, high = _ZERO_POINTS.get(kind, (-(2**63), 2**63 - 1))
    outside = zero_point[(zero_point < low) | (zero_point > high)]
    if outside.size:
        raise _Invalid(f"{where} of type {kind} has zero point {int(outside[0])} outside [{low}, {high}]")
    if minima.size and maxima.size and minima.size != maxima.size:
        raise _Invalid(f"{where} has {minima.size} minima and {maxima.size} maxima")
    if not np.isfinite(scale).all():
        raise _Invalid(f"{where} has a non-finite quantization scale")
    if scale.size > 1:
        axis = quant.scalar("quantized_dimension", "<i")
        if not 0 <= axis < len(shape) or shape[axis] != scale.size:
            raise _Invalid(f"{where} of shape {shape} has {scale.size} scales along dimension {axis}")
