"""``calfrehab app``: the command that starts the physiotherapist's screen,
and ``calfrehab app add-user``.

Like ``calfrehab serve``, it lives beside the CLI rather than in it: the
app is an edge over ``calfrehab.engine.api`` as the CLI is, and neither
imports the other (tests/packaging/test_layers.py). The CLI's group mounts this
command by name, lazily.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from calfrehab.app.accounts import AccountError, check_name, hash_password
from calfrehab.app.clinic import ConfigProblem, add_account, clinic_settings
from calfrehab.app.settings import DEFAULT_HOST, DEFAULT_PORT, AppSettings, is_loopback
from calfrehab.engine import api
from calfrehab.options import DomainError, audit_option, rules_option

log = logging.getLogger("calfrehab.app")


def _cases_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--cases", "cases_dir", type=click.Path(file_okay=False, path_type=Path),
        envvar="CALFREHAB_CASES", show_envvar=True,
        help="Cases directory, one case file per patient (default: the clinic "
             "configuration's, else the current directory).")(f)


@click.group(invoke_without_command=True)
@_cases_option
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Address to listen on. Any address but loopback needs accounts "
                   "(calfrehab app add-user).")
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True, help="Port.")
@rules_option
# Not the CLI's configured fallback (calfrehab.toml from the working
# directory): the app reads the clinic configuration of its cases directory,
# below, and takes its trail from there.
@audit_option(configured=False)
@click.option("--behind-tls", is_flag=True,
              help="A TLS proxy in front serves the app as https: mark cookies Secure.")
@click.pass_context
def app(ctx: click.Context, cases_dir: Path | None, host: str, port: int,
        rules_dir: Path | None, audit_path: Path | None, behind_tls: bool) -> None:
    """The physiotherapist's screen: patients, their sessions, decisions
    with their reasons, overrides, handouts and the audit trail, in a
    browser. No terminal needed after this command.

    Listens on 127.0.0.1:8780 (this machine only), where you are the one
    local user. To let other machines in, add accounts first
    (calfrehab app add-user NAME) and give --host. Stop with Ctrl-C.

    Example:

        calfrehab app --cases ~/clinic/cases
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = cases_dir
        return
    try:
        import uvicorn

        from calfrehab.app.web import create_app
    except ImportError as exc:
        raise click.ClickException(
            f"the app needs the app extra ({exc.name} is missing): "
            "pip install 'calfrehab[app]'") from None
    try:
        clinic = clinic_settings(cases_dir)
    except ConfigProblem as exc:
        raise DomainError(str(exc)) from None
    cases = cases_dir or clinic.cases or Path.cwd()
    if not cases.is_dir():
        raise click.ClickException(f"--cases: {cases} is not a directory")
    if not is_loopback(host) and not clinic.accounts:
        where = clinic.path or "calfrehab.toml in the cases directory"
        raise click.ClickException(
            f"--host {host} lets other machines in, and no accounts are configured "
            f"({where}); add one first: calfrehab app add-user NAME --cases {cases}")
    # The trail the command line would record in, named once: the pages
    # read it, the writes append to it, the handout and report quote it.
    try:
        # A trail no decision could be recorded in (a directory) stops the
        # app now, as it stops `next`, not at the first decision.
        audit = api.usable_trail_location(audit_path or clinic.audit)
    except api.CalfrehabError as exc:
        raise DomainError(str(exc)) from None
    settings = AppSettings(cases=cases.resolve(), audit=audit,
                           rules=rules_dir, host=host, port=port, accounts=clinic.accounts,
                           behind_tls=behind_tls, config_path=clinic.path,
                           clinic_name=clinic.name, review_days=clinic.review_days)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    who = ("one local user (no accounts; this machine only)" if settings.single_user()
           else f"{len(settings.accounts)} account(s) from {clinic.path}")
    host_shown = f"[{host}]" if ":" in host else host
    click.echo(f"calfrehab app: http://{host_shown}:{port}/  cases {settings.cases}; trail "
               f"{settings.audit}; {who}. Ctrl-C stops it.", err=True)
    uvicorn.run(create_app(settings), host=host, port=port, workers=1, access_log=False,
                log_level="warning", timeout_keep_alive=5)


@app.command("add-user")
@click.argument("name")
@_cases_option
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              envvar="CALFREHAB_APP_PASSWORD",
              help="The password (asked, hidden, when not given; at least 10 characters).")
@click.pass_context
def add_user(ctx: click.Context, name: str, cases_dir: Path | None, password: str) -> None:
    """Add a clinician's account to the clinic configuration
    (calfrehab.toml), with the password hashed with argon2id. The name is
    what the audit trail records for that clinician's decisions.

    Example:

        calfrehab app add-user "Ana Ruiz" --cases ~/clinic/cases
    """
    cases = cases_dir or ctx.obj
    try:
        check_name(name)
        hashed = hash_password(password)
        path = add_account(cases, name, hashed)
    except (AccountError, ConfigProblem) as exc:
        raise DomainError(str(exc)) from None
    click.echo(f"{path}: account {name} added")
