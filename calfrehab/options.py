"""The options the three front ends share: ``--audit`` and ``--rules``, and
how the service and the app report a domain error (:class:`DomainError`).

``calfrehab next`` (cli/), ``calfrehab serve`` (server/) and ``calfrehab
app`` (app/) name the same trail and the same rules directory with the same
option: one name, one help, one environment variable, one default. Each was
declared three times and had drifted (serve's help named no configured
trail; app's said "decide with" where the CLI's said "evaluate with"), so
they are declared here, once. This module sits below the three front ends
and above the engine (``.importlinter``): the app and the service may not
import the CLI, and the CLI may not be imported by them, so the shared
declaration cannot live in cli/options.py, which re-exports it. Like the
front ends, it uses only the public API.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from calfrehab.engine import api

F = TypeVar("F", bound=Callable[..., Any])

AUDIT_ENVVAR = "CALFREHAB_AUDIT"
RULES_ENVVAR = "CALFREHAB_RULES"
AUDIT_HELP = ("Audit trail database (default: calfrehab.toml's [trail] path, else "
              "~/.local/share/calfrehab/audit.sqlite3).")
RULES_HELP = "Rules directory to evaluate with (default: the shipped rules)."


def rules_option(fn: F) -> F:
    """``--rules DIR``, as every command that decides takes it."""
    return click.option(
        "--rules", "rules_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
        envvar=RULES_ENVVAR, show_envvar=True, help=RULES_HELP,
    )(fn)


class DomainError(click.ClickException):
    """A domain error at the service's or the app's edge (a configuration
    that cannot be used, an account refused), or met while click parses a
    command's options (configured_audit), reported as every CLI command
    reports one (cli/options.py ``domain_errors``): ``error: ...`` on stderr,
    safe for a terminal, exit status 1. Click's own ``Error:`` stays for a
    usage error (an option missing or malformed), as in the CLI."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {api.for_terminal_lines(self.format_message())}", file=file,
                   err=True)


def configured_audit(ctx: click.Context, param: click.Parameter,
                     value: Path | None) -> Path | None:
    """Neither --audit nor CALFREHAB_AUDIT: the trail calfrehab.toml names
    ([trail] path), else None (the library's default location).

    A calfrehab.toml that cannot be used (not TOML, an unknown key, a bad
    time zone, a $CALFREHAB_CONFIG that is not there) is a domain error,
    not a usage error: nothing typed on the command line is wrong. It is
    reported as every command reports one once running (``error: ...``,
    exit 1), where click's UsageError said ``Error: ...`` with exit 2 and
    a "Try --help" that could not help. Read here, while click parses the
    options, so the one place is this callback, for every command that
    takes --audit."""
    if value is not None:
        return value
    try:
        return api.configured_trail()
    except api.CalfrehabError as exc:
        raise DomainError(str(exc)) from None


def audit_option(*, help: str = AUDIT_HELP, sharded: bool = False, from_env: bool = True,
                 configured: bool | None = None) -> Callable[[F], F]:
    """``--audit PATH``, the one definition every command uses. ``sharded``
    also takes a sharded trail's directory (``audit verify``); ``from_env``
    reads CALFREHAB_AUDIT; ``configured`` (by default: as ``from_env``) falls back to
    calfrehab.toml's trail found from the working directory, so every
    command that reads the environment's trail reads the clinic's configured
    one too. ``app`` and ``serve`` pass ``configured=False``: the app finds
    calfrehab.toml from its cases directory, not the working directory, and
    the service reads its trail from its own --config file first; the
    option a user types and its help stay the same."""
    if configured is None:
        configured = from_env
    return click.option(
        "--audit", "audit_path", type=click.Path(dir_okay=sharded, path_type=Path),
        envvar=AUDIT_ENVVAR if from_env else None, show_envvar=from_env,
        callback=configured_audit if configured else None, help=help,
    )
