"""Stage 6, ``write``: a run's files as one set (all staged, then renamed; the record last, so that it marks a
complete set), never onto an input, checked for writability before any work (:func:`output_paths`)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgeact import __version__
from edgeact.calibration.engine import CalibrationStats
from edgeact.documents.provenance import RECORD_KEY
from edgeact.errors import EdgeactError, UsageError
from edgeact.io import OutputSet, check_creatable_folder, check_outputs
from edgeact.pipeline.export import FORMATS, SUFFIXES, Artifact
from edgeact.pipeline.prepare import ModelSource
from edgeact.pipeline.record import CalibrationRecord
from edgeact.planning.plan import QuantPlan


def user_files(model: Any, *others: str | Path | None) -> list[Path]:
    """The user's files among a run's inputs (a model path, the file of ``file.py:factory``, data, stats)."""
    files = []
    for item in (model, *others):
        if not isinstance(item, (str, Path)):
            continue
        path = Path(item)
        if not path.exists() and ":" in str(item):
            path = Path(str(item).rsplit(":", 1)[0])
        if path.is_file():
            files.append(path)
    return files


def output_paths(source: ModelSource, output_dir: str | Path | None, formats: Sequence[str], float_tflite: bool,
                 inputs: Sequence[Path] = ()) -> dict[str, Path]:
    """OUTDIR/<stem><suffix> per form and the record; refused before any work when one would replace an input or
    the folder cannot be written."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise UsageError(f"unknown format(s) {unknown}; choose from {', '.join(FORMATS)}")
    folder = Path(output_dir) if output_dir is not None else Path(".")
    paths = {form: folder / f"{source.stem}{SUFFIXES[form]}" for form in [*formats] + (["fp32-tflite"] * float_tflite)}
    paths["record"] = folder / f"{source.stem}.calibration.json"
    if output_dir is not None:  # None: nothing is written (the files stay in memory), so nothing to check
        check_outputs({f"output ({form})": path for form, path in paths.items()}, [source.path, *inputs])
        check_creatable_folder(folder)
    return paths


def plots_folder(record_path: Path) -> Path:
    return record_path.with_name(record_path.name.removesuffix(".calibration.json") + ".plots")


def _plot_activation_maps(plan: QuantPlan, stats: CalibrationStats, folder: Path, outputs: OutputSet) -> list[Path]:
    """Each activation's nonlinear quantization map, staged in ``outputs`` (OUTDIR/<name>.plots/<node>.png)."""
    from edgeact.reports.plots import plot_activation_map

    drawn = []
    for act in plan.activations:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in act.node)
        drawn.append(plot_activation_map(act.node, act.function, act.table, act.error, stats.tensors[act.input],
                                         folder / f"{safe}.png", outputs.add))
    return drawn


def file_contents(paths: dict[str, Path], artifacts: dict[str, Artifact],
                  record: CalibrationRecord) -> tuple[str, dict[str, bytes]]:
    """The record's text and each form's bytes as they are written: each .tflite carries the record's sha256 and
    its file name in its metadata."""
    text = record.to_json()
    metadata = {"edgeact_version": __version__.encode(),
                "calibration_record_sha256": hashlib.sha256(text.encode()).hexdigest().encode(),
                RECORD_KEY: paths["record"].name.encode()}  # the record beside it, by data, not by a naming rule
    return text, {form: artifact.final_bytes(metadata) for form, artifact in artifacts.items()}


def write(paths: dict[str, Path], artifacts: dict[str, Artifact], record: CalibrationRecord,
          plots: tuple[QuantPlan, CalibrationStats] | None = None) -> list[Path]:
    """Stage 6: every artifact and the record (and with ``plots``, the activation maps) as one set; each .tflite
    carries the record's sha256 in its metadata. Returns the plots drawn."""
    text, contents = file_contents(paths, artifacts, record)
    plot_folder = plots_folder(paths["record"]) if plots is not None else None
    created = _missing_folders(paths["record"].parent, plot_folder)
    try:
        for folder in reversed(created):
            _make_folder(folder)
        with OutputSet() as outputs:
            for form, payload in contents.items():
                outputs.add_bytes(paths[form], payload)
            drawn = _plot_activation_maps(*plots, plot_folder, outputs) if plots is not None else []
            outputs.add_text(paths["record"], text)
            outputs.commit()
    except BaseException:
        for folder in created:  # deepest first; only the ones this run made, and only when still empty
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    return drawn


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir()
    except OSError as exc:
        raise EdgeactError(f"output folder {folder} cannot be created ({exc.strerror or exc})") from exc


def _missing_folders(*folders: Path | None) -> list[Path]:
    """The folders (and parents) that do not exist yet, deepest first."""
    missing: list[Path] = []
    for folder in folders:
        for path in (folder, *folder.parents) if folder is not None else ():
            if not path.exists() and path not in missing:
                missing.append(path)
    return sorted(missing, key=lambda p: -len(p.parts))
