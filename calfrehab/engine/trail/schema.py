"""The audit trail's on-disk layout, format versions 1 to 4.

Version 2 (written since calfrehab 0.2) differs from version 1 in how the
documents are kept, not in what an entry says:

* a case document is stored once, in ``cases``, keyed by the sha256 of its
  canonical bytes, however many decisions were made for it;
* documents are zlib streams of their canonical bytes with a preset
  dictionary (:mod:`.codec`); the dictionaries live in ``dictionaries``;
* an entry's hash covers the sha256 of each document's canonical bytes
  (``case_body_sha256``, ``decision_body_sha256``) rather than the
  documents themselves, so the parent of a batch hashes a few short
  strings per entry, and the documents are hashed once, where they are
  serialised (in the worker);
* an entry migrated from version 1 keeps its version-1 hash in
  ``v1_hash`` (itself covered by the version-2 hash), so a head written
  down before the migration still checks out after it.

Version 3 (this issue's) adds to version 2, and changes nothing it had:

* a third entry kind, ``accepted``: a decision (or the override of it that
  the clinician chose) applied to the case's programme, its payload naming
  the override's entry id and the sha256 of the programme written;
* an override payload may carry the clinician's own prescription per track;
* a ``requester`` column: who asked (CDS Hooks ``hookInstance``, the token's
  ``iss`` and ``sub``, ``fhirServer``), as canonical JSON, covered by the
  entry hash. A column added in version 3 is left out of the hashed object
  while it is null, so every entry version 2 wrote keeps its hash: a head
  written down before the upgrade still checks out, unchanged.

Version 4 has version 3's tables, columns and hashes; only the stored
documents differ: zstd frames (RFC 8878) with the same preset
dictionaries, behind a skippable frame naming the dictionary, instead of
zlib streams (:mod:`.codec`). Every hash covers uncompressed bytes, so
migrating 3 -> 4 recompresses the documents and changes no hash.

Versions 1 and 2 are read (every ``audit`` command) and migrated
(:mod:`.migrate`), never written. Version 3 is read, migrated, and still
appended to with zlib until it is migrated (so one file never mixes the
two codecs); new trails are version 4.
"""

from __future__ import annotations

import sqlite3
from typing import Final

__all__ = [
    "CASES_APPEND_ONLY",
    "CREATE_FOLLOW_UPS",
    "ENTRIES_V4_INDEXES",
    "ENTRY_COLUMNS",
    "ENTRY_KINDS",
    "FOLLOW_UPS_INDEX",
    "FOLLOW_UPS_WHERE",
    "FORMAT",
    "FORMAT_VERSION",
    "GENESIS_HASH",
    "HASHED_COLUMNS",
    "NULL_OMITTED_COLUMNS",
    "READABLE_VERSIONS",
    "SCHEMA_V3",
    "SCHEMA_V4",
    "SUPERSEDED_INDEXES",
    "TEXT_COLUMNS",
    "V1_ENTRY_COLUMNS",
    "V1_HASHED_COLUMNS",
    "V2_ENTRY_COLUMNS",
    "WRITABLE_VERSIONS",
    "split_sql",
]

FORMAT: Final = "calfrehab-audit"
FORMAT_VERSION: Final = 4
READABLE_VERSIONS: Final = (1, 2, 3, 4)
# Version 3 is appended to as it is (zlib documents) until `audit migrate`:
# a clinic's running installations need not stop for the upgrade.
WRITABLE_VERSIONS: Final = (3, 4)
ENTRY_KINDS: Final = ("decision", "override", "accepted")
GENESIS_HASH: Final = "0" * 64

# Version 1: the documents as canonical JSON text in the row.
V1_ENTRY_COLUMNS: Final = (
    "seq",
    "entry_id",
    "kind",
    "recorded_at",
    "clinician",
    "decision_id",
    "case_id",
    "case_sha256",
    "review_date",
    "rulebase_version",
    "rulebase_sha256",
    "engine_version",
    "case_json",
    "decision_json",
    "prev_hash",
    "entry_hash",
)
V1_HASHED_COLUMNS: Final = tuple(c for c in V1_ENTRY_COLUMNS if c != "entry_hash")

# Version 2. Column order is part of the format only through the names: the
# hash is over a JSON object with sorted keys.
V2_ENTRY_COLUMNS: Final = (
    "seq",
    "entry_id",
    "kind",
    "recorded_at",
    "clinician",
    "decision_id",
    "case_id",
    "case_sha256",
    "review_date",
    "rulebase_version",
    "rulebase_sha256",
    "engine_version",
    "case_body_sha256",
    "decision_body_sha256",
    "decision_body",
    "v1_hash",
    "prev_hash",
    "entry_hash",
)
# Version 3: version 2 and who asked. Columns added after version 2 are
# hashed only when they hold a value (NULL_OMITTED_COLUMNS), so a version-2
# entry has the same hash under either version's rule.
NULL_OMITTED_COLUMNS: Final = ("requester",)
ENTRY_COLUMNS: Final = (
    *V2_ENTRY_COLUMNS[: V2_ENTRY_COLUMNS.index("prev_hash")],
    *NULL_OMITTED_COLUMNS,
    "prev_hash",
    "entry_hash",
)
# decision_body is covered through decision_body_sha256 (the hash of what
# it decompresses to), never by its compressed bytes.
HASHED_COLUMNS: Final = tuple(c for c in ENTRY_COLUMNS if c not in ("entry_hash", "decision_body"))
# Columns that must hold text (or NULL where the schema allows it): a BLOB or
# a number there is damage, reported as such rather than shown.
TEXT_COLUMNS: Final = (
    "entry_id",
    "kind",
    "recorded_at",
    "clinician",
    "decision_id",
    "case_id",
    "case_sha256",
    "review_date",
    "rulebase_version",
    "rulebase_sha256",
    "engine_version",
    "case_body_sha256",
    "decision_body_sha256",
    "case_json",
    "decision_json",
    "v1_hash",
    "requester",
    "prev_hash",
    "entry_hash",
)

_APPEND_ONLY: Final = """
CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}
BEGIN SELECT RAISE(ABORT, 'calfrehab audit {table} are append-only'); END;
CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table}
BEGIN SELECT RAISE(ABORT, 'calfrehab audit {table} are append-only'); END;
"""

# The entries table under a placeholder name, so that migration can build
# it beside a version-1 table before swapping the two.
ENTRIES_V2_TABLE: Final = """
CREATE TABLE {name} (
    seq                  INTEGER PRIMARY KEY,
    entry_id             TEXT NOT NULL UNIQUE,
    kind                 TEXT NOT NULL CHECK (kind IN ('decision', 'override')),
    recorded_at          TEXT NOT NULL,
    clinician            TEXT,
    decision_id          TEXT NOT NULL,
    case_id              TEXT NOT NULL,
    case_sha256          TEXT NOT NULL,
    review_date          TEXT NOT NULL,
    rulebase_version     TEXT NOT NULL,
    rulebase_sha256      TEXT NOT NULL,
    engine_version       TEXT NOT NULL,
    case_body_sha256     TEXT,
    decision_body_sha256 TEXT NOT NULL,
    decision_body        BLOB NOT NULL,
    v1_hash              TEXT,
    prev_hash            TEXT NOT NULL,
    entry_hash           TEXT NOT NULL
);
"""

# Version 3: the kinds include 'accepted', and who asked is a column.
ENTRIES_V3_TABLE: Final = """
CREATE TABLE {name} (
    seq                  INTEGER PRIMARY KEY,
    entry_id             TEXT NOT NULL UNIQUE,
    kind                 TEXT NOT NULL CHECK (kind IN ('decision', 'override', 'accepted')),
    recorded_at          TEXT NOT NULL,
    clinician            TEXT,
    decision_id          TEXT NOT NULL,
    case_id              TEXT NOT NULL,
    case_sha256          TEXT NOT NULL,
    review_date          TEXT NOT NULL,
    rulebase_version     TEXT NOT NULL,
    rulebase_sha256      TEXT NOT NULL,
    engine_version       TEXT NOT NULL,
    case_body_sha256     TEXT,
    decision_body_sha256 TEXT NOT NULL,
    decision_body        BLOB NOT NULL,
    v1_hash              TEXT,
    requester            TEXT,
    prev_hash            TEXT NOT NULL,
    entry_hash           TEXT NOT NULL
);
"""

ENTRIES_V2_INDEXES: Final = """
-- A decision is recorded once; overrides point at it by decision_id.
CREATE UNIQUE INDEX entries_decision_once ON entries (decision_id) WHERE kind = 'decision';
CREATE INDEX entries_by_decision_id ON entries (decision_id);
CREATE INDEX entries_by_case_id ON entries (case_id);
-- batch --resume asks "was this case already decided under this rulebase?"
CREATE INDEX entries_by_input ON entries (case_sha256, rulebase_sha256) WHERE kind = 'decision';
""" + _APPEND_ONLY.format(table="entries")

SIDE_TABLES: Final = (
    """
CREATE TABLE IF NOT EXISTS cases (
    sha256 TEXT PRIMARY KEY NOT NULL,  -- of the canonical case bytes
    body   BLOB NOT NULL               -- zstd (v4) or zlib (v2, v3) of them (codec.py)
);
CREATE TABLE IF NOT EXISTS dictionaries (
    id     INTEGER PRIMARY KEY,        -- Adler-32 of body (zlib DICTID; v4's skippable frame)
    sha256 TEXT NOT NULL,
    body   BLOB NOT NULL
);
"""
)

# The indexes and triggers are the same in version 3 (the table is rebuilt
# by the migration, which drops them with the old table).
ENTRIES_V3_INDEXES: Final = ENTRIES_V2_INDEXES

# The follow-ups of a decision (its overrides and acceptances) by
# decision_id. Partial: a decision is found through entries_decision_once,
# so indexing decisions a second time only cost every batch insert a
# B-tree of random keys (measured: 10,000 prepared entries, the parent's
# CPU 3-5 us a case less without it). A query uses it only when its WHERE
# holds this very term, ``kind <> 'decision'`` (SQLite's rule for partial
# indexes), so every follow-up query spells it (audit.py).
FOLLOW_UPS_INDEX: Final = "entries_follow_ups"
FOLLOW_UPS_WHERE: Final = "kind <> 'decision'"
CREATE_FOLLOW_UPS: Final = (
    f"CREATE INDEX IF NOT EXISTS {FOLLOW_UPS_INDEX} ON entries (decision_id) "
    f"WHERE {FOLLOW_UPS_WHERE}"
)
# What entries_follow_ups replaces: every trail created before it has it.
SUPERSEDED_INDEXES: Final = ("entries_by_decision_id",)

# Trails created (or migrated to version 4) since: version 3's indexes
# with the follow-ups index in place of entries_by_decision_id. Indexes are
# not part of what a reader needs (no hash covers them, every query
# answers the same without them), so this is no new format version: a
# version-4 trail made before keeps its indexes, and `audit migrate`
# brings them to this set (:func:`.migrate.migrate`).
ENTRIES_V4_INDEXES: Final = ENTRIES_V3_INDEXES.replace(
    "CREATE INDEX entries_by_decision_id ON entries (decision_id);",
    CREATE_FOLLOW_UPS.replace("IF NOT EXISTS ", "") + ";",
)

SCHEMA_V3: Final = (
    """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value NOT NULL            -- no declared type: format_version stays an integer
);
"""
    + SIDE_TABLES
    + _APPEND_ONLY.format(table="cases")
    + _APPEND_ONLY.format(table="dictionaries")
    + ENTRIES_V3_TABLE.format(name="entries")
    + ENTRIES_V3_INDEXES
)


# What a migration that rebuilds ``cases`` puts back (dropped with the table).
CASES_APPEND_ONLY: Final = _APPEND_ONLY.format(table="cases")

# Version 4's tables are version 3's: only what the blobs hold differs
# (and the follow-ups index, above).
SCHEMA_V4: Final = SCHEMA_V3.replace(ENTRIES_V3_INDEXES, ENTRIES_V4_INDEXES)


def split_sql(script: str) -> list[str]:
    """Split a schema into statements; trigger bodies hold their own ';'."""
    statements: list[str] = []
    current: list[str] = []
    for line in script.splitlines():
        stripped = line.split("--", 1)[0].rstrip()
        if not stripped:
            continue
        current.append(stripped)
        text = "\n".join(current)
        if sqlite3.complete_statement(text):
            statements.append(text)
            current = []
    if current:
        raise AssertionError("incomplete statement in schema")
    return statements
