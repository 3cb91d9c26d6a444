"""Where the app listens and what it serves."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from calfrehab.app.accounts import Account

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8780
# The one user of an app on loopback with no accounts configured: the
# person at this machine. Recorded in the trail as the clinician.
LOCAL_USER = "local"


@dataclass(frozen=True)
class AppSettings:
    cases: Path
    audit: Path | None = None
    rules: Path | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    accounts: tuple[Account, ...] = ()
    # Behind a TLS-terminating proxy the app sees plain HTTP; this says the
    # browser's side is HTTPS, so cookies are marked Secure.
    behind_tls: bool = False
    # Where the accounts came from, to say so at start and in errors.
    config_path: Path | None = None
    clinic_name: str | None = None
    # The clinic's usual interval between reviews (calfrehab.toml [review]):
    # a patient last reviewed longer ago than this is due.
    review_days: int = 7
    extra: dict[str, str] = field(default_factory=dict)

    def is_loopback(self) -> bool:
        return is_loopback(self.host)

    def single_user(self) -> bool:
        """On loopback with no accounts there is one local user, signed in."""
        return not self.accounts and self.is_loopback()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
