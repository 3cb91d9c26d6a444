"""The audit trail: every decision, and every clinician override, in one
embedded SQLite database that is append-only and tamper-evident.

Why SQLite: it is in the standard library, one file the clinic can copy and
archive, and it lets several processes (a batch run and a clinician at the
command line) record at the same time. Why a hash chain: an audit trail has
to show not only what was decided but that nobody changed it afterwards.
Each entry stores the hash of the entry before it, and its own hash covers
every stored field (its ``seq`` included), so an edited, deleted, reordered
or hand-inserted row breaks the chain at the first place it touches. The
entry count and the last hash are also kept in ``meta`` (updated in the
same transaction as every append) so that cutting rows off the end, which
leaves a chain that is internally consistent, is caught too.

What the chain cannot do on its own: someone who rewrites the tail *and*
recomputes every later hash *and* updates ``meta``, or cuts entries off the
end and sets ``meta`` to match, produces a trail that verifies. Catching
that needs the head kept outside the file: signed checkpoints
(:mod:`.checkpoint`).

The on-disk format (``meta.format = 'calfrehab-audit'``) is described in
:mod:`.schema` (tables, versions 1 to 4), :mod:`.chain` (the hashes) and
:mod:`.codec` (how documents are compressed). This module creates version
4, appends to versions 3 (zlib documents) and 4 (zstd), and reads all
four; :mod:`.migrate` upgrades an older file in place. The connection
is :mod:`.connection`'s, the checks beyond the chain :mod:`.integrity`'s,
the exported rows :mod:`.export`'s; this class is the one that appends
(``BEGIN IMMEDIATE``) and reads.
"""

from __future__ import annotations

import contextlib
import csv
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, TextIO

from calfrehab.engine.canonical import sha256_hex
from calfrehab.engine.clock import Clock, checked_now, utc_now, utc_stamp
from calfrehab.engine.errors import CalfrehabError
from calfrehab.engine.trail import codec
from calfrehab.engine.trail.chain import (
    AuditEntry,
    EntryKind,
    VerifyReport,
    entry_from_row,
    entry_hash,
    row_problem,
    verify_rows,
)
from calfrehab.engine.trail.connection import errors, open_connection, rollback
from calfrehab.engine.trail.errors import AuditError
from calfrehab.engine.trail.export import CSV_COLUMNS, csv_row, jsonl_line
from calfrehab.engine.trail.integrity import (
    dictionary_problem,
    document_mismatches,
    orphan_cases_problem,
)
from calfrehab.engine.trail.payloads import (
    Requester,
    accepted_payload,
    requester_json,
    validated_prescriptions,
)
from calfrehab.engine.trail.prepared import (
    PreparedEntry,
    is_compressed,
    prepare_entry,
    to_canonical,
)
from calfrehab.engine.trail.schema import (
    ENTRY_COLUMNS,
    ENTRY_KINDS,
    FOLLOW_UPS_WHERE,
    FORMAT,
    FORMAT_VERSION,
    GENESIS_HASH,
    V1_ENTRY_COLUMNS,
    V2_ENTRY_COLUMNS,
    WRITABLE_VERSIONS,
)
from calfrehab.engine.vocabulary import DECISION_KINDS, TRACKS

__all__ = [
    "CSV_COLUMNS",
    "ENTRY_COLUMNS",
    "FORMAT",
    "FORMAT_VERSION",
    "GENESIS_HASH",
    "AuditEntry",
    "AuditError",
    "AuditTrail",
    "EntryCheck",
    "EntryKind",
    "ExportFormat",
    "PreparedEntry",
    "RecordResult",
    "Requester",
    "VerifyReport",
    "default_audit_path",
    "prepare_entry",
]

DEFAULT_TIMEOUT_S: Final = 30.0

ExportFormat = Literal["jsonl", "csv"]


_V3_SELECT: Final = (
    f"SELECT {', '.join('e.' + c for c in ENTRY_COLUMNS)}, c.body AS case_body "
    "FROM entries e LEFT JOIN cases c ON c.sha256 = e.case_body_sha256"
)
# A version-2 trail has no requester column: read as null, so one reader
# serves both (and a version-2 row hashes the same either way).
_V2_SELECT: Final = (
    f"SELECT {', '.join('e.' + c for c in V2_ENTRY_COLUMNS)}, NULL AS requester, "
    "c.body AS case_body "
    "FROM entries e LEFT JOIN cases c ON c.sha256 = e.case_body_sha256"
)
_V1_SELECT: Final = f"SELECT {', '.join(V1_ENTRY_COLUMNS)} FROM entries e"
_INSERT_ENTRY: Final = (
    f"INSERT INTO entries ({', '.join(ENTRY_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in ENTRY_COLUMNS)})"
)


def default_audit_path() -> Path:
    """Where the audit trail lives unless a path is given.

    ``$CALFREHAB_AUDIT`` if set, else the user's data directory as
    platformdirs knows it: ``$XDG_DATA_HOME/calfrehab/audit.sqlite3`` or
    ``~/.local/share/calfrehab/audit.sqlite3`` on Linux, the platform's own
    on macOS and Windows. A relative ``XDG_DATA_HOME`` is ignored, as the
    XDG base-directory spec requires.
    """
    # platformdirs' answer, without its import where that is plain (userdirs).
    from calfrehab.engine.userdirs import user_dir

    override = os.environ.get("CALFREHAB_AUDIT")
    if override:
        return Path(override).expanduser()
    base = user_dir("data")
    if not base.is_absolute():  # a relative XDG_DATA_HOME
        base = Path.home() / ".local" / "share" / "calfrehab"
    return base / "audit.sqlite3"


@dataclass(frozen=True, slots=True)
class RecordResult:
    """What :meth:`AuditTrail.record_prepared` did: how many entries it
    appended, the decision ids it skipped (already decided, with
    ``skip_decided``), and the trail's head after it."""

    recorded: int
    skipped: tuple[str, ...]
    last_seq: int
    last_hash: str


@dataclass(frozen=True, slots=True)
class EntryCheck:
    """Whether one entry can be trusted on its own (see
    :meth:`AuditTrail.check_entry`); ``problems`` says why not."""

    ok: bool
    problems: tuple[str, ...]


def _normalise_clinician(clinician: str | None) -> str | None:
    # An unset environment variable often arrives as ""; store "nobody said"
    # one way only.
    if clinician is None:
        return None
    if not isinstance(clinician, str):
        raise AuditError("clinician must be a string")
    try:
        clinician.encode("utf-8")
    except UnicodeEncodeError as exc:
        # A name given as bytes that are not UTF-8 (argv is decoded with
        # surrogateescape): refuse it by name rather than fail in SQLite.
        raise AuditError(f"clinician {clinician!r} is not valid UTF-8 text") from exc
    return clinician.strip() or None


def _entry_ids(count: int) -> list[str]:
    """``count`` random (version 4) UUIDs as 32 hex digits each:
    ``uuid.uuid4().hex``, the same bits, without a UUID object for every
    entry, and from one read of the system's random source for them all (a
    system call each cost about a microsecond of a batch's parent)."""
    raw = bytearray(os.urandom(16 * count))
    ids: list[str] = []
    for at in range(0, 16 * count, 16):
        raw[at + 6] = (raw[at + 6] & 0x0F) | 0x40  # version 4
        raw[at + 8] = (raw[at + 8] & 0x3F) | 0x80  # RFC 4122 variant
        ids.append(raw[at:at + 16].hex())
    return ids


def _decision_row(
    prepared: PreparedEntry, clinician: str | None, requester: str | None = None
) -> dict[str, Any]:
    return {
        "kind": "decision",
        "clinician": clinician,
        "decision_id": prepared.decision_id,
        "case_id": prepared.case_id,
        "case_sha256": prepared.case_sha256,
        "review_date": prepared.review_date,
        "rulebase_version": prepared.rulebase_version,
        "rulebase_sha256": prepared.rulebase_sha256,
        "engine_version": prepared.engine_version,
        "case_body_sha256": prepared.case_body_sha256,
        "decision_body_sha256": prepared.decision_body_sha256,
        "decision_body": prepared.decision_body,
        "v1_hash": None,
        "requester": requester,
        # Not a column: inserted into `cases` (once per sha256).
        "case_body": prepared.case_body,
    }


def _follow_up_row(
    kind: str,
    original: Mapping[str, Any],
    clinician: str | None,
    raw: bytes,
    requester: str | None,
    packing: codec.Codec,
) -> dict[str, Any]:
    """An override's or an acceptance's row: its document, and the case,
    rule base and engine columns of the decision it follows (so that
    listing a case finds it)."""
    return {
        "kind": kind,
        "clinician": clinician,
        "decision_id": original["decision_id"],
        "case_id": original["case_id"],
        "case_sha256": original["case_sha256"],
        "review_date": original["review_date"],
        "rulebase_version": original["rulebase_version"],
        "rulebase_sha256": original["rulebase_sha256"],
        "engine_version": original["engine_version"],
        "case_body_sha256": None,
        "decision_body_sha256": sha256_hex(raw),
        "decision_body": codec.compress("decision", raw, packing),
        "v1_hash": None,
        "requester": requester,
    }


def _refuse_if_accepted(conn: sqlite3.Connection, original: Mapping[str, Any]) -> None:
    """Refuse an override of a decision already accepted into the case
    file's programme: the clinician decides the case again and overrides
    that decision (the trail's chain is decision -> override -> accepted)."""
    last = conn.execute(
        "SELECT seq, clinician, recorded_at FROM entries"
        f" WHERE kind = 'accepted' AND {FOLLOW_UPS_WHERE} AND decision_id = ?"
        " ORDER BY seq DESC LIMIT 1",
        (original["decision_id"],),
    ).fetchone()
    if last is None:
        return
    seq, clinician, recorded_at = last
    who = f" by {clinician}" if clinician else ""
    raise AuditError(
        f"decision {original['decision_id'][:8]} of case {original['case_id']} was accepted "
        f"into the programme{who} on {str(recorded_at)[:10]} (audit entry {seq}): an "
        "override of it would change neither the programme nor the handout. Decide the case "
        "again (calfrehab next CASE) and override that decision"
    )


def _as_zlib(row: Mapping[str, Any]) -> Mapping[str, Any]:
    """``row`` with its documents as zlib streams, for a format-3 trail not
    yet migrated: entries are prepared (in batch workers) as format 4's
    zstd before anyone knows which trail they go to, and one file never
    mixes the codecs. The cost falls only on unmigrated trails."""
    out = dict(row)
    shipped = codec.shipped_dictionaries()
    columns: tuple[tuple[str, codec.DocumentKind], ...] = (
        ("decision_body", "decision"), ("case_body", "case"))
    for column, kind in columns:
        blob = out.get(column)
        if isinstance(blob, bytes) and codec.is_zstd(blob):
            out[column] = codec.compress(kind, codec.decompress(blob, shipped), "zlib")
    return out


class AuditTrail:
    """An open audit trail. Use as a context manager, or call :meth:`close`.

    ``path`` defaults to :func:`default_audit_path`; missing parent
    directories are created. ``clock`` (returning an aware datetime) exists
    so tests and replays can fix ``recorded_at``.

    ``readonly=True`` opens an existing trail for reading only (SQLite
    ``mode=ro``): nothing is created, the journal mode is left as it is,
    and a trail the user may not write (a read-only file, directory or
    mount) can still be read and verified.

    One instance is one SQLite connection: use it from one thread. Any
    number of processes may open the same file and record at once; each
    append takes the database's write lock (``BEGIN IMMEDIATE``), waiting
    up to ``timeout`` seconds for it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        clock: Clock | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        readonly: bool = False,
        create: bool = True,
    ) -> None:
        self.path = Path(path) if path is not None else default_audit_path()
        self._clock: Clock = clock or utc_now
        self._timeout = timeout
        self.readonly = readonly
        self._create = create
        self.version: int = FORMAT_VERSION
        self._dictionaries: dict[int, bytes] = {}
        self._conn: sqlite3.Connection | None = self._open()

    # ----------------------------------------------------------- lifecycle

    def __enter__(self) -> AuditTrail:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def __repr__(self) -> str:
        state = "open" if self._conn is not None else "closed"
        return f"AuditTrail({str(self.path)!r}, {state})"

    def _errors(self, action: str) -> contextlib.AbstractContextManager[None]:
        return errors(self.path, action)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise AuditError(f"audit trail {self.path} is closed")
        return self._conn

    def _open(self) -> sqlite3.Connection:
        conn, self.version = open_connection(
            self.path,
            timeout=self._timeout,
            readonly=self.readonly,
            create=self._create,
            created_at=lambda: utc_stamp(self._now()),
        )
        return conn

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        rollback(conn)

    def _now(self) -> datetime:
        try:
            return checked_now(self._clock)
        except CalfrehabError as exc:
            raise AuditError(f"the audit clock: {exc}") from exc

    def _dictionaries_of(self, conn: sqlite3.Connection) -> dict[int, bytes]:
        """The compression dictionaries the trail holds (read once; they
        only ever grow, so a miss re-reads)."""
        if self.version == 1:
            return {}
        if not self._dictionaries:
            rows = conn.execute("SELECT id, body FROM dictionaries").fetchall()
            self._dictionaries = {
                int(i): bytes(b) for i, b in rows if isinstance(b, bytes) and isinstance(i, int)
            }
        return self._dictionaries

    # ----------------------------------------------------------- appending

    def _writable(self) -> None:
        # The format is checked again under the write lock (_append): a
        # handle opened before `audit migrate` upgraded the file records
        # once it has, without being reopened.
        if self.readonly:
            raise AuditError(f"audit trail {self.path} is open read-only")

    def _check_format(self) -> None:
        if self.version not in WRITABLE_VERSIONS:
            raise AuditError(
                f"audit trail {self.path} is in format version {self.version}; upgrade it "
                f"with `calfrehab audit migrate --audit {self.path}` before recording into it "
                f"(every recorded hash stays valid)"
            )

    def record(
        self,
        decision: Mapping[str, Any],
        case_document: Mapping[str, Any],
        clinician: str | None = None,
        *,
        requester: Requester | Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one decision with the case it was made for; ``requester``
        is who asked, when a system did (:class:`Requester`)."""
        return self.record_many([(decision, case_document)], clinician, requester=requester)[0]

    def record_many(
        self,
        items: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]],
        clinician: str | None = None,
        *,
        requester: Requester | Mapping[str, Any] | None = None,
    ) -> list[AuditEntry]:
        """Append several decisions in one transaction: all or none.

        One commit (one fsync) per batch is what keeps a batch run fast
        with ``synchronous=FULL``. Raises AuditError, appending nothing, if
        any item is invalid or any decision_id is already recorded.
        """
        who = _normalise_clinician(clinician)
        asked = requester_json(requester)
        prepared = [prepare_entry(d, c) for d, c in items]
        if not prepared:
            return []
        rows = [_decision_row(p, who, asked) for p in prepared]
        self._writable()
        self._check_unique(rows)
        appended = self._append(lambda conn: rows)
        dictionaries = self._dictionaries_of(self._connection())
        return [entry_from_row(r, self.version, dictionaries) for r in appended]

    def record_prepared(
        self,
        entries: Sequence[PreparedEntry],
        clinician: str | None = None,
        *,
        skip_decided: bool = False,
        requester: Requester | Mapping[str, Any] | None = None,
    ) -> RecordResult:
        """Append decisions prepared by :func:`prepare_entry` (typically in
        a worker process) in one transaction: all or none.

        Nothing is parsed, serialised or compressed here: the parent only
        chains and inserts. With ``skip_decided``, an entry whose case
        (``case_sha256``) was already decided under the same rule base
        (``rulebase_sha256``), in the trail or earlier in ``entries``, is
        skipped rather than recorded again, checked under the write lock so
        that two runs resuming the same batch decide each case once.
        """
        who = _normalise_clinician(clinician)
        for p in entries:
            if not isinstance(p, PreparedEntry):
                raise AuditError("record_prepared takes PreparedEntry values (prepare_entry)")
            if not is_compressed(p):
                raise AuditError(
                    f"decision {p.decision_id} was prepared uncompressed: compress it "
                    "(compress_entries) before recording it"
                )
            for blob in (p.case_body, p.decision_body):
                dict_id = codec.dictionary_id(blob)
                if dict_id is not None and dict_id not in codec.shipped_dictionaries():
                    raise AuditError(
                        f"decision {p.decision_id} was compressed with a dictionary "
                        "this calfrehab does not have"
                    )
        asked = requester_json(requester)
        rows = [_decision_row(p, who, asked) for p in entries]
        self._writable()
        self._check_unique(rows)
        skipped: list[str] = []

        def build(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            if not skip_decided:
                return rows
            kept: list[dict[str, Any]] = []
            seen: set[tuple[str, str]] = set()
            for row in rows:
                key = (row["case_sha256"], row["rulebase_sha256"])
                if key in seen or self._decided(conn, *key):
                    skipped.append(row["decision_id"])
                    continue
                seen.add(key)
                kept.append(row)
            return kept

        appended = self._append(build) if rows else []
        with self._errors("read its head"):
            count, last_hash = self._head(self._connection())
        return RecordResult(len(appended), tuple(skipped), count, last_hash)

    @staticmethod
    def _check_unique(rows: Sequence[Mapping[str, Any]]) -> None:
        seen: set[str] = set()
        for row in rows:
            if row["decision_id"] in seen:
                raise AuditError(f"decision {row['decision_id']} appears twice in one batch")
            seen.add(row["decision_id"])

    @staticmethod
    def _decided(conn: sqlite3.Connection, case_sha: str, rulebase_sha: str) -> bool:
        row = conn.execute(
            "SELECT 1 FROM entries WHERE kind = 'decision' "
            "AND case_sha256 = ? AND rulebase_sha256 = ? LIMIT 1",
            (case_sha, rulebase_sha),
        ).fetchone()
        return row is not None

    def override(
        self,
        decision_id: str,
        clinician: str,
        reason: str,
        track: str | None = None,
        decision: str | None = None,
        *,
        prescriptions: Mapping[str, Mapping[str, Any] | None] | None = None,
        requester: Requester | Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append a clinician's override of a recorded decision.

        The decision entry itself is never changed; the override is a new
        entry that points at it. ``track`` and ``decision`` (the decision
        the clinician chose for that track) come together or not at all;
        without them the override records disagreement with the decision as
        a whole, e.g. a referral the rules did not make.

        ``prescriptions`` is the clinician's own prescription per track,
        ``{track: {exercise, sets, reps, load_kg}}`` (checked as a case
        file's programme is; None for a track empties it), which accepting
        the override applies. ``requester`` is who asked, when a system did.
        """
        if not isinstance(decision_id, str) or not decision_id:
            raise AuditError("an override needs the decision_id it overrides")
        who = _normalise_clinician(clinician)
        if who is None:
            raise AuditError("an override needs the clinician who made it")
        if not isinstance(reason, str) or not reason.strip():
            raise AuditError("an override needs a reason")
        if (track is None) != (decision is None):
            raise AuditError("an override gives track and decision together, or neither")
        if track is not None and track not in TRACKS:
            raise AuditError(f"unknown track {track!r}; known tracks: {', '.join(TRACKS)}")
        if decision is not None:
            allowed = DECISION_KINDS
            if decision not in allowed:
                raise AuditError(
                    f"{decision!r} is not a decision for track {track}; "
                    f"allowed: {', '.join(allowed)}"
                )
        payload: dict[str, Any] = {
            "decision_id": decision_id,
            "clinician": who,
            "reason": reason.strip(),
            "track": track,
            "decision": decision,
        }
        rx = validated_prescriptions(prescriptions)
        if rx is not None:
            # Only when given: an override without one has the very
            # payload format 2 wrote.
            payload["prescriptions"] = rx
        raw = to_canonical(payload, "the override")
        asked = requester_json(requester)
        self._writable()

        def build(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            # Looked up under the write lock, though nothing can remove a
            # decision: it keeps "the override points at a real decision"
            # a property of one transaction.
            original = self._decision_row(conn, decision_id)
            if original is None:
                raise AuditError(f"no decision {decision_id} in audit trail {self.path}")
            # Checked here, under the write lock, not before it: an
            # acceptance another process commits between a check and the
            # write would otherwise be followed by an override that changes
            # neither the programme nor the handout (each follows the
            # acceptance).
            _refuse_if_accepted(conn, original)
            return [_follow_up_row("override", original, who, raw, asked,
                                   codec.codec_for(self.version))]

        appended = self._append(build)
        return entry_from_row(
            appended[0], self.version, self._dictionaries_of(self._connection())
        )

    def accept(
        self,
        decision_id: str,
        program: Mapping[str, Any],
        clinician: str | None = None,
        *,
        override_entry_id: str | None = None,
        requester: Requester | Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append an ``accepted`` entry: the decision ``decision_id`` (or,
        with ``override_entry_id``, that override of it) was applied to
        the case file, whose ``program`` is now ``program``.

        The entry's document is ``{decision_id, override_entry_id,
        clinician, program, program_sha256}``, ``program_sha256`` being
        :func:`~calfrehab.engine.trail.payloads.program_sha256` of the
        programme (sha256 of its canonical JSON). Checked under the write
        lock: the decision is in the trail, and the override (if any) is
        an override of that decision. Which override to apply (usually the
        latest) is the caller's choice; the trail records it.
        """
        if not isinstance(decision_id, str) or not decision_id:
            raise AuditError("an acceptance needs the decision_id it applies")
        if override_entry_id is not None and (
            not isinstance(override_entry_id, str) or not override_entry_id
        ):
            raise AuditError("override_entry_id must be an entry id (text)")
        who = _normalise_clinician(clinician)
        raw = to_canonical(
            accepted_payload(decision_id, program, who, override_entry_id), "the acceptance"
        )
        asked = requester_json(requester)
        self._writable()

        def build(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            original = self._decision_row(conn, decision_id)
            if original is None:
                raise AuditError(f"no decision {decision_id} in audit trail {self.path}")
            if override_entry_id is not None:
                found = conn.execute(
                    "SELECT kind, decision_id FROM entries WHERE entry_id = ?",
                    (override_entry_id,),
                ).fetchone()
                if found is None or found[0] != "override":
                    raise AuditError(
                        f"no override {override_entry_id} in audit trail {self.path}"
                    )
                if found[1] != decision_id:
                    raise AuditError(
                        f"override {override_entry_id} is of decision {found[1]}, "
                        f"not of decision {decision_id}"
                    )
            return [_follow_up_row("accepted", original, who, raw, asked,
                                   codec.codec_for(self.version))]

        appended = self._append(build)
        return entry_from_row(
            appended[0], self.version, self._dictionaries_of(self._connection())
        )

    def _append(
        self, build: Callable[[sqlite3.Connection], Sequence[Mapping[str, Any]]]
    ) -> list[dict[str, Any]]:
        """Chain and insert rows under the write lock; returns the rows as
        stored (with ``case_body`` where a case was given).

        BEGIN IMMEDIATE takes the lock before the head is read, so two
        processes cannot both extend the same head (a fork in the chain);
        the second one waits (busy_timeout) and then sees the first's rows.
        The rows, their cases and the new head in ``meta`` commit together.
        """
        conn = self._connection()
        with self._errors("record"):
            conn.execute("BEGIN IMMEDIATE")
            try:
                # One read of meta for the transaction: the format and the head.
                meta = self._meta(conn)
                self._follow_migration(meta.get("format_version"))
                self._check_format()
                count, last_hash = self._head_in(meta)
                self._check_head(conn, count, last_hash)
                rows = build(conn)
                if rows:
                    self._store_dictionaries(conn)
                if codec.codec_for(self.version) == "zlib":
                    rows = [_as_zlib(r) for r in rows]
                stored: list[dict[str, Any]] = []
                cases: list[tuple[Any, Any]] = []
                # The clock read once for the transaction: its entries are
                # committed together, at one moment (a batch's 2,000 spent
                # about 2 us each reading and formatting it).
                recorded_at = utc_stamp(self._now()) if rows else ""
                for partial, entry_id in zip(rows, _entry_ids(len(rows)), strict=True):
                    count += 1
                    row: dict[str, Any] = {
                        **partial,
                        "seq": count,
                        "entry_id": entry_id,
                        "recorded_at": recorded_at,
                        "prev_hash": last_hash,
                    }
                    row["entry_hash"] = last_hash = entry_hash(row)
                    if row.get("case_body") is not None:
                        cases.append((row["case_body_sha256"], row["case_body"]))
                    stored.append(row)
                # One statement each for all the rows (a batch appends 500):
                # executemany spares a Python-level call per row. A case is
                # stored once per sha256: a second decision for the same
                # bytes only points at it.
                if cases:
                    conn.executemany(
                        "INSERT OR IGNORE INTO cases (sha256, body) VALUES (?, ?)", cases
                    )
                try:
                    conn.executemany(
                        _INSERT_ENTRY, [[r[c] for c in ENTRY_COLUMNS] for r in stored]
                    )
                except sqlite3.IntegrityError as exc:
                    if "decision_id" in str(exc):
                        raise AuditError(
                            f"decision {self._recorded_before(conn, stored)} is already "
                            "recorded in the audit trail"
                        ) from exc
                    raise
                conn.execute("UPDATE meta SET value = ? WHERE key = 'entry_count'", (count,))
                conn.execute("UPDATE meta SET value = ? WHERE key = 'last_hash'", (last_hash,))
                conn.execute("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise
        return stored

    @staticmethod
    def _recorded_before(conn: sqlite3.Connection, rows: Sequence[Mapping[str, Any]]) -> str:
        """The first of ``rows`` (being appended) whose decision the trail
        held already: what an insert refused as a second decision."""
        first = rows[0]["seq"]
        for row in rows:
            if row["kind"] == "decision" and conn.execute(
                "SELECT 1 FROM entries WHERE kind = 'decision' AND decision_id = ? AND seq < ?",
                (row["decision_id"], first),
            ).fetchone():
                return str(row["decision_id"])
        return str(rows[0]["decision_id"])

    def _store_dictionaries(self, conn: sqlite3.Connection) -> None:
        held = self._dictionaries_of(conn)
        for dict_id, body in codec.shipped_dictionaries().items():
            if dict_id not in held:
                conn.execute(
                    "INSERT OR IGNORE INTO dictionaries (id, sha256, body) VALUES (?, ?, ?)",
                    (dict_id, sha256_hex(body), body),
                )
                # Only after commit would another reader see it; this
                # connection sees it at once, and the cache follows.
                held[dict_id] = body

    def _follow_migration(self, found: object) -> None:
        # The format read when this handle opened may be stale: `audit
        # migrate` (in this process or another) can take a format-2 or 3
        # trail to 4 while a server or the app keeps it open. ``found`` is
        # the format read again under the write lock, so a trail refused at
        # format 2 is written once upgraded, and the codec follows the file
        # as it is (one file never mixes zlib and zstd documents). Migration
        # only ever raises the format.
        if isinstance(found, int) and found in WRITABLE_VERSIONS and found > self.version:
            self.version = found
            self._dictionaries = {}  # a format-1 handle read none

    @staticmethod
    def _meta(conn: sqlite3.Connection) -> dict[str, Any]:
        """The meta a write needs: the head (entry count, last hash) and the
        format version."""
        return dict(
            conn.execute(
                "SELECT key, value FROM meta"
                " WHERE key IN ('entry_count', 'last_hash', 'format_version')"
            ).fetchall()
        )

    @staticmethod
    def _head_in(meta: Mapping[str, Any]) -> tuple[int, str]:
        count, last_hash = meta.get("entry_count"), meta.get("last_hash")
        if not isinstance(count, int) or not isinstance(last_hash, str):
            raise AuditError("audit trail meta has no valid entry_count/last_hash")
        return count, last_hash

    @classmethod
    def _head(cls, conn: sqlite3.Connection) -> tuple[int, str]:
        return cls._head_in(cls._meta(conn))

    def hash_at(self, seq: int) -> str | None:
        """The stored ``entry_hash`` of entry ``seq``, or None."""
        with self._errors("read an entry"):
            row = (
                self._connection()
                .execute("SELECT entry_hash FROM entries WHERE seq = ?", (seq,))
                .fetchone()
            )
        return None if row is None else str(row[0])

    def head(self) -> tuple[int, str]:
        """The trail's (entry count, last hash) as its meta records them."""
        with self._errors("read its head"):
            return self._head(self._connection())

    def _check_head(self, conn: sqlite3.Connection, count: int, last_hash: str) -> None:
        # Two index lookups, so cheap enough for every append: refuse to
        # extend a trail whose end has visibly been cut or added to, since
        # new entries would otherwise bury the evidence under valid links.
        # (Damage further back is verify()'s job; it has to read everything.)
        stored = conn.execute("SELECT entry_hash FROM entries WHERE seq = ?", (count,)).fetchone()
        expected_ok = (stored is None and count == 0) or (
            stored is not None and stored[0] == last_hash
        )
        beyond = conn.execute("SELECT 1 FROM entries WHERE seq > ? LIMIT 1", (count,)).fetchone()
        if not expected_ok or beyond is not None:
            raise AuditError(
                f"audit trail {self.path} does not end where its meta says "
                f"(entry {count}, hash {last_hash[:12]}...); refusing to append. "
                "Run the audit verify command."
            )

    # ------------------------------------------------------------- reading

    @property
    def _select(self) -> str:
        return {1: _V1_SELECT, 2: _V2_SELECT}.get(self.version, _V3_SELECT)

    @staticmethod
    def _rows(
        conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()
    ) -> list[dict[str, Any]]:
        cur = conn.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def _iter_rows(
        self, conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()
    ) -> Iterator[dict[str, Any]]:
        cur = conn.execute(sql, params)
        names = [d[0] for d in cur.description]
        for r in cur:
            yield dict(zip(names, r, strict=True))

    def _decision_row(self, conn: sqlite3.Connection, decision_id: str) -> dict[str, Any] | None:
        # The literal kind = 'decision' lets SQLite use the partial unique index.
        rows = self._rows(
            conn, f"{self._select} WHERE e.kind = 'decision' AND e.decision_id = ?", (decision_id,)
        )
        return rows[0] if rows else None

    def _parse(self, conn: sqlite3.Connection, row: Mapping[str, Any]) -> AuditEntry:
        return entry_from_row(row, self.version, self._dictionaries_of(conn))

    def entries(
        self,
        case_id: str | None = None,
        since: date | None = None,
        kind: EntryKind | None = None,
    ) -> list[AuditEntry]:
        """Entries in recording order, optionally only one case's, only
        those recorded on or after ``since`` (a UTC date), only one kind."""
        clauses: list[str] = []
        params: list[Any] = []
        if case_id is not None:
            clauses.append("e.case_id = ?")
            params.append(case_id)
        if since is not None:
            if isinstance(since, datetime):
                since = since.date()
            # recorded_at is "YYYY-MM-DDT...Z", which sorts after the bare
            # date of the same day and before the next day's.
            clauses.append("e.recorded_at >= ?")
            params.append(since.isoformat())
        if kind is not None:
            if kind not in ENTRY_KINDS:
                raise AuditError(
                    f"unknown entry kind {kind!r}; use {', '.join(ENTRY_KINDS)}"
                )
            clauses.append("e.kind = ?")
            params.append(kind)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._errors("read entries"):
            conn = self._connection()
            rows = self._rows(conn, f"{self._select}{where} ORDER BY e.seq", params)
            return [self._parse(conn, r) for r in rows]

    def decision_ids(self, prefix: str) -> list[tuple[str, str]]:
        """(decision_id, case_id) of the decisions whose id starts with
        ``prefix``, without reading their documents."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self._errors("read entries"):
            rows = (
                self._connection()
                .execute(
                    "SELECT decision_id, case_id FROM entries WHERE kind = 'decision' "
                    "AND decision_id LIKE ? ESCAPE '\\' ORDER BY seq",
                    (escaped + "%",),
                )
                .fetchall()
            )
        return [(str(d), str(c)) for d, c in rows if str(d).startswith(prefix)]

    def get(self, decision_id: str) -> AuditEntry:
        """The decision entry with this decision_id (AuditError if none)."""
        with self._errors("read entries"):
            conn = self._connection()
            row = self._decision_row(conn, decision_id)
            if row is None:
                raise AuditError(f"no decision {decision_id} in audit trail {self.path}")
            return self._parse(conn, row)

    def overrides_for(self, decision_id: str) -> list[AuditEntry]:
        """The overrides of one decision, oldest first (AuditError if the
        decision itself is unknown, so a mistyped id is not read as "none")."""
        return self._follow_ups(decision_id, "override")

    def accepted_for(self, decision_id: str) -> list[AuditEntry]:
        """The ``accepted`` entries of one decision, oldest first (AuditError
        if the decision itself is unknown)."""
        return self._follow_ups(decision_id, "accepted")

    def latest_override(self, decision_id: str) -> AuditEntry | None:
        """The decision's most recent override (the clinician's current
        view), or None; AuditError if the decision is unknown."""
        overrides = self.overrides_for(decision_id)
        return overrides[-1] if overrides else None

    def _follow_ups(self, decision_id: str, kind: str) -> list[AuditEntry]:
        self.get(decision_id)
        if self.version < 3 and kind == "accepted":
            return []
        with self._errors("read entries"):
            conn = self._connection()
            rows = self._rows(
                conn,
                # The follow-ups index's own term, so SQLite may use it.
                f"{self._select} WHERE e.kind = ? AND e.{FOLLOW_UPS_WHERE} "
                "AND e.decision_id = ? ORDER BY e.seq",
                (kind, decision_id),
            )
            return [self._parse(conn, r) for r in rows]

    def has_decision(self, case_sha256: str, rulebase_sha256: str) -> bool:
        """Whether this exact case was already decided under this rulebase
        (what ``batch --resume`` skips)."""
        with self._errors("read entries"):
            return self._decided(self._connection(), case_sha256, rulebase_sha256)

    def __len__(self) -> int:
        with self._errors("count entries"):
            row = self._connection().execute("SELECT count(*) FROM entries").fetchone()
        return int(row[0])

    @contextlib.contextmanager
    def _snapshot(self, action: str) -> Iterator[sqlite3.Connection]:
        """A read transaction: in WAL mode it sees one consistent state
        (rows and meta together) while other processes keep appending."""
        conn = self._connection()
        with self._errors(action):
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                self._rollback(conn)

    # ----------------------------------------------------------- verifying

    def verify(self) -> VerifyReport:
        """Recompute the whole chain in seq order (and, in version 2, every
        stored document's hash) and compare the end with ``meta``. Stops at
        the first problem."""
        with self._snapshot("verify") as conn:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            dictionaries = self._dictionaries_of(conn)
            report = verify_rows(
                self._iter_rows(conn, f"{self._select} ORDER BY e.seq"),
                self.version,
                meta,
                dictionaries,
            )
            if report.ok and self.version >= 2:
                problem = dictionary_problem(
                    conn.execute("SELECT id, sha256, body FROM dictionaries").fetchall()
                ) or orphan_cases_problem(conn)
                if problem is not None:
                    return VerifyReport(
                        False, report.entries_checked, None, problem, report.last_hash
                    )
            return report

    def check_entry(self, seq: int) -> EntryCheck:
        """Whether one entry can be trusted before it is shown or replayed,
        without verifying the whole trail: its own hash (and its documents'
        hashes) recompute, it links to the entry before it, the entry after
        it (or meta, if it is the last) links to it, and its decision names
        the case_id and case_sha256 its columns say."""
        problems: list[str] = []
        with self._snapshot("check an entry") as conn:
            dictionaries = self._dictionaries_of(conn)
            rows = {
                r["seq"]: r
                for r in self._rows(
                    conn,
                    f"{self._select} WHERE e.seq BETWEEN ? AND ? ORDER BY e.seq",
                    (seq - 1, seq + 1),
                )
            }
            row = rows.get(seq)
            if row is None:
                return EntryCheck(False, (f"entry seq {seq} is missing",))
            problem, docs = row_problem(row, self.version, dictionaries)
            if problem is not None:
                problems.append(problem)
            before = rows.get(seq - 1)
            expected_prev = GENESIS_HASH if seq == 1 else (before or {}).get("entry_hash")
            if row["prev_hash"] != expected_prev:
                problems.append(f"entry seq {seq} does not link to the entry before it")
            after = rows.get(seq + 1)
            if after is not None:
                if after["prev_hash"] != row["entry_hash"]:
                    problems.append(f"the entry after seq {seq} does not link to it")
            else:
                count, last_hash = self._head(conn)
                if count != seq or last_hash != row["entry_hash"]:
                    problems.append(f"entry seq {seq} is not the head the trail's meta records")
            if docs is not None and row["kind"] == "decision":
                problems += document_mismatches(row, docs)
        return EntryCheck(not problems, tuple(problems))

    # ----------------------------------------------------------- exporting

    def export(self, fmt: ExportFormat, out: TextIO) -> int:
        """Write every entry to ``out``; returns the number written.

        ``jsonl``: one canonical JSON object per line with every stored
        field except the compressed document, and the documents parsed into
        ``case`` and ``decision`` (their canonical JSON gives back the
        stored bytes, whose sha256 the entry names, so the export can be
        checked against the hashes).

        ``csv``: a header and one flat row per entry (see
        :data:`CSV_COLUMNS`); no JSON blobs; a cell that a spreadsheet
        would read as a formula is neutralised. Rows end in ``\\n``.

        A damaged entry (a BLOB in a text column, a document that does not
        parse) stops the export with an AuditError naming its seq.
        """
        if fmt not in ("jsonl", "csv"):
            raise AuditError(f"unknown export format {fmt!r}; use jsonl or csv")
        writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
        if writer is not None:
            writer.writerow(CSV_COLUMNS)
        written = 0
        columns = {1: V1_ENTRY_COLUMNS, 2: V2_ENTRY_COLUMNS}.get(self.version, ENTRY_COLUMNS)
        with self._snapshot("export") as conn:
            for row in self._iter_rows(conn, f"{self._select} ORDER BY e.seq"):
                entry = self._parse(conn, row)  # validates; raises on a damaged row
                if writer is None:
                    out.write(jsonl_line(row, entry, columns))
                else:
                    writer.writerow(csv_row(row, entry))
                written += 1
        return written
