"""The config command: which calfrehab.toml is in force, and its values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from calfrehab.cli.options import domain_errors, json_option
from calfrehab.cli.stdout import say
from calfrehab.engine import api


def _toml_value(value: Any) -> str:
    # JSON's string spelling is TOML's basic string (escapes included).
    return json.dumps(value, ensure_ascii=False)


@click.command()
@click.argument("near", metavar="[CASE|DIR]", required=False,
                type=click.Path(path_type=Path))
@json_option
@domain_errors(exit_code=1)
def config(near: Path | None, as_json: bool) -> None:
    """Show the clinic configuration in force: which file, and its values.

    calfrehab.toml is looked for in $CALFREHAB_CONFIG, then beside the case
    file (or in the directory) given, the working directory, and the user's
    configuration directory; the first found is used. Unset values are
    shown commented out with their defaults. Exit 1 when the file in force
    is not valid (the message names the key).

    Example:

        calfrehab config cases/ana.json
    """
    loaded = api.load_config(near)
    values = loaded.shown()
    today = api.clinic_today(loaded.config)
    if as_json:
        say(json.dumps({"path": str(loaded.path) if loaded.path else None,
                               "searched": [str(p) for p in api.candidate_paths(near)],
                               "today": today.isoformat(), "values": values},
                              indent=2, ensure_ascii=False))
        return
    if loaded.path is not None:
        say(f"# in force: {api.for_terminal(str(loaded.path))}")
    else:
        say("# no calfrehab.toml found; the defaults are in force. Looked in:")
        for p in api.candidate_paths(near):
            say(f"#   {api.for_terminal(str(p))}")
    zone = loaded.config.clinic.time_zone or "this machine's time zone"
    say(f"# today in the clinic ({api.for_terminal(zone)}): {today.isoformat()}")
    for section, keys in values.items():
        say(f"\n[{section}]")
        for key, value in keys.items():
            if value is None:
                say(f"# {key} = (not set)")
            else:
                say(f"{key} = {api.for_terminal(_toml_value(value))}")
