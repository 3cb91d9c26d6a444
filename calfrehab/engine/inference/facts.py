"""Base facts: what Python reads off a validated case for the rules.

Python only measures (latest values, counts, changes, windows); every
threshold that turns a measure into a judgement is in the rule files. Each
fact keeps the case-file paths it came from, so an explanation can point a
clinician at the exact field (``sessions[3].exercises[0].pain_during``).

Which facts exist, and their types, is the catalogue
(:mod:`calfrehab.engine.knowledge.catalogue`); the window sizes are rule-base
settings (``rulebase.yaml``), not literals.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from calfrehab.engine.casefile.model import Case, PerformedExercise, Session
from calfrehab.engine.knowledge.catalogue import (
    RED_FLAGS,
    TRACK_FACT_TEMPLATES,
    FactSettings,
    FactValue,
)
from calfrehab.engine.vocabulary import EXERCISES, ISOMETRIC_EXERCISES, LOADED_RUNG, TRACKS


@dataclass(slots=True)
class Fact:
    """One base fact: its name, its value (None: missing) and the case-file
    paths it was read from."""

    name: str
    value: FactValue | None
    sources: tuple[str, ...] = ()


class FactSet:
    """All base facts of one case, by name; a missing value is None.

    Values and their case-file paths are kept in two plain dicts (the
    per-case hot path reads values far more often than it reads paths);
    :attr:`facts` gives them as :class:`Fact` records."""

    __slots__ = ("_paths", "_records", "_values", "anchors")

    def __init__(self) -> None:
        self._values: dict[str, FactValue | None] = {}
        self._paths: dict[str, tuple[str, ...]] = {}
        self._records: dict[str, Fact] | None = None
        self.anchors: dict[str, date] = {}

    def put(self, name: str, value: FactValue | None, *sources: str) -> None:
        self._values[name] = value
        self._paths[name] = sources
        self._records = None

    def value(self, name: str) -> FactValue | None:
        return self._values.get(name)

    def values(self) -> dict[str, FactValue | None]:
        return dict(self._values)

    def view(self) -> Mapping[str, FactValue | None]:
        """The values themselves, not a copy: for a caller that only reads
        them (the driver, once per ruleset of every case)."""
        return self._values

    def paths(self, name: str) -> tuple[str, ...] | None:
        """Where in the case file the fact came from; None for a name that
        is not a base fact (a derived flag, a decision)."""
        return self._paths.get(name)

    @property
    def facts(self) -> dict[str, Fact]:
        if self._records is None:
            self._records = {n: Fact(n, v, self._paths[n]) for n, v in self._values.items()}
        return self._records


# Fact names built once, not per case.
_RED_FLAG_FACTS = tuple((flag, f"red_flag.{flag}") for flag in RED_FLAGS)
_TRACK_NAMES: dict[str, dict[str, str]] = {
    track: {"program": f"program.{track}",
            **{t.name: f"{track}.{t.name}" for t in TRACK_FACT_TEMPLATES}}
    for track in TRACKS
}
# A track with no prescription: every fact but ``started`` missing, in the
# catalogue's order.
_UNSTARTED: dict[str, tuple[str, ...]] = {
    track: tuple(names[t.name] for t in TRACK_FACT_TEMPLATES[1:])
    for track, names in _TRACK_NAMES.items()
}
_NONE: tuple[str, ...] = ()
_RED_FLAGS_PATH = ("red_flags",)
_SESSIONS_PATH = ("sessions",)


def _weeks(days: int) -> int:
    return days // 7


def _completed(sets_done: list[int], sets: int, reps: int) -> bool:
    return len(sets_done) >= sets and all(n >= reps for n in sets_done[:sets])


# compute_facts and its helpers write the FactSet's two dicts directly
# (value, and the paths as a tuple) rather than through FactSet.put: about
# 84 facts a case, on the per-case hot path, where a method call with
# varargs per fact cost more than the fact itself. The insertion order is
# put()'s, fact for fact.
_Values = dict[str, "FactValue | None"]
_Paths = dict[str, tuple[str, ...]]


# The facts that are a case field as it is: (fact, the field, its path),
# in the order the facts are put.
_CONDITION_FACTS: Final = tuple(
    (f"condition.{field}", field, (f"condition.{field}",))
    for field in ("kind", "irritability", "management", "muscle", "side"))
_PATIENT_FACTS: Final = tuple(
    (f"patient.{field}", field, (f"patient.{field}",))
    for field in ("goal", "age_years", "body_mass_kg"))


def compute_facts(case: Case, settings: FactSettings) -> FactSet:
    fs = FactSet()
    V, P = fs._values, fs._paths
    review = case.review_date
    cond, patient = case.condition, case.patient

    for name, field, path in _CONDITION_FACTS:
        V[name] = getattr(cond, field)
        P[name] = path
    for name, field, path in _PATIENT_FACTS:
        V[name] = getattr(patient, field)
        P[name] = path
    red_flags = case.red_flags
    for flag, name in _RED_FLAG_FACTS:
        where = [f"red_flags[{i}]" for i, f in enumerate(red_flags) if f == flag] \
            if red_flags else None
        V[name] = bool(where)
        P[name] = tuple(where) if where else _RED_FLAGS_PATH
    V["red_flags.count"] = len(red_flags)
    P["red_flags.count"] = _RED_FLAGS_PATH

    anchor, anchor_path = None, None
    if cond.kind == "achilles_rupture":
        if cond.management == "operative" and cond.surgery_date is not None:
            anchor, anchor_path = cond.surgery_date, "condition.surgery_date"
        elif cond.injury_date is not None:
            anchor, anchor_path = cond.injury_date, "condition.injury_date"
    if anchor is not None and anchor_path is not None:
        days = (review - anchor).days
        V["injury.weeks_since"] = _weeks(days)
        P["injury.weeks_since"] = (anchor_path, "review_date")
        V["injury.days_since"] = days
        P["injury.days_since"] = (anchor_path, "review_date")
        fs.anchors["injury.anchor"] = anchor
    else:
        V["injury.weeks_since"] = None
        P["injury.weeks_since"] = _NONE
        V["injury.days_since"] = None
        P["injury.days_since"] = _NONE

    # Keep each session's index in the file, for provenance, then sort.
    # Oldest first, a session entered twice counted once (clinical-basis §8).
    indexed = case.indexed_sessions()
    V["sessions.count"] = len(indexed)
    P["sessions.count"] = _SESSIONS_PATH
    _session_facts(V, P, indexed, review, settings)
    _assessment_facts(V, P, case)
    if indexed:
        first_day = indexed[0][1].date
        V["loading.weeks"] = _weeks((review - first_day).days)
        P["loading.weeks"] = (f"sessions[{indexed[0][0]}].date", "review_date")
    else:
        V["loading.weeks"] = None
        P["loading.weeks"] = _NONE

    log = _Log(indexed)
    for track in TRACKS:
        _track_facts(V, P, case, track, log, settings)
    return fs


class _Log:
    """The training log of one case, read for the three tracks: each reads
    only its window (walked back from the latest session) and, on the
    loaded rung, the first loaded session (walked forward), so the log is
    not indexed whole."""

    __slots__ = ("indexed", "last", "worst", "worst_by_track")

    def __init__(self, indexed: list[tuple[int, Session]]) -> None:
        self.indexed = indexed
        # The last session: its index, and each track's worst pain during.
        self.last: int | None = indexed[-1][0] if indexed else None
        worst_by_track: dict[str, int] = {}
        if indexed:
            for ex in indexed[-1][1].exercises:
                tr = EXERCISES[ex.exercise][0]
                worst_by_track[tr] = max(worst_by_track.get(tr, -1), ex.pain_during)
        self.worst_by_track = worst_by_track
        # The worst pain during of the last session, over its tracks.
        self.worst: int | None = max(worst_by_track.values()) if worst_by_track else None

    def latest(self, exercise: str) -> Iterator[tuple[int, int, PerformedExercise]]:
        """(session index, exercise index, performed) of each logged
        ``exercise``, latest session first and, within a session, the last
        entry first."""
        indexed = self.indexed
        for n in range(len(indexed) - 1, -1, -1):
            i, s = indexed[n]
            logged = s.exercises
            for k in range(len(logged) - 1, -1, -1):
                ex = logged[k]
                if ex.exercise == exercise:
                    yield i, k, ex

    def first_loaded(self, track: str) -> tuple[int, date] | None:
        """The track's first logged session on the loaded rung (index,
        date): the rep-max scheme's calendar counts from it."""
        for i, s in self.indexed:
            for ex in s.exercises:
                if _LOADED_TRACK.get(ex.exercise) == track:
                    return i, s.date
        return None


# The track of each exercise on the loaded rung.
_LOADED_TRACK = {ex: tr for ex, (tr, rung) in EXERCISES.items() if rung == LOADED_RUNG}


def _session_facts(
    V: _Values, P: _Paths, indexed: list[tuple[int, Session]], review: date,
    settings: FactSettings,
) -> None:
    # The 24-hour response of the chronologically LAST session (ties on a
    # date: the later in the file), not of the latest session that happens
    # to have one: an unrecorded response after the last session is missing,
    # so a rule can say so instead of judging an older session's morning.
    if indexed:
        i, last = indexed[-1]
        V["sessions.days_since_last"] = (review - last.date).days
        P["sessions.days_since_last"] = (f"sessions[{i}].date", "review_date")
        V["session.pain_next_morning_last"] = last.pain_next_morning
        P["session.pain_next_morning_last"] = (f"sessions[{i}].pain_next_morning",)
    else:
        V["sessions.days_since_last"] = None
        P["sessions.days_since_last"] = _NONE
        V["session.pain_next_morning_last"] = None
        P["session.pain_next_morning_last"] = _NONE
    # The rise is judged against the latest earlier session that recorded a
    # score: a gap in between must not hide a 0 -> 4 jump.
    change: int | None = None
    if indexed and indexed[-1][1].pain_next_morning is not None:
        i, last = indexed[-1]
        for n in range(len(indexed) - 2, -1, -1):
            j, prev = indexed[n]
            if prev.pain_next_morning is not None:
                assert last.pain_next_morning is not None
                change = last.pain_next_morning - prev.pain_next_morning
                V["session.pain_next_morning_change"] = change
                P["session.pain_next_morning_change"] = (
                    f"sessions[{j}].pain_next_morning", f"sessions[{i}].pain_next_morning")
                break
    if change is None:
        V["session.pain_next_morning_change"] = None
        P["session.pain_next_morning_change"] = _NONE

    # Week-on-week stiffness: the mean of the last window of days (ending on
    # the latest session) against the window before it.
    # Walked back from the latest session (the sessions are in date order),
    # only as far as the two windows reach.
    recent: list[tuple[int, int]] = []
    before: list[tuple[int, int]] = []
    width = timedelta(days=settings.stiffness_window_days)
    start = middle = None
    for n in range(len(indexed) - 1, -1, -1):
        i, s = indexed[n]
        minutes = s.morning_stiffness_min
        if minutes is None:
            continue
        d = s.date
        if start is None or middle is None:
            # The latest session with a score ends the recent window.
            start, middle = d - 2 * width, d - width
        if d <= start:
            break
        (recent if d > middle else before).append((i, minutes))
    if recent and before:
        recent.reverse()
        before.reverse()
        before_mean = sum(m for _, m in before) / len(before)
        change_min = round(sum(m for _, m in recent) / len(recent) - before_mean, 2)
        paths = tuple(f"sessions[{i}].morning_stiffness_min" for i, _ in before + recent)
        V["session.stiffness_change_min"] = change_min
        P["session.stiffness_change_min"] = paths
        # The rise relative to the earlier mean: a rise from no stiffness
        # at all has no ratio, and is taken as 100% (never small beside it).
        rise_from_none = 100.0 if change_min > 0 else 0.0
        pct = (round(change_min / before_mean * 100, 1) if before_mean > 0
               else rise_from_none)
        V["session.stiffness_change_pct"] = pct
        P["session.stiffness_change_pct"] = paths
        return
    V["session.stiffness_change_min"] = None
    P["session.stiffness_change_min"] = _NONE
    V["session.stiffness_change_pct"] = None
    P["session.stiffness_change_pct"] = _NONE


def _assessment_facts(V: _Values, P: _Paths, case: Case) -> None:
    indexed = case.indexed_assessments() if case.assessments else []

    for attr, name in _LATEST:
        for n in range(len(indexed) - 1, -1, -1):
            i, a = indexed[n]
            value = getattr(a, attr)
            if value is not None:
                V[name] = value
                P[name] = (f"assessments[{i}].{attr}",)
                break
        else:
            V[name] = None
            P[name] = _NONE
    if indexed:
        i, newest = indexed[-1]
        V["assessment.days_since_last"] = (case.review_date - newest.date).days
        P["assessment.days_since_last"] = (f"assessments[{i}].date", "review_date")
    else:
        V["assessment.days_since_last"] = None
        P["assessment.days_since_last"] = _NONE

    hrt = [(i, a) for i, a in indexed if a.heel_raise_test is not None]
    inv = unv = lsi = hr_change = None
    inv_paths: tuple[str, ...] = ()
    if hrt:
        i, a = hrt[-1]
        assert a.heel_raise_test is not None
        inv, unv = a.heel_raise_test.involved, a.heel_raise_test.uninvolved
        inv_paths = (f"assessments[{i}].heel_raise_test.involved",)
        if unv:
            lsi = round(inv / unv * 100, 1)
        if len(hrt) >= 2:
            j, first = hrt[0]
            assert first.heel_raise_test is not None
            hr_change = inv - first.heel_raise_test.involved
    V["assessment.heel_raise_involved"] = inv
    P["assessment.heel_raise_involved"] = inv_paths
    unv_path = inv_paths[0].replace("involved", "uninvolved") if inv_paths else ""
    V["assessment.heel_raise_uninvolved"] = unv
    P["assessment.heel_raise_uninvolved"] = (unv_path,) if unv is not None else _NONE
    V["assessment.heel_raise_lsi"] = lsi
    P["assessment.heel_raise_lsi"] = (*inv_paths, unv_path) if lsi is not None else _NONE
    V["assessment.heel_raise_change"] = hr_change
    P["assessment.heel_raise_change"] = (
        (f"assessments[{hrt[0][0]}].heel_raise_test.involved", *inv_paths)
        if hr_change is not None else _NONE)

    visa = [(i, a) for i, a in indexed if a.visa_a is not None]
    if len(visa) >= 2:
        (j, first), (i, last) = visa[0], visa[-1]
        assert first.visa_a is not None and last.visa_a is not None
        V["assessment.visa_a_change"] = last.visa_a - first.visa_a
        P["assessment.visa_a_change"] = (f"assessments[{j}].visa_a", f"assessments[{i}].visa_a")
    else:
        V["assessment.visa_a_change"] = None
        P["assessment.visa_a_change"] = _NONE
    # A change is judged over the span of the measure itself: the span of
    # all assessments would let a late first VISA-A look like 12 weeks.
    for name, have in (("assessment.visa_a_span_weeks", visa),
                       ("assessment.heel_raise_span_weeks", hrt)):
        if len(have) >= 2:
            (j, first_a), (i, last_a) = have[0], have[-1]
            V[name] = _weeks((last_a.date - first_a.date).days)
            P[name] = (f"assessments[{j}].date", f"assessments[{i}].date")
        else:
            V[name] = None
            P[name] = _NONE


# The latest recorded value of each: (attribute of an assessment, fact).
_LATEST = (
    ("pain_at_rest", "assessment.pain_at_rest"),
    ("visa_a", "assessment.visa_a"),
    ("hop_pain", "assessment.hop_pain"),
)


def _scheme_week(
    V: _Values, P: _Paths, case: Case, name: str, track: str, exercise: str, log: _Log,
) -> None:
    """The rep-max scheme follows the calendar: weeks are 7-day blocks from
    the first logged session on the loaded rung of the track, and a review
    prescribes for the block that holds the day after it (clinical-basis
    §2). A review on day 13 prescribes week 3, whether the clinic reviews at
    the end of a week (day 13) or the start of the next (day 14)."""
    if EXERCISES[exercise][1] != LOADED_RUNG:
        V[name] = None
        P[name] = _NONE
        return
    loaded = log.first_loaded(track)
    if loaded is not None:
        i, first = loaded
        day_after = (case.review_date - first).days + 1
        V[name] = _weeks(day_after) + 1
        P[name] = (f"sessions[{i}].date", "review_date")
        return
    V[name] = 1
    P[name] = (f"program.{track}.exercise",)


def _worst(entries: list[tuple[int, PerformedExercise]]) -> tuple[int, PerformedExercise]:
    """The entry with the highest pain during (the first of equals)."""
    if len(entries) == 1:
        return entries[0]
    return max(entries, key=lambda e: e[1].pain_during)


class _TrackKeys:
    """One track's fact names and the case-file paths that are the same for
    every case (the program's fields), made once."""

    __slots__ = (
        "calf_load_bw_ratio", "dose_completed_window", "exercise", "hurt_most_last_session",
        "is_isometric", "load_bw_ratio", "load_kg", "p_exercise", "p_exercise_load_mass",
        "p_load", "p_load_mass", "p_program", "p_reps", "p_sets", "pain_during_last",
        "pain_during_max_window", "pain_during_previous", "reps", "rung", "scheme_week",
        "sets", "started", "unstarted", "window_sessions",
    )

    def __init__(self, track: str) -> None:
        names = _TRACK_NAMES[track]
        self.started = names["started"]
        self.rung = names["rung"]
        self.exercise = names["exercise"]
        self.load_kg = names["load_kg"]
        self.load_bw_ratio = names["load_bw_ratio"]
        self.calf_load_bw_ratio = names["calf_load_bw_ratio"]
        self.scheme_week = names["scheme_week"]
        self.sets = names["sets"]
        self.reps = names["reps"]
        self.is_isometric = names["is_isometric"]
        self.window_sessions = names["window_sessions"]
        self.pain_during_last = names["pain_during_last"]
        self.pain_during_previous = names["pain_during_previous"]
        self.pain_during_max_window = names["pain_during_max_window"]
        self.dose_completed_window = names["dose_completed_window"]
        self.hurt_most_last_session = names["hurt_most_last_session"]
        self.unstarted = _UNSTARTED[track]
        p = names["program"]
        self.p_program = (p,)
        self.p_exercise = (f"{p}.exercise",)
        self.p_load = (f"{p}.load_kg",)
        self.p_load_mass = (f"{p}.load_kg", "patient.body_mass_kg")
        self.p_exercise_load_mass = (f"{p}.exercise", f"{p}.load_kg", "patient.body_mass_kg")
        self.p_sets = (f"{p}.sets",)
        self.p_reps = (f"{p}.reps",)


_TRACK_KEYS: dict[str, _TrackKeys] = {track: _TrackKeys(track) for track in TRACKS}


def _track_facts(
    V: _Values, P: _Paths, case: Case, track: str, log: _Log, settings: FactSettings,
) -> None:
    keys = _TRACK_KEYS[track]
    rx = case.program.on(track)
    V[keys.started] = rx is not None
    P[keys.started] = keys.p_program
    if rx is None:
        for name in keys.unstarted:
            V[name] = None
            P[name] = _NONE
        return
    exercise, load = rx.exercise, rx.load_kg
    V[keys.rung] = EXERCISES[exercise][1]
    P[keys.rung] = keys.p_exercise
    V[keys.exercise] = exercise
    P[keys.exercise] = keys.p_exercise
    V[keys.load_kg] = load
    P[keys.load_kg] = keys.p_load
    mass = case.patient.body_mass_kg
    V[keys.load_bw_ratio] = round(load / mass, 3) if mass else None
    P[keys.load_bw_ratio] = keys.p_load_mass if mass else _NONE
    through = load if exercise in settings.seated_exercises else (mass or 0) + load
    V[keys.calf_load_bw_ratio] = round(through / mass, 3) if mass else None
    P[keys.calf_load_bw_ratio] = keys.p_exercise_load_mass if mass else _NONE
    _scheme_week(V, P, case, keys.scheme_week, track, exercise, log)
    V[keys.sets] = rx.sets
    P[keys.sets] = keys.p_sets
    V[keys.reps] = rx.reps
    P[keys.reps] = keys.p_reps
    V[keys.is_isometric] = exercise in ISOMETRIC_EXERCISES
    P[keys.is_isometric] = keys.p_exercise

    # (session index, exercise index, performed) for the current exercise.
    # One entry per session (a training day): a session that logged the
    # exercise twice (twice-a-day protocols) counts once, judged by its
    # worst pain, and its dose counts as done if any entry completed it.
    # Only the window is read: the log is walked back from the latest
    # session until the window is full.
    want = settings.window_sessions
    per_session: dict[int, list[tuple[int, PerformedExercise]]] = {}
    window_ids: list[int] = []
    for i, k, ex in log.latest(exercise):
        if i not in per_session:
            if len(window_ids) == want:
                break
            per_session[i] = []
            window_ids.append(i)
        per_session[i].append((k, ex))
    window_ids.reverse()
    # Each performed entry of the window, in session and file order, with
    # its case-file path.
    entries: list[tuple[int, int, str, PerformedExercise]] = []
    for i in window_ids:
        logged = per_session[i]
        if len(logged) > 1:
            logged.reverse()
        for k, ex in logged:
            entries.append((i, k, f"sessions[{i}].exercises[{k}]", ex))
    worst = [(i, *_worst(per_session[i])) for i in window_ids]
    V[keys.window_sessions] = len(window_ids)
    P[keys.window_sessions] = tuple([e[2] for e in entries]) or _SESSIONS_PATH
    if worst:
        i, k, last = worst[-1]
        V[keys.pain_during_last] = last.pain_during
        P[keys.pain_during_last] = (f"sessions[{i}].exercises[{k}].pain_during",)
        top = max(worst, key=lambda w: w[2].pain_during) if len(worst) > 1 else worst[0]
        V[keys.pain_during_max_window] = top[2].pain_during
        P[keys.pain_during_max_window] = tuple(
            [f"sessions[{i}].exercises[{k}].pain_during" for i, k, _ in worst])
    else:
        V[keys.pain_during_last] = None
        P[keys.pain_during_last] = _NONE
        V[keys.pain_during_max_window] = None
        P[keys.pain_during_max_window] = _NONE
    if len(worst) >= 2:
        i, k, prev = worst[-2]
        V[keys.pain_during_previous] = prev.pain_during
        P[keys.pain_during_previous] = (f"sessions[{i}].exercises[{k}].pain_during",)
    else:
        V[keys.pain_during_previous] = None
        P[keys.pain_during_previous] = _NONE
    sets, reps = rx.sets, rx.reps
    done: set[int] = set()
    for i, _, _, ex in entries:
        if i not in done and ex.load_kg >= load and _completed(ex.sets_completed, sets, reps):
            done.add(i)
    V[keys.dose_completed_window] = len(done)
    P[keys.dose_completed_window] = tuple(
        [e[2] + ".sets_completed" for e in entries]) or _SESSIONS_PATH

    # Which track hurt most in the last session: a session-level flare with no
    # track over the pain-during limit regresses that one.
    hurt = False
    hurt_paths: tuple[str, ...] = ()
    last_session = log.last
    if last_session is not None:
        logged_last = per_session.get(last_session)
        if logged_last:
            hurt_paths = tuple([f"sessions[{last_session}].exercises[{k}].pain_during"
                                for k, _ in logged_last])
        by_track = log.worst_by_track
        if track in by_track and by_track[track] == log.worst:
            hurt = True
    V[keys.hurt_most_last_session] = hurt
    P[keys.hurt_most_last_session] = hurt_paths or _SESSIONS_PATH
