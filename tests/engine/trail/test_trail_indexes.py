"""The trail's SQLite layout. Its pages: 16 KB in a new trail. Its
indexes: a decision's follow-ups (overrides and
acceptances) are found through a partial index that decisions do not pay
for (``entries_follow_ups``, in place of ``entries_by_decision_id`` on
every entry); a format-4 trail made before keeps working as it is, and
`audit migrate` replaces the old index without changing an entry."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_trail_storage import pair
from test_trail_v3 import PROGRAM
from test_trail_v4 import V3_TRAIL

from calfrehab.cli.main import cli
from calfrehab.engine.trail.audit import AuditError, AuditTrail
from calfrehab.engine.trail.migrate import migrate
from calfrehab.engine.trail.schema import ENTRIES_V4_INDEXES, split_sql


def _indexes(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {str(n) for (n,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'entries' "
            "AND sql IS NOT NULL")}
    finally:
        conn.close()


CURRENT = {"entries_decision_once", "entries_follow_ups", "entries_by_case_id",
           "entries_by_input"}


def _trail_with_follow_ups(path: Path) -> str:
    """Three decisions, two overrides of the first and an acceptance."""
    with AuditTrail(path) as trail:
        for n in (1, 2, 3):
            trail.record(*pair(n))
        decision_id = trail.entries()[0].decision_id
        trail.override(decision_id, "dr a", "first")
        trail.override(decision_id, "dr b", "second")
        trail.accept(trail.entries()[2].decision_id, PROGRAM, "dr c")
    return decision_id


def _as_made_before(path: Path) -> None:
    """The index set a format-4 trail was created with before this change."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("CREATE INDEX entries_by_decision_id ON entries (decision_id)")
        conn.execute("DROP INDEX entries_follow_ups")
        conn.commit()
    finally:
        conn.close()


def test_a_new_trail_indexes_follow_ups_only(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    _trail_with_follow_ups(path)
    assert _indexes(path) == CURRENT
    conn = sqlite3.connect(path)
    try:
        # Only the three follow-ups are in the index, not the decisions.
        count = conn.execute(
            "SELECT count(*) FROM entries INDEXED BY entries_follow_ups "
            "WHERE kind <> 'decision' AND decision_id IS NOT NULL").fetchone()[0]
        assert count == 3
    finally:
        conn.close()


@pytest.mark.parametrize("made_before", [False, True])
def test_follow_up_lookups_search_an_index_rather_than_scan(
    tmp_path: Path, made_before: bool
) -> None:
    path = tmp_path / "t.sqlite3"
    decision_id = _trail_with_follow_ups(path)
    if made_before:
        _as_made_before(path)
    seen: list[str] = []
    with AuditTrail(path) as trail:
        conn = trail._connection()
        conn.set_trace_callback(seen.append)
        overrides = trail.overrides_for(decision_id)
        assert [e.clinician for e in overrides] == ["dr a", "dr b"]
        accepted_id = trail.entries(kind="accepted")[0].decision_id
        assert len(trail.accepted_for(accepted_id)) == 1
        with pytest.raises(AuditError, match="was accepted into the programme"):
            trail.override(accepted_id, "dr d", "too late")
        conn.set_trace_callback(None)
        follow_ups = [q for q in seen if "kind <> 'decision'" in q]
        assert len(follow_ups) == 3
        for query in follow_ups:
            plan = " | ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {query}"))
            index = "entries_by_decision_id" if made_before else "entries_follow_ups"
            assert f"USING INDEX {index}" in plan, plan
            assert "SCAN" not in plan, plan


def test_a_trail_made_before_reads_verifies_records_then_migrates(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    decision_id = _trail_with_follow_ups(path)
    _as_made_before(path)
    with AuditTrail(path) as trail:
        head = trail.head()
        entries = [(e.seq, e.entry_hash) for e in trail.entries()]
        assert trail.verify().ok
        trail.record(*pair(4))  # still appended to as it is
        assert len(trail.overrides_for(decision_id)) == 2
        head = trail.head()
    assert "entries_by_decision_id" in _indexes(path)

    report = migrate(path)
    assert (report.from_version, report.to_version, report.indexes_updated) == (4, 4, True)
    assert (report.entries, report.last_hash) == head
    assert _indexes(path) == CURRENT
    with AuditTrail(path, readonly=True) as trail:
        assert trail.verify().ok and trail.head() == head
        assert [(e.seq, e.entry_hash) for e in trail.entries()][:6] == entries
        assert len(trail.overrides_for(decision_id)) == 2
    again = migrate(path)
    assert not again.indexes_updated and again.last_hash == head[1]


def test_migrate_says_it_brought_the_indexes_up_to_date(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    _trail_with_follow_ups(path)
    _as_made_before(path)
    runner = CliRunner()
    first = runner.invoke(cli, ["audit", "migrate", "--audit", str(path)])
    assert first.exit_code == 0, first.output
    assert "already format 4 (6 entries); its indexes brought up to date" in first.output
    second = runner.invoke(cli, ["audit", "migrate", "--audit", str(path)])
    assert second.exit_code == 0 and "; nothing to do" in second.output


def test_a_format_3_trail_migrates_to_the_current_indexes(tmp_path: Path) -> None:
    path = tmp_path / "v3.sqlite3"
    shutil.copyfile(V3_TRAIL, path)
    assert "entries_by_decision_id" in _indexes(path)
    assert migrate(path).to_version == 4
    assert _indexes(path) == CURRENT
    # the very statements a new trail is created with
    conn = sqlite3.connect(path)
    try:
        made = {str(s) for (s,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
    finally:
        conn.close()
    expected = {s.rstrip(";") for s in split_sql(ENTRIES_V4_INDEXES) if "INDEX" in s}
    assert made == expected


def _page_size(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()


def test_a_new_trail_has_16_kb_pages_and_one_made_before_keeps_its_own(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    _trail_with_follow_ups(path)
    assert _page_size(path) == 16384
    # An existing empty file becomes a trail the same way.
    empty = tmp_path / "empty.sqlite3"
    empty.write_bytes(b"")
    with AuditTrail(empty) as trail:
        trail.record(*pair(1))
    assert _page_size(empty) == 16384
    # A trail of 4 KB pages (every trail made before) reads, records,
    # verifies and migrates as it is.
    old = tmp_path / "v3.sqlite3"
    shutil.copyfile(V3_TRAIL, old)
    assert _page_size(old) == 4096
    migrate(old)
    with AuditTrail(old) as trail:
        trail.record(*pair(9))
        assert trail.verify().ok
    assert _page_size(old) == 4096
