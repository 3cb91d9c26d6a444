"""Nothing acknowledged is ever lost (issue 27 item 1): decisions,
overrides, feedback (an override through a trail opened read-only, as the
server's worker records it) and acceptances raced from several processes,
each operation on its own connection, opened and closed for it, with a
migration from format 2 in the middle of them.

Every process writes down what the trail acknowledged (the entry id and
seq a call returned); afterwards every acknowledged entry is in the trail
at the seq it was given, the seqs run 1..N with none twice, the chain
verifies, and nothing is there that was not acknowledged.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO
from test_trail_storage import make_case, make_decision
from test_trail_v3 import PROGRAM, V2_HEAD, V2_TRAIL

from calfrehab.engine.audit.views import (
    accept_decision,
    add_audit_override,
    open_trail,
    override_decision,
)
from calfrehab.engine.trail.audit import AuditError, AuditTrail
from calfrehab.engine.trail.migrate import migrate

# Decisions of the format-2 trail the race starts from (tests/engine/trail/trail_v2.sqlite3).
DECISIONS = ("4bf5d2bd", "3e40c021", "aaae7dc3")
OPS = 500  # per writing process: 4 writers, 2,000 appends and as many opens


def _retrying(kind: str, path: str, n: int) -> dict[str, Any]:
    # Until the migration commits, every write is refused ("upgrade it with
    # audit migrate"): refused is not acknowledged, so try again.
    deadline = time.monotonic() + 120
    while True:
        try:
            return _one(kind, path, n)
        except AuditError as exc:
            if "audit migrate" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.002)


def _one(kind: str, path: str, n: int) -> dict[str, Any]:
    """One write, on a connection of its own; what the trail acknowledged."""
    # Acceptances go to a decision of their own: an accepted decision takes
    # no more overrides (audit/views.py refuses them).
    ref = DECISIONS[-1] if kind == "accepted" else DECISIONS[n % (len(DECISIONS) - 1)]
    if kind == "decision":
        case = make_case(n, case_id=f"RACE-{n}")
        with AuditTrail(path) as trail:
            e = trail.record(make_decision(case, n), case, clinician="race")
            return {"entry_id": e.entry_id, "seq": e.seq}
    if kind == "override":
        return override_decision(path, ref, "dr race", f"override {n}", "bent_knee", "hold")
    if kind == "feedback":
        with open_trail(path) as trail:  # read-only, as the server's worker
            return add_audit_override(trail, ref, "cds", f"feedback {n}")
    return accept_decision(path, ref, PROGRAM, "dr race")


def _writer(kind: str, path: str, out: str, go: Any) -> None:
    go.wait(60)
    acked: list[tuple[str, int]] = []
    try:
        for n in range(OPS):
            result = _retrying(kind, path, n)
            acked.append((result["entry_id"], result["seq"]))
    finally:
        Path(out).write_text(json.dumps(acked), encoding="utf-8")


def _migrator(path: str, out: str, go: Any) -> None:
    go.wait(60)
    time.sleep(0.05)  # let the writers pile up against the format-2 trail
    report = migrate(path)
    again = 0
    while again < 20:  # then migrate (a no-op) and verify while they record
        migrate(path)
        with AuditTrail(path, readonly=True) as trail:
            if not trail.verify().ok:
                raise AssertionError("the trail stopped verifying during the race")
        again += 1
    Path(out).write_text(json.dumps([report.from_version, report.entries, report.last_hash]),
                         encoding="utf-8")


def test_racing_writers_and_a_migration_lose_nothing_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite3"
    shutil.copyfile(V2_TRAIL, path)
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    kinds = ("decision", "override", "feedback", "accepted")
    procs = [
        ctx.Process(target=_writer, args=(kind, str(path), str(tmp_path / f"{kind}.json"), go))
        for kind in kinds
    ]
    procs.append(ctx.Process(target=_migrator,
                             args=(str(path), str(tmp_path / "migrate.json"), go)))
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0] * len(procs)

    from_version, migrated_at, migrated_head = json.loads(
        (tmp_path / "migrate.json").read_text())
    # The head the migration reports is where the trail stood at its last
    # step: 2 -> 3 commits and 3 -> 4 takes the lock again, and format 3 is
    # writable, so a writer may append in between (about one run in four
    # under load). No hash changed: the format-2 head and the migration's
    # head are both in the chain as they were (checked below).
    assert from_version == 2 and migrated_at >= V2_HEAD[0]
    acked = {kind: json.loads((tmp_path / f"{kind}.json").read_text()) for kind in kinds}
    assert all(len(a) == OPS for a in acked.values())

    with AuditTrail(path, readonly=True) as trail:
        report = trail.verify()
        stored = {e.entry_id: (e.seq, e.kind) for e in trail.entries()}
        count, _ = trail.head()
        kept = (trail.hash_at(V2_HEAD[0]), trail.hash_at(migrated_at))
    assert report.ok, report
    assert kept == (V2_HEAD[1], migrated_head)
    acknowledged = [(eid, seq) for a in acked.values() for eid, seq in a]
    # Counted: every acknowledged entry is there, at its seq, and nothing else.
    present = sum(stored.get(eid, (None,))[0] == seq for eid, seq in acknowledged)
    assert present == len(acknowledged) == len(kinds) * OPS
    assert count == report.entries_checked == V2_HEAD[0] + len(acknowledged) == len(stored)
    seqs = sorted(seq for seq, _ in stored.values())
    assert seqs == list(range(1, count + 1))  # unique, no gaps
    by_kind = {k: sum(kind == k for _, kind in stored.values()) for k in kinds if k != "feedback"}
    assert by_kind == {"decision": 3 + OPS, "override": 2 + 2 * OPS, "accepted": OPS}


def _cli_loop(args: list[str], times: int, env: dict[str, str]) -> list[str]:
    """Run one calfrehab command ``times`` times; what each printed."""
    out: list[str] = []
    for _ in range(times):
        done = subprocess.run([sys.executable, "-m", "calfrehab.cli", *args], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        out.append(done.stdout)
    return out


def test_audit_override_beside_next_at_the_command_line(tmp_path: Path) -> None:
    """Issue 27 item 1 as it was found: `audit override` run alongside
    `next` on one trail printed its seq and exited 0, and was not there."""
    examples = REPO / "examples"
    case = str(examples / "runner-stuck-on-two-leg.json")
    env = {**os.environ, "CALFREHAB_AUDIT": str(tmp_path / "audit.sqlite3")}
    first = json.loads(_cli_loop(["next", case, "--json"], 1, env)[0])["decision_id"]
    times = 6
    with ThreadPoolExecutor(3) as pool:
        nexts = pool.submit(_cli_loop, ["next", case, "--json"], times, env)
        overrides = [pool.submit(_cli_loop, ["audit", "override", first, "--clinician",
                                             f"dr {who}", "--reason", "hold"], times, env)
                     for who in ("a", "b")]
        decided = [json.loads(text)["decision_id"] for text in nexts.result()]
        acked = [re.search(r"recorded override (\w+) \(audit entry (\d+)\)", text)
                 for f in overrides for text in f.result()]
    with AuditTrail(tmp_path / "audit.sqlite3", readonly=True) as trail:
        assert trail.verify().ok
        stored = {e.entry_id: e.seq for e in trail.entries()}
        ids = {e.decision_id for e in trail.entries(kind="decision")}
    assert all(m is not None for m in acked)
    present = sum(stored.get(m.group(1)) == int(m.group(2)) for m in acked if m)
    assert present == len(acked) == 2 * times
    assert set(decided) | {first} <= ids
    assert len(stored) == 1 + times + 2 * times


def test_a_reader_opens_a_trail_whose_log_goes_as_it_looks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The last writer to close a trail deletes its write-ahead log; a reader
    # that saw the log exist and then stat-ed it got FileNotFoundError (seen
    # in the race above). Here the log "exists" but is gone by the stat.
    path = tmp_path / "audit.sqlite3"
    shutil.copyfile(V2_TRAIL, path)
    wal = Path(f"{path}-wal")
    real_exists, real_stat = Path.exists, Path.stat

    def exists(self: Path, *args: Any, **kwargs: Any) -> bool:
        return True if self == wal else real_exists(self, *args, **kwargs)

    def stat(self: Path, *args: Any, **kwargs: Any) -> os.stat_result:
        if self == wal:
            raise FileNotFoundError(2, "No such file or directory", str(self))
        return real_stat(self, *args, **kwargs)

    monkeypatch.setattr(Path, "exists", exists)
    monkeypatch.setattr(Path, "stat", stat)
    with AuditTrail(path, readonly=True) as trail:
        assert trail.verify().ok
        assert trail.head() == V2_HEAD
