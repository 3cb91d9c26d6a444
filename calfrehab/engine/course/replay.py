"""Replay a course: weekly reviews of a scripted patient under the current
rules.

The case is the intake (week 0): it is decided as it stands. Each review's
``next`` is then what the patient does the following week, in sessions laid
out by each rung's ``sessions_per_week`` (ladder.yaml), answered as the
script says; the review at the end of the week decides on the whole log so
far, exactly as ``calfrehab next`` would. Nothing here decides: the rules
do, one review at a time, so a course shows what the rules do over time.

Deterministic: the dates come from the case's review date, never a clock.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from calfrehab.engine.course.ceiling import LoadCeiling
from calfrehab.engine.course.reviewday import ReviewDay, review_offset_days
from calfrehab.engine.course.script import Response, Script
from calfrehab.engine.knowledge import ladder as ladder_ops
from calfrehab.engine.knowledge.ladder import Ladder
from calfrehab.engine.vocabulary import EXERCISES, LOADED_RUNG, TRACKS

if TYPE_CHECKING:
    from calfrehab.engine.pipeline import Decided

WEEK = timedelta(days=7)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class TrackWeek(_Model):
    """One track in one week: what was prescribed for the week, whether the
    patient did it, and what the review at the end of the week decided."""

    exercise: str | None
    load_kg: float | None
    sets: int | None
    reps: int | None
    sessions: int
    decision: str


class WeekRow(_Model):
    week: int  # course week; 0 is the intake review (the case as given)
    review_date: date
    injury_week: int | None  # whole weeks from injury (or surgery) at the review
    outcome: str
    tracks: dict[str, TrackWeek]


class Milestone(_Model):
    key: str
    week: int  # course week the patient first did it
    injury_week: int | None  # weeks from injury (or surgery) at that first session
    date: date


class Course(_Model):
    case_id: str
    script: str
    weeks: int
    # The weekly review falls on the first day of the next training week
    # (training starts on the intake's day) or on the last day of the week.
    review_day: ReviewDay = "first"
    start_date: date
    injury_anchor: date | None
    rows: list[WeekRow]
    milestones: list[Milestone]
    referred_week: int | None

    def milestone(self, key: str) -> Milestone | None:
        for m in self.milestones:
            if m.key == key:
                return m
        return None


Decide = Callable[[dict[str, Any]], "Decided"]


def session_offsets(per_week: int) -> list[int]:
    """Days after the week's first day on which a rung done ``per_week``
    times a week falls, spread evenly (3 a week: days 0, 2, 4)."""
    return sorted({(i * 7) // per_week for i in range(per_week)})


def _program(decided: Decided, ceiling: LoadCeiling | None, ladder: Ladder,
             before: dict[str, dict[str, Any] | None]) -> dict[str, dict[str, Any] | None]:
    """The week's programme: each review's ``next``, its load capped at the
    rule base's projection ceiling (:mod:`calfrehab.engine.course.ceiling`)."""
    out: dict[str, dict[str, Any] | None] = {}
    mass = decided.case.patient.body_mass_kg
    for track in TRACKS:
        nxt = decided.decision.tracks[track].next
        rx = None if nxt is None else {
            "exercise": nxt.exercise, "load_kg": nxt.load_kg, "sets": nxt.sets, "reps": nxt.reps}
        if rx is not None and ceiling is not None:
            rx = ceiling.cap(ladder, rx, before.get(track),
                             None if mass is None else float(mass))
        out[track] = rx
    return out


def _week_sessions(
    program: dict[str, dict[str, Any] | None], first_day: date, week: int, script: Script,
    ladder: Ladder,
) -> list[dict[str, Any]]:
    r = script.response
    if script.bad(week, "missed"):
        return []
    pain = r.painful_pain_during if script.bad(week, "painful") else r.pain_during
    days: dict[int, list[dict[str, Any]]] = {}
    for track in TRACKS:
        rx = program.get(track)
        if rx is None:
            continue
        for offset in session_offsets(ladder_ops.sessions_per_week(ladder, rx["exercise"])):
            days.setdefault(offset, []).append({
                "exercise": rx["exercise"], "load_kg": rx["load_kg"],
                "sets_completed": [rx["reps"]] * rx["sets"], "pain_during": pain,
            })
    sessions = [
        {"date": (first_day + timedelta(days=d)).isoformat(), "exercises": days[d],
         "pain_next_morning": r.pain_next_morning,
         "morning_stiffness_min": r.morning_stiffness_min}
        for d in sorted(days)
    ]
    if sessions and script.bad(week, "flare"):
        sessions[-1]["pain_next_morning"] = min(10, r.pain_next_morning + r.flare_rise)
    return sessions


def _measures(doc: dict[str, Any], r: Response) -> tuple[int, int | None, int]:
    """Heel-raise involved / uninvolved and VISA-A to improve from: the
    case's latest, or the script's starting values."""
    involved, uninvolved, visa = r.heel_raise_start, r.heel_raise_uninvolved, r.visa_a_start
    for a in sorted(doc.get("assessments", []), key=lambda a: str(a.get("date"))):
        hrt = a.get("heel_raise_test")
        if hrt:
            involved = hrt.get("involved", involved)
            uninvolved = hrt.get("uninvolved", uninvolved)
        if a.get("visa_a") is not None:
            visa = a["visa_a"]
    if doc["condition"].get("side") == "both":
        return involved, None, visa
    return involved, uninvolved, visa


def _assessment(
    doc: dict[str, Any], on: date, week: int, start: tuple[int, int | None, int],
    program: dict[str, dict[str, Any] | None], r: Response,
) -> dict[str, Any]:
    involved, uninvolved, visa = start
    gained = involved + r.heel_raise_gain_per_week * week
    hrt: dict[str, int] = {"involved": min(uninvolved, gained) if uninvolved else gained}
    if uninvolved is not None:
        hrt["uninvolved"] = uninvolved
    out: dict[str, Any] = {"date": on.isoformat(), "heel_raise_test": hrt,
                           "pain_at_rest": r.pain_at_rest}
    if str(doc["condition"].get("kind", "")).startswith("achilles"):
        out["visa_a"] = min(100, visa + r.visa_a_gain_per_week * week)
    if program.get("energy_storage") is not None:
        out["hop_pain"] = r.hop_pain
    return out


def _injury_week(anchor: date | None, on: date) -> int | None:
    return None if anchor is None else (on - anchor).days // 7


def _row(week: int, decided: Decided, program: dict[str, dict[str, Any] | None],
         sessions: list[dict[str, Any]], anchor: date | None) -> WeekRow:
    doc = decided.decision
    tracks: dict[str, TrackWeek] = {}
    for track in TRACKS:
        rx = program.get(track)
        done = 0 if rx is None else sum(
            any(e["exercise"] == rx["exercise"] for e in s["exercises"]) for s in sessions)
        tracks[track] = TrackWeek(
            exercise=None if rx is None else rx["exercise"],
            load_kg=None if rx is None else rx["load_kg"],
            sets=None if rx is None else rx["sets"],
            reps=None if rx is None else rx["reps"],
            sessions=done, decision=doc.tracks[track].decision)
    review = date.fromisoformat(doc.review_date)
    return WeekRow(week=week, review_date=review, injury_week=_injury_week(anchor, review),
                   outcome=doc.outcome, tracks=tracks)


def _milestone_keys(track: str, rx: dict[str, Any]) -> list[str]:
    _, rung = EXERCISES[rx["exercise"]]
    keys = [rx["exercise"], f"{track}.rung{rung}"]
    if rung == LOADED_RUNG:
        keys.append(f"{track}.{rx['sets']}x{rx['reps']}")
    return keys


def _intake_program(decided: Decided) -> dict[str, dict[str, Any] | None]:
    """The intake's program as the validated case has it: a prescription
    written without ``load_kg`` (a first visit on bodyweight raises) has the
    case format's default, not a missing key."""
    out: dict[str, dict[str, Any] | None] = {}
    for track in TRACKS:
        rx = decided.case.program.on(track)
        out[track] = None if rx is None else {
            "exercise": rx.exercise, "load_kg": rx.load_kg, "sets": rx.sets, "reps": rx.reps}
    return out


def replay(
    document: dict[str, Any], *, weeks: int, script: Script, decide: Decide, ladder: Ladder,
    review_day: ReviewDay = "first", ceiling: LoadCeiling | None = None,
) -> Course:
    """The course of ``weeks`` weekly reviews after the intake review. The
    patient trains from the intake's day in 7-day weeks; each week's review
    falls on the first day of the next week or (``review_day="last"``) on
    the week's last day. ``ceiling``: where the projection stops adding load
    (None: it follows every load step the rules propose)."""
    doc = copy.deepcopy(document)
    doc.setdefault("sessions", [])
    doc.setdefault("assessments", [])
    decided = decide(doc)
    anchor = decided.evaluation.facts.anchors.get("injury.anchor")
    start_date = date.fromisoformat(decided.decision.review_date)
    shift = timedelta(days=review_offset_days(review_day))
    current = _intake_program(decided)
    rows = [_row(0, decided, current, [], anchor)]
    milestones: dict[str, Milestone] = {}
    referred = 0 if decided.decision.outcome == "refer" else None
    measures = _measures(doc, script.response)
    for week in range(1, weeks + 1):
        if referred is not None:
            break
        program = _program(decided, ceiling, ladder, current)
        current = program
        first_day = start_date + (week - 1) * WEEK
        sessions = _week_sessions(program, first_day, week, script, ladder)
        review = start_date + week * WEEK + shift
        for track in TRACKS:
            rx = program[track]
            if rx is None:
                continue
            did = [s for s in sessions if any(e["exercise"] == rx["exercise"]
                                              for e in s["exercises"])]
            if not did:
                continue
            on = date.fromisoformat(did[0]["date"])
            for key in _milestone_keys(track, rx):
                if key not in milestones:
                    milestones[key] = Milestone(key=key, week=week,
                                                injury_week=_injury_week(anchor, on), date=on)
        doc["sessions"] = [*doc["sessions"], *sessions]
        doc["assessments"] = [*doc["assessments"],
                              _assessment(doc, review, week, measures, program, script.response)]
        doc["program"] = {t: rx for t, rx in program.items() if rx is not None}
        doc["review_date"] = review.isoformat()
        decided = decide(doc)
        rows.append(_row(week, decided, program, sessions, anchor))
        if decided.decision.outcome == "refer":
            referred = week
    return Course(
        case_id=str(doc.get("case_id")), script=script.label, weeks=weeks, review_day=review_day,
        start_date=start_date, injury_anchor=anchor, rows=rows,
        milestones=sorted(milestones.values(), key=lambda m: (m.week, m.key)),
        referred_week=referred,
    )
