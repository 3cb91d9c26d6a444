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
recomputes every later hash *and* updates ``meta`` produces a trail that
verifies. Catching that needs the head (``VerifyReport.last_hash`` with the
entry count) written down somewhere outside the file, e.g. in the clinic's
records after each batch; ``verify()`` reports it for that reason.

The on-disk format (``meta.format = 'calfrehab-audit'``,
``meta.format_version = 1``):

* ``entries``: one row per entry, see :data:`ENTRY_COLUMNS`;
* ``entry_hash = sha256(prev_hash + canonical_json({every column except
  entry_hash}))`` as lowercase hex, the first ``prev_hash`` being 64 zeros;
* canonical JSON is :func:`canonical_json`; ``case_json`` and
  ``decision_json`` are stored as canonical JSON text and the hash covers
  that text exactly as stored.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, TextIO, cast

from calfrehab.engine.canonical import canonical_bytes, canonical_json, sha256_hex
from calfrehab.engine.clock import Clock, checked_now, utc_now, utc_stamp
from calfrehab.engine.errors import CalfrehabError
from calfrehab.engine.vocabulary import DECISION_KINDS, STRAIGHT_KNEE_DECISIONS, TRACKS

__all__ = [
    "ENTRY_COLUMNS",
    "FORMAT",
    "FORMAT_VERSION",
    "GENESIS_HASH",
    "AuditEntry",
    "AuditError",
    "AuditTrail",
    "VerifyReport",
    "default_audit_path",
]

FORMAT: Final = "calfrehab-audit"
FORMAT_VERSION: Final = 1
GENESIS_HASH: Final = "0" * 64
DEFAULT_TIMEOUT_S: Final = 30.0

EntryKind = Literal["decision", "override"]
ExportFormat = Literal["jsonl", "csv"]


# Column order is part of the format only through the names: the hash is
# over a JSON object with sorted keys, so reordering columns in a future
# schema does not change any hash.
ENTRY_COLUMNS: Final = (
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
_HASHED_COLUMNS: Final = tuple(c for c in ENTRY_COLUMNS if c != "entry_hash")
_SELECT_ENTRY: Final = f"SELECT {', '.join(ENTRY_COLUMNS)} FROM entries"
_INSERT_ENTRY: Final = (
    f"INSERT INTO entries ({', '.join(ENTRY_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in ENTRY_COLUMNS)})"
)

_SQLITE_MAGIC: Final = b"SQLite format 3\x00"
_ISO_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")

_SCHEMA: Final = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value NOT NULL            -- no declared type: format_version stays an integer
);
CREATE TABLE entries (
    seq              INTEGER PRIMARY KEY,
    entry_id         TEXT NOT NULL UNIQUE,
    kind             TEXT NOT NULL CHECK (kind IN ('decision', 'override')),
    recorded_at      TEXT NOT NULL,
    clinician        TEXT,
    decision_id      TEXT NOT NULL,
    case_id          TEXT NOT NULL,
    case_sha256      TEXT NOT NULL,
    review_date      TEXT NOT NULL,
    rulebase_version TEXT NOT NULL,
    rulebase_sha256  TEXT NOT NULL,
    engine_version   TEXT NOT NULL,
    case_json        TEXT,
    decision_json    TEXT NOT NULL,
    prev_hash        TEXT NOT NULL,
    entry_hash       TEXT NOT NULL
);
-- A decision is recorded once; overrides point at it by decision_id.
CREATE UNIQUE INDEX entries_decision_once ON entries (decision_id) WHERE kind = 'decision';
CREATE INDEX entries_by_decision_id ON entries (decision_id);
CREATE INDEX entries_by_case_id ON entries (case_id);
-- batch --resume asks "was this case already decided under this rulebase?"
CREATE INDEX entries_by_input ON entries (case_sha256, rulebase_sha256) WHERE kind = 'decision';
-- Append-only by construction, not just by convention: an UPDATE or DELETE
-- through SQL fails. (Someone can drop these triggers; the hash chain is
-- what catches that. The triggers stop honest accidents.)
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'calfrehab audit entries are append-only'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'calfrehab audit entries are append-only'); END;
"""


class AuditError(CalfrehabError):
    """The audit trail cannot be opened, read or written, or a request to it
    is invalid. Every sqlite3 error is turned into one of these, so the CLI
    shows a message rather than a traceback."""


def _entry_hash(row: Mapping[str, Any]) -> str:
    # prev_hash is both the prefix and one of the hashed fields: the prefix
    # is the classic chain construction, the field keeps "every stored field
    # is covered" true without exceptions.
    payload = canonical_bytes({c: row[c] for c in _HASHED_COLUMNS})
    return sha256_hex(str(row["prev_hash"]).encode("utf-8") + payload)


def default_audit_path() -> Path:
    """Where the audit trail lives unless a path is given.

    ``$CALFREHAB_AUDIT`` if set, else ``$XDG_DATA_HOME/calfrehab/audit.sqlite3``,
    else ``~/.local/share/calfrehab/audit.sqlite3``. A relative
    ``XDG_DATA_HOME`` is ignored, as the XDG base-directory spec requires.
    """
    override = os.environ.get("CALFREHAB_AUDIT")
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "calfrehab" / "audit.sqlite3"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry of the trail, with its JSON columns parsed.

    For ``kind == "decision"``, ``case`` is the full case document and
    ``decision`` the full decision document. For ``kind == "override"``,
    ``case`` is None and ``decision`` is the override payload
    ``{decision_id, clinician, reason, track, decision}``; the case and
    rulebase columns are copied from the overridden decision so that
    filtering by case finds the override too.
    """

    seq: int
    entry_id: str
    kind: EntryKind
    recorded_at: datetime
    clinician: str | None
    decision_id: str
    case_id: str
    case_sha256: str
    review_date: date
    rulebase_version: str
    rulebase_sha256: str
    engine_version: str
    case: dict[str, Any] | None
    decision: dict[str, Any]
    prev_hash: str
    entry_hash: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Result of :meth:`AuditTrail.verify`.

    ``entries_checked`` counts the entries examined, the failing one
    included. ``first_bad_seq`` is the lowest seq at which the trail is
    wrong; for deleted entries that is the seq that is missing. ``last_hash``
    and ``entries_checked`` of an ok report are the head worth writing down
    outside the file.
    """

    ok: bool
    entries_checked: int
    first_bad_seq: int | None
    problem: str | None
    last_hash: str = GENESIS_HASH


def _entry_from_row(row: Mapping[str, Any]) -> AuditEntry:
    """Parse one stored row. A row that does not parse was tampered with or
    damaged; say which and point at verify rather than failing obscurely."""
    seq = row["seq"]
    try:
        case_text = row["case_json"]
        case = None if case_text is None else json.loads(case_text)
        decision = json.loads(row["decision_json"])
        if not isinstance(decision, dict) or not (case is None or isinstance(case, dict)):
            raise ValueError("case_json/decision_json is not a JSON object")
        kind = row["kind"]
        if kind not in ("decision", "override"):
            raise ValueError(f"unknown kind {kind!r}")
        recorded_at = datetime.fromisoformat(row["recorded_at"])
        return AuditEntry(
            seq=int(seq),
            entry_id=str(row["entry_id"]),
            kind=cast(EntryKind, kind),
            recorded_at=recorded_at,
            clinician=None if row["clinician"] is None else str(row["clinician"]),
            decision_id=str(row["decision_id"]),
            case_id=str(row["case_id"]),
            case_sha256=str(row["case_sha256"]),
            review_date=date.fromisoformat(row["review_date"]),
            rulebase_version=str(row["rulebase_version"]),
            rulebase_sha256=str(row["rulebase_sha256"]),
            engine_version=str(row["engine_version"]),
            case=case,
            decision=decision,
            prev_hash=str(row["prev_hash"]),
            entry_hash=str(row["entry_hash"]),
        )
    except (TypeError, ValueError) as exc:
        raise AuditError(
            f"audit entry seq {seq} is damaged ({exc}); run the audit verify command"
        ) from exc


def _required_str(doc: Mapping[str, Any], key: str, what: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise AuditError(f"{what} has no {key} (a non-empty string is required)")
    return value


def _checked_date(value: object, what: str) -> str:
    # Strictly the spec's YYYY-MM-DD: date.fromisoformat alone would also
    # take "20261120", which would then be stored in a second spelling.
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise AuditError(f"{what} must be a date YYYY-MM-DD, got {value!r}")
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise AuditError(f"{what} is not a valid date: {value!r}") from exc
    return value


def _to_json(obj: object, what: str) -> str:
    try:
        return canonical_json(obj)
    except (TypeError, ValueError) as exc:
        raise AuditError(f"{what} cannot be stored as JSON: {exc}") from exc


def _prepare_decision(
    decision: Mapping[str, Any], case_document: Mapping[str, Any], clinician: str | None
) -> dict[str, Any]:
    """Validate one (decision, case) pair and build its columns, minus the
    ones assigned under the write lock (seq, entry_id, recorded_at, hashes).

    Done before the transaction starts so that serialising a large batch
    does not hold the database's write lock.
    """
    if not isinstance(decision, Mapping):
        raise AuditError("decision document must be a JSON object")
    if not isinstance(case_document, Mapping):
        raise AuditError("case document must be a JSON object")
    decision_id = _required_str(decision, "decision_id", "decision document")
    what = f"decision {decision_id}"
    case_id = _required_str(decision, "case_id", what)
    review_date = _checked_date(decision.get("review_date"), f"{what}: review_date")
    rulebase = decision.get("rulebase")
    if not isinstance(rulebase, Mapping):
        raise AuditError(f"{what} has no rulebase {{version, sha256}}")
    rulebase_version = _required_str(rulebase, "version", f"{what}: rulebase")
    rulebase_sha256 = _required_str(rulebase, "sha256", f"{what}: rulebase")
    engine_version = decision.get("engine_version", "")
    if not isinstance(engine_version, str):
        raise AuditError(f"{what}: engine_version must be a string")
    # A batch that pairs a decision with the wrong case would leave a trail
    # that is consistent and wrong; the case file carries the same two keys,
    # so compare them when it does.
    for key in ("case_id", "review_date"):
        if key in case_document and case_document[key] != decision[key]:
            raise AuditError(
                f"{what} is for {key} {decision[key]!r} but the case document "
                f"has {case_document[key]!r}"
            )
    case_text = _to_json(case_document, f"case document of {what}")
    digest = decision.get("case_sha256")
    if digest is None:
        digest = sha256_hex(case_text.encode("utf-8"))
    elif not isinstance(digest, str) or not digest:
        raise AuditError(f"{what}: case_sha256 must be a non-empty string")
    return {
        "kind": "decision",
        "clinician": clinician,
        "decision_id": decision_id,
        "case_id": case_id,
        "case_sha256": digest,
        "review_date": review_date,
        "rulebase_version": rulebase_version,
        "rulebase_sha256": rulebase_sha256,
        "engine_version": engine_version,
        "case_json": case_text,
        "decision_json": _to_json(decision, f"decision document {decision_id}"),
    }


def _normalise_clinician(clinician: str | None) -> str | None:
    # An unset environment variable often arrives as ""; store "nobody said"
    # one way only.
    if clinician is None:
        return None
    if not isinstance(clinician, str):
        raise AuditError("clinician must be a string")
    return clinician.strip() or None


class AuditTrail:
    """An open audit trail. Use as a context manager, or call :meth:`close`.

    ``path`` defaults to :func:`default_audit_path`; missing parent
    directories are created. ``clock`` (returning an aware datetime) exists
    so tests and replays can fix ``recorded_at``.

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
    ) -> None:
        self.path = Path(path) if path is not None else default_audit_path()
        self._clock: Clock = clock or utc_now
        self._timeout = timeout
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

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise AuditError(f"audit trail {self.path}: cannot {action}: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise AuditError(f"audit trail {self.path} is closed")
        return self._conn

    def _open(self) -> sqlite3.Connection:
        path = self.path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AuditError(f"cannot create the directory for audit trail {path}: {exc}") from exc
        if path.is_dir():
            raise AuditError(f"{path} is a directory, not a calfrehab audit trail")
        self._check_sqlite_header(path)
        with self._errors("open it"):
            # isolation_level=None: the module issues BEGIN/COMMIT itself, so
            # that appends can use BEGIN IMMEDIATE (Python's implicit
            # transactions are deferred, which lets two writers both read
            # the same chain head and fork the chain).
            conn = sqlite3.connect(path, timeout=self._timeout, isolation_level=None)
        try:
            self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _check_sqlite_header(path: Path) -> None:
        # sqlite3 says only "file is not a database", and only on the first
        # query; checking the magic up front gives a message that names the
        # file. An empty file is a valid (new) database, and a real one is
        # never shorter than the 100-byte header.
        try:
            with path.open("rb") as fh:
                head = fh.read(len(_SQLITE_MAGIC))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise AuditError(f"cannot read audit trail {path}: {exc}") from exc
        if head and head != _SQLITE_MAGIC:
            raise AuditError(f"{path} is not a SQLite database, so not a calfrehab audit trail")

    def _prepare(self, conn: sqlite3.Connection) -> None:
        with self._errors("open it"):
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            if not self._table_names(conn):
                # New (empty) file: it is ours to configure. WAL is set before
                # the schema so the very first transaction already uses it.
                self._set_wal(conn)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    # Re-check under the write lock: another process may have
                    # created the schema between our look and our lock.
                    if not self._table_names(conn):
                        self._create_schema(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    self._rollback(conn)
                    raise
            self._check_format(conn)
            # Only now, knowing the file is a calfrehab trail, change its
            # journal mode: never convert someone else's database.
            self._set_wal(conn)
            # FULL: a committed decision survives a power cut, at the cost of
            # an fsync per commit (batches amortise it with record_many).
            conn.execute("PRAGMA synchronous = FULL")

    @staticmethod
    def _table_names(conn: sqlite3.Connection) -> set[str]:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return {str(r[0]) for r in rows}

    def _set_wal(self, conn: sqlite3.Connection) -> None:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            raise AuditError(
                f"audit trail {self.path}: cannot switch to WAL journal mode (got {mode!r})"
            )

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        # Statement by statement: executescript() would COMMIT our
        # BEGIN IMMEDIATE first and lose the lock that makes creation safe.
        for statement in _split_sql(_SCHEMA):
            conn.execute(statement)
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [
                ("format", FORMAT),
                ("format_version", FORMAT_VERSION),
                ("created_at", utc_stamp(self._now())),
                ("entry_count", 0),
                ("last_hash", GENESIS_HASH),
            ],
        )

    def _check_format(self, conn: sqlite3.Connection) -> None:
        not_ours = AuditError(f"{self.path} is not a calfrehab audit trail")
        if "meta" not in self._table_names(conn):
            raise not_ours
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.Error as exc:  # a foreign table that happens to be called meta
            raise not_ours from exc
        if meta.get("format") != FORMAT:
            raise not_ours
        version = meta.get("format_version")
        if isinstance(version, str) and version.isdigit():
            version = int(version)  # written as text by some other tool: same number
        if not isinstance(version, int) or isinstance(version, bool):
            raise AuditError(
                f"audit trail {self.path} has an unreadable format_version {version!r}"
            )
        if version != FORMAT_VERSION:
            newer = "a newer" if version > FORMAT_VERSION else "an unsupported"
            raise AuditError(
                f"audit trail {self.path} has {newer} format version {version}; "
                f"this calfrehab reads format version {FORMAT_VERSION} only"
            )

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        # Called while another exception propagates: never mask it.
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")

    def _now(self) -> datetime:
        try:
            return checked_now(self._clock)
        except CalfrehabError as exc:
            raise AuditError(f"the audit clock: {exc}") from exc

    # ----------------------------------------------------------- appending

    def record(
        self,
        decision: Mapping[str, Any],
        case_document: Mapping[str, Any],
        clinician: str | None = None,
    ) -> AuditEntry:
        """Append one decision with the case it was made for."""
        return self.record_many([(decision, case_document)], clinician)[0]

    def record_many(
        self,
        items: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]],
        clinician: str | None = None,
    ) -> list[AuditEntry]:
        """Append several decisions in one transaction: all or none.

        One commit (one fsync) per batch is what keeps a batch run fast
        with ``synchronous=FULL``. Raises AuditError, appending nothing, if
        any item is invalid or any decision_id is already recorded.
        """
        who = _normalise_clinician(clinician)
        prepared = [_prepare_decision(d, c, who) for d, c in items]
        if not prepared:
            return []
        seen: set[str] = set()
        for row in prepared:
            if row["decision_id"] in seen:
                raise AuditError(f"decision {row['decision_id']} appears twice in one batch")
            seen.add(row["decision_id"])

        def build(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            for row in prepared:
                if self._decision_row(conn, row["decision_id"]) is not None:
                    raise AuditError(
                        f"decision {row['decision_id']} is already recorded in the audit trail"
                    )
            return prepared

        return self._append(build)

    def override(
        self,
        decision_id: str,
        clinician: str,
        reason: str,
        track: str | None = None,
        decision: str | None = None,
    ) -> AuditEntry:
        """Append a clinician's override of a recorded decision.

        The decision entry itself is never changed; the override is a new
        entry that points at it. ``track`` and ``decision`` (the decision
        the clinician chose for that track) come together or not at all;
        without them the override records disagreement with the decision as
        a whole, e.g. a referral the rules did not make.
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
            allowed = STRAIGHT_KNEE_DECISIONS if track == "straight_knee" else DECISION_KINDS
            if decision not in allowed:
                raise AuditError(
                    f"{decision!r} is not a decision for track {track}; "
                    f"allowed: {', '.join(allowed)}"
                )
        payload = {
            "decision_id": decision_id,
            "clinician": who,
            "reason": reason.strip(),
            "track": track,
            "decision": decision,
        }

        def build(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            # Looked up under the write lock, though nothing can remove a
            # decision: it keeps "the override points at a real decision"
            # a property of one transaction.
            original = self._decision_row(conn, decision_id)
            if original is None:
                raise AuditError(f"no decision {decision_id} in audit trail {self.path}")
            return [
                {
                    "kind": "override",
                    "clinician": who,
                    "decision_id": decision_id,
                    "case_id": original["case_id"],
                    "case_sha256": original["case_sha256"],
                    "review_date": original["review_date"],
                    "rulebase_version": original["rulebase_version"],
                    "rulebase_sha256": original["rulebase_sha256"],
                    "engine_version": original["engine_version"],
                    "case_json": None,
                    "decision_json": canonical_json(payload),
                }
            ]

        return self._append(build)[0]

    def _append(
        self, build: Callable[[sqlite3.Connection], Sequence[Mapping[str, Any]]]
    ) -> list[AuditEntry]:
        """Chain and insert rows under the write lock.

        BEGIN IMMEDIATE takes the lock before the head is read, so two
        processes cannot both extend the same head (a fork in the chain);
        the second one waits (busy_timeout) and then sees the first's rows.
        The rows and the new head in ``meta`` commit together.
        """
        conn = self._connection()
        with self._errors("record"):
            conn.execute("BEGIN IMMEDIATE")
            try:
                count, last_hash = self._head(conn)
                self._check_head(conn, count, last_hash)
                rows = build(conn)
                entries: list[AuditEntry] = []
                for partial in rows:
                    count += 1
                    row: dict[str, Any] = {
                        **partial,
                        "seq": count,
                        "entry_id": uuid.uuid4().hex,
                        "recorded_at": utc_stamp(self._now()),
                        "prev_hash": last_hash,
                    }
                    row["entry_hash"] = _entry_hash(row)
                    conn.execute(_INSERT_ENTRY, [row[c] for c in ENTRY_COLUMNS])
                    last_hash = row["entry_hash"]
                    entries.append(_entry_from_row(row))
                conn.execute("UPDATE meta SET value = ? WHERE key = 'entry_count'", (count,))
                conn.execute("UPDATE meta SET value = ? WHERE key = 'last_hash'", (last_hash,))
                conn.execute("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise
        return entries

    @staticmethod
    def _head(conn: sqlite3.Connection) -> tuple[int, str]:
        meta = dict(
            conn.execute(
                "SELECT key, value FROM meta WHERE key IN ('entry_count', 'last_hash')"
            ).fetchall()
        )
        count, last_hash = meta.get("entry_count"), meta.get("last_hash")
        if not isinstance(count, int) or not isinstance(last_hash, str):
            raise AuditError("audit trail meta has no valid entry_count/last_hash")
        return count, last_hash

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

    @staticmethod
    def _rows(
        conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()
    ) -> list[dict[str, Any]]:
        cur = conn.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def _decision_row(self, conn: sqlite3.Connection, decision_id: str) -> dict[str, Any] | None:
        # The literal kind = 'decision' lets SQLite use the partial unique index.
        rows = self._rows(
            conn, f"{_SELECT_ENTRY} WHERE kind = 'decision' AND decision_id = ?", (decision_id,)
        )
        return rows[0] if rows else None

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
            clauses.append("case_id = ?")
            params.append(case_id)
        if since is not None:
            if isinstance(since, datetime):
                since = since.date()
            # recorded_at is "YYYY-MM-DDT...Z", which sorts after the bare
            # date of the same day and before the next day's.
            clauses.append("recorded_at >= ?")
            params.append(since.isoformat())
        if kind is not None:
            if kind not in ("decision", "override"):
                raise AuditError(f"unknown entry kind {kind!r}; use decision or override")
            clauses.append("kind = ?")
            params.append(kind)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._errors("read entries"):
            rows = self._rows(self._connection(), f"{_SELECT_ENTRY}{where} ORDER BY seq", params)
        return [_entry_from_row(r) for r in rows]

    def get(self, decision_id: str) -> AuditEntry:
        """The decision entry with this decision_id (AuditError if none)."""
        with self._errors("read entries"):
            row = self._decision_row(self._connection(), decision_id)
        if row is None:
            raise AuditError(f"no decision {decision_id} in audit trail {self.path}")
        return _entry_from_row(row)

    def overrides_for(self, decision_id: str) -> list[AuditEntry]:
        """The overrides of one decision, oldest first (AuditError if the
        decision itself is unknown, so a mistyped id is not read as "none")."""
        self.get(decision_id)
        with self._errors("read entries"):
            rows = self._rows(
                self._connection(),
                f"{_SELECT_ENTRY} WHERE kind = 'override' AND decision_id = ? ORDER BY seq",
                (decision_id,),
            )
        return [_entry_from_row(r) for r in rows]

    def has_decision(self, case_sha256: str, rulebase_sha256: str) -> bool:
        """Whether this exact case was already decided under this rulebase
        (what ``batch --resume`` skips)."""
        with self._errors("read entries"):
            row = (
                self._connection()
                .execute(
                    "SELECT 1 FROM entries WHERE kind = 'decision' "
                    "AND case_sha256 = ? AND rulebase_sha256 = ? LIMIT 1",
                    (case_sha256, rulebase_sha256),
                )
                .fetchone()
            )
        return row is not None

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
        """Recompute the whole chain in seq order and compare the end with
        ``meta``. Stops at the first problem."""
        with self._snapshot("verify") as conn:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            cur = conn.execute(f"{_SELECT_ENTRY} ORDER BY seq")
            return _verify_rows(
                (dict(zip(ENTRY_COLUMNS, r, strict=True)) for r in cur),
                meta.get("entry_count"),
                meta.get("last_hash"),
            )

    # ----------------------------------------------------------- exporting

    def export(self, fmt: ExportFormat, out: TextIO) -> int:
        """Write every entry to ``out``; returns the number written.

        ``jsonl``: one canonical JSON object per line with every stored
        field, ``case_json``/``decision_json`` parsed into ``case`` and
        ``decision`` (``canonical_json(case)`` gives back the stored text,
        so the export can be checked against the hashes).

        ``csv``: a header and one flat row per entry (see
        :data:`CSV_COLUMNS`); no JSON blobs. Rows end in ``\\n``.
        """
        if fmt not in ("jsonl", "csv"):
            raise AuditError(f"unknown export format {fmt!r}; use jsonl or csv")
        writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
        if writer is not None:
            writer.writerow(CSV_COLUMNS)
        written = 0
        with self._snapshot("export") as conn:
            cur = conn.execute(f"{_SELECT_ENTRY} ORDER BY seq")
            for raw in cur:
                row = dict(zip(ENTRY_COLUMNS, raw, strict=True))
                entry = _entry_from_row(row)  # validates; raises on a damaged row
                if writer is None:
                    obj = {
                        c: row[c] for c in ENTRY_COLUMNS if c not in ("case_json", "decision_json")
                    }
                    obj["case"] = entry.case
                    obj["decision"] = entry.decision
                    out.write(canonical_json(obj) + "\n")
                else:
                    writer.writerow(_csv_row(row, entry))
                written += 1
        return written


CSV_COLUMNS: Final = (
    "seq",
    "recorded_at",
    "kind",
    "case_id",
    "decision_id",
    "review_date",
    "outcome",
    *TRACKS,
    "override_track",
    "override_decision",
    "reason",
    "clinician",
    "rulebase_version",
    "rulebase_sha256",
    "engine_version",
    "case_sha256",
    "entry_id",
    "prev_hash",
    "entry_hash",
)


def _csv_row(row: Mapping[str, Any], entry: AuditEntry) -> list[str]:
    doc = entry.decision
    flat: dict[str, Any] = {c: row.get(c) for c in CSV_COLUMNS}
    if entry.kind == "decision":
        # The engine owns the rest of the document; read defensively so an
        # unexpected shape leaves a blank cell rather than failing the export.
        flat["outcome"] = doc.get("outcome")
        tracks = doc.get("tracks")
        for track in TRACKS:
            info = tracks.get(track) if isinstance(tracks, dict) else None
            flat[track] = info.get("decision") if isinstance(info, dict) else None
    else:
        flat["override_track"] = doc.get("track")
        flat["override_decision"] = doc.get("decision")
        flat["reason"] = doc.get("reason")
    return ["" if flat[c] is None else str(flat[c]) for c in CSV_COLUMNS]


def _verify_rows(
    rows: Iterable[Mapping[str, Any]], meta_count: object, meta_last_hash: object
) -> VerifyReport:
    checked = 0
    prev = GENESIS_HASH

    def bad(seq: int, problem: str) -> VerifyReport:
        return VerifyReport(False, checked, seq, problem, prev)

    for row in rows:
        expected_seq = checked + 1
        checked += 1
        seq = row["seq"]
        if seq != expected_seq:
            if isinstance(seq, int) and seq > expected_seq:
                return bad(
                    expected_seq,
                    f"entry seq {expected_seq} is missing (next entry is seq {seq}): "
                    "entries were deleted",
                )
            return bad(expected_seq, f"unexpected seq {seq!r} where seq {expected_seq} belongs")
        if row["prev_hash"] != prev:
            return bad(
                seq,
                f"entry seq {seq} does not link to "
                + (f"entry seq {seq - 1}" if seq > 1 else "the start of the trail")
                + ": entries were removed, reordered or inserted",
            )
        try:
            recomputed = _entry_hash(row)
        except (TypeError, ValueError) as exc:
            return bad(seq, f"entry seq {seq} holds a value that is not text or number: {exc}")
        if recomputed != row["entry_hash"]:
            return bad(seq, f"entry seq {seq} was altered: its hash does not match its content")
        prev = recomputed

    if not isinstance(meta_count, int) or not isinstance(meta_last_hash, str):
        return VerifyReport(
            False,
            checked,
            None,  # not one entry's fault
            "meta has no valid entry_count/last_hash",
            prev,
        )
    if checked < meta_count:
        return VerifyReport(
            False,
            checked,
            checked + 1,
            f"the trail has {checked} entries but recorded {meta_count}: "
            "entries were removed from the end",
            prev,
        )
    if checked > meta_count:
        return VerifyReport(
            False,
            checked,
            meta_count + 1,
            f"the trail has {checked} entries but recorded {meta_count}: "
            "entries were added outside calfrehab",
            prev,
        )
    if prev != meta_last_hash:
        return VerifyReport(
            False,
            checked,
            checked if checked else 1,
            "the last entry's hash does not match the one recorded in meta",
            prev,
        )
    return VerifyReport(True, checked, None, None, prev)


def _split_sql(script: str) -> list[str]:
    """Split the schema into statements; trigger bodies hold their own ';'."""
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
