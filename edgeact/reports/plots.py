"""Plots. Matplotlib is imported lazily with the Agg backend; files are written atomically.

Two figures: ``plot_lut`` (one table between two grids, ``edgeact lut --plot``) and ``plot_activation_map`` (the
nonlinear quantization map of one activation in a quantized model: the calibration histogram with the chosen input
range and the saturation bounds, the transfer curve fp32 vs int8, and the error).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgeact.activations import Activation
from edgeact.calibration.observers import TensorStats
from edgeact.io import atomic_write
from edgeact.lut import LutReport
from edgeact.numerics import Table, TableError
from edgeact.numerics.qparams import dequantize, quantize


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


Writer = Callable[[str | Path, Callable[[Path], None]], Path]


def _save(fig, path: str | Path, writer: Writer = atomic_write) -> Path:  # type: ignore[no-untyped-def]
    def save(tmp: Path) -> None:
        fig.savefig(tmp, dpi=110, format="png", metadata={"Software": None})

    try:
        return writer(path, save)
    finally:
        _pyplot().close(fig)


def _transfer(ax, act: Activation, table: Table, x: np.ndarray, bounds) -> None:  # type: ignore[no-untyped-def]
    ax.plot(x, act(x), color="black", lw=1.2, label=f"{act.name} (float64)")
    label = f"int{table.bits} table ({table.convention.value})"
    ax.step(x, dequantize(table.lookup(quantize(x, table.in_q)), table.out_q), where="mid", color="tab:orange",
            lw=1.0, label=label)
    for bound in bounds:
        if bound is not None and x[0] <= bound <= x[-1]:
            ax.axvline(bound, color="tab:red", ls=":", lw=1)
    ax.set_ylabel("output")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)


def _error(ax, act: Activation, table: Table, error: TableError, x: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    ax.plot(x, dequantize(table.lookup(quantize(x, table.in_q)), table.out_q) - act(x), color="tab:blue", lw=0.8,
            label="int8 path - f(x)")
    ax.axhspan(-error.bound, error.bound, color="tab:green", alpha=0.15, label=f"bound ±{error.bound:.3g}")
    half = table.out_q.scale / 2
    ax.axhline(half, color="gray", ls="--", lw=0.8, label="±s_out/2")
    ax.axhline(-half, color="gray", ls="--", lw=0.8)
    ax.set_xlabel("input x")
    ax.set_ylabel("error")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)


def _grids_title(act: Activation, table: Table) -> str:
    return (f"{act.name}: in (s={table.in_q.scale:.4g}, zp={table.in_q.zero_point}) -> "
            f"out (s={table.out_q.scale:.4g}, zp={table.out_q.zero_point})")


def plot_lut(report: LutReport, path: str | Path) -> Path:
    """Transfer curve (f vs the table's dequantized output) and the error with its floor band."""
    plt = _pyplot()
    table, act = report.table, report.activation
    x = np.linspace(*table.in_q.real_range, 4097)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    _transfer(top, act, table, x, report.saturation_bounds)
    top.set_title(_grids_title(act, table))
    _error(bottom, act, table, report.error, x)
    fig.tight_layout()
    return _save(fig, path)


def plot_activation_map(
    node: str, act: Activation, table: Table, error: TableError, stats: TensorStats, path: str | Path,
    writer: Writer = atomic_write,
) -> Path:
    """Histogram of the calibration inputs (chosen range shaded, saturation bounds dotted), transfer, error.

    ``writer(path, write)`` stores the file: atomically on its own, or staged in a run's :class:`OutputSet`.
    """
    plt = _pyplot()
    lo, hi = table.in_q.real_range
    x = np.linspace(min(stats.min, lo), max(stats.max, hi), 4097)
    bounds = act.saturation_bounds(table.out_q.scale)
    fig, (hist, top, bottom) = plt.subplots(
        3, 1, figsize=(8, 9), sharex=True, gridspec_kw={"height_ratios": [1, 2, 1]}
    )
    used = stats.counts > 0
    hist.bar(stats.centres()[used], stats.counts[used], width=stats.width, color="tab:gray")
    hist.axvspan(lo, hi, color="tab:orange", alpha=0.15, label=f"input grid [{lo:.3g}, {hi:.3g}]")
    for bound in bounds:
        if bound is not None:
            hist.axvline(bound, color="tab:red", ls=":", lw=1)
    hist.set_ylabel("calibration count")
    hist.set_title(f"{node} — {_grids_title(act, table)}", fontsize=10)
    hist.legend(loc="best", fontsize=8)
    _transfer(top, act, table, x, bounds)
    _error(bottom, act, table, error, x)
    fig.tight_layout()
    return _save(fig, path, writer)
