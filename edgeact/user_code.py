"""The user's Python code named on the command line or in the API: ``path/to/file.py:name`` or
``package.module:name``, imported as ``python file.py`` / ``python -m`` would (never a standard library or builtin
module: those are refused before anything is imported or called)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from edgeact.errors import UsageError, UserCodeError


def split_reference(reference: str, what: str) -> tuple[str, str]:
    """(``file.py`` or ``package.module``, attribute name) of ``reference``; a usage error says the form."""
    target, _, name = reference.rpartition(":")
    if not target or not name.isidentifier():
        raise UsageError(f"{reference!r}: expected path/to/file.py:{what} or package.module:{what}")
    return target, name


def user_attribute(reference: str, what: str) -> tuple[Any, ModuleType]:
    """The object ``reference`` (``file.py:name`` / ``package.module:name``) names, and its module; it may not come
    from the standard library or builtins (refused without calling it). ``what``: the word for it in messages
    ("factory", "metric")."""
    target, name = split_reference(reference, what)
    module = _file_module(reference, Path(target), what) if target.endswith(".py") else \
        _package_module(reference, target, what)
    try:
        found = getattr(module, name, None)
    except Exception as exc:
        raise UserCodeError(f"{reference!r}: reading {name!r} from {target} raised {describe(exc)}") from exc
    if found is None:
        raise UserCodeError(f"{reference!r}: {target} has no callable {name!r}")
    if from_stdlib(found, module):
        raise UserCodeError(
            f"{reference!r}: {qualified(found)} comes from Python's standard library or builtins, not a model "
            f"{what}; refused without calling it"
        )
    return found, module


def describe(exc: BaseException) -> str:
    """``Type: first line`` of an exception the user's code raised."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def qualified(obj: Any) -> str:
    return f"{getattr(obj, '__module__', None) or '?'}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def _file_module(reference: str, path: Path, what: str) -> ModuleType:
    """Execute the user's ``file.py`` (never one of the standard library's) as a module."""
    if not path.is_file():
        raise UserCodeError(f"{reference!r}: no such file {path}")
    if stdlib_file(str(path)):
        raise UserCodeError(f"{reference!r}: {path} is part of Python's standard library, not a model {what}")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise UserCodeError(f"{reference!r}: {path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        with _on_sys_path(path.resolve().parent):  # as `python file.py`: its sibling modules import
            spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        raise UserCodeError(f"{reference!r}: importing {path} failed: {describe(exc)}") from exc
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


def _package_module(reference: str, target: str, what: str) -> ModuleType:
    """Import ``package.module`` (never a standard library or builtin module: refused before the import)."""
    if not all(part.isidentifier() for part in target.split(".")):
        raise UsageError(f"{reference!r}: expected path/to/file.py:{what} or package.module:{what}")
    if stdlib_name(target):
        raise UserCodeError(f"{reference!r}: {target} is a Python standard library module, not a model {what}")
    try:
        with _on_sys_path(Path.cwd()):  # as `python -m`: modules in the current folder import
            module = importlib.import_module(target)
    except ImportError as exc:
        raise UserCodeError(f"{reference!r}: cannot import module {target!r} ({exc})") from exc
    except (Exception, SystemExit) as exc:
        raise UserCodeError(f"{reference!r}: importing module {target!r} failed: {describe(exc)}") from exc
    if stdlib_file(getattr(module, "__file__", None) or ""):
        raise UserCodeError(f"{reference!r}: {target} is a Python standard library module, not a model {what}")
    return module


def from_stdlib(obj: Any, module: ModuleType) -> bool:
    """Whether ``obj`` was defined in the standard library or builtins (by its module's name and file)."""
    name = getattr(obj, "__module__", None)
    if not isinstance(name, str):
        return False  # no home module: the caller's own check refuses it unless it is what it wants
    own = name == module.__name__  # defined in the module the user named (its name may shadow a stdlib name)
    if not own and stdlib_name(name):
        return True
    files = [getattr(module if own else sys.modules.get(name), "__file__", None)]
    if inspect.isfunction(obj):
        files.append(obj.__code__.co_filename)
    return any(stdlib_file(file) for file in files if file)


def stdlib_name(name: str) -> bool:
    top = name.partition(".")[0]
    return top in sys.stdlib_module_names or top in sys.builtin_module_names


def stdlib_file(file: str) -> bool:
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
