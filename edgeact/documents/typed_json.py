"""Typed JSON documents: dataclasses whose fields say what their JSON holds. One class gives the reader
(:func:`from_json`, errors naming the field: ``outputs.y.sqnr_db is a string, expected a number``), the writer
(:func:`to_json`) and the JSON Schema (:func:`json_schema`, the files under docs/schema/), so the three cannot drift.

Field types: ``float`` (any JSON number, Python's json also reads NaN and Infinity, unless :class:`Between` bounds
it), ``int``, ``str``, ``bool``, a union of those, ``list[X]``, ``dict[str, X]``, another document class, a union of
document classes (the first that reads), ``Any``; ``X | None`` is JSON null. Field options (:func:`spec`):
``optional`` (the key is left out when None), ``since`` (required from that schema version on: the reader fills in
the default for older documents), ``rest`` (a ``dict[str, X]`` holding every key the class does not name),
``const`` (the value this version writes; the schema says it, the reader takes any). The reader ignores keys it
does not know (the schema allows none): a document from a newer edgeact or annotated by hand still reads.
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from functools import cache
from typing import Any, TypeVar, Union, get_args, get_origin

from edgeact.errors import DocumentError

T = TypeVar("T")
DIALECT = "https://json-schema.org/draft/2020-12/schema"
_LEAVES = {float: ("a number", "number"), int: ("an integer", "integer"), str: ("a string", "string"),
           bool: ("true or false", "boolean")}


@dataclass(frozen=True)
class Between:
    """A number in [lo, hi], finite unless ``finite`` is False (NaN never)."""

    lo: float
    hi: float = math.inf
    finite: bool = True


def spec(doc: str = "", *, between: Between | None = None, optional: bool = False, since: int | None = None,
         rest: bool = False, const: Any = None, default: Any = MISSING, default_factory: Any = MISSING) -> Any:
    """A document field: its description and JSON rules (see the module docstring)."""
    if default is MISSING and default_factory is MISSING and (optional or since is not None or const is not None):
        default = const  # None for a field that may be absent; what this version writes for a constant
    if rest and default_factory is MISSING:
        default_factory = dict
    metadata = {"doc": doc, "between": between, "optional": optional, "since": since, "rest": rest, "const": const}
    return field(default=default, default_factory=default_factory, metadata=metadata)


def json_kind(value: Any) -> str:
    """What a parsed JSON value is, for messages."""
    if value is None:
        return "null"
    for kind, name in ((bool, "a boolean"), ((int, float), "a number"), (str, "a string"), (list, "a list"),
                       (dict, "an object")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def number(value: Any) -> float | None:
    """``value`` as a float when it is a JSON number a float can hold (not a boolean, not 10**400)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


# ---- reading ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Reading:
    version: int | None  # the document's schema_version (fields ``since`` a later one may be absent)
    ranges: bool = True  # check :class:`Between` bounds


def from_json(cls: type[T], data: Any) -> T:
    """``data`` (parsed JSON) as a ``cls``; :class:`DocumentError` names the first field that breaks the schema."""
    version = data.get("schema_version") if isinstance(data, dict) else None
    return _read(cls, data, "", {}, _Reading(version if type(version) is int else None))


def build(cls: type[T], data: Any) -> T:
    """A ``cls`` from values edgeact measured itself (dicts, lists): the types are checked, the numbers are what
    they are (a NaN SQNR of a device that returned NaN stays one; a reader of the written file refuses it)."""
    return _read(cls, data, "", {}, _Reading(None, ranges=False))


def _fail(where: str, text: str) -> DocumentError:
    return DocumentError(f"{where or 'the top level'} {text}")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _options(tp: Any) -> tuple[tuple[Any, ...], bool]:
    """The alternatives of a type and whether it admits None."""
    if get_origin(tp) in (Union, types.UnionType):
        args = get_args(tp)
        return tuple(a for a in args if a is not type(None)), type(None) in args
    return (tp,), False


def _read(tp: Any, value: Any, where: str, meta: Any, reading: _Reading) -> Any:
    options, nullable = _options(tp)
    if value is None and nullable:
        return None
    if all(option in _LEAVES for option in options):
        return _read_leaf(options, value, where, meta.get("between") if reading.ranges else None)
    if len(options) > 1:
        return _read_union(options, value, where, reading)
    tp = options[0]
    if tp is Any:
        return value
    origin, args = get_origin(tp), get_args(tp)
    if origin is list:
        if not isinstance(value, list):
            raise _fail(where, f"is {json_kind(value)}, expected a list")
        return [_read(args[0], item, f"{where}[{i}]", {}, reading) for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(where, f"is {json_kind(value)}, expected an object")
        return {key: _read(args[1], item, _join(where, key), {}, reading) for key, item in value.items()}
    return _read_object(tp, value, where, reading)


def _read_leaf(kinds: tuple[type, ...], value: Any, where: str, between: Between | None) -> Any:
    as_number = number(value)
    if between is not None and kinds == (float,) and as_number is not None:
        if not (between.lo <= as_number <= between.hi and (math.isfinite(as_number) or not between.finite)):
            kind = "a finite number" if between.finite else "a number (not NaN)"
            raise _fail(where, f"is {value!r}, expected {kind} in [{between.lo:g}, {between.hi:g}]")
        return value
    if isinstance(value, bool):
        ok = bool in kinds
    else:
        ok = (float in kinds and as_number is not None) or any(
            isinstance(value, kind) for kind in kinds if kind not in (float, bool))
    if ok:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and as_number is None and float in kinds:
        raise _fail(where, "is an integer too large for a float, expected a number")
    raise _fail(where, f"is {json_kind(value)}, expected {' or '.join(_LEAVES[k][0] for k in kinds)}")


def _read_union(options: tuple[Any, ...], value: Any, where: str, reading: _Reading) -> Any:
    """Document classes: the first that reads, trying first those that name most of the object's keys."""
    keys = set(value) if isinstance(value, dict) else set()
    ranked = sorted(options, key=lambda cls: -len(keys & {f.name for f in fields(cls)}))
    problems = []
    for cls in ranked:
        try:
            return _read_object(cls, value, where, reading)
        except DocumentError as exc:
            problems.append(exc)
    raise problems[0]


def _read_object(cls: type, value: Any, where: str, reading: _Reading) -> Any:
    if not isinstance(value, dict):
        raise _fail(where, f"is {json_kind(value)}, expected an object")
    hints, found = _hints(cls), {}
    for f in fields(cls):
        if f.metadata.get("rest"):
            named = {other.name for other in fields(cls)}
            found[f.name] = {key: _read(get_args(hints[f.name])[1], item, _join(where, key), {}, reading)
                             for key, item in value.items() if key not in named}
        elif f.name in value:
            found[f.name] = _read(hints[f.name], value[f.name], _join(where, f.name), f.metadata, reading)
        elif not (f.metadata.get("optional") or _older(f, reading.version)):
            raise DocumentError(f"{_join(where, f.name)} is missing")
    return cls(**found)


def _older(f: Any, version: int | None) -> bool:
    since = f.metadata.get("since")
    return since is not None and version is not None and version < since


# ---- writing ------------------------------------------------------------------------------------------------------
def to_json(document: Any) -> Any:
    """A document (or any value in one) as plain JSON data; optional fields that are None are left out."""
    if is_dataclass(document) and not isinstance(document, type):
        data: dict[str, Any] = {}
        for f in fields(document):
            value = getattr(document, f.name)
            if f.metadata.get("rest"):
                data.update({key: to_json(item) for key, item in value.items()})
            elif value is not None or not (f.metadata.get("optional") or f.metadata.get("since")):
                data[f.name] = to_json(value)
        return data
    if isinstance(document, dict):
        return {key: to_json(item) for key, item in document.items()}
    if isinstance(document, (list, tuple)):
        return [to_json(item) for item in document]
    return document


# ---- the JSON Schema ----------------------------------------------------------------------------------------------
def json_schema(cls: type, schema_id: str, title: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of documents of ``cls``; nested classes under ``$defs``."""
    defs: dict[str, Any] = {}
    root = _object_schema(cls, defs)
    return {"$schema": DIALECT, "$id": schema_id, "title": title, **root, "$defs": dict(sorted(defs.items()))}


def _doc(cls: type) -> str:
    return inspect.cleandoc(cls.__doc__ or "")


def _object_schema(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    hints = _hints(cls)
    properties: dict[str, Any] = {}
    required, extra = [], False
    for f in fields(cls):
        if f.metadata.get("rest"):
            extra = _type_schema(get_args(hints[f.name])[1], {}, defs)
            continue
        absent_is_none = bool(f.metadata.get("optional") or f.metadata.get("since"))  # not JSON null
        prop = _type_schema(hints[f.name], f.metadata, defs, null=not absent_is_none)
        if f.metadata.get("const") is not None:
            prop["const"] = f.metadata["const"]
        if f.metadata.get("doc"):
            prop["description"] = f.metadata["doc"]
        properties[f.name] = prop
        if not f.metadata.get("optional"):
            required.append(f.name)
    return {"type": "object", "description": _doc(cls), "properties": properties, "required": required,
            "additionalProperties": extra}


def _type_schema(tp: Any, meta: Any, defs: dict[str, Any], null: bool = True) -> dict[str, Any]:
    options, nullable = _options(tp)
    nullable = nullable and null
    if all(option in _LEAVES for option in options):
        names = [_LEAVES[option][1] for option in options] + (["null"] if nullable else [])
        schema: dict[str, Any] = {"type": names[0] if len(names) == 1 else names}
        between = meta.get("between")
        if between is not None:
            schema.update({key: bound for key, bound in (("minimum", between.lo), ("maximum", between.hi))
                           if math.isfinite(bound)})
        return schema
    alternatives = [_single_schema(option, defs) for option in options]
    if len(alternatives) > 1:
        alternatives = [{"oneOf": alternatives}]
    return {"anyOf": [alternatives[0], {"type": "null"}]} if nullable else alternatives[0]


def _single_schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    if tp is Any:
        return {}
    origin, args = get_origin(tp), get_args(tp)
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0], {}, defs)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type_schema(args[1], {}, defs)}
    if tp.__name__ not in defs:
        defs[tp.__name__] = {}  # claimed before recursing (a class met again refers to it)
        defs[tp.__name__] = _object_schema(tp, defs)
    return {"$ref": f"#/$defs/{tp.__name__}"}
