"""Calibration data: an .npz keyed by the model's input names, or a folder of them; checked before any work.

Two layouts, chosen per file: *batched* — each array has the model input's rank and samples run along its axis 0
(the batch axis); *stacked* — each array has one more leading axis than the model input and every entry along it is
one complete model input (for models whose inputs have no common batch axis, e.g. a recurrent state
[directions, batch, hidden]). Dims the model fixes must match, symbolic dims may be anything. Samples containing
NaN/Inf are refused with their index or, with ``skip_bad_samples``, skipped and counted.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeact.errors import CalibrationDataError


@dataclass(frozen=True)
class InputSpec:
    """What the model expects for one input (dims: int = fixed, None/str = dynamic)."""

    name: str
    dtype: str
    shape: tuple[int | str | None, ...]

    @property
    def batch(self) -> int | None:
        """The fixed batch size, or None when the batch axis is dynamic."""
        return self.shape[0] if self.shape and isinstance(self.shape[0], int) else None


@dataclass
class DataSummary:
    files: list[str]
    samples: int = 0
    bad_samples: list[str] = field(default_factory=list)  # "file[row]" of skipped NaN/Inf samples


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".npz")
        if not files:
            raise CalibrationDataError(f"{path}: calibration folder has no .npz files")
        return files
    if not path.is_file():
        raise CalibrationDataError(f"{path}: no such calibration file or folder")
    return [path]


def _open(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise CalibrationDataError(f"{path}: not a readable .npz file ({exc})") from exc


def _stacked(path: Path, arrays: dict[str, np.ndarray], specs: list[InputSpec]) -> bool:
    """True when every array carries one extra leading axis of complete model inputs."""
    stacked = {spec.name: arrays[spec.name].ndim == len(spec.shape) + 1 for spec in specs}
    if len(set(stacked.values())) > 1:
        raise CalibrationDataError(
            f"{path}: mixes layouts: {sorted(n for n, s in stacked.items() if s)} carry a leading sample axis, "
            f"{sorted(n for n, s in stacked.items() if not s)} do not; use one layout per file"
        )
    return all(stacked.values())


def _check_arrays(path: Path, arrays: dict[str, np.ndarray], specs: list[InputSpec]) -> tuple[int, bool]:
    expected = {spec.name for spec in specs}
    missing, extra = sorted(expected - set(arrays)), sorted(set(arrays) - expected)
    if missing or extra:
        raise CalibrationDataError(
            f"{path}: keys must be the model's inputs {sorted(expected)}; missing {missing}, unexpected {extra}"
        )
    stacked = _stacked(path, arrays, specs)
    counts = set()
    for spec in specs:
        array = arrays[spec.name]
        if array.dtype.name != spec.dtype:
            raise CalibrationDataError(f"{path}: input {spec.name!r}: expected dtype {spec.dtype}, got {array.dtype}")
        if array.ndim != len(spec.shape) + stacked:
            raise CalibrationDataError(
                f"{path}: input {spec.name!r}: expected rank {len(spec.shape)} (shape {list(spec.shape)}, samples "
                f"on axis 0) or {len(spec.shape) + 1} (a leading axis of whole inputs), got shape {list(array.shape)}"
            )
        first = 0 if stacked else 1
        for axis, (want, got) in enumerate(zip(spec.shape[first:], array.shape[1:], strict=True), start=1):
            if isinstance(want, int) and want != got:
                raise CalibrationDataError(
                    f"{path}: input {spec.name!r}: axis {axis} must be {want}, got shape {list(array.shape)}"
                )
        if not stacked and spec.batch is not None and array.shape[0] % spec.batch:
            raise CalibrationDataError(
                f"{path}: input {spec.name!r}: the model's batch is fixed at {spec.batch}; {array.shape[0]} samples "
                "is not a multiple of it"
            )
        counts.add(array.shape[0])
    if len(counts) != 1:
        raise CalibrationDataError(f"{path}: inputs hold different sample counts {sorted(counts)}")
    return counts.pop(), stacked


def _bad_rows(arrays: dict[str, np.ndarray]) -> np.ndarray:
    rows = None
    for array in arrays.values():
        if np.issubdtype(array.dtype, np.floating):
            bad = ~np.isfinite(array.reshape(array.shape[0], -1)).all(axis=1)
            rows = bad if rows is None else rows | bad
    return np.flatnonzero(rows) if rows is not None else np.zeros(0, dtype=np.int64)


class CalibrationData:
    """A validated calibration set; iterating yields feeds of at most ``batch_size`` samples, one file at a time."""

    def __init__(self, path: str | Path, specs: list[InputSpec], *, skip_bad_samples: bool = False) -> None:
        self.path = Path(path)
        self.specs = specs
        self.skip_bad_samples = skip_bad_samples
        self.files = _files(self.path)
        self.summary = DataSummary([str(p) for p in self.files])
        self._good_rows: list[np.ndarray] = []
        self._stacked: list[bool] = []
        for file in self.files:  # validate everything before any work starts
            arrays = _open(file)
            count, stacked = _check_arrays(file, arrays, specs)
            self._stacked.append(stacked)
            bad = _bad_rows(arrays)
            if len(bad) and not skip_bad_samples:
                raise CalibrationDataError(
                    f"{file}: sample {int(bad[0])} contains NaN or Inf ({len(bad)} bad samples in this file); "
                    "fix the data or pass --skip-bad-samples"
                )
            self.summary.bad_samples += [f"{file.name}[{int(row)}]" for row in bad]
            good = np.setdiff1d(np.arange(count), bad)
            self._good_rows.append(good)
            self.summary.samples += len(good)
        if self.summary.samples == 0:
            raise CalibrationDataError(f"{self.path}: no usable calibration samples")

    def batches(self, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
        fixed_batch = next((spec.batch for spec in self.specs if spec.batch is not None), None)
        step = fixed_batch or max(1, batch_size)
        for file, good, stacked in zip(self.files, self._good_rows, self._stacked, strict=True):
            arrays = _open(file)
            if stacked:  # one complete model input per sample
                for row in good:
                    yield {name: np.ascontiguousarray(array[row]) for name, array in arrays.items()}
                continue
            usable = len(good) - len(good) % step  # a fixed batch drops a ragged tail; a dynamic one keeps it
            usable = usable if fixed_batch else len(good)
            for start in range(0, usable, step):
                rows = good[start : start + step]
                yield {name: np.ascontiguousarray(array[rows]) for name, array in arrays.items()}
