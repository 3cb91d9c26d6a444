"""Option decorators shared by the commands (the sqlite-utils way), and the
one place domain errors become clean messages."""

from __future__ import annotations

import functools
import gc
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from calfrehab.engine import api
from calfrehab.engine.api import CalfrehabError, CaseValidationError

# --audit and --rules are declared once for the CLI, the app and the service
# (calfrehab/options.py, below all three); the CLI's commands take them from
# here as they take every other shared option.
from calfrehab.options import AUDIT_HELP, audit_option, configured_audit, rules_option

__all__ = ["AUDIT_HELP", "audit_option", "audit_options", "configured_audit",
           "confirm_unusual_option", "domain_errors", "json_option", "output_option",
           "person_text", "prepared", "rules_option"]

F = TypeVar("F", bound=Callable[..., Any])

# The reasoners whose making this process has frozen (prepared).
_FROZEN: list[api.Reasoner] = []


def prepared(rules_dir: Path | None) -> api.Reasoner:
    """``api.prepare(rules_dir)`` with the garbage collector paused, and
    what it made frozen before the collector resumes, the first time this
    process prepares that reasoner.

    Preparing makes thousands of objects that live as long as the process
    (the rule base from the cache, the durable-rules definitions, the
    plans); the first collection after it walked them all and freed
    nothing (about 1 ms of a cold `calfrehab next`, issue 28 item 4).
    Frozen, as _load in cli/main.py freezes what a command's import made,
    they are out of its reach, and it runs as usual for everything made
    later. Once per reasoner: a process that runs many commands (the
    tests) freezes once per rules directory, not once per command. With
    the collector off (a caller's choice) nothing is frozen. The service
    and the app prepare through the API and freeze nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        reasoner = api.prepare(rules_dir)
        if enabled and not any(known is reasoner for known in _FROZEN):
            _FROZEN.append(reasoner)
            gc.freeze()
    finally:
        if enabled:
            gc.enable()
    return reasoner


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


def audit_options(fn: F) -> F:
    fn = audit_option(configured=True)(fn)
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
