"""Writing case files without hand-editing JSON: new, log, assess, and the
editor under them (atomic, key order and indentation kept, invalid entries
refused with the file left as it was)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import EXAMPLES
from hypothesis import given, settings
from hypothesis import strategies as st

from calfrehab.cli.main import cli
from calfrehab.engine.casefile.editor import (
    Layout,
    detect_layout,
    dumps,
    open_case,
)
from calfrehab.engine.casefile.model import Case
from calfrehab.engine.casefile.validation import read_case_file
from calfrehab.engine.errors import CaseValidationError

NEW_FLAGS = ["--case-id", "ANA-01", "--review-date", "2026-11-20", "--age-years", "41",
             "--body-mass-kg", "70", "--kind", "achilles_midportion", "--side", "left"]


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.stdout, result.stderr


def new_case(tmp_path: Path, *extra: str) -> Path:
    path = tmp_path / "ana.json"
    code, _, err = run("new", str(path), *NEW_FLAGS, *extra, "--no-input")
    assert code == 0, err
    return path


def test_new_from_flags_writes_a_valid_private_case_in_contract_order(tmp_path: Path) -> None:
    path = new_case(tmp_path, "--red-flags", "none")
    case, doc = read_case_file(path)
    assert list(doc) == list(Case.model_fields)
    assert case.case_id == "ANA-01" and case.patient.body_mass_kg == 70
    # The straight-knee track starts at the ladder's rung-1 dose.
    rx = case.program.straight_knee
    assert rx is not None
    assert (rx.exercise, rx.sets, rx.reps, rx.load_kg) == ("two_leg_heel_raise", 3, 15, 0)
    assert case.program.bent_knee is None and case.sessions == []
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_new_refuses_to_replace_a_file_unless_forced(tmp_path: Path) -> None:
    path = new_case(tmp_path)
    before = path.read_bytes()
    code, _, err = run("new", str(path), *NEW_FLAGS, "--age-years", "50", "--no-input")
    assert code == 1 and "exists" in err
    assert path.read_bytes() == before
    code, _, _ = run("new", str(path), *NEW_FLAGS, "--force", "--no-input")
    assert code == 0


def test_new_interactive_reasks_until_each_answer_fits(tmp_path: Path) -> None:
    path = tmp_path / "bo.json"
    answers = [
        "BO 1", "BO-1",          # case id: a space is not allowed
        "2026-13-01", "2026-11-20",  # review date: month 13 is not a date
        "abc", "200", "35",      # age: not a number, too old, fine
        "",                      # body mass: optional, left blank
        "",                      # sex: optional
        "",                      # goal: default running
        "achilles", "achilles_insertional",  # condition: a choice
        "left",
        "",                      # irritability: default moderate
        "",                      # onset date
        "calf_swelling_warmth, nope", "none",  # red flags
        "",                      # straight knee: default two_leg_heel_raise
        "", "", "",              # its sets, reps, load from the ladder
        "single_leg_bent_knee_heel_raise", "", "", "",
        "none",                  # energy storage not started
    ]
    code, out, err = run("new", str(path), "--interactive", input="\n".join(answers) + "\n")
    assert code == 0, out + err
    assert "is too high" in out + err and "not a calendar date" in out + err
    assert "`achilles` could be achilles_midportion, achilles_insertional, achilles_rupture" in (
        out + err) and "`nope` is not known" in out + err
    case, _ = read_case_file(path)
    assert case.case_id == "BO-1" and case.patient.age_years == 35
    assert case.condition.kind == "achilles_insertional" and case.red_flags == []
    assert case.program.bent_knee is not None
    assert case.program.bent_knee.exercise == "single_leg_bent_knee_heel_raise"


def test_new_asks_rupture_questions_only_for_a_rupture(tmp_path: Path) -> None:
    path = tmp_path / "rup.json"
    code, _, err = run("new", str(path), *NEW_FLAGS[:-4], "--kind", "achilles_rupture",
                       "--side", "right", "--no-input")
    assert code == 2 and "--injury-date is needed" in err
    code, _, err = run("new", str(path), *NEW_FLAGS[:-4], "--kind", "achilles_rupture",
                       "--side", "right", "--injury-date", "2026-09-01", "--management",
                       "operative", "--surgery-date", "2026-09-03",
                       "--straight-knee", "isometric_heel_raise_hold", "--no-input")
    assert code == 0, err
    case, _ = read_case_file(path)
    assert case.condition.surgery_date is not None
    rx = case.program.straight_knee
    assert rx is not None and rx.reps == 45  # the ladder's hold, in seconds


def test_bad_flag_names_the_flag_and_what_was_expected(tmp_path: Path) -> None:
    code, _, err = run("new", str(tmp_path / "x.json"), *NEW_FLAGS, "--side", "up",
                       "--no-input")
    assert code == 2 and "--side" in err and "left, right, both" in err
    assert not (tmp_path / "x.json").exists()


def test_log_defaults_to_the_programme_and_moves_the_review_date(tmp_path: Path) -> None:
    path = new_case(tmp_path)
    code, out, err = run("log", str(path), "--date", "2026-11-21", "--straight-knee-pain", "2",
                         "--no-input")
    assert code == 0, err
    assert "review_date moved from 2026-11-20 to 2026-11-21" in out
    case, _ = read_case_file(path)
    (session,) = case.sessions
    (done,) = session.exercises
    assert (done.exercise, done.sets_completed, done.pain_during) == (
        "two_leg_heel_raise", [15, 15, 15], 2)
    assert session.pain_next_morning is None and case.review_date.isoformat() == "2026-11-21"


def test_log_interactive_asks_reps_pain_and_the_missing_morning(tmp_path: Path) -> None:
    path = new_case(tmp_path)
    run("log", str(path), "--date", "2026-11-21", "--straight-knee-pain", "1", "--no-input")
    # Next session: asked the previous morning, then reps (typo re-asked) and pain.
    answers = ["2026-11-23", "2", "5", "15, 15, x", "15,14,12", "11", "3"]
    code, out, err = run("log", str(path), "--interactive", input="\n".join(answers) + "\n")
    assert code == 0, out + err
    case, _ = read_case_file(path)
    first, second = case.sessions_by_date()
    assert (first.pain_next_morning, first.morning_stiffness_min) == (2, 5)
    assert second.exercises[0].sets_completed == [15, 14, 12]
    assert second.exercises[0].pain_during == 3
    assert "too high" in out + err


def test_log_morning_adds_to_the_last_session_in_key_order(tmp_path: Path) -> None:
    path = new_case(tmp_path)
    code, _, err = run("log", str(path), "--morning", "--morning-pain", "1", "--no-input")
    assert code == 1 and "no session yet" in err
    run("log", str(path), "--date", "2026-11-21", "--straight-knee-pain", "1", "--no-input")
    run("log", str(path), "--date", "2026-11-22", "--straight-knee-pain", "2", "--no-input")
    code, _, err = run("log", str(path), "--morning", "--morning-pain", "3",
                       "--stiffness-min", "10", "--no-input")
    assert code == 0, err
    doc = json.loads(path.read_text())
    assert "pain_next_morning" not in doc["sessions"][0]
    assert list(doc["sessions"][1]) == ["date", "exercises", "pain_next_morning",
                                        "morning_stiffness_min"]
    assert doc["sessions"][1]["pain_next_morning"] == 3


def test_log_skipping_every_track_is_refused(tmp_path: Path) -> None:
    path = new_case(tmp_path)
    before = path.read_bytes()
    code, _, err = run("log", str(path), "--straight-knee-done", "skip", "--no-input")
    assert code == 1 and "at least one exercise" in err
    assert path.read_bytes() == before


def test_assess_adds_an_assessment_and_needs_a_measurement(tmp_path: Path) -> None:
    path = new_case(tmp_path)
    code, _, err = run("assess", str(path), "--date", "2026-11-20", "--no-input")
    assert code == 1 and "at least one measurement" in err
    code, _, err = run("assess", str(path), "--date", "2026-11-20", "--heel-raise-involved",
                       "18", "--no-input")
    assert code == 2 and "--heel-raise-uninvolved is needed" in err
    code, _, err = run("assess", str(path), "--date", "2026-11-20", "--heel-raise-involved",
                       "18", "--heel-raise-uninvolved", "25", "--visa-a", "64", "--no-input")
    assert code == 0, err
    case, _ = read_case_file(path)
    (a,) = case.assessments
    assert a.heel_raise_test is not None and a.heel_raise_test.uninvolved == 25
    assert a.visa_a == 64


def test_an_entry_into_an_invalid_file_is_refused_and_the_file_kept(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes((EXAMPLES / "invalid" / "misspelt-stiffness-field.json").read_bytes())
    before = path.read_bytes()
    code, _, err = run("log", str(path), "--straight-knee-pain", "1", "--no-input")
    assert code == 1 and "did you mean `morning_stiffness_min`" in err
    assert path.read_bytes() == before


def test_save_refuses_an_invalid_document_and_leaves_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_bytes((EXAMPLES / "runner-stuck-on-two-leg.json").read_bytes())
    before = path.read_bytes()
    cf = open_case(path)
    cf.document["sessions"][0]["exercises"][0]["pain_during"] = 11
    with pytest.raises(CaseValidationError) as info:
        cf.save()
    assert "sessions[0].exercises[0].pain_during" in info.value.render()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]  # no temp file left


@pytest.mark.parametrize("indent", ["  ", "    ", "\t"])
def test_layout_keeps_the_indent_unit(indent: str, tmp_path: Path) -> None:
    _, doc = read_case_file(EXAMPLES / "runner-stuck-on-two-leg.json")
    text = json.dumps(doc, indent=indent, ensure_ascii=False) + "\n"
    layout = detect_layout(text)
    assert layout.indent == indent and layout.final_newline
    # json.dumps breaks lists of numbers over lines; that is kept too.
    assert not layout.inline_scalar_lists
    assert dumps(doc, layout) == text


def _documents() -> list[dict[str, Any]]:
    return [read_case_file(p)[1] for p in sorted(EXAMPLES.glob("*.json"))]


@settings(max_examples=40, deadline=None)
@given(doc=st.sampled_from(_documents()),
       indent=st.sampled_from(["  ", "   ", "    ", "\t", None]),
       pain=st.integers(0, 10))
def test_an_edit_changes_only_what_it_edits(doc: dict[str, Any], indent: str | None,
                                            pain: int) -> None:
    import tempfile

    layout = Layout(indent=indent)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "case.json"
        path.write_text(dumps(doc, layout), encoding="utf-8")
        cf = open_case(path)
        assert cf.layout == layout
        sessions = cf.document.get("sessions") or []
        if not sessions:
            return
        cf.document["sessions"][-1]["pain_next_morning"] = pain
        cf.save()
        after = json.loads(path.read_text(encoding="utf-8"))
        assert list(after) == list(doc)
        expected = json.loads(json.dumps(doc))
        expected["sessions"][-1]["pain_next_morning"] = pain
        assert after == expected
        assert detect_layout(path.read_text(encoding="utf-8")) == layout
