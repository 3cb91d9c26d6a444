"""A prefetch that is not whole, or not all one patient's, never gives a
less cautious answer (clinical-basis.md §8).

The service runs for real on a loopback port; the record's FHIR server is
tests/fhir_loopback.py, which pages, counts and fails as the FHIR R4 search
specification says. Each case decides the same chart twice: once with the
whole prefetch, once with the prefetch cut short in the way a record
system cuts it (an OperationOutcome, a first page with a ``next`` link, a
``total`` above what is held, an ``incomplete`` outcome entry). With a
``fhirServer`` to fetch the rest from, the cards must be the same; without
one, or when fetching fails, the answer is 412 naming what is incomplete,
and nothing is decided or recorded.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fhir_loopback import FhirStore, fhir_server, outcome
from helpers import EXAMPLES, served

from calfrehab.engine import api
from calfrehab.engine.trail.audit import AuditTrail

ISSUER = "https://ehr.prefetch.example"
KID = "prefetch-kid"
SERVICE = "/cds-services/calfrehab-next-step"
PATIENT = "1288992"
# A clinic 14 hours east of UTC: for most of the UTC day its calendar is a
# day ahead, so a session logged there today is "in the future" in UTC.
CLINIC_ZONE = "Pacific/Kiritimati"
REFERRAL = EXAMPLES / "red-flag-recent-fluoroquinolone.json"
FLARE = EXAMPLES / "plantar-next-morning-jump-flare.json"


def clinic_today() -> date:
    return datetime.now(ZoneInfo(CLINIC_ZONE)).date()


class Service:
    def __init__(self, base: str, key: ec.EllipticCurvePrivateKey, audit: Path) -> None:
        self.base, self.key, self.audit = base, key, audit

    def hook(self, body: dict[str, Any]) -> httpx.Response:
        # Each variant of a chart is a new call: a retry of one hookInstance
        # would get the first answer back (test_server_state.py).
        body = {**body, "hookInstance": str(uuid.uuid4())}
        now = int(time.time())
        token = jwt.encode({"iss": ISSUER, "aud": self.base + SERVICE, "iat": now,
                            "exp": now + 120, "jti": str(uuid.uuid4()), "sub": "ehr"},
                           self.key, algorithm="ES384", headers={"kid": KID})
        return httpx.post(self.base + SERVICE, json=body, timeout=120,
                          headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    from jwt.algorithms import ECAlgorithm

    tmp = tmp_path_factory.mktemp("prefetch")
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = {**json.loads(ECAlgorithm.to_jwk(key.public_key())), "kid": KID, "alg": "ES384"}
    (tmp / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    audit = tmp / "audit.sqlite3"
    (tmp / "cds.toml").write_text(
        f'audit = "{audit}"\ntimezone = "{CLINIC_ZONE}"\n'
        "[limits]\nrequest_timeout_s = 120\ndecision_timeout_s = 60\nfhir_timeout_s = 10\n"
        f'[[issuers]]\niss = "{ISSUER}"\njwks_file = "jwks.json"\nalgorithms = ["ES384"]\n'
        # the loopback FHIR servers of these tests (any port)
        'fhir_servers = ["http://127.0.0.1:"]\n')
    with served(["--config", str(tmp / "cds.toml")], tmp, tmp / "server.log") as base:
        yield Service(base, key, audit)


def chart(example: Path) -> dict[str, Any]:
    """The example as a record system's patient-view call, reviewed today
    in the clinic's time zone, the whole prefetch present."""
    doc = api.case_reviewed_on(json.loads(example.read_text()), clinic_today())
    request = api.cds_example_request(api.validate_document(doc), PATIENT)
    del request["fhirServer"]  # a test names the loopback server when it has one
    return request


def verdicts(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.text
    return [(c["summary"], c["indicator"]) for c in response.json()["cards"]]


def store_of(request: dict[str, Any]) -> FhirStore:
    """A FHIR server holding every resource of the request's prefetch."""
    store = FhirStore()
    for value in request["prefetch"].values():
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            store.add(*(e["resource"] for e in value.get("entry", [])))
        elif isinstance(value, dict):
            store.add(value)
    return store


def with_server(request: dict[str, Any], base: str, store: FhirStore) -> dict[str, Any]:
    out = copy.deepcopy(request)
    out["fhirServer"] = base
    out["fhirAuthorization"] = {"access_token": store.token, "token_type": "Bearer",
                                "expires_in": 300, "scope": "patient/*.read",
                                "subject": "calfrehab"}
    return out


def first_page(base: str, store: FhirStore, query: str) -> dict[str, Any]:
    """What the record's server answers to the search: its first page."""
    page: dict[str, Any] = httpx.get(f"{base}/{query}", timeout=30, headers={
        "Authorization": f"Bearer {store.token}"}).json()
    return page


def decisions_recorded(service: Service) -> int:
    if not service.audit.exists():
        return 0
    with AuditTrail(service.audit) as trail:
        return len(trail.entries(kind="decision"))


def refused(service: Service, request: dict[str, Any], *says: str) -> None:
    before = decisions_recorded(service)
    response = service.hook(request)
    assert response.status_code == 412, response.text
    message = response.json()["error"]["message"]
    for word in says:
        assert word in message, message
    assert decisions_recorded(service) == before


# ------------------------------------------------- failed or partial prefetch


def test_flags_sent_as_an_operation_outcome_are_fetched_and_still_refer(
        service: Service) -> None:
    whole = chart(REFERRAL)
    complete = verdicts(service.hook(whole))
    assert [i for _, i in complete] == ["critical"]
    cut = copy.deepcopy(whole)
    cut["prefetch"]["flags"] = outcome("error", "timeout", "Flag search timed out")
    refused(service, cut, "flags", "timeout", "no fhirServer")
    store = store_of(whole)
    with fhir_server(store) as base:
        assert verdicts(service.hook(with_server(cut, base, store))) == complete
    # the token went with every request, and only to the record's server
    assert store.requests and all(auth == f"Bearer {store.token}"
                                  for _, auth in store.requests)
    assert any(path.startswith("/fhir/Flag?patient=1288992") for path, _ in store.requests)


def test_an_empty_first_page_of_flags_with_a_next_link_is_followed(service: Service) -> None:
    whole = chart(REFERRAL)
    complete = verdicts(service.hook(whole))
    store = store_of(whole)
    with fhir_server(store) as base:
        cut = copy.deepcopy(whole)
        cut["prefetch"]["flags"] = {
            "resourceType": "Bundle", "type": "searchset", "entry": [],
            "link": [{"relation": "next", "url": f"{base}/Flag?patient={PATIENT}"}]}
        refused(service, cut, "flags", "next link")
        assert verdicts(service.hook(with_server(cut, base, store))) == complete


def test_a_flare_on_page_two_is_fetched_and_still_regresses(service: Service) -> None:
    whole = chart(FLARE)
    complete = verdicts(service.hook(whole))
    assert any("regress" in summary for summary, _ in complete)
    store = store_of(whole)
    with fhir_server(store) as base:
        cut = copy.deepcopy(whole)
        cut["prefetch"]["observations"] = first_page(
            base, store, f"Observation?patient={PATIENT}")
        assert any(link["relation"] == "next" for link in cut["prefetch"]["observations"]["link"])
        refused(service, cut, "observations", "next link")
        assert verdicts(service.hook(with_server(cut, base, store))) == complete
        pages = [p for p, _ in store.requests if "_page=" in p]
        assert len(pages) >= 2  # it followed the links to the last page


def test_a_total_above_what_is_held_runs_the_search_again(service: Service) -> None:
    whole = chart(FLARE)
    complete = verdicts(service.hook(whole))
    cut = copy.deepcopy(whole)
    observations = cut["prefetch"]["observations"]
    observations["entry"] = observations["entry"][:3]  # total still counts them all
    refused(service, cut, "observations", "total")
    store = store_of(whole)
    with fhir_server(store) as base:
        assert verdicts(service.hook(with_server(cut, base, store))) == complete


def test_an_incomplete_outcome_entry_in_a_searchset_is_not_read_as_whole(
        service: Service) -> None:
    whole = chart(REFERRAL)
    complete = verdicts(service.hook(whole))
    cut = copy.deepcopy(whole)
    cut["prefetch"]["flags"]["entry"] = [{
        "resource": outcome("warning", "incomplete", "results cut at 0 of 1"),
        "search": {"mode": "outcome"}}]
    cut["prefetch"]["flags"].pop("total")
    refused(service, cut, "flags", "incomplete")
    store = store_of(whole)
    with fhir_server(store) as base:
        assert verdicts(service.hook(with_server(cut, base, store))) == complete


def test_when_fetching_fails_the_answer_is_412_naming_it(service: Service) -> None:
    whole = chart(FLARE)
    store = store_of(whole)
    with fhir_server(store) as base:
        cut = copy.deepcopy(whole)
        cut["prefetch"]["observations"] = first_page(
            base, store, f"Observation?patient={PATIENT}")
        cut["prefetch"]["flags"] = outcome("fatal", "exception", "down")
        store.failing = {"Flag"}
        store.failing_pages = {"Observation"}
        refused(service, with_server(cut, base, store), "observations", "flags", "500")
        # a token the server does not take is a failure too, not "no data"
        store.failing, store.failing_pages = set(), set()
        wrong = with_server(cut, base, store)
        wrong["fhirAuthorization"]["access_token"] = "not-the-token"
        refused(service, wrong, "401")


def test_a_fhir_server_the_issuer_does_not_have_is_not_fetched_from(
        service: Service) -> None:
    whole = chart(REFERRAL)
    cut = copy.deepcopy(whole)
    cut["prefetch"]["flags"] = outcome("error", "timeout", "Flag search timed out")
    cut["fhirServer"] = "http://localhost:9/fhir"  # inside the clinic, not the issuer's
    refused(service, cut, "flags", "not one calfrehab may fetch from")


def test_a_next_link_to_another_server_is_not_followed(service: Service) -> None:
    whole = chart(REFERRAL)
    store = store_of(whole)
    with fhir_server(store) as base:
        cut = copy.deepcopy(whole)
        cut["prefetch"]["flags"] = {
            "resourceType": "Bundle", "type": "searchset", "entry": [],
            "link": [{"relation": "next", "url": "https://elsewhere.example/fhir/Flag?p=2"}]}
        refused(service, with_server(cut, base, store), "flags", "not on the FHIR server")
    assert not store.requests


# ------------------------------------------------------------ one patient


def test_another_patients_weight_is_refused_not_merged(service: Service) -> None:
    request = chart(REFERRAL)
    weight = {"resourceType": "Observation", "id": "w-other", "status": "final",
              "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
              "subject": {"reference": "Patient/someone-else"},
              "effectiveDateTime": clinic_today().isoformat(),
              "valueQuantity": {"value": 95, "unit": "kg",
                                "system": "http://unitsofmeasure.org", "code": "kg"}}
    request["prefetch"]["observations"]["entry"].append({"resource": weight})
    request["prefetch"]["observations"]["total"] += 1
    refused(service, request, "Observation/w-other", "Patient/someone-else")


def test_a_patient_other_than_the_context_is_refused(service: Service) -> None:
    request = chart(REFERRAL)
    request["context"]["patientId"] = "nobody-here"
    refused(service, request, "Patient/1288992", "nobody-here")
    request = chart(REFERRAL)
    request["prefetch"]["patient"] = {"resourceType": "Bundle", "type": "searchset",
                                      "total": 0, "entry": []}
    refused(service, request, "matches no Patient")


def test_the_review_date_is_today_in_the_clinics_time_zone(service: Service) -> None:
    # The chart's last session is logged today, clinic time: not a future
    # date, whatever the day is in UTC.
    request = chart(REFERRAL)
    response = service.hook(request)
    assert response.status_code == 200, response.text


def test_a_failed_medication_search_is_fetched_and_still_refers(service: Service) -> None:
    # The fluoroquinolone is in the chart's medications, not a calfrehab Flag.
    doc = api.case_reviewed_on(json.loads(REFERRAL.read_text()), clinic_today())
    doc["red_flags"] = []
    whole = api.cds_example_request(api.validate_document(doc), PATIENT)
    del whole["fhirServer"]
    cipro = {"resourceType": "MedicationStatement", "id": "ms-cipro", "status": "completed",
             "subject": {"reference": f"Patient/{PATIENT}"},
             "effectiveDateTime": clinic_today().isoformat(),
             "medicationCodeableConcept": {"coding": [{
                 "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "2551",
                 "display": "ciprofloxacin"}]}}
    whole["prefetch"]["medicationStatements"] = {
        "resourceType": "Bundle", "type": "searchset", "total": 1,
        "entry": [{"resource": cipro}]}
    complete = verdicts(service.hook(whole))
    assert [i for _, i in complete] == ["critical"]
    cut = copy.deepcopy(whole)
    cut["prefetch"]["medicationStatements"] = outcome("error", "throttled", "try later")
    refused(service, cut, "medicationStatements", "throttled")
    store = store_of(whole)
    with fhir_server(store) as base:
        assert verdicts(service.hook(with_server(cut, base, store))) == complete


def test_a_chart_instant_is_dated_on_the_clinics_calendar(service: Service) -> None:
    # 12:00 UTC yesterday is 02:00 today in the clinic (UTC+14): a pain score
    # taken then belongs to today's assessment.
    request = chart(REFERRAL)
    yesterday = clinic_today() - timedelta(days=1)
    request["prefetch"]["observations"]["entry"].append({"resource": {
        "resourceType": "Observation", "id": "pain-instant", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]},
        "subject": {"reference": f"Patient/{PATIENT}"},
        "effectiveInstant": f"{yesterday.isoformat()}T12:00:00Z", "valueInteger": 2}})
    request["prefetch"]["observations"]["total"] += 1
    assert service.hook(request).status_code == 200
    with AuditTrail(service.audit) as trail:
        case = trail.entries(kind="decision")[-1].case
    assert case is not None
    assert {"date": clinic_today().isoformat(), "pain_at_rest": 2}.items() <= \
        next(a for a in case["assessments"] if a.get("pain_at_rest") == 2).items()


# ------------------------- dates, duplicates, values no calf produces (§8)

RUNNER = EXAMPLES / "runner-stuck-on-two-leg.json"


def reviewed_today(example: Path) -> dict[str, Any]:
    doc: dict[str, Any] = api.case_reviewed_on(json.loads(example.read_text()), clinic_today())
    return doc


def chart_of(doc: dict[str, Any]) -> dict[str, Any]:
    request = api.cds_example_request(api.validate_document(doc), PATIENT)
    del request["fhirServer"]
    return request


def not_a_case(service: Service, request: dict[str, Any], *says: str) -> list[dict[str, str]]:
    before = decisions_recorded(service)
    response = service.hook(request)
    assert response.status_code == 400, response.text
    problems: list[dict[str, str]] = response.json()["error"]["problems"]
    text = json.dumps(problems)
    for word in says:
        assert word in text, text
    assert decisions_recorded(service) == before
    return problems


def test_a_chart_session_dated_after_today_is_refused(service: Service) -> None:
    request = chart(RUNNER)
    tomorrow = (clinic_today() + timedelta(days=1)).isoformat()
    procedure = request["prefetch"]["procedures"]["entry"][-1]["resource"]
    procedure["performedDateTime"] = tomorrow
    (problem,) = not_a_case(service, request, "is after review_date", tomorrow)
    assert problem["resource"] == f"Procedure/{procedure['id']}"


def test_the_same_session_entered_twice_in_the_chart_counts_once(service: Service) -> None:
    # One session at the full dose holds (two are needed); the same session
    # entered twice (two Procedures, their Observations) must not progress.
    doc = reviewed_today(RUNNER)
    doc["sessions"] = doc["sessions"][-1:]
    once = verdicts(service.hook(chart_of(doc)))
    assert once and all(summary.startswith("Straight knee: hold") for summary, _ in once)
    doc["sessions"] = doc["sessions"] * 2
    assert verdicts(service.hook(chart_of(doc))) == once


def test_a_set_no_calf_produces_is_refused_naming_the_range(service: Service) -> None:
    doc = reviewed_today(RUNNER)
    doc["sessions"][-1]["exercises"][0]["sets_completed"] = [150, 150, 150]
    problems = not_a_case(service, chart_of(doc), "= 150 is outside the plausible range (0-100")
    assert {p["element"] for p in problems} == {
        f"Observation.component[{n}].valueInteger" for n in (1, 2, 3)}
    assert all(p["resource"].startswith("Observation/") for p in problems)
