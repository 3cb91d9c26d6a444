"""The interviews behind ``new``, ``log`` and ``assess``.

Each interview asks its questions through an :data:`Ask` (a prompt, or a
flag read by a script), builds the entry with the case-file models, and
writes it with :mod:`calfrehab.engine.casefile.editor`, which refuses an
entry that would make the case invalid and then leaves the file as it was.

Choices, ranges and optional fields come from the case-file models, and
starting doses from the rule base's ladder, so nothing here restates them.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any, get_args

from annotated_types import Ge, Le
from pydantic import BaseModel, ConfigDict

from calfrehab.engine.casefile import model as cm
from calfrehab.engine.casefile.editor import (
    CaseFile,
    append_entry,
    as_json,
    last_session_index,
    new_case_file,
    open_case,
    set_session_fields,
    update_case,
)
from calfrehab.engine.casefile.validation import validate_document
from calfrehab.engine.entry.plausible import (
    PlausibleRanges,
    Unusual,
    UnusualValues,
    check_assessment,
    check_performed,
    check_prescription,
)
from calfrehab.engine.entry.questions import AnswerError, Ask, Question
from calfrehab.engine.errors import DuplicateSession as DuplicateSession
from calfrehab.engine.knowledge.ladder import Ladder
from calfrehab.engine.vocabulary import EXERCISES, LOADED_RUNG, TRACKS, exercises_on

NONE = "none"
TRACK_WORDS = {
    "straight_knee": "Straight-knee track",
    "bent_knee": "Bent-knee track",
    "energy_storage": "Hopping / running track",
}


class Written(BaseModel):
    """What an interview wrote: the file, the case and one line per change."""

    model_config = ConfigDict(frozen=True)

    path: str
    case_id: str
    review_date: str
    changes: list[str]


def _bounds(model: type[BaseModel], field: str) -> tuple[float | None, float | None]:
    """The range the case format allows a field, read from its model."""
    info = model.model_fields[field]
    low = high = None
    metadata = list(info.metadata)
    for arg in get_args(info.annotation):
        for meta in getattr(arg, "__metadata__", ()):
            metadata += getattr(meta, "metadata", [meta])
    for meta in metadata:
        if isinstance(meta, Ge):
            low = float(meta.ge)  # type: ignore[arg-type]
        if isinstance(meta, Le):
            high = float(meta.le)  # type: ignore[arg-type]
    return low, high


def _literal(annotation: Any) -> tuple[str, ...]:
    """The names a Literal (possibly ``| None``) allows."""
    out: list[str] = []
    for arg in get_args(annotation) or (annotation,):
        out += [a for a in get_args(arg) if isinstance(a, str)] or (
            [arg] if isinstance(arg, str) else [])
    return tuple(out)


def _choice(key: str, text: str, annotation: Any, **kw: Any) -> Question:
    return Question(key=key, text=text, kind="choice", choices=_literal(annotation), **kw)


def _ranged(key: str, text: str, kind: str, model: type[BaseModel], field: str,
            **kw: Any) -> Question:
    low, high = _bounds(model, field)
    return Question(key=key, text=text, kind=kind, minimum=low, maximum=high,  # type: ignore[arg-type]
                    **kw)


def _track_questions(track: str) -> list[Question]:
    choices = (*exercises_on(track),)
    if not cm.Program.model_fields[track].is_required():
        choices = (NONE, *choices)
    sets_low, sets_high = _bounds(cm.Prescription, "sets")
    reps_low, reps_high = _bounds(cm.Prescription, "reps")
    load_low, _ = _bounds(cm.Prescription, "load_kg")
    return [
        Question(key=track, text=f"{TRACK_WORDS[track]}: exercise now", kind="choice",
                 choices=choices, help=f"current {track} exercise ({NONE}: not started)"),
        Question(key=f"{track}_sets", text="  sets", kind="int", minimum=sets_low,
                 maximum=sets_high, help=f"prescribed sets on the {track} track"),
        Question(key=f"{track}_reps", text="  reps per set (seconds for a hold, minutes for "
                 "running)", kind="int", minimum=reps_low, maximum=reps_high,
                 help=f"prescribed reps per set on the {track} track"),
        Question(key=f"{track}_load_kg", text="  external load, kg", kind="number",
                 minimum=load_low, help=f"external load on the {track} track, kg"),
    ]


NEW_QUESTIONS: tuple[Question, ...] = (
    Question(key="case_id", text="Case id", kind="text", pattern=r"[A-Za-z0-9._-]{1,64}",
             pattern_help="1–64 characters from A-Z a-z 0-9 . _ -",
             help="the clinic's identifier for this case"),
    Question(key="review_date", text="Review date (YYYY-MM-DD)", kind="date",
             help="the day the decision is for (default: today)"),
    _ranged("age_years", "Age, years", "int", cm.Patient, "age_years", help="patient's age"),
    _ranged("body_mass_kg", "Body mass, kg (blank if not known)", "number", cm.Patient,
            "body_mass_kg", required=False, help="body mass, kg"),
    _choice("sex", "Sex (blank if not given)", cm.Patient.model_fields["sex"].annotation,
            required=False, help="patient's sex"),
    _choice("goal", "Goal", cm.Patient.model_fields["goal"].annotation, default="running",
            help="what the rehab is for"),
    _choice("kind", "Condition", cm.Condition.model_fields["kind"].annotation,
            help="the condition"),
    _choice("side", "Involved side", cm.Condition.model_fields["side"].annotation,
            help="involved side"),
    _choice("irritability", "Irritability", cm.Condition.model_fields["irritability"].annotation,
            default="moderate", help="clinician's rating of irritability"),
    Question(key="onset_date", text="Onset date (YYYY-MM-DD, blank if not known)", kind="date",
             required=False, help="onset of symptoms"),
    Question(key="injury_date", text="Day of the rupture (YYYY-MM-DD)", kind="date",
             help="achilles_rupture only: day of the rupture"),
    _choice("management", "Management", cm.Condition.model_fields["management"].annotation,
            help="achilles_rupture only: operative or non_operative"),
    Question(key="surgery_date", text="Surgery date (YYYY-MM-DD, blank if not known)",
             kind="date", required=False, help="operative rupture only: day of surgery"),
    _choice("muscle", "Strained muscle (blank if not known)",
            cm.Condition.model_fields["muscle"].annotation, required=False,
            help="calf_strain only: which muscle"),
    Question(key="red_flags", text="Red flags found", kind="choices",
             choices=_literal(cm.RedFlag), default=NONE,
             help="comma-separated red flags, or none"),
    *[q for track in TRACKS for q in _track_questions(track)],
)

_NEW = {q.key: q for q in NEW_QUESTIONS}


def _ask(ask: Ask, key: str, catalogue: dict[str, Question], **update: Any) -> Any:
    q = catalogue[key]
    return ask(q.model_copy(update=update) if update else q)


def _prescription(ask: Ask, track: str, ladder: Ladder, condition: cm.Condition,
                  ) -> cm.Prescription | None:
    default = exercises_on(track)[1] if track == "straight_knee" else None
    if track == "straight_knee" and condition.irritability == "high":
        default = exercises_on(track)[0]  # a reactive tendon starts with holds
    choices = _NEW[track].choices
    exercise = _ask(ask, track, _NEW, default=default or choices[0])
    if exercise == NONE:
        return None
    rung = EXERCISES[exercise][1]
    dose = ladder.tracks[track].at(rung)  # type: ignore[index]
    sets = _ask(ask, f"{track}_sets", _NEW, default=str(dose.sets) if dose else None)
    reps = _ask(ask, f"{track}_reps", _NEW, default=str(dose.reps) if dose else None)
    load = ladder.load.first_load_kg if rung == LOADED_RUNG else 0
    load_kg = _ask(ask, f"{track}_load_kg", _NEW, default=f"{load:g}")
    return cm.Prescription(exercise=exercise, sets=sets, reps=reps, load_kg=load_kg)


def _refuse_unusual(found: list[Unusual], confirmed: bool, ask: Ask) -> None:
    """Refuse values outside the plausible ranges unless confirmed: by the
    flag, or at a terminal by answering yes after reading the ranges (a
    script's missing answer is the default, no)."""
    if not found or confirmed:
        return
    listed = "\n".join(f"  {u.render()}" for u in found)
    answer = ask(Question(
        key="confirm_unusual_answer", kind="choice", choices=("no", "yes"), default="no",
        text=f"{listed}\nEnter {'it' if len(found) == 1 else 'them'} anyway?",
        help="enter values outside the plausible ranges"))
    if answer != "yes":
        raise UnusualValues(found)


def new_case(path: Path, ask: Ask, ladder: Ladder, today: date, *,
             overwrite: bool = False, ranges: PlausibleRanges | None = None,
             confirm_unusual: bool = False) -> Written:
    """Ask for a new case and write it to ``path``. No date may be after
    ``today``; a programme load past the plausible range needs
    ``confirm_unusual``."""
    stem = Path(path).stem
    case_id = _ask(ask, "case_id", _NEW,
                   default=stem if _NEW["case_id"].pattern and _fits(_NEW["case_id"], stem)
                   else None)
    review = _ask(ask, "review_date", _NEW, default=today.isoformat(), latest=today)
    patient = cm.Patient(
        age_years=_ask(ask, "age_years", _NEW),
        body_mass_kg=_ask(ask, "body_mass_kg", _NEW),
        sex=_ask(ask, "sex", _NEW),
        goal=_ask(ask, "goal", _NEW),
    )
    kind = _ask(ask, "kind", _NEW)
    side = _ask(ask, "side", _NEW)
    fields: dict[str, Any] = {
        "kind": kind, "side": side,
        "irritability": _ask(ask, "irritability", _NEW),
        "onset_date": _ask(ask, "onset_date", _NEW, latest=today),
    }
    if kind == "achilles_rupture":
        fields["injury_date"] = _ask(ask, "injury_date", _NEW, latest=today)
        fields["management"] = _ask(ask, "management", _NEW)
        if fields["management"] == "operative":
            fields["surgery_date"] = _ask(ask, "surgery_date", _NEW, latest=today)
    if kind == "calf_strain":
        fields["muscle"] = _ask(ask, "muscle", _NEW)
    condition = cm.Condition(**{k: v for k, v in fields.items() if v is not None})
    red_flags = _ask(ask, "red_flags", _NEW)
    program = {track: _prescription(ask, track, ladder, condition) for track in TRACKS}
    if ranges is not None:
        _refuse_unusual([u for t, rx in program.items() if rx is not None
                         for u in check_prescription(ranges, f"program.{t}", rx,
                                                     patient.body_mass_kg)], confirm_unusual,
                        ask)
    document: dict[str, Any] = {
        "schema_version": 1,
        "case_id": case_id,
        "review_date": review.isoformat(),
        "patient": as_json(patient),
        "condition": as_json(condition),
        "red_flags": red_flags,
        "program": {t: (as_json(rx) if rx is not None else None) for t, rx in program.items()},
        "sessions": [],
        "assessments": [],
    }
    cf = new_case_file(path, document, overwrite=overwrite)
    case = cf.save()
    started = [t for t, rx in program.items() if rx is not None]
    return Written(path=str(path), case_id=case.case_id, review_date=case.review_date.isoformat(),
                   changes=[f"new case {case.case_id}: {kind}, {side}; programme on "
                            + ", ".join(started)])


def _fits(q: Question, text: str) -> bool:
    try:
        q.parse(text)
    except AnswerError:
        return False
    return True


# --- log: a session ---------------------------------------------------------

def _log_track_questions(track: str) -> list[Question]:
    pain_low, pain_high = _bounds(cm.PerformedExercise, "pain_during")
    load_low, _ = _bounds(cm.PerformedExercise, "load_kg")
    return [
        Question(key=f"{track}_done", text="  done per set", kind="reps", minimum=0,
                 help=f"reps (or seconds held) done in each set on the {track} track, "
                      "comma-separated (default: as prescribed; skip: not done)"),
        Question(key=f"{track}_pain", text="  worst pain during (0–10)", kind="int",
                 minimum=pain_low, maximum=pain_high,
                 help=f"worst pain during the {track} exercise, 0–10"),
        Question(key=f"{track}_exercise", text="  exercise", kind="choice",
                 choices=tuple(exercises_on(track)),
                 help=f"exercise done on the {track} track (default: the programme's)"),
        Question(key=f"{track}_load_kg", text="  external load, kg", kind="number",
                 minimum=load_low, help=f"load used on the {track} track "
                 "(default: the programme's)"),
    ]


def _morning_questions(prefix: str, where: str) -> list[Question]:
    pain_low, pain_high = _bounds(cm.Session, "pain_next_morning")
    stiff_low, _ = _bounds(cm.Session, "morning_stiffness_min")
    return [
        Question(key=f"{prefix}morning_pain", text=f"Next-morning pain after {where} (0–10"
                 + (", blank if not known)" if prefix else ")"), kind="int", minimum=pain_low,
                 maximum=pain_high, required=not prefix,
                 help=f"pain on the morning after {where}, 0–10"),
        Question(key=f"{prefix}stiffness_min", text="Morning stiffness, minutes (blank if not "
                 "known)", kind="int", minimum=stiff_low, required=False,
                 help=f"minutes of morning stiffness after {where}"),
    ]


LOG_QUESTIONS: tuple[Question, ...] = (
    Question(key="date", text="Session date (YYYY-MM-DD)", kind="date",
             help="day of the session (default: today)"),
    *[q for track in TRACKS for q in _log_track_questions(track)],
    *_morning_questions("previous_", "the previous session"),
)
MORNING_QUESTIONS: tuple[Question, ...] = tuple(_morning_questions("", "the last session"))
_LOG = {q.key: q for q in (*LOG_QUESTIONS, *MORNING_QUESTIONS)}

# Flag-only answers: a script may give them, a person is not asked (they
# default from the programme).
LOG_FLAG_ONLY = frozenset(f"{t}_{k}" for t in TRACKS for k in ("exercise", "load_kg"))


def _dose_words(rx: cm.Prescription, ladder: Ladder | None) -> str:
    name = ladder.exercises[rx.exercise].name if ladder is not None else rx.exercise
    load = f", +{rx.load_kg:g} kg" if rx.load_kg else ""
    return f"{name}, {rx.sets} × {rx.reps}{load}"


def _not_started(case: cm.Case, answered: frozenset[str]) -> None:
    # A value for a track with no programme would be dropped; say so.
    for track in TRACKS:
        if case.program.on(track) is not None:
            continue
        given = sorted(k for k in answered if k.startswith(f"{track}_")
                       and k.removeprefix(f"{track}_") in ("done", "pain", "exercise",
                                                          "load_kg"))
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise AnswerError(
                f"{flags}: the {TRACK_WORDS[track].lower()} has not started (program."
                f"{track} is empty), so there is nothing to log against; nothing was "
                "written. Start it first (calfrehab accept a decision that starts it)")


def _morning_words(pain: int, stiffness: int | None) -> str:
    return f"next-morning pain {pain}/10" + (
        f", stiffness {stiffness} min" if stiffness is not None else "")


def log_session(path: Path, ask: Ask, today: date, ladder: Ladder | None = None, *,
                ranges: PlausibleRanges | None = None, second_session: bool = False,
                confirm_unusual: bool = False,
                answered: frozenset[str] = frozenset()) -> Written:
    """Ask for one session (reps done and pain during, per programme track)
    and append it; also offers to fill in the previous session's
    next-morning answers when they are missing.

    Refused, leaving the file as it was: a date after ``today``; a value
    for a track that has not started (``answered``: the answers given as
    flags); the same session again on its date unless ``second_session``;
    values past the plausible ranges unless ``confirm_unusual``. The file
    is re-read under its lock before the session is added, so a session
    another writer added meanwhile is kept."""
    snapshot = open_case(path)
    case = _valid(snapshot)
    _not_started(case, answered)
    changes: list[str] = []
    when = _ask(ask, "date", _LOG, default=today.isoformat(), latest=today)
    morning: tuple[str, int, int | None] | None = None
    previous = last_session_index(snapshot.document)
    if previous is not None:
        prev = snapshot.document["sessions"][previous]
        if "pain_next_morning" not in prev and str(prev.get("date")) < when.isoformat():
            pain = _ask(ask, "previous_morning_pain", _LOG,
                        text=f"Next-morning pain after the session on {prev['date']} "
                             "(0–10, blank if not known)")
            stiffness = _ask(ask, "previous_stiffness_min", _LOG) if pain is not None else None
            if pain is not None:
                morning = (str(prev["date"]), pain, stiffness)
    performed: list[cm.PerformedExercise] = []
    for track in TRACKS:
        rx = case.program.on(track)
        if rx is None:
            continue
        header = f"{TRACK_WORDS[track]}: {_dose_words(rx, ladder)}"
        done = _ask(ask, f"{track}_done", _LOG, default=", ".join([str(rx.reps)] * rx.sets),
                    text=f"{header}\n  done per set (or skip)")
        if done is None:
            continue
        pain = _ask(ask, f"{track}_pain", _LOG)
        exercise = _ask(ask, f"{track}_exercise", _LOG, default=rx.exercise)
        load = _ask(ask, f"{track}_load_kg", _LOG, default=f"{rx.load_kg:g}")
        performed.append(cm.PerformedExercise(exercise=exercise, load_kg=load,
                                              sets_completed=done, pain_during=pain))
    if not performed:
        raise AnswerError("a session needs at least one exercise; every track was skipped")
    session = cm.Session(date=when, exercises=performed,
                         second_session=True if second_session else None)
    if ranges is not None:
        _refuse_unusual([u for k, p in enumerate(performed) for u in check_performed(
            ranges, f"session {when.isoformat()}.exercises[{k}]", p,
            case.patient.body_mass_kg)], confirm_unusual, ask)

    def add(document: dict[str, Any]) -> list[str]:
        fresh = validate_document(document, str(path))
        same_day = [s for s in fresh.sessions if s.date == when]
        if second_session and not same_day:
            raise AnswerError(f"--second-session: there is no session on {when.isoformat()} "
                              "yet; log the first without it")
        if any(s.same_entry() == session.same_entry() for s in same_day):
            # With --second-session given, the hint to give it would send the
            # clinician round in a circle: the day holds that second session.
            raise DuplicateSession(
                f"{path} already has this {'second ' if second_session else ''}session on "
                f"{when.isoformat()} (the same exercises, sets and pain); nothing was written"
                + ("" if second_session else ". If the patient trained twice that day, log "
                   "it again with --second-session"))
        out: list[str] = []
        if morning is not None:
            index = _session_without_morning(document, morning[0])
            if index is not None:
                set_session_fields(document, index, {"pain_next_morning": morning[1],
                                                     "morning_stiffness_min": morning[2]})
                out.append(f"session {morning[0]}: {_morning_words(morning[1], morning[2])}")
        moved = append_entry(document, "sessions", as_json(session))
        out.append(f"session {when.isoformat()}: " + "; ".join(
            f"{p.exercise} {'/'.join(str(n) for n in p.sets_completed)}, pain "
            f"{p.pain_during}/10" for p in performed)
            + (" (second session that day)" if second_session else ""))
        if moved is not None:
            out.append(f"review_date moved from {moved} to {when.isoformat()}")
        return out

    saved, changes = update_case(path, add)
    return Written(path=str(path), case_id=saved.case_id,
                   review_date=saved.review_date.isoformat(), changes=changes)


def _session_without_morning(document: dict[str, Any], on: str) -> int | None:
    """The last session on date ``on`` (in file order) with no next-morning
    pain yet."""
    found = None
    for i, s in enumerate(document.get("sessions") or []):
        if isinstance(s, dict) and s.get("date") == on and "pain_next_morning" not in s:
            found = i
    return found


def _morning_default(case: cm.Case, today: date) -> date | None:
    """The most recent session date before today with no next-morning pain."""
    missing = [s.date for s in case.sessions
               if s.date < today and s.pain_next_morning is None]
    return max(missing) if missing else None


def log_morning(path: Path, ask: Ask, today: date, *, replace: bool = False) -> Written:
    """Add next-morning pain and stiffness to one session: the one dated
    ``--date``, by default the most recent session before today that has
    none. Values already there are changed only with ``replace``."""
    snapshot = open_case(path)
    case = _valid(snapshot)
    if not case.sessions:
        raise AnswerError(f"{path} has no session yet; log one first")
    default = _morning_default(case, today)
    yesterday = today - timedelta(days=1)
    on = _ask(ask, "date", _LOG, default=default.isoformat() if default else None,
              latest=yesterday, latest_is="yesterday (a session's next morning has "
              "come only for sessions before today)",
              text="Date of the session the morning followed (YYYY-MM-DD)",
              help="the session's date", required=default is not None)
    if on is None:
        raise AnswerError("every session before today has its next-morning values; give "
                          "--date (and --replace to change them)")
    when = on.isoformat()
    dated = [s for s in case.sessions if s.date == on]
    if not dated:
        have = ", ".join(sorted({s.date.isoformat() for s in case.sessions})[-5:])
        raise AnswerError(f"--date {when}: {path} has no session on that day (latest "
                          f"sessions: {have})")
    if all(s.pain_next_morning is not None for s in dated) and not replace:
        there = _morning_words(dated[-1].pain_next_morning or 0,
                               dated[-1].morning_stiffness_min)
        raise AnswerError(f"the session on {when} already has {there}; nothing was "
                          "written. Give --replace to change it")
    pain = _ask(ask, "morning_pain", _LOG,
                text=f"Next-morning pain after the session on {when} (0–10)")
    stiffness = _ask(ask, "stiffness_min", _LOG)

    def put_morning(document: dict[str, Any]) -> str:
        index = _session_without_morning(document, when)
        if index is None:
            if not replace:
                raise AnswerError(f"the session on {when} got next-morning values from "
                                  "another command meanwhile; nothing was written. Give "
                                  "--replace to change them")
            index = max(i for i, s in enumerate(document["sessions"])
                        if isinstance(s, dict) and s.get("date") == when)
            session = document["sessions"][index]
            session.pop("morning_stiffness_min", None)
        set_session_fields(document, index, {"pain_next_morning": pain,
                                             "morning_stiffness_min": stiffness})
        return f"session {when}: {_morning_words(pain, stiffness)}"

    saved, change = update_case(path, put_morning)
    return Written(path=str(path), case_id=saved.case_id,
                   review_date=saved.review_date.isoformat(), changes=[change])


def _valid(cf: CaseFile) -> cm.Case:
    # Refuse to add to a file that is already broken: the error names its
    # fields, and a fix by hand comes first.
    return validate_document(cf.document, str(cf.path))


# --- assess: an assessment --------------------------------------------------

def _assess_questions() -> tuple[Question, ...]:
    rest_low, rest_high = _bounds(cm.Assessment, "pain_at_rest")
    visa_low, visa_high = _bounds(cm.Assessment, "visa_a")
    hop_low, hop_high = _bounds(cm.Assessment, "hop_pain")
    hr_low, _ = _bounds(cm.HeelRaiseTest, "involved")
    return (
        Question(key="date", text="Assessment date (YYYY-MM-DD)", kind="date",
                 help="day of the assessment (default: today)"),
        Question(key="heel_raise_involved", text="Single-leg heel-raise test, involved side, "
                 "reps (blank if not done)", kind="int", minimum=hr_low, required=False,
                 help="heel-raise test to fatigue, involved side, reps"),
        Question(key="heel_raise_uninvolved", text="  uninvolved side, reps", kind="int",
                 minimum=hr_low, required=False,
                 help="heel-raise test to fatigue, uninvolved side, reps"),
        Question(key="pain_at_rest", text="Pain at rest (0–10, blank if not asked)",
                 kind="int", minimum=rest_low, maximum=rest_high, required=False,
                 help="pain at rest, 0–10"),
        Question(key="visa_a", text="VISA-A score (0–100, blank if not taken)", kind="int",
                 minimum=visa_low, maximum=visa_high, required=False,
                 help="VISA-A score, 0–100 (Achilles conditions)"),
        Question(key="hop_pain", text="Pain during 10 single-leg hops (0–10, blank if not "
                 "tested)", kind="int", minimum=hop_low, maximum=hop_high, required=False,
                 help="pain during 10 single-leg hops, involved side, 0–10"),
    )


ASSESS_QUESTIONS = _assess_questions()
_ASSESS = {q.key: q for q in ASSESS_QUESTIONS}


def add_assessment(path: Path, ask: Ask, today: date, *,
                   ranges: PlausibleRanges | None = None,
                   confirm_unusual: bool = False) -> Written:
    """Ask for one assessment and append it (under the file's lock). A date
    after ``today`` is refused; so are values past the plausible ranges
    unless ``confirm_unusual``, and the same assessment again."""
    cf = open_case(path)
    case = _valid(cf)
    when = _ask(ask, "date", _ASSESS, default=today.isoformat(), latest=today)
    involved = _ask(ask, "heel_raise_involved", _ASSESS)
    uninvolved = None
    if involved is not None:
        # The uninvolved side may be absent only when both sides are involved.
        uninvolved = _ask(ask, "heel_raise_uninvolved", _ASSESS,
                          required=case.condition.side != "both")
    visa = (_ask(ask, "visa_a", _ASSESS) if case.condition.kind.startswith("achilles")
            else None)
    fields: dict[str, Any] = {
        "date": when,
        "heel_raise_test": (cm.HeelRaiseTest(involved=involved, uninvolved=uninvolved)
                            if involved is not None else None),
        "pain_at_rest": _ask(ask, "pain_at_rest", _ASSESS),
        "visa_a": visa,
        "hop_pain": _ask(ask, "hop_pain", _ASSESS),
    }
    if all(v is None for k, v in fields.items() if k != "date"):
        raise AnswerError("an assessment needs at least one measurement; none was given")
    assessment = cm.Assessment(**{k: v for k, v in fields.items() if v is not None})
    if ranges is not None:
        _refuse_unusual(check_assessment(ranges, f"assessment {when.isoformat()}", assessment),
                        confirm_unusual, ask)
    measured = [k for k, v in fields.items() if k != "date" and v is not None]

    def add(document: dict[str, Any]) -> list[str]:
        fresh = validate_document(document, str(path))
        if assessment in fresh.assessments:
            raise DuplicateSession(f"{path} already has this assessment on "
                                   f"{when.isoformat()}; nothing was written")
        moved = append_entry(document, "assessments", as_json(assessment))
        out = [f"assessment {when.isoformat()}: " + ", ".join(measured)]
        if moved is not None:
            out.append(f"review_date moved from {moved} to {when.isoformat()}")
        return out

    saved, changes = update_case(path, add)
    return Written(path=str(path), case_id=saved.case_id,
                   review_date=saved.review_date.isoformat(), changes=changes)
