"""Real charts: a record system's patient-view call whose prefetch is coded
the way US Core charts are (SNOMED CT or ICD-10-CM conditions, LOINC pain
and weight, CPT surgery, RxNorm/ATC medications, vitals and notes the
mapping does not read), merged with calfrehab's own training record found
in the cases directory by the patient's identifier. The service runs for
real on a loopback port."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from helpers import EXAMPLES, served

from calfrehab.engine import api
from calfrehab.engine.trail.audit import AuditTrail

ISSUER = "https://ehr.chart.example"
KID = "chart-kid"
SERVICE = "/cds-services/calfrehab-next-step"
MRN = "urn:oid:2.16.840.1.113883.19.5"  # the clinic's patient identifier system
APP = "https://rehab.clinic.example"
PATIENT = "pt-1"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
MIDPORTION = EXAMPLES / "achilles-midportion-two-leg-to-single-leg.json"
OPERATIVE = EXAMPLES / "rupture-operative-gate-counted-from-surgery.json"


@dataclass
class Service:
    base: str
    key: ec.EllipticCurvePrivateKey
    audit: Path
    cases: Path

    def hook(self, body: dict[str, Any], **claims: Any) -> httpx.Response:
        now = int(time.time())
        token = jwt.encode({"iss": ISSUER, "aud": self.base + SERVICE, "iat": now,
                            "exp": now + 120, "jti": str(uuid.uuid4()), "sub": "ehr-app",
                            **claims}, self.key, algorithm="ES384", headers={"kid": KID})
        return httpx.post(self.base + SERVICE, json=body, timeout=120,
                          headers={"Authorization": f"Bearer {token}"})

    def last_recorded(self) -> tuple[dict[str, Any], dict[str, Any]]:
        with AuditTrail(self.audit) as trail:
            entry = trail.entries(kind="decision")[-1]
        assert entry.case is not None
        return entry.case, entry.decision


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    from jwt.algorithms import ECAlgorithm

    tmp = tmp_path_factory.mktemp("chart")
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = {**json.loads(ECAlgorithm.to_jwk(key.public_key())), "kid": KID, "alg": "ES384"}
    (tmp / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    cases = tmp / "cases"
    cases.mkdir()
    audit = tmp / "audit.sqlite3"
    (tmp / "cds.toml").write_text(
        f'audit = "{audit}"\ntimezone = "UTC"\ncases_dir = "{cases}"\n'
        f'patient_identifier_system = "{MRN}"\n'
        f'app_url = "{APP}"\n'
        "[limits]\nrequest_timeout_s = 120\ndecision_timeout_s = 60\n"
        f'[[issuers]]\niss = "{ISSUER}"\njwks_file = "jwks.json"\nalgorithms = ["ES384"]\n')
    with served(["--config", str(tmp / "cds.toml")], tmp, tmp / "server.log") as base:
        yield Service(base, key, audit, cases)


# ------------------------------------------------------------ the chart


def today() -> date:
    return api.utc_today()  # the service's zone is UTC here


def stored(service: Service, example: Path, name: str, **condition: Any) -> dict[str, Any]:
    """Put the example, moved to review today, in the cases directory as
    calfrehab's record of patient ``name``."""
    doc = api.case_reviewed_on(json.loads(example.read_text()), today())
    doc["condition"].update(condition)
    doc["condition"] = {k: v for k, v in doc["condition"].items() if v is not None}
    (service.cases / f"{name}.json").write_text(json.dumps(doc))
    return doc


def entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"https://ehr.example/fhir/{resource['resourceType']}/{resource['id']}",
            "resource": resource, "search": {"mode": "match"}}


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [entry(r) for r in resources]}


def coded(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def subject() -> dict[str, str]:
    return {"reference": f"Patient/{PATIENT}"}


def us_core_chart(name: str, age: int, *conditions: dict[str, Any],
                  observations: tuple[dict[str, Any], ...] = (),
                  procedures: tuple[dict[str, Any], ...] = (),
                  statements: tuple[dict[str, Any], ...] = (),
                  requests: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    born = today().replace(year=today().year - age) - timedelta(days=40)
    patient = {
        "resourceType": "Patient", "id": PATIENT,
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
        "extension": [{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
                       "extension": [{"url": "text", "valueString": "Unknown"}]}],
        "identifier": [{"system": MRN, "value": name}],
        "name": [{"family": "Example", "given": ["Pat"]}],
        "gender": "female", "birthDate": born.isoformat(),
        "communication": [{"language": coded("urn:ietf:bcp:47", "en", "English")}],
    }
    heart_rate = {  # no time zone: invalid FHIR, and not the mapping's to judge
        "resourceType": "Observation", "id": "hr-1", "status": "final",
        "category": [coded("http://terminology.hl7.org/CodeSystem/observation-category",
                           "vital-signs", "Vital Signs")],
        "code": coded(LOINC, "8867-4", "Heart rate"), "subject": subject(),
        "effectiveDateTime": f"{today().isoformat()}T09:30:00",
        "valueQuantity": {"value": 72, "unit": "/min", "system": UCUM, "code": "/min"}}
    return {
        "hookInstance": str(uuid.uuid4()), "hook": "patient-view",
        "context": {"userId": "Practitioner/dr-1", "patientId": PATIENT},
        "prefetch": {
            "patient": patient,
            "conditions": searchset(*conditions),
            "procedures": searchset(*procedures),
            "observations": searchset(heart_rate, *observations),
            "carePlans": searchset(), "flags": searchset(), "goals": searchset(),
            "medicationStatements": searchset(*statements),
            "medicationRequests": searchset(*requests),
        },
    }


def condition(rid: str, system: str, code: str, display: str, *, status: str = "active",
              side: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Condition", "id": rid,
        "clinicalStatus": coded("http://terminology.hl7.org/CodeSystem/condition-clinical",
                                status, status),
        "verificationStatus": coded(
            "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed",
            "Confirmed"),
        "category": [coded("http://terminology.hl7.org/CodeSystem/condition-category",
                           "problem-list-item", "Problem List Item")],
        "code": coded(system, code, display), "subject": subject(),
        "note": [{"text": "runner, worse after hill repeats"}],
        "onsetDateTime": (today() - timedelta(days=60)).isoformat(),
    }
    if side is not None:
        laterality = {"left": ("7771000", "Left"), "right": ("24028007", "Right")}[side]
        out["bodySite"] = [coded(SNOMED, laterality[0], laterality[1])]
    return out


def weight(rid: str, value: float, unit: str, days_ago: int, status: str = "final",
           period: bool = False) -> dict[str, Any]:
    when = (today() - timedelta(days=days_ago)).isoformat()
    out: dict[str, Any] = {
        "resourceType": "Observation", "id": rid, "status": status,
        "code": coded(LOINC, "29463-7", "Body weight"), "subject": subject(),
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}
    if period:
        out["effectivePeriod"] = {"start": f"{when}T08:00:00Z", "end": f"{when}T08:05:00Z"}
    else:
        out["effectiveDateTime"] = when
    return out


def pain(rid: str, score: int, days_ago: int) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": rid, "status": "final",
            "code": coded(LOINC, "72514-3",
                          "Pain severity - 0-10 verbal numeric rating [Score] - Reported"),
            "subject": subject(),
            "effectiveInstant": f"{(today() - timedelta(days=days_ago)).isoformat()}T10:00:00Z",
            "valueInteger": score}


def cipro_statement() -> dict[str, Any]:
    return {"resourceType": "MedicationStatement", "id": "ms-1", "status": "completed",
            "medicationCodeableConcept": coded("http://www.nlm.nih.gov/research/umls/rxnorm",
                                               "2551", "ciprofloxacin"),
            "subject": subject(),
            "effectivePeriod": {"start": (today() - timedelta(days=30)).isoformat(),
                                "end": (today() - timedelta(days=23)).isoformat()}}


# ------------------------------------------------------------------ tests


def test_a_snomed_chart_is_merged_with_calfrehabs_record(service: Service) -> None:
    record = stored(service, MIDPORTION, "mrn-snomed", side=None)
    chart = us_core_chart(
        "mrn-snomed", 44,
        condition("c-achilles", SNOMED, "11654001", "Achilles tendinitis", side="left"),
        condition("c-old", SNOMED, "202882003", "Plantar fasciitis", status="resolved"),
        observations=(weight("w-old", 150.0, "[lb_av]", 40, status="cancelled"),
                      weight("w-1", 154.0, "[lb_av]", 3, period=True)))
    # a versioned reference names the same patient
    chart["prefetch"]["observations"]["entry"][-1]["resource"]["subject"] = {
        "reference": f"https://ehr.example/fhir/Patient/{PATIENT}/_history/3"}
    response = service.hook(chart)
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    assert cards and all(c["indicator"] != "critical" for c in cards)
    assert all(c["links"] == [{"label": "Open the calf rehab record",
                               "url": f"{APP}/patients/mrn-snomed", "type": "absolute"}]
               for c in cards)
    # the proposal is for the chart's patient, not calfrehab's name of the record
    subjects = {a["resource"]["subject"]["reference"] for c in cards
                for s in c.get("suggestions", []) for a in s["actions"]}
    assert subjects == {f"Patient/{PATIENT}"}
    case, _ = service.last_recorded()
    # the chart's context: age from birthDate, the side from bodySite, the
    # latest final weight in kilograms; calfrehab's record: kind, sessions
    assert case["patient"]["age_years"] == 44
    assert case["patient"]["body_mass_kg"] == 69.9  # 154 lb
    assert case["condition"]["kind"] == record["condition"]["kind"]
    assert case["condition"]["side"] == "left"
    assert case["sessions"] == record["sessions"]


def test_a_fluoroquinolone_in_the_chart_refers_whatever_its_coding(service: Service) -> None:
    stored(service, MIDPORTION, "mrn-fq")
    achilles = condition("c-1", ICD10CM, "M76.62", "Achilles tendinitis, left leg")
    plain = us_core_chart("mrn-fq", 50, achilles)
    assert all(c["indicator"] != "critical" for c in service.hook(plain).json()["cards"])
    atc_request = {"resourceType": "MedicationRequest", "id": "mr-1", "status": "active",
                   "intent": "order", "subject": subject(),
                   "authoredOn": (today() - timedelta(days=10)).isoformat(),
                   "medicationCodeableConcept": coded("http://www.whocc.no/atc", "J01MA12",
                                                      "levofloxacin")}
    named_only = {"resourceType": "MedicationRequest", "id": "mr-2", "status": "completed",
                  "intent": "order", "subject": subject(),
                  "medicationCodeableConcept": {"text": "Moxifloxacin 400 mg tablet"}}
    for chart in (us_core_chart("mrn-fq", 50, achilles, statements=(cipro_statement(),)),
                  us_core_chart("mrn-fq", 50, achilles, requests=(atc_request,)),
                  us_core_chart("mrn-fq", 50, achilles, requests=(named_only,))):
        response = service.hook(chart)
        assert response.status_code == 200, response.text
        (card,) = response.json()["cards"]
        assert card["indicator"] == "critical"
        case, decision = service.last_recorded()
        assert "recent_fluoroquinolone" in case["red_flags"]
        assert decision["outcome"] == "refer"
    # a course long ago, or one entered in error, is not recent
    old = copy.deepcopy(cipro_statement())
    old["effectivePeriod"] = {"start": "2020-01-01", "end": "2020-01-08"}
    void = {**cipro_statement(), "status": "entered-in-error"}
    for med in (old, void):
        cards = service.hook(us_core_chart("mrn-fq", 50, achilles, statements=(med,))).json()
        assert all(c["indicator"] != "critical" for c in cards["cards"])


def test_an_icd10cm_chart_gives_the_side_from_the_code(service: Service) -> None:
    stored(service, MIDPORTION, "mrn-icd", side=None)
    chart = us_core_chart("mrn-icd", 38,
                          condition("c-1", ICD10CM, "M76.61", "Achilles tendinitis, right leg"))
    assert service.hook(chart).status_code == 200
    case, _ = service.last_recorded()
    assert case["condition"]["side"] == "right"


def test_a_pain_score_without_context_counts_as_pain_at_rest(service: Service) -> None:
    stored(service, MIDPORTION, "mrn-pain")
    achilles = condition("c-1", SNOMED, "11654001", "Achilles tendinitis", side="left")
    response = service.hook(us_core_chart("mrn-pain", 41, achilles,
                                          observations=(pain("p-1", 8, 0),)))
    assert response.status_code == 200, response.text
    case, decision = service.last_recorded()
    assert any(a.get("pain_at_rest") == 8 for a in case["assessments"])
    assert decision["outcome"] == "refer"  # pain at rest 7 or more refers


def test_a_cpt_coded_repair_sets_the_surgery_date(service: Service) -> None:
    # The example's decision counts the rupture gates from its surgery; the
    # record without the surgery, and the chart with a CPT 27650 Procedure
    # on that day, must decide the same.
    full = api.case_reviewed_on(json.loads(OPERATIVE.read_text()), today())
    expected = api.decide_document(full, api.prepare(None)).decision.model_dump(mode="json")
    stored(service, OPERATIVE, "mrn-repair", surgery_date=None)
    repair = {"resourceType": "Procedure", "id": "proc-1", "status": "completed",
              "code": coded("http://www.ama-assn.org/go/cpt", "27650",
                            "Repair, primary, open or percutaneous, ruptured Achilles tendon"),
              "subject": subject(),
              "performedPeriod": {"start": f"{full['condition']['surgery_date']}T08:00:00Z",
                                  "end": f"{full['condition']['surgery_date']}T10:00:00Z"}}
    rupture = condition("c-1", ICD10CM, "S86.011A", "Strain of right Achilles tendon")
    response = service.hook(us_core_chart("mrn-repair", full["patient"]["age_years"], rupture,
                                          procedures=(repair,)))
    assert response.status_code == 200, response.text
    case, decision = service.last_recorded()
    assert case["condition"]["surgery_date"] == full["condition"]["surgery_date"]
    assert {t: d["decision"] for t, d in decision["tracks"].items()} == \
        {t: d["decision"] for t, d in expected["tracks"].items()}


def test_no_record_gives_a_card_saying_what_to_record(service: Service) -> None:
    chart = us_core_chart("mrn-nobody", 30,
                          condition("c-1", SNOMED, "11654001", "Achilles tendinitis"))
    response = service.hook(chart)
    assert response.status_code == 200, response.text
    (card,) = response.json()["cards"]
    assert card["summary"] == "No calf rehab record for this patient yet: start one"
    assert card["links"] == [{"label": "Start a calf rehab record",
                              "url": f"{APP}/patients/new", "type": "absolute"}]


def test_a_rupture_in_the_chart_of_a_tendinopathy_record_refers(service: Service) -> None:
    # calfrehab's record manages a tendinopathy; the chart now diagnoses an
    # Achilles rupture: a suspected rupture refers, it is never progressed.
    stored(service, MIDPORTION, "mrn-ruptured")
    chart = us_core_chart("mrn-ruptured", 44,
                          condition("c-1", SNOMED, "11654001", "Achilles tendinitis"),
                          condition("c-2", ICD10CM, "S86.012A", "Strain of left Achilles tendon"))
    response = service.hook(chart)
    assert response.status_code == 200, response.text
    case, decision = service.last_recorded()
    assert "suspected_rupture" in case["red_flags"]
    assert decision["outcome"] == "refer"


def test_a_card_names_the_acceptance_recorded_for_calfrehabs_record(service: Service) -> None:
    # The clinic decided and accepted the patient's record in calfrehab
    # (same trail); the chart opened after gets the rules' proposal on the
    # record as accepted, and every card names that acceptance.
    from click.testing import CliRunner

    from calfrehab.cli.main import cli

    stored(service, MIDPORTION, "mrn-accepted", side="left")
    path = str(service.cases / "mrn-accepted.json")
    for args in (["next", path], ["accept", path, "--clinician", "Dr A. Berg"]):
        result = CliRunner().invoke(cli, [*args, "--audit", str(service.audit)])
        assert result.exit_code == 0, result.output
    chart = us_core_chart("mrn-accepted", 44, condition(
        "c-achilles", SNOMED, "11654001", "Achilles tendinitis", side="left"))
    response = service.hook(chart)
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    assert cards
    for card in cards:
        assert "Accepted into the programme by Dr A. Berg on " in card["detail"]
        assert "a proposal, not a decision a clinician recorded or accepted" in card["detail"]
