"""The ladder's moves, read from the shipped ladder.yaml: one rung at a
time, one load step on the loaded rung (a share of the load through the
calf, in plates), and a rep-max scheme that follows the calendar."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calfrehab.engine.casefile.model import Prescription
from calfrehab.engine.knowledge import ladder as ops
from calfrehab.engine.knowledge.ladder import MoveContext
from calfrehab.engine.knowledge.loader import load_ladder
from calfrehab.engine.vocabulary import EXERCISES

LADDER = load_ladder()
PLATE = LADDER.load.plate_kg
PERCENT = LADDER.load.step_percent


def rx(exercise: str, load: float = 0, sets: int = 3, reps: int = 15) -> Prescription:
    return Prescription(exercise=exercise, load_kg=load, sets=sets, reps=reps)  # type: ignore[arg-type]


@pytest.mark.parametrize("exercise", [e for e, (t, r) in EXERCISES.items() if r < 3])
def test_progress_below_the_loaded_rung_is_one_rung_up(exercise: str) -> None:
    track, rung = EXERCISES[exercise]
    nxt = ops.progress(LADDER, track, rx(exercise), "none")
    assert EXERCISES[nxt.exercise] == (track, rung + 1)


def test_a_load_step_is_a_share_of_the_load_through_the_calf_in_plates() -> None:
    # Standing: body mass + external load (70 + 10 kg), in plates.
    standing = ops.progress(LADDER, "straight_knee", rx("weighted_single_leg_heel_raise", 10),
                            MoveContext("achilles_midportion", 1, 70))
    expected = math.floor((70 + 10) * PERCENT / 100 / PLATE + 0.5) * PLATE
    assert standing.load_kg == pytest.approx(10 + expected)
    # Seated: the external load alone goes through the calf.
    seated = ops.progress(LADDER, "bent_knee", rx("seated_calf_raise", 60),
                          MoveContext("none", 1, 70))
    plates = math.floor(60 * PERCENT / 100 / PLATE + 0.5)
    assert seated.load_kg == pytest.approx(60 + plates * PLATE)


@given(st.integers(0, 80).map(lambda n: n * PLATE), st.one_of(st.none(), st.floats(25, 250)))
def test_a_load_step_is_whole_plates_and_at_least_one(load: float, mass: float | None) -> None:
    step = ops.load_step_kg(LADDER, "weighted_single_leg_heel_raise", load, mass)
    assert step >= PLATE
    assert abs(step / PLATE - round(step / PLATE)) < 1e-9


@pytest.mark.parametrize(("week", "dose"), [
    (1, (3, 15)), (2, (3, 12)), (3, (3, 12)), (4, (4, 10)), (5, (4, 10)),
    (6, (4, 8)), (8, (4, 8)), (9, (4, 6)), (12, (4, 6)), (20, (4, 6)),
])
def test_heavy_slow_resistance_follows_the_calendar(week: int, dose: tuple[int, int]) -> None:
    # Beyer 2015: 15RM week 1, 12RM weeks 2-3, 10RM 4-5, 8RM 6-8, 6RM 9-12.
    nxt = ops.progress(LADDER, "straight_knee", rx("weighted_single_leg_heel_raise", 10, 3, 15),
                       MoveContext("achilles_midportion", week, 70))
    assert (nxt.sets, nxt.reps) == dose


@pytest.mark.parametrize(("week", "dose"), [(1, (3, 12)), (2, (3, 12)), (3, (4, 10)),
                                            (4, (4, 10)), (5, (5, 8)), (9, (5, 8))])
def test_plantar_scheme_follows_the_calendar(week: int, dose: tuple[int, int]) -> None:
    # Rathleff 2015: 3 x 12RM weeks 1-2, 4 x 10RM weeks 3-4, 5 x 8RM from week 5.
    nxt = ops.progress(LADDER, "straight_knee", rx("weighted_single_leg_heel_raise", 5, 3, 12),
                       MoveContext("plantar_fasciopathy", week, 60))
    assert (nxt.sets, nxt.reps) == dose


def test_a_dose_ahead_of_the_logged_calendar_is_not_stepped_back() -> None:
    nxt = ops.progress(LADDER, "straight_knee", rx("weighted_single_leg_heel_raise", 20, 4, 8),
                       MoveContext("none", 1, 70))
    assert (nxt.sets, nxt.reps) == (4, 8)


def test_plantar_scheme_is_for_the_straight_knee_towel_raise_only() -> None:
    sk = ops.progress(LADDER, "straight_knee", rx("single_leg_heel_raise"), "plantar_fasciopathy")
    bk = ops.progress(LADDER, "bent_knee", rx("single_leg_bent_knee_heel_raise"),
                      "plantar_fasciopathy")
    assert (sk.sets, sk.reps) == (3, 12)  # Rathleff 2015: 12RM first
    assert (bk.sets, bk.reps) == (3, 15)  # heavy slow resistance starts at 15RM


def test_regress_on_the_loaded_rung_takes_a_step_off_then_leaves_the_rung() -> None:
    lighter = ops.regress(LADDER, "bent_knee", rx("seated_calf_raise", 40, 3, 12), "none")
    assert lighter is not None and lighter.exercise == "seated_calf_raise"
    step = ops.load_step_kg(LADDER, "seated_calf_raise", 40, None)
    assert lighter.load_kg == pytest.approx(40 - step)
    assert (lighter.sets, lighter.reps) == (3, 12)  # the calendar, not the regression, sets them
    down = ops.regress(LADDER, "bent_knee", rx("seated_calf_raise", PLATE, 3, 15), "none")
    assert down is not None and EXERCISES[down.exercise] == ("bent_knee", 2)


def test_regress_off_the_first_energy_rung_pauses_the_track() -> None:
    assert ops.regress(LADDER, "energy_storage", rx("pogo_hops", 0, 3, 20), "none") is None


def test_every_rung_says_how_many_sessions_a_week() -> None:
    for exercise in EXERCISES:
        assert 1 <= ops.sessions_per_week(LADDER, exercise) <= 14
