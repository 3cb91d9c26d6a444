"""Hypothesis strategies for calfrehab case documents (case-format v1).

Everything here produces plain JSON-able ``dict`` documents, the way a
clinic's file would arrive, never pydantic models:

- :func:`case_documents` — VALID case files of every condition kind, stage
  and history: program tracks whose exercises belong to their track
  (``calfrehab/engine/vocabulary.py``), 0–12 sessions dated on or before the review,
  sessions logging the program's exercises with varied ``sets_completed`` and
  pain, optional next-morning pain and stiffness, assessments, red flags
  (sometimes), rupture cases with ``injury_date`` / ``management`` /
  ``surgery_date``, calf strains with a muscle, goals.
- :func:`json_values` / :func:`garbage_documents` / :func:`garbage_texts` —
  arbitrary JSON (and JSON-ish text) for the parser and validator.
- :func:`mutated_documents` — a valid document with one defect: a dropped
  field, a wrong type, an out-of-range value, an unknown field.

Plus small path helpers (:func:`get_at`, :func:`set_at`) and the targets the
monotonicity properties raise (:func:`pain_targets`, :func:`capacity_targets`).

Doses come from the shipped ladder (``rules/ladder.yaml``) so that a good
share of generated cases sit exactly on the rule base's boundaries (dose
completed, pain at the margin, load on the rep-max scheme).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any, get_args

from hypothesis import strategies as st

from calfrehab.engine.casefile import docpath
from calfrehab.engine.casefile import model as case_model
from calfrehab.engine.knowledge.catalogue import RED_FLAGS
from calfrehab.engine.knowledge.loader import load_rulebase
from calfrehab.engine.vocabulary import EXERCISES, LOADED_RUNG, TRACKS, exercises_on

Doc = dict[str, Any]
Path = tuple[str | int, ...]

# Generated from the case model's enumerations, so a value added to the
# case format is generated too.
CONDITION_KINDS: tuple[str, ...] = get_args(case_model.ConditionKind)
SIDES: tuple[str, ...] = get_args(case_model.Side)
GOALS: tuple[str, ...] = get_args(case_model.Goal)
IRRITABILITY: tuple[str, ...] = get_args(case_model.Irritability)
SEXES: tuple[str, ...] = get_args(case_model.Sex)
MANAGEMENT: tuple[str, ...] = get_args(case_model.Management)
MUSCLES: tuple[str, ...] = get_args(case_model.Muscle)
PROFILES = ("good", "mixed", "bad")

_LADDER = load_rulebase(None).ladder
# Loads are drawn in plates: what a clinic can load, and what a load step
# is rounded to.
PLATE_KG: float = _LADDER.load.plate_kg
FIRST_LOAD_KG: float = _LADDER.load.first_load_kg
# rung -> (sets, reps) the ladder starts each rung at
LADDER_DOSE: dict[int, tuple[int, int]] = {
    dose.rung: (dose.sets, dose.reps) for track in _LADDER.tracks.values() for dose in track.rungs
}
SCHEME_STEPS: tuple[tuple[int, int], ...] = tuple(
    sorted({(s.sets, s.reps) for scheme in _LADDER.load.schemes.values() for s in scheme.steps})
)

# Every field name of the case format (for unknown-field and garbage docs).
FIELD_NAMES = (
    "schema_version", "case_id", "review_date", "patient", "condition", "red_flags",
    "program", "sessions", "assessments", "age_years", "body_mass_kg", "sex", "goal",
    "kind", "side", "onset_date", "irritability", "injury_date", "management",
    "surgery_date", "muscle", "straight_knee", "bent_knee", "energy_storage", "exercise",
    "load_kg", "sets", "reps", "date", "exercises", "pain_next_morning",
    "morning_stiffness_min", "sets_completed", "pain_during", "heel_raise_test",
    "pain_at_rest", "visa_a", "hop_pain", "involved", "uninvolved",
)

REVIEW_MIN = date(2024, 1, 1)
REVIEW_MAX = date(2029, 12, 31)


def iso(d: date) -> str:
    return d.isoformat()


def rung(exercise: str) -> int:
    return EXERCISES[exercise][1]


# ------------------------------------------------------------------ scalars

case_ids = st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True)

# Loads a clinic writes: 0, whole kg, the ladder's 2.5 kg steps, decimals.
loads = st.one_of(
    st.just(0),
    st.integers(0, 120).map(lambda n: n * PLATE_KG),
    st.integers(0, 250),
    st.floats(0, 250, allow_nan=False, allow_infinity=False).map(lambda x: round(x, 2)),
)


def _pain(profile: str) -> st.SearchStrategy[int]:
    if profile == "good":
        return st.integers(0, 3)
    if profile == "bad":
        return st.integers(3, 10)
    return st.one_of(st.integers(0, 3), st.integers(0, 10))


# -------------------------------------------------------------- structures


@st.composite
def patients(draw: st.DrawFn) -> Doc:
    out: Doc = {"age_years": draw(st.integers(12, 100))}
    if draw(st.integers(0, 3)):
        out["body_mass_kg"] = draw(st.one_of(
            st.integers(25, 250),
            st.floats(25, 250, allow_nan=False, allow_infinity=False).map(lambda x: round(x, 1)),
        ))
    if draw(st.booleans()):
        out["sex"] = draw(st.sampled_from(SEXES))
    if draw(st.integers(0, 3)):
        out["goal"] = draw(st.sampled_from(GOALS))
    return out


@st.composite
def conditions(draw: st.DrawFn, review: date, kind: str | None = None) -> Doc:
    kind = kind or draw(st.sampled_from(CONDITION_KINDS))
    out: Doc = {"kind": kind, "side": draw(st.sampled_from(SIDES))}
    if draw(st.booleans()):
        out["onset_date"] = iso(review - timedelta(days=draw(st.integers(0, 400))))
    if draw(st.integers(0, 2)):
        out["irritability"] = draw(st.sampled_from(IRRITABILITY))
    if kind == "achilles_rupture":
        # Weeks 0–30 from injury, densest around the gates (2, 6, 10, 12, 14);
        # an injury (or surgery) after the review date is a validation error.
        days = draw(st.one_of(
            st.integers(0, 210),
            st.sampled_from([2, 6, 10, 12, 14]).flatmap(
                lambda w: st.integers(7 * w - 7, 7 * w + 6)),
        ))
        injury = review - timedelta(days=days)
        out["injury_date"] = iso(injury)
        out["management"] = draw(st.sampled_from(MANAGEMENT))
        operative = out["management"] == "operative"
        if draw(st.integers(0, 4)) == 0 or (operative and draw(st.booleans())):
            out["surgery_date"] = iso(injury + timedelta(days=draw(st.integers(0, min(21, days)))))
    elif kind == "calf_strain":
        if draw(st.integers(0, 3)):
            out["muscle"] = draw(st.sampled_from(MUSCLES))
    elif draw(st.integers(0, 15)) == 0:
        # Optional fields the model allows on any kind (a careful clinic may
        # record the injury date of a tendinopathy flare).
        out["injury_date"] = iso(review - timedelta(days=draw(st.integers(0, 200))))
    return out


@st.composite
def prescriptions(
    draw: st.DrawFn, track: str, min_rung: int = 0, max_rung: int = 6,
    realistic: bool | None = None,
) -> Doc:
    choices = [ex for ex in exercises_on(track) if min_rung <= rung(ex) <= max_rung]
    exercise = draw(st.sampled_from(choices))
    r = rung(exercise)
    if realistic is None:
        realistic = draw(st.integers(0, 3)) > 0
    if realistic:
        if r == LOADED_RUNG:
            sets, reps = draw(st.sampled_from(SCHEME_STEPS))
            load: Any = draw(st.integers(0, 60).map(lambda n: n * PLATE_KG))
        else:
            sets, reps = LADDER_DOSE[r]
            load = 0
    else:
        sets, reps = draw(st.integers(1, 10)), draw(st.integers(1, 50))
        load = draw(loads)
    out: Doc = {"exercise": exercise}
    if load != 0 or draw(st.booleans()):
        out["load_kg"] = load
    out["sets"] = sets
    out["reps"] = reps
    return out


@st.composite
def programs(draw: st.DrawFn, coherent: bool | None = None, late: bool | None = None) -> Doc:
    """A program; ``coherent`` ones follow the ladder's order (bent knee no
    higher than straight knee, hopping only on top of two loaded tracks);
    others combine any exercises of the right tracks (still valid)."""
    if coherent is None:
        coherent = draw(st.booleans())
    if late is None:  # both strength tracks on the loaded rung
        late = coherent and draw(st.sampled_from([False, False, False, True]))
    sk = draw(prescriptions("straight_knee", min_rung=LOADED_RUNG if late else 0))
    bk: Doc | None
    es: Doc | None
    if coherent:
        top = rung(sk["exercise"])
        bk = None if not late and (top < 1 or draw(st.integers(0, 2)) == 0) else draw(
            prescriptions("bent_knee", max_rung=top, min_rung=LOADED_RUNG if late else 0))
        both_loaded = bk is not None and rung(bk["exercise"]) == LOADED_RUNG and top == LOADED_RUNG
        es = draw(prescriptions("energy_storage")) if both_loaded and draw(st.booleans()) else None
    else:
        bk = draw(st.none() | prescriptions("bent_knee"))
        es = draw(st.none() | prescriptions("energy_storage"))
    out: Doc = {"straight_knee": sk}
    for name, rx in (("bent_knee", bk), ("energy_storage", es)):
        if rx is not None or draw(st.booleans()):
            out[name] = rx  # an explicit null is as valid as a missing key
    return out


@st.composite
def performed(draw: st.DrawFn, rx: Doc, profile: str) -> Doc:
    sets, reps = rx["sets"], rx["reps"]
    load = rx.get("load_kg", 0)
    how = "complete" if profile == "good" and draw(st.integers(0, 5)) else draw(
        st.sampled_from(["complete", "short", "random", "extra"]))
    if how == "complete":
        done = [reps] * sets
    elif how == "extra":
        done = [reps + draw(st.integers(0, 5)) for _ in range(sets + draw(st.integers(0, 2)))]
    elif how == "short":
        done = [reps] * sets
        i = draw(st.integers(0, sets - 1))
        if draw(st.booleans()):
            done[i] = draw(st.integers(0, max(reps - 1, 0)))
        else:
            done = done[: max(1, sets - 1)]
    else:
        done = draw(st.lists(st.integers(0, 60), min_size=1, max_size=11))
    out: Doc = {"exercise": rx["exercise"]}
    if draw(st.integers(0, 6)) == 0:
        load = draw(loads)
    if load != 0 or draw(st.booleans()):
        out["load_kg"] = load
    out["sets_completed"] = done
    out["pain_during"] = draw(_pain(profile))
    return out


@st.composite
def sessions(draw: st.DrawFn, program: Doc, review: date, profile: str,
             min_size: int = 0, max_size: int = 12, log_all: bool = False) -> list[Doc]:
    current = [rx for rx in program.values() if rx is not None]
    n = draw(st.integers(min_size, max_size))
    spread = draw(st.sampled_from([14, 30, 100]))
    offsets = draw(st.lists(st.integers(0, spread), min_size=n, max_size=n))
    stiffness_base = draw(st.integers(0, 60))
    out = []
    for off in sorted(offsets, reverse=True):
        picks = list(range(len(current))) if log_all else draw(st.lists(
            st.integers(0, len(current) - 1), min_size=1, max_size=len(current), unique=True))
        items = [draw(performed(current[i], profile)) for i in picks]
        extra = draw(st.integers(0, 19))
        if extra == 0:
            # The same exercise logged twice in one session (twice-a-day protocols).
            items.append(draw(performed(current[picks[0]], profile)))
        elif extra == 1:
            # An exercise that is not on the program (e.g. the rung before).
            other = draw(st.sampled_from(sorted(EXERCISES)))
            items.append(draw(performed({"exercise": other, "sets": 3, "reps": 15}, profile)))
        session: Doc = {"date": iso(review - timedelta(days=off)), "exercises": items}
        if draw(st.integers(0, 3)):
            session["pain_next_morning"] = draw(
                st.integers(0, 1) if profile == "good" else st.integers(0, 10))
        if draw(st.integers(0, 2)) == 0:
            session["morning_stiffness_min"] = (
                stiffness_base if profile == "good" else draw(st.integers(0, 120)))
        out.append(session)
    if len(out) > 1 and draw(st.booleans()):
        out = draw(st.permutations(out))  # any order; the system sorts by date
    return out


@st.composite
def assessments(draw: st.DrawFn, review: date, side: str, profile: str,
                max_size: int = 4) -> list[Doc]:
    n = draw(st.integers(0, max_size))
    out = []
    for _ in range(n):
        a: Doc = {"date": iso(review - timedelta(days=draw(st.integers(0, 120))))}
        if draw(st.booleans()):
            test: Doc = {"involved": draw(st.integers(0, 50))}
            if side != "both" or draw(st.booleans()):
                test["uninvolved"] = draw(st.integers(0, 50))
            a["heel_raise_test"] = test
        if draw(st.integers(0, 3)) if profile == "good" else draw(st.booleans()):
            a["pain_at_rest"] = draw(st.integers(0, 1) if profile == "good" else st.one_of(
                st.integers(0, 3), st.integers(0, 10)))
        if draw(st.integers(0, 2)) == 0:
            a["visa_a"] = draw(st.integers(0, 100))
        if draw(st.integers(0, 2)) == 0:
            a["hop_pain"] = draw(st.integers(0, 2) if profile == "good" else st.integers(0, 10))
        out.append(a)
    return out


red_flag_lists = st.lists(st.sampled_from(RED_FLAGS), min_size=1, max_size=3, unique=True)


@st.composite
def case_documents(
    draw: st.DrawFn,
    kinds: Sequence[str] = CONDITION_KINDS,
    red_flags: bool | None = None,
    min_sessions: int = 0,
    max_sessions: int = 12,
    profile: str | None = None,
    coherent: bool | None = None,
    scenario: str | None = None,
) -> Doc:
    """A valid case document. ``red_flags``: True always some, False never,
    None sometimes (about one case in eight). ``scenario`` ``hops`` builds a
    runner close to starting the energy-storage track (both strength tracks
    loaded, body mass recorded, soleus load near 1.5 x body weight, pain at
    rest recorded, good sessions) so the many-condition start rule is
    reached; ``general`` is everything else; None picks one."""
    review = draw(st.dates(REVIEW_MIN, REVIEW_MAX))
    scenario = scenario or draw(st.sampled_from(["general", "general", "general", "hops"]))
    hops = scenario == "hops"
    profile = profile or ("good" if hops and draw(st.integers(0, 3)) else None) or draw(
        st.sampled_from(PROFILES))
    condition = draw(conditions(review, draw(st.sampled_from(list(kinds)))))
    patient = draw(patients())
    if hops and "body_mass_kg" not in patient:
        patient["body_mass_kg"] = draw(st.integers(40, 110))
    program = draw(programs(True if hops else coherent, late=True if hops else None))
    if hops and min_sessions < 2 <= max_sessions:
        min_sessions = 2
    if (patient.get("body_mass_kg") and program.get("bent_knee")
            and rung(program["bent_knee"]["exercise"]) == LOADED_RUNG and draw(st.booleans())):
        # Often enough at the soleus target (1.5 x body weight) to start hopping.
        mass = patient["body_mass_kg"]
        program["bent_knee"]["load_kg"] = round(
            draw(st.sampled_from([1.5, 1.5, 1.6, 2.0, 1.4])) * mass, 1)
    doc: Doc = {
        "schema_version": 1,
        "case_id": draw(case_ids),
        "review_date": iso(review),
        "patient": patient,
        "condition": condition,
    }
    flags: list[str] = []
    if red_flags or (red_flags is None and draw(st.sampled_from([False] * 7 + [True]))):
        flags = draw(red_flag_lists)
    if len(flags) > 0 or draw(st.booleans()):
        doc["red_flags"] = flags
    doc["program"] = program
    if hops and draw(st.integers(0, 3)):
        program.pop("energy_storage", None)
    sess = draw(sessions(program, review, profile, min_sessions, max_sessions,
                         log_all=hops and draw(st.booleans())))
    if len(sess) > 0 or draw(st.booleans()):
        doc["sessions"] = sess
    asm = draw(assessments(review, condition["side"], profile))
    if hops and not any("pain_at_rest" in a for a in asm):
        asm.append({"date": iso(review - timedelta(days=draw(st.integers(0, 14)))),
                    "pain_at_rest": draw(st.integers(0, 2))})
    if len(asm) > 0 or draw(st.booleans()):
        doc["assessments"] = asm
    return doc


# ------------------------------------------------------------ path helpers


def get_at(doc: Any, path: Path) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def set_at(doc: Doc, path: Path, value: Any) -> Doc:
    """A deep copy of ``doc`` with the value at ``path`` replaced."""
    out = copy.deepcopy(doc)
    parent = get_at(out, path[:-1])
    parent[path[-1]] = value
    return out


def format_path(path: Path) -> str:
    """The spec's way of writing a path: ``sessions[2].exercises[0].pain_during``."""
    return docpath.format_path(path)


def _by_date(items: list[Doc]) -> list[int]:
    """Indices oldest first, ties in file order (the spec's 'latest')."""
    return [i for i, _ in sorted(enumerate(items), key=lambda p: p[1]["date"])]


@st.composite
def ready_cases(draw: st.DrawFn, kinds: Sequence[str] = CONDITION_KINDS,
                hops: bool = False) -> Doc:
    """A valid case READY TO PROGRESS on its strength tracks: no red flag,
    irritability not high, a rupture well past its week gates, a recent
    training log (last session 0-6 days before the review, first within 8
    weeks) where every session logs every program exercise at its prescribed
    dose, completed, at pain during 0-2 (inside even the calf-strain limit),
    with a flat next-morning pain of 0-2 recorded after each session, flat
    stiffness, and pain at rest 0-1 when assessed.

    Generic cases progress rarely (about one in ten), so the properties that
    say something about progress, and the monotonicity properties (which need
    something to lose), draw from this too. Every criterion here is what the
    shipped rules ask for; a case drawn here that does not progress tells of
    a gate a property can name (``hypothesis.event``).

    ``hops``: both strength tracks on the loaded rung, sometimes already
    hopping, with what the energy-storage rules read measured recently
    (bent-knee load 1.5-2 x body weight, heel-raise test, hop pain, pain at
    rest), so the track starts or moves on for goals running and sport."""
    review = draw(st.dates(REVIEW_MIN, REVIEW_MAX))
    kind = draw(st.sampled_from(list(kinds)))
    condition: Doc = {"kind": kind, "side": draw(st.sampled_from(SIDES)),
                      "irritability": draw(st.sampled_from(["moderate", "low"]))}
    if kind == "achilles_rupture":
        injury = review - timedelta(days=draw(st.integers(16 * 7, 40 * 7)))
        condition["injury_date"] = iso(injury)
        condition["management"] = draw(st.sampled_from(MANAGEMENT))
        if condition["management"] == "operative" and draw(st.booleans()):
            condition["surgery_date"] = iso(injury + timedelta(days=draw(st.integers(0, 14))))
    elif kind == "calf_strain" and draw(st.booleans()):
        condition["muscle"] = draw(st.sampled_from(MUSCLES))
    patient = draw(patients())
    program = draw(programs(coherent=True, late=True if hops else None))
    if hops:
        mass = draw(st.integers(45, 100))
        patient["body_mass_kg"] = mass
        bk = program["bent_knee"]
        bk["load_kg"] = round(draw(st.sampled_from([1.5, 1.6, 2.0])) * mass, 1)
        if draw(st.booleans()):
            program["energy_storage"] = draw(prescriptions("energy_storage", max_rung=5,
                                                           realistic=True))
    for name in TRACKS:
        rx = program.get(name)
        if rx is not None:
            # The ladder's own dose, so the dose rules read it as prescribed.
            r = rung(rx["exercise"])
            if r != LOADED_RUNG and r in LADDER_DOSE:
                rx["sets"], rx["reps"] = LADDER_DOSE[r]
    current = [rx for rx in program.values() if rx is not None]
    n = draw(st.integers(2, 6))
    last = draw(st.integers(0, 6))
    offsets = sorted({last, *draw(st.lists(st.integers(last + 1, 56), min_size=n - 1,
                                           max_size=n - 1))}, reverse=True)
    morning = draw(st.integers(0, 2))
    stiffness = draw(st.none() | st.integers(0, 20))
    sessions_: list[Doc] = []
    for off in offsets:
        items = [{"exercise": rx["exercise"], "load_kg": rx.get("load_kg", 0),
                  "sets_completed": [rx["reps"]] * rx["sets"],
                  "pain_during": draw(st.integers(0, 2))} for rx in current]
        session: Doc = {"date": iso(review - timedelta(days=off)), "exercises": items,
                        "pain_next_morning": morning}
        if stiffness is not None:
            session["morning_stiffness_min"] = stiffness
        sessions_.append(session)
    doc: Doc = {
        "schema_version": 1,
        "case_id": draw(case_ids),
        "review_date": iso(review),
        "patient": patient,
        "condition": condition,
        "program": program,
        "sessions": sessions_,
    }
    if hops:
        involved = draw(st.integers(25, 40))
        doc["assessments"] = [{
            "date": iso(review - timedelta(days=draw(st.integers(0, 14)))),
            "heel_raise_test": {"involved": involved, "uninvolved": involved + draw(
                st.integers(0, 2))},
            "pain_at_rest": draw(st.integers(0, 1)), "hop_pain": draw(st.integers(0, 2))}]
    elif draw(st.booleans()):
        doc["assessments"] = [{"date": iso(review - timedelta(days=draw(st.integers(0, 14)))),
                               "pain_at_rest": draw(st.integers(0, 1))}]
    return doc


def without_last_next_morning(doc: Doc) -> Doc:
    """A deep copy of ``doc`` without next-morning pain on its last session
    by date (on every session of the last date, so a same-day tie cannot
    decide which one is 'last'). Documents without sessions come back
    unchanged."""
    out = copy.deepcopy(doc)
    sessions_ = out.get("sessions") or []
    if sessions_:
        last = max(s["date"] for s in sessions_)
        for s in sessions_:
            if s["date"] == last:
                s.pop("pain_next_morning", None)
    return out


def pain_targets(doc: Doc) -> list[tuple[str, Path]]:
    """Pain scores a monotonicity property may raise, as (kind, path).

    Kinds: ``pain_during`` (any session, any exercise), ``pain_at_rest`` (any
    assessment) and ``pain_next_morning`` — only the LATEST session that
    records one. Raising an earlier session's next-morning pain lowers the
    session-to-session rise the pain model flags ("higher than after the
    previous session by 2 or more"), so by the spec it can clear a flare;
    that is not 'more pain', it is a flatter trend, and it is left out.
    """
    out: list[tuple[str, Path]] = []
    sessions_ = doc.get("sessions") or []
    for i, s in enumerate(sessions_):
        for k, ex in enumerate(s["exercises"]):
            if ex["pain_during"] < 10:
                out.append(("pain_during", ("sessions", i, "exercises", k, "pain_during")))
    with_nm = [i for i in _by_date(sessions_) if sessions_[i].get("pain_next_morning") is not None]
    if with_nm and sessions_[with_nm[-1]]["pain_next_morning"] < 10:
        out.append(("pain_next_morning", ("sessions", with_nm[-1], "pain_next_morning")))
    for j, a in enumerate(doc.get("assessments") or []):
        if a.get("pain_at_rest") is not None and a["pain_at_rest"] < 10:
            out.append(("pain_at_rest", ("assessments", j, "pain_at_rest")))
    return out


def capacity_targets(doc: Doc) -> list[tuple[str, Path]]:
    """Capacity a monotonicity property may raise: any ``sets_completed``
    entry (or the list, to append a set) and the involved side of the latest
    heel-raise test(s). Raising an EARLIER test is not more capacity now: it
    shrinks the change the no-improvement referral looks at, so it is left out.
    """
    out: list[tuple[str, Path]] = []
    for i, s in enumerate(doc.get("sessions") or []):
        for k, ex in enumerate(s["exercises"]):
            base: Path = ("sessions", i, "exercises", k, "sets_completed")
            out.append(("append_set", base))
            for n in range(len(ex["sets_completed"])):
                out.append(("reps", (*base, n)))
    asm = doc.get("assessments") or []
    tests = [j for j in _by_date(asm) if asm[j].get("heel_raise_test") is not None]
    if tests:
        out.append(("heel_raise_latest", ("assessments",)))
    return out


def raise_heel_raise_latest(doc: Doc, delta: int) -> Doc:
    """Raise ``involved`` of every heel-raise test on the latest test date by
    ``delta`` (all of them, so a same-day tie cannot decide which is 'latest')."""
    out = copy.deepcopy(doc)
    tests = [a for a in out.get("assessments") or [] if a.get("heel_raise_test") is not None]
    last = max(a["date"] for a in tests)
    for a in tests:
        if a["date"] == last:
            a["heel_raise_test"]["involved"] += delta
    return out


# ------------------------------------------------------- garbage and defects

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-20, 200),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
    st.sampled_from(["2026-11-20", "2026-02-30", "20261120", "", "NaN", "left", "running",
                     "two_leg_heel_raise", "suspected_rupture", "achilles_rupture"]),
)


def json_values(max_leaves: int = 25) -> st.SearchStrategy[Any]:
    """Arbitrary JSON values (the types ``json.loads`` returns)."""
    keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=12))
    return st.recursive(
        json_scalars,
        lambda inner: st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=6),
        max_leaves=max_leaves,
    )


@st.composite
def garbage_documents(draw: st.DrawFn) -> Any:
    """Arbitrary JSON, or objects shaped like a case with arbitrary values."""
    if draw(st.booleans()):
        return draw(json_values())
    doc = draw(case_documents())
    for key in draw(st.lists(st.sampled_from(sorted(doc)), max_size=4, unique=True)):
        doc[key] = draw(json_values(10))
    return doc


@st.composite
def garbage_texts(draw: st.DrawFn) -> str:
    """Text for the JSON parser: random text, JSON with a defect (truncated,
    a byte changed, a key given twice, NaN/Infinity, nesting around the
    parser's recursion limit, a number overflowing a double), or plain
    valid JSON."""
    choice = draw(st.integers(0, 7))
    if choice == 0:
        return draw(st.text(max_size=200))
    if choice == 1:
        return draw(st.text(alphabet=st.characters(codec="utf-8"), max_size=50)
                    .map(lambda t: '{"case_id": "' + t + '"}'))
    text = json.dumps(draw(case_documents(max_sessions=3)))
    if choice == 6:
        # Nesting around the parser's recursion limit, in place of a field.
        depth = draw(st.one_of(st.integers(1, 50), st.integers(900, 1100), st.just(100_000)))
        field = draw(st.sampled_from(['"case_id": ', '"sessions": ', '"red_flags": ', '"zz": ']))
        return text[:1] + field + "[" * depth + "]" * depth + ", " + text[1:]
    if choice == 7:
        # A number that overflows a double, where the format takes a number.
        big = draw(st.sampled_from(["1e999", "-1e999", "1e308", "123456789e300"]))
        return re.sub(r'("(?:load_kg|body_mass_kg)": )[-0-9.eE+]+', r"\g<1>" + big, text, count=1)
    if choice == 2:
        return text[: draw(st.integers(0, max(len(text) - 1, 0)))]
    if choice == 3:
        i = draw(st.integers(0, len(text) - 1))
        return text[:i] + draw(st.sampled_from(list('{}[],:"\\0x-.eE \n'))) + text[i + 1:]
    if choice == 4:
        insert = draw(st.sampled_from([
            '"case_id": "dup", ', '"x": NaN, ', '"x": Infinity, ', '"x": -Infinity, ',
            '"x": 1e400, ', '"x": 123456789012345678901234567890, ', '"x": "\\ud800", ',
        ]))
        return text[:1] + insert + text[1:]
    return text


def _paths(doc: Any, prefix: Path = ()) -> list[Path]:
    out: list[Path] = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            out.append((*prefix, key))
            out += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out.append((*prefix, i))
            out += _paths(value, (*prefix, i))
    return out


WRONG_VALUES: tuple[Any, ...] = (
    None, "x", "3", "", 3, -1, 3.5, True, False, [], [1], {}, 10**6, -0.5,
    "2026-13-40", "2999-01-01", "A" * 70, "not_an_id")
# A value that is wrong wherever it is put (every field is a scalar, a list,
# or a model forbidding unknown keys): the error must name that path.
ALWAYS_WRONG = {"zz_not_a_field": 1}
UNKNOWN_KEYS = ("pain_next_mornin", "morning_stifness_min", "notes", "painDuring", "sets_done",
                "load", "zz_not_a_field")


MUTATION_KINDS = ("drop", "wrong", "always_wrong", "unknown", "empty", "duplicate")


@st.composite
def mutated_documents(draw: st.DrawFn, base: st.SearchStrategy[Doc] | None = None,
                      kinds: Sequence[str] = MUTATION_KINDS) -> tuple[Doc, str, Path]:
    """(document, mutation kind, path) — one defect in a valid document.

    Kinds: ``drop`` (a key removed), ``wrong`` (a value from a list of wrong
    types and out-of-range values; it may happen to be valid, e.g. null for
    an optional field), ``always_wrong`` (an object with an unknown key,
    wrong wherever it goes), ``unknown`` (an unknown key added to an
    object), ``empty`` (a list emptied), ``duplicate`` (a list item repeated).
    """
    doc = draw(base if base is not None else case_documents(max_sessions=4))
    kind = draw(st.sampled_from(list(kinds)))
    paths = _paths(doc)
    if kind == "drop":
        path = draw(st.sampled_from([p for p in paths if isinstance(p[-1], str)]))
        out = copy.deepcopy(doc)
        del get_at(out, path[:-1])[path[-1]]
        return out, kind, path
    if kind in ("wrong", "always_wrong"):
        path = draw(st.sampled_from(paths))
        value = ALWAYS_WRONG if kind == "always_wrong" else draw(st.sampled_from(WRONG_VALUES))
        return set_at(doc, path, copy.deepcopy(value)), kind, path
    if kind == "unknown":
        objects = [()] + [p for p in paths if isinstance(get_at(doc, p), dict)]
        parent = draw(st.sampled_from(objects))
        key = draw(st.sampled_from(UNKNOWN_KEYS))
        out = copy.deepcopy(doc)
        get_at(out, parent)[key] = draw(json_scalars)
        return out, kind, (*parent, key)
    lists = [p for p in paths if isinstance(get_at(doc, p), list) and get_at(doc, p)]
    if not lists:
        return doc, "none", ()
    path = draw(st.sampled_from(lists))
    out = copy.deepcopy(doc)
    target = get_at(out, path)
    if kind == "empty":
        target.clear()
    else:
        target.append(copy.deepcopy(target[0]))
    return out, kind, path


def tracks_of(decision: Any) -> dict[str, str]:
    """track -> decision string, from a DecisionDocument."""
    return {t: td.decision for t, td in decision.tracks.items()}


__all__ = [
    "CONDITION_KINDS", "FIRST_LOAD_KG", "PLATE_KG", "TRACKS", "capacity_targets",
    "case_documents", "format_path", "garbage_documents", "garbage_texts", "get_at",
    "json_values", "mutated_documents", "pain_targets", "raise_heel_raise_latest",
    "ready_cases", "rung", "set_at", "tracks_of", "without_last_next_morning",
]

