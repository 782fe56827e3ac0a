"""File output: every file edgeact writes goes through here (temp file + rename, never partial)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from collections.abc import Callable

from edgeact.errors import EdgeactError


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and rename the result onto ``path``; on failure nothing is left behind."""
    target = Path(path)
    if target.is_dir():
        raise EdgeactError(f"{target}: is a directory, expected a file path")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise EdgeactError(f"{target}: folder {parent} does not exist")
    try:
        handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix or ".tmp", dir=parent)
    except OSError as exc:
        raise EdgeactError(f"{target}: cannot write in {parent} ({exc.strerror or exc})") from exc
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise EdgeactError(f"{target}: cannot write it ({exc.strerror or exc})") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def atomic_write_bytes(path: str | Path, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(payload))
