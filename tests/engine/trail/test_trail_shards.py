"""Sharded trails: one chained shard per partition, a manifest chaining
their heads, verification whole and shard by shard."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import sqlite3
from pathlib import Path

import pytest
from test_trail_storage import make_case, make_decision, raw

from calfrehab.engine.trail.audit import AuditError, prepare_entry
from calfrehab.engine.trail.shards import (
    MANIFEST_NAME,
    is_sharded,
    open_shard,
    read_manifest,
    shard_path,
    verify_sharded,
    write_manifest,
)


def _record_partition(directory: str, partition: int, n: int, start: int = 0) -> None:
    # What a Dask partition does: prepare, then record into its own shard.
    prepared = []
    for i in range(start, start + n):
        case = make_case(i, case_id=f"P{partition}-{i}")
        prepared.append(prepare_entry(make_decision(case, i), case))
    with open_shard(directory, partition) as shard:
        shard.record_prepared(prepared)


@pytest.fixture
def sharded(tmp_path: Path) -> Path:
    root = tmp_path / "trail.d"
    for partition, n in ((0, 3), (1, 2), (2, 4)):
        _record_partition(str(root), partition, n)
    write_manifest(root)
    return root


def test_whole_and_one_shard_verify(sharded: Path) -> None:
    assert is_sharded(sharded)
    report = verify_sharded(sharded)
    assert report.ok and report.entries_checked == 9
    assert sorted(report.shards) == [0, 1, 2]
    manifest = read_manifest(sharded)
    assert report.head == manifest.head
    assert [h.entry_count for h in manifest.shards] == [3, 2, 4]
    one = verify_sharded(sharded, partition=1)
    assert one.ok and one.entries_checked == 2


def test_shards_written_by_separate_processes(tmp_path: Path) -> None:
    root = tmp_path / "trail.d"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_record_partition, args=(str(root), p, 5)) for p in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    write_manifest(root)
    assert verify_sharded(root).entries_checked == 15


def test_a_tampered_shard_is_named_and_the_others_still_verify(sharded: Path) -> None:
    with raw(shard_path(sharded, 2)) as conn:
        conn.execute("UPDATE entries SET clinician = 'mallory' WHERE seq = 3")
    report = verify_sharded(sharded)
    assert not report.ok and report.bad_partition == 2
    assert "shard 2" in (report.problem or "") and "altered" in (report.problem or "")
    assert verify_sharded(sharded, partition=0).ok
    assert not verify_sharded(sharded, partition=2).ok


def test_a_shard_grown_after_the_manifest_is_caught(sharded: Path) -> None:
    _record_partition(str(sharded), 1, 1, start=10)
    report = verify_sharded(sharded)
    assert not report.ok and report.bad_partition == 1
    assert "not the one the manifest records" in (report.problem or "")
    assert not verify_sharded(sharded, partition=1).ok
    write_manifest(sharded)  # the run's new head
    assert verify_sharded(sharded).ok


def test_an_edited_manifest_is_caught(sharded: Path) -> None:
    path = sharded / MANIFEST_NAME
    doc = json.loads(path.read_text())
    doc["shards"][1]["entry_count"] = 1
    path.write_text(json.dumps(doc))
    report = verify_sharded(sharded)
    assert not report.ok and "manifest was altered" in (report.problem or "")
    with pytest.raises(AuditError, match="altered"):
        read_manifest(sharded)


def test_missing_and_extra_shards_are_caught(sharded: Path, tmp_path: Path) -> None:
    spare = tmp_path / "spare.sqlite3"
    shutil.move(shard_path(sharded, 1), spare)
    report = verify_sharded(sharded)
    assert not report.ok and "missing" in (report.problem or "")
    shutil.move(spare, shard_path(sharded, 1))
    _record_partition(str(sharded), 7, 1)
    report = verify_sharded(sharded)
    assert not report.ok and "not in the manifest" in (report.problem or "")


def test_manifest_refuses_a_shard_that_does_not_verify(sharded: Path) -> None:
    conn = sqlite3.connect(shard_path(sharded, 0))
    conn.execute("UPDATE meta SET value = 99 WHERE key = 'entry_count'")
    conn.commit()
    conn.close()
    before = (sharded / MANIFEST_NAME).read_bytes()
    with pytest.raises(AuditError, match="does not verify"):
        write_manifest(sharded)
    assert (sharded / MANIFEST_NAME).read_bytes() == before


def _heads(root: Path) -> dict[int, tuple[int, str]]:
    return {h.partition: (h.entry_count, h.last_hash) for h in read_manifest(root).shards}


def test_shards_a_run_wrote_are_checked_by_the_heads_their_writers_reported(
    sharded: Path,
) -> None:
    # A Dask batch names the shards it has just written with their heads:
    # those are compared, not re-read; the manifest is the same as a
    # verifying one.
    heads = _heads(sharded)
    before = read_manifest(sharded)
    after = write_manifest(sharded, written=heads)
    assert [(h.partition, h.entry_count, h.last_hash, h.link_hash) for h in after.shards] == [
        (h.partition, h.entry_count, h.last_hash, h.link_hash) for h in before.shards]
    assert verify_sharded(sharded).ok


def test_a_reported_head_that_is_not_the_shards_stops_the_manifest(sharded: Path) -> None:
    heads = _heads(sharded)
    count, last = heads[1]
    before = (sharded / MANIFEST_NAME).read_bytes()
    for wrong in ((count + 1, last), (count, "0" * 64)):
        with pytest.raises(AuditError, match="does not end where its writer left it"):
            write_manifest(sharded, written={**heads, 1: wrong})
    with pytest.raises(AuditError, match="no shard file for partition 9"):
        write_manifest(sharded, written={**heads, 9: (1, last)})
    assert (sharded / MANIFEST_NAME).read_bytes() == before


def test_a_shard_the_run_did_not_write_is_still_verified_whole(sharded: Path) -> None:
    with raw(shard_path(sharded, 2)) as conn:
        conn.execute("UPDATE entries SET clinician = 'mallory' WHERE seq = 3")
    heads = _heads(sharded)
    # Partitions 0 and 1 were written by this run; 2 is older and altered.
    with pytest.raises(AuditError, match="does not verify"):
        write_manifest(sharded, written={0: heads[0], 1: heads[1]})


@pytest.mark.parametrize("bad", [-1, True, "3", 10**9])
def test_partition_must_be_a_small_integer(tmp_path: Path, bad: object) -> None:
    with pytest.raises(AuditError, match="partition"):
        shard_path(tmp_path, bad)  # type: ignore[arg-type]
