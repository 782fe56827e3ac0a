"""`edgeact gate`: compare a profile-device report with a committed baseline; exit 3 when quality regressed.

Checks (each a JUnit test case): per output — SQNR may drop at most ``max_sqnr_drop`` dB, top-1 agreement must stay
at or above ``min_top1_agreement`` (default: the baseline's minus one point); per layer (``per_layer``) — SQNR may drop
at most ``max_layer_sqnr_drop`` dB; per activation — RMS error may grow at most 5% and saturation 5 points; latency
(only with ``max_latency_ratio``) — median at most that many times the baseline's.

Both files are read as :class:`ProfileReport` first (:func:`validate_report`: errors name the file and the field,
from the same classes as docs/schema/profile-report.schema.json). A report of another
device, an unknown schema or another float model (the ``fingerprint`` profile-device writes: the float model's hash
and its inputs and outputs) is refused unless ``allow_mismatch``; a report without a fingerprint (schema 1) is
compared with a warning.
"""

from __future__ import annotations

import json
import math
import shutil
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from edgeact.documents.profile_report import READABLE_SCHEMAS, ProfileReport, SignatureEntry
from edgeact.documents.typed_json import json_kind
from edgeact.errors import DocumentError, GateInputError, UsageError
from edgeact.io import OutputSet, atomic_write, atomic_write_text, check_outputs
from edgeact.reports.openmetrics import document, gate_families, profile_families


@dataclass(frozen=True)
class Thresholds:
    max_sqnr_drop: float = 0.5
    min_top1_agreement: float | None = None  # None: the baseline's minus 0.01
    max_latency_ratio: float | None = None  # None: latency is reported, not gated
    per_layer: bool = False
    max_layer_sqnr_drop: float = 1.0
    max_activation_error_growth: float = 0.05
    max_saturation_increase: float = 0.05


_LIMITS = {  # setting: (lowest, highest, lowest allowed itself); per_layer is a boolean
    "max_sqnr_drop": (0.0, math.inf, True), "min_top1_agreement": (0.0, 1.0, True),
    "max_latency_ratio": (0.0, math.inf, False), "max_layer_sqnr_drop": (0.0, math.inf, True),
    "max_activation_error_growth": (0.0, math.inf, True), "max_saturation_increase": (0.0, math.inf, True),
}


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    message: str


@dataclass
class GateResult:
    checks: list[Check] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]


def _unusable(path: str | Path, role: str, detail: str) -> GateInputError:
    return GateInputError(f"{path}: {detail} (not a profile-device report usable as the {role})")


def validate_report(data: Any, path: str | Path, role: str) -> ProfileReport:
    """``data`` (parsed JSON) read as a report; a :class:`GateInputError` names the file and the field
    (``b.json: outputs.logits.sqnr_db is a string, expected a number``)."""
    try:
        report = ProfileReport.from_json(data)
    except DocumentError as exc:
        raise _unusable(path, role, str(exc)) from exc
    if not report.outputs:
        raise _unusable(path, role, "outputs is empty (a report compares at least one output)")
    return report


def load_report(path: str | Path, role: str) -> ProfileReport:
    """Read and validate a profile-device report; ``role`` (report, baseline) is for messages."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise _unusable(path, role, "no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise _unusable(path, role, f"cannot read it: {getattr(exc, 'strerror', None) or exc}") from exc
    if not text.strip():
        raise _unusable(path, role, "an empty file")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _unusable(path, role, f"not JSON: {exc}") from exc
    return validate_report(data, path, role)


def update_baseline(report: str | Path, baseline: str | Path) -> bool:
    """Replace ``baseline`` with ``report`` (validated first, written atomically); False when ``report`` already
    is the baseline file (same path or a link to it): nothing to do."""
    load_report(report, "report")
    try:
        check_outputs({"--baseline": baseline}, [report])
    except UsageError:  # one output, one input: they are the same file
        return False
    atomic_write(baseline, lambda tmp: shutil.copyfile(report, tmp))
    return True


def _config_table(path: Path, explicit: bool) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from exc
    table = data
    for key in ("tool", "edgeact", "gate"):
        table = table.get(key) if isinstance(table, dict) else None
    where = "[tool.edgeact.gate]"
    if table is None and explicit:  # a dedicated file: a [gate] table, or the settings at the top level
        table, where = (data["gate"], "[gate]") if "gate" in data else (data, "the top level")
    if table is not None and not isinstance(table, dict):
        raise UsageError(f"{path}: {where} is {json_kind(table)}, expected a table of gate settings")
    return table or {}


def _checked_setting(name: str, value: Any, label: str) -> Any:
    """One setting's type and range; a wrong one is a usage error naming ``label`` (``gate.toml: max_sqnr_drop``,
    ``--max-sqnr-drop``)."""
    if name == "per_layer":
        if not isinstance(value, bool):
            raise UsageError(f"{label} is {json_kind(value)}, expected true or false")
        return value
    low, high, closed = _LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"{label} is {json_kind(value)}, expected a number")
    if math.isnan(value):
        raise UsageError(f"{label} is NaN, expected a number")
    if value < low or value > high or (value == low and not closed):
        bound = f"{'>=' if closed else '>'} {low:g}" + (f" and <= {high:g}" if high < math.inf else "")
        raise UsageError(f"{label} = {value!r} is out of range; it must be {bound}")
    return float(value)


def config_file(config: str | Path | None) -> Path | None:
    """The file gate settings come from: ``config``, else ./pyproject.toml when there is one."""
    if config is not None:
        return Path(config)
    return Path("pyproject.toml") if Path("pyproject.toml").is_file() else None


def thresholds_from(config: str | Path | None, **overrides: Any) -> Thresholds:
    """Defaults, then ``[tool.edgeact.gate]`` of ./pyproject.toml (or ``config``: a TOML file), then explicit
    overrides (command-line flags); types and ranges checked."""
    path = config_file(config)
    if config is not None and not path.is_file():
        raise UsageError(f"{path}: no such gate configuration file")
    values = _config_table(path, config is not None) if path is not None else {}
    known = {f.name for f in fields(Thresholds)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UsageError(f"{path}: unknown gate setting(s) {unknown}; known: {', '.join(sorted(known))}")
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise UsageError(f"unknown gate setting(s) {unknown}; known: {', '.join(sorted(known))}")
    checked = {name: _checked_setting(name, value, f"{path}: {name}") for name, value in values.items()}
    checked.update({name: _checked_setting(name, value, f"--{name.replace('_', '-')}")
                    for name, value in overrides.items() if value is not None})
    return replace(Thresholds(), **checked)


def _signature_text(entries: list[SignatureEntry]) -> str:
    return ", ".join(f"{e.name} {e.dtype or '?'} {e.shape if e.shape is not None else '?'}"
                     for e in sorted(entries, key=lambda e: e.name))


def _model_problems(report: ProfileReport, baseline: ProfileReport, labels: tuple[str, str],
                    warnings: list[str]) -> list[str]:
    """How the float models behind the two reports differ (hash, inputs, outputs); a warning when unknown."""
    mine, theirs = report.fingerprint, baseline.fingerprint
    if mine is None or theirs is None:
        missing = " and ".join(label for label, found in zip(labels, (mine, theirs), strict=True) if found is None)
        warnings.append(f"cannot check that the report and the baseline come from the same float model: {missing} "
                        "carries no model fingerprint (written before report schema 2; profile again, and "
                        "update the baseline, to add one)")
        return []
    problems = []
    a, b = mine.float_model_sha256, theirs.float_model_sha256
    if a is not None and b is not None and a != b:
        problems.append(f"float model {report.baseline} (sha256 {a[:12]}) vs baseline's "
                        f"{baseline.baseline} (sha256 {b[:12]})")
    elif a is None or b is None:
        warnings.append("cannot compare the float models' hashes: a report carries none")
    for side in ("inputs", "outputs"):
        if _signature_text(getattr(mine, side)) != _signature_text(getattr(theirs, side)):
            problems.append(f"{side} {_signature_text(getattr(mine, side))} vs baseline's "
                            f"{_signature_text(getattr(theirs, side))}")
    return problems


def _compatible(report: ProfileReport, baseline: ProfileReport, allow_mismatch: bool,
                labels: tuple[str, str], warnings: list[str]) -> None:
    problems = []
    for label, data in zip(labels, (report, baseline), strict=True):
        if data.schema_version not in READABLE_SCHEMAS:
            problems.append(f"{label} has report schema {data.schema_version} (this edgeact reads "
                            f"{', '.join(map(str, READABLE_SCHEMAS))})")
    if report.device.name != baseline.device.name:
        problems.append(f"device {report.device.name!r} vs baseline {baseline.device.name!r}")
    model_problems = _model_problems(report, baseline, labels, warnings)
    if model_problems:
        problems.append("not the same model: " + "; ".join(model_problems))
    if problems and not allow_mismatch:
        hint = ", or --update-baseline if the model changed on purpose" if model_problems else ""
        raise GateInputError(f"{labels[0]} and {labels[1]} do not compare: " + "; ".join(problems)
                             + f" (pass --allow-mismatch to compare anyway{hint})")
    warnings += [f"compared anyway (--allow-mismatch): {problem}" for problem in problems]


def _drop(base: float, now: float) -> float:
    """How much ``now`` lost against ``base`` (0 when equal, also for two infinite SQNRs of exact outputs)."""
    return 0.0 if base == now else base - now


def _sqnr_check(what: str, base_db: float, now_db: float, allowed: float) -> Check:
    """``what`` may lose at most ``allowed`` dB of SQNR against the baseline."""
    drop = _drop(base_db, now_db)
    return Check(f"{what}: SQNR", drop <= allowed,
                 f"{now_db:.2f} dB vs baseline {base_db:.2f} dB (drop {drop:.2f}, allowed {allowed})")


def _output_checks(report: ProfileReport, baseline: ProfileReport, t: Thresholds) -> list[Check]:
    checks = []
    for name, base in baseline.outputs.items():
        now = report.outputs.get(name)
        if now is None:
            checks.append(Check(f"output {name}: present", False, "missing from the report"))
            continue
        checks.append(_sqnr_check(f"output {name}", base.sqnr_db, now.sqnr_db, t.max_sqnr_drop))
        if base.top1_agreement is not None and now.top1_agreement is not None:
            floor = t.min_top1_agreement if t.min_top1_agreement is not None else base.top1_agreement - 0.01
            checks.append(Check(f"output {name}: top-1 agreement", now.top1_agreement >= floor,
                                f"{now.top1_agreement:.2%} (minimum {floor:.2%})"))
    return checks


def _layer_checks(report: ProfileReport, baseline: ProfileReport, t: Thresholds) -> list[Check]:
    now = {layer.tensor: layer for layer in report.layers}
    checks = []
    for base in baseline.layers:
        layer = now.get(base.tensor)
        if layer is None:
            checks.append(Check(f"layer {base.tensor}: present", False, "missing from the report"))
            continue
        if base.sqnr_db is None:
            continue  # not measured in the baseline (no float counterpart)
        if layer.sqnr_db is None:
            checks.append(Check(f"layer {base.tensor}: SQNR", False, "not measured in the report"))
            continue
        checks.append(_sqnr_check(f"layer {base.tensor}", base.sqnr_db, layer.sqnr_db, t.max_layer_sqnr_drop))
    return checks


def _activation_checks(report: ProfileReport, baseline: ProfileReport, t: Thresholds) -> list[Check]:
    now = {act.node: act for act in report.activations}
    checks = []
    for base in baseline.activations:
        act = now.get(base.node)
        if act is None:
            continue  # a renamed or removed activation shows in the output checks
        limit = base.rms_error * (1 + t.max_activation_error_growth)
        checks.append(Check(f"activation {base.node}: error", act.rms_error <= limit,
                            f"rms {act.rms_error:.4g} vs baseline {base.rms_error:.4g} (limit {limit:.4g})"))
        if base.saturation_rate is not None and act.saturation_rate is not None:
            limit = base.saturation_rate + t.max_saturation_increase
            checks.append(Check(f"activation {base.node}: saturation", act.saturation_rate <= limit,
                                f"{act.saturation_rate:.2%} vs baseline {base.saturation_rate:.2%}"))
    return checks


def _latency_check(report: ProfileReport, baseline: ProfileReport, t: Thresholds,
                   warnings: list[str]) -> list[Check]:
    if t.max_latency_ratio is None:
        return []
    now, base = report.latency_ms, baseline.latency_ms
    if now is None or base is None or base.median <= 0:
        missing = "the report" if now is None else "the baseline"
        warnings.append(f"max_latency_ratio is ignored: {missing} has no latency (an emulated device has no timing)")
        return []
    ratio = now.median / base.median
    return [Check("latency: median", ratio <= t.max_latency_ratio,
                  f"{ratio:.2f}x the baseline (allowed {t.max_latency_ratio}x)")]


def _ignored(report: ProfileReport, baseline: ProfileReport, t: Thresholds) -> list[str]:
    """Settings that gate nothing for these reports (said, not silently skipped)."""
    warnings = []
    if t.per_layer and not baseline.layers:
        warnings.append("per_layer is ignored: the baseline has no layers (profiled without --per-layer)")
    both = [name for name, o in baseline.outputs.items()
            if o.top1_agreement is not None and name in report.outputs
            and report.outputs[name].top1_agreement is not None]
    if t.min_top1_agreement is not None and not both:
        warnings.append("min_top1_agreement is ignored: no output has a top-1 agreement in both reports")
    return warnings


def gate(report: ProfileReport, baseline: ProfileReport, thresholds: Thresholds, allow_mismatch: bool = False,
         labels: tuple[str, str] = ("the report", "the baseline")) -> GateResult:
    """Every check of ``report`` against ``baseline`` (both read by :func:`validate_report`); ``labels`` name
    them in messages. Refuses (:class:`GateInputError`) reports of another device, schema or float model unless
    ``allow_mismatch``."""
    result = GateResult()
    _compatible(report, baseline, allow_mismatch, labels, result.warnings)
    result.checks = _output_checks(report, baseline, thresholds) + _activation_checks(report, baseline, thresholds)
    if thresholds.per_layer:
        result.checks += _layer_checks(report, baseline, thresholds)
    result.checks += _latency_check(report, baseline, thresholds, result.warnings)
    result.warnings += _ignored(report, baseline, thresholds)
    return result


def write_junit(result: GateResult, path: str | Path, suite: str) -> Path:
    return atomic_write_text(path, junit_xml(result, suite))


def write_gate_outputs(result: GateResult, report: ProfileReport, junit: Path | None, markdown_path: Path | None,
                       suite: str, metrics: Path | None = None) -> None:
    """The JUnit XML, the markdown summary and the OpenMetrics text (the report's numbers and the verdict) as one
    set: all appear, or none."""
    with OutputSet() as outputs:
        if junit is not None:
            outputs.add_text(junit, junit_xml(result, suite))
        if markdown_path is not None:
            outputs.add_text(markdown_path, markdown(result, report))
        if metrics is not None:
            outputs.add_text(metrics, document(profile_families(report) + gate_families(result, report)))
        outputs.commit()


def junit_xml(result: GateResult, suite: str) -> str:
    """One test case per check (a failure for each failed check)."""
    root = ElementTree.Element("testsuite", name=suite, tests=str(len(result.checks)),
                               failures=str(len(result.failures)), errors="0")
    for check in result.checks:
        case = ElementTree.SubElement(root, "testcase", classname=suite, name=check.name)
        if not check.passed:
            ElementTree.SubElement(case, "failure", message=check.message).text = check.message
        else:
            ElementTree.SubElement(case, "system-out").text = check.message
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def markdown(result: GateResult, report: ProfileReport) -> str:
    verdict = "passed" if result.passed else f"**{len(result.failures)} regression(s)**"
    lines = [f"### edgeact gate: {report.model} on {report.device.name} — {verdict}", ""]
    lines += [f"> warning: {warning}" for warning in result.warnings] + ([""] if result.warnings else [])
    lines += ["| check | result | detail |", "|---|---|---|"]
    for check in sorted(result.checks, key=lambda c: c.passed):
        lines.append(f"| {check.name} | {'pass' if check.passed else '**FAIL**'} | {check.message} |")
    return "\n".join(lines) + "\n"
