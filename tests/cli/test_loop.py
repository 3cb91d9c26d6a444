"""The whole loop as a physiotherapist runs it (issue 21): a new case, three
sessions, the next morning, an assessment, a decision, the clinician's
override with their own prescription, accepting it into the programme, a
session logged against the new programme, and the next decision; the same
with `next --accept`; and every refusal on the way leaving every file
byte-identical."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from calfrehab.cli.main import cli
from calfrehab.engine import api

TODAY = api.clinic_today()


def day(back: int) -> str:
    return (TODAY - timedelta(days=back)).isoformat()


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output, result.output
    assert result.exit_code == 0, result.output
    return result.output


def fails(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output, result.output
    assert result.exit_code != 0, result.output
    return result.output


def doc(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@pytest.fixture
def trail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "audit.sqlite3"
    monkeypatch.setenv("CALFREHAB_AUDIT", str(path))
    return path


def first_visit(tmp_path: Path) -> Path:
    """new -> three logs -> log --morning -> assess, as flags."""
    case = tmp_path / "ana.json"
    run("new", str(case), "--case-id", "ANA-01", "--review-date", day(6), "--age-years", "41",
        "--body-mass-kg", "70", "--kind", "achilles_midportion", "--side", "left",
        "--no-input")
    run("log", str(case), "--date", day(5), "--straight-knee-done", "15,15,15",
        "--straight-knee-pain", "2", "--no-input")
    run("log", str(case), "--date", day(3), "--straight-knee-done", "15,15,15",
        "--straight-knee-pain", "2", "--previous-morning-pain", "2", "--no-input")
    run("log", str(case), "--date", day(1), "--straight-knee-done", "15,15,15",
        "--straight-knee-pain", "1", "--previous-morning-pain", "1", "--no-input")
    out = run("log", str(case), "--morning", "--morning-pain", "1", "--stiffness-min", "5",
              "--no-input")
    assert f"session {day(1)}: next-morning pain 1/10, stiffness 5 min" in out
    run("assess", str(case), "--heel-raise-involved", "18", "--heel-raise-uninvolved", "25",
        "--visa-a", "70", "--no-input")
    return case


def decide(case: Path) -> dict[str, Any]:
    decision: dict[str, Any] = json.loads(run("next", str(case), "--json", "--clinician",
                                              "A. Berg"))
    return decision


def test_the_loop_with_an_override(tmp_path: Path, trail: Path) -> None:
    case = first_visit(tmp_path)
    decision = decide(case)
    assert decision["tracks"]["straight_knee"]["decision"] == "progress"
    assert decision["tracks"]["straight_knee"]["next"]["exercise"] == "single_leg_heel_raise"
    # The clinician disagrees: one more week on two legs, at 4 x 12.
    run("audit", "override", decision["decision_id"][:8], "--clinician", "A. Berg",
        "--reason", "one more week on two legs", "--track", "straight_knee", "--decision",
        "hold", "--exercise", "two_leg_heel_raise", "--sets", "4", "--reps", "12")
    out = run("accept", str(case), "--clinician", "A. Berg")
    assert "as overridden" in out and "one more week on two legs" in out
    program = doc(case)["program"]
    assert program["straight_knee"] == {"exercise": "two_leg_heel_raise", "load_kg": 0,
                                        "sets": 4, "reps": 12}
    # The tracks the override left alone follow the decision.
    assert program["bent_knee"]["exercise"] == "two_leg_bent_knee_heel_raise"

    # What the patient takes home is what the clinician decided: the
    # overridden exercise at its dose, on her side, not the rules' proposal.
    handout = tmp_path / "handout.html"
    run("handout", str(case), "-o", str(handout))
    words = " ".join(re.sub(r"<[^>]+>", " ", html.unescape(
        handout.read_text(encoding="utf-8"))).split())
    assert "Two-leg heel raise, straight knee: 4 sets of 12" in words
    assert "left leg" in words and "one more week on two legs" in words
    assert "Single-leg heel raise" not in words

    # The trail links decision -> override -> the programme written.
    state = api.case_state(trail, "ANA-01")
    assert state is not None and state.decision_id == decision["decision_id"]
    assert state.override is not None and state.override.reason == "one more week on two legs"
    assert state.accepted is not None
    assert state.accepted.override_entry_id == state.override.entry_id
    assert state.accepted.program == program
    shown = run("audit", "show", decision["decision_id"])
    assert "Overrides" in shown and "Accepted into the programme" in shown
    assert state.accepted.program_sha256 in shown.replace("\n      ", "")

    # The next session is logged against the new programme: Enter (here, no
    # flag) takes the prescribed 4 x 12 on two legs.
    out = run("log", str(case), "--straight-knee-pain", "1", "--bent-knee-pain", "0",
              "--no-input")
    assert f"session {TODAY.isoformat()}: two_leg_heel_raise 12/12/12/12, pain 1/10" in out
    assert "two_leg_bent_knee_heel_raise 15/15/15" in out
    second = decide(case)
    assert second["tracks"]["straight_knee"]["current"]["sets"] == 4
    # A decision made before this session is no longer the file's.
    fails("accept", str(case), "--decision", decision["decision_id"])


def test_the_loop_with_next_accept(tmp_path: Path, trail: Path) -> None:
    case = first_visit(tmp_path)
    out = run("next", str(case), "--accept", "--clinician", "A. Berg")
    assert "PROGRESS" in out and "accepted decision" in out
    program = doc(case)["program"]
    assert program["straight_knee"]["exercise"] == "single_leg_heel_raise"
    state = api.case_state(trail, "ANA-01")
    assert state is not None and state.override is None
    assert state.accepted is not None and state.accepted.program == program
    out = run("log", str(case), "--straight-knee-pain", "2", "--bent-knee-pain", "1",
              "--no-input")
    assert "single_leg_heel_raise 15/15/15" in out
    assert decide(case)["tracks"]["straight_knee"]["current"]["exercise"] == \
        "single_leg_heel_raise"


def _files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir())
            if p.is_file() and not p.name.endswith(("-wal", "-shm", ".lock"))}


def test_every_refusal_leaves_every_file_byte_identical(tmp_path: Path, trail: Path) -> None:
    case = first_visit(tmp_path)
    other = tmp_path / "mia.json"
    run("new", str(other), "--case-id", "MIA-02", "--review-date", day(2), "--age-years", "30",
        "--kind", "calf_strain", "--side", "right", "--no-input")
    decision = decide(case)
    mia_decision = decide(other)
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    log = ["log", str(case), "--straight-knee-done", "15,15,15", "--straight-knee-pain", "1",
           "--no-input"]
    refusals: list[tuple[list[str], str]] = [
        ([*log, "--date", tomorrow], f"{tomorrow} is after today"),
        ([*log, "--date", day(1)], "already has this session"),
        # the next morning of a session today has not come: its latest date is yesterday
        (["log", str(case), "--morning", "--date", TODAY.isoformat(), "--morning-pain", "1",
          "--no-input"], f"{TODAY.isoformat()} is after yesterday"),
        ([*log, "--date", day(2), "--second-session"], f"no session on {day(2)}"),
        ([*log, "--date", day(2), "--bent-knee-pain", "1"], "has not started"),
        (["log", str(case), "--date", day(2), "--straight-knee-done", "15,150,15",
          "--straight-knee-pain", "1", "--no-input"], "plausible range"),
        (["log", str(case), "--morning", "--date", day(1), "--morning-pain", "4",
          "--no-input"], "--replace"),
        (["assess", str(case), "--date", tomorrow, "--visa-a", "70", "--no-input"],
         "after today"),
        (["assess", str(case), "--heel-raise-involved", "200", "--heel-raise-uninvolved",
          "25", "--no-input"], "symmetry 800%"),
        (["new", str(case), "--case-id", "MIA-02", "--force", "--review-date", day(2),
          "--age-years", "30", "--kind", "calf_strain", "--side", "right", "--no-input"],
         "holds case ANA-01"),
        (["accept", str(case), "--decision", mia_decision["decision_id"]],
         "another patient"),
        (["handout", str(case), "-o", str(other), "--force"], "never replaced"),
        (["report", str(case), "-o", str(trail), "--force"], "audit trail"),
        (["audit", "export", "--out", str(other)], "never replaced"),
    ]
    for args, message in refusals:
        before = _files(tmp_path)
        out = fails(*args)
        assert message in out, (args, out)
        assert _files(tmp_path) == before, args
    # And a stale decision: the case changed since it was decided.
    run(*log, "--date", day(2))
    before = _files(tmp_path)
    out = fails("accept", str(case), "--decision", decision["decision_id"])
    assert decision["case_sha256"] in out and "--force" in out
    assert _files(tmp_path) == before


def test_a_second_session_logged_twice_is_refused_without_suggesting_the_flag_given(
    tmp_path: Path,
) -> None:
    case = first_visit(tmp_path)
    again = ["log", str(case), "--date", day(1), "--straight-knee-done", "15,15,15",
             "--straight-knee-pain", "1", "--second-session", "--no-input"]
    run(*again)  # the patient trained twice on day 1
    before = case.read_bytes()
    result = CliRunner().invoke(cli, again)
    assert result.exit_code == 1
    assert f"already has this second session on {day(1)}" in result.output
    assert "log it again with --second-session" not in result.output
    assert case.read_bytes() == before
