"""--audit and --rules are one option on the CLI, the service and the app
(calfrehab/options.py): the same name, help, environment variable and
default on ``next``, ``serve`` and ``app``, so the three cannot drift; and
what the shared help promises (calfrehab.toml's [trail]) holds for each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from calfrehab.cli.main import cli

FRONT_ENDS = ("next", "serve", "app")


def _command(name: str) -> click.Command:
    ctx = click.Context(cli)
    command = cli.get_command(ctx, name)
    assert command is not None, name
    return command


def _option(command: str, flag: str) -> click.Option:
    found = [p for p in _command(command).params
             if isinstance(p, click.Option) and flag in p.opts]
    assert len(found) == 1, f"{command} declares {flag} {len(found)} times"
    return found[0]


def _shape(option: click.Option) -> dict[str, Any]:
    assert isinstance(option.type, click.Path)
    return {"opts": option.opts, "name": option.name, "help": option.help,
            "envvar": option.envvar, "show_envvar": option.show_envvar,
            "default": option.default, "show_default": option.show_default,
            "required": option.required,
            "dir_okay": option.type.dir_okay, "file_okay": option.type.file_okay,
            "exists": option.type.exists}


@pytest.mark.parametrize("flag", ["--audit", "--rules"])
def test_the_option_is_the_same_on_every_front_end(flag: str) -> None:
    shapes = {name: _shape(_option(name, flag)) for name in FRONT_ENDS}
    assert shapes["serve"] == shapes["next"]
    assert shapes["app"] == shapes["next"]
    assert shapes["next"]["envvar"] == {"--audit": "CALFREHAB_AUDIT",
                                        "--rules": "CALFREHAB_RULES"}[flag]
    # No default of click's own: an option not given is None, and the
    # command resolves it (calfrehab.toml's [trail], the shipped rules).
    assert shapes["next"]["default"] in (None, getattr(click.core, "UNSET", None))


@pytest.mark.parametrize("flag", ["--audit", "--rules"])
def test_the_help_a_user_reads_is_the_same(flag: str) -> None:
    def block(name: str) -> str:
        text = CliRunner().invoke(cli, [name, "--help"], terminal_width=80).output
        lines = text.splitlines()
        start = next(i for i, line in enumerate(lines) if line.lstrip().startswith(flag))
        end = next((i for i in range(start + 1, len(lines))
                    if lines[i].lstrip().startswith("-") or not lines[i].strip()), len(lines))
        # Only the words: click aligns the help column per command.
        return " ".join(" ".join(lines[start:end]).split()[2:])

    texts = {name: block(name) for name in FRONT_ENDS}
    assert texts["serve"] == texts["next"] == texts["app"], texts
    assert "CALFREHAB_" in texts["next"]


def test_serve_records_in_the_trail_calfrehab_toml_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared help says the default is calfrehab.toml's [trail]: the
    service, which read only its --config file, now falls back to it too.
    The service itself is not started: its runner is replaced by one that
    keeps the configuration it was given."""
    import calfrehab.server.run as run

    trail = tmp_path / "clinic-trail.sqlite3"
    (tmp_path / "calfrehab.toml").write_text(f'[trail]\npath = "{trail}"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CALFREHAB_AUDIT", raising=False)
    seen: list[Any] = []
    monkeypatch.setattr(run, "serve", seen.append)
    result = CliRunner().invoke(cli, ["serve", "--insecure-dev-no-auth"])
    assert result.exit_code == 0, result.output
    assert [c.audit for c in seen] == [trail]
    # --audit, then CALFREHAB_AUDIT, still win over the clinic's file.
    seen.clear()
    given = tmp_path / "given.sqlite3"
    result = CliRunner().invoke(cli, ["serve", "--insecure-dev-no-auth", "--audit", str(given)])
    assert result.exit_code == 0, result.output
    assert [c.audit for c in seen] == [given]
    seen.clear()
    monkeypatch.setenv("CALFREHAB_AUDIT", str(given))
    result = CliRunner().invoke(cli, ["serve", "--insecure-dev-no-auth"])
    assert result.exit_code == 0, result.output
    assert [c.audit for c in seen] == [given]


def test_serve_without_any_configured_trail_keeps_the_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import calfrehab.server.run as run

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CALFREHAB_AUDIT", raising=False)
    seen: list[Any] = []
    monkeypatch.setattr(run, "serve", seen.append)
    result = CliRunner().invoke(cli, ["serve", "--insecure-dev-no-auth"])
    assert result.exit_code == 0, result.output
    assert [c.audit for c in seen] == [None]  # the library's default location


def _audit_options(command: click.Command, path: tuple[str, ...] = ()
                   ) -> list[tuple[str, click.Option]]:
    found = [(" ".join(path), p) for p in command.params
             if isinstance(p, click.Option) and "--audit" in p.opts]
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None
            found += _audit_options(sub, (*path, name))
    return found


def test_every_cli_audit_option_reads_the_same_trail() -> None:
    # handout declared its own --audit without calfrehab.toml's fallback, so
    # it missed the overrides the report beside it showed; audit verify's
    # help left the configured trail out. Every CLI command's --audit now
    # comes from the one decorator: CALFREHAB_AUDIT, then calfrehab.toml.
    from calfrehab.options import configured_audit

    found = dict(_audit_options(cli))
    assert {"next", "batch", "report", "handout", "audit verify", "serve", "app"} <= set(found)
    for name, option in found.items():
        assert option.name == "audit_path" and option.envvar == "CALFREHAB_AUDIT", name
        if name in ("serve", "app"):  # they resolve the configured trail themselves
            continue
        assert option.callback is configured_audit, name
        if (option.help or "").startswith(("Audit trail database", "Audit trail holding")):
            assert "calfrehab.toml's [trail] path" in (option.help or ""), name


def test_report_and_handout_read_the_clinic_trail_before_it_exists(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A clinic's calfrehab.toml names its trail; before the first decision
    # there is nothing to show, which is no error (the report failed: "no
    # audit trail at ...: nothing has been recorded there").
    from helpers import EXAMPLES

    trail = tmp_path / "clinic-trail.sqlite3"
    (tmp_path / "calfrehab.toml").write_text(f'[trail]\npath = "{trail}"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CALFREHAB_AUDIT", raising=False)
    case = str(EXAMPLES / "runner-stuck-on-two-leg.json")
    for command in ("report", "handout"):
        result = CliRunner().invoke(cli, [command, case, "-o", f"{command}.html"])
        assert result.exit_code == 0, result.output
    assert not trail.exists()
    # Once `next` records there, the report shows it without --audit.
    result = CliRunner().invoke(cli, ["next", case])
    assert result.exit_code == 0, result.output
    assert trail.is_file()
    result = CliRunner().invoke(cli, ["report", case, "-o", "again.html"])
    assert result.exit_code == 0 and "no trail" not in result.output, result.output
    # A trail named on the command line must exist, as before.
    result = CliRunner().invoke(cli, ["report", case, "-o", "x.html",
                                      "--audit", str(tmp_path / "absent.sqlite3")])
    assert result.exit_code == 1 and "no audit trail at" in result.output
