"""The safety policy as unit tables (tests/policy/*.yaml): conflict
resolution, ladder moves on the shipped ladder, the prescribe phase and the
facts the prescribe phase reads. No durable-rules here: the policy is pure.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from calfrehab.engine.casefile.model import Prescription
from calfrehab.engine.errors import EngineError
from calfrehab.engine.inference import policy
from calfrehab.engine.inference.policy import Modifier, TrackResult, Vote
from calfrehab.engine.knowledge import ladder as ladder_ops
from calfrehab.engine.knowledge.ladder import Ladder
from calfrehab.engine.knowledge.loader import load_rulebase
from calfrehab.engine.knowledge.rulelang import Prescribe
from calfrehab.engine.knowledge.views import prescribe_view
from calfrehab.engine.vocabulary import TRACKS

TABLES = Path(__file__).resolve().parent


def _table(name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = yaml.safe_load((TABLES / name).read_text(encoding="utf-8"))
    return rows


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return [row["name"] for row in rows]


def _votes(rows: list[list[Any]]) -> list[Vote]:
    return [Vote(row[0], row[1], row[2] if len(row) > 2 else None) for row in rows]


@pytest.fixture(scope="module")
def ladder() -> Ladder:
    return load_rulebase(None).ladder


CONFLICTS = _table("conflicts.yaml")
MOVES = _table("moves.yaml")
PRESCRIBES = _table("prescribe.yaml")


def test_the_tables_are_not_empty() -> None:
    # Guards the parametrised tests below against passing vacuously.
    assert len(CONFLICTS) >= 5 and len(MOVES) >= 10 and len(PRESCRIBES) >= 4


@pytest.mark.parametrize("row", CONFLICTS, ids=_ids(CONFLICTS))
def test_conflict_resolution(row: dict[str, Any]) -> None:
    verdict = policy.resolve_conflict(_votes(row["votes"]))
    want = row["expect"]
    got = {"decision": verdict.decision, "deciding": verdict.deciding,
           "overruled": verdict.overruled, "rungs": verdict.rungs}
    assert got == want


@pytest.mark.parametrize("row", MOVES, ids=_ids(MOVES))
def test_ladder_moves(row: dict[str, Any], ladder: Ladder) -> None:
    track = row["track"]
    current = Prescription.model_validate(row["current"]) if row["current"] else None
    program: dict[str, Prescription | None] = dict.fromkeys(TRACKS)
    program[track] = current
    votes = {track: _votes(row["votes"])}
    # The other tracks are not started and get no votes: they stay so.
    kwargs: dict[str, Any] = {
        "program": program, "condition_kind": row.get("kind", "achilles_midportion"),
        "goal": row.get("goal", "running"), "ladder": ladder,
        # The loaded rung's moves: the week on the rep-max scheme, and the
        # body mass a load step is a share of (with the external load).
        "scheme_weeks": {track: row.get("scheme_week", 1)},
        "body_mass_kg": row.get("body_mass_kg"),
    }
    want = row["expect"]
    if "error" in want:
        with pytest.raises(EngineError, match=re.escape(want["error"])):
            policy.resolve(votes, [], **kwargs)
        return
    outcome, tracks = policy.resolve(votes, [], **kwargs)
    assert outcome == "continue"
    assert [t for t in tracks] == list(TRACKS)
    result = tracks[track]
    assert result.decision == want["decision"]
    assert result.current == current
    nxt = result.next
    got = None if nxt is None else [nxt.exercise, nxt.load_kg, nxt.sets, nxt.reps]
    assert got == want["next"]
    for key in ("deciding", "overruled"):
        if key in want:
            assert getattr(result, key) == want[key]
    for other in TRACKS:
        if other != track:
            assert tracks[other] == TrackResult(other, "not_started", None, None)


@pytest.mark.parametrize("row", PRESCRIBES, ids=_ids(PRESCRIBES))
def test_prescribe_phase(row: dict[str, Any], ladder: Ladder) -> None:
    track = "straight_knee"
    held = ladder_ops.hold(ladder, track, Prescription(exercise=row["exercise"], sets=3, reps=15))
    mods = [Modifier(m["rule"], m["priority"],
                     prescribe_view(Prescribe.model_validate(m["prescribe"])))
            for m in row["modifiers"]]
    nxt, applied = policy.prescribe(held, mods)
    want = dict(row["expect"])
    assert applied == want.pop("applied")
    for name, value in want.items():
        assert getattr(nxt, name) == value, name
    # Everything the rules did not name is the ladder's.
    fields = ("range", "surface", "tempo", "frequency", "cues")  # a PrescribeView's
    named = {n for m in mods for n, v in zip(fields, m.prescribe, strict=True) if v} | {"cues"}
    for name in type(held).model_fields:
        if name not in named:
            assert getattr(nxt, name) == getattr(held, name), name


def test_apply_prescriptions_skips_tracks_without_a_next(ladder: Ladder) -> None:
    current = Prescription(exercise="single_leg_hops", sets=3, reps=10)
    paused = TrackResult("energy_storage", "regress", current, None, ["r"])
    held = ladder_ops.hold(ladder, "straight_knee",
                           Prescription(exercise="two_leg_heel_raise", sets=3, reps=15))
    going = TrackResult("straight_knee", "hold", None, held, ["h"])
    mod = Modifier("m", 1, prescribe_view(Prescribe(cues=["slowly"])))
    before = {"energy_storage": paused, "straight_knee": going}
    after = policy.apply_prescriptions(
        before, {"energy_storage": [mod], "straight_knee": [mod]})
    assert after["energy_storage"] is paused
    assert after["straight_knee"].modifiers == ["m"]
    assert after["straight_knee"].next is not None
    assert after["straight_knee"].next.cues[0] == "slowly"
    # Pure: the input results are untouched.
    assert going.modifiers == [] and going.next == held


def test_any_referral_refers_every_track(ladder: Ladder) -> None:
    current = Prescription(exercise="two_leg_heel_raise", sets=3, reps=15)
    program: dict[str, Prescription | None] = {
        "straight_knee": current, "bent_knee": None, "energy_storage": None}
    outcome, tracks = policy.resolve(
        {"straight_knee": [Vote("progress", "p@straight_knee")]}, ["red-flag", "other"],
        program=program, condition_kind="achilles_midportion", goal="running", ladder=ladder)
    assert outcome == "refer"
    assert {t: (r.decision, r.next, r.deciding) for t, r in tracks.items()} == {
        t: ("refer", None, ["red-flag", "other"]) for t in TRACKS}
    assert tracks["straight_knee"].current == current


def test_decision_facts(ladder: Ladder) -> None:
    held = ladder_ops.hold(ladder, "straight_knee",
                           Prescription(exercise="single_leg_heel_raise", sets=3, reps=15))
    facts = policy.decision_facts({
        "straight_knee": TrackResult("straight_knee", "hold", None, held),
        "energy_storage": TrackResult("energy_storage", "not_started", None, None),
    })
    assert facts == {
        "straight_knee.decision": "hold",
        "straight_knee.next_exercise": "single_leg_heel_raise",
        "straight_knee.next_rung": 2,
        "energy_storage.decision": "not_started",
    }


_DECISIONS = st.sampled_from(["refer", "regress", "hold", "progress", "start"])


@given(st.lists(st.tuples(_DECISIONS, st.integers(0, 6)), min_size=1, max_size=8))
def test_the_most_severe_vote_always_wins(raw: list[tuple[str, int]]) -> None:
    votes = [Vote(d, f"rule{i}", rung if d == "start" else None)
             for i, (d, rung) in enumerate(raw)]
    verdict = policy.resolve_conflict(votes)
    top = max(policy.SEVERITY[v.decision] for v in votes)
    assert policy.SEVERITY[verdict.decision] == top
    # Every vote is either deciding or overruled, never both, order kept.
    assert sorted(verdict.deciding + verdict.overruled) == sorted(v.rule for v in votes)
    assert verdict.deciding == [v.rule for v in votes if v.rule in verdict.deciding]
    # Firing order never changes the decision.
    assert policy.resolve_conflict(votes[::-1]).decision == verdict.decision
