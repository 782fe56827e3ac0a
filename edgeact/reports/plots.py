"""Plots. Matplotlib is imported lazily with the Agg backend; files are written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeact.io import atomic_write
from edgeact.lut import LutReport
from edgeact.numerics.qparams import dequantize, quantize


def plot_lut(report: LutReport, path: str | Path) -> Path:
    """Transfer curve (f vs the table's dequantized output) and the error with its floor band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table, act, err = report.table, report.activation, report.error
    lo, hi = table.in_q.real_range
    x = np.linspace(lo, hi, 4097)
    y_table = dequantize(table.lookup(quantize(x, table.in_q)), table.out_q)
    y_true = act(x)

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    top.plot(x, y_true, color="black", lw=1.2, label=f"{act.name} (float64)")
    label = f"int{table.bits} table ({table.convention.value})"
    top.step(x, y_table, where="mid", color="tab:orange", lw=1.0, label=label)
    for bound in report.saturation_bounds:
        if bound is not None and lo <= bound <= hi:
            top.axvline(bound, color="tab:red", ls=":", lw=1)
    top.set_ylabel("output")
    top.set_title(
        f"{act.name}: in (s={table.in_q.scale:.4g}, zp={table.in_q.zero_point}) -> "
        f"out (s={table.out_q.scale:.4g}, zp={table.out_q.zero_point})"
    )
    top.legend(loc="best")
    top.grid(alpha=0.3)

    bottom.plot(x, y_table - y_true, color="tab:blue", lw=0.8, label="table - f(x)")
    bottom.axhspan(-err.bound, err.bound, color="tab:green", alpha=0.15, label=f"bound ±{err.bound:.3g}")
    half = table.out_q.scale / 2
    bottom.axhline(half, color="gray", ls="--", lw=0.8, label="±s_out/2")
    bottom.axhline(-half, color="gray", ls="--", lw=0.8)
    bottom.set_xlabel("input x")
    bottom.set_ylabel("error")
    bottom.legend(loc="best", fontsize=8)
    bottom.grid(alpha=0.3)
    fig.tight_layout()

    def save(tmp: Path) -> None:
        fig.savefig(tmp, dpi=110, format="png", metadata={"Software": None})

    try:
        return atomic_write(path, save)
    finally:
        plt.close(fig)
