"""OpenMetrics text (what Prometheus scrapes, and a node exporter's textfile collector picks up) from a profile
report and a gate result: one gauge family per quantity, labelled by model, device and output / layer / activation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

Sample = tuple[dict[str, str], float]
MS_PER_SECOND = 1000.0  # reports hold milliseconds; metrics use base units (Prometheus: seconds)


def _value(number: float) -> str:
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    return repr(float(number))


def _label(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def family(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> list[str]:
    """One metric family (``kind``: gauge or counter, whose samples get ``_total``); none without samples."""
    rows = list(samples)
    if not rows:
        return []
    sample_name = f"{name}_total" if kind == "counter" else name
    lines = [f"# TYPE {name} {kind}", f"# HELP {name} {help_text}"]
    for labels, number in rows:
        text = ",".join(f'{key}="{_label(str(value))}"' for key, value in sorted(labels.items()))
        lines.append(f"{sample_name}{{{text}}} {_value(number)}")
    return lines


def document(families: Iterable[list[str]]) -> str:
    """The families as one OpenMetrics text, ``# EOF`` last."""
    return "\n".join([line for lines in families for line in lines] + ["# EOF"]) + "\n"


def profile_families(report: Any) -> list[list[str]]:
    """A profile-device report's numbers: per output, per layer, per activation, latency."""
    base = {"model": report.model, "device": report.device.name}
    outputs = report.outputs.items()
    layers = [layer for layer in report.layers if layer.sqnr_db is not None]
    acts = report.activations
    return [
        family("edgeact_sqnr_db", "gauge", "int8 output against float32 (dB)",
               (({**base, "output": n}, o.sqnr_db) for n, o in outputs)),
        family("edgeact_cosine", "gauge", "cosine similarity of the int8 output with float32",
               (({**base, "output": n}, o.cosine) for n, o in outputs)),
        family("edgeact_top1_agreement_ratio", "gauge", "share of samples whose argmax agrees with float32",
               (({**base, "output": n}, o.top1_agreement) for n, o in outputs if o.top1_agreement is not None)),
        family("edgeact_emulator_agreement_ratio", "gauge", "share of output codes equal to edgeact's emulator",
               (({**base, "output": n}, o.emulator.equal_codes) for n, o in outputs if o.emulator is not None)),
        family("edgeact_nonfinite", "counter", "NaN and Inf values in the device's output",
               [({**base, "output": n, "kind": "nan"}, o.nan_count) for n, o in outputs]
               + [({**base, "output": n, "kind": "inf"}, o.inf_count) for n, o in outputs]),
        family("edgeact_layer_sqnr_db", "gauge", "int8 tensor against the float model's (dB)",
               (({**base, "tensor": layer.tensor}, layer.sqnr_db) for layer in layers)),
        family("edgeact_saturation_ratio", "gauge", "share of calibration inputs beyond the activation's "
               "saturation bounds", (({**base, "activation": a.node}, a.saturation_rate) for a in acts
                                    if a.saturation_rate is not None)),
        family("edgeact_activation_rms_error", "gauge", "RMS error of the activation's int8 table against f",
               (({**base, "activation": a.node}, a.rms_error) for a in acts)),
        family("edgeact_activation_rms_floor", "gauge", "the int8 error floor of the activation's grids",
               (({**base, "activation": a.node}, a.rms_floor) for a in acts)),
        family("edgeact_latency_seconds", "gauge", "single-sample latency on the device (median and p95)",
               [({**base, "quantile": "0.5"}, report.latency_ms.median / MS_PER_SECOND),
                ({**base, "quantile": "0.95"}, report.latency_ms.p95 / MS_PER_SECOND)]
               if report.latency_ms is not None else []),
    ]


def gate_families(result: Any, report: Any) -> list[list[str]]:
    """A gate result: passed or not, and each check."""
    base = {"model": report.model, "device": report.device.name}
    return [
        family("edgeact_gate_passed", "gauge", "1 when every gate check passed", [(base, float(result.passed))]),
        family("edgeact_gate_check_passed", "gauge", "1 when this gate check passed",
               (({**base, "check": check.name}, float(check.passed)) for check in result.checks)),
    ]
