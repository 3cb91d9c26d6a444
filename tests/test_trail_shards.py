"""Sharded trails: one chained shard per partition, an append-only manifest
chaining their heads, verification whole and shard by shard."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import sqlite3
from pathlib import Path

import pytest
from test_audit import make_case, make_decision

from calfrehab.engine.trail.audit import AuditError, prepare_entry
from calfrehab.engine.trail.shards import (
    MANIFEST,
    ShardHead,
    append_manifest,
    is_sharded,
    manifest_lines,
    open_shard,
    shard_dir,
    shard_head,
    shard_name,
    verify_shard,
    verify_shards,
)


def _record_partition(
    directory: str, partition: int, n: int, start: int = 0, run: str = "run1"
) -> None:
    # What a Dask partition does: prepare, then record into its own shard.
    prepared = []
    for i in range(start, start + n):
        case = make_case(i, case_id=f"{run}-P{partition}-{i}")
        prepared.append(prepare_entry(make_decision(case, i), case))
    with open_shard(directory, partition, run=run) as shard:
        shard.record_prepared(prepared)


def _close_run(directory: Path, run: str, partitions: range) -> str:
    # What the parent does once the partitions are done.
    return append_manifest(
        directory, [shard_head(directory / shard_name(p, run)) for p in partitions]
    )


@pytest.fixture
def sharded(tmp_path: Path) -> Path:
    root = shard_dir(tmp_path / "clinic.sqlite3")
    for partition, n in ((0, 3), (1, 2), (2, 4)):
        _record_partition(str(root), partition, n)
    _close_run(root, "run1", range(3))
    return root


def _name(partition: int, run: str = "run1") -> str:
    return shard_name(partition, run)


def test_whole_and_one_shard_verify(sharded: Path) -> None:
    assert sharded.name == "clinic.sqlite3.shards" and is_sharded(sharded)
    report = verify_shards(sharded)
    assert report.ok and (report.shards, report.entries) == (3, 9)
    lines = manifest_lines(sharded)
    assert report.manifest_head == lines[-1]["hash"]
    assert [line["entries"] for line in lines] == [3, 2, 4]
    one = verify_shard(sharded / _name(1))
    assert one.ok and one.entries == 2


def test_a_second_run_chains_onto_the_first(sharded: Path) -> None:
    first_head = manifest_lines(sharded)[-1]["hash"]
    for partition in range(2):
        _record_partition(str(sharded), partition, 2, run="run2")
    _close_run(sharded, "run2", range(2))
    lines = manifest_lines(sharded)
    assert len(lines) == 5 and lines[3]["prev"] == first_head
    assert verify_shards(sharded).entries == 13


def test_shards_written_by_separate_processes(tmp_path: Path) -> None:
    root = tmp_path / "t.shards"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_record_partition, args=(str(root), p, 5)) for p in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    _close_run(root, "run1", range(3))
    assert verify_shards(root).entries == 15


def test_a_tampered_shard_is_named_and_the_others_still_verify(sharded: Path) -> None:
    conn = sqlite3.connect(sharded / _name(2))
    conn.execute("DROP TRIGGER entries_no_update")
    conn.execute("UPDATE entries SET clinician = 'mallory' WHERE seq = 3")
    conn.commit()
    conn.close()
    report = verify_shards(sharded)
    assert not report.ok and report.bad_shard == _name(2)
    assert "altered" in (report.problem or "")
    assert verify_shard(sharded / _name(0)).ok
    assert not verify_shard(sharded / _name(2)).ok


def test_a_shard_grown_after_the_manifest_is_caught(sharded: Path) -> None:
    _record_partition(str(sharded), 1, 1, start=10)
    report = verify_shards(sharded)
    assert not report.ok and report.bad_shard == _name(1)
    assert "the manifest says 2" in (report.problem or "")
    assert not verify_shard(sharded / _name(1)).ok


@pytest.mark.parametrize("edit", ["entries", "head", "drop-line", "swap-lines"])
def test_an_edited_manifest_is_caught(sharded: Path, edit: str) -> None:
    path = sharded / MANIFEST
    lines = [json.loads(t) for t in path.read_text().splitlines()]
    if edit == "entries":
        lines[1]["entries"] = 1
    elif edit == "head":
        lines[1]["head"] = "0" * 64
    elif edit == "drop-line":
        del lines[0]
    else:
        lines[0], lines[1] = lines[1], lines[0]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    report = verify_shards(sharded)
    assert not report.ok and "manifest line" in (report.problem or "")
    with pytest.raises(AuditError, match="refusing to append"):
        append_manifest(sharded, [ShardHead(_name(9), 0, "0" * 64)])


def test_missing_and_extra_shards_are_caught(sharded: Path, tmp_path: Path) -> None:
    spare = tmp_path / "spare.sqlite3"
    shutil.move(sharded / _name(1), spare)
    report = verify_shards(sharded)
    assert not report.ok and "missing" in (report.problem or "")
    shutil.move(spare, sharded / _name(1))
    _record_partition(str(sharded), 7, 1)
    report = verify_shards(sharded)
    assert not report.ok and "not in the manifest" in (report.problem or "")
    assert report.bad_shard == _name(7)


def test_a_shard_that_does_not_verify_gets_no_head(sharded: Path) -> None:
    conn = sqlite3.connect(sharded / _name(0))
    conn.execute("UPDATE meta SET value = 99 WHERE key = 'entry_count'")
    conn.commit()
    conn.close()
    with pytest.raises(AuditError, match="does not verify"):
        shard_head(sharded / _name(0))


@pytest.mark.parametrize("bad", [-1, True, 10**9])
def test_partition_must_be_a_small_integer(bad: int) -> None:
    with pytest.raises(AuditError, match="partition"):
        shard_name(bad)


@pytest.mark.parametrize("run", ["../up", "a/b", "x\ny", ""])
def test_run_must_make_a_plain_file_name(run: str) -> None:
    with pytest.raises(AuditError, match="cannot name a shard"):
        shard_name(0, run)
