"""The service's own state survives a restart, and a record system's
retries and duplicates are answered once: the real service on a loopback
port, stopped and started again over the same trail."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from helpers import EXAMPLES, served

from calfrehab.engine import api
from calfrehab.engine.trail.audit import AuditTrail

ISSUER = "https://ehr.state.example"
KID = "state-kid"
SERVICE = "/cds-services/calfrehab-next-step"
RUNNER = EXAMPLES / "runner-stuck-on-two-leg.json"


# The service's public URL: a restart listens on another port, and the
# tokens' aud stays the same.
PUBLIC = "https://cds.state.example"


class Client:
    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self.key = key
        self.base = ""

    def token(self, path: str, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": PUBLIC + path, "iat": now, "exp": now + 120,
                "jti": str(uuid.uuid4()), "sub": "ehr-client", **claims}
        return jwt.encode(body, self.key, algorithm="ES384", headers={"kid": KID})

    def post(self, path: str, body: Any, token: str | None = None) -> httpx.Response:
        token = token or self.token(path)
        return httpx.post(self.base + path, json=body, timeout=120,
                          headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Client]:
    from jwt.algorithms import ECAlgorithm

    tmp = tmp_path_factory.mktemp("state")
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = {**json.loads(ECAlgorithm.to_jwk(key.public_key())), "kid": KID, "alg": "ES384"}
    (tmp / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    (tmp / "cds.toml").write_text(
        f'audit = "{tmp / "audit.sqlite3"}"\ntimezone = "UTC"\npublic_url = "{PUBLIC}"\n'
        "[limits]\nrequest_timeout_s = 120\ndecision_timeout_s = 60\n"
        f'[[issuers]]\niss = "{ISSUER}"\njwks_file = "jwks.json"\nalgorithms = ["ES384"]\n')
    return tmp, Client(key)


@contextmanager
def running(setup: tuple[Path, Client]) -> Iterator[Client]:
    tmp, client = setup
    # --audit: the tests' environment names a trail of its own (conftest)
    with served(["--config", str(tmp / "cds.toml"), "--audit", str(tmp / "audit.sqlite3")],
                tmp, tmp / "server.log") as base:
        client.base = base
        yield client


def request(patient: str = "state-1") -> dict[str, Any]:
    doc = api.case_reviewed_on(json.loads(RUNNER.read_text()), api.utc_today())
    out = api.cds_example_request(api.validate_document(doc), patient)
    del out["fhirServer"]
    return out


def trail(setup: tuple[Path, Client]) -> AuditTrail:
    return AuditTrail(setup[0] / "audit.sqlite3")


def test_feedback_and_tokens_survive_a_restart(setup: tuple[Path, Client]) -> None:
    with running(setup) as client:
        cards = client.post(SERVICE, request()).json()["cards"]
        spent = client.token(SERVICE)
        assert client.post(SERVICE, request(), token=spent).status_code == 200
    with running(setup) as client:
        # a token used before the restart is still spent
        again = client.post(SERVICE, request(), token=spent)
        assert again.status_code == 401 and "already used" in again.text
        # feedback on a card issued before the restart is recorded
        card = cards[0]
        response = client.post(f"{SERVICE}/feedback", {"feedback": [{
            "card": card["uuid"], "outcome": "accepted",
            "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
            "outcomeTimestamp": "2026-12-06T10:00:00Z"}]})
        assert response.status_code == 200, response.text
        assert response.json()["items"][0]["status"] == "recorded"
    with trail(setup) as t:
        assert t.verify().ok
        overrides = [e for e in t.entries(kind="override")
                     if card["uuid"] in e.decision["reason"]]
        assert len(overrides) == 1


def test_a_retried_hook_gets_the_recorded_decision(setup: tuple[Path, Client]) -> None:
    call = request("retry-1")
    with running(setup) as client:
        first = client.post(SERVICE, call)
        second = client.post(SERVICE, call)
    with running(setup) as client:
        third = client.post(SERVICE, call)  # after a restart too
    assert first.status_code == second.status_code == third.status_code == 200
    assert first.json() == second.json() == third.json()  # the same card uuids
    with trail(setup) as t:
        decided = t.entries(case_id="retry-1", kind="decision")
    assert len(decided) == 1
    # and the trail says who asked
    (entry,) = decided
    assert entry.requester == {"hookInstance": call["hookInstance"], "iss": ISSUER,
                               "sub": "ehr-client", "fhirServer": None}
    assert entry.clinician == f"ehr-client ({ISSUER})"  # not the body's userId


def _signed(client: Client, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A token signed with the trusted key whatever its header and claims say."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    der = client.key.sign(signing.encode(), ec.ECDSA(hashes.SHA384()))
    r, s = decode_dss_signature(der)
    return f"{signing}.{b64(r.to_bytes(48, 'big') + s.to_bytes(48, 'big'))}"


def test_a_malformed_but_signed_token_is_401_not_500(setup: tuple[Path, Client]) -> None:
    now = int(time.time())
    with running(setup) as client:
        good = {"iss": ISSUER, "aud": PUBLIC + SERVICE, "iat": now, "exp": now + 60,
                "jti": str(uuid.uuid4())}
        for header, claims in (
                ({"alg": ["ES384"], "kid": KID, "typ": "JWT"}, good),
                ({"alg": "ES384", "kid": 7, "typ": "JWT"}, good),
                ({"alg": "ES384", "kid": KID, "typ": "JWT"}, {**good, "iat": "yesterday"}),
                ({"alg": "ES384", "kid": KID, "typ": "JWT"}, {**good, "jti": ["a"]})):
            token = _signed(client, header, claims)
            response = client.post(SERVICE, request(), token=token)
            assert response.status_code == 401, (header, claims, response.text)
            assert response.json()["error"]["message"]


def test_fifty_concurrent_hooks_and_their_retries_each_decide_once(
        setup: tuple[Path, Client]) -> None:
    calls = [request(f"many-{n:02d}") for n in range(50)]
    with running(setup) as client:
        async def send(body: dict[str, Any], http: httpx.AsyncClient) -> int:
            response = await http.post(client.base + SERVICE, json=body, headers={
                "Authorization": f"Bearer {client.token(SERVICE)}"})
            return response.status_code

        async def all_calls() -> list[int]:
            async with httpx.AsyncClient(timeout=300) as http:
                # every call sent twice at once: a client retrying on a slow answer
                return await asyncio.gather(*(send(c, http) for c in calls + calls))

        assert asyncio.run(all_calls()) == [200] * 100
    with trail(setup) as t:
        assert t.verify().ok
        decided = [e.case_id for e in t.entries(kind="decision")
                   if e.case_id.startswith("many-")]
    assert sorted(decided) == sorted(f"many-{n:02d}" for n in range(50))
