"""The ladder's moves, read from the shipped ladder.yaml: one rung at a
time, one load step on the loaded rung, each condition's rep-max scheme."""

from __future__ import annotations

import pytest

from calfrehab.engine.casefile.model import Prescription
from calfrehab.engine.knowledge import ladder as ops
from calfrehab.engine.knowledge.loader import load_ladder
from calfrehab.engine.vocabulary import EXERCISES

LADDER = load_ladder()
STEP = LADDER.load.step_kg


def rx(exercise: str, load: float = 0, sets: int = 3, reps: int = 15) -> Prescription:
    return Prescription(exercise=exercise, load_kg=load, sets=sets, reps=reps)  # type: ignore[arg-type]


@pytest.mark.parametrize("exercise", [e for e, (t, r) in EXERCISES.items() if r < 3])
def test_progress_below_the_loaded_rung_is_one_rung_up(exercise: str) -> None:
    track, rung = EXERCISES[exercise]
    nxt = ops.progress(LADDER, track, rx(exercise), "none")
    assert EXERCISES[nxt.exercise] == (track, rung + 1)


def test_progress_on_the_loaded_rung_adds_one_step_along_the_scheme() -> None:
    nxt = ops.progress(LADDER, "straight_knee",
                       rx("weighted_single_leg_heel_raise", 10, 3, 15), "achilles_midportion")
    assert nxt.exercise == "weighted_single_leg_heel_raise"
    assert nxt.load_kg == 10 + STEP
    assert (nxt.sets, nxt.reps) == (3, 12)  # heavy slow resistance: 15RM then 12RM


def test_plantar_scheme_is_for_the_straight_knee_towel_raise_only() -> None:
    sk = ops.progress(LADDER, "straight_knee", rx("single_leg_heel_raise"), "plantar_fasciopathy")
    bk = ops.progress(LADDER, "bent_knee", rx("single_leg_bent_knee_heel_raise"),
                      "plantar_fasciopathy")
    assert (sk.sets, sk.reps) == (3, 12)  # Rathleff 2015: 12RM first
    assert (bk.sets, bk.reps) == (3, 15)  # heavy slow resistance starts at 15RM


def test_regress_on_the_loaded_rung_takes_a_step_off_then_leaves_the_rung() -> None:
    lighter = ops.regress(LADDER, "bent_knee", rx("seated_calf_raise", 20, 3, 12), "none")
    assert lighter is not None and lighter.exercise == "seated_calf_raise"
    assert lighter.load_kg == 20 - STEP
    down = ops.regress(LADDER, "bent_knee", rx("seated_calf_raise", STEP, 3, 15), "none")
    assert down is not None and EXERCISES[down.exercise] == ("bent_knee", 2)


def test_regress_off_the_first_energy_rung_pauses_the_track() -> None:
    assert ops.regress(LADDER, "energy_storage", rx("pogo_hops", 0, 3, 20), "none") is None
