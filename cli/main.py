"""The calfrehab command line: thin commands over :mod:`calfrehab.engine.api`."""

from __future__ import annotations

import click

from calfrehab.cli.case_cmds import explain, next_, schema, validate
from calfrehab.cli.rules_cmd import rules
from calfrehab.engine.decision import ENGINE_VERSION as __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 80})
@click.version_option(__version__, prog_name="calfrehab")
def cli() -> None:
    """Decision support for calf-strengthening rehab: the next step per
    track, and exactly why. The clinician decides.

    Example:

        calfrehab next examples/runner-stuck-on-two-leg.json
    """


cli.add_command(next_)
cli.add_command(explain)
cli.add_command(validate)
cli.add_command(schema)
cli.add_command(rules)


def _optional(module: str, name: str) -> None:
    # Commands developed in their own modules register when present.
    import importlib

    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError:
        return
    cli.add_command(getattr(mod, name))


_optional("calfrehab.cli.audit_cmd", "audit")
_optional("calfrehab.cli.batch_cmd", "batch")
