"""The FHIR mapping: a case to a Bundle and back is the same case; what a
Bundle holds that cannot be mapped is an error naming resource and element;
a decision exports as GuidanceResponse, RequestGroup, DetectedIssue and
Provenance."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from helpers import EXAMPLES, shared_examples
from hypothesis import given
from hypothesis import strategies as st
from strategies import case_documents

from calfrehab.engine import api
from calfrehab.engine.casefile.validation import validate_document
from calfrehab.engine.fhir import codes
from calfrehab.engine.fhir.from_case import age_on, birth_date_for
from calfrehab.engine.fhir.to_case import FhirMappingError
from calfrehab.engine.inference.driver import Reasoner

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.json")) + sorted(
    p for p in shared_examples().glob("*.json") if "invalid" not in p.name)
MIDPORTION = EXAMPLES / "reactive-midportion-isometric-holds.json"
REFERRAL = EXAMPLES / "red-flag-recent-fluoroquinolone.json"
RUPTURE = EXAMPLES / "rupture-nonop-week-10-single-leg.json"


def to_fhir(doc: dict[str, Any]) -> dict[str, Any]:
    # Through JSON text, as a record system would receive it.
    bundle: dict[str, Any] = json.loads(
        json.dumps(api.case_to_fhir(validate_document(doc, "case"))))
    return bundle


def resources(bundle: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def has_coding(concept: dict[str, Any], system: str, code: str) -> bool:
    return any(c.get("system") == system and c.get("code") == code
               for c in concept.get("coding", []))


@given(case_documents())
def test_a_case_to_fhir_and_back_is_the_same_case(doc: dict[str, Any]) -> None:
    case = validate_document(doc, "case")
    bundle = to_fhir(doc)
    back, _document = api.case_from_fhir(bundle)
    assert back == case


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_every_shared_example_round_trips_and_validates_as_fhir(path: Any) -> None:
    doc = json.loads(path.read_text())
    bundle = to_fhir(doc)
    Bundle.model_validate(bundle)  # the library accepts the whole Bundle
    back, _ = api.case_from_fhir(bundle)
    assert back == validate_document(doc, "case")


def test_the_mapping_uses_the_standard_codes() -> None:
    doc = json.loads(MIDPORTION.read_text())
    case = validate_document(doc, "case")
    bundle = to_fhir(doc)
    observations = resources(bundle, "Observation")
    weight = [o for o in observations if has_coding(o["code"], codes.LOINC, "29463-7")]
    assert len(weight) == 1 and weight[0]["valueQuantity"]["value"] == case.patient.body_mass_kg
    assert weight[0]["valueQuantity"]["code"] == "kg"
    pains = [o for o in observations if has_coding(o["code"], codes.LOINC, "72514-3")]
    contexts = sorted(o["extension"][0]["valueCode"] for o in pains)
    expected = (["during-loading"] * sum(len(s.exercises) for s in case.sessions)
                + ["next-morning"] * sum(s.pain_next_morning is not None for s in case.sessions)
                + ["at-rest"] * sum(a.pain_at_rest is not None for a in case.assessments))
    assert contexts == sorted(expected)
    (condition,) = resources(bundle, "Condition")
    assert has_coding(condition["code"], codes.SNOMED, "11654001")
    assert has_coding(condition["code"], codes.CS_CONDITION_KIND, "achilles_midportion")
    side = {"left": "7771000", "right": "24028007", "both": "51440002"}[case.condition.side]
    assert has_coding(condition["bodySite"][0], codes.SNOMED, side)
    assert condition["onsetDateTime"] == str(case.condition.onset_date)
    (patient,) = resources(bundle, "Patient")
    assert patient["gender"] == case.patient.sex
    assert age_on(date.fromisoformat(patient["birthDate"]), case.review_date) \
        == case.patient.age_years


@given(st.integers(12, 100), st.dates(date(2000, 1, 1), date(2040, 12, 31)))
def test_the_birth_date_gives_the_age_on_the_review_date(age: int, review: date) -> None:
    birth = birth_date_for(age, review)
    assert age_on(birth, review) == age
    assert age_on(birth, review.replace(year=review.year + 1)
                  if not (review.month == 2 and review.day == 29)
                  else date(review.year + 1, 3, 1)) == age + 1


def test_age_counts_from_the_review_date_not_today() -> None:
    doc = json.loads(RUPTURE.read_text())
    review = date.fromisoformat(doc["review_date"])
    bundle = to_fhir(doc)
    (patient,) = resources(bundle, "Patient")
    # born 41 years before the day after the review: still 40 on the review
    after = review + timedelta(days=1)
    patient["birthDate"] = after.replace(year=after.year - 41).isoformat()
    case, _ = api.case_from_fhir(bundle)
    assert case.patient.age_years == 40


# ---------------------------------------------------------------- errors


def flare_bundle() -> dict[str, Any]:
    return to_fhir(json.loads(MIDPORTION.read_text()))


def problems(bundle: Any, **kwargs: Any) -> list[str]:
    with pytest.raises(FhirMappingError) as info:
        api.case_from_fhir(bundle, "b.json", **kwargs)
    return [p.render() for p in info.value.problems]


def first_pain(bundle: dict[str, Any], context: str) -> dict[str, Any]:
    return next(o for o in resources(bundle, "Observation")
                if o.get("extension", [{}])[0].get("valueCode") == context)


def test_an_element_with_no_place_in_a_case_is_an_error_naming_it() -> None:
    bundle = flare_bundle()
    pain = first_pain(bundle, "during-loading")
    pain["note"] = [{"text": "patient says the calf is swollen"}]
    (problem,) = problems(bundle)
    assert problem.startswith(f"Observation/{pain['id']} Observation.note:")


def test_an_out_of_range_score_is_said_of_its_resource_and_element() -> None:
    bundle = flare_bundle()
    pain = first_pain(bundle, "next-morning")
    pain["valueInteger"] = 11
    (problem,) = problems(bundle)
    assert problem.startswith(f"Observation/{pain['id']} Observation.value[x]:")
    assert "sessions[0].pain_next_morning" in problem and "11" in problem


def test_a_resource_outside_the_mapping_is_refused_unless_asked_to_skip_it() -> None:
    bundle = flare_bundle()
    case, _ = api.case_from_fhir(copy.deepcopy(bundle))
    bundle["entry"].append({"resource": {
        "resourceType": "Observation", "id": "bp", "status": "final",
        "code": {"coding": [{"system": codes.LOINC, "code": "85354-9"}]}}})
    (problem,) = problems(bundle)
    assert problem.startswith("Observation/bp Observation:")
    skipped, _ = api.case_from_fhir(bundle, ignore_unrelated=True)
    assert skipped == case


def test_a_pain_score_that_does_not_say_when_counts_as_pain_at_rest() -> None:
    # A chart's LOINC 72514-3 score has no context: "not stated" is read as
    # pain at rest (the reading the red-flag rule for rest pain sees).
    bundle = flare_bundle()
    pain = first_pain(bundle, "at-rest")
    del pain["extension"]
    case, _ = api.case_from_fhir(bundle)
    assert any(a.pain_at_rest == pain["valueInteger"] for a in case.assessments)
    pain["extension"] = [{"url": codes.EXT_PAIN_CONTEXT, "valueCode": "while-dancing"}]
    found = problems(bundle)
    assert any(p.startswith(f"Observation/{pain['id']} Observation.extension:")
               for p in found)


def test_invalid_fhir_is_reported_by_element() -> None:
    bundle = flare_bundle()
    (patient,) = resources(bundle, "Patient")
    patient["gender"] = 3
    bundle["entry"].append({"resource": {"resourceType": "Nonsense"}})
    found = problems(bundle)
    assert any(p.startswith(f"Patient/{patient['id']} Patient.gender:") for p in found)
    assert any("'Nonsense' is not a FHIR R4 resource type" in p for p in found)


def test_a_modifier_extension_is_never_ignored() -> None:
    bundle = flare_bundle()
    (condition,) = resources(bundle, "Condition")
    condition["modifierExtension"] = [{"url": "http://x.example/refuted", "valueBoolean": True}]
    found = problems(bundle)
    assert any("Condition.modifierExtension" in p for p in found)


def test_not_a_bundle_is_said_so() -> None:
    assert problems({"resourceType": "Patient"}) == [
        "(document) resourceType: expected a FHIR Bundle, got 'Patient'"]
    assert problems([1, 2])[0].startswith("(document) resourceType:")


def test_entered_in_error_results_are_left_out() -> None:
    bundle = flare_bundle()
    pain = first_pain(bundle, "at-rest")
    pain["status"] = "entered-in-error"
    case, _ = api.case_from_fhir(bundle)
    assert all(a.pain_at_rest is None for a in case.assessments)


def test_measurements_stored_without_a_panel_make_an_assessment_a_day() -> None:
    bundle = flare_bundle()
    original, _ = api.case_from_fhir(copy.deepcopy(bundle))
    panel = next(o for o in resources(bundle, "Observation")
                 if has_coding(o["code"], codes.CS_OBSERVATION, "assessment"))
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"] is not panel]
    case, _ = api.case_from_fhir(bundle)
    (assessment,) = case.assessments
    assert assessment == original.assessments[0]
    assert assessment.visa_a is not None and assessment.heel_raise_test is not None


def test_weight_in_pounds_is_read_in_kg() -> None:
    bundle = flare_bundle()
    weight = next(o for o in resources(bundle, "Observation")
                  if has_coding(o["code"], codes.LOINC, "29463-7"))
    weight["valueQuantity"] = {"value": 180, "unit": "lb", "system": codes.UCUM,
                               "code": "[lb_av]"}
    case, _ = api.case_from_fhir(bundle)
    assert case.patient.body_mass_kg == pytest.approx(81.6)


# -------------------------------------------------------------- decisions


def export(path: Any, reasoner: Reasoner) -> tuple[api.Decided, dict[str, Any]]:
    decided = api.decide_path(path, reasoner)
    when = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    return decided, json.loads(json.dumps(api.decision_to_fhir(decided, recorded=when)))


def test_a_decision_exports_guidance_proposals_and_provenance(reasoner: Reasoner) -> None:
    decided, bundle = export(MIDPORTION, reasoner)
    Bundle.model_validate(bundle)
    doc = decided.decision
    (guidance,) = resources(bundle, "GuidanceResponse")
    assert guidance["requestIdentifier"]["value"] == doc.decision_id
    assert guidance["status"] == "success"
    assert [r["text"] for r in guidance["reasonCode"]] == [r.text for r in doc.reasons]
    (group,) = resources(bundle, "RequestGroup")
    assert guidance["result"]["reference"] == f"urn:uuid:{group['id']}"
    verdicts = {a["code"][0]["coding"][0]["code"]: a["code"][1]["coding"][0]["code"]
                for a in group["action"]}
    assert verdicts == {t: d.decision for t, d in doc.tracks.items()}
    requests = {r["id"]: r for r in resources(bundle, "ServiceRequest")}
    for action in group["action"]:
        track = action["code"][0]["coding"][0]["code"]
        nxt = doc.tracks[track].next
        if nxt is None:
            assert "resource" not in action
        else:
            request = requests[action["resource"]["reference"].removeprefix("urn:uuid:")]
            assert has_coding(request["code"], codes.CS_EXERCISE, nxt.exercise)
            assert request["intent"] == "proposal"
    assert resources(bundle, "DetectedIssue") == []
    (provenance,) = resources(bundle, "Provenance")
    entity = provenance["entity"][0]["what"]
    assert entity["identifier"]["value"] == doc.rulebase.sha256
    assert doc.rulebase.version in provenance["policy"][0]
    assert provenance["recorded"].startswith("2026-11-21T09:30:00")
    # the exported Bundle still imports as the case it was decided for
    case, _ = api.case_from_fhir(bundle)
    assert case == decided.case


def test_a_referral_exports_a_detected_issue(reasoner: Reasoner) -> None:
    decided, bundle = export(REFERRAL, reasoner)
    assert decided.decision.outcome == "refer"
    (issue,) = resources(bundle, "DetectedIssue")
    assert issue["severity"] == "high"
    assert decided.decision.reasons[0].text in issue["detail"]
    assert resources(bundle, "ServiceRequest") == []
    (provenance,) = resources(bundle, "Provenance")
    targets = {t["reference"] for t in provenance["target"]}
    assert f"urn:uuid:{issue['id']}" in targets
