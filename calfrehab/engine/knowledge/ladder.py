"""The exercise ladder as data: each rung's dose, and how a decision turns
the current prescription into the next one.

The rungs and their ids are the contract (:mod:`calfrehab.engine.vocabulary`);
dosages, cues, load steps and rep-max schemes come from ``ladder.yaml`` in
the rules directory. Moving is always one rung, or one load step on the
loaded rung, so no decision can jump the ladder.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from calfrehab.engine.casefile.model import Prescription as CurrentPrescription
from calfrehab.engine.vocabulary import EXERCISES, LOADED_RUNG, TRACKS, Rung, TrackName

Unit = Literal["reps", "seconds", "contacts", "minutes"]
Range = Literal["floor", "off_step", "none"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RungDose(_Model):
    rung: Rung
    exercise: str
    sets: Annotated[int, Field(ge=1, le=10)]
    reps: Annotated[int, Field(ge=1, le=50)]
    unit: Unit = "reps"
    tempo: str
    frequency: str
    range: Range = "floor"
    surface: str = "flat ground"
    cues: list[str] = Field(default_factory=list)
    goals: list[Literal["running", "sport", "daily_activity"]] | None = None
    sources: list[str] = Field(min_length=1)


class LadderTrack(_Model):
    rungs: list[RungDose] = Field(min_length=1)

    def at(self, rung: int) -> RungDose | None:
        for dose in self.rungs:
            if dose.rung == rung:
                return dose
        return None


class SchemeStep(_Model):
    sets: Annotated[int, Field(ge=1, le=10)]
    reps: Annotated[int, Field(ge=1, le=50)]


class LoadScheme(_Model):
    title: str
    steps: list[SchemeStep] = Field(min_length=1)
    sources: list[str] = Field(min_length=1)


class LoadRules(_Model):
    step_kg: Annotated[float, Field(gt=0, le=50)]
    first_load_kg: Annotated[float, Field(ge=0, le=100)]
    schemes: dict[str, LoadScheme]
    # condition kind -> scheme, or -> {track: scheme} where a protocol is
    # for one track only (Rathleff's towel raise is straight-knee).
    scheme_by_condition: dict[str, str | dict[str, str]]
    sources: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _known(self) -> LoadRules:
        if "default" not in self.scheme_by_condition:
            raise ValueError("scheme_by_condition needs a `default`")
        for kind, value in self.scheme_by_condition.items():
            names = value.values() if isinstance(value, dict) else [value]
            for name in names:
                if name not in self.schemes:
                    raise ValueError(f"scheme_by_condition.{kind}: unknown scheme `{name}`")
            if isinstance(value, dict):
                for track in value:
                    if track not in TRACKS:
                        raise ValueError(f"scheme_by_condition.{kind}: unknown track `{track}`")
        if not isinstance(self.scheme_by_condition["default"], str):
            raise ValueError("scheme_by_condition.default must name one scheme")
        return self


class ExerciseInfo(_Model):
    name: str


class Ladder(_Model):
    exercises: dict[str, ExerciseInfo]
    tracks: dict[TrackName, LadderTrack]
    load: LoadRules

    @model_validator(mode="after")
    def _consistent(self) -> Ladder:
        problems = []
        for ex in EXERCISES:
            if ex not in self.exercises:
                problems.append(f"exercises: `{ex}` has no entry")
        for ex in self.exercises:
            if ex not in EXERCISES:
                problems.append(f"exercises: unknown exercise id `{ex}`")
        for track in TRACKS:
            if track not in self.tracks:
                problems.append(f"tracks: `{track}` missing")
                continue
            for dose in self.tracks[track].rungs:
                where = EXERCISES.get(dose.exercise)
                if where is None:
                    problems.append(f"tracks.{track}: unknown exercise id `{dose.exercise}`")
                elif where != (track, dose.rung):
                    problems.append(
                        f"tracks.{track}: `{dose.exercise}` is rung {where[1]} of {where[0]}, "
                        f"not rung {dose.rung} of {track}"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class NextPrescription(BaseModel):
    """The prescription a decision proposes (decision-document ``next``)."""

    model_config = ConfigDict(frozen=True)

    exercise: str
    name: str
    load_kg: float
    sets: int
    reps: int
    unit: Unit
    tempo: str
    frequency: str
    range: Range
    surface: str
    cues: list[str]


def _from_dose(
    ladder: Ladder, dose: RungDose, load: float, sets: int, reps: int
) -> NextPrescription:
    return NextPrescription(
        exercise=dose.exercise,
        name=ladder.exercises[dose.exercise].name,
        load_kg=round(load, 2),
        sets=sets,
        reps=reps,
        unit=dose.unit,
        tempo=dose.tempo,
        frequency=dose.frequency,
        range=dose.range,
        surface=dose.surface,
        cues=list(dose.cues),
    )


def _dose_for(ladder: Ladder, track: str, exercise: str) -> RungDose:
    rung = EXERCISES[exercise][1]
    lt = ladder.tracks[track]  # type: ignore[index]
    for dose in lt.rungs:
        if dose.exercise == exercise:
            return dose
    found = lt.at(rung)
    if found is None:
        raise KeyError(f"ladder has no rung {rung} on {track}")
    # Same rung, other exercise (seated calf raise beside the weighted raise).
    return found.model_copy(update={"exercise": exercise})


def scheme_for(ladder: Ladder, condition_kind: str, track: str) -> LoadScheme:
    default = ladder.load.scheme_by_condition["default"]
    assert isinstance(default, str)
    value = ladder.load.scheme_by_condition.get(condition_kind, default)
    name = value.get(track, default) if isinstance(value, dict) else value
    return ladder.load.schemes[name]


def hold(ladder: Ladder, track: str, current: CurrentPrescription) -> NextPrescription:
    dose = _dose_for(ladder, track, current.exercise)
    return _from_dose(ladder, dose, current.load_kg, current.sets, current.reps)


def start(ladder: Ladder, track: str, rung: int) -> NextPrescription:
    dose = ladder.tracks[track].at(rung)  # type: ignore[index]
    if dose is None:
        raise KeyError(f"ladder has no rung {rung} on {track}")
    load = ladder.load.first_load_kg if rung == LOADED_RUNG else 0.0
    return _from_dose(ladder, dose, load, dose.sets, dose.reps)


def progress(
    ladder: Ladder, track: str, current: CurrentPrescription, condition_kind: str
) -> NextPrescription:
    rung = EXERCISES[current.exercise][1]
    if rung == LOADED_RUNG:
        # Within the loaded rung a progression is a load step, moving one
        # step along the rep-max scheme (heavier load, fewer reps).
        steps = scheme_for(ladder, condition_kind, track).steps
        nxt = _next_step(steps, current.sets, current.reps)
        dose = _dose_for(ladder, track, current.exercise)
        return _from_dose(ladder, dose, current.load_kg + ladder.load.step_kg, nxt.sets, nxt.reps)
    up = ladder.tracks[track].at(rung + 1)  # type: ignore[index]
    if up is None:
        raise KeyError(f"no rung above {rung} on {track}")
    if rung + 1 == LOADED_RUNG:
        first = scheme_for(ladder, condition_kind, track).steps[0]
        return _from_dose(ladder, up, ladder.load.first_load_kg, first.sets, first.reps)
    return _from_dose(ladder, up, 0.0, up.sets, up.reps)


def regress(
    ladder: Ladder, track: str, current: CurrentPrescription, condition_kind: str
) -> NextPrescription | None:
    rung = EXERCISES[current.exercise][1]
    if rung == LOADED_RUNG and current.load_kg - ladder.load.step_kg > 0:
        steps = scheme_for(ladder, condition_kind, track).steps
        prev = _previous_step(steps, current.sets, current.reps)
        dose = _dose_for(ladder, track, current.exercise)
        return _from_dose(ladder, dose, current.load_kg - ladder.load.step_kg, prev.sets, prev.reps)
    lt = ladder.tracks[track]  # type: ignore[index]
    down = lt.at(rung - 1)
    if down is None:
        if rung == min(d.rung for d in lt.rungs):
            if track == "energy_storage":
                return None  # off the bottom of the energy-storage track: paused
            return hold(ladder, track, current)
        raise KeyError(f"no rung below {rung} on {track}")
    return _from_dose(ladder, down, 0.0, down.sets, down.reps)


def _next_step(steps: list[SchemeStep], sets: int, reps: int) -> SchemeStep:
    for i, step in enumerate(steps):
        if (step.sets, step.reps) == (sets, reps):
            return steps[min(i + 1, len(steps) - 1)]
    for step in steps:
        if step.reps < reps:
            return step
    return SchemeStep(sets=sets, reps=reps)


def _previous_step(steps: list[SchemeStep], sets: int, reps: int) -> SchemeStep:
    for i, step in enumerate(steps):
        if (step.sets, step.reps) == (sets, reps):
            return steps[max(i - 1, 0)]
    return SchemeStep(sets=sets, reps=reps)
