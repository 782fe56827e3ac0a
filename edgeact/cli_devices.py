"""``edgeact devices``: the built-in device profiles, one line each (``--json``: every fact as JSON)."""

from __future__ import annotations

import json

import click

from edgeact.cli_support import run_api

DEVICES_EPILOG = """\b
A device name goes to --device (profile-device), and a tflite device's name to --target (quantize: the .tflite's
device; "litert" there is litert-xnnpack); a profile of your own is a .toml path in either place (copy a built-in
one from edgeact/device_profiles and edit its facts).
Examples:
  edgeact devices
  edgeact devices --json | jq '.[] | select(.model_format == "tflite") | .name'
"""


@click.command(epilog=DEVICES_EPILOG)
@click.option("--json", "as_json", is_flag=True, help="Print every profile's summary as a JSON list.")
def devices(as_json: bool) -> None:
    """List the built-in device profiles: format, runtime, emulator arithmetic, int16 support."""
    from edgeact import api

    found = run_api(api.devices)
    if as_json:
        click.echo(json.dumps([d.to_json() for d in found], indent=1, sort_keys=True))
        return
    rows = [("device", "format", "runtime", "arithmetic", "int16", "float islands", "description")]
    rows += [(d.name + (f" (--target {', '.join(d.aliases)})" if d.aliases else ""), d.model_format, d.backend,
              d.arithmetic, d.int16, "yes" if d.float_islands else "no", d.description) for d in found]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
