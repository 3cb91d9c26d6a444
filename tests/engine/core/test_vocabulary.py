"""The contract's names are spelled once (calfrehab/engine/vocabulary.py),
and every other place that lists them agrees: the case model, the published
schemas, the shipped ladder and the CLI's words for them. A name added in
one place and not another fails here, not in a clinic."""

from __future__ import annotations

from typing import get_args

import pytest

from calfrehab.cli import audit_cmd, render
from calfrehab.engine import api
from calfrehab.engine.casefile.model import Program
from calfrehab.engine.vocabulary import (
    DECISION_KINDS,
    EXERCISE_IDS,
    EXERCISES,
    FIRST_RUNG,
    LAST_RUNG,
    LOADED_RUNG,
    OUTCOMES,
    TRACKS,
    ExerciseId,
    RuleDecision,
)


def test_exercise_ids_and_the_ladder_table_list_the_same_ids_in_order() -> None:
    # ExerciseId is spelled out for the type checker; EXERCISES gives each id
    # its track and rung. Both must name the same ids.
    assert tuple(EXERCISES) == EXERCISE_IDS == get_args(ExerciseId)


def test_every_track_climbs_from_its_first_rung_without_gaps() -> None:
    for track in TRACKS:
        rungs = sorted({r for t, r in EXERCISES.values() if t == track})
        assert rungs == list(range(rungs[0], rungs[-1] + 1)), track
        assert rungs[0] >= FIRST_RUNG and rungs[-1] <= LAST_RUNG
    strength = [r for t, r in EXERCISES.values() if t != "energy_storage"]
    assert max(strength) == LOADED_RUNG


def test_the_case_model_has_one_program_field_per_track() -> None:
    assert tuple(Program.model_fields) == TRACKS


def test_the_decision_schema_uses_the_vocabulary() -> None:
    schema = api.decision_json_schema()
    assert tuple(schema["$defs"]["TrackDecision"]["properties"]["decision"]["enum"]) == (
        DECISION_KINDS)
    assert tuple(schema["properties"]["outcome"]["enum"]) == OUTCOMES
    assert tuple(schema["properties"]["tracks"]["propertyNames"]["enum"]) == TRACKS


def test_rule_decisions_are_decision_kinds() -> None:
    assert set(get_args(RuleDecision)) < set(DECISION_KINDS)


def test_the_shipped_ladder_places_every_exercise_where_the_vocabulary_does() -> None:
    ladder = api.load_ladder()
    assert set(ladder.tracks) == set(TRACKS)
    assert set(ladder.exercises) == set(EXERCISES)
    for track, spec in ladder.tracks.items():
        for dose in spec.rungs:
            assert EXERCISES[dose.exercise] == (track, dose.rung), dose.exercise


@pytest.mark.parametrize(("name", "words", "names"), [
    ("render.TRACK_TITLES", render.TRACK_TITLES, TRACKS),
    ("render.DECISION_WORDS", render.DECISION_WORDS, DECISION_KINDS),
    ("audit_cmd.TRACK_SHORT", audit_cmd.TRACK_SHORT, TRACKS),
    ("audit_cmd.DECISION_SHORT", audit_cmd.DECISION_SHORT, DECISION_KINDS),
])
def test_the_cli_has_a_word_for_every_name(
    name: str, words: dict[str, str], names: tuple[str, ...],
) -> None:
    assert set(words) == set(names), name
