"""A format-1 audit trail writer, for tests of reading and migrating old
trails. calfrehab itself no longer writes format 1; this is its schema and
hash exactly as calfrehab 0.1 wrote them (docs/audit-trail.md, format 1)."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

from calfrehab.engine.canonical import canonical_json, case_sha256, sha256_hex

V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value NOT NULL);
CREATE TABLE entries (
    seq INTEGER PRIMARY KEY, entry_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('decision', 'override')),
    recorded_at TEXT NOT NULL, clinician TEXT, decision_id TEXT NOT NULL,
    case_id TEXT NOT NULL, case_sha256 TEXT NOT NULL, review_date TEXT NOT NULL,
    rulebase_version TEXT NOT NULL, rulebase_sha256 TEXT NOT NULL,
    engine_version TEXT NOT NULL, case_json TEXT, decision_json TEXT NOT NULL,
    prev_hash TEXT NOT NULL, entry_hash TEXT NOT NULL
);
CREATE UNIQUE INDEX entries_decision_once ON entries (decision_id) WHERE kind = 'decision';
CREATE INDEX entries_by_decision_id ON entries (decision_id);
CREATE INDEX entries_by_case_id ON entries (case_id);
CREATE INDEX entries_by_input ON entries (case_sha256, rulebase_sha256) WHERE kind = 'decision';
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'calfrehab audit entries are append-only'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'calfrehab audit entries are append-only'); END;
"""

V1_COLUMNS = (
    "seq", "entry_id", "kind", "recorded_at", "clinician", "decision_id", "case_id",
    "case_sha256", "review_date", "rulebase_version", "rulebase_sha256", "engine_version",
    "case_json", "decision_json", "prev_hash", "entry_hash",
)


def v1_hash(row: dict[str, Any]) -> str:
    payload = canonical_json({c: row[c] for c in V1_COLUMNS if c != "entry_hash"})
    return sha256_hex((row["prev_hash"] + payload).encode("utf-8"))


def write_v1_trail(
    path: Path,
    pairs: list[tuple[dict[str, Any], dict[str, Any]]],
    overrides: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
    journal_mode: str = "wal",
) -> str:
    """Write a format-1 trail of decisions (decision, case) then overrides
    (decision_id, clinician, reason); returns its last hash."""
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA journal_mode = {journal_mode}")
    conn.executescript(V1_SCHEMA)
    prev, seq = "0" * 64, 0
    by_id: dict[str, dict[str, Any]] = {}

    def add(row: dict[str, Any]) -> None:
        nonlocal prev, seq
        seq += 1
        row.update(seq=seq, entry_id=uuid.uuid4().hex, prev_hash=prev,
                   recorded_at=f"2026-11-20T10:00:{seq % 60:02d}.000000Z")
        row["entry_hash"] = v1_hash(row)
        conn.execute(f"INSERT INTO entries VALUES ({', '.join('?' * len(V1_COLUMNS))})",
                     [row[c] for c in V1_COLUMNS])
        prev = row["entry_hash"]

    for decision, case in pairs:
        row = {
            "kind": "decision", "clinician": "dr v1", "decision_id": decision["decision_id"],
            "case_id": decision["case_id"],
            "case_sha256": decision.get("case_sha256") or case_sha256(case),
            "review_date": decision["review_date"],
            "rulebase_version": decision["rulebase"]["version"],
            "rulebase_sha256": decision["rulebase"]["sha256"],
            "engine_version": decision.get("engine_version", ""),
            "case_json": canonical_json(case), "decision_json": canonical_json(decision),
        }
        by_id[decision["decision_id"]] = row
        add(row)
    for decision_id, clinician, reason in overrides:
        original = by_id[decision_id]
        payload = {"decision_id": decision_id, "clinician": clinician, "reason": reason,
                   "track": None, "decision": None}
        add({**{k: original[k] for k in ("case_id", "case_sha256", "review_date",
                                          "rulebase_version", "rulebase_sha256",
                                          "engine_version")},
             "kind": "override", "clinician": clinician, "decision_id": decision_id,
             "case_json": None, "decision_json": canonical_json(payload)})
    conn.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [("format", "calfrehab-audit"), ("format_version", 1),
         ("created_at", "2026-11-20T10:00:00.000000Z"), ("entry_count", seq),
         ("last_hash", prev)],
    )
    conn.commit()
    conn.close()
    return prev
