"""Authenticating CDS clients: a signed JWT per request (CDS Hooks 2.0,
"Trusting CDS Clients").

Checked, in order: a Bearer token; a header naming an allowed asymmetric
algorithm and a key id; an issuer on the trusted list; a ``jku`` header, if
any, on that issuer's allow-list; the signature against that issuer's key
with that id (configured, or from the allowed ``jku``, fetched and cached);
``aud`` equal to the URL called; ``exp``, ``iat`` and ``jti`` present and
well-typed; the token not expired, not issued in the future, living no
longer than the configured lifetime; and its ``jti`` not seen before (a
replayed token is refused, after a restart too: the service's state file).
A token signed but malformed is refused like any other, never a 500.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWKSet

from calfrehab.server.config import ServerConfig


class AuthError(Exception):
    """A request that is not authenticated; the message says why (it is
    sent back to the client, never the token itself)."""


@dataclass(frozen=True)
class Client:
    iss: str
    sub: str | None
    tenant: str | None
    jti: str
    # The user the record system vouches for, when its token names one (a
    # SMART-style fhirUser claim, e.g. "Practitioner/123").
    fhir_user: str | None = None

    def who(self) -> str:
        """The clinician to record: the token's fhirUser, else the client
        itself (its sub at its issuer). Never the request body's userId,
        which nothing authenticates."""
        if self.fhir_user:
            return self.fhir_user
        return f"{self.sub} ({self.iss})" if self.sub else self.iss


@dataclass(frozen=True)
class _Trusted:
    iss: str
    keys: PyJWKSet | None  # None: every key comes from an allowed jku
    algorithms: frozenset[str]
    jku: frozenset[str]


class _JkuCache:
    """JWK Sets fetched from allowed ``jku`` URLs: kept ``ttl_s``, fetched
    within ``timeout_s``, fetched again early (at most every 30 s) when a
    token names a key id the cached set lacks (a rotated key)."""

    def __init__(self, timeout_s: float, ttl_s: float, clock: Callable[[], float]) -> None:
        self._timeout, self._ttl, self._clock = timeout_s, ttl_s, clock
        self._sets: dict[str, tuple[PyJWKSet, float]] = {}
        self._lock = threading.Lock()

    def key(self, url: str, kid: str) -> Any:
        now = self._clock()
        with self._lock:
            cached = self._sets.get(url)
        fresh = cached is not None and now - cached[1] < self._ttl
        if cached is not None and fresh:
            try:
                return cached[0][kid]
            except KeyError:
                if now - cached[1] < 30:
                    raise AuthError(f"the JWK Set at {url} has no key {kid!r}") from None
        keys = self._fetch(url)
        with self._lock:
            self._sets[url] = (keys, now)
        try:
            return keys[kid]
        except KeyError:
            raise AuthError(f"the JWK Set at {url} has no key {kid!r}") from None

    def _fetch(self, url: str) -> PyJWKSet:
        import httpx

        try:
            response = httpx.get(url, timeout=self._timeout, follow_redirects=False,
                                 headers={"Accept": "application/json"})
            response.raise_for_status()
            return PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            raise AuthError(f"the JWK Set at {url} could not be fetched: "
                            f"{str(exc) or type(exc).__name__}") from None


class Verifier:
    """Verifies tokens against the configured issuers. Thread-safe."""

    def __init__(self, config: ServerConfig, clock: Callable[[], float] = time.time,
                 first_use: Callable[[str, str, float], bool] | None = None) -> None:
        # first_use(iss, jti, exp): records a token id, False if seen before
        # (the service's state file, so a restart forgets nothing); without
        # it, token ids are kept in memory.
        self._first_use = first_use
        self._limits = config.limits
        self._clock = clock
        self._trusted: dict[str, _Trusted] = {}
        for issuer in config.issuers:
            data = issuer.key_set(config.base_dir)
            key_set = PyJWKSet.from_dict(data) if data["keys"] else None
            self._trusted[issuer.iss] = _Trusted(issuer.iss, key_set,
                                                 frozenset(issuer.algorithms),
                                                 frozenset(issuer.jku))
        self._jku = _JkuCache(config.limits.jku_timeout_s, config.limits.jku_cache_s, clock)
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def verify(self, authorization: str | None, audience: str) -> Client:
        try:
            return self._verify(authorization, audience)
        except AuthError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError):
            # A signed token whose header or claims have the wrong types (an
            # algorithm list, a numeric kid, a text iat): not a server fault.
            raise AuthError("the JWT is malformed: a header field or claim has the wrong "
                            "type") from None

    def _verify(self, authorization: str | None, audience: str) -> Client:
        if not authorization:
            raise AuthError("no Authorization header: send 'Authorization: Bearer <JWT>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("the Authorization header must be 'Bearer <JWT>'")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthError(f"not a JWT: {exc}") from None
        iss = unverified.get("iss")
        trusted = self._trusted.get(iss) if isinstance(iss, str) else None
        if trusted is None:
            raise AuthError(f"issuer {iss!r} is not trusted")
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in trusted.algorithms:
            raise AuthError(f"algorithm {alg!r} is not allowed for issuer {iss} "
                            f"(allowed: {', '.join(sorted(trusted.algorithms))})")
        if not isinstance(kid, str) or not kid:
            raise AuthError("the JWT header has no kid")
        jku = header.get("jku")
        if jku is not None and (not isinstance(jku, str) or jku not in trusted.jku):
            raise AuthError(f"the JWT's jku {jku!r} is not an allowed JWK Set URL of issuer "
                            f"{iss}")
        try:
            if trusted.keys is None:
                raise KeyError(kid)
            key = trusted.keys[kid]
        except KeyError:
            if jku is None:
                raise AuthError(f"issuer {iss} has no key {kid!r}") from None
            key = self._jku.key(jku, kid)
        now = self._clock()
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key=key.key, algorithms=[alg], audience=audience, issuer=iss,
                leeway=self._limits.clock_skew_s,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("the JWT has expired") from None
        except jwt.InvalidAudienceError:
            raise AuthError(f"the JWT's aud is not {audience}") from None
        except jwt.InvalidSignatureError:
            raise AuthError("the JWT's signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"the JWT is not valid: {exc}") from None
        exp, iat, jti = claims["exp"], claims["iat"], claims["jti"]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (exp, iat)):
            raise AuthError("the JWT's exp and iat must be numbers")
        if not isinstance(jti, str) or not jti:
            raise AuthError("the JWT's jti must be a non-empty string")
        if iat > now + self._limits.clock_skew_s:
            raise AuthError("the JWT was issued in the future")
        if exp - iat > self._limits.max_token_lifetime_s:
            raise AuthError(f"the JWT lives {exp - iat:.0f} s; at most "
                            f"{self._limits.max_token_lifetime_s} s is accepted")
        self._once(trusted.iss, jti, float(exp), now)
        sub, tenant, user = claims.get("sub"), claims.get("tenant"), claims.get("fhirUser")
        return Client(trusted.iss, sub if isinstance(sub, str) else None,
                      tenant if isinstance(tenant, str) else None, jti,
                      user if isinstance(user, str) and user else None)

    def _once(self, iss: str, jti: str, exp: float, now: float) -> None:
        if self._first_use is not None:
            if not self._first_use(iss, jti, exp + self._limits.clock_skew_s):
                raise AuthError("this JWT (jti) was already used: tokens are one-time")
            return
        with self._lock:
            # Forget tokens that have expired: they are refused on exp alone.
            horizon = now - self._limits.clock_skew_s
            for key in [k for k, until in self._seen.items() if until < horizon]:
                del self._seen[key]
            if (iss, jti) in self._seen:
                raise AuthError("this JWT (jti) was already used: tokens are one-time")
            self._seen[(iss, jti)] = exp
