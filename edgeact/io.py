"""File output: every file edgeact writes goes through here.

Rules (docs/reliability.md):
- an output is written to a temp file beside it (``.<name>.edgeact-<pid>-<random>.tmp``) and renamed onto its
  path only when complete; a failure (ENOSPC, EIO, EACCES, Ctrl-C) removes the temp file and names the path;
- the outputs of one run form an :class:`OutputSet`: every file is staged first and renamed only after every write
  succeeded, the manifest-like file (the calibration record) last, so a reader can tell a complete set;
- an output never replaces an input (:func:`check_outputs`: same path, symlink or hard link);
- an output gets the ordinary mode for the user's umask (not the 0600 of a temp file);
- temp files of our own naming left by a killed run (its pid is gone) are removed on the next write there.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from edgeact.errors import EdgeactError, UsageError

TEMP_MARK = ".edgeact-"
_TEMP_NAME = re.compile(r"^\..+\.edgeact-(\d+)-[A-Za-z0-9_]+\.tmp$")


def _umask() -> int:
    """The process umask (read without changing it where /proc says it; else set and restore)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temps(folder: Path) -> list[Path]:
    """Remove temp files of our own naming in ``folder`` whose writing process no longer exists."""
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match and int(match.group(1)) != os.getpid() and not _pid_alive(int(match.group(1))):
            try:
                entry.unlink()
                removed.append(entry)
            except OSError:
                pass
    return removed


def same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name one file: equal resolved paths, or the same inode (hard link)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(outputs: Mapping[str, str | Path | None], inputs: Iterable[str | Path | None]) -> None:
    """Refuse (usage error) an output path that is an input (also through a link) or another output's path.

    ``outputs`` maps a label for messages (``--json``) to a path; ``None`` entries are ignored.
    """
    given = [(label, Path(path)) for label, path in outputs.items() if path is not None]
    sources = [Path(path) for path in inputs if path is not None]
    for label, path in given:
        for source in sources:
            if same_file(path, source):
                raise UsageError(f"{label} {path} would overwrite the input {source}; write it somewhere else")
    for index, (label, path) in enumerate(given):
        for other_label, other in given[:index]:
            if same_file(path, other):
                raise UsageError(f"{label} and {other_label} are the same file ({path}); give two paths")


def _probe(folder: Path, failure: str) -> None:
    """Create and remove a temp file of our naming in ``folder`` (os.access says yes to root everywhere)."""
    try:
        handle, probe = tempfile.mkstemp(prefix=f".probe{TEMP_MARK}{os.getpid()}-", suffix=".tmp", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise EdgeactError(f"{failure} ({exc.strerror or exc})") from exc


def check_writable(outputs: Mapping[str, str | Path | None]) -> None:
    """Before a run: every output file's folder exists and takes a new file.

    ``outputs`` maps a label for messages (``--json``) to a path; ``None`` entries are ignored."""
    for label, path in outputs.items():
        if path is None:
            continue
        target = Path(path)
        folder = target.parent if str(target.parent) else Path(".")
        if target.is_dir():
            raise EdgeactError(f"{label} {target}: is a folder, expected a file path")
        if not folder.is_dir():
            raise EdgeactError(f"{label} {target}: folder {folder} does not exist")
        _probe(folder, f"{label} {target}: cannot write in {folder}")


def check_creatable_folder(folder: Path) -> None:
    """Before a run: ``folder`` exists and is writable, or can be created (it is created only when writing)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise EdgeactError(f"output folder {folder} cannot be created: {existing} is not a folder")
    _probe(existing, f"output folder {folder} cannot be created in {existing}")


def _stage(target: Path, write: Callable[[Path], None]) -> Path:
    """Write ``target``'s content to a temp file beside it; return the temp path (removed on any failure)."""
    if target.is_dir():
        raise EdgeactError(f"{target}: is a directory, expected a file path")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise EdgeactError(f"{target}: folder {parent} does not exist")
    clean_stale_temps(parent)
    try:
        handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name}{TEMP_MARK}{os.getpid()}-", suffix=".tmp",
                                            dir=parent)
    except OSError as exc:
        raise EdgeactError(f"{target}: cannot write in {parent} ({exc.strerror or exc})") from exc
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise EdgeactError(f"{target}: cannot write it ({exc.strerror or exc})") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _commit(tmp: Path, target: Path) -> None:
    try:
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise EdgeactError(f"{target}: cannot write it ({exc.strerror or exc})") from exc


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and rename the result onto ``path``; on failure nothing is left behind."""
    target = Path(path)
    tmp = _stage(target, write)
    try:
        _commit(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def atomic_write_bytes(path: str | Path, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(payload))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))


class OutputSet:
    """The files of one run: staged as temp files, renamed together by :meth:`commit` in the order added.

    Add the file that describes the set (a record or manifest) last: it appears only after all the others.
    Used as a context manager, leaving the block with an exception removes every staged temp file.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []

    def add(self, path: str | Path, write: Callable[[Path], None]) -> Path:
        target = Path(path)
        self._staged.append((self._stage_checked(target, write), target))
        return target

    def add_bytes(self, path: str | Path, payload: bytes) -> Path:
        return self.add(path, lambda tmp: tmp.write_bytes(payload))

    def add_text(self, path: str | Path, text: str) -> Path:
        return self.add(path, lambda tmp: tmp.write_text(text))

    def _stage_checked(self, target: Path, write: Callable[[Path], None]) -> Path:
        if any(same_file(target, other) for _, other in self._staged):
            raise UsageError(f"{target} is written twice in one run")
        return _stage(target, write)

    def commit(self) -> list[Path]:
        """Rename every staged file onto its path; returns the paths."""
        done = []
        try:
            for tmp, target in self._staged:
                _commit(tmp, target)
                done.append(target)
        finally:
            self.abort()
        return done

    def abort(self) -> None:
        """Remove every staged temp file that was not renamed yet."""
        for tmp, _ in self._staged:
            tmp.unlink(missing_ok=True)
        self._staged = []

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, kind, value, traceback) -> None:  # type: ignore[no-untyped-def]
        self.abort()
