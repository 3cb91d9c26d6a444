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
    dose_text,
    merge_reasons,
    plain,
    reason_names,
    reason_unit,
    unit_of,
)
from calfrehab.engine.knowledge.ladder import Ladder
from calfrehab.engine.report.bands import PainBands
from calfrehab.engine.vocabulary import EXERCISES, TRACKS

TRACK_TITLES = {
    "straight_knee": "Straight knee (gastrocnemius)",
    "bent_knee": "Bent knee (soleus)",
    "energy_storage": "Energy storage (hops, running)",
}
DECISION_WORDS = {
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
    model_config = ConfigDict(frozen=True)


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


class Timeline(_Model):
    track: str
    title: str
    rows: list[SessionRow]


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


class DecisionRow(_Model):
    recorded_at: str
    decision_id: str
    review_date: str
    outcome: str | None
    tracks: dict[str, str | None]
    clinician: str | None
    rulebase_version: str
    overrides: list[OverrideRow]


class ProposalTrack(_Model):
    track: str
    title: str
    decision: str
    now: str | None
    next: str | None
    how: str | None
    cues: list[str]


class ReasonLine(_Model):
    text: str
    cites: list[str]


class SourceLine(_Model):
    short: str
    citation: str


class ProjectionRow(_Model):
    week: int
    review_date: date
    rungs: dict[str, int | None]
    doses: dict[str, str | None]


class ReportData(_Model):
    case_id: str
    review_date: date
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
    reasons: list[ReasonLine]
    sources: list[SourceLine]
    projection: list[ProjectionRow] | None
    projection_note: str
    rungs: dict[int, str]
    rulebase: str
    engine_version: str
    disclaimer: str


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
                done_text=f"{len(ex.sets_completed)} × {done}{suffix}",
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


def _decisions(rows: list[dict[str, Any]]) -> list[DecisionRow]:
    overrides: dict[str, list[OverrideRow]] = {}
    for r in rows:
        if r["kind"] == "override":
            o = r.get("override") or {}
            overrides.setdefault(r["decision_id"], []).append(OverrideRow(
                recorded_at=r["recorded_at"], clinician=r.get("clinician"),
                track=o.get("track"), decision=o.get("decision"), reason=o.get("reason")))
    return [DecisionRow(recorded_at=r["recorded_at"], decision_id=r["decision_id"],
                        review_date=r["review_date"], outcome=r.get("outcome"),
                        tracks=r.get("tracks") or {}, clinician=r.get("clinician"),
                        rulebase_version=r["rulebase_version"],
                        overrides=overrides.get(r["decision_id"], []))
            for r in rows if r["kind"] == "decision"]


def _proposal(doc: DecisionDocument, ladder: Ladder) -> list[ProposalTrack]:
    out = []
    for track, td in doc.tracks.items():
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
            cues = [plain(c, ladder) for c in n.cues]
        elif td.decision == "regress":
            nxt = "pause this track"
        out.append(ProposalTrack(track=track, title=TRACK_TITLES[track],
                                 decision=DECISION_WORDS[td.decision], now=now, next=nxt,
                                 how=how, cues=cues))
    return out


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def short_source(citation: str, shorts: dict[str, str]) -> str:
    if citation in shorts:
        return shorts[citation]
    author = citation.split(" ")[0].rstrip(",.")
    year = next((w.strip(".,;:()") for w in citation.split()
                 if w.strip(".,;:()").isdigit() and len(w.strip(".,;:()")) == 4), "")
    return f"{author} {year}".strip()


def build(
    case: Case, doc: DecisionDocument, ladder: Ladder, bands: PainBands,
    shorts: dict[str, str], trail_rows: list[dict[str, Any]] | None,
    projection: list[ProjectionRow] | None, projection_note: str,
) -> ReportData:
    in_play = [t for t, td in doc.tracks.items() if td.current is not None]
    merged = merge_reasons(doc.reasons, reason_names(doc, ladder), in_play)
    reasons = [ReasonLine(text=_sentence(plain(m.text, ladder, reason_unit(m, doc, ladder))),
                          cites=[short_source(s, shorts) for s in m.sources]) for m in merged]
    cited: list[str] = []
    for m in merged:
        cited += [s for s in m.sources if s not in cited]
    timelines = _timelines(case, ladder)
    pain = _pain(case)
    with_pain: list[str] = [t for t in TRACKS if any(t in p.during for p in pain)]
    rungs = {rung: f"rung {rung}" for _, rung in EXERCISES.values()}
    return ReportData(
        case_id=case.case_id, review_date=case.review_date,
        patient=_patient(case), condition=_condition(case),
        red_flags=[r.replace("_", " ") for r in case.red_flags],
        bands=bands, timelines=timelines, pain=pain, tracks_with_pain=with_pain,
        assessments=_assessments(case),
        decisions=_decisions(trail_rows) if trail_rows is not None else None,
        trail_note=("" if trail_rows is not None else
                    "No audit trail was given (--audit TRAIL): recorded decisions and "
                    "overrides are not shown."),
        outcome=doc.outcome,
        proposal=_proposal(doc, ladder), reasons=reasons,
        sources=[SourceLine(short=short_source(c, shorts), citation=c) for c in cited],
        projection=projection, projection_note=projection_note,
        rungs=dict(sorted(rungs.items())),
        rulebase=f"{doc.rulebase.name} {doc.rulebase.version} (sha256 {doc.rulebase.sha256[:12]})",
        engine_version=doc.engine_version, disclaimer=doc.disclaimer,
    )
