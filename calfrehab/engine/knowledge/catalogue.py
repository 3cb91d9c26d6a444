"""The fact catalogue: every base fact the rule language may name, with its
type, meaning and (for enumerated strings) the values it can take; and the
rule-base settings fact computation reads.

This is knowledge, not computation: the compiler checks rules against it
and the docs are generated from it. The values themselves are computed from
a case by :mod:`calfrehab.engine.inference.facts`.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, get_args

from calfrehab.engine.casefile.model import (
    ConditionKind,
    Goal,
    Irritability,
    Management,
    Muscle,
    RedFlag,
    Side,
)
from calfrehab.engine.vocabulary import DECISION_KINDS, EXERCISE_IDS, TRACKS

FactType = Literal["bool", "int", "number", "str"]
FactValue = bool | int | float | str


class FactSpec(NamedTuple):
    """A base fact the rule language may name: its type, what it means, and
    for enumerated strings the values it can take."""

    # A NamedTuple, not a frozen dataclass: cold start (docs/architecture.md,
    # "Small records").

    name: str
    type: FactType
    doc: str
    choices: tuple[str, ...] | None = None
    # For facts that count time from a date: the date field the explainer
    # uses to say when a gate will open.
    per_week_from: str | None = None


class FactSettings(NamedTuple):
    """The rule base's settings that fact computation reads (rulebase.yaml,
    ladder.yaml)."""

    # A NamedTuple, as FactSpec.
    window_sessions: int
    stiffness_window_days: int
    # Loaded-rung exercises with no body weight through the calf (a seated
    # raise), from ladder.yaml: their calf load is the external load alone.
    seated_exercises: frozenset[str] = frozenset()


def _enum(name: str, doc: str, choices: tuple[str, ...]) -> FactSpec:
    return FactSpec(name, "str", doc, choices)


# The enumerations come from the case model, so a value added to the case
# format is a fact value the rules can name (and a red flag gets its fact).
RED_FLAGS: tuple[str, ...] = get_args(RedFlag)

CASE_FACTS: tuple[FactSpec, ...] = (
    _enum("condition.kind", "condition kind", get_args(ConditionKind)),
    _enum("condition.irritability", "clinician's irritability rating", get_args(Irritability)),
    _enum("condition.management", "rupture management", get_args(Management)),
    _enum("condition.muscle", "strained muscle", get_args(Muscle)),
    _enum("condition.side", "involved side", get_args(Side)),
    _enum("patient.goal", "patient's goal", get_args(Goal)),
    FactSpec("patient.age_years", "int", "age in years"),
    FactSpec("patient.body_mass_kg", "number", "body mass in kg"),
    *(FactSpec(f"red_flag.{flag}", "bool", f"red flag {flag} recorded") for flag in RED_FLAGS),
    FactSpec("red_flags.count", "int", "number of red flags recorded"),
    FactSpec("injury.weeks_since", "int",
             "whole weeks from injury (or surgery, when operative) to review date",
             per_week_from="injury.anchor"),
    FactSpec("injury.days_since", "int", "days from injury (or surgery) to review date"),
    FactSpec("sessions.count", "int", "sessions logged"),
    FactSpec("sessions.days_since_last", "int",
             "days from the last logged session to review date"),
    FactSpec("session.pain_next_morning_last", "int",
             "next-morning pain after the last session (missing when that session has none)"),
    FactSpec("session.pain_next_morning_change", "int",
             "next-morning pain after the last session minus after the one before "
             "(missing unless both are recorded)"),
    FactSpec("session.stiffness_change_min", "number",
             "mean morning stiffness of the last window minus the window before (minutes)"),
    FactSpec("session.stiffness_change_pct", "number",
             "that change as a percentage of the earlier window's mean (a rise from a mean of "
             "0 counts as 100%)"),
    FactSpec("assessment.pain_at_rest", "int", "latest pain at rest"),
    FactSpec("assessment.days_since_last", "int",
             "days from the latest assessment to the review date"),
    FactSpec("assessment.visa_a", "int", "latest VISA-A score"),
    FactSpec("assessment.hop_pain", "int", "latest pain during 10 single-leg hops"),
    FactSpec("assessment.heel_raise_involved", "int", "latest heel-raise test, involved side"),
    FactSpec("assessment.heel_raise_uninvolved", "int", "latest heel-raise test, uninvolved side"),
    FactSpec("assessment.heel_raise_lsi", "number",
             "heel-raise limb symmetry index, involved / uninvolved × 100"),
    FactSpec("assessment.visa_a_change", "int", "latest minus first VISA-A"),
    FactSpec("assessment.heel_raise_change", "int", "latest minus first heel-raise test, involved"),
    FactSpec("assessment.visa_a_span_weeks", "int",
             "whole weeks from the first to the latest VISA-A score"),
    FactSpec("assessment.heel_raise_span_weeks", "int",
             "whole weeks from the first to the latest heel-raise test"),
    FactSpec("loading.weeks", "int", "whole weeks from the first logged session to review date"),
)

TRACK_FACT_TEMPLATES: tuple[FactSpec, ...] = (
    FactSpec("started", "bool", "the track has a current prescription"),
    FactSpec("rung", "int", "rung of the current exercise"),
    _enum("exercise", "current exercise id", EXERCISE_IDS),
    FactSpec("load_kg", "number", "current external load"),
    FactSpec("load_bw_ratio", "number", "current external load / body mass"),
    FactSpec("calf_load_bw_ratio", "number",
             "load through the calf / body mass: (body mass + external load) / body mass on a "
             "standing raise, external load / body mass on a seated one (missing without a "
             "body mass)"),
    FactSpec("scheme_week", "int",
             "on the loaded rung: the week on the rep-max scheme the sessions after this review "
             "fall in (7-day blocks from the first logged session on the loaded rung; the block "
             "that holds the day after the review, so day 13 is week 3; 1 when none is logged)"),
    FactSpec("sets", "int", "prescribed sets"),
    FactSpec("reps", "int", "prescribed reps (seconds for holds)"),
    FactSpec("is_isometric", "bool", "the current exercise is an isometric hold"),
    FactSpec("window_sessions", "int", "sessions in the window that logged the current exercise"),
    FactSpec("pain_during_last", "int", "pain during the current exercise, latest session"),
    FactSpec("pain_during_previous", "int", "pain during the current exercise, the session before"),
    FactSpec("pain_during_max_window", "int",
             "worst pain during the current exercise in the window"),
    FactSpec("dose_completed_window", "int",
             "sessions in the window where the prescribed sets × reps were completed at the load"),
    FactSpec("hurt_most_last_session", "bool",
             "this track's exercise had the highest pain during in the last session"),
)

# Facts set after the decision, for the prescription phase.
PRESCRIBE_FACT_TEMPLATES: tuple[FactSpec, ...] = (
    _enum("decision", "decision for the track",
          DECISION_KINDS),
    FactSpec("next_rung", "int", "rung of the next prescription"),
    _enum("next_exercise", "next exercise id", EXERCISE_IDS),
)


def base_fact_specs() -> dict[str, FactSpec]:
    specs = {spec.name: spec for spec in CASE_FACTS}
    for track in TRACKS:
        for tmpl in TRACK_FACT_TEMPLATES:
            specs[f"{track}.{tmpl.name}"] = FactSpec(
                f"{track}.{tmpl.name}", tmpl.type, tmpl.doc, tmpl.choices
            )
    return specs


def prescribe_fact_specs() -> dict[str, FactSpec]:
    specs: dict[str, FactSpec] = {}
    for track in TRACKS:
        for tmpl in PRESCRIBE_FACT_TEMPLATES:
            specs[f"{track}.{tmpl.name}"] = FactSpec(
                f"{track}.{tmpl.name}", tmpl.type, tmpl.doc, tmpl.choices
            )
    return specs
