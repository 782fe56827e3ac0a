"""TFLite Micro's int8 TANH ignores the output scale in the model; the GATHER table does not.

Builds two single-op int8 models for tanh with an output grid other than (1/128, 0), runs both on
TFLite Micro's interpreter and compares them with the exact table. Then does the same for GELU, which
TFLite Micro has no kernel for at all.

    python examples/tflm_tanh_hazard.py
"""

from __future__ import annotations

import numpy as np

from edgeact.activations import activation
from edgeact.errors import RuntimeUnavailableError
from edgeact.exporters.tflite.single_op import activation_builtin_model, table_lowering_model
from edgeact.hardware import activation_verdict, load_profile
from edgeact.numerics import QParams, lut_for
from edgeact.runtimes.tflm import run_tflm

CODES = np.arange(-128, 128, dtype=np.int8)


def compare(label: str, model: bytes, exact: np.ndarray) -> None:
    try:
        got = run_tflm(model, [CODES])[0].astype(np.int64)
    except RuntimeUnavailableError as exc:
        print(f"  {label:<34} does not load: {str(exc).splitlines()[0]}")
        return
    wrong = int(np.sum(got != exact))
    print(f"  {label:<34} {wrong:>3}/256 codes wrong, worst by {int(np.abs(got - exact).max()):>3} LSB")


def main() -> None:
    tflm = load_profile("tflm")
    in_q = QParams(0.03, 0)
    for name, op, options, out_q in (
        ("tanh", "TANH", {}, QParams(1 / 128, 0)),
        ("tanh", "TANH", {}, QParams(1 / 100, -10)),
        ("gelu", "GELU", {"approximate": False}, QParams(0.02, -100)),
    ):
        table = lut_for(activation(name), in_q, out_q)
        verdict = activation_verdict(tflm, op, in_q, out_q)
        print(f"{name} on TFLite Micro, output grid (scale {out_q.scale:.6g}, zero point {out_q.zero_point}):")
        print(f"  profile says: {verdict.status} - {verdict.reason}")
        compare(f"builtin {op}", activation_builtin_model(op, in_q, out_q, **options), table.values)
        compare("CAST -> ADD -> GATHER table", table_lowering_model(table), table.values)
        print()


if __name__ == "__main__":
    main()
