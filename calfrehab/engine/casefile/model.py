"""The case file, version 1, as pydantic models (``shared/spec/case-format.md``).

Field-level rules (types, ranges, enums, unknown fields) live here. Rules that
span fields (dates against ``review_date``, an exercise on its own track,
what a rupture requires) live in :mod:`calfrehab.engine.casefile.validation`, which is
the one way to build a :class:`Case` from untrusted input, so that every error
of a file is reported at once.
"""

# No `from __future__ import annotations` in this module of pydantic models:
# pydantic evaluates a string annotation by compiling it (a typing.ForwardRef)
# each time a class is defined, about 25 us an annotation, which a cold
# `calfrehab next` paid at every run (issue 28 item 4). Annotations are plain
# expressions here; a name not yet defined is quoted.

import re
from collections import Counter
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt

from calfrehab.engine.vocabulary import ExerciseId

SUPPORTED_SCHEMA_VERSIONS = (1,)

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Plausible ranges for every number and date of a case file. A value outside
# them is a typing slip or a hostile file, never a patient: refusing it as a
# field error keeps year-1 dates (date arithmetic overflows), 10^16 heel
# raises (a limb-symmetry index no rule is written for) and 400-digit loads
# out of the engine. docs/case-format.md lists them.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2100, 12, 31)
MAX_COUNT = 999  # heel raises in a test, repetitions or seconds in one set
MAX_LOAD_KG = 500.0  # added load on a heel raise
MAX_STIFFNESS_MIN = 1440  # minutes of morning stiffness: a whole day


def _iso_date(value: Any) -> Any:
    # JSON has no date type: accept only the spec's YYYY-MM-DD string, never a
    # number that pydantic's lax mode would read as a Unix timestamp.
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("expected a date as a string YYYY-MM-DD")
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise ValueError("not a calendar date; expected YYYY-MM-DD") from None
    if not EARLIEST_DATE <= parsed <= LATEST_DATE:
        raise ValueError(f"date out of range; expected a date from {EARLIEST_DATE} "
                         f"to {LATEST_DATE}")
    return parsed


def _exact_int(value: Any) -> Any:
    # Literal[1] alone would take true and 1.0 for 1.
    if type(value) is not int:
        raise ValueError("expected the integer 1")
    return value


CaseDate = Annotated[
    date,
    BeforeValidator(_iso_date),
    # Shown in the JSON Schema; the validator above enforces it.
    Field(json_schema_extra={"formatMinimum": str(EARLIEST_DATE),
                             "formatMaximum": str(LATEST_DATE)}),
]
# Numbers must be JSON numbers: "3" is not 3, and true is not 1.
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Score10 = Annotated[StrictInt, Field(ge=0, le=10)]
Count = Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]
LoadKg = Annotated[Number, Field(ge=0, le=MAX_LOAD_KG)]

RedFlag = Literal[
    "suspected_rupture",
    "calf_swelling_warmth",
    "unremitting_night_pain",
    "systemic_symptoms",
    "neurological_signs",
    "recent_fluoroquinolone",
    "bilateral_without_cause",
]
ConditionKind = Literal[
    "achilles_midportion",
    "achilles_insertional",
    "plantar_fasciopathy",
    "achilles_rupture",
    "calf_strain",
    "none",
]
Goal = Literal["running", "daily_activity", "sport"]
Irritability = Literal["high", "moderate", "low"]
Side = Literal["left", "right", "both"]
Sex = Literal["female", "male", "other", "unknown"]
Management = Literal["operative", "non_operative"]
Muscle = Literal["gastrocnemius", "soleus"]


class _Strict(BaseModel):
    # The parts of a case build their own validators and serializers when
    # first used on their own (defer_build): validating a case (Case, below,
    # built at import) builds the schema of every part into its own
    # validator, so a cold `calfrehab next` built ten validators to use one
    # (issue 28 item 4).
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False, strict=False,
                              defer_build=True)


class Patient(_Strict):
    age_years: Annotated[StrictInt, Field(ge=12, le=100)]
    body_mass_kg: Annotated[Number, Field(ge=25, le=250)] | None = None
    sex: Sex | None = None
    goal: Goal = "running"


class Condition(_Strict):
    kind: ConditionKind
    side: Side
    onset_date: CaseDate | None = None
    irritability: Irritability = "moderate"
    injury_date: CaseDate | None = None
    management: Management | None = None
    surgery_date: CaseDate | None = None
    muscle: Muscle | None = None


class Prescription(_Strict):
    exercise: ExerciseId
    load_kg: LoadKg = 0
    sets: Annotated[StrictInt, Field(ge=1, le=10)]
    reps: Annotated[StrictInt, Field(ge=1, le=50)]


class Program(_Strict):
    # Null means nothing is loaded yet: a first visit, or a rupture before
    # its first gate (case-format.md).
    straight_knee: Prescription | None = None
    bent_knee: Prescription | None = None
    energy_storage: Prescription | None = None

    def on(self, track: str) -> Prescription | None:
        value: Prescription | None = getattr(self, track)
        return value


class PerformedExercise(_Strict):
    exercise: ExerciseId
    load_kg: LoadKg = 0
    sets_completed: list[Count] = Field(min_length=1)
    pain_during: Score10


_MORNING: set[str] = {"pain_next_morning", "morning_stiffness_min"}


class Session(_Strict):
    date: CaseDate
    exercises: list[PerformedExercise] = Field(min_length=1)
    pain_next_morning: Score10 | None = None
    morning_stiffness_min: Annotated[StrictInt, Field(ge=0, le=MAX_STIFFNESS_MIN)] | None = None
    # A further session on the same date, entered on purpose (twice-daily
    # programmes): without it, a session identical to another on its date
    # is the same session entered twice and counts once (clinical-basis §8).
    second_session: Literal[True] | None = None

    def same_entry(self) -> str:
        """What makes two sessions the same session entered twice: date,
        exercises done and the second-session mark (next-morning values are
        added later, to either copy), as one comparable text."""
        return self.model_dump_json(exclude=_MORNING)


class HeelRaiseTest(_Strict):
    involved: Count
    uninvolved: Count | None = None


class Assessment(_Strict):
    date: CaseDate
    heel_raise_test: HeelRaiseTest | None = None
    pain_at_rest: Score10 | None = None
    visa_a: Annotated[StrictInt, Field(ge=0, le=100)] | None = None
    hop_pain: Score10 | None = None


_Dated = TypeVar("_Dated", Session, Assessment)


def _none_yet() -> list[Any]:
    # The default of a case's lists. A Python function, not the builtin
    # `list`: pydantic asks each default factory's signature whether it takes
    # the validated data, and a builtin's signature is parsed from its text
    # with tokenize, whose regular expressions then compile (about 3 ms of a
    # cold `calfrehab next`, issue 28 item 4). The JSON Schema is the same
    # (a default factory is not shown in it).
    return []


def _once(entries: list[_Dated], key: Callable[[_Dated], str]) -> list[tuple[int, _Dated]]:
    """(index, entry) of each entry whose ``key`` no later entry repeats.
    Equal keys include the date, so only entries sharing a date with
    another are keyed: most files have one entry a date, and serialising
    every entry to compare was a third of computing a case's facts."""
    dates = [e.date for e in entries]
    if len(set(dates)) == len(dates):
        return list(enumerate(entries))
    shared = {d for d, n in Counter(dates).items() if n > 1}
    keys = [key(e) if e.date in shared else str(i) for i, e in enumerate(entries)]
    last = {k: i for i, k in enumerate(keys)}
    return [(i, e) for i, e in enumerate(entries) if last[keys[i]] == i]


class Case(_Strict):
    # Built at import: every command that reads a case validates one.
    model_config = ConfigDict(defer_build=False)

    schema_version: Annotated[Literal[1], BeforeValidator(_exact_int)]
    case_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
    review_date: CaseDate
    patient: Patient
    condition: Condition
    red_flags: list[RedFlag] = Field(default_factory=_none_yet)
    program: Program
    sessions: list[Session] = Field(default_factory=_none_yet)
    assessments: list[Assessment] = Field(default_factory=_none_yet)

    def indexed_sessions(self) -> list[tuple[int, Session]]:
        """(index in the file, session), oldest first, each session once.

        The spec lets a file list sessions in any order; Python's sort is
        stable, so two sessions on one day keep file order. A session
        identical to a later one on its date (:meth:`Session.same_entry`)
        is the same session entered twice and is left out: the later copy
        stands, since next-morning values went to the latest entry. A file
        without such duplicates reads exactly as before."""
        kept = _once(self.sessions, lambda s: s.same_entry())
        return sorted(kept, key=lambda pair: pair[1].date)

    def indexed_assessments(self) -> list[tuple[int, Assessment]]:
        """(index in the file, assessment), oldest first; an assessment
        identical to another (every value and the date) counts once."""
        kept = _once(self.assessments, lambda a: a.model_dump_json())
        return sorted(kept, key=lambda pair: pair[1].date)

    def sessions_by_date(self) -> list[Session]:
        """Sessions oldest first, each once (:meth:`indexed_sessions`)."""
        return [s for _, s in self.indexed_sessions()]

    def assessments_by_date(self) -> list[Assessment]:
        return [a for _, a in self.indexed_assessments()]


def case_json_schema() -> dict[str, Any]:
    """The published JSON Schema of the case file (``calfrehab schema``)."""
    schema = Case.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "calfrehab case file, version 1"
    schema["description"] = (
        "One patient's calf rehabilitation at one review. Also enforced: dates in sessions "
        "and assessments not after review_date; each program track's exercise belongs to "
        "that track; achilles_rupture requires condition.injury_date and condition.management; "
        "red flags listed once each; heel_raise_test.uninvolved required unless side is both; "
        "condition dates not after review_date, and surgery_date not before injury_date."
    )
    return schema
