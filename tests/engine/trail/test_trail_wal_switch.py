"""Opening a new trail while another process holds a lock on it for a moment
(engine/trail/connection.py). SQLite runs no busy handler for a journal-mode
change (`PRAGMA journal_mode = WAL` needs the file to itself), so the busy
timeout did not cover it: two commands creating one new trail at once could
fail with "database is locked" (seen once in CI, two `next --accept` in
tests/engine/casefile/test_case_races.py)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from calfrehab.engine.trail.audit import AuditError
from calfrehab.engine.trail.connection import open_connection


def _created_at() -> str:
    return "2026-12-07T00:00:00Z"


def _hold(path: Path, seconds: float) -> tuple[sqlite3.Connection, threading.Thread]:
    """Another opener creating the schema of the new file: its ``BEGIN
    IMMEDIATE`` (a reserved lock, the file still in rollback-journal mode
    until its first commit) lets our look for tables through but not our
    switch to WAL. Released after ``seconds``, from another thread."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")

    def release() -> None:
        time.sleep(seconds)
        holder.execute("ROLLBACK")

    releaser = threading.Thread(target=release, daemon=True)
    releaser.start()
    return holder, releaser


def test_a_new_trail_opened_while_another_opener_holds_it_is_made(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    path.touch()
    holder, releaser = _hold(path, 0.3)
    conn, version = open_connection(path, timeout=5.0, readonly=False, create=True,
                                    created_at=_created_at)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
        assert version >= 1
    finally:
        conn.close()
        releaser.join()
        holder.close()


def test_a_lock_held_past_the_timeout_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    path.touch()
    holder, releaser = _hold(path, 1.0)
    start = time.monotonic()
    with pytest.raises(AuditError, match="database is locked"):
        open_connection(path, timeout=0.5, readonly=False, create=True,
                        created_at=_created_at)
    assert time.monotonic() - start >= 0.5  # it waited its timeout first
    releaser.join()
    holder.close()
