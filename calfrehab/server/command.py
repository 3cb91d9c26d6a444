"""``calfrehab serve``: the command that starts the service.

It lives in the service's own package, not in calfrehab/cli: the service
is an edge beside the CLI, both calling only calfrehab.engine.api, and
neither imports the other (tests/packaging/test_layers.py). The CLI's group mounts
this command by name, lazily, as it does its own heavier commands; --rules
and --audit are the CLI's own (calfrehab/options.py declares them once).
"""

from __future__ import annotations

from pathlib import Path

import click

from calfrehab.engine import api
from calfrehab.options import DomainError, audit_option, rules_option
from calfrehab.server.config import ConfigError, load_config


@click.command()
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), envvar="CALFREHAB_SERVE_CONFIG", show_envvar=True,
              help="TOML file: trusted issuers and their keys, public URL, limits "
                   "(docs/integration.md).")
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8765).")
@rules_option
@audit_option(configured=False)
@click.option("--insecure-dev-no-auth", is_flag=True,
              help="Accept calls without a JWT. Development only; loopback only; "
                   "logged loudly on every call.")
def serve(config_path: Path | None, host: str | None, port: int | None,
          audit_path: Path | None, rules_dir: Path | None, insecure_dev_no_auth: bool) -> None:
    """Run the CDS Hooks 2.0 service and the JSON API over HTTP.

    Listens on 127.0.0.1:8765 unless told otherwise. GET /cds-services is
    CDS Hooks discovery; POST /cds-services/calfrehab-next-step returns
    cards for a patient-view hook; POST /v1/decide and /v1/explain take a
    case file and return what `next --json` and `explain --json` print.
    Every call needs a JWT signed by an issuer the --config file trusts.
    Decisions are recorded in the audit trail. Stop with Ctrl-C.

    Example:

        calfrehab serve --config cds.toml --audit ./clinic-audit.sqlite3
    """
    try:
        from calfrehab.server.run import serve as run
    except ImportError as exc:
        raise click.ClickException(
            f"the service needs the serve extra ({exc.name} is missing): "
            "pip install 'calfrehab[serve]'") from None
    try:
        config = load_config(config_path, host=host, port=port, audit=audit_path,
                             rules=rules_dir, insecure_no_auth=insecure_dev_no_auth or None)
    except ConfigError as exc:
        raise DomainError(str(exc)) from None
    if config.audit is None:
        # Neither --audit, CALFREHAB_AUDIT nor the --config file names a
        # trail: the clinic configuration's, as for the CLI and the app (the
        # shared --audit says so), found from the cases directory as the
        # service's time zone is; else the library's default.
        try:
            configured = api.configured_trail(config.cases_dir)
        except api.CalfrehabError as exc:
            raise DomainError(str(exc)) from None
        if configured is not None:
            config = config.model_copy(update={"audit": configured})
    try:
        # A trail no decision could be recorded in (a directory) stops the
        # service now, as it stops `next`, not with a 422 on every call.
        api.usable_trail_location(config.audit)
    except api.CalfrehabError as exc:
        raise DomainError(str(exc)) from None
    if config.insecure_no_auth and not config.is_loopback():
        raise click.UsageError("--insecure-dev-no-auth is refused unless the service "
                               "listens on a loopback address")
    run(config)
