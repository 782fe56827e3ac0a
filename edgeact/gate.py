"""`edgeact gate`: compare a profile-device report with a committed baseline; exit 3 when quality regressed.

Checks (each a JUnit test case): per output — SQNR may drop at most ``max_sqnr_drop`` dB, top-1 agreement must stay
at or above ``min_top1_agreement`` (default: the baseline's minus one point); per layer (``per_layer``) — SQNR may drop
at most ``max_layer_sqnr_drop`` dB; per activation — RMS error may grow at most 5% and saturation 5 points; latency
(only with ``max_latency_ratio``) — median at most that many times the baseline's.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from edgeact.errors import EdgeactError, UsageError
from edgeact.io import atomic_write

REPORT_SCHEMA = 1


class GateInputError(EdgeactError):
    """A report or baseline that cannot be compared (corrupt, other schema, other device)."""


@dataclass(frozen=True)
class Thresholds:
    max_sqnr_drop: float = 0.5
    min_top1_agreement: float | None = None  # None: the baseline's minus 0.01
    max_latency_ratio: float | None = None  # None: latency is reported, not gated
    per_layer: bool = False
    max_layer_sqnr_drop: float = 1.0
    max_activation_error_growth: float = 0.05
    max_saturation_increase: float = 0.05


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    message: str


@dataclass
class GateResult:
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]


def load_report(path: str | Path, what: str) -> dict[str, Any]:
    try:
        report = json.loads(Path(path).read_text())
        if not isinstance(report, dict) or "outputs" not in report or "device" not in report:
            raise ValueError("no 'outputs' or 'device'")
        return report
    except (OSError, ValueError) as exc:
        raise GateInputError(f"{path}: not a profile-device report usable as the {what} ({exc})") from exc


def _config_table(path: Path, explicit: bool) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from exc
    table = data.get("tool", {}).get("edgeact", {}).get("gate")
    if table is None and explicit:  # a dedicated file: a [gate] table, or the settings at the top level
        table = data.get("gate", data)
    return table or {}


def thresholds_from(config: str | Path | None, **overrides: Any) -> Thresholds:
    """Defaults, then ``[tool.edgeact.gate]`` of ./pyproject.toml (or ``config``: a TOML file), then explicit
    overrides (command-line flags)."""
    path = Path(config) if config is not None else Path("pyproject.toml")
    if config is not None and not path.is_file():
        raise UsageError(f"{path}: no such gate configuration file")
    values = _config_table(path, config is not None) if path.is_file() else {}
    known = {f.name for f in fields(Thresholds)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UsageError(f"{path}: unknown gate setting(s) {unknown}; known: {', '.join(sorted(known))}")
    values = {**values, **{k: v for k, v in overrides.items() if v is not None}}
    return replace(Thresholds(), **values)


def _compatible(report: dict[str, Any], baseline: dict[str, Any], allow_mismatch: bool) -> None:
    problems = []
    if report.get("schema_version") != baseline.get("schema_version"):
        problems.append(f"report schema {report.get('schema_version')} vs baseline {baseline.get('schema_version')}")
    if report["device"].get("name") != baseline["device"].get("name"):
        problems.append(f"device {report['device'].get('name')!r} vs baseline {baseline['device'].get('name')!r}")
    if problems and not allow_mismatch:
        raise GateInputError("the report and the baseline do not compare: " + "; ".join(problems)
                             + " (pass --allow-mismatch to compare anyway)")


def _output_checks(report: dict[str, Any], baseline: dict[str, Any], t: Thresholds) -> list[Check]:
    checks = []
    for name, base in baseline["outputs"].items():
        now = report["outputs"].get(name)
        if now is None:
            checks.append(Check(f"output {name}: present", False, "missing from the report"))
            continue
        drop = base["sqnr_db"] - now["sqnr_db"]
        checks.append(Check(f"output {name}: SQNR", drop <= t.max_sqnr_drop,
                            f"{now['sqnr_db']:.2f} dB vs baseline {base['sqnr_db']:.2f} dB (drop {drop:.2f}, "
                            f"allowed {t.max_sqnr_drop})"))
        if base.get("top1_agreement") is not None and now.get("top1_agreement") is not None:
            floor = t.min_top1_agreement if t.min_top1_agreement is not None else base["top1_agreement"] - 0.01
            checks.append(Check(f"output {name}: top-1 agreement", now["top1_agreement"] >= floor,
                                f"{now['top1_agreement']:.2%} (minimum {floor:.2%})"))
    return checks


def _layer_checks(report: dict[str, Any], baseline: dict[str, Any], t: Thresholds) -> list[Check]:
    now = {layer["tensor"]: layer for layer in report.get("layers", [])}
    checks = []
    for base in baseline.get("layers", []):
        layer = now.get(base["tensor"])
        if layer is None:
            checks.append(Check(f"layer {base['tensor']}: present", False, "missing from the report"))
            continue
        drop = base["sqnr_db"] - layer["sqnr_db"]
        checks.append(Check(f"layer {base['tensor']}: SQNR", drop <= t.max_layer_sqnr_drop,
                            f"{layer['sqnr_db']:.2f} dB vs baseline {base['sqnr_db']:.2f} dB (drop {drop:.2f}, "
                            f"allowed {t.max_layer_sqnr_drop})"))
    return checks


def _activation_checks(report: dict[str, Any], baseline: dict[str, Any], t: Thresholds) -> list[Check]:
    now = {act["node"]: act for act in report.get("activations", [])}
    checks = []
    for base in baseline.get("activations", []):
        act = now.get(base["node"])
        if act is None:
            continue  # a renamed or removed activation shows in the output checks
        limit = base["rms_error"] * (1 + t.max_activation_error_growth)
        checks.append(Check(f"activation {base['node']}: error", act["rms_error"] <= limit,
                            f"rms {act['rms_error']:.4g} vs baseline {base['rms_error']:.4g} (limit {limit:.4g})"))
        if base.get("saturation_rate") is not None and act.get("saturation_rate") is not None:
            limit = base["saturation_rate"] + t.max_saturation_increase
            checks.append(Check(f"activation {base['node']}: saturation", act["saturation_rate"] <= limit,
                                f"{act['saturation_rate']:.2%} vs baseline {base['saturation_rate']:.2%}"))
    return checks


def gate(report: dict[str, Any], baseline: dict[str, Any], thresholds: Thresholds,
         allow_mismatch: bool = False) -> GateResult:
    """Every check of ``report`` against ``baseline``."""
    _compatible(report, baseline, allow_mismatch)
    result = GateResult(_output_checks(report, baseline, thresholds) + _activation_checks(report, baseline, thresholds))
    if thresholds.per_layer:
        result.checks += _layer_checks(report, baseline, thresholds)
    if thresholds.max_latency_ratio is not None and report.get("latency_ms") and baseline.get("latency_ms"):
        ratio = report["latency_ms"]["median"] / baseline["latency_ms"]["median"]
        result.checks.append(Check("latency: median", ratio <= thresholds.max_latency_ratio,
                                   f"{ratio:.2f}x the baseline (allowed {thresholds.max_latency_ratio}x)"))
    return result


def write_junit(result: GateResult, path: str | Path, suite: str) -> Path:
    root = ElementTree.Element("testsuite", name=suite, tests=str(len(result.checks)),
                               failures=str(len(result.failures)), errors="0")
    for check in result.checks:
        case = ElementTree.SubElement(root, "testcase", classname=suite, name=check.name)
        if not check.passed:
            ElementTree.SubElement(case, "failure", message=check.message).text = check.message
        else:
            ElementTree.SubElement(case, "system-out").text = check.message
    ElementTree.indent(root)
    text = ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def markdown(result: GateResult, report: dict[str, Any]) -> str:
    verdict = "passed" if result.passed else f"**{len(result.failures)} regression(s)**"
    lines = [f"### edgeact gate: {report['model']} on {report['device']['name']} — {verdict}", "",
             "| check | result | detail |", "|---|---|---|"]
    for check in sorted(result.checks, key=lambda c: c.passed):
        lines.append(f"| {check.name} | {'pass' if check.passed else '**FAIL**'} | {check.message} |")
    return "\n".join(lines) + "\n"
