"""A decision document as FHIR: GuidanceResponse, RequestGroup (with one
ServiceRequest per proposed next exercise), DetectedIssue for a referral,
and Provenance naming the rule base's version and sha256.

Every resource carries the meta.tag :data:`codes.CS_OUTPUT_TAG` so that a
Bundle holding both the case and its decision imports as the case.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fhir.resources.R4B.annotation import Annotation
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.detectedissue import DetectedIssue
from fhir.resources.R4B.guidanceresponse import GuidanceResponse
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.provenance import Provenance, ProvenanceAgent, ProvenanceEntity
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.requestgroup import RequestGroup, RequestGroupAction
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.servicerequest import ServiceRequest

from calfrehab.engine.casefile.model import Case
from calfrehab.engine.explanation.wording import TRACK_TITLES
from calfrehab.engine.explanation.wording import dose_text as wording_dose_text
from calfrehab.engine.fhir import build as b
from calfrehab.engine.fhir import codes
from calfrehab.engine.fhir.from_case import case_to_bundle
from calfrehab.engine.fhir.recorded import acted_on_text
from calfrehab.engine.vocabulary import TRACKS


def _tag() -> Meta:
    return Meta(tag=[b.coding(codes.CS_OUTPUT_TAG, "decision", "calfrehab decision output")])


def dose_text(rx: Mapping[str, Any]) -> str:
    """``3 × 15, +10 kg`` (reps, seconds, contacts or minutes as the rung
    counts), worded as everywhere else (explanation.wording)."""
    return wording_dose_text(rx.get("sets"), rx.get("reps"),  # type: ignore[arg-type]
                             str(rx.get("unit", "reps")), rx.get("load_kg"))


def next_exercise_request(case_id: str, decision: Mapping[str, Any], track: str,
                          rx: Mapping[str, Any], subject: str | None = None
                          ) -> ServiceRequest:
    """The proposed next exercise of one track, as a draft proposal the
    clinician may accept (a CDS Hooks suggestion carries this resource).
    ``subject`` is the patient reference (default: the exported case's
    Patient; a CDS Hooks card names the record's ``Patient/<id>``)."""
    lines = [f"{rx.get('name', rx['exercise'])}: {dose_text(rx)}"]
    for key in ("tempo", "frequency", "range", "surface"):
        if rx.get(key):
            lines.append(f"{key}: {rx[key]}")
    lines += [str(cue) for cue in rx.get("cues") or []]
    return ServiceRequest(
        id=b.resource_id(case_id, f"decision/{decision['decision_id']}/next/{track}"),
        meta=_tag(),
        extension=[b.dose_extension(int(rx["sets"]), int(rx["reps"]), float(rx["load_kg"]),
                                    str(rx.get("unit", "reps")))],
        status="draft",
        intent="proposal",
        category=[b.concept(b.coding(codes.CS_TRACK, track, TRACK_TITLES[track]))],
        code=b.concept(b.coding(codes.CS_EXERCISE, str(rx["exercise"]), rx.get("name")),
                       text=rx.get("name")),
        subject=(Reference(reference=subject) if subject is not None
                 else b.ref(b.resource_id(case_id, "patient"))),
        patientInstruction="\n".join(lines),
    )


def decision_resources(decision: Mapping[str, Any], recorded: datetime,
                       acted_on: Mapping[str, Any] | None = None) -> list[Resource]:
    """GuidanceResponse, RequestGroup, ServiceRequests, DetectedIssue (for
    a referral) and Provenance for one decision document. ``acted_on``: the
    trail's newest decision of the case a clinician overrode or accepted
    (a ``CaseState`` as JSON), named in the GuidanceResponse's notes so the
    proposals are never read as that decision (clinical-basis §8)."""
    case_id = str(decision["case_id"])
    did = str(decision["decision_id"])
    rid = b.resource_id
    patient = b.ref(rid(case_id, "patient"))
    rulebase = decision["rulebase"]
    out: list[Resource] = []

    actions: list[RequestGroupAction] = []
    for track in TRACKS:
        info = decision["tracks"][track]
        verdict = info["decision"]
        action: dict[str, Any] = {
            "title": TRACK_TITLES[track],
            "code": [b.concept(b.coding(codes.CS_TRACK, track)),
                     b.concept(b.coding(codes.CS_TRACK_DECISION, verdict))],
            "description": verdict.replace("_", " "),
        }
        if info.get("next"):
            request = next_exercise_request(case_id, decision, track, info["next"])
            out.append(request)
            action["resource"] = b.ref(request.id or "")
        actions.append(RequestGroupAction(**action))
    group = RequestGroup(
        id=rid(case_id, f"decision/{did}/request-group"),
        meta=_tag(),
        status="draft",
        intent="proposal",
        subject=patient,
        authoredOn=recorded,
        action=actions,
    )
    out.insert(0, group)

    reasons = [b.concept(b.coding(codes.CS_RULE, r["rule"]), text=r["text"])
               for r in decision["reasons"]]
    guidance = GuidanceResponse(
        id=rid(case_id, f"decision/{did}/guidance"),
        meta=_tag(),
        requestIdentifier=b.identifier(codes.CS_DECISION_ID, did),
        identifier=[b.identifier(codes.CS_DECISION_ID, did)],
        moduleUri=f"{codes.BASE}/rulebase/{rulebase['name']}/{rulebase['version']}",
        status="success",
        subject=patient,
        occurrenceDateTime=recorded,
        reasonCode=reasons,
        note=[Annotation(text=t) for t in (
            acted_on_text(acted_on, decision["outcome"] == "refer", this="This guidance",
                          data="The case file") if acted_on else "",
            str(decision.get("disclaimer", ""))) if t] or None,
        result=b.ref(group.id or ""),
    )
    out.insert(0, guidance)

    if decision["outcome"] == "refer":
        issue = DetectedIssue(
            id=rid(case_id, f"decision/{did}/referral"),
            meta=_tag(),
            status="final",
            code=b.concept(b.coding(codes.CS_ISSUE, codes.ISSUE_REFERRAL,
                                    "Refer before any progression")),
            severity="high",
            patient=patient,
            identifiedDateTime=decision["review_date"],
            detail="\n".join(r["text"] for r in decision["reasons"]),
        )
        out.append(issue)

    targets = [Reference(reference=b.full_url(r.id or "")) for r in out]
    out.append(Provenance(
        id=rid(case_id, f"decision/{did}/provenance"),
        meta=_tag(),
        target=targets,
        recorded=recorded,
        policy=[f"{codes.BASE}/rulebase/{rulebase['name']}/{rulebase['version']}"],
        agent=[ProvenanceAgent(
            type=b.concept(b.coding(codes.PROVENANCE_AGENT, "assembler", "Assembler")),
            who=Reference(display=f"calfrehab {decision.get('engine_version', '')}".strip()),
        )],
        entity=[ProvenanceEntity(
            role="source",
            what=Reference(
                identifier=b.identifier(codes.CS_RULEBASE_SHA256, str(rulebase["sha256"])),
                display=f"rule base {rulebase['name']} version {rulebase['version']}, "
                        f"sha256 {rulebase['sha256']}",
            ),
        )],
    ))
    return out


def decision_bundle(case: Case | None, decision: Mapping[str, Any],
                    recorded: datetime, acted_on: Mapping[str, Any] | None = None) -> Bundle:
    """A collection Bundle: the case's resources (unless ``case`` is None)
    and then the decision's."""
    entries = list(case_to_bundle(case).entry or []) if case is not None else []
    entries += [BundleEntry(fullUrl=b.full_url(r.id or ""), resource=r)
                for r in decision_resources(decision, recorded, acted_on)]
    return Bundle(
        type="collection",
        identifier=b.identifier(codes.CS_DECISION_ID, str(decision["decision_id"])),
        timestamp=recorded,
        entry=entries,
    )
