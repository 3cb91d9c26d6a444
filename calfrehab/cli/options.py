"""Option decorators shared by the commands (the sqlite-utils way), and the
one place domain errors become clean messages."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from calfrehab.engine import api
from calfrehab.engine.api import CalfrehabError, CaseValidationError

F = TypeVar("F", bound=Callable[..., Any])


def rules_option(fn: F) -> F:
    return click.option(
        "--rules", "rules_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
        envvar="CALFREHAB_RULES", show_envvar=True,
        help="Rules directory to evaluate with (default: the shipped rules).",
    )(fn)


def confirm_unusual_option(fn: F) -> F:
    return click.option(
        "--confirm-unusual", is_flag=True,
        help="Enter values outside the plausible ranges (rules/records/plausibility.yaml) "
             "after checking them.")(fn)


def output_option(*decls: str, dest: str = "out", required: bool = False,
                  help: str = "File to write.", case_file: bool = False,
                  keep_force: bool = False) -> Callable[[F], F]:
    """An output file option (``-o/--output``, ``--out``: ``decls``) with
    its ``--force``, the one way every command writes a file: an existing
    file is refused unless --force, and a case file is never replaced by
    another output (``case_file``: the output is itself a case, whose
    patient the command checks as it writes; it then needs ``keep_force``
    to receive ``force``). Checked as the command line is read, before any
    work."""

    def check(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
        force = bool(ctx.params.get("force"))
        if value is not None and not case_file:
            try:
                api.check_replace(value, force=force)
            except CalfrehabError as exc:
                raise click.BadParameter(api.for_terminal(str(exc), limit=None), ctx=ctx,
                                         param=param) from None
        elif value is not None and not force and value.exists():
            raise click.BadParameter(
                f"refusing to write {api.for_terminal(str(value), limit=None)}: it exists; "
                "give --force to replace it (only with the same patient's case), or choose "
                "another output file", ctx=ctx, param=param)
        return value

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            if not keep_force:
                kwargs.pop("force", None)
            return fn(*args, **kwargs)

        out = click.option(*decls, dest, type=click.Path(dir_okay=False, path_type=Path),
                           required=required, callback=check,
                           help=help + " An existing file is refused unless --force.")(inner)
        # Eager: its value is known when the output's check runs.
        out = click.option("--force", is_flag=True, is_eager=True,
                           help="Replace the output file if it exists (never a case file "
                                "of another patient).")(out)
        return out  # type: ignore[return-value]

    return wrap


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")(fn)


def person_text(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A clinician's name or an override reason: recorded in the audit trail
    as UTF-8 text. Bytes that are not UTF-8 (a Latin-1 terminal, a script
    passing raw bytes) reach Python as lone surrogates; they are refused
    here, naming the option, rather than failing deep in the trail."""
    if value is None:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise click.BadParameter(
            f"{api.for_terminal(value)} is not valid UTF-8 text; set the terminal's "
            "encoding to UTF-8 (e.g. LANG=C.UTF-8) or retype it", ctx=ctx, param=param,
        ) from None
    return value


def configured_audit(ctx: click.Context, param: click.Parameter,
                     value: Path | None) -> Path | None:
    """Neither --audit nor CALFREHAB_AUDIT: the trail calfrehab.toml names
    ([trail] path), else None (the library's default location)."""
    if value is not None:
        return value
    try:
        return api.configured_trail()
    except api.CalfrehabError as exc:
        raise click.UsageError(str(exc), ctx=ctx) from None


AUDIT_HELP = ("Audit trail database (default: calfrehab.toml's [trail] path, else "
              "~/.local/share/calfrehab/audit.sqlite3).")


def audit_option(*, help: str = AUDIT_HELP, sharded: bool = False, from_env: bool = True,
                 configured: bool | None = None) -> Callable[[F], F]:
    """``--audit PATH``, the one definition every command uses. ``sharded``
    also takes a sharded trail's directory (``audit verify``); ``from_env``
    reads CALFREHAB_AUDIT (not ``report``, which reads a trail only when it
    is named); ``configured`` (by default: as ``from_env``) falls back to
    calfrehab.toml's trail, so every command that reads the environment's
    trail reads the clinic's configured one too."""
    if configured is None:
        configured = from_env
    return click.option(
        "--audit", "audit_path", type=click.Path(dir_okay=sharded, path_type=Path),
        envvar="CALFREHAB_AUDIT" if from_env else None, show_envvar=from_env,
        callback=configured_audit if configured else None, help=help,
    )


def audit_options(fn: F) -> F:
    fn = audit_option(
        configured=True,
        help="Audit trail database (default: calfrehab.toml's [trail] path, else "
             "~/.local/share/calfrehab/audit.sqlite3).",
    )(fn)
    fn = click.option("--clinician", default=None, callback=person_text,
                      help="Who asked for the decision (recorded).")(fn)
    fn = click.option("--no-record", is_flag=True,
                      help="Do not record the decision in the audit trail.")(fn)
    return fn


def domain_errors(exit_code: int = 1) -> Callable[[F], F]:
    """Report CalfrehabError as a message on stderr, never a traceback."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except CaseValidationError as exc:
                click.echo(exc.render(), err=True)
                sys.exit(1)
            except CalfrehabError as exc:
                click.echo(f"error: {api.for_terminal_lines(str(exc))}", err=True)
                # Some errors fix their own status: a refused output is 2.
                sys.exit(exc.exit_code if exc.exit_code is not None else exit_code)

        return inner  # type: ignore[return-value]

    return wrap
