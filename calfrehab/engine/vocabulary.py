"""The contract's names: tracks, decision kinds, outcomes, rungs, exercise ids.

They are part of the contract in ``shared/spec/`` (exercise-ladder.md,
decision-format.md): case files, rule files, decision documents and the
audit trail name them, so they are spelled here once and imported
everywhere else. Everything that a clinic may change about them (plain
names, dosages, cues, load steps) lives in the rule files' ladder.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal, get_args

from pydantic import Field

TrackName = Literal["straight_knee", "bent_knee", "energy_storage"]
# In the contract's order: decision documents list tracks in this order.
TRACKS: Final[tuple[TrackName, ...]] = get_args(TrackName)
STRENGTH_TRACKS: Final[tuple[TrackName, ...]] = ("straight_knee", "bent_knee")

# What a decision document says for one track (decision-format.md).
DecisionKind = Literal["progress", "hold", "regress", "start", "not_started", "refer"]
DECISION_KINDS: Final[tuple[DecisionKind, ...]] = get_args(DecisionKind)
# What a rule's ``then: {decision: ...}`` may say; "not_started" and "refer"
# are reached otherwise (no start rule fired; ``then: {refer: true}``).
RuleDecision = Literal["progress", "hold", "regress", "start"]

# A decision document's outcome for the whole case.
Outcome = Literal["continue", "refer"]
OUTCOMES: Final[tuple[Outcome, ...]] = get_args(Outcome)

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

EXERCISE_IDS: Final[tuple[ExerciseId, ...]] = get_args(ExerciseId)
ISOMETRIC_EXERCISES = frozenset({"isometric_heel_raise_hold", "isometric_bent_knee_hold"})
# Rungs number the ladder from the isometric hold (0) to running (6); the
# strength tracks end at the loaded rung, where progression adds load.
FIRST_RUNG: Final = 0
LOADED_RUNG: Final = 3
LAST_RUNG: Final = 6
Rung = Annotated[int, Field(ge=FIRST_RUNG, le=LAST_RUNG)]


def rung_of(exercise: str) -> int:
    return EXERCISES[exercise][1]


def exercises_on(track: str) -> list[str]:
    return [ex for ex, (tr, _) in EXERCISES.items() if tr == track]
