"""Sign-in sessions, CSRF tokens and the headers every response carries.

Sessions live in this process's memory, keyed by a random id in a cookie
that is HttpOnly, SameSite=Strict, and Secure when the browser's side is
HTTPS: nothing about the user is in the cookie, and a restart signs
everyone out. Each session has its own CSRF token, which every form
carries in a hidden field; a POST without it, or with another, is refused
with 403 before anything is read or written.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Final

COOKIE: Final = "calfrehab_session"
CSRF_FIELD: Final = "csrf"
# A clinic's working day: a session idle for longer signs in again.
IDLE_LIMIT_S: Final = 8 * 3600

# No script at all: the pages work without one. Styles from the app's own
# stylesheet only; forms post to the app only; no framing.
PAGE_CSP: Final = ("default-src 'none'; script-src 'none'; style-src 'self'; "
                   "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; "
                   "base-uri 'none'")
# The report and the handout are self-contained documents with their own
# stylesheet inline (a <style> element, not a script): allowed that, and
# still no script.
DOCUMENT_CSP: Final = ("default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; "
                       "img-src data:; form-action 'none'; frame-ancestors 'none'; "
                       "base-uri 'none'")


def security_headers(csp: str = PAGE_CSP) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        # Patient data: never kept in a shared cache or the back-forward cache.
        "Cache-Control": "no-store",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


@dataclass
class Session:
    sid: str
    user: str
    csrf: str
    last_seen: float = field(default_factory=time.monotonic)


class Sessions:
    """The signed-in sessions of this process."""

    def __init__(self) -> None:
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()

    def start(self, user: str) -> Session:
        session = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32))
        with self._lock:
            self._expire()
            self._by_id[session.sid] = session
        return session

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        with self._lock:
            session = self._by_id.get(sid)
            if session is None:
                return None
            now = time.monotonic()
            if now - session.last_seen > IDLE_LIMIT_S:
                del self._by_id[sid]
                return None
            session.last_seen = now
            return session

    def end(self, sid: str | None) -> None:
        with self._lock:
            self._by_id.pop(sid or "", None)

    def _expire(self) -> None:
        now = time.monotonic()
        for sid in [s for s, v in self._by_id.items() if now - v.last_seen > IDLE_LIMIT_S]:
            del self._by_id[sid]


def csrf_ok(session: Session | None, sent: str | None) -> bool:
    if session is None or not sent:
        return False
    return hmac.compare_digest(session.csrf.encode(), sent.encode())
