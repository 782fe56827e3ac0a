"""Stage 2, ``calibrate``: statistics of every observed tensor of a :class:`Prepared` model, streamed from
calibration data through onnxruntime in fixed memory, and/or merged from saved statistics files."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from edgeact.calibration.data import CalibrationData, sample_count
from edgeact.calibration.engine import CalibrationStats, collect_stats, input_specs, observed_tensors
from edgeact.errors import CalibrationDataError, UsageError
from edgeact.graph.observe import observation_model
from edgeact.pipeline.prepare import Prepared
from edgeact.runtimes.onnxruntime import ort_session, run_ort


def calibration_data(prepared: Prepared, calib: str | Path, skip_bad_samples: bool = False,
                     max_array_bytes: int | None = None) -> CalibrationData:
    """``calib`` (an .npz or a folder of them) checked against the prepared model's inputs."""
    return CalibrationData(calib, input_specs(prepared.view), skip_bad_samples=skip_bad_samples,
                           max_array_bytes=max_array_bytes)


def stream(prepared: Prepared, data: CalibrationData, batch_size: int = 8, progress: bool = False) -> CalibrationStats:
    """Every observed tensor's statistics over ``data`` (one onnxruntime session, batches of ``batch_size``)."""
    tensors = observed_tensors(prepared.view)
    session = ort_session(observation_model(prepared.model, tensors), f"float model {prepared.source}")
    return collect_stats(session, data, tensors, prepared.fingerprint, batch_size=batch_size, progress=progress)


def first_batches(data: CalibrationData, samples: int, batch_size: int, prepared: Prepared) -> list[dict]:
    """The first ``samples`` samples of ``data`` (at least one batch), as feeds of up to ``batch_size``."""
    specs, taken, batches = input_specs(prepared.view), 0, []
    for feeds in data.batches(batch_size):
        if taken >= samples:
            break
        batches.append(feeds)
        taken += sample_count(feeds, specs)
    return batches


def merged_stats(paths: Iterable[str | Path]) -> CalibrationStats:
    """Statistics files (one per calibration shard) merged into one."""
    loaded = [(str(p), CalibrationStats.load(p)) for p in paths]
    if not loaded:
        raise UsageError("no statistics files given")
    total = loaded[0][1]
    for name, stats in loaded[1:]:
        total = total.merge(stats, name)
    return total


def statistics(prepared: Prepared, data: CalibrationData | None = None, stats: Sequence[str | Path] = (),
               batch_size: int = 8, progress: bool = False) -> CalibrationStats:
    """Stage 2: saved ``stats`` (merged; they must come from this model as prepared) and/or ``data`` streamed."""
    collected = [merged_stats(stats)] if stats else []
    if collected and collected[0].model_fingerprint != prepared.fingerprint:
        raise CalibrationDataError(
            f"{', '.join(map(str, stats))}: statistics collected on a different model than {prepared.source} as this "
            f"run prepares it (its input shapes: {prepared.input_shapes()}); statistics for a TFLite export or an "
            "--input-shape run come from 'edgeact calibrate ... --input-shape' with the same shapes")
    if data is not None:
        collected.append(stream(prepared, data, batch_size, progress))
    if not collected:
        raise UsageError("give calibration data (--calib) or saved statistics (--stats)")
    return collected[0] if len(collected) == 1 else collected[0].merge(collected[1], "calibration data")


def bucket_counts(prepared: Prepared, data: CalibrationData, edges: dict[str, list[float]], batch_size: int = 8,
                  progress: bool = False) -> dict[str, tuple[list[int], int]]:
    """For each tensor, exact counts of its finite values in the buckets ``edges`` (sorted) cut the line into
    (``len(edges) + 1`` buckets; a value equal to an edge goes above it), and its non-finite count: what a histogram
    of coarse bins cannot say when one outlier widened them."""
    import numpy as np
    from tqdm import tqdm

    names = [name for name in edges if name in set(observed_tensors(prepared.view))]
    session = ort_session(observation_model(prepared.model, names), f"float model {prepared.source}")
    counts = {name: np.zeros(len(edges[name]) + 1, dtype=np.int64) for name in names}
    nonfinite = dict.fromkeys(names, 0)
    for feeds in tqdm(data.batches(batch_size), desc="counting", unit="batch", leave=False,
                      disable=None if progress else True):
        for name, values in run_ort(session, feeds, names).items():
            flat = np.asarray(values, dtype=np.float64).ravel()
            finite = flat[np.isfinite(flat)]
            nonfinite[name] += int(flat.size - finite.size)
            counts[name] += np.bincount(np.searchsorted(np.asarray(edges[name]), finite, side="right"),
                                        minlength=len(counts[name]))
    return {name: (counts[name].tolist(), nonfinite[name]) for name in names}
