"""The HTTP service as a record system calls it: the real server under
uvicorn on a free loopback port, called with httpx, every request carrying
a JWT signed by a test key; requests shaped like the CDS Hooks 2.0
specification's examples."""

from __future__ import annotations

import asyncio
import copy
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec
from helpers import EXAMPLES, REPO, served
from jwt.algorithms import ECAlgorithm

from calfrehab.cli.main import cli
from calfrehab.engine import api
from calfrehab.engine.fhir import codes
from calfrehab.engine.trail.audit import AuditTrail

ISSUER = "https://ehr.test.example"
KID = "test-kid"
SERVICE = "/cds-services/calfrehab-next-step"
MIDPORTION = EXAMPLES / "reactive-midportion-isometric-holds.json"
REFERRAL = EXAMPLES / "red-flag-recent-fluoroquinolone.json"
RUNNER = EXAMPLES / "runner-stuck-on-two-leg.json"


def public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": KID, "alg": "ES384", "use": "sig"}


@dataclass
class Server:
    base: str
    key: ec.EllipticCurvePrivateKey
    audit: Path
    log: Path

    def token(self, path: str, *, key: Any = None, alg: str = "ES384", **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": self.base + path, "iat": now, "exp": now + 120,
                "jti": str(uuid.uuid4()), "sub": "ehr-client", **claims}
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key if key is not None else self.key, algorithm=alg,
                          headers={"kid": KID, "typ": "JWT"})

    def headers(self, path: str, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(path, **claims)}"}

    def post(self, path: str, body: Any, **claims: Any) -> httpx.Response:
        return httpx.post(self.base + path, json=body, headers=self.headers(path, **claims),
                          timeout=60)

    def get(self, path: str, **claims: Any) -> httpx.Response:
        return httpx.get(self.base + path, headers=self.headers(path, **claims), timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("serve")
    key = ec.generate_private_key(ec.SECP384R1())
    (tmp / "jwks.json").write_text(json.dumps({"keys": [public_jwk(key)]}))
    audit = tmp / "audit.sqlite3"
    (tmp / "cds.toml").write_text(
        f'audit = "{audit}"\ntimezone = "UTC"\n'
        "[limits]\nrequest_timeout_s = 120\ndecision_timeout_s = 60\nmax_pending = 64\n"
        f'[[issuers]]\niss = "{ISSUER}"\njwks_file = "jwks.json"\nalgorithms = ["ES384"]\n')
    with served(["--config", str(tmp / "cds.toml")], tmp, tmp / "server.log") as base:
        yield Server(base, key, audit, tmp / "server.log")


# ------------------------------------------------------- building requests


def case_doc(path: Path) -> dict[str, Any]:
    """An example case moved in time so that its review is today: a CDS
    Hooks call decides for the day the chart is opened, and every
    time-based rule then sees the intervals the example was written with."""
    doc: dict[str, Any] = json.loads(path.read_text())
    return api.case_reviewed_on(doc, api.utc_today())


def hook_request(doc: dict[str, Any], patient_id: str = "1288992") -> dict[str, Any]:
    # Shaped like the specification's "Calling a CDS Service" example.
    return api.cds_example_request(api.validate_document(doc), patient_id)


def expected_decision(doc: dict[str, Any]) -> dict[str, Any]:
    decided = api.decide_document(doc, api.prepare(None))
    return decided.decision.model_dump(mode="json")


def without_id(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if '"decision_id"' not in line)


# ---------------------------------------------------------------- security


def test_discovery_lists_the_patient_view_service_with_prefetch(server: Server) -> None:
    response = httpx.get(server.base + "/cds-services", timeout=60, headers={
        **server.headers("/cds-services"), "Origin": "https://sandbox.cds-hooks.org"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers  # no CORS unless configured
    (service,) = response.json()["services"]
    assert service["hook"] == "patient-view"
    assert service["id"] == "calfrehab-next-step"
    assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    # Observations filtered to the codes read, newest first, paged; medications asked.
    observations = service["prefetch"]["observations"]
    assert observations.startswith("Observation?patient={{context.patientId}}&code=")
    assert "http://loinc.org|72514-3" in observations and "http://loinc.org|29463-7" in observations
    assert "_sort=-date" in observations and "_count=" in observations
    assert {"medicationStatements", "medicationRequests"} <= set(service["prefetch"])


@pytest.mark.parametrize(("case", "claims", "says"), [
    ("expired", {"iat": int(time.time()) - 600, "exp": int(time.time()) - 300}, "expired"),
    ("wrong audience", {"aud": "https://elsewhere.example/cds-services"}, "aud"),
    ("untrusted issuer", {"iss": "https://rogue.example"}, "not trusted"),
    ("no jti", {"jti": None}, "jti"),
    ("too long-lived", {"exp": int(time.time()) + 3600}, "at most 300"),
])
def test_bad_tokens_are_refused(server: Server, case: str, claims: dict[str, Any],
                                says: str) -> None:
    response = server.get("/cds-services", **claims)
    assert response.status_code == 401, case
    assert says in response.json()["error"]["message"]
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_token_signed_by_another_key_is_refused(server: Server) -> None:
    other = ec.generate_private_key(ec.SECP384R1())
    token = server.token("/cds-services", key=other)
    response = httpx.get(server.base + "/cds-services",
                         headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "signature" in response.json()["error"]["message"]


def test_a_symmetric_token_is_refused(server: Server) -> None:
    token = server.token("/cds-services", key="a shared secret of enough length!!", alg="HS256")
    response = httpx.get(server.base + "/cds-services",
                         headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "HS256" in response.json()["error"]["message"]


def test_no_token_and_a_replayed_token_are_refused(server: Server) -> None:
    assert httpx.get(server.base + "/cds-services").status_code == 401
    headers = server.headers("/cds-services")
    assert httpx.get(server.base + "/cds-services", headers=headers).status_code == 200
    again = httpx.get(server.base + "/cds-services", headers=headers)
    assert again.status_code == 401
    assert "already used" in again.json()["error"]["message"]


def test_a_token_for_one_endpoint_does_not_open_another(server: Server) -> None:
    token = server.token("/cds-services")
    response = httpx.post(server.base + "/v1/decide", content=MIDPORTION.read_bytes(),
                          headers={"Authorization": f"Bearer {token}",
                                   "Content-Type": "application/json"})
    assert response.status_code == 401


# ------------------------------------------------------------------- cards


def test_the_hook_returns_cards_for_each_track_with_the_next_exercise(server: Server) -> None:
    doc = case_doc(MIDPORTION)
    request = hook_request(doc)
    response = server.post(SERVICE, request)
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    expected = expected_decision(doc)
    moving = {t: d for t, d in expected["tracks"].items()
              if d["decision"] in ("progress", "hold", "regress", "start") and d["next"]}
    assert len(cards) == len(moving) >= 1
    for card in cards:
        assert len(card["summary"]) < 140
        track = next(t for t in moving if card["summary"].startswith(
            {"straight_knee": "Straight knee", "bent_knee": "Bent knee",
             "energy_storage": "Energy storage"}[t]))
        verdict = moving[track]["decision"]
        assert card["indicator"] == ("info" if verdict in ("progress", "start") else "warning")
        assert expected["rulebase"]["version"] in card["source"]["label"]
        assert card["source"]["url"].startswith("https://")
        for reason in expected["reasons"]:
            if reason.get("track") in (track, None):
                assert reason["text"] in card["detail"]
        (suggestion,) = card["suggestions"]
        (action,) = suggestion["actions"]
        assert action["type"] == "create"
        resource = action["resource"]
        assert resource["resourceType"] == "ServiceRequest"
        assert {"system": codes.CS_EXERCISE, "code": moving[track]["next"]["exercise"]}.items() \
            <= resource["code"]["coding"][0].items()
        assert resource["subject"] == {"reference": "Patient/1288992"}
        assert card["selectionBehavior"] == "at-most-one"
        assert all(r["display"] for r in card["overrideReasons"])
        uuid.UUID(card["uuid"])


def test_a_referral_is_one_critical_card(server: Server) -> None:
    response = server.post(SERVICE, hook_request(case_doc(REFERRAL)))
    assert response.status_code == 200, response.text
    (card,) = response.json()["cards"]
    assert card["indicator"] == "critical"
    assert len(card["summary"]) < 140 and card["summary"].startswith("Refer")
    assert "suggestions" not in card


def test_missing_prefetch_is_412_and_names_the_keys(server: Server) -> None:
    request = hook_request(case_doc(MIDPORTION))
    del request["prefetch"]["observations"]
    response = server.post(SERVICE, request)
    assert response.status_code == 412
    assert "observations" in response.json()["error"]["message"]
    del request["prefetch"]
    response = server.post(SERVICE, request)
    assert response.status_code == 412
    assert "patient" in response.json()["error"]["message"]


def test_null_prefetch_means_no_data(server: Server) -> None:
    request = hook_request(case_doc(RUNNER))
    request["prefetch"]["flags"] = None  # spec: no data for this key
    assert server.post(SERVICE, request).status_code == 200


def test_a_bad_bundle_is_400_naming_resource_and_element(server: Server) -> None:
    request = hook_request(case_doc(MIDPORTION))
    request["prefetch"]["patient"]["gender"] = 3
    response = server.post(SERVICE, request)
    assert response.status_code == 400
    problems = response.json()["error"]["problems"]
    assert {"resource": "Patient/1288992", "element": "Patient.gender"}.items() \
        <= problems[0].items()


def test_bad_json_is_400_naming_the_problem_not_a_500(server: Server) -> None:
    path = "/v1/decide"
    response = httpx.post(server.base + path, content=b'{"schema_version": 1,,}',
                          headers={**server.headers(path), "Content-Type": "application/json"})
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["message"] == "the body is not valid JSON"
    assert body["problems"][0]["line"] == 1
    response = server.post(SERVICE, {"hook": "order-sign"})
    assert response.status_code == 400
    assert "Traceback" not in response.text


def test_a_10_mb_body_is_refused_with_413(server: Server) -> None:
    path = "/v1/decide"
    big = b'{"pad": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    try:
        response = httpx.post(server.base + path, content=big, timeout=60,
                              headers={**server.headers(path),
                                       "Content-Type": "application/json"})
    except httpx.TransportError:
        pytest.fail("the server dropped the connection instead of answering 413")
    assert response.status_code == 413
    assert "at most" in response.json()["error"]["message"]
    # and it still serves
    assert server.get("/cds-services").status_code == 200


# --------------------------------------------------------------- feedback


def test_feedback_is_recorded_as_clinician_overrides(server: Server) -> None:
    response = server.post(SERVICE, hook_request(case_doc(RUNNER)))
    cards = response.json()["cards"]
    assert len(cards) >= 2
    accepted, overridden = cards[0], cards[1]
    feedback = {"feedback": [
        {"card": accepted["uuid"], "outcome": "accepted",
         "acceptedSuggestions": [{"id": accepted["suggestions"][0]["uuid"]}],
         "outcomeTimestamp": "2026-12-02T09:00:00Z"},
        {"card": overridden["uuid"], "outcome": "overridden",
         "overrideReason": {"reason": {"code": "patient-preference",
                                       "system": codes.CS_OVERRIDE_REASON,
                                       "display": "Patient preference"},
                            "userComment": "racing on Sunday, keep the load"},
         "outcomeTimestamp": "2026-12-02T09:01:00Z"},
    ]}
    response = server.post(f"{SERVICE}/feedback", feedback, fhirUser="Practitioner/dr-who")
    assert response.status_code == 200, response.text
    assert response.json()["recorded"] == 2
    assert [i["status"] for i in response.json()["items"]] == ["recorded", "recorded"]
    with AuditTrail(server.audit) as trail:
        assert trail.verify().ok
        decisions = trail.entries(case_id="1288992", kind="decision")
        overrides = trail.overrides_for(decisions[-1].decision_id)
    # the clinician is who the token vouches for, never the body's userId
    assert [o.clinician for o in overrides] == ["Practitioner/dr-who"] * 2
    first, second = (o.decision for o in overrides)
    assert first["reason"].startswith("accepted via CDS Hooks card")
    assert first["track"] is not None and first["decision"] is not None
    assert "Patient preference; racing on Sunday, keep the load" in second["reason"]
    assert second["track"] is None


def test_feedback_is_answered_per_item_and_recorded_once(server: Server) -> None:
    (card, *_) = server.post(SERVICE, hook_request(case_doc(RUNNER))).json()["cards"]
    with AuditTrail(server.audit) as trail:
        before = len(trail)
    unknown = {"card": str(uuid.uuid4()), "outcome": "overridden",
               "outcomeTimestamp": "2026-12-02T09:00:00Z"}
    known = {"card": card["uuid"], "outcome": "overridden",
             "outcomeTimestamp": "2026-12-02T09:00:00Z"}
    response = server.post(f"{SERVICE}/feedback", {"feedback": [unknown, known]})
    assert response.status_code == 200, response.text
    assert response.json()["recorded"] == 1
    assert [i["status"] for i in response.json()["items"]] == ["unknown", "recorded"]
    assert "no card" in response.json()["items"][0]["message"]
    again = server.post(f"{SERVICE}/feedback", {"feedback": [known, known]})
    assert [i["status"] for i in again.json()["items"]] == ["already recorded"] * 2
    with AuditTrail(server.audit) as trail:
        assert len(trail) == before + 1


# ------------------------------------------------------------ the JSON API


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_decide_returns_the_bytes_of_next_json(server: Server, example: Path) -> None:
    response = httpx.post(server.base + "/v1/decide?record=false",
                          content=example.read_bytes(),
                          headers={**server.headers("/v1/decide"),
                                   "Content-Type": "application/json"}, timeout=60)
    assert response.status_code == 200
    cli_out = CliRunner().invoke(cli, ["next", str(example), "--json", "--no-record"])
    assert without_id(response.text) == without_id(cli_out.stdout)
    assert response.text.endswith("}\n")


def test_explain_returns_the_bytes_of_explain_json(server: Server) -> None:
    response = httpx.post(server.base + "/v1/explain", content=MIDPORTION.read_bytes(),
                          headers={**server.headers("/v1/explain"),
                                   "Content-Type": "application/json"}, timeout=60)
    assert response.status_code == 200
    cli_out = CliRunner().invoke(cli, ["explain", str(MIDPORTION), "--json"])
    assert without_id(response.text) == without_id(cli_out.stdout)


def test_an_invalid_case_is_400_with_every_field(server: Server) -> None:
    doc = case_doc(MIDPORTION)
    doc["patient"]["age_years"] = 7
    doc["sessions"][0]["pain_next_mornin"] = 2
    response = server.post("/v1/decide", doc)
    assert response.status_code == 400
    paths = {p["path"] for p in response.json()["error"]["problems"]}
    assert {"patient.age_years", "sessions[0].pain_next_mornin"} <= paths


def test_openapi_describes_the_json_api(server: Server) -> None:
    spec = server.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert {"/v1/decide", "/v1/explain", "/cds-services"} <= set(spec["paths"])
    assert "schema_version" in spec["components"]["schemas"]["Case"]["properties"]


# -------------------------------------------------------------- under load


def test_fifty_concurrent_calls_all_decide_and_the_trail_verifies(server: Server) -> None:
    with AuditTrail(server.audit) as trail:
        before = len(trail.entries(kind="decision"))

    async def call(n: int, client: httpx.AsyncClient) -> int:
        doc = copy.deepcopy(case_doc(RUNNER))
        doc["case_id"] = f"LOAD-{n:03d}"
        if n % 2:
            response = await client.post(
                server.base + "/v1/decide", json=doc, headers=server.headers("/v1/decide"))
        else:
            response = await client.post(
                server.base + SERVICE, json=hook_request(doc, f"load-{n:03d}"),
                headers=server.headers(SERVICE))
        return response.status_code

    async def all_calls() -> list[int]:
        async with httpx.AsyncClient(timeout=300) as client:
            return await asyncio.gather(*(call(n, client) for n in range(50)))

    statuses = asyncio.run(all_calls())
    assert statuses == [200] * 50
    with AuditTrail(server.audit) as trail:
        decisions = trail.entries(kind="decision")
        assert len(decisions) == before + 50
        assert trail.verify().ok
    cases = {d.case_id for d in decisions}
    assert {f"LOAD-{n:03d}" for n in range(1, 50, 2)} <= cases
    assert {f"load-{n:03d}" for n in range(0, 50, 2)} <= cases


def test_the_log_holds_no_patient_data_beyond_the_case_id(server: Server) -> None:
    server.post(SERVICE, hook_request(case_doc(MIDPORTION), "log-check"))
    text = server.log.read_text()
    assert "case=log-check" in text
    doc = case_doc(MIDPORTION)
    for secret in ("racing on Sunday", "Practitioner/example", "birthDate",
                   doc["condition"]["kind"], "pain"):
        assert secret not in text


def test_the_documented_example_request_gets_the_examples_cards(server: Server,
                                                               tmp_path: Path) -> None:
    # docs/integration.md's worked exchange: scripts/cds_example.py writes the
    # request, curl posts it. The runner example progresses the straight
    # knee and starts the bent knee (examples/README.md).
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "cds_example.py"),
                          str(RUNNER)], capture_output=True, text=True, check=True).stdout
    response = server.post(SERVICE, json.loads(out))
    assert response.status_code == 200, response.text
    summaries = [c["summary"] for c in response.json()["cards"]]
    assert [s.split(":")[0] for s in summaries] == ["Straight knee", "Bent knee"]
    assert "progress to Single-leg heel raise" in summaries[0]
    assert "start Two-leg heel raise, knee bent" in summaries[1]


# ------------------------------------------- what the clinician decided


def test_a_card_names_the_clinicians_recorded_override_and_stays_a_proposal(
        server: Server) -> None:
    # The service decides on the chart alone; a clinician's override of this
    # patient, recorded in the trail since, must show on the next card, and
    # the card must say it is the rules' proposal, never the decision.
    patient = "calf-override-7"
    first = server.post(SERVICE, hook_request(case_doc(RUNNER), patient)).json()["cards"]
    assert first and all("a proposal, not a decision a clinician recorded or accepted"
                         in c["detail"] for c in first)
    assert all("Sources: " in c["detail"] and "Alfredson 1998" in c["detail"] for c in first)
    assert not any("Recorded in calfrehab" in c["detail"] for c in first)
    assert all(c["suggestions"][0]["isRecommended"] for c in first)
    with AuditTrail(server.audit) as trail:
        decision_id = trail.entries(case_id=patient, kind="decision")[-1].decision_id
    result = CliRunner().invoke(cli, [
        "audit", "override", decision_id, "--audit", str(server.audit),
        "--clinician", "Dr A. Berg", "--reason", "pain 6/10 next morning",
        "--track", "straight_knee", "--decision", "hold"])
    assert result.exit_code == 0, result.output
    # Opened again (a new hookInstance): a new decision is recorded, and the
    # override stays named on every later card, not only the next one.
    for _ in range(2):
        cards = server.post(SERVICE, hook_request(case_doc(RUNNER), patient)).json()["cards"]
        assert cards
        for card in cards:
            assert ("Overridden by Dr A. Berg on " in card["detail"]
                    and "on Straight knee (gastrocnemius): hold. Reason: pain 6/10 next "
                        "morning." in card["detail"])
            assert "what the clinician decided stands" in card["detail"]
            assert card["suggestions"][0]["isRecommended"] is False
    # A red flag now: one critical card, no exercise suggested, and the
    # override said to no longer stand.
    flagged = case_doc(RUNNER)
    flagged["red_flags"] = ["calf_swelling_warmth"]
    (card,) = server.post(SERVICE, hook_request(flagged, patient)).json()["cards"]
    assert card["indicator"] == "critical" and "suggestions" not in card
    assert "The chart now gives a referral: that recorded decision no longer stands." \
        in card["detail"]
    # A session entered since: the next review is proposed on it, and the
    # old override is history, no longer named.
    later = case_doc(RUNNER)
    later["sessions"].append({**later["sessions"][-1], "date": later["review_date"]})
    cards = server.post(SERVICE, hook_request(later, patient)).json()["cards"]
    assert cards and not any("Recorded in calfrehab" in c["detail"] for c in cards)
    assert all(c["suggestions"][0]["isRecommended"] for c in cards)


def test_feedback_on_a_decision_accepted_since_is_refused_for_that_item(
        server: Server) -> None:
    from calfrehab.engine.audit.views import accept_decision

    patient = "calf-accepted-9"
    (card, *_) = server.post(SERVICE, hook_request(case_doc(RUNNER), patient)).json()["cards"]
    with AuditTrail(server.audit) as trail:
        decision_id = trail.entries(case_id=patient, kind="decision")[-1].decision_id
    accept_decision(server.audit, decision_id, {"straight_knee": None, "bent_knee": None,
                                                "energy_storage": None}, "Dr A")
    response = server.post(f"{SERVICE}/feedback", {"feedback": [
        {"card": card["uuid"], "outcome": "overridden",
         "outcomeTimestamp": "2026-12-02T09:00:00Z"}]})
    assert response.status_code == 200, response.text
    assert response.json()["recorded"] == 0
    (item,) = response.json()["items"]
    assert item["status"] == "refused"
    assert "was accepted into the programme by Dr A" in item["message"]
    with AuditTrail(server.audit) as trail:
        assert trail.overrides_for(decision_id) == []
