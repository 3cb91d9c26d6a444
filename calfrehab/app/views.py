"""What each page shows, as plain data for its template: the patient list,
a patient, the rules, the audit trail and a replay. Nothing here writes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from markupsafe import Markup

from calfrehab.app.casedir import Snapshot, Summary
from calfrehab.app.state import AppState
from calfrehab.app.trailindex import Latest, flare_in
from calfrehab.engine import api

# The library's one home for these words (issue 22): no copy here.
TRACK_TITLES = api.TRACK_TITLES
DECISION_WORDS = api.DECISION_WORDS
# A replay decides every stored case again: bounded so the page answers.
REPLAY_LIMIT = 500
AUDIT_ROWS = 300


def words(value: str | None) -> str:
    """A contract name as words: ``achilles_midportion`` -> "Achilles midportion"."""
    if not value:
        return ""
    text = value.replace("_", " ")
    return text[:1].upper() + text[1:]


# ------------------------------------------------------------ patient list


def _due(summary: Summary, latest: Latest | None, today: date, interval: int) -> bool:
    if summary.problem is not None:
        return False
    if latest is None:
        return True
    # Something was entered after the last recorded decision (log and assess
    # move the review date to the entry's date), or the clinic's usual
    # interval between reviews has passed since it.
    if summary.review_date and summary.review_date > latest.review_date:
        return True
    return date.fromisoformat(latest.review_date) + timedelta(days=interval) <= today


def patient_rows(state: AppState, q: str, badge: str) -> list[dict[str, Any]]:
    today = state.today()
    needle = q.strip().lower()
    rows = []
    for s in state.cases.summaries():
        if needle and not any(needle in (v or "").lower() for v in
                              (s.name, s.case_id, s.condition, words(s.condition))):
            continue
        # The decision in force, as the patient's page shows it: an override
        # or acceptance is not displaced by a proposal recorded after it.
        last = state.trail.in_force(s.case_id or "", s.entries)
        # A file that does not validate gets no badge from its content: an
        # unknown red flag is not a referral's reason (the problem column
        # names it); only the trail's own record of a referral counts.
        referral = ((bool(s.red_flags) and s.problem is None)
                    or (last is not None and last.outcome == "refer"))
        flare = last is not None and last.flare
        due = _due(s, last, today, state.settings.review_days)
        badges = [b for b, on in (("flare", flare), ("referral", referral),
                                  ("review due", due)) if on]
        if badge and badge not in badges:
            continue
        rows.append({
            "name": s.name, "case_id": s.case_id or s.name,
            "condition": words(s.condition), "side": s.side or "",
            "last_review": last.review_date if last else None,
            "decision": _decision_text(last),
            "overrides": last.overrides if last else 0,
            "badges": badges, "problem": s.problem,
        })
    return rows


def _decision_text(last: Latest | None) -> str:
    if last is None:
        return "No decision recorded"
    if last.outcome == "refer":
        return "Refer"
    parts = [f"{TRACK_TITLES[track].split(' (')[0]}: {DECISION_WORDS.get(d or '', d or '')}"
             for track, d in last.tracks.items() if d and d != "not_started"]
    return "; ".join(parts) or "Not started"


# ------------------------------------------------------------------ patient


def _ladder(state: AppState) -> Any:
    return state.ladder()


def _exercise(state: AppState, exercise: str | None) -> str:
    if not exercise:
        return ""
    info = _ladder(state).exercises.get(exercise)
    return str(info.name) if info is not None else words(exercise)


def exercises_on(state: AppState, track: str) -> list[str]:
    """The exercise ids of a track, in ladder order."""
    rungs = _ladder(state).tracks[track].rungs
    return list(dict.fromkeys(dose.exercise for dose in rungs))


def exercise_choices(state: AppState) -> list[dict[str, Any]]:
    return [{"track": t, "title": TRACK_TITLES[t],
             "exercises": [(e, _exercise(state, e)) for e in exercises_on(state, t)]}
            for t in api.TRACKS]


def _dose(state: AppState, rx: Mapping[str, Any] | None) -> str:
    if not rx:
        return ""
    unit = api.unit_of(_ladder(state), str(rx.get("exercise")))
    return api.dose_text(int(rx.get("sets") or 0), int(rx.get("reps") or 0), unit,
                         float(rx.get("load_kg") or 0))


def recorded_for(state: AppState, case_id: str) -> list[dict[str, Any]]:
    """The recorded decisions of one case, oldest first, each with its
    overrides."""
    trail = state.trail.open()
    if trail is None:
        return []
    out: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}
    with trail:
        for e in trail.entries(case_id=case_id):
            if e.kind == "decision":
                item = {
                    "decision_id": e.decision_id, "recorded_at": e.recorded_at.strftime(
                        "%Y-%m-%d %H:%M UTC"), "clinician": e.clinician,
                    "review_date": e.review_date.isoformat(), "case_sha256": e.case_sha256,
                    "rulebase_sha256": e.rulebase_sha256, "decision": e.decision,
                    "case": e.case, "overrides": [], "accepted": [],
                }
                by_id[e.decision_id] = item
                out.append(item)
            elif e.kind == "override" and e.decision_id in by_id:
                doc = e.decision
                by_id[e.decision_id]["overrides"].append({
                    "recorded_at": e.recorded_at.strftime("%Y-%m-%d %H:%M UTC"),
                    "clinician": e.clinician, "reason": doc.get("reason"),
                    "track": doc.get("track"), "decision": doc.get("decision"),
                    "program": _program_words(state, doc.get("prescriptions") or {}),
                    "prescriptions": doc.get("prescriptions") or {},
                })
            elif e.decision_id in by_id:  # later entry kinds (accepted) keep their place
                program = e.decision.get("program") or {}
                by_id[e.decision_id]["accepted"].append({
                    "recorded_at": e.recorded_at.strftime("%Y-%m-%d %H:%M UTC"),
                    "clinician": e.clinician, "kind": e.kind,
                    "program": _program_words(state, program), "programme": program})
    return out


def _program_words(state: AppState, program: Mapping[str, Any]) -> str:
    """A programme (or an override's prescriptions) in a line."""
    parts = [f"{TRACK_TITLES.get(t, t).split(' (')[0]}: {_exercise(state, rx.get('exercise'))}, "
             f"{_dose(state, rx)}" for t, rx in program.items() if isinstance(rx, Mapping)]
    return "; ".join(parts)


def _override_view(state: AppState, o: Mapping[str, Any] | None,
                   track: str) -> dict[str, Any] | None:
    """The clinician's override of ``track`` (None: it has none): the
    decision, the prescription if one was given, who, when and why."""
    if o is None or o.get("track") != track or not o.get("decision"):
        return None
    rx = (o.get("prescriptions") or {}).get(track)
    return {"words": DECISION_WORDS.get(o["decision"], o["decision"]),
            "next": _exercise(state, (rx or {}).get("exercise")), "next_dose": _dose(state, rx),
            "by": o.get("clinician"), "at": o.get("recorded_at"), "reason": o.get("reason")}


def _tracks_view(state: AppState, decision: Mapping[str, Any],
                 override: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    out = []
    tracks = decision.get("tracks") or {}
    ladder = _ladder(state)
    for track in api.TRACKS:
        info = tracks.get(track) or {}
        nxt = info.get("next")
        own = set(info.get("rules") or [])
        # What held the track back, said under it (as `next` prints it).
        held = [api.clinician_text(b.get("text", ""), ladder)
                for b in decision.get("blockers") or []
                if b.get("track") == track and b.get("rule") not in own]
        out.append({
            "track": track, "title": TRACK_TITLES[track],
            "decision": info.get("decision"),
            "decision_words": DECISION_WORDS.get(info.get("decision") or "", ""),
            "current": _exercise(state, (info.get("current") or {}).get("exercise")),
            "current_dose": _dose(state, info.get("current")),
            "next": _exercise(state, (nxt or {}).get("exercise")),
            "next_dose": _dose(state, nxt),
            "cues": [api.clinician_text(c, ladder) for c in (nxt or {}).get("cues") or []],
            "held": list(dict.fromkeys(held)),
            "override": _override_view(state, override, track),
        })
    return out


def _why(state: AppState, decision: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The reasons as a clinician reads them: a reason one rule gives alike
    for every track in play said once, in plain words, with its sources (the
    library's wording, as ``next`` prints it)."""
    ladder = _ladder(state)
    try:
        doc = api.DecisionDocument.model_validate(dict(decision))
    except ValueError:  # a document of another version: its own words
        return [{"text": r.get("text"), "sources": r.get("sources") or []}
                for r in decision.get("reasons") or []]
    in_play = [t for t, td in doc.tracks.items() if td.current is not None]
    out = []
    for reason in api.merge_reasons(doc.reasons, api.reason_names(doc, ladder), in_play):
        text = api.clinician_text(reason.text, ladder, api.reason_unit(reason, doc, ladder))
        out.append({"text": text[:1].upper() + text[1:], "sources": list(reason.sources)})
    return out


def _explained(state: AppState, decided: api.Decided,
               data: Mapping[str, Any]) -> dict[str, Any]:
    """HOW / WHY-NOT / sources in the physiotherapist's words, as ``explain``
    says them (measures with their values and session dates; rule ids and
    case-file paths kept for the auditor, in small print)."""
    ladder = _ladder(state)
    case = decided.case
    dates = {"sessions": [x.date for x in case.sessions],
             "assessments": [x.date for x in case.assessments]}
    compiled = decided.evaluation.compiled
    flags = {flag: compiled.instances[producers[0]].rule.title
             for flag, producers in compiled.derived.items() if producers}
    how = [{"title": api.clinician_text(f["title"], ladder), "rule": f["rule"],
            "track": f.get("track"),
            "conditions": [api.condition_line(c, dates, flags) for c in f["conditions"]]}
           for f in data["how"]]
    why_not = [{"track": TRACK_TITLES.get(w["track"], w["track"]),
                "decision": DECISION_WORDS.get(w["decision"], w["decision"]),
                "rules": [{"title": api.clinician_text(r["title"], ladder), "rule": r["rule"],
                           "missing": api.missing_criteria(r["failed"]),
                           "overruled_by": [
                               f"all met, but {DECISION_WORDS.get(o['decision'], '').lower()}"
                               f" wins: {api.clinician_text(o['reason'], ladder)}"
                               for o in r.get("overruled_by", [])]}
                          for r in w["rules"]]}
               for w in data["why_not"]]
    return {"how": how, "why_not": why_not, "sources": data["sources"]}


def _condition_text(cond: Mapping[str, Any]) -> str:
    return ", ".join(x for x in (words(cond.get("kind")), str(cond.get("side") or ""),
                                 (f"{cond.get('irritability')} irritability"
                                  if cond.get("irritability") else "")) if x)


def patient_view(state: AppState, snap: Snapshot, *, decide: bool = True) -> dict[str, Any]:
    doc = snap.document or {}
    cond = doc.get("condition") or {}
    pat = doc.get("patient") or {}
    program = doc.get("program") or {}
    view: dict[str, Any] = {
        "title": str(doc.get("case_id") or snap.name),
        "errors": snap.errors,
        "invalid": snap.case is None,
        "file": snap.path.name,
        "patient": pat, "condition": _condition_text(cond), "cond": cond,
        "review_date": doc.get("review_date"),
        "red_flags": [], "programme": [], "sessions": [], "assessments": [],
        "charts": [],
    }
    if snap.case is None:
        # Nothing of a file that does not validate is shown as if it were a
        # case (an unknown red flag by a red flag's name, a programme or a
        # session out of range): only its problems, each naming the field,
        # the value and what is expected.
        return view
    view.update({
        "red_flags": [words(f) for f in doc.get("red_flags") or []],
        "programme": [{"title": TRACK_TITLES[t], "exercise": _exercise(
            state, (program.get(t) or {}).get("exercise")), "dose": _dose(state, program.get(t))}
            for t in api.TRACKS],
        "sessions": _sessions(state, doc),
        "assessments": _assessments(doc),
    })
    if not decide:
        return view
    decided = state.decided(snap)
    assert decided is not None
    # The library's markup: every value escaped there, no script, no style
    # attribute (the page's CSP allows neither).
    view["charts"] = [{"svg": Markup(svg), "title": _chart_title(svg)}
                      for svg in state.charts(snap).values()]
    decision = decided.decision.model_dump(mode="json")
    explanation = api.explanation(decided)
    recorded = recorded_for(state, decided.case.case_id)
    latest = _in_force(recorded, doc)
    accepted_as_is = latest is not None and _accepted_as_is(latest, doc)
    current = latest is not None and (latest["case_sha256"] == decision["case_sha256"]
                                      or accepted_as_is)
    if accepted_as_is and latest is not None:
        # How the decision in force was reached is said of the case it was
        # made on (the trail's copy), not of the file with its new programme.
        decided = api.decide_document(latest["case"], state.reasoner(),
                                      f"case {decided.case.case_id} as recorded")
        explanation = api.explanation(decided)
    shown = latest["decision"] if current and latest else decision
    override = latest["overrides"][-1] if current and latest and latest["overrides"] else None
    view.update({
        "decision": shown,
        "outcome": shown.get("outcome"),
        "tracks": _tracks_view(state, shown, override),
        "why": _why(state, shown),
        "recorded": list(reversed(recorded)),
        "latest": latest if current else None,
        "flare": flare_in(shown),
        **_explained(state, decided, explanation),
        "blockers": shown.get("blockers") or [],
        "exercise_choices": exercise_choices(state),
        "accepted": bool(latest and current and latest["accepted"]),
    })
    return view


def _in_force(recorded: list[dict[str, Any]],
              doc: Mapping[str, Any]) -> dict[str, Any] | None:
    """The recorded decision the page stands on (api.in_force, the rule of
    api.case_state with ``acted_on``, the report's, the CDS card's and the
    FHIR export's): the newest one a clinician overrode or accepted, while
    no session or assessment was entered since it; else the newest recorded.
    Found among ``recorded`` (the case's decisions, oldest first, each with
    its overrides and acceptances), which are read already: the trail is
    not opened again for it."""
    if not recorded:
        return None
    acted = next((item for item in reversed(recorded)
                  if item["overrides"] or item["accepted"]), None)
    return api.in_force(acted, None if acted is None else acted["case"], recorded[-1], doc)


def _accepted_as_is(latest: Mapping[str, Any], doc: Mapping[str, Any]) -> bool:
    """Whether the case file is the one the latest decision was made on but
    for the programme its acceptance wrote: then that decision is still the
    one in force (deciding the file again would judge a dose accepted today
    against sessions done at the old one, a decision nobody made)."""
    case = latest.get("case")
    if not latest["accepted"] or not isinstance(case, Mapping):
        return False
    if doc.get("program") != latest["accepted"][-1]["programme"]:
        return False
    return api.entered_since(case, doc).unchanged


_TITLE = re.compile(r'<title id="[^"]*">([^<]*)</title>')


def _chart_title(svg: str) -> Markup:
    # The chart's own accessible title (already escaped), shown as its caption.
    found = _TITLE.search(svg)
    return Markup(found.group(1)) if found else Markup("")


def _sessions(state: AppState, doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for s in doc.get("sessions") or []:
        out.append({
            "date": s.get("date"),
            "exercises": [{"name": _exercise(state, e.get("exercise")),
                           "sets": "/".join(str(n) for n in e.get("sets_completed") or []),
                           "load": e.get("load_kg") or 0, "pain": e.get("pain_during")}
                          for e in s.get("exercises") or []],
            "morning": s.get("pain_next_morning"),
            "stiffness": s.get("morning_stiffness_min"),
        })
    return out


def _assessments(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for a in doc.get("assessments") or []:
        hr = a.get("heel_raise_test") or {}
        lsi = None
        if hr.get("involved") is not None and hr.get("uninvolved"):
            lsi = round(100 * hr["involved"] / hr["uninvolved"])
        out.append({"date": a.get("date"), "involved": hr.get("involved"),
                    "uninvolved": hr.get("uninvolved"), "lsi": lsi,
                    "rest": a.get("pain_at_rest"), "visa": a.get("visa_a"),
                    "hop": a.get("hop_pain")})
    return out


# ------------------------------------------------------------------- rules


def rules_view(state: AppState, condition: str, track: str) -> dict[str, Any]:
    base, tables = state.rulebase()
    kinds = next(q.choices for q in api.NEW_QUESTIONS if q.key == "kind")
    groups: dict[str, list[dict[str, Any]]] = {}
    for located in base.rules:
        rule = located.rule
        conditions = rule.applies_to.conditions
        tracks = list(rule.applies_to.tracks)
        if condition and conditions != "all" and condition not in conditions:
            continue
        if track and tracks and track not in tracks:
            continue
        cases = tables.get(rule.id, [])
        groups.setdefault(located.file, []).append({
            "id": rule.id, "title": rule.title, "rationale": rule.rationale,
            "sources": [base.sources[s].citation if s in base.sources else s
                        for s in rule.sources],
            "conditions": "all conditions" if conditions == "all"
            else ", ".join(words(c) for c in conditions),
            "tracks": ", ".join(TRACK_TITLES.get(t, t) for t in tracks) or "the whole case",
            "cases": cases,
        })
    return {"groups": sorted(groups.items()), "kinds": kinds, "tracks": api.TRACKS,
            "track_titles": TRACK_TITLES, "condition": condition, "track": track,
            "version": base.manifest.version, "name": base.manifest.name,
            "words": words}


# ------------------------------------------------------------------- audit


def _month(stamp: Any) -> str:
    return str(stamp.strftime("%Y-%m"))


def audit_view(state: AppState, query: Mapping[str, str]) -> dict[str, Any]:
    filters = {k: (query.get(k) or "").strip() for k in
               ("patient", "clinician", "rule", "since", "until", "decision")}
    out: dict[str, Any] = {"filters": filters, "verify": None, "rows": [], "rates": {},
                           "error": None, "decision_kinds": api.DECISION_KINDS, "more": 0}
    trail = state.trail.open()
    if trail is None:
        out["error"] = "nothing has been recorded yet: no audit trail at " + str(
            state.trail.path or "the default place")
        return out
    try:
        out["verify"] = api.verify_audit(state.trail.path)
    except api.CalfrehabError as exc:
        out["verify"] = {"ok": False, "problem": str(exc), "entries_checked": 0}
    since = _date(filters["since"])
    until = _date(filters["until"])
    decisions: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}
    with trail:
        for e in trail.entries(case_id=filters["patient"] or None, since=since):
            if until is not None and e.recorded_at.date() > until:
                continue
            if e.kind == "decision":
                doc = e.decision
                rules = sorted({r.split("@")[0] for t in (doc.get("tracks") or {}).values()
                                for r in (t.get("rules") or [])})
                kinds = {t.get("decision") for t in (doc.get("tracks") or {}).values()}
                row = {"decision_id": e.decision_id, "case_id": e.case_id,
                       "recorded_at": e.recorded_at, "clinician": e.clinician or "",
                       "review_date": e.review_date.isoformat(),
                       "outcome": doc.get("outcome"),
                       "tracks": {t: (doc.get("tracks") or {}).get(t, {}).get("decision")
                                  for t in api.TRACKS},
                       "rules": rules, "kinds": kinds,
                       "condition": ((e.case or {}).get("condition") or {}).get("kind"),
                       "overrides": [], "accepted": []}
                by_id[e.decision_id] = row
                decisions.append(row)
            elif e.decision_id in by_id:
                target = by_id[e.decision_id]
                doc = e.decision
                item = {"recorded_at": e.recorded_at, "clinician": e.clinician or "",
                        "reason": doc.get("reason"), "track": doc.get("track"),
                        "decision": doc.get("decision"), "kind": e.kind,
                        "program": _program_words(state, doc.get("program")
                                                  or doc.get("prescriptions") or {})}
                (target["overrides"] if e.kind == "override" else target["accepted"]
                 ).append(item)
    out["rates"] = _rates(decisions)
    shown = [d for d in decisions if _matches(d, filters)]
    out["more"] = max(0, len(shown) - AUDIT_ROWS)
    out["rows"] = list(reversed(shown))[:AUDIT_ROWS]
    return out


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _matches(row: Mapping[str, Any], f: Mapping[str, str]) -> bool:
    if f["clinician"] and f["clinician"].lower() not in row["clinician"].lower() and not any(
            f["clinician"].lower() in o["clinician"].lower() for o in row["overrides"]):
        return False
    if f["rule"] and not any(f["rule"] in r for r in row["rules"]):
        return False
    return not (f["decision"] and f["decision"] not in row["kinds"]
                and f["decision"] != row["outcome"])


def _rates(decisions: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Override rate (decisions with at least one override / decisions)
    per rule, per clinician and per condition, by month."""
    tables: dict[str, dict[tuple[str, str], list[int]]] = {
        "rule": {}, "clinician": {}, "condition": {}}
    for d in decisions:
        month = _month(d["recorded_at"])
        overridden = 1 if d["overrides"] else 0
        keys = {"rule": d["rules"] or ["(none)"], "clinician": [d["clinician"] or "(none)"],
                "condition": [words(d["condition"]) or "(unknown)"]}
        for dim, values in keys.items():
            for v in values:
                cell = tables[dim].setdefault((v, month), [0, 0])
                cell[0] += 1
                cell[1] += overridden
    return {dim: [{"key": k, "month": m, "decisions": n, "overridden": o,
                   "rate": round(100 * o / n)} for (k, m), (n, o) in sorted(cells.items())]
            for dim, cells in tables.items()}


def replay_view(state: AppState) -> dict[str, Any]:
    latest = state.trail.latest()
    trail = state.trail.open()
    out: dict[str, Any] = {"changed": [], "checked": 0, "limited": False, "error": None,
                           "words": words}
    if trail is None:
        out["error"] = "nothing has been recorded yet"
        return out
    items = sorted(latest.values(), key=lambda item: item.decision_id)
    if len(items) > REPLAY_LIMIT:
        out["limited"] = True
        items = items[:REPLAY_LIMIT]
    with trail:
        for item in items:
            try:
                result = api.replay_decision(trail, item.decision_id, state.settings.rules)
            except api.CalfrehabError as exc:
                out["changed"].append({"case_id": "?", "decision_id": item.decision_id,
                                       "error": str(exc), "tracks": []})
                continue
            out["checked"] += 1
            if not result["same"]:
                out["changed"].append({
                    "case_id": result["case_id"], "decision_id": item.decision_id,
                    "review_date": result["review_date"], "error": None,
                    "outcome": result["outcome"],
                    "tracks": [t for t in result["tracks"] if not t["same"]],
                })
    return out


