"""Shared pieces of the click commands: calling the API with exit codes, options that take several values."""

from __future__ import annotations

import click

from edgeact.errors import EdgeactError, UsageError


class ByteSize(click.ParamType):
    """A number of bytes: ``8589934592``, ``8GiB``, ``500MB``."""

    name = "SIZE"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        from edgeact.calibration.npz import parse_byte_size

        if isinstance(value, int):
            return value
        try:
            return parse_byte_size(str(value), "--max-array-bytes")
        except UsageError as exc:
            self.fail(str(exc), param, ctx)


def max_array_bytes_option(command):  # type: ignore[no-untyped-def]
    """``--max-array-bytes``: the decompression limit for data files (one definition for every command)."""
    return click.option(
        "--max-array-bytes", type=ByteSize(), default=None,
        help="Largest array a data .npz may declare, e.g. 8GiB (default: $EDGEACT_MAX_ARRAY_BYTES, else 4GiB); "
             "checked from the header before anything is decompressed.")(command)


def recurrent_cells_option(command):  # type: ignore[no-untyped-def]
    """``--recurrent-cells``: the precision of an unrolled LSTM/GRU's gates and state (quantize, sensitivity)."""
    return click.option(
        "--recurrent-cells", type=click.Choice(["auto", "int16", "float", "int8"]), default="auto", show_default=True,
        help="Precision of an unrolled LSTM/GRU's gates and cell state (its output h stays int8): int8 error there "
             "compounds step after step. auto: int16 where the target runs the cell's ops on int16 (as TFLite's "
             "integer LSTM), else float (LiteRT's XNNPACK delegate takes no int16); int8: gate tables, fastest.")(
        command)


def warn_ignored(ctx: click.Context, unused: dict[str, str]) -> None:
    """Warn on stderr about each option the user gave that this run does not use (``name -> why``)."""
    for name, why in unused.items():
        if why and ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE:
            option = next(p for p in ctx.command.params if p.name == name)
            click.echo(f"warning: {option.opts[-1]} is ignored: {why}", err=True)


def run_api(call):  # type: ignore[no-untyped-def]
    """Call the API; its errors become exit codes (usage 2, everything else 1)."""
    try:
        return call()
    except UsageError as exc:
        raise click.UsageError(str(exc)) from exc
    except EdgeactError as exc:
        raise click.ClickException(str(exc)) from exc


class GreedyOption(click.Option):
    """An option that takes every following value up to the next option: ``--stats a.json b.json``.

    Repeating the option (``--stats a.json --stats b.json``) works too.
    """

    def add_to_parser(self, parser, ctx):  # type: ignore[no-untyped-def]
        result = super().add_to_parser(parser, ctx)
        for name in self.opts:
            option = parser._long_opt.get(name) or parser._short_opt.get(name)
            if option is None:
                continue
            original = option.process

            def process(value, state, original=original):  # type: ignore[no-untyped-def]
                values = [value]
                while state.rargs and not state.rargs[0].startswith("-"):
                    values.append(state.rargs.pop(0))
                for item in values:
                    original(item, state)

            option.process = process
        return result
