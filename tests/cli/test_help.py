"""Help examples copy and paste: each command on one line (or continued
with a backslash), never wrapped mid-command by click."""

from __future__ import annotations

import itertools

import click
from click.testing import CliRunner

from calfrehab.cli.main import cli
from calfrehab.engine.trail.schema import FORMAT_VERSION, WRITABLE_VERSIONS


def _paths(cmd: click.Command, path: list[str], ctx: click.Context) -> list[list[str]]:
    out = [path]
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            assert sub is not None
            out += _paths(sub, [*path, name], click.Context(sub))
    return out


def test_every_example_is_one_command_per_line() -> None:
    seen = 0
    for path in _paths(cli, [], click.Context(cli)):
        out = CliRunner().invoke(cli, [*path, "--help"], terminal_width=80).output
        lines = out.splitlines()
        for line, after in itertools.pairwise(lines):
            if not line.strip().startswith("calfrehab "):
                continue
            seen += 1
            indent = len(line) - len(line.lstrip())
            continued = after.strip() and len(after) - len(after.lstrip()) == indent and (
                not after.strip().startswith(("calfrehab ", "#")))
            assert not continued or line.endswith("\\"), (path, line, after)
    assert seen >= 20


def test_audit_migrate_help_names_the_current_format() -> None:
    # It said "the current format (2)" and "recording needs format 2"
    # after formats 3 and 4 had come.
    result = CliRunner().invoke(cli, ["audit", "migrate", "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"to the current format ({FORMAT_VERSION})" in text
    writable = " or ".join(str(v) for v in WRITABLE_VERSIONS)
    assert f"recording needs format {writable}" in text
