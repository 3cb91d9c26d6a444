"""Upgrade a format-1, 2 or 3 audit trail to format 4, in place (format 1
through 2 and 3, format 2 through 3).

Format 3 -> 4 changes no hash either: version 4 stores the documents as
zstd frames instead of zlib streams (:mod:`.codec`), and every hash covers
the uncompressed bytes. The ``cases`` and ``entries`` tables are rebuilt
with every document recompressed (both are append-only, so they are
copied rather than updated), in one transaction that verifies the
format-3 chain first, checks each recompressed document against the bytes
it came from, swaps the tables, and verifies the result against the head
it started from, all under the write lock. Interrupted, it leaves the
format-3 trail exactly as it was; run it again to start over.

Format 2 -> 3 changes no hash: version 3 adds a column (``requester``)
that is hashed only when it holds a value, and a kind (``accepted``). The
entries table is rebuilt (SQLite cannot widen the kind's CHECK in place)
in one transaction that verifies the format-2 chain, copies every row's
values as they are, swaps the tables and verifies the result, all under
the write lock: the head written down before the upgrade is the head
after it, and nothing can be appended in between.

In place: the same file, so the clinic's paths, backups and permissions
stay as they are. Verified before and after: a trail that does not verify
is not migrated (the evidence of tampering is left exactly as found), and
the upgraded trail is verified again once the swap has committed.

Atomic and resumable: the version-2 entries are built beside the
version-1 table (``entries_v2``), a chunk per transaction, so an
interrupted migration loses at most one chunk and the next run carries on
from the last entry copied. The switch (drop the version-1 table, rename
the new one, set ``format_version = 2``) is one transaction, taken only
after the copy has been checked entry by entry against the version-1
chain: every copied entry keeps its version-1 hash (``v1_hash``), which
is recomputed from the copied documents, so the new chain provably holds
the very bytes the old head vouched for. A reader sees version 1 or
version 2, never a mixture.

What the migration changes: every entry's hash (the version-2 hash covers
the documents' sha256s, not their text). The version-1 head stays
checkable: ``meta.v1_entry_count``/``v1_last_hash`` and each entry's
``v1_hash`` match what ``audit verify`` printed before the migration.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from calfrehab.engine.canonical import sha256_hex
from calfrehab.engine.clock import Clock, utc_now, utc_stamp
from calfrehab.engine.trail import codec
from calfrehab.engine.trail.audit import AuditTrail
from calfrehab.engine.trail.chain import entry_hash, verify_rows
from calfrehab.engine.trail.connection import regular_size
from calfrehab.engine.trail.errors import AuditError
from calfrehab.engine.trail.schema import (
    CASES_APPEND_ONLY,
    CREATE_FOLLOW_UPS,
    ENTRIES_V2_INDEXES,
    ENTRIES_V2_TABLE,
    ENTRIES_V3_INDEXES,
    ENTRIES_V3_TABLE,
    ENTRIES_V4_INDEXES,
    ENTRY_COLUMNS,
    FORMAT_VERSION,
    GENESIS_HASH,
    NULL_OMITTED_COLUMNS,
    SIDE_TABLES,
    SUPERSEDED_INDEXES,
    V1_ENTRY_COLUMNS,
    V2_ENTRY_COLUMNS,
    split_sql,
)

__all__ = ["DEFAULT_CHUNK", "MigrationReport", "migrate"]

DEFAULT_CHUNK: Final = 2000
_STAGING: Final = "entries_v2"
_STAGING_V3: Final = "entries_v3"
_STAGING_V4: Final = "entries_v4"
_STAGING_CASES: Final = "cases_v4"
_TRIGGERS: Final = """
CREATE TRIGGER IF NOT EXISTS cases_no_update BEFORE UPDATE ON cases
BEGIN SELECT RAISE(ABORT, 'calfrehab audit cases are append-only'); END;
CREATE TRIGGER IF NOT EXISTS cases_no_delete BEFORE DELETE ON cases
BEGIN SELECT RAISE(ABORT, 'calfrehab audit cases are append-only'); END;
CREATE TRIGGER IF NOT EXISTS dictionaries_no_update BEFORE UPDATE ON dictionaries
BEGIN SELECT RAISE(ABORT, 'calfrehab audit dictionaries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS dictionaries_no_delete BEFORE DELETE ON dictionaries
BEGIN SELECT RAISE(ABORT, 'calfrehab audit dictionaries are append-only'); END;
"""


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What :func:`migrate` did. ``from_version == to_version`` means the
    trail was already current and nothing was changed. ``resumed_at`` is
    the number of entries an interrupted earlier run had already copied.
    ``indexes_updated``: a current trail's indexes were brought to the
    current set (:data:`~.schema.ENTRIES_V4_INDEXES`); no row changed."""

    path: str
    from_version: int
    to_version: int
    entries: int
    resumed_at: int
    v1_last_hash: str | None
    last_hash: str
    bytes_before: int
    bytes_after: int
    indexes_updated: bool = False


def _size(path: Path) -> int:
    total = 0
    for suffix in ("", "-wal"):
        with contextlib.suppress(OSError):
            total += os.stat(f"{path}{suffix}").st_size
    return total


def migrate(
    path: str | os.PathLike[str],
    *,
    chunk: int = DEFAULT_CHUNK,
    vacuum: bool = True,
    clock: Clock | None = None,
    stop_after_chunks: int | None = None,
) -> MigrationReport:
    """Upgrade the trail at ``path`` to the current format, in place.

    ``vacuum`` rewrites the file afterwards so the space the older format
    took is given back. ``stop_after_chunks`` stops a format-1 migration
    (as a crash would, for tests and for spreading a large migration over
    several runs) after that many chunks, before the switch; run again to
    carry on.
    """
    target = Path(path)
    if not regular_size(target):  # a FIFO or a device is refused, not opened
        raise AuditError(f"no audit trail at {target}: nothing to migrate")
    before = _size(target)
    now = clock or utc_now
    with AuditTrail(target, clock=clock, create=False) as trail:
        from_version = trail.version
        if from_version == FORMAT_VERSION:
            try:
                updated = _current_indexes(trail._connection())
            except sqlite3.Error as exc:
                raise AuditError(f"audit trail {target}: cannot migrate it: {exc}") from exc
            count, head = trail.head()
            return MigrationReport(
                str(target), FORMAT_VERSION, FORMAT_VERSION, count, 0, None, head, before,
                _size(target), indexes_updated=updated,
            )
        conn = trail._connection()
        resumed_at, v1_head = 0, None
        try:
            if from_version == 1:
                report = trail.verify()
                if not report.ok:
                    raise AuditError(
                        f"audit trail {target} does not verify ({report.problem}); refusing "
                        "to migrate it, so that the evidence stays as it is"
                    )
                resumed_at, v1_head, copied = _copy_and_switch(
                    conn, chunk, now, stop_after_chunks
                )
                if copied is None:  # stopped before the switch, on request
                    return MigrationReport(
                        str(target), 1, 1, resumed_at, resumed_at, v1_head, GENESIS_HASH,
                        before, _size(target),
                    )
            if from_version <= 2:
                _v2_to_v3(conn, target, now)
            total, head = _v3_to_v4(conn, target, now)
        except sqlite3.Error as exc:
            raise AuditError(f"audit trail {target}: cannot migrate it: {exc}") from exc
        if vacuum:
            try:
                conn.execute("VACUUM")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass  # only space is lost; the trail is complete either way
    # Checked against this migration's own result, not against the trail's
    # end: other processes may record as soon as the switch commits, so the
    # trail must verify and pass through the head the switch left.
    with AuditTrail(target, readonly=True) as upgraded:
        after = upgraded.verify()
        at_head = upgraded.hash_at(total) if after.ok and after.entries_checked >= total else None
        if not after.ok or at_head != (head if total else None):
            why = after.problem or (
                f"entry {total} is no longer the head the migration wrote ({head[:12]}…)"
            )
            raise AuditError(
                f"audit trail {target} was migrated but does not verify afterwards "
                f"({why}); keep the file as it is and report this"
            )
    return MigrationReport(
        str(target), from_version, FORMAT_VERSION, total, resumed_at, v1_head, head, before,
        _size(target),
    )


@contextlib.contextmanager
def _write_locked(conn: sqlite3.Connection) -> Iterator[None]:
    """The trail's write lock (``BEGIN IMMEDIATE``) for the body, which
    commits or rolls back itself; on any exception, what is not committed is
    rolled back and the exception goes on (a migration step changes all or
    nothing)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _v2_to_v3(conn: sqlite3.Connection, target: Path, clock: Clock) -> tuple[int, str]:
    """Format 2 -> 3 in one write transaction: verify, copy, swap, verify.
    Returns the head (entry count, last hash), the same before and after."""
    with _write_locked(conn):
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("format_version") != 2:
            # Another migration won the race for the lock: nothing to do.
            conn.execute("ROLLBACK")
            return int(meta["entry_count"]), str(meta["last_hash"])
        dictionaries, before = _verified_before(conn, target, V2_ENTRY_COLUMNS, 2, meta)
        conn.execute(f"DROP TABLE IF EXISTS {_STAGING_V3}")
        for statement in split_sql(ENTRIES_V3_TABLE.format(name=_STAGING_V3)):
            conn.execute(statement)
        v2_columns = ", ".join(V2_ENTRY_COLUMNS)
        added = ", ".join(NULL_OMITTED_COLUMNS)
        nulls = ", ".join("NULL" for _ in NULL_OMITTED_COLUMNS)
        # Every value as stored, byte for byte: the hashes cover them.
        conn.execute(
            f"INSERT INTO {_STAGING_V3} ({v2_columns}, {added}) "
            f"SELECT {v2_columns}, {nulls} FROM entries ORDER BY seq"
        )
        conn.execute("DROP TABLE entries")
        conn.execute(f"ALTER TABLE {_STAGING_V3} RENAME TO entries")
        for statement in split_sql(ENTRIES_V3_INDEXES):
            conn.execute(statement)
        _commit_verified(conn, target, 3, before, dictionaries, clock)
    return before.entries_checked, before.last_hash


def _recompressed(kind: codec.DocumentKind, blob: Any, dictionaries: dict[int, bytes]) -> Any:
    """A stored document as format 4 stores it; checked to hold the very
    bytes it held before. A blob that is not bytes is left as it is, for
    the verification to report."""
    if not isinstance(blob, bytes) or codec.is_zstd(blob):
        return blob
    try:
        raw = codec.decompress(blob, dictionaries)
    except codec.CodecError:
        return blob  # damage: verification names it, nothing is migrated
    packed = codec.compress(kind, raw)
    if codec.decompress(packed, dictionaries) != raw:
        raise AuditError(f"a {kind} document does not survive recompression; nothing was changed")
    return packed


def _v3_to_v4(conn: sqlite3.Connection, target: Path, clock: Clock) -> tuple[int, str]:
    """Format 3 -> 4 in one write transaction: verify, recompress every
    document into new tables, swap, verify. Returns the head (entry count,
    last hash), the same before and after."""
    with _write_locked(conn):
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("format_version") != 3:
            # Another migration won the race for the lock: nothing to do.
            conn.execute("ROLLBACK")
            return int(meta["entry_count"]), str(meta["last_hash"])
        # The shipped dictionaries too: they are the ones format 4 writes
        # with, and its documents must be readable from the file alone.
        for dict_id, body in codec.shipped_dictionaries().items():
            conn.execute(
                "INSERT OR IGNORE INTO dictionaries (id, sha256, body) VALUES (?, ?, ?)",
                (dict_id, sha256_hex(body), body),
            )
        dictionaries, before = _verified_before(conn, target, ENTRY_COLUMNS, 3, meta)
        conn.execute(f"DROP TABLE IF EXISTS {_STAGING_V4}")
        conn.execute(f"DROP TABLE IF EXISTS {_STAGING_CASES}")
        for statement in split_sql(ENTRIES_V3_TABLE.format(name=_STAGING_V4)):
            conn.execute(statement)
        conn.execute(
            f"CREATE TABLE {_STAGING_CASES} (sha256 TEXT PRIMARY KEY NOT NULL, "
            "body BLOB NOT NULL)"
        )
        cases = conn.execute("SELECT sha256, body FROM cases ORDER BY sha256")
        conn.executemany(
            f"INSERT INTO {_STAGING_CASES} (sha256, body) VALUES (?, ?)",
            ((sha, _recompressed("case", body, dictionaries)) for sha, body in cases),
        )
        at = ENTRY_COLUMNS.index("decision_body")
        rows = conn.execute(f"SELECT {', '.join(ENTRY_COLUMNS)} FROM entries ORDER BY seq")
        # Every other value as stored, byte for byte: the hashes cover them.
        conn.executemany(
            f"INSERT INTO {_STAGING_V4} ({', '.join(ENTRY_COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in ENTRY_COLUMNS)})",
            (
                (*r[:at], _recompressed("decision", r[at], dictionaries), *r[at + 1:])
                for r in rows
            ),
        )
        conn.execute("DROP TABLE entries")
        conn.execute(f"ALTER TABLE {_STAGING_V4} RENAME TO entries")
        for statement in split_sql(ENTRIES_V4_INDEXES):
            conn.execute(statement)
        conn.execute("DROP TABLE cases")
        conn.execute(f"ALTER TABLE {_STAGING_CASES} RENAME TO cases")
        for statement in split_sql(CASES_APPEND_ONLY):
            conn.execute(statement)
        _commit_verified(conn, target, 4, before, dictionaries, clock)
    return before.entries_checked, before.last_hash


def _current_indexes(conn: sqlite3.Connection) -> bool:
    """Give a format-4 trail made before the follow-ups index that index
    in place of the ones it supersedes (one transaction, under the write
    lock, so a concurrent migration does it once); True if it changed
    anything. Indexes hold no evidence (no hash covers them) and every
    query answers the same with either set, so the trail is left otherwise
    as it is, and an older calfrehab still reads and appends to it."""
    with _write_locked(conn):
        found = {
            str(name)
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'entries'"
            )
        }
        stale = [name for name in SUPERSEDED_INDEXES if name in found]
        if not stale:
            conn.execute("ROLLBACK")
            return False
        conn.execute(CREATE_FOLLOW_UPS)
        for name in stale:
            conn.execute(f"DROP INDEX {name}")
        conn.execute("COMMIT")
    return True


def _verified_before(
    conn: sqlite3.Connection, target: Path, columns: tuple[str, ...], version: int,
    meta: dict[str, Any],
) -> tuple[dict[int, bytes], Any]:
    """The trail's dictionaries, and its verification at ``version`` before
    a migration touches it; AuditError if it does not verify (a trail that
    does not verify is left as it is: it is evidence)."""
    dictionaries = {
        int(i): bytes(b) for i, b in conn.execute("SELECT id, body FROM dictionaries")
    }
    before = _verify_table(conn, "entries", columns, version, meta, dictionaries)
    if not before.ok:
        raise AuditError(
            f"audit trail {target} does not verify ({before.problem}); refusing to "
            "migrate it, so that the evidence stays as it is"
        )
    return dictionaries, before


def _commit_verified(
    conn: sqlite3.Connection, target: Path, version: int, before: Any,
    dictionaries: dict[int, bytes], clock: Clock,
) -> None:
    """Mark the rebuilt trail as format ``version``, verify it to the very
    head the previous format verified to, and commit; AuditError (the
    caller rolls back: nothing changed) if it does not."""
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [("format_version", version), (f"migrated_v{version}_at", utc_stamp(clock()))],
    )
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    after = _verify_table(conn, "entries", ENTRY_COLUMNS, version, meta, dictionaries)
    if not after.ok or (after.entries_checked, after.last_hash) != (
        before.entries_checked,
        before.last_hash,
    ):
        raise AuditError(
            f"audit trail {target}: the format-{version} copy does not verify as the "
            f"format-{version - 1} trail did ({after.problem}); nothing was changed"
        )
    conn.execute("COMMIT")


def _verify_table(
    conn: sqlite3.Connection,
    table: str,
    columns: tuple[str, ...],
    version: int,
    meta: dict[str, Any],
    dictionaries: dict[int, bytes],
) -> Any:
    cur = conn.execute(
        f"SELECT {', '.join('e.' + c for c in columns)}, c.body AS case_body "
        f"FROM {table} e LEFT JOIN cases c ON c.sha256 = e.case_body_sha256 ORDER BY e.seq"
    )
    names = [d[0] for d in cur.description]
    return verify_rows((dict(zip(names, r, strict=True)) for r in cur), version, meta,
                       dictionaries)


def _copy_and_switch(
    conn: sqlite3.Connection, chunk: int, clock: Clock, stop_after_chunks: int | None
) -> tuple[int, str, int | None]:
    """Copy in chunks, then switch in one transaction. Returns (entries
    already copied when this run started, version-1 head, entries in the
    switched trail or None if stopped before switching)."""
    with _write_locked(conn):
        for statement in split_sql(
            ENTRIES_V2_TABLE.format(name=_STAGING).replace(
                "CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1
            )
            + SIDE_TABLES
            + _TRIGGERS
        ):
            conn.execute(statement)
        for dict_id, body in codec.shipped_dictionaries().items():
            conn.execute(
                "INSERT OR IGNORE INTO dictionaries (id, sha256, body) VALUES (?, ?, ?)",
                (dict_id, sha256_hex(body), body),
            )
        conn.execute("COMMIT")
    resumed_at = _staged_head(conn)[0]
    chunks = 0
    while True:
        if stop_after_chunks is not None and chunks >= stop_after_chunks:
            return resumed_at, _v1_meta(conn)[1], None
        with _write_locked(conn):
            copied = _copy_chunk(conn, chunk)
            if copied < chunk:
                # Everything is copied, and we hold the write lock: nothing
                # can be appended to version 1 before the switch commits.
                v1_head, total = _switch(conn, clock)
                conn.execute("COMMIT")
                return resumed_at, v1_head, total
            conn.execute("COMMIT")
        chunks += 1


def _staged_head(conn: sqlite3.Connection) -> tuple[int, str, str]:
    """(entries copied, their last v2 hash, their last v1 hash), checking
    that what an interrupted run copied still matches version 1."""
    row = conn.execute(
        f"SELECT seq, entry_hash, v1_hash FROM {_STAGING} ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return 0, GENESIS_HASH, GENESIS_HASH
    seq, head, v1 = row
    source = conn.execute("SELECT entry_hash FROM entries WHERE seq = ?", (seq,)).fetchone()
    if source is None or source[0] != v1:
        raise AuditError(
            f"the partly migrated entries (up to seq {seq}) no longer match the trail's "
            "format-1 entries; the file was changed during the migration"
        )
    return int(seq), str(head), str(v1)


def _copy_chunk(conn: sqlite3.Connection, chunk: int) -> int:
    copied, prev, _ = _staged_head(conn)
    cur = conn.execute(
        f"SELECT {', '.join(V1_ENTRY_COLUMNS)} FROM entries WHERE seq > ? ORDER BY seq LIMIT ?",
        (copied, chunk),
    )
    rows = [dict(zip(V1_ENTRY_COLUMNS, r, strict=True)) for r in cur.fetchall()]
    insert = (
        f"INSERT INTO {_STAGING} ({', '.join(V2_ENTRY_COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in V2_ENTRY_COLUMNS)})"
    )
    for old in rows:
        if old["seq"] != copied + 1:
            raise AuditError(f"format-1 entry seq {copied + 1} is missing; cannot migrate")
        copied += 1
        # The stored text, byte for byte: it is what the v1 hash covers.
        case_text: str | None = old["case_json"]
        decision_raw = str(old["decision_json"]).encode("utf-8")
        new: dict[str, Any] = {
            c: old[c] for c in V1_ENTRY_COLUMNS if c not in ("case_json", "decision_json")
        }
        new["case_body_sha256"] = None
        if case_text is not None:
            case_raw = case_text.encode("utf-8")
            new["case_body_sha256"] = sha256_hex(case_raw)
            conn.execute(
                "INSERT OR IGNORE INTO cases (sha256, body) VALUES (?, ?)",
                (new["case_body_sha256"], codec.compress("case", case_raw, "zlib")),
            )
        new["decision_body_sha256"] = sha256_hex(decision_raw)
        new["decision_body"] = codec.compress("decision", decision_raw, "zlib")
        new["v1_hash"] = old["entry_hash"]
        new["prev_hash"] = prev
        new["entry_hash"] = entry_hash(new)
        conn.execute(insert, [new[c] for c in V2_ENTRY_COLUMNS])
        prev = new["entry_hash"]
    return len(rows)


def _v1_meta(conn: sqlite3.Connection) -> tuple[int, str]:
    meta = dict(
        conn.execute(
            "SELECT key, value FROM meta WHERE key IN ('entry_count', 'last_hash')"
        ).fetchall()
    )
    return int(meta["entry_count"]), str(meta["last_hash"])


def _switch(conn: sqlite3.Connection, clock: Clock) -> tuple[str, int]:
    """Check the staged copy against version 1, then swap it in. Runs in
    the caller's transaction."""
    v1_count, v1_head = _v1_meta(conn)
    copied, head, v1_last = _staged_head(conn)
    if (copied, v1_last if copied else GENESIS_HASH) != (v1_count, v1_head):
        raise AuditError(
            f"the copy ends at entry {copied} but the format-1 trail records {v1_count} "
            "entries; nothing was switched"
        )
    dictionaries = dict(conn.execute("SELECT id, body FROM dictionaries").fetchall())
    check = _verify_table(
        conn,
        _STAGING,
        V2_ENTRY_COLUMNS,
        2,
        {
            "entry_count": copied,
            "last_hash": head,
            "v1_entry_count": v1_count,
            "v1_last_hash": v1_head,
        },
        dictionaries,
    )
    if not check.ok:
        raise AuditError(
            f"the migrated copy does not verify ({check.problem}); nothing was switched"
        )
    conn.execute("DROP TABLE entries")
    conn.execute(f"ALTER TABLE {_STAGING} RENAME TO entries")
    for statement in split_sql(ENTRIES_V2_INDEXES):
        conn.execute(statement)
    updates = {
        "format_version": 2,
        "entry_count": copied,
        "last_hash": head,
        "v1_entry_count": v1_count,
        "v1_last_hash": v1_head,
        "migrated_at": utc_stamp(clock()),
    }
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        list(updates.items()),
    )
    return v1_head, copied
