"""Calibration data: an .npz keyed by the model's input names, or a folder of them; checked before any work.

Each input's *batch axis* comes from the model's own symbolic dimensions (:func:`batch_axes`), not an assumption of
axis 0: a recurrent model with ``x [N, T, 40]`` and ``state [2, N, 128]`` batches along axis 0 of ``x`` and axis 1
of ``state``. Two layouts, chosen per file: *batched* — each array has the model input's rank and samples run along
its batch axis (a file holding one complete feed, as the model takes it, is the simplest case); *stacked* — each
array has one more leading axis than the model input and every entry along it is one complete model input.
Dims the model fixes must match, symbolic dims may be anything. Samples containing NaN/Inf are refused with their
index or, with ``skip_bad_samples``, skipped and counted.

Files are untrusted: names, dtypes and shapes are checked from the .npy headers before any data is inflated, each
array's declared size is bounded (:mod:`edgeact.calibration.npz`: ``max_array_bytes`` / $EDGEACT_MAX_ARRAY_BYTES,
4 GiB by default), and one file's arrays are in memory at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeact.calibration.npz import ArrayHeader, array_byte_limit, read_arrays, read_headers
from edgeact.errors import CalibrationDataError

CHUNK_VALUES = 1 << 18  # values per NaN/Inf check (a bounded temporary mask)


@dataclass(frozen=True)
class InputSpec:
    """What the model expects for one input (dims: int = fixed, None/str = dynamic) and where its batch runs."""

    name: str
    dtype: str
    shape: tuple[int | str | None, ...]
    batch_axis: int | None = 0  # None: the input has no batch axis (each feed carries it whole)

    @property
    def batch(self) -> int | None:
        """The fixed batch size, or None when the batch axis is dynamic (or absent)."""
        if self.batch_axis is None or self.batch_axis >= len(self.shape):
            return None
        dim = self.shape[self.batch_axis]
        return dim if isinstance(dim, int) else None


def batch_axes(inputs: dict[str, tuple[int | str | None, ...]],
               outputs: dict[str, tuple[int | str | None, ...] | None] | None = None) -> dict[str, int | None]:
    """Each input's batch axis, read from the model's dims:

    1. a symbolic dim that every input with symbolic dims holds, and every output whose shape is known too, is
       the batch: each input batches where it sits (``x [N, T, 40]`` on axis 0, ``state [2, N, 128]`` on axis 1; a
       seq-first LSTM's ``x [T, N, 8]`` with ``h0 [1, N, 4]`` on axis 1, T being absent from ``h0``); when several
       qualify, the one nearest the front;
    2. else, when every input leads with a dynamic dim or a fixed 1, or the model has no dynamic dim at all, axis 0
       (``[1, 1, 64, W]``: a batch of 1; ``[2, 4, 8]``: a fixed batch of 2);
    3. else no batch axis: each feed is taken whole (``[4, T]`` whose outputs do not carry T).
    """
    symbols = [{d for d in shape if isinstance(d, str)} for shape in inputs.values()]
    carriers = [found for found in symbols if found]
    candidates = set.intersection(*carriers) if carriers else set()
    for shape in (outputs or {}).values():
        if shape is not None:  # a batch reaches every output whose shape is known
            candidates &= {d for d in shape if isinstance(d, str)}
    if candidates:
        symbol = min(sorted(candidates), key=lambda c: sum(s.index(c) for s in inputs.values() if c in s))
        return {name: shape.index(symbol) if symbol in shape else None for name, shape in inputs.items()}
    static = not carriers and all(isinstance(d, int) for shape in inputs.values() for d in shape)
    if static or all(shape and (not isinstance(shape[0], int) or shape[0] == 1) for shape in inputs.values()):
        return {name: 0 if shape else None for name, shape in inputs.items()}
    return {name: None for name in inputs}


def with_batch_axes(specs: list[InputSpec],
                    outputs: dict[str, tuple[int | str | None, ...] | None] | None = None) -> list[InputSpec]:
    """``specs`` with each batch axis set by :func:`batch_axes` (``outputs``: the model's output shapes)."""
    axes = batch_axes({spec.name: spec.shape for spec in specs}, outputs)
    return [InputSpec(spec.name, spec.dtype, spec.shape, axes[spec.name]) for spec in specs]


def take_rows(feeds: dict[str, np.ndarray], specs: list[InputSpec], rows: np.ndarray | slice) -> dict[str, np.ndarray]:
    """The samples ``rows`` of a batched feed, cut along each input's batch axis (inputs without one whole)."""
    axes = {spec.name: spec.batch_axis for spec in specs}
    out = {}
    for name, array in feeds.items():
        axis = axes.get(name, 0)
        if axis is None:
            out[name] = array
        elif isinstance(rows, slice):
            out[name] = np.ascontiguousarray(array[(slice(None),) * axis + (rows,)])
        else:
            out[name] = np.ascontiguousarray(np.take(array, rows, axis=axis))
    return out


def sample_count(feeds: dict[str, np.ndarray], specs: list[InputSpec]) -> int:
    """Samples in a batched feed: the size of the batch axis (1 when no input has one)."""
    for spec in specs:
        if spec.batch_axis is not None and spec.name in feeds:
            return int(feeds[spec.name].shape[spec.batch_axis])
    return 1


def split_samples(feeds: dict[str, np.ndarray], specs: list[InputSpec]) -> list[dict[str, np.ndarray]]:
    """A batched feed as single-sample feeds (batch axis of size 1)."""
    return [take_rows(feeds, specs, slice(row, row + 1)) for row in range(sample_count(feeds, specs))]


@dataclass
class DataSummary:
    files: list[str]
    samples: int = 0
    bad_samples: list[str] = field(default_factory=list)  # "file[row]" of skipped NaN/Inf samples


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".npz" and p.is_file())
        if not files:
            raise CalibrationDataError(f"{path}: calibration folder has no .npz files")
        return files
    if not path.is_file():
        raise CalibrationDataError(f"{path}: no such calibration file or folder")
    return [path]


def _stacked(path: Path, arrays: dict[str, ArrayHeader], specs: list[InputSpec]) -> bool:
    """True when every array carries one extra leading axis of complete model inputs."""
    stacked = {spec.name: arrays[spec.name].ndim == len(spec.shape) + 1 for spec in specs}
    if len(set(stacked.values())) > 1:
        raise CalibrationDataError(
            f"{path}: mixes layouts: {sorted(n for n, s in stacked.items() if s)} carry a leading sample axis, "
            f"{sorted(n for n, s in stacked.items() if not s)} do not; use one layout per file"
        )
    return all(stacked.values())


def _check_keys(path: Path, arrays: dict[str, ArrayHeader], specs: list[InputSpec]) -> None:
    expected = {spec.name for spec in specs}
    missing, extra = sorted(expected - set(arrays)), sorted(set(arrays) - expected)
    if missing or extra:
        raise CalibrationDataError(
            f"{path}: keys must be the model's inputs {sorted(expected)}; missing {missing}, unexpected {extra}"
        )


def _check_input(path: Path, spec: InputSpec, array: ArrayHeader, stacked: bool) -> int | None:
    """Check one array's dtype and shape against the model input; its sample count (None: no batch axis)."""
    if array.dtype.name != spec.dtype:
        raise CalibrationDataError(f"{path}: input {spec.name!r}: expected dtype {spec.dtype}, got {array.dtype}")
    where = "a leading axis of whole inputs" if stacked else (
        f"samples on axis {spec.batch_axis}" if spec.batch_axis is not None else "one whole input")
    if array.ndim != len(spec.shape) + stacked:
        raise CalibrationDataError(
            f"{path}: input {spec.name!r}: expected rank {len(spec.shape)} (shape {list(spec.shape)}, {where}) "
            f"or {len(spec.shape) + 1} (a leading axis of whole inputs), got shape {list(array.shape)}"
        )
    dims = array.shape[1:] if stacked else array.shape
    for axis, (want, got) in enumerate(zip(spec.shape, dims, strict=True)):
        if not stacked and axis == spec.batch_axis:
            continue
        if isinstance(want, int) and want != got:
            raise CalibrationDataError(
                f"{path}: input {spec.name!r}: axis {axis + stacked} must be {want} (model shape "
                f"{list(spec.shape)}, {where}), got shape {list(array.shape)}"
            )
    if 0 in array.shape:
        raise CalibrationDataError(f"{path}: input {spec.name!r}: empty array (shape {list(array.shape)}, {where}): "
                                   "it holds no samples")
    count = array.shape[0] if stacked else (array.shape[spec.batch_axis] if spec.batch_axis is not None else None)
    if not stacked and count is not None and spec.batch is not None and count % spec.batch:
        raise CalibrationDataError(
            f"{path}: input {spec.name!r}: the model's batch is fixed at {spec.batch}; {count} "
            f"samples on axis {spec.batch_axis} is not a multiple of it"
        )
    return count


def _check_arrays(path: Path, arrays: dict[str, ArrayHeader], specs: list[InputSpec]) -> tuple[int, bool]:
    """Names, dtypes and shapes (from the headers, before any data is read); the sample count and layout."""
    _check_keys(path, arrays, specs)
    stacked = _stacked(path, arrays, specs)
    counts = {spec.name: count for spec in specs
              if (count := _check_input(path, spec, arrays[spec.name], stacked)) is not None}
    if len(set(counts.values())) > 1:
        detail = ", ".join(f"{n} {c} (axis {next(s.batch_axis for s in specs if s.name == n) if not stacked else 0})"
                           for n, c in counts.items())
        raise CalibrationDataError(f"{path}: inputs hold different sample counts along their batch axes: {detail}")
    return (next(iter(counts.values())) if counts else 1), stacked


def _finite_rows(array: np.ndarray, axis: int) -> np.ndarray:
    """Per sample along ``axis``: True when all its values are finite (checked in chunks, no full-size mask)."""
    moved = np.moveaxis(array, axis, 0)
    step = max(1, CHUNK_VALUES // max(1, moved[0].size))
    rest = tuple(range(1, moved.ndim))
    return np.concatenate([np.isfinite(moved[start : start + step]).all(axis=rest)
                           for start in range(0, len(moved), step)])


def _bad_rows(arrays: dict[str, np.ndarray], specs: list[InputSpec], stacked: bool, count: int) -> np.ndarray:
    rows = np.zeros(count, dtype=bool)
    for spec in specs:
        array = arrays[spec.name]
        if array.dtype.kind not in "fc":
            continue
        axis = 0 if stacked else spec.batch_axis
        if axis is None:  # a whole input shared by every sample
            rows |= not (np.isfinite(array).all() if array.ndim == 0 else _finite_rows(array, 0).all())
        else:
            rows |= ~_finite_rows(array, axis)
    return np.flatnonzero(rows)


@dataclass(frozen=True)
class _FileCheck:
    headers: dict[str, ArrayHeader]
    stacked: bool
    good: np.ndarray  # the usable sample indices


class CalibrationData:
    """A validated calibration set; iterating yields feeds of at most ``batch_size`` samples, one file at a time.

    Every file is checked before any work (headers first, then its values, one file in memory at a time); no
    array may declare more than ``max_array_bytes`` (default: $EDGEACT_MAX_ARRAY_BYTES, else 4 GiB)."""

    def __init__(self, path: str | Path, specs: list[InputSpec], *, skip_bad_samples: bool = False,
                 max_array_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.specs = specs
        self.skip_bad_samples = skip_bad_samples
        self.max_array_bytes = array_byte_limit(max_array_bytes)
        self.files = _files(self.path)
        self.summary = DataSummary([str(p) for p in self.files])
        self._checked = [self._check_file(file) for file in self.files]
        if self.summary.samples == 0:
            raise CalibrationDataError(f"{self.path}: no usable calibration samples")

    def _check_file(self, file: Path) -> _FileCheck:
        """One file's headers, then its values (NaN/Inf); the arrays are released on return."""
        headers = read_headers(file, self.max_array_bytes)
        count, stacked = _check_arrays(file, headers, self.specs)
        arrays = read_arrays(file, headers, [spec.name for spec in self.specs])
        bad = _bad_rows(arrays, self.specs, stacked, count)
        if len(bad) and not self.skip_bad_samples:
            raise CalibrationDataError(
                f"{file}: sample {int(bad[0])} contains NaN or Inf ({len(bad)} bad samples in this file); "
                "fix the data, or pass --skip-bad-samples to skip such samples"
            )
        self.summary.bad_samples += [f"{file.name}[{int(row)}]" for row in bad]
        good = np.setdiff1d(np.arange(count), bad)
        self.summary.samples += len(good)
        return _FileCheck(headers, stacked, good)

    def batches(self, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
        """Feeds of at most ``batch_size`` samples (a fixed model batch: exactly that many), file by file."""
        fixed_batch = next((spec.batch for spec in self.specs if spec.batch is not None), None)
        step = fixed_batch or max(1, batch_size)
        for file, checked in zip(self.files, self._checked, strict=True):
            yield from self._file_batches(file, checked, step, fixed_batch is not None)

    def _file_batches(self, file: Path, checked: _FileCheck, step: int, fixed: bool) -> Iterator[dict[str, np.ndarray]]:
        arrays = read_arrays(file, checked.headers, [spec.name for spec in self.specs])
        good = checked.good
        if checked.stacked:  # one complete model input per sample
            for row in good:
                yield {name: np.ascontiguousarray(array[row]) for name, array in arrays.items()}
            return
        usable = len(good) - len(good) % step if fixed else len(good)  # a fixed batch drops a ragged tail
        for start in range(0, usable, step):
            yield take_rows(arrays, self.specs, good[start : start + step])

    def samples(self) -> Iterator[dict[str, np.ndarray]]:
        """Every sample as its own feed: batch axis of size 1, or the model's fixed batch (a feed it takes whole)."""
        fixed = any(spec.batch is not None for spec in self.specs)
        for feeds in self.batches(1):
            if fixed:
                yield feeds
            else:
                yield from split_samples(feeds, self.specs)

    def first_feed(self) -> dict[str, np.ndarray]:
        """The first sample, as the model takes it (its shapes fix a model's dynamic dims for static targets)."""
        return next(self.samples())
