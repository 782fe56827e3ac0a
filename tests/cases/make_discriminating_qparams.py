"""Regenerate discriminating_qparams.json: grids on which the table conventions disagree.

Random grids almost never separate the conventions (they differ only at near-ties of the rounding),
so the runtime tests also run on grids found here, where at least two of ideal / litert / xnnpack give
different tables. Which convention the runtime matches is then decided by the runtime alone.

    python tests/cases/make_discriminating_qparams.py   # deterministic (seeded)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgeact.activations import activation
from edgeact.numerics import QParams, lut_for

FUNCTIONS = ("tanh", "sigmoid", "gelu", "gelu_tanh")
CASES_PER_FUNCTION = 8
SEED = 20261122


def random_grid(rng: np.random.Generator, lo: float, hi: float) -> QParams:
    return QParams(float(np.exp(rng.uniform(np.log(lo), np.log(hi)))), int(rng.integers(-128, 128)))


def main() -> None:
    rng = np.random.default_rng(SEED)
    cases: dict[str, list[dict]] = {}
    for name in FUNCTIONS:
        act, found = activation(name), []
        while len(found) < CASES_PER_FUNCTION:
            in_q, out_q = random_grid(rng, 0.002, 0.2), random_grid(rng, 0.002, 0.05)
            if name == "sigmoid" and len(found) % 2 == 0:  # LiteRT's own LOGISTIC needs scale 1/256
                out_q = QParams(1 / 256, out_q.zero_point)
            tables = [lut_for(act, in_q, out_q, c).values for c in ("ideal", "litert", "xnnpack")]
            if any((t != tables[0]).any() for t in tables[1:]):
                found.append({"in_scale": in_q.scale, "in_zero_point": in_q.zero_point,
                              "out_scale": out_q.scale, "out_zero_point": out_q.zero_point})
        cases[name] = found
    path = Path(__file__).with_name("discriminating_qparams.json")
    path.write_text(json.dumps(cases, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
