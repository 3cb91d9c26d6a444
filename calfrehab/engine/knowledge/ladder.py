"""The exercise ladder as data: each rung's dose, and how a decision turns
the current prescription into the next one.

The rungs and their ids are the contract (:mod:`calfrehab.engine.vocabulary`);
dosages, cues, load steps and rep-max schemes come from ``ladder.yaml`` in
the rules directory. Moving is always one rung, or one load step on the
loaded rung, so no decision can jump the ladder.
"""

# No `from __future__ import annotations` in this module of pydantic models:
# pydantic evaluates a string annotation by compiling it (a typing.ForwardRef)
# each time a class is defined, about 25 us an annotation, which a cold
# `calfrehab next` paid at every run (issue 28 item 4). Annotations are plain
# expressions here; a name not yet defined is quoted.

import itertools
import math
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from calfrehab.engine.casefile.model import Prescription as CurrentPrescription
from calfrehab.engine.vocabulary import EXERCISES, LOADED_RUNG, TRACKS, Rung, TrackName

Unit = Literal["reps", "seconds", "contacts", "minutes"]
Range = Literal["floor", "off_step", "none"]


class _Model(BaseModel):
    # Built on first validation: a run whose compiled rule base comes from
    # knowledge/cache.py never validates a ladder (issue 28 item 4).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


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
    # Sessions a week the rung is done in (what `frequency` says, as a
    # number): the course simulator lays out a week's sessions from it.
    sessions_per_week: Annotated[int, Field(ge=1, le=14)]
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
    # The week on the scheme this block starts (1 = the first week on the
    # loaded rung); a block lasts until the next one's week.
    from_week: Annotated[int, Field(ge=1, le=104)]


class LoadScheme(_Model):
    title: str
    steps: list[SchemeStep] = Field(min_length=1)
    sources: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _calendar(self) -> "LoadScheme":
        weeks = [s.from_week for s in self.steps]
        if weeks[0] != 1:
            raise ValueError("the first step of a scheme starts at from_week 1")
        if any(b <= a for a, b in itertools.pairwise(weeks)):
            raise ValueError("scheme steps must start in rising weeks (from_week)")
        return self

    def index_of(self, sets: int, reps: int) -> int | None:
        for i, step in enumerate(self.steps):
            if (step.sets, step.reps) == (sets, reps):
                return i
        return None

    def at_week(self, week: int) -> SchemeStep:
        """The block the given week on the scheme falls in."""
        found = self.steps[0]
        for step in self.steps:
            if step.from_week <= week:
                found = step
        return found


class LoadRules(_Model):
    # One load step: this percentage of the load through the calf (ACSM:
    # 2-10%), rounded to plate_kg and never less than one plate.
    step_percent: Annotated[float, Field(ge=2, le=10)]
    plate_kg: Annotated[float, Field(gt=0, le=20)]
    first_load_kg: Annotated[float, Field(ge=0, le=100)]
    # Raises where body weight does not go through the calf (a seated raise):
    # the load through the calf is the external load alone.
    seated_exercises: list[str] = Field(default_factory=list)
    schemes: dict[str, LoadScheme]
    # condition kind -> scheme, or -> {track: scheme} where a protocol is
    # for one track only (Rathleff's towel raise is straight-knee).
    scheme_by_condition: dict[str, str | dict[str, str]]
    sources: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _known(self) -> "LoadRules":
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
        for ex in self.seated_exercises:
            where = EXERCISES.get(ex)
            if where is None or where[1] != LOADED_RUNG:
                raise ValueError(f"seated_exercises: `{ex}` is not an exercise of the loaded rung")
        return self


class ExerciseInfo(_Model):
    name: str


class Ladder(_Model):
    exercises: dict[str, ExerciseInfo]
    tracks: dict[TrackName, LadderTrack]
    load: LoadRules

    @model_validator(mode="after")
    def _consistent(self) -> "Ladder":
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

    # Built when first asked for (a dump, a document read back): the engine
    # makes these from the validated ladder and case (_trusted), so a
    # decision printed and not recorded builds no validator (issue 28 item 4).
    model_config = ConfigDict(frozen=True, defer_build=True)

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


def _trusted(values: dict[str, Any]) -> NextPrescription:
    """A NextPrescription from trusted values, every field given in the
    model's order: what ``model_construct`` makes (the same ``__dict__``,
    fields set, no extra, no private), without its per-field search for
    aliases and defaults, which cost more than the rest of a ladder move
    (tests/policy/test_trusted.py compares the two)."""
    m = NextPrescription.__new__(NextPrescription)
    _set(m, "__dict__", values)
    _set(m, "__pydantic_fields_set__", set(values))
    _set(m, "__pydantic_extra__", None)
    _set(m, "__pydantic_private__", None)
    return m


_set = object.__setattr__


def with_changes(nxt: NextPrescription, update: dict[str, Any]) -> NextPrescription:
    """``nxt`` with some fields replaced by trusted values (the prescribe
    phase's): ``model_copy(update=...)``, made as :func:`_trusted` makes
    a prescription."""
    return _trusted({**nxt.__dict__, **update})


def _from_dose(
    ladder: Ladder, dose: RungDose, load: float, sets: int, reps: int
) -> NextPrescription:
    # Every value comes from the validated ladder and case (the load made a
    # float here, as validation would): built without validating again, on
    # the per-case path.
    return _trusted({
        "exercise": dose.exercise,
        "name": ladder.exercises[dose.exercise].name,
        "load_kg": float(round(load, 2)),
        "sets": sets,
        "reps": reps,
        "unit": dose.unit,
        "tempo": dose.tempo,
        "frequency": dose.frequency,
        "range": dose.range,
        "surface": dose.surface,
        "cues": list(dose.cues),
    })


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


def calf_load_kg(ladder: Ladder, exercise: str, load_kg: float,
                 body_mass_kg: float | None) -> float:
    """The load through the calf: body mass plus external load on a
    standing raise, the external load alone on a seated one. Without a body
    mass only the external load is known."""
    if exercise in ladder.load.seated_exercises or body_mass_kg is None:
        return load_kg
    return body_mass_kg + load_kg


def load_step_kg(ladder: Ladder, exercise: str, load_kg: float,
                 body_mass_kg: float | None) -> float:
    """One load step: step_percent of the load through the calf, rounded
    to plates, at least one plate."""
    plate = ladder.load.plate_kg
    raw = calf_load_kg(ladder, exercise, load_kg, body_mass_kg) * ladder.load.step_percent / 100
    # Half a plate or more rounds up (not to even: 1.5 plates is 2, 2.5 is 3).
    return max(plate, math.floor(raw / plate + 0.5) * plate)


class MoveContext(NamedTuple):
    """What a move needs besides the prescription: the condition (its
    rep-max scheme), the week on the scheme the next sessions fall in, and
    the body mass (load steps are a share of the load through the calf)."""

    # A NamedTuple, not a frozen dataclass: cold start (docs/architecture.md,
    # "Small records").

    condition_kind: str
    scheme_week: int = 1
    body_mass_kg: float | None = None


def _context(ctx: MoveContext | str) -> MoveContext:
    return MoveContext(ctx) if isinstance(ctx, str) else ctx


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
    ladder: Ladder, track: str, current: CurrentPrescription, context: MoveContext | str
) -> NextPrescription:
    ctx = _context(context)
    rung = EXERCISES[current.exercise][1]
    if rung == LOADED_RUNG:
        # Within the loaded rung a progression is a load step; the sets x
        # reps follow the calendar (the week on the scheme), not the number
        # of load steps, so within a week's block only the load rises.
        scheme = scheme_for(ladder, ctx.condition_kind, track)
        block = scheme.at_week(ctx.scheme_week)
        now = scheme.index_of(current.sets, current.reps)
        if now is not None and now > scheme.steps.index(block):
            # A dose already further along the scheme than the logged calendar
            # shows (the log starts late) is not stepped back by a progression.
            block = scheme.steps[now]
        dose = _dose_for(ladder, track, current.exercise)
        step = load_step_kg(ladder, current.exercise, current.load_kg, ctx.body_mass_kg)
        return _from_dose(ladder, dose, current.load_kg + step, block.sets, block.reps)
    up = ladder.tracks[track].at(rung + 1)  # type: ignore[index]
    if up is None:
        raise KeyError(f"no rung above {rung} on {track}")
    if rung + 1 == LOADED_RUNG:
        first = scheme_for(ladder, ctx.condition_kind, track).at_week(1)
        return _from_dose(ladder, up, ladder.load.first_load_kg, first.sets, first.reps)
    return _from_dose(ladder, up, 0.0, up.sets, up.reps)


def regress(
    ladder: Ladder, track: str, current: CurrentPrescription, context: MoveContext | str,
    toward: int | None = None,
) -> NextPrescription | None:
    """One rung down, or one load step less on the loaded rung. With
    ``toward`` (a rule's ``regress`` with a ``rung``): one whole rung down,
    on the loaded rung too, and never below that rung (there it holds)."""
    ctx = _context(context)
    rung = EXERCISES[current.exercise][1]
    if toward is not None:
        below = ladder.tracks[track].at(rung - 1)  # type: ignore[index]
        if rung <= toward or below is None:
            return hold(ladder, track, current)
        return _from_dose(ladder, below, 0.0, below.sets, below.reps)
    if rung == LOADED_RUNG:
        step = load_step_kg(ladder, current.exercise, current.load_kg, ctx.body_mass_kg)
        if current.load_kg - step > 0:
            # Less load, same block: the calendar, not the regression, sets
            # the sets x reps.
            dose = _dose_for(ladder, track, current.exercise)
            return _from_dose(ladder, dose, current.load_kg - step, current.sets, current.reps)
    lt = ladder.tracks[track]  # type: ignore[index]
    down = lt.at(rung - 1)
    if down is None:
        if rung == min(d.rung for d in lt.rungs):
            if track == "energy_storage":
                return None  # off the bottom of the energy-storage track: paused
            return hold(ladder, track, current)
        raise KeyError(f"no rung below {rung} on {track}")
    return _from_dose(ladder, down, 0.0, down.sets, down.reps)


def sessions_per_week(ladder: Ladder, exercise: str) -> int:
    """How many sessions a week the exercise's rung is done in."""
    track, _ = EXERCISES[exercise]
    return _dose_for(ladder, track, exercise).sessions_per_week
