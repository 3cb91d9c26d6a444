"""The clinic configuration (calfrehab.toml): where it is found, what it
checks, the clinic's today, and `calfrehab config`."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import REPO

from calfrehab.cli.main import cli
from calfrehab.engine import api
from calfrehab.engine.clinic import user_config_path

GOOD = """\
[clinic]
name = "Harbour Physio"
phone = "+61 2 5550 1234"
clinician = "A. Berg"
time_zone = "Australia/Sydney"

[trail]
path = "trail/audit.sqlite3"

[review]
interval_days = 14
"""


def test_no_file_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    loaded = api.load_config()
    assert loaded.path is None
    assert loaded.config.review.interval_days == 7
    assert loaded.config.clinic.time_zone is None


def test_beside_the_case_file_wins_over_the_user_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    user = user_config_path()
    user.parent.mkdir(parents=True)
    user.write_text('[clinic]\nname = "Home"\n', encoding="utf-8")
    assert api.load_config().config.clinic.name == "Home"
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "calfrehab.toml").write_text(GOOD, encoding="utf-8")
    loaded = api.load_config(cases / "ana.json")
    assert loaded.path == cases / "calfrehab.toml"
    assert loaded.config.clinic.name == "Harbour Physio"
    # A relative trail path is beside the configuration, not the working directory.
    assert loaded.config.trail.path == cases / "trail" / "audit.sqlite3"
    monkeypatch.setenv("CALFREHAB_CONFIG", str(user))
    assert api.load_config(cases / "ana.json").config.clinic.name == "Home"


@pytest.mark.parametrize(("text", "named"), [
    ('[clinic]\ntime_zon = "Europe/London"\n', "clinic.time_zon: unknown key"),
    ('[clinic]\ntime_zone = "Mars/Olympus"\n', "clinic.time_zone: not a time zone"),
    ("[review]\ninterval_days = 0\n", "review.interval_days"),
    ('[review]\ninterval_days = "7"\n', "review.interval_days"),
    ("[clinc]\n", "clinc: unknown key (expected one of clinic, trail, review"),
    ("[clinic\n", "not valid TOML"),
])
def test_a_bad_file_is_an_error_naming_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               text: str, named: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "calfrehab.toml").write_text(text, encoding="utf-8")
    with pytest.raises(api.ClinicConfigError) as err:
        api.load_config()
    assert named in str(err.value)
    assert str(tmp_path / "calfrehab.toml") in str(err.value)
    result = CliRunner().invoke(cli, ["config"])
    assert result.exit_code == 1
    assert named in result.output
    assert "Traceback" not in result.output


def test_clinic_today_is_the_clinic_calendar_day() -> None:
    # 22:30 UTC on 6 December is already the 7th in Sydney, still the 6th in London.
    moment = datetime(2026, 12, 6, 22, 30, tzinfo=UTC)
    sydney = api.ClinicConfig.model_validate({"clinic": {"time_zone": "Australia/Sydney"}})
    london = api.ClinicConfig.model_validate({"clinic": {"time_zone": "Europe/London"}})
    assert api.clinic_today(sydney, clock=lambda: moment) == date(2026, 12, 7)
    assert api.clinic_today(london, clock=lambda: moment) == date(2026, 12, 6)


def test_clinic_today_reads_the_file_it_finds(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # Without a config argument: the file found near the case sets the zone;
    # with none found, the machine's own day (the defaults' zone is none).
    moment = datetime(2026, 12, 6, 22, 30, tzinfo=UTC)
    monkeypatch.chdir(tmp_path)
    clinic_dir = tmp_path / "clinic"
    clinic_dir.mkdir()
    (clinic_dir / "calfrehab.toml").write_text(GOOD, encoding="utf-8")
    case = clinic_dir / "case.json"
    assert api.clinic_today(near=case, clock=lambda: moment) == date(2026, 12, 7)
    assert api.clinic_today(near=tmp_path / "x.json", clock=lambda: moment) == (
        moment.astimezone().date())
    assert api.configured_trail(case) == clinic_dir / "trail" / "audit.sqlite3"
    assert api.configured_trail(tmp_path / "x.json") is None


def test_config_command_names_the_file_in_force(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["config"])
    assert result.exit_code == 0, result.output
    assert "no calfrehab.toml found" in result.output
    assert str(tmp_path / "calfrehab.toml") in result.output
    (tmp_path / "calfrehab.toml").write_text(GOOD, encoding="utf-8")
    result = CliRunner().invoke(cli, ["config"])
    assert result.exit_code == 0, result.output
    assert f"# in force: {tmp_path / 'calfrehab.toml'}" in result.output
    assert 'name = "Harbour Physio"' in result.output
    assert "interval_days = 14" in result.output
    data = json.loads(CliRunner().invoke(cli, ["config", "--json"]).output)
    assert data["path"] == str(tmp_path / "calfrehab.toml")
    assert data["values"]["clinic"]["time_zone"] == "Australia/Sydney"


def test_the_configured_trail_is_where_next_records(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CALFREHAB_AUDIT")
    (tmp_path / "calfrehab.toml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "trail").mkdir()
    case = REPO / "examples" / "runner-stuck-on-two-leg.json"
    result = CliRunner().invoke(cli, ["next", str(case)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "trail" / "audit.sqlite3").is_file()
    # Every command that reads the trail finds it there too.
    listed = CliRunner().invoke(cli, ["audit", "list"])
    assert listed.exit_code == 0 and "RUN-0001" in listed.output, listed.output
