"""A calfrehab.toml that cannot be used is a domain error at every command's
edge, whichever way the command reads it: one line, ``error: `` and the
configuration's own wording, exit status 1, no traceback, like every other
domain error (cli/options.py ``domain_errors``, options.DomainError).

Most commands read the clinic configuration while click parses their
options (--audit falls back to calfrehab.toml's [trail] path:
options.configured_audit); others read it once running (log's today in the
clinic's time zone, config, app, serve). The first kind printed click's
usage error, ``Error: ...`` with "Try --help" and exit 2, for a file the
user never typed on the command line; app and serve started with a trail
that is a directory and failed every decision. ``Error:`` stays for real
usage errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import EXAMPLES

from calfrehab.cli.main import cli
from calfrehab.engine import api

# Each bad calfrehab.toml, and a few words its error must say (the rest is
# the engine's wording, compared whole below).
BAD_FILES = {
    "invalid TOML": ('[clinic\nname = "x"\n', "not valid TOML"),
    "unknown key": ('[clinic]\nnmae = "x"\n', "clinic.nmae: unknown key"),
    "bad time zone": ('[clinic]\ntime_zone = "Mars/Olympus"\n',
                      "clinic.time_zone: not a time zone name"),
    "trail is a directory": ('[trail]\npath = "trail.d"\n', "is a directory"),
}

# Every command that reads the clinic configuration, as a user types it in
# the clinic's directory (CASE: a case file there). True: it opens the audit
# trail, so a configured trail that is a directory stops it too.
COMMANDS: dict[str, tuple[list[str], bool]] = {
    # --audit's default read while the options are parsed
    "next": (["next", "CASE"], True),
    "accept": (["accept", "CASE"], True),
    "report": (["report", "CASE", "-o", "report.html"], True),
    "handout": (["handout", "CASE", "-o", "handout.html"], True),
    "batch": (["batch", "CASE", "-o", "out.csv"], True),
    "fhir export": (["fhir", "export", "CASE"], True),
    "audit list": (["audit", "list"], True),
    "audit show": (["audit", "show", "48d0d212"], True),
    "audit verify": (["audit", "verify"], True),
    "audit checkpoint": (["audit", "checkpoint", "--key", "clinic.key"], True),
    "audit prove": (["audit", "prove", "48d0d212"], True),
    "audit migrate": (["audit", "migrate"], True),
    "audit override": (["audit", "override", "48d0d212", "--clinician", "A. Berg",
                        "--reason", "seen"], True),
    "audit export": (["audit", "export"], True),
    "audit replay": (["audit", "replay", "48d0d212"], True),
    # read once running (the clinic's today, its values)
    "log": (["log", "CASE", "--date", "2026-01-01", "--straight-knee-done", "15,15,12",
             "--straight-knee-pain", "2", "--no-input"], False),
    "assess": (["assess", "CASE"], False),
    "new": (["new", "NEW", "--case-id", "ANA-01", "--age-years", "41", "--kind",
             "achilles_midportion", "--side", "left", "--no-input"], False),
    "import": (["import", str(EXAMPLES / "import" / "clinic-export-template.csv"),
                "--into", "HERE"], False),
    "config": (["config"], False),
    # the long-running front ends: stopped before they listen
    "app": (["app"], True),
    "serve": (["serve", "--insecure-dev-no-auth"], True),
}


def _cases() -> list[object]:
    return [pytest.param(command, bad, id=f"{command}-{bad}")
            for command, (_, opens_trail) in COMMANDS.items()
            for bad in BAD_FILES
            if opens_trail or bad != "trail is a directory"]


@pytest.mark.parametrize(("command", "bad"), _cases())
def test_a_bad_clinic_configuration_is_one_error_line_and_status_1(
        command: str, bad: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text, words = BAD_FILES[bad]
    (tmp_path / "calfrehab.toml").write_text(text, encoding="utf-8")
    (tmp_path / "trail.d").mkdir()
    case = tmp_path / "case.json"
    shutil.copyfile(EXAMPLES / "runner-stuck-on-two-leg.json", case)
    before = case.read_bytes()
    monkeypatch.chdir(tmp_path)
    # The configuration, not the environment, names the trail here.
    monkeypatch.delenv("CALFREHAB_AUDIT", raising=False)
    # app and serve would listen: a test that got that far fails, never hangs.
    import uvicorn

    import calfrehab.server.run

    def listen(*args: object, **kwargs: object) -> None:
        raise AssertionError("it started serving")

    monkeypatch.setattr(uvicorn, "run", listen)
    monkeypatch.setattr(calfrehab.server.run, "serve", listen)

    if bad == "trail is a directory":
        expected = f"{tmp_path / 'trail.d'} is a directory, not a calfrehab audit trail"
    else:
        with pytest.raises(api.ClinicConfigError) as raised:
            api.load_config(case)
        expected = api.for_terminal_lines(str(raised.value))
    assert words in expected
    if bad != "trail is a directory":  # the file is named, as found
        assert expected.startswith(f"{tmp_path / 'calfrehab.toml'}: ")

    # Paths as absolute ones: the file is then named the same way by every
    # command (found from the case's folder or from the working directory).
    where = {"CASE": str(case), "NEW": str(tmp_path / "new.json"), "HERE": str(tmp_path)}
    args = [where.get(a, a) for a in COMMANDS[command][0]]
    result = CliRunner().invoke(cli, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception)
    assert result.stderr.splitlines() == [f"error: {expected}"], result.output
    assert result.stdout == "", result.output
    assert result.exit_code == 1, result.output
    assert case.read_bytes() == before  # nothing was written on the way
    assert not (tmp_path / "new.json").exists()


@pytest.mark.parametrize("args", [
    ["accept"],                                      # a missing argument
    ["next", "CASE", "--review-date", "someday"],    # a bad value typed
    ["audit", "list", "--kind", "nonsense"],
])
def test_a_usage_error_is_still_clicks_even_with_a_bad_configuration(
        args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "calfrehab.toml").write_text('[clinic]\nnmae = "x"\n', encoding="utf-8")
    shutil.copyfile(EXAMPLES / "runner-stuck-on-two-leg.json", tmp_path / "case.json")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CALFREHAB_AUDIT", raising=False)
    result = CliRunner().invoke(cli, [str(tmp_path / "case.json") if a == "CASE" else a
                                      for a in args])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1].startswith("Error: "), result.output
    assert "calfrehab.toml" not in result.stderr
