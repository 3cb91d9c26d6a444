"""The exercise ids and tracks of the case-file contract.

Ids, tracks and rung numbers are part of the contract in
``shared/spec/exercise-ladder.md``: case files and decisions name them, so
they are fixed here. Everything that a clinic may change about them (plain
names, dosages, cues, load steps) lives in the rule files' ladder.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal


class Track(StrEnum):
    STRAIGHT_KNEE = "straight_knee"
    BENT_KNEE = "bent_knee"
    ENERGY_STORAGE = "energy_storage"


TrackName = Literal["straight_knee", "bent_knee", "energy_storage"]
TRACKS: tuple[TrackName, ...] = ("straight_knee", "bent_knee", "energy_storage")
STRENGTH_TRACKS: tuple[TrackName, ...] = ("straight_knee", "bent_knee")

ExerciseId = Literal[
    "isometric_heel_raise_hold",
    "two_leg_heel_raise",
    "single_leg_heel_raise",
    "weighted_single_leg_heel_raise",
    "isometric_bent_knee_hold",
    "two_leg_bent_knee_heel_raise",
    "single_leg_bent_knee_heel_raise",
    "weighted_single_leg_bent_knee_heel_raise",
    "seated_calf_raise",
    "pogo_hops",
    "single_leg_hops",
    "return_to_running",
]

# exercise id -> (track, rung)
EXERCISES: dict[str, tuple[TrackName, int]] = {
    "isometric_heel_raise_hold": ("straight_knee", 0),
    "two_leg_heel_raise": ("straight_knee", 1),
    "single_leg_heel_raise": ("straight_knee", 2),
    "weighted_single_leg_heel_raise": ("straight_knee", 3),
    "isometric_bent_knee_hold": ("bent_knee", 0),
    "two_leg_bent_knee_heel_raise": ("bent_knee", 1),
    "single_leg_bent_knee_heel_raise": ("bent_knee", 2),
    "weighted_single_leg_bent_knee_heel_raise": ("bent_knee", 3),
    "seated_calf_raise": ("bent_knee", 3),
    "pogo_hops": ("energy_storage", 4),
    "single_leg_hops": ("energy_storage", 5),
    "return_to_running": ("energy_storage", 6),
}

ISOMETRIC_EXERCISES = frozenset({"isometric_heel_raise_hold", "isometric_bent_knee_hold"})
LOADED_RUNG = 3


def track_of(exercise: str) -> TrackName:
    return EXERCISES[exercise][0]


def rung_of(exercise: str) -> int:
    return EXERCISES[exercise][1]


def exercises_on(track: str) -> list[str]:
    return [ex for ex, (tr, _) in EXERCISES.items() if tr == track]
