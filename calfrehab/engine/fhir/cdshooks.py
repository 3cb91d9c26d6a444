"""CDS Hooks 2.0 for calfrehab: the service's discovery entry, the hook
request and feedback as pydantic models, the prefetch turned into one
Bundle, and a decision turned into cards.

Pure functions: no HTTP, no engine. The HTTP service (calfrehab/server)
calls them through :mod:`calfrehab.engine.api`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from calfrehab.engine.fhir import CDS_SERVICE_ID, codes
from calfrehab.engine.fhir.chartcodes import chart_codes
from calfrehab.engine.vocabulary import TRACKS

if TYPE_CHECKING:
    from calfrehab.engine.casefile.model import Case


HOOK: Final = "patient-view"

def _observation_codes() -> str:
    """The Observation codes the mapping reads, as one token search
    parameter (FHIR R4 search.html "token": ``system|code``, ``system|`` for
    any code of a system): pain and weight in LOINC, calfrehab's own
    exercise and measurement codes. A chart's vitals and labs stay on the
    record's server (1,300 of them once filled the body limit)."""
    table = chart_codes()
    obs = table.observations
    wanted = [f"{table.uri(c.system)}|{c.code}" for c in (obs.pain_nrs, obs.body_weight)]
    return ",".join([*wanted, f"{codes.CS_EXERCISE}|", f"{codes.CS_OBSERVATION}|"])


def _procedure_codes() -> str:
    table = chart_codes()
    wanted = [f"{table.uri(c.system)}|{c.code}" for c in table.achilles_repair]
    return ",".join([f"{codes.CS_PROCEDURE}|", *wanted])


# Each key a FHIR read or search a CDS client runs before calling us
# (spec: "Prefetch Template"). Only `encounter` may be absent: without it the
# review date is the day of the call. Searches that can be long ask for the
# newest first (_sort=-date) and a page size (_count); a client that pages
# sends a `next` link, which calfrehab follows (never reading a page as all).
PAGE: Final = 100
PREFETCH: Final[dict[str, str]] = {
    "patient": "Patient/{{context.patientId}}",
    "encounter": "Encounter/{{context.encounterId}}",
    "conditions": "Condition?patient={{context.patientId}}&clinical-status=active",
    "procedures": (f"Procedure?patient={{{{context.patientId}}}}&code={_procedure_codes()}"
                   f"&_count={PAGE}"),
    "observations": (f"Observation?patient={{{{context.patientId}}}}&code={_observation_codes()}"
                     f"&_sort=-date&_count={PAGE}"),
    "carePlans": "CarePlan?patient={{context.patientId}}&status=active",
    "flags": "Flag?patient={{context.patientId}}&status=active",
    "goals": "Goal?patient={{context.patientId}}&lifecycle-status=active",
    # Every medication: a fluoroquinolone may be coded in RxNorm, ATC or
    # only named; the mapping reads them all and skips the rest.
    "medicationStatements": f"MedicationStatement?patient={{{{context.patientId}}}}&_count={PAGE}",
    "medicationRequests": f"MedicationRequest?patient={{{{context.patientId}}}}&_count={PAGE}",
}
REQUIRED_PREFETCH: Final = tuple(k for k in PREFETCH if k != "encounter")

# A card's summary must stay under 140 characters (spec: Card Attributes).
SUMMARY_LIMIT: Final = 139

INDICATOR: Final[dict[str, str]] = {
    "progress": "info",
    "start": "info",
    "hold": "warning",
    "regress": "warning",
    "refer": "critical",
}
VERB: Final[dict[str, str]] = {
    "progress": "progress to",
    "start": "start",
    "hold": "hold at",
    "regress": "regress to",
}


def cds_discovery() -> dict[str, Any]:
    """The body of ``GET /cds-services``."""
    return {"services": [{
        "hook": HOOK,
        "id": CDS_SERVICE_ID,
        "title": "calfrehab: next step of calf rehabilitation",
        "description": (
            "Proposes, per exercise track, whether to progress, hold or regress the patient's "
            "calf-strengthening exercise, or to refer; every proposal with its rules and "
            "sources. Decision support: the treating clinician decides."
        ),
        "prefetch": dict(PREFETCH),
    }]}


class _Open(BaseModel):
    # The spec reserves `extension` and lets hooks grow: unknown keys are
    # read past, not refused.
    model_config = ConfigDict(extra="allow", defer_build=True)


class PatientViewContext(_Open):
    userId: str = Field(min_length=1)
    patientId: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9.\-]+$")
    encounterId: str | None = None


class HookRequest(_Open):
    hook: Literal["patient-view"]
    hookInstance: str = Field(min_length=1)
    fhirServer: str | None = None
    fhirAuthorization: dict[str, Any] | None = None
    context: PatientViewContext
    prefetch: dict[str, Any] | None = None


class Coding(_Open):
    system: str | None = None
    code: str | None = None
    display: str | None = None


class OverrideReason(_Open):
    reason: Coding | None = None
    userComment: str | None = Field(default=None, max_length=2000)


class AcceptedSuggestion(_Open):
    id: str = Field(min_length=1)


class Feedback(_Open):
    card: str = Field(min_length=1)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: str = Field(min_length=1)


class FeedbackRequest(_Open):
    feedback: list[Feedback] = Field(min_length=1, max_length=100)


def cds_missing_prefetch(request: HookRequest) -> list[str]:
    """The prefetch keys the service needs and the request lacks. A key
    the client sent as null is present: null means "no data" (spec)."""
    given = request.prefetch or {}
    return [k for k in REQUIRED_PREFETCH if k not in given] + (
        ["patient"] if given.get("patient") is None and "patient" in given else [])


def cds_prefetch_bundle(request: HookRequest) -> dict[str, Any]:
    """Every prefetched resource in one collection Bundle: searchset
    Bundles are opened, single reads taken as they are, nulls skipped."""
    entries: list[dict[str, Any]] = []
    for key in PREFETCH:
        value = (request.prefetch or {}).get(key)
        if not isinstance(value, Mapping):
            continue
        if value.get("resourceType") == "Bundle":
            for entry in value.get("entry") or []:
                if isinstance(entry, Mapping) and isinstance(entry.get("resource"), Mapping):
                    kept = {"resource": entry["resource"]}
                    if isinstance(entry.get("fullUrl"), str):
                        kept["fullUrl"] = entry["fullUrl"]
                    entries.append(kept)
        elif value.get("resourceType") == "OperationOutcome":
            continue  # a client's failed prefetch (spec 2.0); the key still counts as sent
        else:
            entries.append({"resource": dict(value)})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


@dataclass(frozen=True)
class IssuedCard:
    """What the service remembers of a card it returned, so that feedback
    on it can be recorded against the decision."""

    card: str
    decision_id: str
    case_id: str
    track: str | None
    decision: str
    suggestions: tuple[str, ...]
    clinician: str


def clip(text: str, limit: int = SUMMARY_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def override_reasons() -> list[dict[str, str]]:
    return [{"system": codes.CS_OVERRIDE_REASON, "code": code, "display": display}
            for code, display in codes.OVERRIDE_REASONS]


def _source(decision: Mapping[str, Any], url: str) -> dict[str, Any]:
    rb = decision["rulebase"]
    return {
        "label": f"calfrehab rule base {rb['name']} {rb['version']}",
        "url": url,
        "topic": {"system": codes.CS_TRACK, "code": "calf-rehabilitation",
                  "display": "Calf rehabilitation"},
    }


def _reasons_md(reasons: list[Mapping[str, Any]]) -> str:
    return "\n".join(f"- {r['text']}" for r in reasons)


def _sources_md(reasons: list[Mapping[str, Any]]) -> str:
    """The literature the reasons rest on, once each, shortly cited (the
    rule base's source link gives the full references)."""
    from calfrehab.engine.explanation.wording import short_citation

    seen: list[str] = []
    for r in reasons:
        for s in r.get("sources") or []:
            cited = short_citation(str(s))
            if cited not in seen:
                seen.append(cited)
    return f"Sources: {'; '.join(seen)}." if seen else ""


PROPOSAL: Final = ("calfrehab's rules propose this from the chart as it is now: a proposal, "
                   "not a decision a clinician recorded or accepted.")


def cds_cards(decision: Mapping[str, Any], *, source_url: str, clinician: str,
          patient_id: str | None = None, acted_on: Mapping[str, Any] | None = None
          ) -> tuple[list[dict[str, Any]], list[IssuedCard]]:
    """The cards for one decision document, and what to remember of them.

    A referral is one critical card. Otherwise each track that has a next
    exercise gets a card: info to progress or start, warning to hold or
    regress; its suggestion carries the proposed exercise as a FHIR
    ServiceRequest. Tracks not started get no card.

    The service decides on the chart (and calfrehab's own record of the
    patient) as they are at the call, never on the trail: every card says
    it is the rules' proposal. ``acted_on`` is the trail's newest decision
    for the patient a clinician overrode or accepted (a ``CaseState`` as
    JSON): each card names it, and an override makes no suggestion
    recommended, so a card never reads as the decision nor contradicts it
    unsaid.
    """
    # Imported here: the request and feedback models above are the API's
    # types, and naming them must not load fhir.resources.
    from calfrehab.engine.explanation.wording import TRACK_TITLES
    from calfrehab.engine.fhir.decision import dose_text, next_exercise_request

    issued: list[IssuedCard] = []
    out: list[dict[str, Any]] = []
    source = _source(decision, source_url)
    did = str(decision["decision_id"])
    case_id = str(decision["case_id"])
    disclaimer = str(decision.get("disclaimer", ""))
    refer = decision["outcome"] == "refer"
    from calfrehab.engine.fhir.recorded import acted_on_text

    recorded = acted_on_text(acted_on, refer) if acted_on else ""
    if refer:
        card_id = str(uuid.uuid4())
        first = decision["reasons"][0]["text"]
        out.append({
            "uuid": card_id,
            "summary": clip(f"Refer before any progression: {first}"),
            "indicator": "critical",
            "detail": "\n\n".join(part for part in (
                recorded, _reasons_md(decision["reasons"]), _sources_md(decision["reasons"]),
                PROPOSAL, disclaimer) if part),
            "source": source,
            "overrideReasons": override_reasons(),
        })
        issued.append(IssuedCard(card_id, did, case_id, None, "refer", (), clinician))
        return out, issued
    general = [r for r in decision["reasons"] if r.get("track") is None]
    for track in TRACKS:
        info = decision["tracks"][track]
        verdict = info["decision"]
        rx = info.get("next")
        if verdict not in VERB or rx is None:
            continue
        card_id = str(uuid.uuid4())
        suggestion_id = str(uuid.uuid4())
        name = rx.get("name", rx["exercise"])
        title = TRACK_TITLES[track].split(" (")[0]
        summary = clip(f"{title}: {VERB[verdict]} {name}, {dose_text(rx)}")
        own = [r for r in decision["reasons"] if r.get("track") == track]
        detail = "\n\n".join(part for part in (
            recorded,
            _reasons_md(own + general),
            "; ".join(str(rx[k]) for k in ("tempo", "frequency", "surface") if rx.get(k)),
            _sources_md(own + general),
            PROPOSAL,
            disclaimer,
        ) if part)
        # The proposal is for the chart's patient (context.patientId); the
        # case id is calfrehab's own name of the record, which may differ.
        request = next_exercise_request(case_id, decision, track, rx,
                                        subject=f"Patient/{patient_id or case_id}")
        out.append({
            "uuid": card_id,
            "summary": summary,
            "indicator": INDICATOR[verdict],
            "detail": detail,
            "source": source,
            "suggestions": [{
                "label": clip(f"Prescribe {name}, {dose_text(rx)}"),
                "uuid": suggestion_id,
                # Not over a clinician's recorded override of this patient.
                "isRecommended": not (acted_on and acted_on.get("override")),
                "actions": [{
                    "type": "create",
                    "description": clip(f"Propose {name} ({dose_text(rx)}) for the "
                                        f"{title.lower()}", 500),
                    "resource": request.model_dump(mode="json", by_alias=True,
                                                   exclude_none=True),
                }],
            }],
            "selectionBehavior": "at-most-one",
            "overrideReasons": override_reasons(),
        })
        issued.append(IssuedCard(card_id, did, case_id, track, verdict, (suggestion_id,),
                                 clinician))
    return out, issued


def cds_feedback_reason(item: Feedback, card: IssuedCard) -> tuple[str, str | None, str | None]:
    """The audit-trail override a feedback item becomes: (reason, track,
    decision). Accepting a track's suggestion confirms that track's
    decision; overriding records disagreement with the card, with the
    clinician's reason."""
    where = f"CDS Hooks card {item.card}"
    if item.outcome == "accepted":
        return (f"accepted via {where} at {item.outcomeTimestamp}", card.track,
                card.decision if card.track is not None else None)
    reason = item.overrideReason
    coded = reason.reason if reason else None
    said = (coded.display or coded.code) if coded else None
    comment = reason.userComment if reason else None
    text = "; ".join(p for p in (said, comment) if p) or "no reason given"
    track = f" ({card.track} track)" if card.track else ""
    return f"overridden{track} via {where} at {item.outcomeTimestamp}: {text}", None, None


def cds_example_request(case: Case, patient_id: str,
                        user_id: str = "Practitioner/example") -> dict[str, Any]:
    """A patient-view request whose prefetch holds a case's resources the
    way a FHIR server's reads and searches return them (relative
    references, server fullUrls, one searchset per prefetch key). For the
    documentation's worked exchange and the tests."""
    # The FHIR models (fhir.resources) load only when an example is made.
    from calfrehab.engine.fhir.files import case_to_fhir

    bundle = case_to_fhir(case)
    entries = [dict(e) for e in bundle.get("entry", [])]
    rename: dict[str, str] = {}
    for e in entries:
        r = e["resource"]
        new_id = patient_id if r["resourceType"] == "Patient" else r["id"]
        rename[e["fullUrl"]] = f"{r['resourceType']}/{new_id}"
    text = json.dumps(entries)
    for full, relative in rename.items():
        text = text.replace(f'"{full}"', f'"{relative}"')
    by_type: dict[str, list[dict[str, Any]]] = {}
    for e in json.loads(text):
        r = e["resource"]
        if r["resourceType"] == "Patient":
            r["id"] = patient_id
        by_type.setdefault(r["resourceType"], []).append(
            {"fullUrl": f"https://fhir.example.org/{r['resourceType']}/{r['id']}",
             "resource": r})

    def searchset(rtype: str) -> dict[str, Any]:
        found = by_type.get(rtype, [])
        return {"resourceType": "Bundle", "type": "searchset", "total": len(found),
                "entry": found}

    return {
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": "https://fhir.example.org",
        "hook": HOOK,
        "context": {"userId": user_id, "patientId": patient_id},
        "prefetch": {
            "patient": by_type["Patient"][0]["resource"],
            "conditions": searchset("Condition"),
            "procedures": searchset("Procedure"),
            "observations": searchset("Observation"),
            "carePlans": searchset("CarePlan"),
            "flags": searchset("Flag"),
            "goals": searchset("Goal"),
            "medicationStatements": searchset("MedicationStatement"),
            "medicationRequests": searchset("MedicationRequest"),
        },
    }
