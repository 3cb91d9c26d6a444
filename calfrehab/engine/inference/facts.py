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

from dataclasses import dataclass
from datetime import date, timedelta

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


def _weeks(days: int) -> int:
    return days // 7


def _completed(sets_done: list[int], sets: int, reps: int) -> bool:
    return len(sets_done) >= sets and all(n >= reps for n in sets_done[:sets])


def compute_facts(case: Case, settings: FactSettings) -> FactSet:
    fs = FactSet()
    review = case.review_date
    cond, patient = case.condition, case.patient

    fs.put("condition.kind", cond.kind, "condition.kind")
    fs.put("condition.irritability", cond.irritability, "condition.irritability")
    fs.put("condition.management", cond.management, "condition.management")
    fs.put("condition.muscle", cond.muscle, "condition.muscle")
    fs.put("condition.side", cond.side, "condition.side")
    fs.put("patient.goal", patient.goal, "patient.goal")
    fs.put("patient.age_years", patient.age_years, "patient.age_years")
    fs.put("patient.body_mass_kg", patient.body_mass_kg, "patient.body_mass_kg")
    for flag, name in _RED_FLAG_FACTS:
        where = [f"red_flags[{i}]" for i, f in enumerate(case.red_flags) if f == flag]
        fs.put(name, bool(where), *(where or ["red_flags"]))
    fs.put("red_flags.count", len(case.red_flags), "red_flags")

    anchor, anchor_path = None, None
    if cond.kind == "achilles_rupture":
        if cond.management == "operative" and cond.surgery_date is not None:
            anchor, anchor_path = cond.surgery_date, "condition.surgery_date"
        elif cond.injury_date is not None:
            anchor, anchor_path = cond.injury_date, "condition.injury_date"
    if anchor is not None and anchor_path is not None:
        days = (review - anchor).days
        fs.put("injury.weeks_since", _weeks(days), anchor_path, "review_date")
        fs.put("injury.days_since", days, anchor_path, "review_date")
        fs.anchors["injury.anchor"] = anchor
    else:
        fs.put("injury.weeks_since", None)
        fs.put("injury.days_since", None)

    # Keep each session's index in the file, for provenance, then sort.
    # Oldest first, a session entered twice counted once (clinical-basis §8).
    indexed = case.indexed_sessions()
    fs.put("sessions.count", len(indexed), "sessions")
    _session_facts(fs, indexed, review, settings)
    _assessment_facts(fs, case)
    if indexed:
        first_day = indexed[0][1].date
        fs.put("loading.weeks", _weeks((review - first_day).days),
               f"sessions[{indexed[0][0]}].date", "review_date")
    else:
        fs.put("loading.weeks", None)

    log = _Log(indexed)
    for track in TRACKS:
        _track_facts(fs, case, track, log, settings)
    return fs


class _Log:
    """The training log indexed once per case, for the three tracks."""

    def __init__(self, indexed: list[tuple[int, Session]]) -> None:
        # exercise -> (session index, exercise index, performed), in session
        # order and, within a session, file order.
        self.by_exercise: dict[str, list[tuple[int, int, PerformedExercise]]] = {}
        # Each track's first logged session on the loaded rung (index, date):
        # the rep-max scheme's calendar counts from it.
        self.first_loaded: dict[str, tuple[int, date]] = {}
        for i, s in indexed:
            for k, ex in enumerate(s.exercises):
                self.by_exercise.setdefault(ex.exercise, []).append((i, k, ex))
                tr, rung = EXERCISES[ex.exercise]
                if rung == LOADED_RUNG and tr not in self.first_loaded:
                    self.first_loaded[tr] = (i, s.date)
        # The last session: its index, and each track's worst pain during.
        self.last: int | None = indexed[-1][0] if indexed else None
        self.worst_by_track: dict[str, int] = {}
        if indexed:
            for ex in indexed[-1][1].exercises:
                tr = EXERCISES[ex.exercise][0]
                self.worst_by_track[tr] = max(self.worst_by_track.get(tr, -1), ex.pain_during)


def _session_facts(
    fs: FactSet, indexed: list[tuple[int, Session]], review: date, settings: FactSettings
) -> None:
    # The 24-hour response of the chronologically LAST session (ties on a
    # date: the later in the file), not of the latest session that happens
    # to have one: an unrecorded response after the last session is missing,
    # so a rule can say so instead of judging an older session's morning.
    if indexed:
        i, last = indexed[-1]
        days_path = f"sessions[{i}].date"
        fs.put("sessions.days_since_last", (review - last.date).days, days_path, "review_date")
        fs.put("session.pain_next_morning_last", last.pain_next_morning,
               f"sessions[{i}].pain_next_morning")
    else:
        fs.put("sessions.days_since_last", None)
        fs.put("session.pain_next_morning_last", None)
    # The rise is judged against the latest earlier session that recorded a
    # score: a gap in between must not hide a 0 -> 4 jump.
    earlier = [(j, s) for j, s in indexed[:-1] if s.pain_next_morning is not None]
    if indexed and indexed[-1][1].pain_next_morning is not None and earlier:
        (j, prev), (i, last) = earlier[-1], indexed[-1]
        assert prev.pain_next_morning is not None and last.pain_next_morning is not None
        fs.put("session.pain_next_morning_change",
               last.pain_next_morning - prev.pain_next_morning,
               f"sessions[{j}].pain_next_morning", f"sessions[{i}].pain_next_morning")
    else:
        fs.put("session.pain_next_morning_change", None)

    # Week-on-week stiffness: the mean of the last window of days (ending on
    # the latest session) against the window before it.
    stiff = [(i, s) for i, s in indexed if s.morning_stiffness_min is not None]
    if stiff:
        end = stiff[-1][1].date
        width = timedelta(days=settings.stiffness_window_days)
        recent = [(i, s) for i, s in stiff if end - width < s.date <= end]
        before = [(i, s) for i, s in stiff if end - 2 * width < s.date <= end - width]
        if recent and before:
            def mean(items: list[tuple[int, Session]]) -> float:
                return sum(s.morning_stiffness_min or 0 for _, s in items) / len(items)

            before_mean = mean(before)
            change = round(mean(recent) - before_mean, 2)
            paths = [f"sessions[{i}].morning_stiffness_min" for i, _ in before + recent]
            fs.put("session.stiffness_change_min", change, *paths)
            # The rise relative to the earlier mean: a rise from no stiffness
            # at all has no ratio, and is taken as 100% (never small beside it).
            rise_from_none = 100.0 if change > 0 else 0.0
            pct = (round(change / before_mean * 100, 1) if before_mean > 0
                   else rise_from_none)
            fs.put("session.stiffness_change_pct", pct, *paths)
            return
    fs.put("session.stiffness_change_min", None)
    fs.put("session.stiffness_change_pct", None)


def _assessment_facts(fs: FactSet, case: Case) -> None:
    indexed = case.indexed_assessments()

    def latest(attr: str, name: str) -> None:
        have = [(i, a) for i, a in indexed if getattr(a, attr) is not None]
        if have:
            i, a = have[-1]
            fs.put(name, getattr(a, attr), f"assessments[{i}].{attr}")
        else:
            fs.put(name, None)

    latest("pain_at_rest", "assessment.pain_at_rest")
    latest("visa_a", "assessment.visa_a")
    latest("hop_pain", "assessment.hop_pain")
    if indexed:
        i, newest = indexed[-1]
        fs.put("assessment.days_since_last", (case.review_date - newest.date).days,
               f"assessments[{i}].date", "review_date")
    else:
        fs.put("assessment.days_since_last", None)

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
    fs.put("assessment.heel_raise_involved", inv, *inv_paths)
    unv_path = inv_paths[0].replace("involved", "uninvolved") if inv_paths else ""
    fs.put("assessment.heel_raise_uninvolved", unv, *([unv_path] if unv is not None else []))
    fs.put("assessment.heel_raise_lsi", lsi, *([*inv_paths, unv_path] if lsi is not None else []))
    fs.put("assessment.heel_raise_change", hr_change,
           *([f"assessments[{hrt[0][0]}].heel_raise_test.involved", *inv_paths]
             if hr_change is not None else []))

    visa = [(i, a) for i, a in indexed if a.visa_a is not None]
    if len(visa) >= 2:
        (j, first), (i, last) = visa[0], visa[-1]
        assert first.visa_a is not None and last.visa_a is not None
        fs.put("assessment.visa_a_change", last.visa_a - first.visa_a,
               f"assessments[{j}].visa_a", f"assessments[{i}].visa_a")
    else:
        fs.put("assessment.visa_a_change", None)
    # A change is judged over the span of the measure itself: the span of
    # all assessments would let a late first VISA-A look like 12 weeks.
    for name, have in (("visa_a", visa), ("heel_raise", hrt)):
        if len(have) >= 2:
            (j, first_a), (i, last_a) = have[0], have[-1]
            fs.put(f"assessment.{name}_span_weeks", _weeks((last_a.date - first_a.date).days),
                   f"assessments[{j}].date", f"assessments[{i}].date")
        else:
            fs.put(f"assessment.{name}_span_weeks", None)


def _scheme_week(fs: FactSet, case: Case, track: str, exercise: str, log: _Log) -> None:
    """The rep-max scheme follows the calendar: weeks are 7-day blocks from
    the first logged session on the loaded rung of the track, and a review
    prescribes for the block that holds the day after it (clinical-basis
    §2). A review on day 13 prescribes week 3, whether the clinic reviews at
    the end of a week (day 13) or the start of the next (day 14)."""
    if EXERCISES[exercise][1] != LOADED_RUNG:
        fs.put(f"{track}.scheme_week", None)
        return
    if track in log.first_loaded:
        i, first = log.first_loaded[track]
        day_after = (case.review_date - first).days + 1
        fs.put(f"{track}.scheme_week", _weeks(day_after) + 1,
               f"sessions[{i}].date", "review_date")
        return
    fs.put(f"{track}.scheme_week", 1, f"program.{track}.exercise")


def _track_facts(
    fs: FactSet, case: Case, track: str, log: _Log, settings: FactSettings,
) -> None:
    names = _TRACK_NAMES[track]
    rx = case.program.on(track)
    p = names["program"]
    fs.put(names["started"], rx is not None, p)
    if rx is None:
        for tmpl in TRACK_FACT_TEMPLATES[1:]:
            fs.put(names[tmpl.name], None)
        return
    fs.put(names["rung"], EXERCISES[rx.exercise][1], f"{p}.exercise")
    fs.put(names["exercise"], rx.exercise, f"{p}.exercise")
    fs.put(names["load_kg"], rx.load_kg, f"{p}.load_kg")
    mass = case.patient.body_mass_kg
    fs.put(names["load_bw_ratio"], round(rx.load_kg / mass, 3) if mass else None,
           *([f"{p}.load_kg", "patient.body_mass_kg"] if mass else []))
    through = rx.load_kg if rx.exercise in settings.seated_exercises else (mass or 0) + rx.load_kg
    fs.put(names["calf_load_bw_ratio"], round(through / mass, 3) if mass else None,
           *([f"{p}.exercise", f"{p}.load_kg", "patient.body_mass_kg"] if mass else []))
    _scheme_week(fs, case, track, rx.exercise, log)
    fs.put(names["sets"], rx.sets, f"{p}.sets")
    fs.put(names["reps"], rx.reps, f"{p}.reps")
    fs.put(names["is_isometric"], rx.exercise in ISOMETRIC_EXERCISES, f"{p}.exercise")

    # (session index, exercise index, performed) for the current exercise.
    # One entry per session (a training day): a session that logged the
    # exercise twice (twice-a-day protocols) counts once, judged by its
    # worst pain, and its dose counts as done if any entry completed it.
    # Only the window is read: the log is walked back from the latest
    # session until the window is full.
    want = settings.window_sessions
    per_session: dict[int, list[tuple[int, PerformedExercise]]] = {}
    window_ids: list[int] = []
    for i, k, ex in reversed(log.by_exercise.get(rx.exercise, ())):
        if i not in per_session:
            if len(window_ids) == want:
                break
            per_session[i] = []
            window_ids.append(i)
        per_session[i].append((k, ex))
    window_ids.reverse()
    for entries in per_session.values():
        entries.reverse()
    worst = [(i, *max(per_session[i], key=lambda e: e[1].pain_during)) for i in window_ids]
    fs.put(names["window_sessions"], len(window_ids),
           *([f"sessions[{i}].exercises[{k}]" for i in window_ids for k, _ in per_session[i]]
             or ["sessions"]))
    if worst:
        i, k, last = worst[-1]
        fs.put(names["pain_during_last"], last.pain_during,
               f"sessions[{i}].exercises[{k}].pain_during")
        top = max(worst, key=lambda w: w[2].pain_during)
        fs.put(names["pain_during_max_window"], top[2].pain_during,
               *(f"sessions[{i}].exercises[{k}].pain_during" for i, k, _ in worst))
    else:
        fs.put(names["pain_during_last"], None)
        fs.put(names["pain_during_max_window"], None)
    if len(worst) >= 2:
        i, k, prev = worst[-2]
        fs.put(names["pain_during_previous"], prev.pain_during,
               f"sessions[{i}].exercises[{k}].pain_during")
    else:
        fs.put(names["pain_during_previous"], None)
    done = [
        i for i in window_ids
        if any(ex.load_kg >= rx.load_kg and _completed(ex.sets_completed, rx.sets, rx.reps)
               for _, ex in per_session[i])
    ]
    fs.put(names["dose_completed_window"], len(done),
           *([f"sessions[{i}].exercises[{k}].sets_completed"
              for i in window_ids for k, _ in per_session[i]] or ["sessions"]))

    # Which track hurt most in the last session: a session-level flare with no
    # track over the pain-during limit regresses that one.
    hurt = False
    hurt_paths: list[str] = []
    if log.last is not None:
        hurt_paths = [f"sessions[{log.last}].exercises[{k}].pain_during"
                      for k, _ in per_session.get(log.last, ())]
        by_track = log.worst_by_track
        if track in by_track and by_track[track] == max(by_track.values()):
            hurt = True
    fs.put(names["hurt_most_last_session"], hurt, *(hurt_paths or ["sessions"]))

