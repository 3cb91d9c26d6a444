"""The course simulator (`calfrehab simulate`, api.simulate) and course
tables: weekly reviews of a scripted patient under the current rules."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from helpers import EXAMPLES
from hypothesis import given, settings
from hypothesis import strategies as st

from calfrehab.cli.main import cli
from calfrehab.engine import api
from calfrehab.engine.course.replay import session_offsets
from calfrehab.engine.course.script import ScriptError, parse_script
from calfrehab.engine.inference.driver import Reasoner
from calfrehab.engine.knowledge.loader import default_rules_dir
from calfrehab.engine.ruletest.casetable import run_tables
from calfrehab.engine.vocabulary import EXERCISES, TRACKS

COURSES = default_rules_dir() / "courses" / "clinical-basis-7.yaml"
STARTS: dict[str, dict[str, Any]] = yaml.safe_load(COURSES.read_text(encoding="utf-8"))["starts"]


def _write(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(STARTS[name]), encoding="utf-8")
    return path


def test_a_course_is_deterministic(reasoner: Reasoner) -> None:
    one = api.simulate_document(STARTS["midportion-two-leg"], reasoner, weeks=6)
    two = api.simulate_document(STARTS["midportion-two-leg"], reasoner, weeks=6)
    assert one.model_dump_json() == two.model_dump_json()
    assert [r.week for r in one.rows] == list(range(7))


def test_each_review_applies_the_previous_next(reasoner: Reasoner) -> None:
    course = api.simulate_document(STARTS["midportion-two-leg"], reasoner, weeks=4)
    rows = course.rows
    # Intake: two-leg raises held (nothing logged yet); then single-leg,
    # then the loaded rung, one rung a week.
    assert rows[0].tracks["straight_knee"].decision == "hold"
    assert [rows[w].tracks["straight_knee"].exercise for w in (1, 2, 3)] == [
        "two_leg_heel_raise", "single_leg_heel_raise", "weighted_single_leg_heel_raise"]
    # Sessions follow each rung's frequency: daily raises, 3 a week loaded.
    assert rows[2].tracks["straight_knee"].sessions == 7
    assert rows[3].tracks["straight_knee"].sessions == 3


def test_rupture_tracks_are_not_started_before_week_2(reasoner: Reasoner) -> None:
    course = api.simulate_document(STARTS["rupture-non-operative"], reasoner, weeks=3)
    for row in course.rows[:2]:
        assert row.injury_week is not None and row.injury_week < 2
        assert row.outcome == "continue"
        assert {t.decision for t in row.tracks.values()} == {"not_started"}
    iso = course.milestone("isometric_heel_raise_hold")
    assert iso is not None and iso.injury_week == 2


@pytest.mark.parametrize("per_week", [1, 2, 3, 5, 7])
def test_sessions_are_spread_over_the_week(per_week: int) -> None:
    days = session_offsets(per_week)
    assert len(days) == per_week and all(0 <= d < 7 for d in days)


@pytest.mark.parametrize("spec", ["flare", "flare:0", "ideal:3", "sore:2", "missed:x", ""])
def test_bad_scripts_are_named(spec: str) -> None:
    with pytest.raises(ScriptError, match="script"):
        parse_script(spec)


@settings(max_examples=6, deadline=None)
@given(st.sampled_from(["flare", "missed", "painful"]), st.integers(1, 5))
def test_an_unhappy_week_never_speeds_a_course_up(kind: str, week: int) -> None:
    reasoner = api.prepare()
    start = STARTS["midportion-two-leg"]
    ideal = api.simulate_document(start, reasoner, weeks=7)
    other = api.simulate_document(start, reasoner, weeks=7, script=f"{kind}:{week}")
    for row, best in zip(other.rows, ideal.rows, strict=True):
        for track in TRACKS:
            a, b = row.tracks[track], best.tracks[track]
            rung_a = -1 if a.exercise is None else EXERCISES[a.exercise][1]
            rung_b = -1 if b.exercise is None else EXERCISES[b.exercise][1]
            assert (rung_a, a.load_kg or 0) <= (rung_b, b.load_kg or 0), (row.week, track)
    for m in other.milestones:
        same = ideal.milestone(m.key)
        assert same is None or m.week >= same.week, m.key


# ------------------------------------------------------------------ CLI


def test_simulate_prints_a_table_per_track_and_the_milestones(tmp_path: Path) -> None:
    path = _write(tmp_path, "plantar-loaded")
    out = CliRunner().invoke(cli, ["simulate", str(path), "--weeks", "6"])
    assert out.exit_code == 0, out.output
    text = out.output
    for title in ("Straight knee (gastrocnemius)", "Bent knee (soleus)",
                  "Energy storage (hops, running)", "Milestones (the week each was first done)"):
        assert title in text
    assert "week   3  Straight knee (gastrocnemius): 4 × 10 with load" in text
    assert "week   5  Straight knee (gastrocnemius): 5 × 8 with load" in text
    # Words, not ids (issue 22): names, decision words, units on every dose.
    for code_word in ("straight_knee", "weighted_single_leg_heel_raise", "progress ",
                      "not_started"):
        assert code_word not in text, code_word


def test_simulate_says_each_dose_with_its_unit_as_next_does(tmp_path: Path) -> None:
    """Issue 22: `return_to_running 0 kg 1 x 20` where next says minutes,
    `5 x 45` where next says `5 x 45 s`."""
    runner = EXAMPLES / "calf-strain-gastrocnemius-hops-to-running.json"
    text = CliRunner().invoke(cli, ["simulate", str(runner), "--weeks", "2"]).output
    assert "Return to running: walk-run program" in text and "1 × 20 min" in text
    assert "3 × 20 contacts" in text and "4 × 8, +90 kg" in text
    assert " 0 kg" not in text and "return_to_running" not in text
    holds = EXAMPLES / "reactive-midportion-isometric-holds.json"
    text = CliRunner().invoke(cli, ["simulate", str(holds), "--weeks", "1"]).output
    assert re.search(r"\d+ × 45 s\b", text), text
    assert "first Isometric heel-raise hold, straight knee" in text


def test_simulate_json_and_scripts(tmp_path: Path) -> None:
    path = _write(tmp_path, "midportion-two-leg")
    out = CliRunner().invoke(cli, ["simulate", str(path), "--weeks", "4", "--script",
                                   "missed:2", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["script"] == "missed:2" and len(doc["rows"]) == 5
    assert doc["rows"][2]["tracks"]["straight_knee"]["sessions"] == 0


def test_simulate_errors_are_clean(tmp_path: Path) -> None:
    path = _write(tmp_path, "midportion-two-leg")
    bad = CliRunner().invoke(cli, ["simulate", str(path), "--script", "flare"])
    assert bad.exit_code == 1
    assert "error: script 'flare'" in bad.output and "Traceback" not in bad.output
    weeks = CliRunner().invoke(cli, ["simulate", str(path), "--weeks", "0"])
    assert weeks.exit_code == 2 and "--weeks" in weeks.output
    invalid = tmp_path / "bad.json"
    invalid.write_text(json.dumps({**STARTS["midportion-two-leg"], "case_id": "a b"}))
    out = CliRunner().invoke(cli, ["simulate", str(invalid)])
    assert out.exit_code == 1 and "case_id" in out.output and "Traceback" not in out.output


def test_review_day_moves_the_review_not_the_training(tmp_path: Path) -> None:
    # The intake (2027-01-04) is a Monday: training starts that day, so a
    # Sunday review is the last day of each week, a Monday one the first day
    # of the next; both prescribe Rathleff's blocks on time (§2 as amended).
    path = _write(tmp_path, "plantar-loaded")
    for day, first_review in (("sunday", "2027-01-10"), ("last", "2027-01-10"),
                              ("monday", "2027-01-11"), ("first", "2027-01-11")):
        out = CliRunner().invoke(cli, ["simulate", str(path), "--weeks", "6", "--review-day",
                                       day, "--json"])
        assert out.exit_code == 0, out.output
        doc = json.loads(out.output)
        assert doc["rows"][1]["review_date"] == first_review, day
        assert doc["review_day"] in ("first", "last")
        weeks = {m["key"]: m["week"] for m in doc["milestones"]}
        assert weeks["straight_knee.4x10"] == 3 and weeks["straight_knee.5x8"] == 5, day
    text = CliRunner().invoke(cli, ["simulate", str(path), "--weeks", "2",
                                    "--review-day", "sunday"]).output
    assert "on the last day of each training week" in text


def test_a_mid_week_review_day_is_refused_naming_the_two_that_fit(tmp_path: Path) -> None:
    path = _write(tmp_path, "plantar-loaded")
    out = CliRunner().invoke(cli, ["simulate", str(path), "--review-day", "friday"])
    assert out.exit_code == 1 and "Traceback" not in out.output
    assert "review day 'friday'" in out.output
    assert "(sunday)" in out.output and "(monday)" in out.output
    odd = CliRunner().invoke(cli, ["simulate", str(path), "--review-day", "someday"])
    assert odd.exit_code == 1 and "expected first, last or a weekday name" in odd.output


def test_a_first_visit_with_no_sessions_and_no_load_simulates(tmp_path: Path) -> None:
    # Issue 22 item 4: a program written without load_kg (the case format's
    # default, 0) crashed the replay with KeyError: 'load_kg'.
    doc = {**STARTS["midportion-two-leg"],
           "program": {"straight_knee": {"exercise": "two_leg_heel_raise", "sets": 3,
                                         "reps": 15}}}
    path = tmp_path / "first.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    out = CliRunner().invoke(cli, ["simulate", str(path), "--weeks", "2", "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)["rows"]
    assert rows[0]["tracks"]["straight_knee"]["load_kg"] == 0


def test_the_soleus_goal_met_late_holds_no_one(reasoner: Reasoner) -> None:
    # §2 as amended: the goal is shown, not a gate. The 95 kg runner runs
    # weeks before the bent-knee load through the calf reaches 1.5 x body weight.
    course = api.simulate_document(STARTS["runner-heavy"], reasoner, weeks=14)
    running = course.milestone("return_to_running")
    assert running is not None and running.week <= 12
    mass = STARTS["runner-heavy"]["patient"]["body_mass_kg"]
    met = [r.week for r in course.rows
           if r.tracks["bent_knee"].load_kg is not None
           and r.tracks["bent_knee"].exercise == "weighted_single_leg_bent_knee_heel_raise"
           and (mass + r.tracks["bent_knee"].load_kg) / mass >= 1.5]
    assert met and met[0] > running.week


def test_a_running_decision_says_how_far_the_soleus_load_is_from_the_goal(
        reasoner: Reasoner) -> None:
    doc = {**STARTS["runner-heavy"],
           "program": {
               "straight_knee": {"exercise": "weighted_single_leg_heel_raise", "load_kg": 10,
                                 "sets": 3, "reps": 12},
               "bent_knee": {"exercise": "seated_calf_raise", "load_kg": 58, "sets": 3,
                             "reps": 12}}}
    decided = api.decide_document(doc, reasoner)
    texts = {r.rule: r.text for r in decided.decision.reasons}
    assert "x body weight of the 1.5 goal" in texts["soleus-goal-running@bent_knee"]
    assert "0.611" in texts["soleus-goal-running@bent_knee"]


# ------------------------------------------------------------ course tables


def test_a_course_that_misses_its_window_fails_by_name(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), rules,
                    ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    # Rows that cannot pass fail by file and row name, never a traceback.
    table = yaml.safe_load(COURSES.read_text(encoding="utf-8"))
    table["courses"] = [
        {"name": "window missed", "start": "plantar-loaded", "weeks": 4,
         "milestones": {"straight_knee.5x8": [1, 2]}},
        {"name": "unknown start", "start": "nope", "weeks": 2},
        {"name": "bad key", "start": "plantar-loaded", "weeks": 2,
         "milestones": {"straight_knee.heavy": [1, 2]}},
        {"name": "ideal cannot be slower", "start": "plantar-loaded", "weeks": 2,
         "slower_than_ideal": True},
    ]
    (rules / "courses" / "clinical-basis-7.yaml").write_text(yaml.safe_dump(table))
    report = run_tables(rules)
    got = {r.name: r.problems for r in report.results
           if r.file == "courses/clinical-basis-7.yaml"}
    assert got["window missed"] == [
        "straight_knee.5x8: not reached in 4 weeks (expected weeks 1-2)"]
    assert got["unknown start"][0].startswith("bad start: start `nope`")
    assert got["bad key"][0].startswith("unknown milestone key `straight_knee.heavy`")
    assert got["ideal cannot be slower"] == ["slower_than_ideal needs a script other than ideal"]
    assert not report.ok


def _peak_calf_load_bw(course: Any, ladder: Any, body_mass: float) -> dict[str, float]:
    """Per track, the most load through the calf in the projected weeks
    (not the intake), as a multiple of body weight."""
    from calfrehab.engine.knowledge.ladder import calf_load_kg

    peak: dict[str, float] = {}
    for row in course.rows[1:]:
        for track, tw in row.tracks.items():
            if tw.exercise is None or not tw.load_kg:
                continue
            ratio = calf_load_kg(ladder, tw.exercise, tw.load_kg, body_mass) / body_mass
            peak[track] = max(peak.get(track, 0.0), ratio)
    return peak


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_a_twelve_week_projection_stops_at_the_rule_bases_load_ceiling(
        reasoner: Reasoner, example: str) -> None:
    """Issue 22 item 4: no +95 kg single-leg raise for a 78 kg runner.
    The ceiling is rulebase.yaml's projection_load_ceiling_bw; a load the
    intake already carries past it is kept, never raised."""
    document = json.loads((EXAMPLES / example).read_text(encoding="utf-8"))
    base = reasoner.compiled.base
    params = base.manifest.params()
    ceiling = float(params["projection_load_ceiling_bw"])
    mass = float(document["patient"].get("body_mass_kg")
                 or params["projection_reference_body_mass_kg"])
    course = api.simulate_document(document, reasoner, weeks=12)
    intake = _peak_calf_load_bw(course.model_copy(update={"rows": course.rows[:1] * 2}),
                                base.ladder, mass)
    for track, ratio in _peak_calf_load_bw(course, base.ladder, mass).items():
        assert ratio <= max(ceiling, intake.get(track, 0.0)) + 1e-9, (track, ratio)


def test_the_ceiling_is_the_rule_bases_setting(tmp_path: Path) -> None:
    """Lower the setting in a copy of the rules and the projection stops
    lower: the number is data, not code."""
    rules = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), rules)
    manifest = rules / "rulebase.yaml"
    text = manifest.read_text(encoding="utf-8")
    assert "projection_load_ceiling_bw: 1.5" in text
    manifest.write_text(text.replace("projection_load_ceiling_bw: 1.5",
                                     "projection_load_ceiling_bw: 1.2"), encoding="utf-8")
    case = EXAMPLES / "plantar-single-leg-to-weighted.json"
    mass = float(json.loads(case.read_text(encoding="utf-8"))["patient"]["body_mass_kg"])
    shipped = api.simulate(case, weeks=12)
    lowered = api.simulate(case, weeks=12, rules_dir=rules)

    def top(course: Any) -> float:
        return max((tw.load_kg or 0.0) for r in course.rows
                   for t, tw in r.tracks.items() if t == "straight_knee")

    assert top(lowered) < top(shipped)
    assert top(lowered) <= 0.2 * mass


def test_a_referred_case_gets_no_projection(reasoner: Reasoner) -> None:
    """A referral stops the course at the intake (simulate) and the report
    draws no projected course for it."""
    from calfrehab.engine.report.build import report_data

    case = EXAMPLES / "red-flag-recent-fluoroquinolone.json"
    course = api.simulate_document(json.loads(case.read_text(encoding="utf-8")), reasoner,
                                   weeks=12)
    assert course.referred_week == 0 and [r.week for r in course.rows] == [0]
    data = report_data(case)
    assert data.projection is None
    assert "No projection: the case is referred." in data.projection_note
