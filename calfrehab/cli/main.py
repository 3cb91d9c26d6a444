"""The calfrehab command line: thin commands over :mod:`calfrehab.engine.api`.

Every command's module loads only when that command runs (or help is asked
for), and ``--version`` reads the installed package's metadata when asked:
``calfrehab next`` imports the code of ``next`` and nothing else (issue 28
item 4, cold start)."""

from __future__ import annotations

import gc

# The collector paused while typing, click and this module load, as while a
# command's module loads (_load, which says why); resumed at the end of
# this module, with what the import made frozen. Paused first: importing
# typing alone ran it three times.
_collecting = gc.isenabled()
gc.disable()

try:
    import atexit
    import importlib
    import os
    import sys
    import types
    from typing import Any

    import click

    # calfrehab uses no pydantic plugin, and a decision must depend only on the
    # case and the rules: a plugin that happened to be installed beside us (one
    # wrapping every validator, say) has no business in it. Turning plugins off
    # also spares each command pydantic's scan of every installed distribution's
    # entry points on the first model it builds (issue 28 item 4, cold start).
    # setdefault: whoever sets the variable themselves keeps their choice.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if (os.environ["PYDANTIC_DISABLE_PLUGINS"] in ("__all__", "1", "true")
            and "pydantic.plugin._loader" not in sys.modules):
        # With every plugin off, pydantic's loader answers "no plugins" without
        # reading an entry point, but importing it imports importlib.metadata
        # (email, zipfile, csv: about 16 ms of a cold `next`) for the lookup it
        # then skips. This stand-in gives the same answer to the one caller,
        # pydantic.plugin._schema_validator (`from ._loader import get_plugins`).
        # Only when all plugins are off, as that value says; any other value
        # (a user's own list) gets pydantic's loader. The module is pydantic's
        # private one: pyproject.toml pins pydantic to the releases whose
        # loader has this shape, and tests/cli/test_pydantic_loader_shape.py
        # fails if an installed pydantic's does not (measured: 19 ms of CPU
        # of a cold `next`, median of 21 interleaved runs).
        _no_plugins = types.ModuleType("pydantic.plugin._loader", "No pydantic plugins "
                                       "(PYDANTIC_DISABLE_PLUGINS); see calfrehab/cli/main.py.")
        _no_plugins.get_plugins = lambda: ()  # type: ignore[attr-defined]
        sys.modules["pydantic.plugin._loader"] = _no_plugins

    from calfrehab.cli import quickexit
    from calfrehab.cli.helptext import keep_examples
except BaseException:
    # An import that failed must not leave the process (a test runner, a
    # caller that catches the ImportError) with the collector off.
    if _collecting:
        gc.enable()
    raise

# At exit, CPython collects every generation of the garbage collector once
# more, walking the tens of thousands of objects pydantic, click and the
# rule base left: about 30 ms of CPU, a tenth of a cold `calfrehab next`
# (issue 28 item 4). Freezing them first (moving them out of the collector's
# reach) skips that walk; objects are still freed by reference counting as
# modules are torn down, and nothing of calfrehab waits for a collection to
# finish its work: files, trails and locks are closed by `with` blocks before
# a command returns (CPython never promised finalisers at exit anyway, see the
# data model's note on __del__). Registered at import, before any other
# handler a command adds, so it runs after all of them (atexit is last in,
# first out).
atexit.register(gc.freeze)


def _load(module: str) -> object:
    """Import a command's module with the garbage collector paused, then
    freeze what the import made.

    Importing a command's module imports the engine: tens of thousands of
    objects (pydantic's models and schemas, the rule language), nearly all
    of them alive until the process ends. The collector, counting
    allocations, ran some 80 times over them during a cold `calfrehab next`
    (10-15 ms of CPU, issue 28 item 4), finding next to nothing to free.
    Paused during the import, and frozen after it (moved out of the
    collector's reach, as the batch workers do with theirs), they cost no
    collection; the collector runs as usual for everything made later, so
    a long-running command (app, serve, batch) collects its own garbage.
    Only a module not yet imported: a process that runs many commands (the
    tests) pauses and freezes once per command module."""
    if module in sys.modules:
        return sys.modules[module]
    enabled = gc.isenabled()
    gc.disable()
    try:
        return importlib.import_module(module)
    finally:
        if enabled:
            gc.freeze()
            gc.enable()


class LazyGroup(click.Group):
    """Commands whose modules load only when the command runs (or help is
    asked for), as click's documentation describes: `calfrehab next` does
    not pay for the audit, batch, report or FHIR code."""

    def __init__(self, *args: object, lazy: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = lazy
        self.ran: str | None = None  # the command this process's command line named

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # The console script and `python -m calfrehab.cli` call cli() with no
        # arguments: the process is the command line, and a finished one-shot
        # command may leave without the interpreter's teardown (quickexit says
        # when). CliRunner calls main(), and an embedding program passes its
        # own arguments: both get the usual SystemExit.
        try:
            return self.main(*args, **kwargs)
        except SystemExit as exc:
            if not args and set(kwargs) <= {"prog_name"}:
                quickexit.leave(exc.code, self.ran)
            raise

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().main(*args, **kwargs)
        except OSError as exc:
            # click's own help or version to a full device: the one line every
            # command gives (cli/stdout.py), not a traceback. Imported here:
            # only a failure pays for it.
            from calfrehab.cli import stdout
            if not stdout.click_output_failed(exc):
                raise
            click.echo(f"error: {stdout.message(exc)}", err=True)
            sys.exit(1)

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        self.ran = name
        return name, command, rest

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, name = self.lazy[cmd_name].split(":")
            command: click.Command = getattr(_load(module), name)
            return keep_examples(command)
        found = super().get_command(ctx, cmd_name)
        return keep_examples(found) if found is not None else None


@click.group(
    cls=LazyGroup,
    lazy={
        "accept": "calfrehab.cli.accept_cmd:accept",
        "assess": "calfrehab.cli.entry_cmds:assess",
        "app": "calfrehab.app.command:app",
        "audit": "calfrehab.cli.audit_cmd:audit",
        "batch": "calfrehab.cli.batch_cmd:batch",
        "config": "calfrehab.cli.config_cmd:config",
        "explain": "calfrehab.cli.case_cmds:explain",
        "fhir": "calfrehab.cli.fhir_cmd:fhir",
        "handout": "calfrehab.cli.report_cmds:handout",
        "import": "calfrehab.cli.import_cmd:import_",
        "log": "calfrehab.cli.entry_cmds:log",
        "new": "calfrehab.cli.entry_cmds:new",
        "next": "calfrehab.cli.case_cmds:next_",
        "report": "calfrehab.cli.report_cmds:report",
        "rules": "calfrehab.cli.rules_cmd:rules",
        "schema": "calfrehab.cli.case_cmds:schema",
        "serve": "calfrehab.server.command:serve",
        "simulate": "calfrehab.cli.simulate_cmd:simulate",
        "validate": "calfrehab.cli.case_cmds:validate",
    },
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 80},
)
# The version is the installed distribution's (what ENGINE_VERSION holds),
# looked up only when --version is given.
@click.version_option(package_name="calfrehab", prog_name="calfrehab")
def cli() -> None:
    """Decision support for calf-strengthening rehab: the next step per
    track, and exactly why. The clinician decides.

    Example:

        calfrehab next examples/runner-stuck-on-two-leg.json
    """


keep_examples(cli)

if _collecting:
    gc.freeze()
    gc.enable()
