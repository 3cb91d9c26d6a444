"""The audit trail (calfrehab/engine/trail/audit.py): recording, reading, the hash chain
against tampering, concurrent writers, crashes, and the exports."""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import multiprocessing
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from calfrehab.engine.canonical import canonical_bytes, canonical_json, case_sha256, sha256_hex
from calfrehab.engine.errors import CalfrehabError
from calfrehab.engine.trail import codec
from calfrehab.engine.trail.audit import (
    ENTRY_COLUMNS,
    GENESIS_HASH,
    AuditEntry,
    AuditError,
    AuditTrail,
    default_audit_path,
)
from calfrehab.engine.trail.chain import entry_hash

RULEBASE_SHA = "a" * 64

# ----------------------------------------------------------------- helpers


def make_case(n: int, case_id: str | None = None) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "case_id": case_id or f"RUN-{n:04d}",
        "review_date": "2026-11-20",
        "patient": {"age_years": 30 + n % 50, "goal": "running"},
        "condition": {"kind": "achilles_midportion", "side": "left"},
        "program": {
            "straight_knee": {"exercise": "two_leg_heel_raise", "sets": 3, "reps": 15},
            "bent_knee": None,
        },
        # non-ASCII on purpose: canonical JSON keeps it as is
        "sessions": [{"date": "2026-11-19", "note": "Müller, léger"}],
    }


def make_decision(
    case: dict[str, Any], n: int, *, rulebase_sha: str = RULEBASE_SHA, **extra: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": 1,
        "decision_id": f"dec-{case['case_id']}-{n}",
        "case_id": case["case_id"],
        "review_date": case["review_date"],
        "outcome": "continue",
        "tracks": {
            "straight_knee": {"decision": "progress", "current": None, "next": None},
            "bent_knee": {"decision": "start", "current": None, "next": None},
            "energy_storage": {"decision": "not_started", "current": None, "next": None},
        },
        "reasons": [{"rule": "r1", "text": "why", "sources": ["Silbernagel 2007"]}],
        "rulebase": {"version": "2026.1", "sha256": rulebase_sha},
    }
    doc.update(extra)
    return doc


def pair(n: int, **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    case = make_case(n)
    return make_decision(case, n, **extra), case


@contextlib.contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection, as a tamperer would use; the append-only
    triggers and the one-decision-per-id index are dropped first (a
    tamperer would do that too)."""
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER IF EXISTS entries_no_update")
    conn.execute("DROP TRIGGER IF EXISTS entries_no_delete")
    conn.execute("DROP INDEX IF EXISTS entries_decision_once")  # lets rows trade places
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()


def verify(path: Path) -> Any:
    with AuditTrail(path) as trail:
        return trail.verify()


class StepClock:
    """A clock that returns the given instants one after another."""

    def __init__(self, *moments: datetime) -> None:
        self.moments = list(moments)

    def __call__(self) -> datetime:
        return self.moments.pop(0)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "audit.sqlite3"


@pytest.fixture
def filled(path: Path) -> Path:
    """A trail of 5 entries: decisions at seq 1-4, an override at seq 5."""
    with AuditTrail(path) as trail:
        for n in range(1, 5):
            trail.record(*pair(n), clinician="dr a" if n % 2 else None)
        trail.override("dec-RUN-0002-2", "dr b", "pain 6/10 next morning", "bent_knee", "hold")
        assert trail.verify().ok
    return path


# ------------------------------------------------------ recording, reading


def test_a_new_trail_and_its_journal_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    # A trail holds whole case files: no wider than the batch's own outputs,
    # whatever the umask. SQLite gives the -wal and -shm files the
    # database file's permissions.
    before = os.umask(0o022)
    try:
        path = tmp_path / "new.sqlite3"
        with AuditTrail(path) as trail:
            trail.record(*pair(1))
            files = sorted(tmp_path.iterdir())
            modes = {p.name: oct(p.stat().st_mode & 0o777) for p in files}
        assert {p.name for p in files} >= {"new.sqlite3", "new.sqlite3-wal"}
        assert set(modes.values()) == {"0o600"}, modes
        # An existing trail's permissions are the clinic's choice: kept.
        path.chmod(0o640)
        with AuditTrail(path) as trail:
            trail.record(*pair(2))
        assert path.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(before)


def test_an_adopted_empty_file_becomes_as_private_as_a_new_trail(tmp_path: Path) -> None:
    # `next --audit T` with T an existing empty file (touch T) makes it a
    # trail: it then holds case documents, so it is owner-only like a trail
    # calfrehab creates, journal included (it kept 0644 before).
    before = os.umask(0o022)
    try:
        path = tmp_path / "touched.sqlite3"
        path.touch(mode=0o644)
        assert path.stat().st_mode & 0o777 == 0o644
        with AuditTrail(path) as trail:
            trail.record(*pair(1))
            modes = {p.name: oct(p.stat().st_mode & 0o777) for p in tmp_path.iterdir()}
        assert "touched.sqlite3-wal" in modes
        assert set(modes.values()) == {"0o600"}, modes
    finally:
        os.umask(before)


def test_record_round_trip(path: Path) -> None:
    decision, case = pair(1)
    with AuditTrail(path) as trail:
        entry = trail.record(decision, case, clinician="  Dr Ana Müller ")
        assert entry.seq == 1
        assert entry.kind == "decision"
        assert entry.decision == decision
        assert entry.case == case
        assert entry.case_id == "RUN-0001"
        assert entry.review_date == date(2026, 11, 20)
        assert entry.rulebase_version == "2026.1"
        assert entry.rulebase_sha256 == RULEBASE_SHA
        assert entry.engine_version == ""  # absent from the decision
        assert entry.case_sha256 == case_sha256(case)  # computed when absent
        assert entry.clinician == "Dr Ana Müller"
        assert entry.recorded_at.tzinfo is not None
        assert abs(entry.recorded_at - datetime.now(UTC)) < timedelta(minutes=1)
        assert entry.prev_hash == GENESIS_HASH
        assert len(entry.entry_id) == 32
        assert trail.get(decision["decision_id"]) == entry
        assert trail.entries() == [entry]
    # and from a fresh process-like reopen, byte for byte
    with AuditTrail(path) as trail:
        assert trail.get(decision["decision_id"]) == entry
    conn = sqlite3.connect(path)
    body, sha = conn.execute("SELECT body, sha256 FROM cases").fetchone()
    dicts = dict(conn.execute("SELECT id, body FROM dictionaries").fetchall())
    conn.close()
    stored = codec.decompress(body, dicts)
    assert stored == canonical_json(case).encode("utf-8")
    assert sha == case_sha256(case)
    assert len(body) < len(stored)  # compressed


def test_decision_supplied_fields_are_kept(path: Path) -> None:
    decision, case = pair(1, engine_version="0.1.0", case_sha256="b" * 64)
    with AuditTrail(path) as trail:
        entry = trail.record(decision, case, clinician="")
    assert entry.engine_version == "0.1.0"
    assert entry.case_sha256 == "b" * 64
    assert entry.clinician is None  # "" is stored as "nobody said"


def test_filters(path: Path) -> None:
    day = datetime(2026, 11, 20, 23, 59, 59, tzinfo=UTC)
    clock = StepClock(day - timedelta(days=2), day - timedelta(days=1), day, day)
    AuditTrail(path).close()  # created first: creation reads the clock too
    with AuditTrail(path, clock=clock) as trail:
        trail.record(*pair(1))
        trail.record(*pair(2))
        trail.record(*pair(3))
        trail.override("dec-RUN-0001-1", "dr b", "disagree")
        assert [e.seq for e in trail.entries()] == [1, 2, 3, 4]
        assert [e.seq for e in trail.entries(case_id="RUN-0001")] == [1, 4]
        assert [e.seq for e in trail.entries(kind="override")] == [4]
        assert [e.seq for e in trail.entries(kind="decision")] == [1, 2, 3]
        assert [e.seq for e in trail.entries(since=date(2026, 11, 19))] == [2, 3, 4]
        assert [e.seq for e in trail.entries(since=date(2026, 11, 20))] == [3, 4]
        assert trail.entries(since=date(2026, 11, 21)) == []
        assert [e.seq for e in trail.entries("RUN-0001", date(2026, 11, 20), "override")] == [4]
        assert trail.entries(case_id="RUN-9999") == []
        with pytest.raises(AuditError, match="kind"):
            trail.entries(kind="bogus")  # type: ignore[arg-type]


def test_recorded_at_is_utc_with_z(path: Path) -> None:
    from datetime import timezone

    plus_two = timezone(timedelta(hours=2))
    clock = StepClock(datetime(2026, 11, 21, 1, 30, tzinfo=plus_two))
    AuditTrail(path).close()
    with AuditTrail(path, clock=clock) as trail:
        trail.record(*pair(1))
    stamp = sqlite3.connect(path).execute("SELECT recorded_at FROM entries").fetchone()[0]
    assert stamp == "2026-11-20T23:30:00.000000Z"


def test_get_and_overrides_for_unknown_decision(path: Path) -> None:
    with AuditTrail(path) as trail:
        trail.record(*pair(1))
        with pytest.raises(AuditError, match="no decision nope"):
            trail.get("nope")
        with pytest.raises(AuditError, match="no decision nope"):
            trail.overrides_for("nope")
        assert trail.overrides_for("dec-RUN-0001-1") == []


def test_has_decision(path: Path) -> None:
    decision, case = pair(1)
    with AuditTrail(path) as trail:
        assert not trail.has_decision(case_sha256(case), RULEBASE_SHA)
        trail.record(decision, case)
        assert trail.has_decision(case_sha256(case), RULEBASE_SHA)
        assert not trail.has_decision(case_sha256(case), "c" * 64)  # other rulebase
        assert not trail.has_decision(case_sha256(make_case(2)), RULEBASE_SHA)
        # an override carries the case hash too but is not a decision
        trail.override(decision["decision_id"], "dr b", "no")
        plan = sqlite3.connect(path).execute(
            "EXPLAIN QUERY PLAN SELECT 1 FROM entries WHERE kind = 'decision' "
            "AND case_sha256 = ? AND rulebase_sha256 = ? LIMIT 1",
            ("x", "y"),
        )
        assert "entries_by_input" in " ".join(str(r) for r in plan)


def test_record_many_is_one_transaction(path: Path) -> None:
    with AuditTrail(path) as trail:
        got = trail.record_many([pair(n) for n in range(1, 4)], clinician="batch")
        assert [e.seq for e in got] == [1, 2, 3]
        assert [e.prev_hash for e in got[1:]] == [e.entry_hash for e in got[:2]]
        assert trail.record_many([]) == []

        # one bad item (no rulebase) and nothing of the batch is stored
        bad = pair(5)
        del bad[0]["rulebase"]
        with pytest.raises(AuditError, match="rulebase"):
            trail.record_many([pair(4), bad])
        # one already-recorded decision and nothing of the batch is stored
        with pytest.raises(AuditError, match="already recorded") as refused:
            trail.record_many([pair(4), pair(2)])
        # The rows go in with one executemany, so the refusal is of the
        # batch: the message still names the decision the trail held, not
        # the batch's first.
        assert pair(2)[0]["decision_id"] in str(refused.value)
        assert pair(4)[0]["decision_id"] not in str(refused.value)
        with pytest.raises(AuditError, match="already recorded") as refused:
            trail.record_many([pair(4), pair(5), pair(3)])
        assert f"decision {pair(3)[0]['decision_id']} is" in str(refused.value)
        with pytest.raises(AuditError, match="twice"):
            trail.record_many([pair(4), pair(4)])
        assert len(trail) == 3
        assert trail.verify().ok
        # the chain goes on from where it was
        assert trail.record(*pair(4)).seq == 4


def test_failure_mid_batch_rolls_back_the_whole_batch(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import calfrehab.engine.trail.audit as audit_module

    calls = 0
    from calfrehab.engine.trail.chain import entry_hash as real_hash  # what audit.py uses

    def failing_hash(row: Any) -> str:
        # fails while the third row of the batch is being chained, after
        # two rows were chained inside the transaction (the clock is read
        # once per transaction, so it can no longer fail midway)
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("hashing failed")
        return real_hash(row)

    AuditTrail(path).close()
    with AuditTrail(path) as trail:
        monkeypatch.setattr(audit_module, "entry_hash", failing_hash)
        with pytest.raises(RuntimeError, match="hashing failed"):
            trail.record_many([pair(n) for n in range(1, 4)])
        monkeypatch.setattr(audit_module, "entry_hash", real_hash)
        assert len(trail) == 0
        assert trail.verify().ok
        assert [e.seq for e in trail.record_many([pair(n) for n in range(1, 4)])] == [1, 2, 3]
        assert trail.verify().ok


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"decision_id": ""}, "decision_id"),
        ({"case_id": None}, "case_id"),
        ({"review_date": "20261120"}, "YYYY-MM-DD"),
        ({"review_date": "2026-02-30"}, "not a valid date"),
        ({"rulebase": {"version": "1"}}, "sha256"),
        ({"engine_version": 3}, "engine_version"),
        ({"case_id": "RUN-0002"}, "case document has 'RUN-0001'"),
        ({"outcome": float("nan")}, "JSON"),
        ({"when": date(2026, 1, 1)}, "JSON"),
    ],
)
def test_record_rejects_bad_decisions(path: Path, change: dict[str, Any], message: str) -> None:
    decision, case = pair(1)
    decision.update(change)
    with AuditTrail(path) as trail:
        with pytest.raises(AuditError, match=message):
            trail.record(decision, case)
        assert len(trail) == 0


def test_entries_are_append_only_through_sql(filled: Path) -> None:
    conn = sqlite3.connect(filled)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE entries SET clinician = 'x' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM entries WHERE seq = 5")


def test_wal_and_full_sync(path: Path) -> None:
    with AuditTrail(path) as trail:
        conn = trail._connection()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
    meta = dict(sqlite3.connect(path).execute("SELECT key, value FROM meta").fetchall())
    assert meta["format"] == "calfrehab-audit"
    assert meta["format_version"] == 4


def test_lock_timeout_is_an_audit_error(path: Path) -> None:
    AuditTrail(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with AuditTrail(path, timeout=0.2) as trail:
            started = time.monotonic()
            with pytest.raises(AuditError, match="locked"):
                trail.record(*pair(1))
            assert time.monotonic() - started >= 0.15
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_closed_trail(path: Path) -> None:
    trail = AuditTrail(path)
    trail.close()
    trail.close()  # idempotent
    with pytest.raises(AuditError, match="closed"):
        trail.entries()


# ------------------------------------------------------------ opening


def test_creates_parent_directories(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "audit.sqlite3"
    with AuditTrail(target) as trail:
        trail.record(*pair(1))
    assert target.is_file()


def test_empty_file_becomes_a_trail(path: Path) -> None:
    path.touch()
    with AuditTrail(path) as trail:
        assert trail.record(*pair(1)).seq == 1


def test_not_sqlite(path: Path) -> None:
    path.write_text('{"case_id": "RUN-1"}\n' * 20)
    with pytest.raises(AuditError, match="not a SQLite database") as info:
        AuditTrail(path)
    assert isinstance(info.value, CalfrehabError)  # the CLI's clean-message base
    path.write_bytes(b"SQL")  # shorter than any header
    with pytest.raises(AuditError, match="not a SQLite database"):
        AuditTrail(path)


def test_sqlite_header_but_garbage(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 2000)
    with pytest.raises(AuditError):
        AuditTrail(path)


def test_foreign_sqlite_db_is_refused_and_left_alone(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE patients (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO patients (name) VALUES ('x')")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(AuditError, match="is not a calfrehab audit trail"):
        AuditTrail(path)
    assert path.read_bytes() == before  # not converted to WAL, nothing created
    assert not Path(f"{path}-wal").exists()


@pytest.mark.parametrize(
    "meta_sql",
    [
        "CREATE TABLE meta (x TEXT)",  # a meta table of another shape
        "CREATE TABLE meta (key TEXT, value TEXT); INSERT INTO meta VALUES ('format', 'other')",
    ],
)
def test_foreign_meta_table(path: Path, meta_sql: str) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(meta_sql)
    conn.close()
    with pytest.raises(AuditError, match="is not a calfrehab audit trail"):
        AuditTrail(path)


def test_newer_format_version(path: Path) -> None:
    AuditTrail(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = 5 WHERE key = 'format_version'")
    conn.commit()
    conn.close()
    with pytest.raises(AuditError, match=r"format version 5.*format versions 1, 2, 3, 4$") as info:
        AuditTrail(path)
    assert "newer" in str(info.value)


def test_directory_path(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match="directory"):
        AuditTrail(tmp_path)


def test_default_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CALFREHAB_AUDIT", str(tmp_path / "x.sqlite3"))
    monkeypatch.setenv("XDG_DATA_HOME", "/xdg")
    assert default_audit_path() == tmp_path / "x.sqlite3"
    monkeypatch.delenv("CALFREHAB_AUDIT")
    assert default_audit_path() == Path("/xdg/calfrehab/audit.sqlite3")
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_audit_path() == tmp_path / ".local/share/calfrehab/audit.sqlite3"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_audit_path() == tmp_path / ".local/share/calfrehab/audit.sqlite3"
    # AuditTrail() with no path uses it, creating the directories
    with AuditTrail() as trail:
        trail.record(*pair(1))
    assert (tmp_path / ".local/share/calfrehab/audit.sqlite3").is_file()


# ------------------------------------------------------------ overrides


def test_override_appends_and_keeps_original(path: Path) -> None:
    decision, case = pair(1)
    with AuditTrail(path) as trail:
        original = trail.record(decision, case, clinician="dr a")
        first = trail.override(
            decision["decision_id"], "dr b", " patient flared ", "straight_knee", "regress"
        )
        second = trail.override(decision["decision_id"], "dr c", "refer to sports physician")
        assert first.kind == "override"
        assert first.seq == 2
        assert first.case is None
        assert first.decision == {
            "decision_id": decision["decision_id"],
            "clinician": "dr b",
            "reason": "patient flared",
            "track": "straight_knee",
            "decision": "regress",
        }
        # linked to the decision's case and rulebase, so case filters find it
        assert (first.case_id, first.case_sha256, first.rulebase_sha256) == (
            original.case_id,
            original.case_sha256,
            original.rulebase_sha256,
        )
        assert trail.get(decision["decision_id"]) == original
        assert trail.overrides_for(decision["decision_id"]) == [first, second]
        assert len(trail.entries(case_id="RUN-0001")) == 3
        assert trail.verify().ok


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", "dr b", "why"), "no decision nope"),
        (("dec-RUN-0001-1", "", "why"), "clinician"),
        (("dec-RUN-0001-1", "   ", "why"), "clinician"),
        (("dec-RUN-0001-1", "dr b", ""), "reason"),
        (("dec-RUN-0001-1", "dr b", "  \n"), "reason"),
        (("dec-RUN-0001-1", "dr b", "why", "bent_knee"), "together"),
        (("dec-RUN-0001-1", "dr b", "why", None, "hold"), "together"),
        (("dec-RUN-0001-1", "dr b", "why", "hamstring", "hold"), "unknown track"),
        (("dec-RUN-0001-1", "dr b", "why", "bent_knee", "jump"), "not a decision"),
        (("dec-RUN-0001-1", "dr b", "why", "straight_knee", "begin"), "not a decision"),
    ],
)
def test_override_validation(path: Path, args: tuple[Any, ...], message: str) -> None:
    with AuditTrail(path) as trail:
        trail.record(*pair(1))
        with pytest.raises(AuditError, match=message):
            trail.override(*args)
        assert len(trail) == 1


def test_override_of_an_override_is_refused(path: Path) -> None:
    with AuditTrail(path) as trail:
        trail.record(*pair(1))
        over = trail.override("dec-RUN-0001-1", "dr b", "why")
        with pytest.raises(AuditError, match="no decision"):
            trail.override(over.entry_id, "dr b", "why")


# ------------------------------------------------------------ tampering


def test_chain_links(filled: Path) -> None:
    with AuditTrail(filled) as trail:
        entries = trail.entries()
        report = trail.verify()
    assert report.ok
    assert report.entries_checked == 5
    assert report.first_bad_seq is None and report.problem is None
    assert report.last_hash == entries[-1].entry_hash
    assert entries[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.entry_hash
    assert len({e.entry_hash for e in entries}) == 5


def test_empty_trail_verifies(path: Path) -> None:
    with AuditTrail(path) as trail:
        report = trail.verify()
    assert report.ok and report.entries_checked == 0 and report.last_hash == GENESIS_HASH


def _tampered(column: str, value: Any) -> Any:
    """A different value of the same kind, as a careful forger would write."""
    if column == "seq":
        return 100
    if column == "kind":
        return "override" if value == "decision" else "decision"
    if value is None:
        return "0" * 64 if column in ("v1_hash", "case_body_sha256") else "mallory"
    if value == "":  # engine_version absent from the decision
        return "9.9.9"
    if column == "decision_body":
        # still a valid stream of valid JSON, one fact changed
        doc = json.loads(codec.decompress(value, codec.shipped_dictionaries()))
        doc["outcome"] = "EDITED"
        return codec.compress("decision", canonical_json(doc).encode("utf-8"))
    if column == "review_date":
        return "2026-11-21"
    if column == "recorded_at":
        return value.replace(value[:4], str(int(value[:4]) - 1), 1)
    assert isinstance(value, str) and value
    return ("0" if value[0] != "0" else "1") + value[1:]


def test_tamper_parameters_cover_every_column(filled: Path) -> None:
    columns = [r[1] for r in sqlite3.connect(filled).execute("PRAGMA table_info(entries)")]
    assert tuple(columns) == ENTRY_COLUMNS


@pytest.mark.parametrize("column", ENTRY_COLUMNS)
@pytest.mark.parametrize("seq", [1, 3, 5])
def test_editing_any_field_is_caught(filled: Path, column: str, seq: int) -> None:
    with raw(filled) as conn:
        (value,) = conn.execute(f"SELECT {column} FROM entries WHERE seq = ?", (seq,)).fetchone()
        new = _tampered(column, value)
        assert new != value
        conn.execute(f"UPDATE entries SET {column} = ? WHERE seq = ?", (new, seq))
    report = verify(filled)
    assert not report.ok
    assert report.first_bad_seq == seq
    assert report.problem


def test_edit_with_rehashed_row_is_caught_at_the_next(filled: Path) -> None:
    # The forger edits entry 2 and recomputes its own hash; entry 3 still
    # points at the old hash.
    with raw(filled) as conn:
        conn.row_factory = sqlite3.Row
        row = dict(conn.execute("SELECT * FROM entries WHERE seq = 2").fetchone())
        doc = json.loads(codec.decompress(row["decision_body"], codec.shipped_dictionaries()))
        doc["outcome"] = "refer"
        text = canonical_json(doc).encode("utf-8")
        row["decision_body"] = codec.compress("decision", text)
        row["decision_body_sha256"] = sha256_hex(text)
        row["entry_hash"] = entry_hash(row)
        conn.execute(
            "UPDATE entries SET decision_body = ?, decision_body_sha256 = ?, entry_hash = ? "
            "WHERE seq = 2",
            (row["decision_body"], row["decision_body_sha256"], row["entry_hash"]),
        )
    report = verify(filled)
    assert (report.ok, report.first_bad_seq) == (False, 3)
    assert "does not link" in (report.problem or "")


def test_deleting_a_middle_entry_is_caught(filled: Path) -> None:
    with raw(filled) as conn:
        conn.execute("DELETE FROM entries WHERE seq = 3")
    report = verify(filled)
    assert (report.ok, report.first_bad_seq) == (False, 3)
    assert "missing" in (report.problem or "")


def test_deleting_and_renumbering_is_caught(filled: Path) -> None:
    with raw(filled) as conn:
        conn.execute("DELETE FROM entries WHERE seq = 3")
        conn.execute("UPDATE entries SET seq = seq - 1 WHERE seq > 3")
        conn.execute("UPDATE meta SET value = 4 WHERE key = 'entry_count'")
    report = verify(filled)
    assert (report.ok, report.first_bad_seq) == (False, 3)


def test_truncating_the_tail_is_caught(filled: Path) -> None:
    with raw(filled) as conn:
        conn.execute("DELETE FROM entries WHERE seq >= 4")
    report = verify(filled)
    assert (report.ok, report.first_bad_seq) == (False, 4)
    assert "removed from the end" in (report.problem or "")
    # and nothing is appended on top of the evidence
    with AuditTrail(filled) as trail, pytest.raises(AuditError, match="refusing to append"):
        trail.record(*pair(9))


def test_truncation_with_meta_count_fixed_is_caught(filled: Path) -> None:
    with raw(filled) as conn:
        conn.execute("DELETE FROM entries WHERE seq = 5")
        conn.execute("UPDATE meta SET value = 4 WHERE key = 'entry_count'")
    report = verify(filled)
    assert (report.ok, report.first_bad_seq) == (False, 4)
    assert "meta" in (report.problem or "")


def test_swapping_two_entries_is_caught(filled: Path) -> None:
    others = [c for c in ENTRY_COLUMNS if c != "seq"]
    with raw(filled) as conn:
        two = conn.execute(f"SELECT {', '.join(others)} FROM entries WHERE seq = 2").fetchone()
        four = conn.execute(f"SELECT {', '.join(others)} FROM entries WHERE seq = 4").fetchone()
        sets = ", ".join(f"{c} = ?" for c in others)
        # entry_id is UNIQUE: park row 2's first
        conn.execute("UPDATE entries SET entry_id = 'parked' WHERE seq = 2")
        conn.execute(f"UPDATE entries SET {sets} WHERE seq = 4", (*two,))
        conn.execute(f"UPDATE entries SET {sets} WHERE seq = 2", (*four,))
    report = verify(filled)
    assert (report.ok, report.first_bad_seq) == (False, 2)


def _forge_row(conn: sqlite3.Connection, *, rehash: bool) -> None:
    conn.row_factory = sqlite3.Row
    last = dict(conn.execute("SELECT * FROM entries ORDER BY seq DESC LIMIT 1").fetchone())
    forged = dict(
        last,
        seq=last["seq"] + 1,
        entry_id="f" * 32,
        kind="decision",
        decision_id="forged",
        prev_hash=last["entry_hash"],
        decision_body=codec.compress("decision", b'{"decision_id":"forged"}'),
        decision_body_sha256=sha256_hex(b'{"decision_id":"forged"}'),
    )
    forged["entry_hash"] = entry_hash(forged) if rehash else "e" * 64
    conn.execute(
        f"INSERT INTO entries ({', '.join(ENTRY_COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in ENTRY_COLUMNS)})",
        [forged[c] for c in ENTRY_COLUMNS],
    )


@pytest.mark.parametrize("rehash", [True, False], ids=["valid-link", "bad-hash"])
def test_inserting_a_forged_entry_is_caught(filled: Path, rehash: bool) -> None:
    with raw(filled) as conn:
        _forge_row(conn, rehash=rehash)
    report = verify(filled)
    assert (report.ok, report.first_bad_seq) == (False, 6)
    with AuditTrail(filled) as trail, pytest.raises(AuditError, match="refusing to append"):
        trail.record(*pair(9))


def test_inserting_before_the_first_entry_is_caught(filled: Path) -> None:
    with raw(filled) as conn:
        conn.execute(
            "INSERT INTO entries SELECT 0, 'x', kind, recorded_at, clinician, 'x', case_id, "
            "case_sha256, review_date, rulebase_version, rulebase_sha256, engine_version, "
            "case_body_sha256, decision_body_sha256, decision_body, v1_hash, requester, prev_hash, "
            "entry_hash FROM entries WHERE seq = 1"
        )
    report = verify(filled)
    assert (report.ok, report.first_bad_seq) == (False, 1)


def test_meta_head_removed_is_caught(filled: Path) -> None:
    with raw(filled) as conn:
        conn.execute("DELETE FROM meta WHERE key = 'last_hash'")
    report = verify(filled)
    assert not report.ok
    assert report.first_bad_seq is None
    assert "meta" in (report.problem or "")


def test_non_text_value_does_not_crash_verify(filled: Path) -> None:
    with raw(filled) as conn:
        conn.execute("UPDATE entries SET clinician = ? WHERE seq = 2", (b"\x00\x01",))
    report = verify(filled)
    assert (report.ok, report.first_bad_seq) == (False, 2)


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE entries SET decision_body = x'789c0300' WHERE seq = 2",
        "UPDATE entries SET decision_body = 'not a stream' WHERE seq = 2",
        "UPDATE entries SET decision_body = "
        f"x'{codec.compress('decision', b'{not json').hex()}' WHERE seq = 2",
    ],
    ids=["empty-stream", "text", "not-json"],
)
def test_damaged_row_reads_as_audit_error(filled: Path, damage: str) -> None:
    with raw(filled) as conn:
        conn.execute(damage)
    with AuditTrail(filled) as trail:
        with pytest.raises(AuditError, match="seq 2 is corrupt"):
            trail.entries()
        with pytest.raises(AuditError, match="seq 2 is corrupt"):
            trail.export("jsonl", io.StringIO())


# ------------------------------------------------------------ processes


def _concurrent_writer(path: str, who: str, count: int, go: Any) -> None:
    go.wait(30)  # start together, and create the file together
    with AuditTrail(path) as trail:
        for n in range(count):
            case = make_case(n, case_id=f"{who}-{n}")
            trail.record(make_decision(case, n), case, clinician=who)


def test_two_processes_record_concurrently(path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    procs = [
        ctx.Process(target=_concurrent_writer, args=(str(path), who, 200, go))
        for who in ("proc-a", "proc-b")
    ]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with AuditTrail(path) as trail:
        entries = trail.entries()
        report = trail.verify()
    assert report.ok, report
    assert report.entries_checked == 400
    assert [e.seq for e in entries] == list(range(1, 401))
    assert sum(e.clinician == "proc-a" for e in entries) == 200
    assert len({e.decision_id for e in entries}) == 400


def _batch_writer(path: str, committed: Any) -> None:
    with AuditTrail(path) as trail:
        for batch in range(10_000):
            items = []
            for k in range(5):
                n = batch * 5 + k
                case = make_case(n)
                items.append((make_decision(case, n), case))
            trail.record_many(items, clinician="batch")
            committed.value = batch + 1  # after the commit returned


def test_killed_writer_leaves_a_valid_trail(path: Path) -> None:
    AuditTrail(path).close()
    ctx = multiprocessing.get_context("spawn")
    committed = ctx.Value("i", 0, lock=False)
    proc = ctx.Process(target=_batch_writer, args=(str(path), committed))
    proc.start()
    deadline = time.monotonic() + 30
    while committed.value < 20 and time.monotonic() < deadline and proc.is_alive():
        time.sleep(0.005)
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    assert proc.exitcode == -signal.SIGKILL
    batches = committed.value
    assert batches >= 20
    with AuditTrail(path) as trail:
        report = trail.verify()
        count = len(trail)
        assert report.ok, report
        assert report.entries_checked == count
        # whole batches only: a batch is one transaction
        assert count % 5 == 0
        # every batch that reported its commit is there, at most one more
        assert batches * 5 <= count <= batches * 5 + 5
        # and the trail carries on
        assert trail.record(*pair(99_999)).seq == count + 1
        assert trail.verify().ok


# ------------------------------------------------------------ export


def test_export_jsonl(filled: Path) -> None:
    out = io.StringIO()
    with AuditTrail(filled) as trail:
        assert trail.export("jsonl", out) == 5
        entries = trail.entries()
    lines = out.getvalue().splitlines()
    assert len(lines) == 5
    objs = [json.loads(line) for line in lines]
    assert [o["seq"] for o in objs] == [1, 2, 3, 4, 5]
    assert objs[0]["case"] == make_case(1)
    assert objs[0]["decision"] == entries[0].decision
    assert objs[4]["kind"] == "override" and objs[4]["case"] is None
    # the export alone is enough to re-check every hash
    for obj in objs:
        assert "decision_body" not in obj
        assert entry_hash(obj) == obj["entry_hash"]
        assert sha256_hex(canonical_bytes(obj["decision"])) == obj["decision_body_sha256"]
        if obj["case"] is not None:
            assert sha256_hex(canonical_bytes(obj["case"])) == obj["case_body_sha256"]


def test_export_csv(filled: Path) -> None:
    with AuditTrail(filled) as trail:
        trail.override("dec-RUN-0003-3", 'dr, "quoted"', 'line one\nline two, "x"')
        out = io.StringIO()
        assert trail.export("csv", out) == 6
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(rows) == 6
    assert "case_json" not in rows[0] and "decision_json" not in rows[0]
    first = rows[0]
    assert (first["kind"], first["case_id"], first["outcome"]) == (
        "decision",
        "RUN-0001",
        "continue",
    )
    assert (first["straight_knee"], first["bent_knee"], first["energy_storage"]) == (
        "progress",
        "start",
        "not_started",
    )
    assert first["clinician"] == "dr a"
    assert rows[1]["clinician"] == ""
    assert len(first["entry_hash"]) == 64 and first["prev_hash"] == GENESIS_HASH
    over = rows[4]
    assert (over["kind"], over["decision_id"], over["outcome"]) == (
        "override",
        "dec-RUN-0002-2",
        "",
    )
    assert (over["override_track"], over["override_decision"]) == ("bent_knee", "hold")
    assert over["reason"] == "pain 6/10 next morning"
    assert rows[5]["reason"] == 'line one\nline two, "x"'
    assert rows[5]["clinician"] == 'dr, "quoted"'


def test_export_unknown_format(filled: Path) -> None:
    with AuditTrail(filled) as trail, pytest.raises(AuditError, match="format"):
        trail.export("xml", io.StringIO())  # type: ignore[arg-type]


def test_audit_entry_is_frozen(filled: Path) -> None:
    with AuditTrail(filled) as trail:
        entry: AuditEntry = trail.entries()[0]
    with pytest.raises(AttributeError):
        entry.case_id = "x"  # type: ignore[misc]


def test_the_entries_of_one_transaction_share_one_reading_of_the_clock(path: Path) -> None:
    import uuid

    first = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    clock = StepClock(first, first + timedelta(seconds=1), first + timedelta(seconds=2))
    AuditTrail(path).close()
    with AuditTrail(path, clock=clock) as trail:
        entries = trail.record_many([pair(n) for n in range(1, 4)])
        later = trail.record(*pair(4))
    assert {e.recorded_at for e in entries} == {first}
    assert later.recorded_at == first + timedelta(seconds=1)
    ids = [e.entry_id for e in [*entries, later]]
    assert len(set(ids)) == 4
    assert all(uuid.UUID(i).version == 4 and uuid.UUID(i).hex == i for i in ids)
