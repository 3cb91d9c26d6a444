"""Keys from an issuer's allowed ``jku`` (CDS Hooks 2.0, "Trusting CDS
Clients"): fetched with a time limit from a JWK Set server on loopback,
cached, and only from URLs the configuration lists."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from helpers import served
from jwt.algorithms import ECAlgorithm

ISSUER = "https://ehr.jku.example"
PATH = "/cds-services"


class KeyServer:
    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.hits = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner.hits += 1
                body = json.dumps({"keys": owner.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add(self, key: ec.EllipticCurvePrivateKey, kid: str) -> None:
        jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
        self.keys.append({**jwk, "kid": kid, "alg": "ES384", "use": "sig"})


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, KeyServer]]:
    tmp = tmp_path_factory.mktemp("jku")
    keys = KeyServer()
    (tmp / "cds.toml").write_text(
        f'audit = "{tmp / "audit.sqlite3"}"\n'
        f'[[issuers]]\niss = "{ISSUER}"\njku = ["{keys.url}"]\nalgorithms = ["ES384"]\n')
    try:
        with served(["--config", str(tmp / "cds.toml")], tmp, tmp / "server.log") as base:
            yield base, keys
    finally:
        keys.httpd.shutdown()


def token(base: str, key: ec.EllipticCurvePrivateKey, kid: str, jku: str | None) -> str:
    now = int(time.time())
    header: dict[str, Any] = {"kid": kid}
    if jku is not None:
        header["jku"] = jku
    return jwt.encode({"iss": ISSUER, "aud": base + PATH, "iat": now, "exp": now + 60,
                       "jti": str(uuid.uuid4())}, key, algorithm="ES384", headers=header)


def call(base: str, bearer: str) -> httpx.Response:
    return httpx.get(base + PATH, timeout=60, headers={"Authorization": f"Bearer {bearer}"})


def test_a_key_from_the_allowed_jku_is_fetched_and_cached(
        setup: tuple[str, KeyServer]) -> None:
    base, keys = setup
    key = ec.generate_private_key(ec.SECP384R1())
    keys.add(key, "k1")
    assert call(base, token(base, key, "k1", keys.url)).status_code == 200
    hits = keys.hits
    assert call(base, token(base, key, "k1", keys.url)).status_code == 200
    assert keys.hits == hits  # the set was cached
    # a rotated key: the cache is refreshed for a kid it lacks (not within 30 s)
    other = ec.generate_private_key(ec.SECP384R1())
    keys.add(other, "k2")
    response = call(base, token(base, other, "k2", keys.url))
    assert response.status_code == 401 and "no key 'k2'" in response.text


def test_a_jku_not_on_the_allow_list_is_refused_and_not_fetched(
        setup: tuple[str, KeyServer]) -> None:
    base, keys = setup
    key = ec.generate_private_key(ec.SECP384R1())
    hits = keys.hits
    response = call(base, token(base, key, "k1", keys.url + "?evil=1"))
    assert response.status_code == 401
    assert "not an allowed JWK Set URL" in response.json()["error"]["message"]
    assert keys.hits == hits
    response = call(base, token(base, key, "zz", None))  # no jku, no configured key
    assert response.status_code == 401


def test_a_token_signed_by_another_key_with_a_served_kid_is_refused(
        setup: tuple[str, KeyServer]) -> None:
    base, keys = setup
    forger = ec.generate_private_key(ec.SECP384R1())
    response = call(base, token(base, forger, "k1", keys.url))
    assert response.status_code == 401 and "signature" in response.text
