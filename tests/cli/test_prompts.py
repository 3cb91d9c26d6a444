"""Interactive and flag answers to choice questions: any case, a unique
start or word start, several matches offered, the closest suggested."""

from __future__ import annotations

import pytest

from calfrehab.cli.prompts import match_choice
from calfrehab.engine.api import AnswerError

KINDS = ("achilles_midportion", "achilles_insertional", "plantar_fasciopathy",
         "achilles_rupture", "calf_strain", "none")
GOALS = ("daily_activity", "running", "sport")
SIDES = ("left", "right", "both")


def test_exact_any_case_and_unique_starts() -> None:
    assert match_choice("Right", SIDES) == "right"
    assert match_choice("R", SIDES) == "right"
    assert match_choice("plantar", KINDS) == "plantar_fasciopathy"
    assert match_choice("Calf strain", KINDS) == "calf_strain"
    assert match_choice("rupture", KINDS) == "achilles_rupture"  # a word's start
    assert match_choice("insertional", KINDS) == "achilles_insertional"


def test_several_matches_are_offered() -> None:
    with pytest.raises(AnswerError) as err:
        match_choice("Achilles", KINDS)
    text = str(err.value)
    assert "achilles_midportion" in text and "achilles_insertional" in text
    assert "achilles_rupture" in text and "which one" in text


def test_a_typo_gets_the_closest_suggested() -> None:
    with pytest.raises(AnswerError, match=r"did you mean running"):
        match_choice("runing", GOALS)
    with pytest.raises(AnswerError, match=r"expected one of left, right, both"):
        match_choice("xyz", SIDES)
