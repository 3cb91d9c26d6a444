"""The service's configuration: where it listens, whom it trusts, its limits.

A TOML file (docs/integration.md shows one), every key optional except
that a service without trusted issuers refuses every call:

    public_url = "https://cds.clinic.example"
    audit = "/var/lib/calfrehab/audit.sqlite3"

    [[issuers]]
    iss = "https://ehr.clinic.example"
    jwks_file = "ehr-jwks.json"
    algorithms = ["ES384", "RS384"]

    [limits]
    max_body_bytes = 1048576
"""

from __future__ import annotations

import ipaddress
import json
import tomllib
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from calfrehab.engine import api
from calfrehab.engine.api import CalfrehabError

# Asymmetric only: the CDS Hooks spec forbids "none" and every HMAC
# algorithm (a shared secret would let the service forge the client's tokens).
ASYMMETRIC: Final = frozenset({
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "EdDSA",
})


class ConfigError(CalfrehabError):
    """A configuration file that cannot be used; says which key and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Issuer(_Strict):
    """One trusted CDS client: its ``iss`` and its public keys: a JWK Set
    exchanged out of band (a file or inline), and/or the JWK Set URLs its
    tokens may name in a ``jku`` header (an allow-list: any other ``jku``
    is refused, and none is fetched unless listed)."""

    iss: str = Field(min_length=1)
    jwks_file: Path | None = None
    jwks: dict[str, Any] | None = None
    jku: list[str] = Field(default_factory=list)
    # The FHIR servers (URL prefixes) whose fhirServer calfrehab may fetch
    # the rest of an incomplete prefetch from, for this issuer. None listed:
    # it never fetches, and an incomplete prefetch is 412.
    fhir_servers: list[str] = Field(default_factory=list)
    algorithms: list[str] = Field(default_factory=lambda: ["ES384", "RS384"], min_length=1)

    @field_validator("algorithms")
    @classmethod
    def _asymmetric(cls, value: list[str]) -> list[str]:
        bad = [a for a in value if a not in ASYMMETRIC]
        if bad:
            raise ValueError(f"{', '.join(bad)} not allowed; use asymmetric algorithms "
                             f"({', '.join(sorted(ASYMMETRIC))})")
        return value

    @field_validator("jku")
    @classmethod
    def _https(cls, value: list[str]) -> list[str]:
        bad = [u for u in value if not u.startswith(("https://", "http://127.0.0.1",
                                                     "http://localhost"))]
        if bad:
            raise ValueError(f"{', '.join(bad)}: a jku must be https:// (loopback http only "
                             "for testing)")
        return value

    def key_set(self, base: Path) -> dict[str, Any]:
        if self.jwks is None and self.jwks_file is None and self.jku:
            return {"keys": []}  # every key comes from the allowed jku
        if (self.jwks is None) == (self.jwks_file is None):
            raise ConfigError(f"issuer {self.iss}: give exactly one of jwks_file or jwks "
                              "(or a jku allow-list)")
        if self.jwks is not None:
            return self.jwks
        assert self.jwks_file is not None
        path = self.jwks_file if self.jwks_file.is_absolute() else base / self.jwks_file
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"issuer {self.iss}: cannot read JWK Set {path}: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise ConfigError(f"issuer {self.iss}: {path} is not a JWK Set ({{\"keys\": [...]}})")
        return data


class Limits(_Strict):
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    request_timeout_s: float = Field(default=30.0, gt=0)
    decision_timeout_s: float = Field(default=10.0, gt=0)
    max_pending: int = Field(default=64, ge=1)
    max_connections: int = Field(default=256, ge=1)
    # A connection whose request headers have not all arrived by then is
    # answered 503 and closed (half-open connections must not starve others).
    header_timeout_s: float = Field(default=10.0, gt=0)
    # Fetching an issuer's JWK Set from an allowed jku: time limit, and how
    # long a fetched set is used before it is fetched again.
    jku_timeout_s: float = Field(default=5.0, gt=0)
    jku_cache_s: float = Field(default=300.0, gt=0)
    max_token_lifetime_s: int = Field(default=300, ge=1)
    clock_skew_s: int = Field(default=30, ge=0)
    remembered_cards: int = Field(default=10_000, ge=1)  # no longer used: see remember_s
    # How long issued cards, hook answers and recorded feedback are kept in
    # the service's state file (feedback and retries come within minutes).
    remember_s: float = Field(default=86_400.0, gt=0)
    # Fetching the rest of an incomplete prefetch from the record's FHIR
    # server: each request's time limit (the whole fetch gets twice it) and
    # the pages followed per search at most.
    fhir_timeout_s: float = Field(default=5.0, gt=0)
    fhir_max_pages: int = Field(default=20, ge=1)


class CheckpointSchedule(_Strict):
    """Signed heads of the trail on a schedule (docs/audit-trail.md,
    "Checkpoints"): every ``every_s`` seconds while the trail has grown, and
    once as the service stops, appended to ``log`` and signed with ``key``
    (``calfrehab audit keygen``). Relative paths are read from the
    configuration file's folder."""

    key: Path
    log: Path
    every_s: float = Field(default=3600.0, gt=0)


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    public_url: str | None = None
    audit: Path | None = None
    rules: Path | None = None
    source_url: str = "https://calfrehab.example/rules"
    issuers: list[Issuer] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    insecure_no_auth: bool = False
    # The clinic's time zone (IANA name): a hook's review date is today
    # there, not in UTC (clinical-basis.md §8: the clinic's own calendar day).
    # Unset: the clinic configuration's (calfrehab.toml, found as the CLI
    # finds it, near the cases directory), else the machine's own.
    # Checked as calfrehab.toml's clinic.time_zone is, with the same message.
    timezone: api.TimeZoneName | None = None
    # calfrehab's own record of each patient's training (docs/integration.md,
    # "The chart and calfrehab's record"): case files named by the patient's
    # identifier under this system (Patient.identifier.system), in this
    # directory; and where the clinic's calfrehab app answers, for cards'
    # links (/patients/<name>, /patients/new).
    # Browser origins allowed to call (CORS), e.g. the CDS Hooks sandbox's
    # "https://sandbox.cds-hooks.org". None by default.
    cors_origins: list[str] = Field(default_factory=list)
    cases_dir: Path | None = None
    patient_identifier_system: str | None = None
    app_url: str | None = None
    checkpoint: CheckpointSchedule | None = None
    # The configuration file's folder (load_config sets it): the program's,
    # not a key of the file, so an unknown key's message does not offer it.
    base_dir: Path = Field(default=Path("."), exclude=True)

    def resolved(self, path: Path) -> Path:
        """A path from the configuration, relative to its file's folder."""
        return path if path.is_absolute() else self.base_dir / path

    def clinic_zone(self) -> tzinfo:
        """The clinic's time zone: this configuration's, else the clinic
        configuration's (calfrehab.toml), else the machine's own."""
        if self.timezone is not None:
            return ZoneInfo(self.timezone)
        zone = api.load_config(self.cases_dir).config.zone()
        return zone if zone is not None else datetime.now().astimezone().tzinfo or UTC

    def clinic_today(self) -> date:
        """Today in the clinic's time zone: the review date of a hook."""
        return datetime.now(self.clinic_zone()).date()

    def fhir_servers_of(self, iss: str | None) -> list[str]:
        """The FHIR servers an issuer's hooks may have fetched from."""
        return [u for i in self.issuers if i.iss == iss for u in i.fhir_servers]

    def audience_base(self) -> str:
        """What a client's ``aud`` starts with: the public URL, or the
        address the service listens on."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def load_config(path: Path | None, **overrides: Any) -> ServerConfig:
    """The configuration in ``path`` (if any) with command-line overrides
    (None means "not given")."""
    data: dict[str, Any] = {}
    base = Path(".")
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read configuration {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"configuration {path} is not valid TOML: {exc}") from None
        base = path.parent
    data.update({k: v for k, v in overrides.items() if v is not None})
    data["base_dir"] = base
    try:
        config = ServerConfig.model_validate(data)
    except ValidationError as exc:
        # Worded as calfrehab.toml's problems are (one function for both).
        problems = "; ".join(api.config_problems(exc, ServerConfig))
        raise ConfigError(f"configuration {path or '(options)'}: {problems}") from None
    for issuer in config.issuers:
        issuer.key_set(base)  # fail at start, not at the first call
    if config.checkpoint is not None:
        try:  # a key that cannot sign fails at start, not at the first checkpoint
            api.audit_key_check(config.resolved(config.checkpoint.key))
        except api.AuditError as exc:
            raise ConfigError(f"configuration {path or '(options)'}: checkpoint.key: {exc}"
                              ) from None
    return config
