"""The ``edgeact`` command line: parse, call the API, print. Exit codes: 0 ok, 1 error, 2 usage, 3 gate."""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
from pathlib import Path

import click

from edgeact import __version__
from edgeact.activations import REGISTRY
from edgeact.cli_devices import devices
from edgeact.cli_drift import drift
from edgeact.cli_gate import gate
from edgeact.cli_profile import profile_device
from edgeact.cli_quantize import calibrate, quantize
from edgeact.cli_sensitivity import sensitivity
from edgeact.cli_support import run_api
from edgeact.lut import BITS_DTYPE, LutReport, build_lut
from edgeact.numerics.qparams import integer_range
from edgeact.numerics.tables import INT16_CONVENTIONS, Convention
from edgeact.runtimes.native_output import VERBOSE_ENV

EXIT_ERROR = 1
EXIT_USAGE = 2


class ActivationName(click.ParamType):
    """An activation from the registry; an unknown name lists the known ones."""

    name = "FUNC"

    def convert(self, value: str, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if value not in REGISTRY:
            self.fail(f"unknown function {value!r}; known: {', '.join(sorted(REGISTRY))}", param, ctx)
        return value


class PositiveFloat(click.ParamType):
    """A finite number > 0 (a scale)."""

    name = "S"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not (math.isfinite(number) and number > 0):
            self.fail(f"must be a finite number > 0, got {value!r}", param, ctx)
        return number


class ScaleOrAuto(PositiveFloat):
    """A scale, or ``auto``."""

    name = "S|auto"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float | str:
        if isinstance(value, str) and value.lower() == "auto":
            return "auto"
        return super().convert(value, param, ctx)


class ActivationParam(click.ParamType):
    """``KEY=VALUE`` for an activation parameter such as ``alpha=0.2``."""

    name = "KEY=VALUE"

    def convert(self, value: str, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, float]:
        key, sep, number = value.partition("=")
        try:
            if not sep:
                raise ValueError
            return key.strip(), float(number)
        except ValueError:
            self.fail(f"expected KEY=VALUE with a number, e.g. alpha=0.2; got {value!r}", param, ctx)


def _check_zero_point(ctx: click.Context, name: str, value: int, bits: int) -> None:
    qmin, qmax = integer_range(BITS_DTYPE[bits])
    if not qmin <= value <= qmax:
        raise click.BadParameter(
            f"{value} is outside [{qmin}, {qmax}] for --bits {bits}", ctx=ctx, param_hint=f"'--{name}'"
        )


class _Main(click.Group):
    """The command group: an unexpected exception is one line (exit 1), its traceback only with --debug."""

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence of the CLI
            if ctx.params.get("debug") or os.environ.get("EDGEACT_DEBUG"):
                raise
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise click.ClickException(
                f"internal error ({type(exc).__name__}: {message}); this is a bug in edgeact: rerun with "
                "'edgeact --debug ...' for the traceback and report it"
            ) from exc


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgeact")
@click.option("--debug", is_flag=True, help="Show the full traceback of an unexpected error.")
@click.option("--verbose", is_flag=True, help="Let the runtimes' own messages through (LiteRT's INFO lines).")
def main(debug: bool, verbose: bool) -> None:
    """edgeact: int8 models with saturating and smooth activations, exact on the device.

    \b
    Commands:
      quantize   ONNX model + calibration data -> int8 QDQ / table ONNX + calibration record
      calibrate  collect tensor statistics for one data shard (merge them with quantize --stats)
      profile-device  int8 model on a device's runtime vs float32: per output, per layer, hazards, latency
      gate       a profile-device report against a committed baseline: exit 3 on a quality regression
      sensitivity  which tensor groups int8 hurts most (and quantize --budget promotes the fewest of them)
      drift      new data against a model's calibration: clipping, saturation, PSI, NaN/Inf; exit 3 when it moved
      devices    the built-in device profiles: format, runtime, int16 support
      lut        build one activation's exact lookup table and compare it with the int8 error floor
    Run 'edgeact COMMAND --help' for examples.
    """
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
    _exit_cleanly_on_sigterm()


def _exit_cleanly_on_sigterm() -> None:
    """SIGTERM (CI timeouts, ``kill``) exits through Python (code 143) so staged temp files are removed."""
    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, terminate)


LUT_EPILOG = """\b
Examples:
  edgeact lut tanh --in-scale 0.03125 --in-zero-point 0 --out-scale 0.0078125 --out-zero-point 0
  edgeact lut gelu --in-scale 0.05 --in-zero-point -20 --out-scale auto --plot gelu.png
  edgeact lut sigmoid --in-scale 0.0625 --in-zero-point 0 --out-scale 0.00390625 \\
          --out-zero-point -128 --convention xnnpack --json
  edgeact lut tanh --bits 16 --in-scale 0.000122 --in-zero-point 0 --out-scale auto
  edgeact lut leaky_relu --param alpha=0.2 --in-scale 0.05 --in-zero-point 0 --out-scale auto

\b
Conventions (how the runtime that builds the table rounds):
  ideal    float64, round half away from zero (the exact table edgeact lowers to GATHER)
  litert   LiteRT's builtin int8 kernels (TANH, LOGISTIC, GELU): float32, half away from zero
  xnnpack  XNNPACK's delegated TANH/LOGISTIC: float32 (sigmoid in double), ties to even
"""


@main.command(epilog=LUT_EPILOG)
@click.argument("function", type=ActivationName())
@click.option("--in-scale", required=True, type=PositiveFloat(), help="Input grid scale.")
@click.option("--in-zero-point", required=True, type=int, help="Input grid zero point.")
@click.option("--out-scale", default="auto", show_default=True, type=ScaleOrAuto(),
              help="Output grid scale, or 'auto' to cover f over the input grid.")
@click.option("--out-zero-point", default=0, show_default=True, type=int,
              help="Output grid zero point (ignored with --out-scale auto).")
@click.option("--convention", type=click.Choice([c.value for c in Convention]), default="ideal",
              show_default=True, help="Rounding convention of the runtime that builds the table.")
@click.option("--bits", type=click.Choice(["8", "16"]), default="8", show_default=True,
              help="8: 256-entry int8 table; 16: TFLite's 513-knot interpolated int16 table.")
@click.option("--param", "params", multiple=True, type=ActivationParam(),
              help="Activation parameter, e.g. alpha=0.2 (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the summary.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a PNG: f, the table's output and the error band.")
@click.pass_context
def lut(
    ctx: click.Context,
    function: str,
    in_scale: float,
    in_zero_point: int,
    out_scale: float | str,
    out_zero_point: int,
    convention: str,
    bits: str,
    params: tuple[tuple[str, float], ...],
    as_json: bool,
    plot: Path | None,
) -> None:
    """Build FUNC's exact table between two grids and print its error next to the floor."""
    nbits = int(bits)
    _check_zero_point(ctx, "in-zero-point", in_zero_point, nbits)
    if out_scale != "auto":
        _check_zero_point(ctx, "out-zero-point", out_zero_point, nbits)
    if nbits == 16 and Convention(convention) not in INT16_CONVENTIONS:
        raise click.BadParameter(
            f"{convention!r} has no int16 table; use one of {', '.join(c.value for c in INT16_CONVENTIONS)}",
            ctx=ctx, param_hint="'--convention'",
        )
    report = run_api(lambda: build_lut(function, in_scale, in_zero_point, out_scale, out_zero_point,
                                    convention, nbits, **dict(params)))
    if plot is not None:
        from edgeact.reports.plots import plot_lut

        run_api(lambda: plot_lut(report, plot))
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=None, sort_keys=True))
        return
    click.echo(_lut_summary(report))
    if plot is not None:
        click.echo(f"plot written to {plot}")


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.4g}"


def _lut_summary(report: LutReport) -> str:
    t, e = report.table, report.error
    lo, hi = t.in_q.real_range
    lines = [
        f"{t.function} table, int{t.bits}, convention {t.convention.value}",
        f"  input grid   scale {t.in_q.scale:.6g}  zero point {t.in_q.zero_point:>6}  covers [{lo:.4g}, {hi:.4g}]",
        f"  output grid  scale {t.out_q.scale:.6g}  zero point {t.out_q.zero_point:>6}"
        + ("  (auto: covers f over the input grid)" if report.out_scale_chosen else ""),
        f"  saturation   below {_fmt(report.saturation_bounds[0])}, above {_fmt(report.saturation_bounds[1])}"
        " (output within half a step of its limit)",
        "",
        f"  {'error (output units)':<26}{'measured':>12}{'floor/bound':>14}{'ratio':>8}",
    ]
    rows = [
        ("per code, max", e.per_code_max_error, e.per_code_bound),
        ("end to end, max", e.max_abs_error, e.bound),
        ("end to end, RMS", e.rms_error, e.rms_floor),
    ]
    for label, measured, floor in rows:
        lines.append(f"  {label:<26}{measured:>12.4g}{floor:>14.4g}{measured / floor:>8.2f}")
    if e.clamp_error > 0:
        lines.append(f"  clamp: f leaves the output grid by up to {e.clamp_error:.4g}")
    if t.bits == 16:
        lines.append(f"  int16 interpolation adds up to {e.interpolation_bound:.4g} to the bound")
    return "\n".join(lines)


main.add_command(calibrate)
main.add_command(quantize)
main.add_command(profile_device)
main.add_command(gate)
main.add_command(sensitivity)
main.add_command(devices)
main.add_command(drift)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
