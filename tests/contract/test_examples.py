"""Every example file validates or fails exactly as its README says, and
the valid ones get the decisions a careful physiotherapist expects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import EXAMPLES

from calfrehab.cli.main import cli
from calfrehab.engine import api
from calfrehab.engine.api import TrackName
from calfrehab.engine.casefile.validation import read_case_file
from calfrehab.engine.errors import CaseValidationError

# file -> (outcome, {track: (decision, next exercise)})
Expected = tuple[str, dict[TrackName, tuple[str, str | None]]]
SHARED_EXPECTED: dict[str, Expected] = {
    "runner-stuck-on-two-leg.json": ("continue", {
        "straight_knee": ("progress", "single_leg_heel_raise"),
        "bent_knee": ("start", "two_leg_bent_knee_heel_raise"),
        "energy_storage": ("not_started", None)}),
    "achilles-midportion-flare.json": ("continue", {
        "straight_knee": ("regress", "two_leg_heel_raise"),
        "bent_knee": ("hold", "two_leg_bent_knee_heel_raise")}),
    "plantar-loaded.json": ("continue", {
        "straight_knee": ("progress", "weighted_single_leg_heel_raise"),
        "bent_knee": ("hold", "single_leg_bent_knee_heel_raise")}),
    "rupture-week-7.json": ("continue", {
        "straight_knee": ("hold", "two_leg_heel_raise")}),
    "red-flag-calf-swelling.json": ("refer", {
        "straight_knee": ("refer", None), "bent_knee": ("refer", None),
        "energy_storage": ("refer", None)}),
}

OWN_EXPECTED: dict[str, Expected] = {
    "runner-stuck-on-two-leg.json": SHARED_EXPECTED["runner-stuck-on-two-leg.json"],
    "achilles-insertional-pain-4-5-hold.json": ("continue", {
        "straight_knee": ("hold", "single_leg_heel_raise"),
        "bent_knee": ("progress", "single_leg_bent_knee_heel_raise")}),
    "achilles-midportion-two-leg-to-single-leg.json": ("continue", {
        "straight_knee": ("progress", "single_leg_heel_raise"),
        "bent_knee": ("start", "two_leg_bent_knee_heel_raise")}),
    "bent-knee-rung-3-weighted-straight-set-short.json": ("continue", {
        "straight_knee": ("hold", "weighted_single_leg_heel_raise"),
        "bent_knee": ("progress", "weighted_single_leg_bent_knee_heel_raise"),
        "energy_storage": ("not_started", None)}),
    "calf-strain-gastrocnemius-hops-to-running.json": ("continue", {
        "energy_storage": ("progress", "return_to_running")}),
    "calf-strain-soleus-pain-3-not-pain-free.json": ("continue", {
        "straight_knee": ("progress", "weighted_single_leg_heel_raise"),
        "bent_knee": ("hold", "two_leg_bent_knee_heel_raise")}),
    "daily-activity-insertional-loaded.json": ("continue", {
        "energy_storage": ("not_started", None)}),
    "none-runner-single-leg-both-tracks-progress.json": ("continue", {
        "straight_knee": ("progress", "weighted_single_leg_heel_raise"),
        "bent_knee": ("progress", "single_leg_bent_knee_heel_raise")}),
    "plantar-first-visit-no-sessions.json": ("continue", {
        "straight_knee": ("hold", "two_leg_heel_raise"),
        "bent_knee": ("not_started", None)}),
    "plantar-next-morning-jump-flare.json": ("continue", {
        "straight_knee": ("regress", "two_leg_heel_raise"),
        "bent_knee": ("hold", "two_leg_bent_knee_heel_raise")}),
    "plantar-single-leg-to-weighted.json": ("continue", {
        "straight_knee": ("progress", "weighted_single_leg_heel_raise"),
        "bent_knee": ("hold", "two_leg_bent_knee_heel_raise")}),
    "reactive-midportion-isometric-holds.json": ("continue", {
        "straight_knee": ("hold", "isometric_heel_raise_hold")}),
    "red-flag-recent-fluoroquinolone.json": ("refer", {"straight_knee": ("refer", None)}),
    "runner-rung-3-ready-for-pogo-hops.json": ("continue", {
        "energy_storage": ("start", "pogo_hops")}),
    "rupture-nonop-week-10-single-leg.json": ("continue", {
        "straight_knee": ("progress", "single_leg_heel_raise"),
        "bent_knee": ("start", "two_leg_bent_knee_heel_raise")}),
    "rupture-nonop-week-1-nothing-loaded.json": ("continue", {
        "straight_knee": ("not_started", None), "bent_knee": ("not_started", None),
        "energy_storage": ("not_started", None)}),
    "rupture-nonop-week-4-isometric-gate.json": ("continue", {
        "straight_knee": ("hold", "isometric_heel_raise_hold")}),
    "rupture-operative-gate-counted-from-surgery.json": ("continue", {
        "straight_knee": ("hold", "two_leg_heel_raise")}),
}

INVALID_SHARED_ERRORS = [
    ("case_id", "BAD 01"),
    ("red_flags[0]", "calf_swelling"),
    ("program.straight_knee.exercise", "single_leg_bent_knee_heel_raise"),
    ("sessions[0].date", "2026-11-25"),
    ("sessions[0].exercises[0].pain_during", "11"),
    ("sessions[0].pain_next_mornig", None),
]

def _check(path: Path, outcome: str, tracks: dict[TrackName, tuple[str, str | None]]) -> None:
    decided = api.decide_path(path, api.prepare(None))
    assert decided.decision.outcome == outcome
    for track, (decision, nxt) in tracks.items():
        td = decided.decision.tracks[track]
        assert td.decision == decision, (path.name, track)
        assert (td.next.exercise if td.next else None) == nxt, (path.name, track)


@pytest.mark.parametrize("name", sorted(SHARED_EXPECTED))
def test_shared_examples_decide_as_their_readme_says(name: str, shared_dir: Path) -> None:
    _check(shared_dir / name, *SHARED_EXPECTED[name])


@pytest.mark.parametrize("name", sorted(OWN_EXPECTED))
def test_own_examples_decide_as_their_readme_says(name: str) -> None:
    _check(EXAMPLES / name, *OWN_EXPECTED[name])


def test_every_own_valid_example_is_in_the_table() -> None:
    assert {p.name for p in EXAMPLES.glob("*.json")} == set(OWN_EXPECTED)


def test_rupture_week_7_names_the_gate(shared_dir: Path) -> None:
    decided = api.decide_path(shared_dir / "rupture-week-7.json", api.prepare(None))
    texts = " ".join(r.text for r in decided.decision.reasons)
    assert "week 10" in texts and "week 7" in texts
    why_not = api.explanation(decided)["why_not"]
    rendered = json.dumps(why_not)
    assert "2026-12-11" in rendered  # injury 2026-10-02 + 10 weeks


def test_shared_invalid_case_names_every_error(shared_dir: Path) -> None:
    with pytest.raises(CaseValidationError) as err:
        read_case_file(shared_dir / "invalid-case.json")
    found = {(e.path, e.value.strip('"') if e.value else None) for e in err.value.errors}
    for path, value in INVALID_SHARED_ERRORS:
        assert (path, value) in found, path
    assert "did you mean `pain_next_morning`" in err.value.render()
    assert len(err.value.errors) == len(INVALID_SHARED_ERRORS)


@pytest.mark.parametrize("path", sorted((EXAMPLES / "invalid").glob("*.json")),
                         ids=lambda p: p.name)
def test_own_invalid_examples_are_rejected_cleanly(path: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "INVALID" in result.output


def test_batch_examples_are_valid() -> None:
    for path in sorted((EXAMPLES / "batch").glob("*.json")):
        read_case_file(path)
    lines = (EXAMPLES / "batch" / "clinic-week.jsonl").read_text().splitlines()
    for line in lines:
        api.validate_document(json.loads(line))
    assert len(lines) >= 8
