"""How long building and measuring one table takes, per convention and bit width (median of 5 runs).

    make bench      # or: .venv/bin/python bench/table_build_speed.py
"""

from __future__ import annotations

import statistics
import time

from edgeact.activations import activation
from edgeact.numerics import QParams, covering_output_grid, lut_for, table_error

REPEATS = 5


def median_ms(call) -> float:  # noqa: ANN001
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main() -> None:
    print(f"{'function':<10}{'bits':>5}{'convention':>12}{'build ms':>10}{'measure ms':>12}")
    for name in ("tanh", "gelu"):
        act = activation(name)
        for bits, in_q in ((8, QParams(0.04, -10)), (16, QParams(0.00015, 0, "int16"))):
            out_q = covering_output_grid(act, in_q)
            for convention in ("ideal", "litert", "xnnpack"):
                if bits == 16 and convention == "xnnpack":
                    continue
                build = median_ms(lambda: lut_for(act, in_q, out_q, convention))
                table = lut_for(act, in_q, out_q, convention)
                measure = median_ms(lambda: table_error(act, table))
                print(f"{name:<10}{bits:>5}{convention:>12}{build:>10.2f}{measure:>12.2f}")


if __name__ == "__main__":
    main()
