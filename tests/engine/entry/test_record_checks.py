"""What a decision may rest on (clinical-basis §8), as the entry commands
enforce it: no date after the clinic's today, a session entered twice counts
once, next-morning values go to the session they follow and are never
overwritten unasked, implausible values need confirming, and a value for a
track that has not started is refused. Every refusal leaves the file
byte-identical."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import EXAMPLES

from calfrehab.cli.main import cli
from calfrehab.engine import api

TODAY = api.clinic_today()
TOMORROW = (TODAY + timedelta(days=1)).isoformat()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


@pytest.fixture
def case(tmp_path: Path) -> Path:
    """The runner stuck on two-leg raises: straight-knee track only, body
    mass 68 kg, last session 2026-11-17 (with its next-morning values)."""
    path = tmp_path / "run.json"
    shutil.copy(EXAMPLES / "runner-stuck-on-two-leg.json", path)
    return path


def refused(path: Path, *args: str) -> str:
    before = path.read_bytes()
    code, out = run(*args)
    assert code != 0, out
    assert path.read_bytes() == before
    return out


def doc(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def log(path: Path, *extra: str) -> tuple[int, str]:
    return run("log", str(path), "--straight-knee-done", "15,15,15",
               "--straight-knee-pain", "1", *extra, "--no-input")


# --- dates -------------------------------------------------------------------

def test_a_date_after_today_is_refused_naming_it(case: Path, tmp_path: Path) -> None:
    out = refused(case, "log", str(case), "--date", TOMORROW, "--straight-knee-done",
                  "15,15,15", "--straight-knee-pain", "1", "--no-input")
    assert TOMORROW in out and "after today" in out
    out = refused(case, "assess", str(case), "--date", TOMORROW, "--pain-at-rest", "0",
                  "--no-input")
    assert TOMORROW in out
    new = tmp_path / "new.json"
    code, out = run("new", str(new), "--case-id", "X-1", "--review-date", "2030-01-01",
                    "--age-years", "40", "--kind", "achilles_midportion", "--side", "left",
                    "--no-input")
    assert code != 0 and "2030-01-01" in out and not new.exists()


def test_next_refuses_a_review_date_after_today_unless_given(case: Path) -> None:
    data = doc(case)
    data["review_date"] = TOMORROW
    case.write_text(json.dumps(data), encoding="utf-8")
    out = refused(case, "next", str(case), "--no-record")
    assert f"review_date {TOMORROW} is after today" in out and "--review-date" in out
    code, out = run("next", str(case), "--no-record", "--review-date", TOMORROW)
    assert code == 0, out


def test_an_explicit_review_date_decides_for_that_day(case: Path) -> None:
    code, out = run("next", str(case), "--no-record", "--json", "--review-date", "2026-11-25")
    assert code == 0, out
    assert json.loads(out)["review_date"] == "2026-11-25"


# --- the same session twice --------------------------------------------------

def test_the_same_session_again_is_refused_unless_a_second_session(case: Path) -> None:
    code, out = log(case, "--date", "2026-11-18")
    assert code == 0, out
    out = refused(case, "log", str(case), "--date", "2026-11-18", "--straight-knee-done",
                  "15,15,15", "--straight-knee-pain", "1", "--no-input")
    assert "already has this session on 2026-11-18" in out and "--second-session" in out
    code, out = log(case, "--date", "2026-11-18", "--second-session")
    assert code == 0, out
    sessions = [s for s in doc(case)["sessions"] if s["date"] == "2026-11-18"]
    assert len(sessions) == 2 and sessions[1]["second_session"] is True
    assert "second_session" not in sessions[0]


def test_a_second_session_needs_a_first(case: Path) -> None:
    out = refused(case, "log", str(case), "--date", "2026-11-19", "--second-session",
                  "--straight-knee-done", "15,15,15", "--straight-knee-pain", "1",
                  "--no-input")
    assert "no session on 2026-11-19" in out


def _decision(path: Path) -> dict[str, Any]:
    code, out = run("next", str(path), "--no-record", "--json")
    assert code == 0, out
    data: dict[str, Any] = json.loads(out)
    # What was decided and why; the firings' provenance names the file
    # index of the session kept, which differs between the two files.
    return {"outcome": data["outcome"], "tracks": data["tracks"],
            "reasons": [r["text"] for r in data["reasons"]]}


def test_a_session_entered_twice_counts_once(case: Path, tmp_path: Path) -> None:
    # Two sessions of one: "completed in each of the last 2 sessions" must
    # not come from one session typed twice (issue 21).
    one = tmp_path / "one.json"
    data = doc(case)
    data["sessions"] = data["sessions"][1:]
    one.write_text(json.dumps(data), encoding="utf-8")
    twice = tmp_path / "twice.json"
    data["sessions"] = [data["sessions"][0], dict(data["sessions"][0])]
    twice.write_text(json.dumps(data), encoding="utf-8")
    assert _decision(one) == _decision(twice)
    assert _decision(one)["tracks"]["straight_knee"]["decision"] != "progress"
    assert _decision(case)["tracks"]["straight_knee"]["decision"] == "progress"


# --- next-morning values -----------------------------------------------------

def test_morning_goes_to_the_last_session_before_today_without_values(case: Path) -> None:
    assert log(case, "--date", "2026-11-18")[0] == 0
    assert log(case, "--date", "2026-11-19")[0] == 0
    data = doc(case)
    # The 18th got none: log offered it on the 19th, the flags left it blank.
    code, out = run("log", str(case), "--morning", "--morning-pain", "2", "--no-input")
    assert code == 0, out
    by_date = {s["date"]: s for s in doc(case)["sessions"]}
    assert by_date["2026-11-19"]["pain_next_morning"] == 2
    assert "pain_next_morning" not in by_date["2026-11-18"]
    code, out = run("log", str(case), "--morning", "--date", "2026-11-18", "--morning-pain",
                    "1", "--stiffness-min", "5", "--no-input")
    assert code == 0, out
    assert doc(case)["sessions"][2]["pain_next_morning"] == 1
    assert doc(case)["sessions"][2]["morning_stiffness_min"] == 5
    assert len(doc(case)["sessions"]) == len(data["sessions"])


def test_morning_values_are_never_overwritten_without_replace(case: Path) -> None:
    out = refused(case, "log", str(case), "--morning", "--date", "2026-11-17",
                  "--morning-pain", "6", "--no-input")
    assert "already has next-morning pain 0/10" in out and "--replace" in out
    out = refused(case, "log", str(case), "--morning", "--morning-pain", "6", "--no-input")
    assert "every session before today has its next-morning values" in out
    code, out = run("log", str(case), "--morning", "--date", "2026-11-17", "--replace",
                    "--morning-pain", "6", "--no-input")
    assert code == 0, out
    last = doc(case)["sessions"][1]
    assert last["pain_next_morning"] == 6 and "morning_stiffness_min" not in last
    refused(case, "log", str(case), "--morning", "--date", "2026-11-16", "--morning-pain",
            "1", "--no-input")


# --- plausible ranges --------------------------------------------------------

def test_implausible_values_need_confirming_and_name_the_range(case: Path) -> None:
    out = refused(case, "assess", str(case), "--date", "2026-11-18", "--heel-raise-involved",
                  "200", "--heel-raise-uninvolved", "25", "--no-input")
    assert "200 is outside the plausible range (0-100 heel raises)" in out
    assert "symmetry 800%" in out and "up to 150%" in out and "--confirm-unusual" in out
    out = refused(case, "log", str(case), "--date", "2026-11-18", "--straight-knee-done",
                  "15,150,15", "--straight-knee-pain", "1", "--no-input")
    assert "= 150 is outside the plausible range (0-100 per set)" in out
    out = refused(case, "log", str(case), "--date", "2026-11-18", "--straight-knee-done",
                  "15,15,15", "--straight-knee-pain", "1", "--straight-knee-load-kg", "150",
                  "--no-input")
    assert "0-136 kg: 2 x body mass 68 kg" in out
    code, out = run("assess", str(case), "--date", "2026-11-18", "--heel-raise-involved",
                    "200", "--heel-raise-uninvolved", "25", "--confirm-unusual", "--no-input")
    assert code == 0, out
    result = CliRunner().invoke(cli, ["validate", str(case)])
    assert result.exit_code == 0
    assert "warning" in result.stderr and "heel_raise_test.involved = 200" in result.stderr


def test_the_ranges_are_data_with_their_sources() -> None:
    ranges = api.plausible_ranges()
    assert "Hébert-Losier" in ranges.heel_raise_test.source
    assert ranges.limb_symmetry.max_percent == 150


# --- a track that has not started --------------------------------------------

def test_a_value_for_a_track_not_started_is_refused_with_the_reason(case: Path) -> None:
    out = refused(case, "log", str(case), "--date", "2026-11-18", "--straight-knee-done",
                  "15,15,15", "--straight-knee-pain", "1", "--bent-knee-pain", "1",
                  "--no-input")
    assert "--bent-knee-pain" in out and "has not started" in out


# --- whose file --------------------------------------------------------------

def test_new_never_replaces_another_patients_case(case: Path) -> None:
    flags = ["--review-date", "2026-11-20", "--age-years", "40", "--kind",
             "achilles_midportion", "--side", "left", "--no-input"]
    out = refused(case, "new", str(case), "--case-id", "OTHER-1", *flags)
    assert "exists" in out
    out = refused(case, "new", str(case), "--case-id", "OTHER-1", "--force", *flags)
    assert "holds case RUN-0001, not OTHER-1" in out
    code, out = run("new", str(case), "--case-id", "RUN-0001", "--force", *flags)
    assert code == 0, out


def test_import_refuses_rows_dated_after_today(tmp_path: Path) -> None:
    csv_file = tmp_path / "export.csv"
    csv_file.write_text(
        "case_id,date,exercise,sets_done,pain_during,age_years,condition,side\n"
        f"IMP-1,{TODAY.isoformat()},two_leg_heel_raise,15/15/15,2,40,achilles_midportion,left\n"
        f"IMP-1,{TOMORROW},two_leg_heel_raise,15/15/15,2,,,\n", encoding="utf-8")
    into = tmp_path / "cases"
    result = CliRunner().invoke(cli, ["import", str(csv_file), "--into", str(into)])
    assert "Traceback" not in result.output
    assert f"row 3, column date: {TOMORROW} is after today" in result.output
    written = doc(into / "IMP-1.json")
    assert [s["date"] for s in written["sessions"]] == [TODAY.isoformat()]
