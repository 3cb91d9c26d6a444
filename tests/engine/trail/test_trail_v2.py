"""Trail format 2: prepared recording, cases stored once, compression,
entry checks, read-only opening, reading format 1, and `migrate`."""

from __future__ import annotations

import io
import json
import pickle
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from test_trail_storage import make_case, make_decision, pair, raw
from trail_v1 import write_v1_trail

from calfrehab.engine.canonical import canonical_bytes, sha256_hex
from calfrehab.engine.trail import codec
from calfrehab.engine.trail.audit import AuditError, AuditTrail, prepare_entry
from calfrehab.engine.trail.chain import entry_hash
from calfrehab.engine.trail.migrate import migrate


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "audit.sqlite3"


def _count(path: Path, table: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


# ------------------------------------------------------- prepared entries


def test_prepared_entries_pickle_and_record(path: Path) -> None:
    prepared = [prepare_entry(*pair(n)) for n in range(1, 4)]
    shipped = [pickle.loads(pickle.dumps(p)) for p in prepared]  # as from a worker
    assert shipped == prepared
    with AuditTrail(path) as trail:
        result = trail.record_prepared(shipped, clinician="batch")
        assert (result.recorded, result.skipped, result.last_seq) == (3, (), 3)
        entries = trail.entries()
        assert result.last_hash == entries[-1].entry_hash
        assert [e.decision for e in entries] == [pair(n)[0] for n in range(1, 4)]
        assert [e.case for e in entries] == [pair(n)[1] for n in range(1, 4)]
        assert {e.clinician for e in entries} == {"batch"}
        assert trail.verify().ok


def test_prepared_entry_carries_hashes_of_the_canonical_bytes() -> None:
    decision, case = pair(1)
    p = prepare_entry(decision, case)
    dicts = codec.shipped_dictionaries()
    assert codec.decompress(p.case_body, dicts) == canonical_bytes(case)
    assert codec.decompress(p.decision_body, dicts) == canonical_bytes(decision)
    assert p.case_body_sha256 == sha256_hex(canonical_bytes(case)) == p.case_sha256
    assert p.decision_body_sha256 == sha256_hex(canonical_bytes(decision))
    # bytes the caller already has are used as given
    again = prepare_entry(decision, case, case_bytes=canonical_bytes(case))
    assert again == p


def test_record_prepared_is_all_or_nothing(path: Path) -> None:
    with AuditTrail(path) as trail:
        trail.record_prepared([prepare_entry(*pair(1))])
        with pytest.raises(AuditError, match="already recorded"):
            trail.record_prepared([prepare_entry(*pair(2)), prepare_entry(*pair(1))])
        assert len(trail) == 1
        assert trail.verify().ok


def test_record_prepared_skip_decided_decides_each_case_once(path: Path) -> None:
    case = make_case(1)
    first = prepare_entry(make_decision(case, 1), case)
    # the same case decided again (another run resuming the same batch)
    second = prepare_entry(make_decision(case, 2), case)
    other = prepare_entry(*pair(3))
    with AuditTrail(path) as trail:
        assert trail.record_prepared([first]).recorded == 1
        result = trail.record_prepared([second, other], skip_decided=True)
        assert result.recorded == 1
        assert result.skipped == (second.decision_id,)
        assert [e.case_id for e in trail.entries()] == ["RUN-0001", "RUN-0003"]


def test_record_prepared_rejects_other_values(path: Path) -> None:
    with AuditTrail(path) as trail, pytest.raises(AuditError, match="PreparedEntry"):
        trail.record_prepared([pair(1)])  # type: ignore[list-item]


def test_identical_cases_are_stored_once(path: Path) -> None:
    case = make_case(1)
    with AuditTrail(path) as trail:
        for n in range(3):
            trail.record(make_decision(case, n, rulebase_sha=f"{n}" * 64), case)
        trail.record(*pair(2))
        assert trail.verify().ok
        assert [e.case for e in trail.entries()][:3] == [case] * 3
    assert _count(path, "cases") == 2
    assert _count(path, "entries") == 4


def test_documents_are_compressed(path: Path) -> None:
    decision, case = pair(1)
    decision["reasons"] = [
        {"rule": f"r{i}", "text": "pain during loading stayed at or below 3/10", "sources": []}
        for i in range(30)
    ]
    with AuditTrail(path) as trail:
        trail.record(decision, case)
    conn = sqlite3.connect(path)
    (body,) = conn.execute("SELECT decision_body FROM entries").fetchone()
    conn.close()
    assert len(body) * 4 < len(canonical_bytes(decision))


# ----------------------------------------------------------- tampering


def test_a_case_changed_in_the_cases_table_is_caught(path: Path) -> None:
    with AuditTrail(path) as trail:
        for n in (1, 2, 3):
            trail.record(*pair(n))
    with raw(path) as conn:
        conn.execute("DROP TRIGGER IF EXISTS cases_no_update")
        other = codec.compress("case", canonical_bytes(make_case(9)))
        conn.execute(
            "UPDATE cases SET body = ? WHERE sha256 = "
            "(SELECT case_body_sha256 FROM entries WHERE seq = 2)",
            (other,),
        )
    with AuditTrail(path) as trail:
        report = trail.verify()
        assert (report.ok, report.first_bad_seq) == (False, 2)
        assert "stored case" in (report.problem or "")
        assert not trail.check_entry(2).ok
        assert trail.check_entry(1).ok


def test_a_case_removed_or_added_is_caught(path: Path) -> None:
    with AuditTrail(path) as trail:
        for n in (1, 2):
            trail.record(*pair(n))
    with raw(path) as conn:
        conn.execute("DROP TRIGGER IF EXISTS cases_no_delete")
        conn.execute(
            "DELETE FROM cases WHERE sha256 = (SELECT case_body_sha256 FROM entries WHERE seq = 1)"
        )
    with AuditTrail(path) as trail:
        report = trail.verify()
        assert (report.ok, report.first_bad_seq) == (False, 1)
        assert "missing" in (report.problem or "")
    with raw(path) as conn:  # put back, with other content
        conn.execute(
            "INSERT INTO cases VALUES (?, ?)",
            (sha256_hex(canonical_bytes(make_case(1))), codec.compress("case", b"{}")),
        )
    with AuditTrail(path) as trail:
        report = trail.verify()
        assert (report.ok, report.first_bad_seq) == (False, 1)
        assert "stored case" in (report.problem or "")


def test_a_case_no_entry_refers_to_is_caught(path: Path) -> None:
    with AuditTrail(path) as trail:
        trail.record(*pair(1))
    with raw(path) as conn:
        conn.execute("INSERT INTO cases VALUES ('x', x'00')")
    with AuditTrail(path) as trail:
        report = trail.verify()
    assert not report.ok and report.first_bad_seq is None
    assert "no entry refers to" in (report.problem or "")


def test_check_entry_catches_a_rewritten_entry(path: Path) -> None:
    with AuditTrail(path) as trail:
        for n in (1, 2, 3):
            trail.record(*pair(n))
        assert all(trail.check_entry(s).ok for s in (1, 2, 3))
    # A forger rewrites entry 2's case_id and recomputes its hash: the entry
    # is self-consistent, but its decision says otherwise and entry 3 no
    # longer links to it.
    with raw(path) as conn:
        conn.row_factory = sqlite3.Row
        row = dict(conn.execute("SELECT * FROM entries WHERE seq = 2").fetchone())
        row["case_id"] = "RUN-9999"
        row["entry_hash"] = entry_hash(row)
        conn.execute(
            "UPDATE entries SET case_id = ?, entry_hash = ? WHERE seq = 2",
            (row["case_id"], row["entry_hash"]),
        )
    with AuditTrail(path) as trail:
        check = trail.check_entry(2)
    assert not check.ok
    text = " ".join(check.problems)
    assert "does not link" in text
    assert "case_id" in text


def test_check_entry_of_the_last_entry_uses_meta(path: Path) -> None:
    with AuditTrail(path) as trail:
        for n in (1, 2):
            trail.record(*pair(n))
    with raw(path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'last_hash'", ("1" * 64,))
    with AuditTrail(path, readonly=True) as trail:
        assert not trail.check_entry(2).ok
        assert trail.check_entry(1).ok


# ------------------------------------------------------------ read-only


def test_readonly_open_changes_nothing_and_cannot_write(path: Path) -> None:
    with AuditTrail(path) as trail:
        trail.record(*pair(1))
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    before = path.read_bytes()
    with AuditTrail(path, readonly=True) as trail:
        assert len(trail.entries()) == 1
        assert trail.verify().ok
        trail.export("jsonl", io.StringIO())
        with pytest.raises(AuditError, match="read-only"):
            trail.record(*pair(2))
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            trail._connection().execute("CREATE TABLE x (a)")
    assert path.read_bytes() == before
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


def test_readonly_open_of_a_missing_file_creates_nothing(path: Path) -> None:
    with pytest.raises(AuditError, match="no audit trail"):
        AuditTrail(path, readonly=True)
    assert not path.exists()


# --------------------------------------------------------------- format 1


def _v1(path: Path, n: int = 4) -> str:
    pairs = [pair(i) for i in range(1, n + 1)]
    return write_v1_trail(path, pairs, [(pairs[0][0]["decision_id"], "dr o", "why not")])


def test_format_1_is_read_and_verified(path: Path) -> None:
    head = _v1(path)
    with AuditTrail(path, readonly=True) as trail:
        assert trail.version == 1
        report = trail.verify()
        assert report.ok and report.entries_checked == 5 and report.last_hash == head
        entries = trail.entries()
        assert [e.case for e in entries[:4]] == [pair(i)[1] for i in range(1, 5)]
        assert trail.overrides_for(entries[0].decision_id)[0].decision["reason"] == "why not"
        assert trail.check_entry(3).ok
        out = io.StringIO()
        assert trail.export("jsonl", out) == 5
        assert json.loads(out.getvalue().splitlines()[0])["case"] == pair(1)[1]


def test_format_1_is_not_written(path: Path) -> None:
    _v1(path)
    with AuditTrail(path) as trail, pytest.raises(AuditError, match="audit migrate"):
        trail.record(*pair(9))


def test_format_1_tamper_is_still_caught(path: Path) -> None:
    _v1(path)
    with raw(path) as conn:
        conn.execute("UPDATE entries SET clinician = 'mallory' WHERE seq = 3")
    with AuditTrail(path, readonly=True) as trail:
        assert (trail.verify().ok, trail.verify().first_bad_seq) == (False, 3)


# ---------------------------------------------------------------- migrate


def test_migrate_in_place_keeps_every_entry_and_the_old_head(path: Path) -> None:
    v1_head = _v1(path, 6)
    with AuditTrail(path, readonly=True) as trail:
        old = trail.entries()
    report = migrate(path)
    assert (report.from_version, report.to_version, report.entries) == (1, 4, 7)
    assert report.v1_last_hash == v1_head
    with AuditTrail(path) as trail:
        assert trail.version == 4
        verified = trail.verify()
        assert verified.ok and verified.last_hash == report.last_hash
        new = trail.entries()
        for a, b in zip(old, new, strict=True):
            assert (a.seq, a.entry_id, a.decision_id, a.case, a.decision, a.recorded_at) == (
                b.seq, b.entry_id, b.decision_id, b.case, b.decision, b.recorded_at)
        # and it can be written now
        trail.record(*pair(20))
        assert trail.verify().ok
    conn = sqlite3.connect(path)
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert (meta["v1_entry_count"], meta["v1_last_hash"]) == (7, v1_head)
    assert not tables & {"entries_v2", "entries_v3", "entries_v4", "cases_v4"}
    # a second run is a no-op
    again = migrate(path)
    assert again.from_version == again.to_version == 4


def test_migrate_is_resumable(path: Path) -> None:
    _v1(path, 9)
    partial = migrate(path, chunk=3, stop_after_chunks=2)
    assert partial.to_version == 1 and partial.entries == 0
    with AuditTrail(path, readonly=True) as trail:
        assert trail.version == 1 and trail.verify().ok  # still a good format-1 trail
    report = migrate(path, chunk=3)
    assert report.resumed_at == 6
    assert report.entries == 10
    with AuditTrail(path, readonly=True) as trail:
        assert trail.verify().ok


def test_migrate_refuses_a_trail_that_does_not_verify(path: Path) -> None:
    _v1(path)
    with raw(path) as conn:
        conn.execute("UPDATE entries SET clinician = 'mallory' WHERE seq = 2")
    before = path.read_bytes()
    with pytest.raises(AuditError, match="does not verify"):
        migrate(path)
    assert path.read_bytes() == before


def test_migrated_entries_keep_their_v1_hashes_checked(path: Path) -> None:
    _v1(path)
    migrate(path)
    # Rewriting a migrated entry's document and every v2 hash after it is
    # still caught: the v1 hashes recomputed from the documents disagree.
    with raw(path) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute("SELECT * FROM entries ORDER BY seq")]
        prev = "0" * 64
        for row in rows:
            if row["seq"] == 2:
                doc: dict[str, Any] = json.loads(
                    codec.decompress(row["decision_body"], codec.shipped_dictionaries())
                )
                doc["outcome"] = "refer"
                text = canonical_bytes(doc)
                row["decision_body"] = codec.compress("decision", text)
                row["decision_body_sha256"] = sha256_hex(text)
            row["prev_hash"] = prev
            row["entry_hash"] = entry_hash(row)
            prev = row["entry_hash"]
            conn.execute(
                "UPDATE entries SET decision_body = ?, decision_body_sha256 = ?, prev_hash = ?, "
                "entry_hash = ? WHERE seq = ?",
                (row["decision_body"], row["decision_body_sha256"], row["prev_hash"],
                 row["entry_hash"], row["seq"]),
            )
        conn.execute("UPDATE meta SET value = ? WHERE key = 'last_hash'", (prev,))
    with AuditTrail(path, readonly=True) as trail:
        report = trail.verify()
    assert (report.ok, report.first_bad_seq) == (False, 2)
    assert "version-1 hash" in (report.problem or "")



def test_a_trail_stays_readable_when_the_dictionaries_change(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Entries written with one set of dictionaries, then new dictionaries
    # shipped (scripts/build_trail_dictionaries.py): the trail holds the old
    # ones, so old entries read and verify, and new entries use the new ones.
    with AuditTrail(path) as trail:
        trail.record(*pair(1))
    old = dict(codec.shipped_dictionaries())
    fresh = {"case": b'{"case_id":"NEW","sessions":[]}', "decision": b'{"outcome":"x"}'}
    for cached in (codec._dictionary, codec._primed, codec.shipped_dictionaries):
        cached.cache_clear()
    monkeypatch.setattr(codec, "_dictionary", lambda kind: fresh[kind])
    try:
        assert set(codec.shipped_dictionaries()).isdisjoint(old)
        with AuditTrail(path) as trail:
            trail.record(*pair(2))
            assert [e.case for e in trail.entries()] == [pair(1)[1], pair(2)[1]]
            assert trail.verify().ok
        assert _count(path, "dictionaries") == 4
    finally:
        monkeypatch.undo()
        for cached in (codec._primed, codec.shipped_dictionaries):
            cached.cache_clear()


def test_an_entry_prepared_uncompressed_is_compressed_later_to_the_same_bytes(
    tmp_path: Path,
) -> None:
    from calfrehab.engine.trail.prepared import compress_entries, is_compressed

    pairs = [pair(n) for n in range(1, 4)]
    later = [prepare_entry(*p, compress=False) for p in pairs]
    assert not any(is_compressed(e) for e in later)
    assert later[0].decision_body == canonical_bytes(pairs[0][0])
    with AuditTrail(tmp_path / "t.sqlite3") as trail:
        with pytest.raises(AuditError, match="prepared uncompressed: compress it"):
            trail.record_prepared(later)
        assert len(trail) == 0
        packed = compress_entries(later)
        assert packed == [prepare_entry(*p) for p in pairs]
        assert trail.record_prepared(packed).recorded == 3 and trail.verify().ok
