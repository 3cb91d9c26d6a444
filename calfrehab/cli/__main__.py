"""``python -m calfrehab.cli``: the command line, for when the script is not on PATH."""

from calfrehab.cli.main import cli

cli(prog_name="calfrehab")
