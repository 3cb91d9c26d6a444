"""The service's own state, kept across restarts: the cards it issued (so
feedback after a restart still finds its decision), the token ids it has
seen (so a token is not accepted again after a restart), the answer to
each hook call (so a client's retry with the same ``hookInstance`` gets the
recorded decision instead of a second one), and the feedback recorded (so
the same feedback sent twice is recorded once).

One SQLite file of its own beside the audit trail (``<trail>.cds-state``),
never the trail's tables: the trail is an append-only, hash-chained record
of decisions, this is a cache with expiry. Rows expire: cards and hook
answers after ``remember_s`` (a day by default), token ids when the token
would have expired anyway.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from calfrehab.engine import api

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cards (
    card TEXT PRIMARY KEY, body TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS jtis (
    iss TEXT NOT NULL, jti TEXT NOT NULL, expires REAL NOT NULL, PRIMARY KEY (iss, jti));
CREATE TABLE IF NOT EXISTS hooks (
    caller TEXT NOT NULL, hook_instance TEXT NOT NULL, response TEXT NOT NULL,
    expires REAL NOT NULL, PRIMARY KEY (caller, hook_instance));
CREATE TABLE IF NOT EXISTS feedback (
    card TEXT NOT NULL, outcome TEXT NOT NULL, recorded REAL NOT NULL,
    PRIMARY KEY (card, outcome));
"""


def state_path(audit: Path | None) -> Path:
    """The state file beside the trail the service records in."""
    trail = api.trail_location(audit)
    return trail.with_name(trail.name + ".cds-state")


class ServiceState:
    """Thread-safe; every method is one short transaction."""

    def __init__(self, path: Path, remember_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._remember = remember_s
        self._lock = threading.Lock()
        fresh = not path.exists()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        if fresh:
            path.chmod(0o600)  # it names patients' cases, as the trail does
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self.expire()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def expire(self) -> None:
        now = self._clock()
        with self._lock:
            for table in ("cards", "jtis", "hooks"):
                self._db.execute(f"DELETE FROM {table} WHERE expires < ?", (now,))
            self._db.execute("DELETE FROM feedback WHERE recorded < ?", (now - self._remember,))

    # ------------------------------------------------------------- tokens

    def first_use(self, iss: str, jti: str, expires: float) -> bool:
        """Record a token id; False if it was seen before (a replay)."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO jtis (iss, jti, expires) VALUES (?, ?, ?)",
                (iss, jti, expires))
            return cursor.rowcount == 1

    # -------------------------------------------------------------- cards

    def remember(self, cards: list[api.IssuedCard]) -> None:
        until = self._clock() + self._remember
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO cards (card, body, expires) VALUES (?, ?, ?)",
                [(c.card, json.dumps(_card_dict(c)), until) for c in cards])
            self._db.execute("COMMIT")

    def card(self, card: str) -> api.IssuedCard | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM cards WHERE card = ? AND expires >= ?",
                                   (card, self._clock())).fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        data["suggestions"] = tuple(data["suggestions"])
        return api.IssuedCard(**data)

    # --------------------------------------------------------------- hooks

    def answer(self, caller: str, hook_instance: str) -> Any:
        """The response recorded for this call, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT response FROM hooks WHERE caller = ? AND hook_instance = ? "
                "AND expires >= ?", (caller, hook_instance, self._clock())).fetchone()
        return None if row is None else json.loads(row[0])

    def answered(self, caller: str, hook_instance: str, response: Any) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO hooks (caller, hook_instance, response, expires) "
                "VALUES (?, ?, ?, ?)",
                (caller, hook_instance, json.dumps(response), self._clock() + self._remember))

    # ------------------------------------------------------------ feedback

    def feedback_seen(self, card: str, outcome: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM feedback WHERE card = ? AND outcome = ?",
                                   (card, outcome)).fetchone()
        return row is not None

    def feedback_recorded(self, card: str, outcome: str) -> bool:
        """Mark feedback recorded; False if it already was."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO feedback (card, outcome, recorded) VALUES (?, ?, ?)",
                (card, outcome, self._clock()))
            return cursor.rowcount == 1


def _card_dict(card: api.IssuedCard) -> dict[str, Any]:
    return {"card": card.card, "decision_id": card.decision_id, "case_id": card.case_id,
            "track": card.track, "decision": card.decision,
            "suggestions": list(card.suggestions), "clinician": card.clinician}
