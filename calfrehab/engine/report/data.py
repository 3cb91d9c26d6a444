"""What the course report shows, as data: built from a decided case and,
when given, the audit trail's entries for the case.

Everything the HTML prints (and every chart point, which the browser tests
compare with the case) comes from here, so the numbers have one source.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict

from calfrehab.engine.casefile.model import Case
from calfrehab.engine.explanation.document import DecisionDocument
from calfrehab.engine.explanation.wording import (
    TRACK_TITLES,
    clinician_text,
    decision_word,
    dose_text,
    merge_reasons,
    missing_criteria,
    reason_names,
    reason_unit,
    short_citation,
    unit_of,
)
from calfrehab.engine.knowledge.ladder import Ladder, NextPrescription
from calfrehab.engine.report.bands import PainBands
from calfrehab.engine.report.decided import DecidedProgramme
from calfrehab.engine.vocabulary import EXERCISES, TRACKS

WORDS = {
    "progress": "Progress", "hold": "Hold", "regress": "Regress", "start": "Start",
    "not_started": "Not started", "refer": "Refer",
}
WORDS = {
    "achilles_midportion": "Mid-portion Achilles tendinopathy",
    "achilles_insertional": "Insertional Achilles tendinopathy",
    "plantar_fasciopathy": "Plantar fasciopathy",
    "achilles_rupture": "Achilles tendon rupture",
    "calf_strain": "Calf strain",
    "none": "No injury (strength and resilience for running)",
    "non_operative": "non-operative", "operative": "operative",
    "daily_activity": "daily activity", "running": "running", "sport": "sport",
}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)


class Fact(_Model):
    label: str
    value: str


class SessionRow(_Model):
    """One exercise of one session on one track."""

    date: date
    exercise: str
    rung: int
    load_kg: float
    sets_done: list[int]
    done_text: str  # "3 × 15/15/12" or "5 × 45/45/40/45/45 s"
    pain_during: int


class SessionCell(_Model):
    """One track's exercise in the sessions table."""

    exercise: str
    rung: int
    load_kg: float
    done_text: str
    pain_during: int


class SessionDay(_Model):
    """One row of the sessions table: a day, each track's exercise, and
    the next morning."""

    date: date
    tracks: dict[str, SessionCell]
    next_morning: int | None
    stiffness_min: int | None


class Timeline(_Model):
    track: str
    title: str
    rows: list[SessionRow]

    @property
    def exercises(self) -> list[tuple[int, str]]:
        """Each (rung, exercise) the track logged, once, in rung order."""
        return sorted({(r.rung, r.exercise) for r in self.rows})


class PainPoint(_Model):
    date: date
    during: dict[str, int]  # track -> pain during that day (worst exercise on it)
    next_morning: int | None
    stiffness_min: int | None


class AssessmentRow(_Model):
    date: date
    involved: int | None
    uninvolved: int | None
    lsi: float | None  # involved / uninvolved x 100, one decimal
    visa_a: int | None
    pain_at_rest: int | None
    hop_pain: int | None


class OverrideRow(_Model):
    recorded_at: str
    clinician: str | None
    track: str | None
    decision: str | None
    reason: str | None
    prescribes: str = ""  # the clinician's own prescription, in words


class AcceptedRow(_Model):
    recorded_at: str
    clinician: str | None
    as_overridden: bool


class DecisionRow(_Model):
    recorded_at: str
    reasons: list[str]
    decision_id: str
    review_date: str
    outcome: str | None
    tracks: dict[str, str | None]
    clinician: str | None
    rulebase_version: str
    overrides: list[OverrideRow]
    accepted: list[AcceptedRow] = []


class Route(_Model):
    """A rule that would move a held track, and what it still lacks."""

    title: str
    missing: list[str]
    overruled_by: list[str]


class ProposalTrack(_Model):
    track: str
    title: str
    decision: str
    now: str | None
    next: str | None
    how: str | None
    cues: list[str]
    reasons: list[str]
    routes: list[Route]
    # Where the clinician decided otherwise than the rules: who, when, why
    # (``decision``, ``next``, ``how`` and ``cues`` are then the clinician's)
    # and what the rules had proposed.
    clinician: str | None = None
    proposed: str | None = None


class ReasonLine(_Model):
    text: str
    cites: list[str]


class SourceLine(_Model):
    short: str
    citation: str


class ProjectionRow(_Model):
    week: int
    last_week: int  # the same prescription up to this week
    review_date: date
    rungs: dict[str, int | None]
    doses: dict[str, str | None]


class ReportData(_Model):
    case_id: str
    review_date: date
    next_review: date
    generated: date
    author: str | None
    source_name: str
    recorded: list[str]  # the trail's latest decision, override and acceptance
    decision_heading: str  # "Decision at this review", or which recorded review
    decision_notes: list[str]  # what was logged since a recorded decision, its rules
    sessions: list[SessionDay]
    patient: list[Fact]
    condition: list[Fact]
    red_flags: list[str]
    bands: PainBands
    timelines: list[Timeline]
    pain: list[PainPoint]
    tracks_with_pain: list[str]
    assessments: list[AssessmentRow]
    decisions: list[DecisionRow] | None  # None: no trail given
    trail_note: str
    outcome: str
    proposal: list[ProposalTrack]
    reasons: list[ReasonLine]  # those said of the whole case or of every track
    sources: list[SourceLine]
    projection: list[ProjectionRow] | None
    projection_note: str
    rungs: dict[int, str]
    rung_names: dict[tuple[str, int], str]  # the ladder's exercise at each (track, rung)
    rulebase: str
    engine_version: str
    disclaimer: str

    @property
    def projection_exercises(self) -> list[tuple[str, int, str]]:
        """(track, rung, exercise name) for each rung the projection reaches."""
        seen = {(t, r) for row in self.projection or [] for t, r in row.rungs.items()
                if r is not None}
        names = {(tl.track, r): n for tl in self.timelines for r, n in tl.exercises}
        return [(t, r, names.get((t, r), self.rung_names.get((t, r), f"rung {r}")))
                for t, r in sorted(seen, key=lambda x: (list(TRACK_TITLES).index(x[0]), x[1]))]

    @property
    def projection_table(self) -> list[ProjectionRow]:
        """The projection's rows with the weeks that keep the week before's
        prescription folded into it (the chart keeps every week)."""
        out: list[ProjectionRow] = []
        for row in self.projection or []:
            if out and out[-1].doses == row.doses:
                out[-1] = out[-1].model_copy(update={"last_week": row.week})
            else:
                out.append(row)
        return out


def _patient(case: Case) -> list[Fact]:
    p = case.patient
    facts = [Fact(label="Case", value=case.case_id), Fact(label="Age", value=f"{p.age_years}")]
    if p.body_mass_kg is not None:
        facts.append(Fact(label="Body mass", value=f"{p.body_mass_kg:g} kg"))
    if p.sex is not None:
        facts.append(Fact(label="Sex", value=p.sex))
    facts.append(Fact(label="Goal", value=WORDS.get(p.goal, p.goal)))
    return facts


def _condition(case: Case) -> list[Fact]:
    c = case.condition
    facts = [Fact(label="Condition", value=WORDS.get(c.kind, c.kind)),
             Fact(label="Side", value=c.side), Fact(label="Irritability", value=c.irritability)]
    for label, value in (("Onset", c.onset_date), ("Injury", c.injury_date),
                         ("Surgery", c.surgery_date)):
        if value is not None:
            facts.append(Fact(label=label, value=value.isoformat()))
    if c.management is not None:
        facts.append(Fact(label="Management", value=WORDS.get(c.management, c.management)))
    if c.muscle is not None:
        facts.append(Fact(label="Muscle", value=c.muscle))
    return facts


def _timelines(case: Case, ladder: Ladder) -> list[Timeline]:
    rows: dict[str, list[SessionRow]] = {t: [] for t in TRACKS}
    for s in case.sessions_by_date():
        for ex in s.exercises:
            track, rung = EXERCISES[ex.exercise]
            unit = unit_of(ladder, ex.exercise)
            done = "/".join(str(n) for n in ex.sets_completed)
            suffix = {"seconds": " s", "minutes": " min"}.get(unit, "")
            rows[track].append(SessionRow(
                date=s.date, exercise=ladder.exercises[ex.exercise].name, rung=rung,
                load_kg=ex.load_kg, sets_done=list(ex.sets_completed),
                done_text=f"{done}{suffix}",
                pain_during=ex.pain_during))
    return [Timeline(track=t, title=TRACK_TITLES[t], rows=r) for t, r in rows.items() if r]


def _pain(case: Case) -> list[PainPoint]:
    points = []
    for s in case.sessions_by_date():
        during: dict[str, int] = {}
        for ex in s.exercises:
            track = EXERCISES[ex.exercise][0]
            during[track] = max(during.get(track, 0), ex.pain_during)
        points.append(PainPoint(date=s.date, during=during, next_morning=s.pain_next_morning,
                                stiffness_min=s.morning_stiffness_min))
    return points


def _sessions(timelines: list[Timeline], pain: list[PainPoint]) -> list[SessionDay]:
    """The sessions table: one row a day, a cell per track (the worst-pain
    exercise when a day logged two on one track)."""
    cells: dict[date, dict[str, SessionCell]] = {}
    for tl in timelines:
        for r in tl.rows:
            day = cells.setdefault(r.date, {})
            if tl.track not in day or r.pain_during > day[tl.track].pain_during:
                day[tl.track] = SessionCell(exercise=r.exercise, rung=r.rung, load_kg=r.load_kg,
                                            done_text=r.done_text, pain_during=r.pain_during)
    return [SessionDay(date=p.date, tracks=cells.get(p.date, {}), next_morning=p.next_morning,
                       stiffness_min=p.stiffness_min) for p in pain]


def _assessments(case: Case) -> list[AssessmentRow]:
    out = []
    for a in case.assessments_by_date():
        hrt = a.heel_raise_test
        inv = hrt.involved if hrt else None
        uninv = hrt.uninvolved if hrt else None
        lsi = round(100 * inv / uninv, 1) if inv is not None and uninv else None
        out.append(AssessmentRow(date=a.date, involved=inv, uninvolved=uninv, lsi=lsi,
                                 visa_a=a.visa_a, pain_at_rest=a.pain_at_rest,
                                 hop_pain=a.hop_pain))
    return out


def _prescribes(prescriptions: Any, ladder: Ladder) -> str:
    """An override's own prescriptions in words ("Straight knee: Two-leg
    heel raise, straight knee, 4 × 12")."""
    out = []
    for track, rx in (prescriptions or {}).items() if isinstance(prescriptions, dict) else ():
        if not isinstance(rx, dict) or rx.get("exercise") not in ladder.exercises:
            continue
        ex = str(rx["exercise"])
        dose = dose_text(int(rx.get("sets") or 0), int(rx.get("reps") or 0),
                         unit_of(ladder, ex), float(rx.get("load_kg") or 0))
        out.append(f"{TRACK_TITLES.get(track, track)}: {ladder.exercises[ex].name}, {dose}")
    return "; ".join(out)


def _decisions(rows: list[dict[str, Any]], ladder: Ladder) -> list[DecisionRow]:
    overrides: dict[str, list[OverrideRow]] = {}
    accepted: dict[str, list[AcceptedRow]] = {}
    for r in rows:
        if r["kind"] == "override":
            o = r.get("override") or {}
            overrides.setdefault(r["decision_id"], []).append(OverrideRow(
                recorded_at=r["recorded_at"], clinician=r.get("clinician"),
                track=o.get("track"), decision=o.get("decision"), reason=o.get("reason"),
                prescribes=_prescribes(o.get("prescriptions"), ladder)))
        elif r["kind"] == "accepted":
            a = r.get("accepted") or {}
            accepted.setdefault(r["decision_id"], []).append(AcceptedRow(
                recorded_at=r["recorded_at"], clinician=r.get("clinician"),
                as_overridden=bool(a.get("override_entry_id"))))
    return [DecisionRow(recorded_at=r["recorded_at"], decision_id=r["decision_id"],
                        reasons=list(r.get("reasons") or []),
                        review_date=r["review_date"], outcome=r.get("outcome"),
                        tracks=r.get("tracks") or {}, clinician=r.get("clinician"),
                        rulebase_version=r["rulebase_version"],
                        overrides=overrides.get(r["decision_id"], []),
                        accepted=accepted.get(r["decision_id"], []))
            for r in rows if r["kind"] == "decision"]


def _routes(why_not: list[dict[str, Any]], track: str) -> list[Route]:
    out = []
    for w in why_not:
        if w["track"] != track:
            continue
        for r in w["rules"]:
            out.append(Route(title=r["title"], missing=missing_criteria(r.get("failed") or []),
                             overruled_by=[o["reason"] for o in r.get("overruled_by", [])]))
    return out


def _rx_text(rx: NextPrescription) -> str:
    return f"{rx.name}, {dose_text(rx.sets, rx.reps, rx.unit, rx.load_kg)}"


def _same_rx(a: NextPrescription | None, b: NextPrescription | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.exercise, a.sets, a.reps, a.load_kg) == (b.exercise, b.sets, b.reps, b.load_kg)


def _as_decided(track: ProposalTrack, proposed: NextPrescription | None, proposed_word: str,
                programme: DecidedProgramme | None, words: dict[str, str], by: str,
                ladder: Ladder) -> ProposalTrack:
    """The track as the clinician decided it, where that differs from the
    rules' proposal: the clinician's decision and prescription first, the
    proposal after it. ``programme`` None: the override gives no dose to
    write (accept refuses it), so only its decision word is known."""
    word = words.get(track.track, proposed_word)
    if programme is None:
        if word == proposed_word:
            return track
        nxt = "no prescription recorded with the override (accept needs one)"
        rx = None
    else:
        word = programme.decisions.get(track.track, word)
        rx = programme.tracks.get(track.track)
        if _same_rx(rx, proposed) and word == proposed_word:
            return track
        nxt = _rx_text(rx) if rx is not None else "no exercise on this track"
    said = decision_word(proposed_word)
    return track.model_copy(update={
        "decision": decision_word(word), "next": nxt,
        "how": f"{rx.tempo}; {rx.frequency}; {rx.surface}" if rx is not None else None,
        "cues": [clinician_text(c, ladder) for c in rx.cues] if rx is not None else [],
        "clinician": by,
        "proposed": f"{said}, {track.next}" if track.next else said,
    })


def _proposal(doc: DecisionDocument, ladder: Ladder, texts: dict[str, list[str]],
              why_not: list[dict[str, Any]], programme: DecidedProgramme | None = None,
              words: dict[str, str] | None = None, by: str = "") -> list[ProposalTrack]:
    out = []
    # In the ladder's track order: a document read back from the trail has
    # its keys sorted.
    for track in [t for t in TRACKS if t in doc.tracks]:
        td = doc.tracks[track]
        now = nxt = how = None
        if td.current is not None:
            cur = td.current
            unit = unit_of(ladder, cur.exercise)
            now = (f"{ladder.exercises[cur.exercise].name}, "
                   f"{dose_text(cur.sets, cur.reps, unit, cur.load_kg)}")
        cues: list[str] = []
        if td.next is not None:
            n = td.next
            nxt = f"{n.name}, {dose_text(n.sets, n.reps, n.unit, n.load_kg)}"
            how = f"{n.tempo}; {n.frequency}; {n.surface}"
            cues = [clinician_text(c, ladder) for c in n.cues]
        elif td.decision == "regress":
            nxt = "pause this track"
        routes = (_routes(why_not, track)
                  if td.decision not in ("progress", "start") else [])
        shown = ProposalTrack(track=track, title=TRACK_TITLES[track],
                              decision=decision_word(td.decision), now=now, next=nxt,
                              how=how, cues=cues, reasons=texts.get(track, []),
                              routes=routes)
        if programme is not None or words:
            shown = _as_decided(shown, td.next, td.decision, programme, words or {}, by,
                                ladder)
        out.append(shown)
    return out


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def build(
    case: Case, doc: DecisionDocument, ladder: Ladder, bands: PainBands,
    shorts: dict[str, str], trail_rows: list[dict[str, Any]] | None,
    projection: list[ProjectionRow] | None, projection_note: str, *,
    why_not: list[dict[str, Any]], next_review: date, generated: date,
    author: str | None, source_name: str, restating: frozenset[str] = frozenset(),
    recorded: list[str] | None = None, programme: DecidedProgramme | None = None,
    decided_by: str = "", overridden: dict[str, str] | None = None,
    heading: str = "Decision at this review",
    notes: list[str] | None = None,
) -> ReportData:
    in_play = [t for t in TRACKS if t in doc.tracks and doc.tracks[t].current is not None]
    said = [r for r in doc.reasons if r.rule not in restating]
    merged = merge_reasons(said, reason_names(doc, ladder), in_play)
    # A reason of one track is said under that track; one of the whole case
    # (or merged over tracks) once, above them.
    per_track: dict[str, list[str]] = {}
    shared: list[ReasonLine] = []
    for m in merged:
        cites = [short_citation(s, shorts) for s in m.sources]
        text = _sentence(clinician_text(m.text, ladder, reason_unit(m, doc, ladder)))
        if len(m.tracks) == 1:
            per_track.setdefault(m.tracks[0], []).append(f"{text} [{'; '.join(cites)}]")
        else:
            shared.append(ReasonLine(text=text, cites=cites))
    cited: list[str] = []
    for m in merged:
        cited += [s for s in m.sources if s not in cited]
    timelines = _timelines(case, ladder)
    pain = _pain(case)
    with_pain: list[str] = [t for t in TRACKS if any(t in p.during for p in pain)]
    rungs = {rung: f"rung {rung}" for _, rung in EXERCISES.values()}
    return ReportData(
        case_id=case.case_id, review_date=case.review_date, next_review=next_review,
        generated=generated, author=author, source_name=source_name,
        recorded=recorded or [], decision_heading=heading, decision_notes=notes or [],
        sessions=_sessions(timelines, pain),
        patient=_patient(case), condition=_condition(case),
        red_flags=[r.replace("_", " ") for r in case.red_flags],
        bands=bands, timelines=timelines, pain=pain, tracks_with_pain=with_pain,
        assessments=_assessments(case),
        decisions=_decisions(trail_rows, ladder) if trail_rows is not None else None,
        trail_note=("" if trail_rows is not None else
                    "No audit trail was given (--audit TRAIL or CALFREHAB_AUDIT): recorded "
                    "decisions and overrides are not shown."),
        outcome=doc.outcome,
        proposal=_proposal(doc, ladder, per_track, why_not, programme, overridden,
                           decided_by),
        reasons=shared,
        sources=[SourceLine(short=short_citation(c, shorts), citation=c) for c in cited],
        projection=projection, projection_note=projection_note,
        rungs=dict(sorted(rungs.items())),
        rung_names={(t, r): ladder.exercises[ex].name for ex, (t, r) in EXERCISES.items()
                    if ex in ladder.exercises},
        rulebase=f"{doc.rulebase.name} {doc.rulebase.version} (sha256 {doc.rulebase.sha256[:12]})",
        engine_version=doc.engine_version, disclaimer=doc.disclaimer,
    )
