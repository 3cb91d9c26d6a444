"""Decide a case and write its course report or its patient handout."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from calfrehab.engine.clinic import clinic_today, load_config
from calfrehab.engine.course.run import simulate_document
from calfrehab.engine.explanation.explain import Explainer
from calfrehab.engine.explanation.wording import (
    clinician_text,
    decision_word,
    dose_text,
    restating_rules,
    track_title,
    unit_of,
)
from calfrehab.engine.inference.driver import Reasoner
from calfrehab.engine.pipeline import Decided, decide_path, prepare
from calfrehab.engine.report import data as rdata
from calfrehab.engine.report import handout as handout_data
from calfrehab.engine.report.bands import PainBands, pain_bands
from calfrehab.engine.report.decided import decided_programme
from calfrehab.engine.report.recorded import RecordedReview, recorded_review
from calfrehab.engine.safeio import atomic_write_text, check_outputs
from calfrehab.engine.vocabulary import rung_of

if TYPE_CHECKING:
    from calfrehab.engine.acceptance import CaseState
    from calfrehab.engine.casefile.model import Case
    from calfrehab.engine.report.decided import DecidedProgramme

# Weeks of projected course a report shows by default (a view, not a rule).
PROJECTION_WEEKS = 12
# A report holds health data: readable by its owner only.
OUTPUT_MODE = 0o600
PROJECTION_NOTE = (
    "A projection, not a prognosis: calfrehab's course simulator replays weekly reviews of a "
    "patient who does every session as prescribed with little pain (the `ideal` script of "
    "`calfrehab simulate`), each decided by the same rules.")
OVERRIDE_PROJECTION_NOTE = (
    " It starts from the programme as overridden (what accepting the override writes), "
    "not from the rules' proposal.")


class Wrote(BaseModel):
    """What was written: the file, its case, and a line to print."""

    model_config = ConfigDict(frozen=True)

    path: str
    case_id: str
    summary: str


def _bands(decided: Decided) -> PainBands:
    return pain_bands([r.rule for r in decided.evaluation.compiled.base.rules])


def _projection(decided: Decided, reasoner: Reasoner, weeks: int,
                source: str) -> list[rdata.ProjectionRow]:
    ladder = reasoner.compiled.base.ladder
    course = simulate_document(decided.document, reasoner, weeks=weeks, script="ideal",
                               source=source)
    rows = []
    for row in course.rows:
        rungs: dict[str, int | None] = {}
        doses: dict[str, str | None] = {}
        for track, tw in row.tracks.items():
            if tw.exercise is None or tw.sets is None or tw.reps is None:
                rungs[track], doses[track] = None, None
                continue
            rungs[track] = rung_of(tw.exercise)
            unit = unit_of(ladder, tw.exercise)
            # The rung stands for the exercise: the table's key names it.
            doses[track] = f"R{rungs[track]} {dose_text(tw.sets, tw.reps, unit, tw.load_kg)}"
        rows.append(rdata.ProjectionRow(week=row.week, last_week=row.week,
                                        review_date=row.review_date, rungs=rungs, doses=doses))
    return rows


def _trail_rows(audit: Path, case_id: str) -> list[dict[str, Any]]:
    """The trail's rows for the case, each decision with its reasons' text."""
    from calfrehab.engine.audit.views import list_audit, open_trail

    with open_trail(audit) as trail:
        rows = list_audit(trail, case_id=case_id)
        reasons = {e.decision_id: _deciding_reasons(e.decision)
                   for e in trail.entries(case_id=case_id, kind="decision")}
    for r in rows:
        if r["kind"] == "decision":
            r["reasons"] = reasons.get(r["decision_id"], [])
    return rows


def _deciding_reasons(doc: dict[str, Any]) -> list[str]:
    """A recorded decision's reasons that decided a track (or referred),
    each once: the supporting facts are in the trail for whoever needs them."""
    reasons = [r for r in doc.get("reasons") or [] if isinstance(r, dict)]
    deciding: set[str] = set()
    for td in (doc.get("tracks") or {}).values():
        if isinstance(td, dict):
            deciding.update(str(k) for k in td.get("rules") or [])
    chosen = [r for r in reasons if r.get("rule") in deciding] or reasons
    out: list[str] = []
    for r in chosen:
        text = clinician_text(str(r.get("text", "")))
        if text not in out:
            out.append(text)
    return out


def next_review_of(review: date, near: Path | None = None) -> date:
    """The review after this one: the clinic configuration's review
    interval (a week unless it says otherwise)."""
    return review + timedelta(days=load_config(near).config.review.interval_days)


def report_data(case: str | Path, audit: Path | None = None,
                rules_dir: Path | None = None, weeks: int = PROJECTION_WEEKS, *,
                author: str | None = None, next_review: date | None = None,
                generated: date | None = None) -> rdata.ReportData:
    """The report's content for a case file (deciding it, recording nothing),
    with ``weeks`` of projected course (0: none)."""
    reasoner = prepare(rules_dir)
    decided = decide_path(case, reasoner)
    base = decided.evaluation.compiled.base
    rows = _trail_rows(audit, decided.case.case_id) if audit is not None else None
    trail_state = _state(audit, decided.case.case_id, decided.document)
    programme = decided_programme(trail_state, decided.case, base.ladder)
    if (programme is not None and decided.decision.outcome == "refer"
            and programme.outcome != "refer"):
        programme = None  # the file refers now: no programme stands (as the handout)
    state = recorded_state(audit, decided.case.case_id, trail_state, programme)
    # With a decision in the trail, the report shows it as recorded, on its
    # own case, and as the clinician decided it; only without one does it
    # decide the case as it is now (see report.recorded).
    review = recorded_review(trail_state, reasoner, decided.document)
    refers_now = None
    if (review is not None and decided.decision.outcome == "refer"
            and review.document.outcome != "refer"):
        # The file as it is now refers (a red flag entered since): that is
        # what the report leads with, never an older decision to go on.
        refers_now, review = review, None
    if review is not None:
        doc, why_not, restating = review.document, review.why_not, review.restating
        heading, notes = _heading(review, decided.case), _notes(review)
    else:
        doc, why_not = decided.decision, Explainer(decided.evaluation).why_not()
        restating = frozenset(restating_rules(decided.decision, decided.evaluation.compiled))
        heading, notes = "Decision at this review", []
        if audit is None:
            notes = ["No audit trail was given: this is the rules' proposal for the case file "
                     "as it is, not a decision recorded or accepted (with the trail, the "
                     "report shows what was decided)."]
        if refers_now is not None:
            notes = [f"The case file as it is now refers, so the decision recorded for the "
                     f"review of {refers_now.case.review_date.isoformat()} (which did not) "
                     "no longer stands: this is the rules' referral for the file now, not yet "
                     "recorded (calfrehab next --audit records it)."]
    if author is None and rows:
        # The clinician of the latest recorded decision signs the report.
        author = next((r.get("clinician") for r in reversed(rows)
                       if r["kind"] == "decision" and r.get("clinician")), None)
    shorts = {s.citation: s.short for s in base.sources.values() if s.short}
    refer = decided.decision.outcome == "refer"
    projected = decided
    if programme is not None and programme.source == "override":
        # An override not yet accepted: the course the clinician decided
        # starts from the programme accepting it writes, not the rules' step.
        from calfrehab.engine.pipeline import decide_document

        projected = decide_document({**decided.document, "program": programme.program},
                                    reasoner, str(case))
    projection = (_projection(projected, reasoner, weeks, str(case))
                  if weeks and not refer else None)
    note = (PROJECTION_NOTE + (OVERRIDE_PROJECTION_NOTE if projected is not decided else "")
            if weeks and not refer else
            "No projection: the case is referred." if refer else
            "No projection was asked for (--weeks 0).")
    source_name = "standard input" if str(case) == "-" else Path(case).name
    return rdata.build(decided.case, doc, base.ladder, _bands(decided),
                       shorts, rows, projection, note, why_not=why_not,
                       next_review=next_review or next_review_of(decided.case.review_date,
                                                                 _near(case)),
                       generated=generated or clinic_today(near=_near(case)),
                       author=author or load_config(_near(case)).config.clinic.clinician,
                       source_name=source_name, recorded=state, restating=restating,
                       programme=programme if review is not None else None,
                       decided_by=_decided_by(trail_state), heading=heading, notes=notes,
                       overridden=_overridden(trail_state) if review is not None else None)


def _overridden(state: CaseState | None) -> dict[str, str]:
    """The decision the latest override gives its track, if it names one."""
    o = state.override if state is not None else None
    return {o.track: o.decision} if o is not None and o.track and o.decision else {}


def _heading(review: RecordedReview, case: Case) -> str:
    recorded = review.case.review_date
    if recorded == case.review_date and not (review.sessions_since
                                             or review.assessments_since):
        return "Decision at this review"
    return f"Decision recorded for the review of {recorded.isoformat()}"


def _notes(review: RecordedReview) -> list[str]:
    """What the reader of a recorded decision must know: what was logged
    after it (not yet decided on), and whether the rules changed since."""
    notes = []
    if review.fields_since:
        notes.append(f"Changed in the case file since this decision: "
                     f"{', '.join(review.fields_since)}. Decide it again (calfrehab next "
                     "--audit) before going on.")
    s, a = review.sessions_since, review.assessments_since
    if s or a:
        what = "; ".join(f"{noun} of {', '.join(dict.fromkeys(d))}"
                         for d, noun in ((s, "sessions"), (a, "assessments")) if d)
        notes.append(f"Entered or changed since this decision: {what}. The case has not "
                     "been decided on them yet (calfrehab next --audit records the next "
                     "review).")
    if not review.same_rules:
        r = review.document.rulebase
        notes.append(f"Recorded under the rules {r.name} {r.version} (sha256 {r.sha256[:12]}), "
                     "not the rules in force now: what each track lacked is not listed "
                     "(calfrehab audit replay compares the two).")
    return notes


def _decided_by(state: CaseState | None) -> str:
    """Who decided otherwise than the rules, when and why, in words."""
    if state is None:
        return ""
    parts = []
    o, a = state.override, state.accepted
    if o is not None:
        who = f" by {o.clinician}" if o.clinician else ""
        parts.append(f"overridden{who} on {o.recorded_at[:10]}"
                     + (f" ({o.reason})" if o.reason else ""))
    if a is not None:
        who = f" by {a.clinician}" if a.clinician else ""
        parts.append(f"accepted into the programme{who} on {a.recorded_at[:10]}")
    elif o is not None:
        parts.append("not yet accepted into the programme")
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "." if text else ""


def _inputs(case: str | Path) -> list[str | Path]:
    return [] if str(case) == "-" else [case]


def write_report(case: str | Path, out: Path, *, audit: Path | None = None,
                 rules_dir: Path | None = None, weeks: int = PROJECTION_WEEKS,
                 author: str | None = None, next_review: date | None = None) -> Wrote:
    # Refused before any work: the report must not replace the case or the trail.
    check_outputs([out], inputs=_inputs(case), trail=audit)
    # Imported here (jinja2, the charts): naming Wrote must not load them.
    from calfrehab.engine.report.render import report_html

    data = report_data(case, audit, rules_dir, weeks, author=author, next_review=next_review)
    atomic_write_text(out, report_html(data), mode=OUTPUT_MODE)
    sessions = sum(len(t.rows) for t in data.timelines)
    decisions = "no trail" if data.decisions is None else f"{len(data.decisions)} decision(s)"
    return Wrote(path=str(out), case_id=data.case_id,
                 summary=f"report for case {data.case_id}: {sessions} exercise session(s), "
                         f"{len(data.assessments)} assessment(s), {decisions}")


def recorded_state(audit: Path | None, case_id: str, state: CaseState | None,
                   programme: DecidedProgramme | None = None) -> list[str]:
    """Where the case stands in the trail, in words: its latest recorded
    decision (when, by whom, for which review), the latest override of it
    with its reason, whether it was accepted into the programme, and what
    the clinician decided the patient does (``programme``)."""
    if audit is None:
        return []
    if state is None:
        return [f"The audit trail holds no decision for case {case_id} yet."]
    by = f" by {state.clinician}" if state.clinician else ""
    outcome = state.decision.get("outcome")
    lines = [f"Recorded decision for the review of {state.review_date}: {outcome}, recorded "
             f"{state.recorded_at[:10]}{by}."]
    o = state.override
    if o is not None:
        what = ""
        if o.track:
            what = f" on {track_title(o.track)}"
        if o.decision:
            what += f": {decision_word(o.decision).lower()}"
        who = f" by {o.clinician}" if o.clinician else ""
        lines.append(f"Overridden{who} on {o.recorded_at[:10]}{what}. Reason: "
                     f"{o.reason or 'none given'}.")
    a = state.accepted
    if a is not None:
        who = f" by {a.clinician}" if a.clinician else ""
        lines.append(f"Accepted into the programme{who} on {a.recorded_at[:10]}"
                     + (" (as overridden)." if a.override_entry_id else "."))
    else:
        lines.append("Not yet accepted into the programme (calfrehab accept).")
    if programme is not None:
        lines.append(_programme_line(programme))
    return lines


def _programme_line(programme: DecidedProgramme) -> str:
    """What the patient does now, track by track, as the clinician decided."""
    what = "; ".join(
        f"{track_title(track)}: {rx.name} {dose_text(rx.sets, rx.reps, rx.unit, rx.load_kg)}"
        for track, rx in programme.tracks.items() if rx is not None) or "no exercise"
    said = ("The programme as accepted" if programme.source == "accepted"
            else "The programme as overridden (what accepting would write)")
    return f"{said}: {what}. The handout lists this, not the rules' proposal."


def _state(audit: Path | None, case_id: str, current: Mapping[str, Any]
           ) -> CaseState | None:
    """The recorded decision in force for the case document ``current``:
    the newest one a clinician overrode or accepted, while no session or
    assessment was entered since it; else the newest recorded. A proposal
    recorded later on the same data (the record system's chart opened
    again, `next` run again after `accept`) does not displace what the
    clinician decided: the CDS card and the FHIR export follow the same
    rule (acceptance.case_state, ``acted_on``)."""
    if audit is None:
        return None
    from calfrehab.engine.acceptance import case_state

    return case_state(audit, case_id, acted_on=True, current=current, or_latest=True)


def _patient_note(state: CaseState | None) -> str | None:
    """For the patient: that the physiotherapist changed the proposed plan,
    and why (the override's reason), when the trail says so."""
    if state is None or state.override is None:
        return None
    reason = f": {state.override.reason}" if state.override.reason else ""
    return (f"Your physiotherapist adjusted this plan on {state.override.recorded_at[:10]}"
            f"{reason}.")


def _near(case: str | Path) -> Path | None:
    return None if str(case) == "-" else Path(case)


def write_handout(case: str | Path, out: Path, *, rules_dir: Path | None = None,
                  clinic_name: str | None = None, clinic_phone: str | None = None,
                  next_review: date | None = None, audit: Path | None = None) -> Wrote:
    """The patient's handout; the clinic's name and phone, the next review
    interval and today's date come from the clinic configuration, unless
    given here."""
    from calfrehab.engine.report.render import handout_html

    check_outputs([out], inputs=_inputs(case), trail=audit)
    decided = decide_path(case, prepare(rules_dir))
    ladder = decided.evaluation.compiled.base.ladder
    names = {ex: info.name for ex, info in ladder.exercises.items()}
    config = load_config(_near(case)).config
    clinic = handout_data.Clinic(name=clinic_name or config.clinic.name,
                                 phone=clinic_phone or config.clinic.phone)
    review = decided.case.review_date
    state = _state(audit, decided.case.case_id, decided.document)
    programme = decided_programme(state, decided.case, ladder)
    if (programme is not None and decided.decision.outcome == "refer"
            and programme.outcome != "refer"):
        programme = None  # the file refers now (see handout_data.build)
    if programme is not None and state is not None:
        # The programme is the one decided at that review: the visit it
        # came from, not the last session logged since (which moves the
        # case's review date), and the next review counted from it.
        review = date.fromisoformat(state.review_date)
    data = handout_data.build(
        decided.case, decided.decision, names, _bands(decided),
        seated=frozenset(ladder.load.seated_exercises), printed=clinic_today(config),
        next_review=next_review or review + timedelta(days=config.review.interval_days),
        clinic=clinic, decision_note=_patient_note(state), programme=programme,
        visit=review)
    atomic_write_text(out, handout_html(data), mode=OUTPUT_MODE)
    what = "refer: no exercises" if data.refer else f"{len(data.exercises)} exercise(s)"
    return Wrote(path=str(out), case_id=data.case_id,
                 summary=f"handout for case {data.case_id}: {what}")
