"""The ``lut`` job: build one activation table, measure it and put it next to the int8 error floor."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeact import __version__
from edgeact.activations import Activation, activation
from edgeact.errors import UsageError
from edgeact.numerics.floor import TableError, table_error
from edgeact.numerics.qparams import QParams
from edgeact.numerics.tables import Convention, Table, covering_output_grid, lut_for

BITS_DTYPE = {8: "int8", 16: "int16"}


@dataclass(frozen=True)
class LutReport:
    """A table with its measured error, floor and saturation bounds."""

    activation: Activation
    table: Table
    error: TableError
    saturation_bounds: tuple[float | None, float | None]
    out_scale_chosen: bool  # True when the output grid came from ``out_scale="auto"``

    def as_dict(self) -> dict[str, Any]:
        """The JSON record of ``edgeact lut --json``."""
        t = self.table
        record: dict[str, Any] = {
            "function": t.function,
            "params": dict(self.activation.params),
            "convention": t.convention.value,
            "bits": t.bits,
            "in_scale": t.in_q.scale,
            "in_zero_point": t.in_q.zero_point,
            "out_scale": t.out_q.scale,
            "out_zero_point": t.out_q.zero_point,
            "out_grid": "auto" if self.out_scale_chosen else "given",
            "input_range": list(t.in_q.real_range),
            "output_range": list(t.out_q.real_range),
            "table_kind": "int8 codes for inputs -128..127" if t.bits == 8 else "int16 knots (513, interpolated)",
            "table": [int(v) for v in t.values],
            "saturation_bounds": list(self.saturation_bounds),
            "edgeact_version": __version__,
        }
        record.update(self.error.as_dict())
        return record


def _check_scale(name: str, scale: float) -> None:
    """A grid scale must be a positive normal float32: tables are built and run in float32."""
    tiny, huge = float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max)
    if not (math.isfinite(scale) and tiny <= scale <= huge):
        flag = "--" + name.replace("_", "-")
        raise UsageError(f"{name} ({flag}) must be a finite float32 scale in [{tiny:.3g}, {huge:.3g}], got {scale!r}")


def build_lut(
    function: str,
    in_scale: float,
    in_zero_point: int,
    out_scale: float | str = "auto",
    out_zero_point: int = 0,
    convention: Convention | str = Convention.IDEAL,
    bits: int = 8,
    **params: float,
) -> LutReport:
    """Build ``function``'s table between the given grids and measure it (the API of ``edgeact lut``).

    ``out_scale="auto"`` picks the output grid covering f over the input grid (``out_zero_point`` is
    then chosen too).
    """
    if bits not in BITS_DTYPE:
        raise UsageError(f"bits must be 8 or 16, got {bits}")
    act = activation(function, **params)
    _check_scale("in_scale", in_scale)
    if not isinstance(out_scale, str):
        _check_scale("out_scale", out_scale)
    in_q = QParams(in_scale, in_zero_point, BITS_DTYPE[bits])
    auto = isinstance(out_scale, str)
    if auto and out_scale != "auto":
        raise UsageError(f"out_scale must be a positive number or 'auto', got {out_scale!r}")
    out_q = covering_output_grid(act, in_q) if auto else QParams(float(out_scale), out_zero_point, BITS_DTYPE[bits])
    table = lut_for(act, in_q, out_q, convention)
    return LutReport(act, table, table_error(act, table), act.saturation_bounds(out_q.scale), auto)

